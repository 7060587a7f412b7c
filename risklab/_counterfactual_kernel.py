"""Compiled kernel of :mod:`risklab.counterfactual`: many scenarios × all draws in one pass.

Private. :func:`risklab.counterfactual.evaluate_many` (and ``evaluate_arrays``, a batch of one)
call :func:`evaluate_batch`, which resolves every scenario's levers into arrays with the NumPy
reference's own expressions (:func:`_resolve`) and calls :func:`run` once. ``run`` loops over
draws in parallel; per draw it computes the lever-independent cell quantities once (prevalence,
the other channels' miss product and sum), then the proactive saturation ``s(θ' r')`` once per
*distinct* (efficiency factor, decay, minimum saturation, category and its intensity row) among the
scenarios, then every *distinct* scenario × category row (a category that a scenario's levers
leave as in another scenario is computed once) in one pass over periods, with no (S, K, T)
temporaries; the distinct rows are found by :func:`_first_occurrences` (NumPy's ``unique`` on
the rows' bytes). The rows' outcomes go to ``out`` every :data:`MAX_DRAW_BLOCK` draws, as runs of
contiguous values (draws × categories) rather than one category row at a time; a scenario whose
rows are consecutive (every scenario of a batch whose levers all differ) is copied without
looking its rows up.

Bit-identical to the reference (:func:`risklab.counterfactual._evaluate_arrays_reference`):
callers difference scenarios (avoided listings, shares of ``log U``, probabilities of being
below the baseline), so anything less would move their numbers by far more than 10⁻¹². Hence:
every cell is computed with the same floating-point operations in the same order (no fastmath,
so no fused multiply-adds); ``exp``/``expm1`` are risklab's own (:mod:`risklab._exp`, written
with arithmetic only, reproduced here by :func:`_exp_` and :func:`_expm1`), not the C library's,
so the loops vectorise and the numbers are the same on every machine; and the sums over periods
reproduce NumPy's pairwise summation (:func:`_pairwise_sum`, whose eight partial sums are the
lanes of one vector, :func:`_block_sums`; a row's four sums share their horizontal steps,
:func:`_four_pairwise_sums`; submissions of more than :data:`PAIRWISE_BLOCK` periods
or channels use the reference instead). The parallel loop is compiled for the widest vectors
the CPU has (:data:`VECTOR_WIDTH`); the width changes how many cells one instruction computes,
not what each cell computes. Prevalence levers act on odds, ``e^{−logit π'} = e^{−logit π} ·
e^{−(log o + τ · position)}``: the first factor is computed once per draw, the second once per
scenario row, so a cell costs a multiplication, not an ``exp``; the enforcement lever is folded
into the same division. What is left per cell is one ``expm1`` per distinct saturation row ×
period × draw. Measured on the flagship shape (10 × 24 × 4, every lever moved in every scenario,
AVX-512, one thread): about 110 ns per row of 24 periods and draw, so 1.1 µs per scenario-draw
(ten rows); about a fifth of it is the row's 24 ``expm1``, a tenth the copies to ``out``.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from risklab import _exp
from risklab.counterfactual import (
    INTENSITY_FLOOR,
    OUTCOMES,
    Levers,
    PosteriorState,
    _evaluate_with_reference,
    _LeverError,
    _period_position,
)

__all__ = ["evaluate_batch", "run"]

#: Index of each outcome in the kernel's ``slots`` argument (order of ``counterfactual.OUTCOMES``).
OUTCOME_SLOTS = 8
#: Largest detection probability (``counterfactual.MAX_RATE``).
MAX_RATE = 1.0 - 1e-9
#: NumPy's block size of pairwise summation: the kernel handles up to this many periods (and
#: other channels); longer submissions use the NumPy reference.
PAIRWISE_BLOCK = 128
#: The kernel writes the outcomes of up to this many consecutive draws at a time …
MAX_DRAW_BLOCK = 16
#: … as long as their buffer (draws × distinct rows × 8 outcomes) stays within this many bytes.
VALUES_BYTES = 1 << 20


@numba.njit(cache=True, inline="always")
def _nan_max(a, b):
    # np.maximum: NaN if either is NaN.
    if a > b or a != a:
        return a
    return b


@numba.njit(cache=True, inline="always")
def _nan_min(a, b):
    # np.minimum: NaN if either is NaN.
    if a < b or a != a:
        return a
    return b


# Portable exp/expm1: risklab._exp's own argument reduction and polynomial, compiled here, so the
# kernel computes exactly what the NumPy reference computes.
_LOWEST, _HIGHEST = _exp.LOWEST, _exp.HIGHEST
_reduce_argument = numba.njit(cache=True, inline="always")(_exp.reduce_argument)
_taylor_expm1 = numba.njit(cache=True, inline="always")(_exp.taylor_expm1)


@intrinsic
def _float_bits(typingctx, x):
    """The bits of a float64 as an int64 (a register move; vectorises)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, x):
    """An int64's bits as a float64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


#: Vector width, in bits, that LLVM may use in the kernel's parallel loop (its function attribute
#: ``prefer-vector-width``). LLVM's tuning for recent Intel server cores prefers 256-bit vectors
#: even where AVX-512 exists; the kernel's loops are pure arithmetic, so the wider vectors pay.
#: On CPUs without AVX-512 LLVM uses the widest legal vectors, so the attribute does nothing.
#: Every element is still computed with the same operations in the same order, so the numbers do
#: not depend on the width (the tests compare against the NumPy reference bit for bit).
VECTOR_WIDTH = 512


@intrinsic
def _prefer_wide_vectors(typingctx):
    """Mark the function being compiled with ``"prefer-vector-width"="512"`` (see
    :data:`VECTOR_WIDTH`). Called at the top of the ``prange`` body, it marks the outlined
    function that runs the draws, which holds all of the kernel's loops."""

    def codegen(context, builder, signature, args):
        # llvmlite's FunctionAttributes accepts only enum attributes; a string attribute is
        # written as it appears in LLVM IR, which is what llvmlite prints.
        set.add(builder.function.attributes, f'"prefer-vector-width"="{VECTOR_WIDTH}"')
        return context.get_dummy_value()

    return types.none(), codegen


@numba.njit(cache=True, inline="always")
def _exp_parts(x):
    """``2^k`` and ``expm1(r)`` of ``x = k ln 2 + r`` (``risklab._exp._parts``)."""
    x = _nan_min(_nan_max(x, _LOWEST), _HIGHEST)
    kd, r = _reduce_argument(x)
    p = _taylor_expm1(r)
    return _bits_float((_float_bits(kd) + 1023) << 52), p


@numba.njit(cache=True, inline="always")
def _exp_(x):
    """``e^x`` as :func:`risklab._exp.exp` computes it."""
    scale, p = _exp_parts(x)
    out = scale + scale * p
    if x > _HIGHEST:
        out = np.inf
    if x < _LOWEST:
        out = 0.0
    return out


@numba.njit(cache=True, inline="always")
def _expm1(x):
    """``e^x − 1`` as :func:`risklab._exp.expm1` computes it."""
    scale, p = _exp_parts(x)
    out = scale * p + (scale - 1.0)
    if x > _HIGHEST:
        out = np.inf
    return out


#: NumPy's pairwise summation keeps eight partial sums: here the lanes of one LLVM vector.
_LANES = ir.VectorType(ir.DoubleType(), 8)


def _is_float_vector(x) -> bool:
    return (
        isinstance(x, types.Array) and x.dtype == types.float64 and x.ndim == 1 and x.layout == "C"
    )


def _accumulate_blocks(builder, arrays, lo, count):
    """For each array (data pointer), lane ``j`` of one vector sums ``x[lo + j], x[lo + 8 + j],
    …`` over ``count ≥ 1`` blocks of eight, in order, as NumPy's partial sums ``r[j]`` do."""

    def load(data, offset):
        pointer = builder.bitcast(builder.gep(data, [offset]), _LANES.as_pointer())
        return builder.load(pointer, align=8)

    totals = [cgutils.alloca_once_value(builder, load(data, lo)) for data in arrays]
    with cgutils.for_range(builder, builder.sub(count, count.type(1))) as loop:
        block = builder.add(loop.index, lo.type(1))  # blocks 1, 2, …, count − 1
        offset = builder.add(lo, builder.mul(block, lo.type(8)))
        for data, total in zip(arrays, totals, strict=True):
            builder.store(builder.fadd(builder.load(total), load(data, offset)), total)
    return [builder.load(total) for total in totals]


def _pair_up(builder, x, y, width):
    """``x0 + x1, x2 + x3, …, y0 + y1, …`` for ``width`` lanes of each of ``x`` and ``y``."""

    def lanes(which):
        mask = ir.Constant(ir.VectorType(ir.IntType(32), len(which)), which)
        return builder.shuffle_vector(x, y, mask)

    return builder.fadd(lanes(list(range(0, 2 * width, 2))), lanes(list(range(1, 2 * width, 2))))


@intrinsic
def _block_sums(typingctx, a, lo, n_blocks):
    """NumPy's eight partial sums of ``a[lo:lo + 8 · n_blocks]`` (``n_blocks ≥ 1``), combined as
    NumPy combines them.

    Lane ``j`` of one ``<8 x double>`` accumulates ``a[lo + j], a[lo + 8 + j], …`` in order, as
    NumPy's ``r[j]`` do, and the lanes are added in NumPy's tree, ``((r0 + r1) + (r2 + r3)) +
    ((r4 + r5) + (r6 + r7))``. Written as vector operations because LLVM does not vectorise the
    eight scalar accumulators of :func:`_pairwise_sum` by itself (it may not reorder the additions,
    and it cannot see that these lanes keep NumPy's order).
    """
    if not _is_float_vector(a):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        (lanes,) = _accumulate_blocks(builder, [data], args[1], args[2])
        pairs = _pair_up(builder, lanes, lanes, 4)  # r0 + r1, r2 + r3, r4 + r5, r6 + r7
        quads = _pair_up(builder, pairs, pairs, 2)  # (r0 + r1) + (r2 + r3), (r4 + r5) + (r6 + r7)
        total = _pair_up(builder, quads, quads, 1)
        return builder.extract_element(total, ir.IntType(32)(0))

    return types.float64(a, types.intp, types.intp), codegen


@intrinsic
def _four_block_sums(typingctx, a, b, c, d, n_blocks):
    """NumPy's pairwise sums of ``x[:8 · n_blocks]`` for four arrays ``x`` at once
    (``n_blocks ≥ 1``).

    As :func:`_block_sums` per array, but the four horizontal steps are shared: after the
    accumulation, the lanes of the four vectors ``A, B, C, D`` are paired across vectors, so that
    three vector additions give ``(r0 + r1)``, ``(r2 + r3)``, …, then ``(r0 + r1) + (r2 + r3)`` and
    ``(r4 + r5) + (r6 + r7)``, then the four sums, each added in NumPy's tree.
    """
    if not all(_is_float_vector(x) for x in (a, b, c, d)):
        return None

    def codegen(context, builder, signature, args):
        data = [
            context.make_array(kind)(context, builder, value).data
            for kind, value in zip(signature.args[:4], args[:4], strict=True)
        ]
        count = args[4]
        a8, b8, c8, d8 = _accumulate_blocks(builder, data, count.type(0), count)
        ab = _pair_up(builder, a8, b8, 8)  # A01 A23 A45 A67 B01 B23 B45 B67
        cd = _pair_up(builder, c8, d8, 8)
        quads = _pair_up(builder, ab, cd, 8)  # A0123 A4567 B0123 B4567 C0123 … D4567
        sums = _pair_up(builder, quads, quads, 4)  # A B C D
        values = [builder.extract_element(sums, ir.IntType(32)(j)) for j in range(4)]
        return context.make_tuple(builder, signature.return_type, values)

    return types.UniTuple(types.float64, 4)(a, b, c, d, types.intp), codegen


@numba.njit(cache=True, inline="always")
def _pairwise_sum(a, lo, n):
    """``a[lo:lo + n].sum()`` exactly as NumPy computes it, for ``n ≤ 128`` (8 partial sums)."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    i = n - n % 8
    res = _block_sums(a, lo, i // 8)
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True, inline="always")
def _four_pairwise_sums(a, b, c, d, n):
    """``a[:n].sum()``, …, ``d[:n].sum()`` exactly as NumPy computes them, for ``n ≤ 128``."""
    if n < 8:
        return (
            _pairwise_sum(a, 0, n),
            _pairwise_sum(b, 0, n),
            _pairwise_sum(c, 0, n),
            _pairwise_sum(d, 0, n),
        )
    i = n - n % 8
    sum_a, sum_b, sum_c, sum_d = _four_block_sums(a, b, c, d, i // 8)
    while i < n:
        sum_a += a[i]
        sum_b += b[i]
        sum_c += c[i]
        sum_d += d[i]
        i += 1
    return sum_a, sum_b, sum_c, sum_d


@numba.njit(cache=True, inline="always")
def _draw_cells(s, logit_prevalence, other_rates, odds, pi0, keep, seen, rates):
    """Lever-independent cell quantities of draw ``s``: e^{−logit π}, π, Π_c (1 − d_c), Σ_c d_c."""
    k_len, t_len = pi0.shape
    c2 = other_rates.shape[3]
    for k in range(k_len):
        for t in range(t_len):
            e = _exp_(-logit_prevalence[s, k, t])
            odds[k, t] = e
            pi0[k, t] = 1.0 / (1.0 + e)
            p = 1.0
            for c in range(c2):
                rates[c] = other_rates[s, k, t, c]
                p *= 1.0 - rates[c]
            keep[k, t] = p
            seen[k, t] = _pairwise_sum(rates, 0, c2)


@numba.njit(cache=True, inline="always")
def _saturation_rows(theta_s, u_category, u_efficiency, u_decay, u_intensity, u_floor, sat, rr):
    """``s(θ' r') = −expm1(−θ' r')`` and ``r'`` of each distinct row, for efficiencies ``θ_s``."""
    u_len, t_len = sat.shape
    for u in range(u_len):
        theta_e = theta_s[u_category[u]] * u_efficiency[u]
        floor_c = u_floor[u]
        for t in range(t_len):
            theta = theta_e * u_decay[u, t]
            r = u_intensity[u, t]
            if floor_c == floor_c:  # min saturation: r' = max(r, −log(1 − σ) / θ')
                r = _nan_max(r, floor_c / theta)
            rr[u, t] = r
            sat[u, t] = -_expm1(-(theta * r))


@numba.njit(cache=True, inline="always")
def _row_cells(divide, den, amp, sat, u, listings, row, pi_t, keep, seen, k, cells):
    """A row's cells, period by period: ``cells`` = (illegal, undetected, actioned, detected).

    Actioned is ``ill · ((d + Σ_c d_c) / den)``, or ``ill · (d + Σ_c d_c)`` when ``divide`` is
    False (the caller passes a constant, so each call compiles to one loop without a branch).
    """
    ill_t, und_t, act_t, det_t = cells
    for t in range(pi_t.shape[0]):
        d = _nan_min(amp * sat[u, t], MAX_RATE)
        m = listings[row, t]
        ill = m * pi_t[t]
        ill_t[t] = ill
        und_t[t] = ill * ((1.0 - d) * keep[k, t])
        found = d + seen[k, t]
        if divide:
            found = found / den
        act_t[t] = ill * found
        det_t[t] = m * d


@numba.njit(cache=True, parallel=True, error_model="numpy", nogil=True)
def run(
    logit_prevalence,  # (S, K, T)
    other_rates,  # (S, K, T, C2)
    amplitude,  # (S, K)
    efficiency,  # (S, K)
    fp_complement,  # (S, K): 1 − false-positive share
    enforcement,  # (S,) q (zeros without the component)
    after_share,  # (S,) A_s
    claimed,  # (K,)
    u_category,  # (U,) int64: the category of each distinct saturation row
    u_efficiency,  # (U,) efficiency factor e of each distinct saturation row
    u_decay,  # (U, T) (1 − δ)^t
    u_intensity,  # (U, T) intensity before the min-saturation floor
    u_floor,  # (U,) −log(1 − σ), NaN without the floor
    rid,  # (N, K) int64: distinct row of each scenario × category
    rid_runs,  # (N,) bool: the scenario's rows are rid[n, 0] + 0, 1, …, K − 1
    r_category,  # (R,) int64: the row's category
    r_uid,  # (R,) int64: the row's saturation row
    r_listings,  # (R, T) listings under the levers
    r_total,  # (R,) their sum
    r_hours_total,  # (R,) review hours when there is no floor
    r_floor,  # (R,) bool: minimum-saturation floor
    r_hidden_on,  # (R,) bool: the scenario sets the hidden-share lever (in any category)
    r_hidden_factor,  # (R,)
    r_hidden_add,  # (R,)
    r_prevalence_on,  # (R,) bool: odds or trend set for this category
    r_odds,  # (R, T): e^{−(log o + τ · position)} of the prevalence levers
    r_enforcement_on,  # (R,) bool
    r_enforcement_new,  # (R,)
    slots,  # (8,) int64: output slot of each outcome, −1 = not wanted
    out,  # (n_slots, N, S, K)
    n_chunks,  # number of blocks of draws run in parallel
):
    s_len, k_len, t_len = logit_prevalence.shape
    n_len, k_len = rid.shape
    r_len = r_category.shape[0]
    u_len = u_efficiency.shape[0]
    block = max(1, min(MAX_DRAW_BLOCK, VALUES_BYTES // (8 * OUTCOME_SLOTS * max(r_len, 1))))
    for chunk in numba.prange(n_chunks):
        _prefer_wide_vectors()
        odds = np.empty((k_len, t_len))
        pi0 = np.empty((k_len, t_len))
        keep = np.empty((k_len, t_len))
        seen = np.empty((k_len, t_len))
        sat = np.empty((u_len, t_len))
        rr = np.empty((u_len, t_len))
        rates = np.empty(other_rates.shape[3])
        # Outcomes of each distinct row, for a block of draws: written to ``out`` block by block,
        # as runs of block × K contiguous values rather than K at a time.
        values = np.empty((OUTCOME_SLOTS, block, r_len))
        # Per period: illegal, undetected, actioned, detected listings and review hours.
        pi_t = np.empty(t_len)
        ill_t = np.empty(t_len)
        und_t = np.empty(t_len)
        act_t = np.empty(t_len)
        det_t = np.empty(t_len)
        cells = (ill_t, und_t, act_t, det_t)
        hrs_t = np.empty(t_len)
        s_lo = chunk * s_len // n_chunks
        s_hi = (chunk + 1) * s_len // n_chunks
        for s in range(s_lo, s_hi):
            b = (s - s_lo) % block
            _draw_cells(s, logit_prevalence, other_rates, odds, pi0, keep, seen, rates)
            _saturation_rows(
                efficiency[s], u_category, u_efficiency, u_decay, u_intensity, u_floor, sat, rr
            )
            q = enforcement[s]
            a_s = after_share[s]
            for row in range(r_len):
                k = r_category[row]
                removed = 0.0
                if r_enforcement_on[row]:
                    removed = (r_enforcement_new[row] - q) * a_s / (1.0 - q * a_s)
                amp = amplitude[s, k]
                if r_hidden_on[row]:
                    hidden = 1.0 - _nan_min(amp, 1.0)
                    new = hidden * r_hidden_factor[row] + r_hidden_add[row]
                    new = _nan_min(_nan_max(new, 0.0), 1.0)
                    amp = amp * (1.0 - new) / (1.0 - hidden)
                u = r_uid[row]
                den = fp_complement[s, k]
                # π' = 1 / (1 + e^{−logit π'}); with the enforcement lever, π'' = π' (1 − S) /
                # (1 − π' S) = (1 − S) / (1 + e^{−logit π'} − S) (one division per cell).
                if r_enforcement_on[row]:
                    kept = 1.0 - removed
                    if r_prevalence_on[row]:
                        for t in range(t_len):
                            pi_t[t] = kept / ((1.0 + odds[k, t] * r_odds[row, t]) - removed)
                    else:
                        for t in range(t_len):
                            pi_t[t] = kept / ((1.0 + odds[k, t]) - removed)
                elif r_prevalence_on[row]:
                    for t in range(t_len):
                        pi_t[t] = 1.0 / (1.0 + odds[k, t] * r_odds[row, t])
                else:
                    for t in range(t_len):
                        pi_t[t] = pi0[k, t]
                # The division by the false-positive complement is chosen outside the loop over
                # periods (x / 1 is x): a constant ``divide`` compiles to a loop without it.
                if den != 1.0:
                    _row_cells(True, den, amp, sat, u, r_listings, row, pi_t, keep, seen, k, cells)
                else:
                    _row_cells(False, den, amp, sat, u, r_listings, row, pi_t, keep, seen, k, cells)
                if r_floor[row]:
                    for t in range(t_len):
                        hrs_t[t] = rr[u, t] * r_listings[row, t] / 1000.0
                tot = r_total[row]
                illegal, actioned, undetected, detected = _four_pairwise_sums(
                    ill_t, act_t, und_t, det_t, t_len
                )
                prevalence = illegal / tot
                share = actioned / tot
                hours = r_hours_total[row]
                if r_floor[row]:
                    hours = _pairwise_sum(hrs_t, 0, t_len)
                values[0, b, row] = prevalence
                values[1, b, row] = share
                values[2, b, row] = prevalence / share
                values[3, b, row] = prevalence / claimed[k]
                values[4, b, row] = illegal
                values[5, b, row] = undetected
                values[6, b, row] = detected / tot
                values[7, b, row] = hours
            if b == block - 1 or s == s_hi - 1:
                first = s - b
                for j in range(OUTCOME_SLOTS):
                    slot = slots[j]
                    if slot >= 0:
                        for n in range(n_len):
                            r0 = rid[n, 0]
                            if rid_runs[n]:  # rows r0, r0 + 1, …: contiguous copies
                                for d in range(b + 1):
                                    for k in range(k_len):
                                        out[slot, n, first + d, k] = values[j, d, r0 + k]
                            else:
                                for d in range(b + 1):
                                    for k in range(k_len):
                                        out[slot, n, first + d, k] = values[j, d, rid[n, k]]


# ---------------------------------------------------------------- levers resolved into arrays


def _lever_values(state: PosteriorState, levers: Levers) -> dict:
    """One scenario's lever-dependent (K, T) and (K,) quantities, as :func:`_cells_reference`.

    Same expressions and the same order of validation (so the same first error) as the reference.
    """
    cats = state.categories
    listings = state.listings * levers.per_category("listings_factor", cats)[:, None]
    share_of_period = listings / listings.sum(axis=1, keepdims=True)
    hours = (
        state.review_hours * levers.per_category("review_hours_factor", cats)[:, None]
        + levers.per_category("review_hours_add", cats)[:, None] * share_of_period
    )
    hours = np.maximum(hours, 0.0)
    intensity = np.maximum(hours / listings * 1000.0, INTENSITY_FLOOR)  # (K, T)
    decay = (1.0 - levers.efficiency_decay) ** np.arange(listings.shape[1])
    floor = None
    if levers.min_saturation is not None:  # saturation_intensity = floor / θ'
        floor = float(-np.log1p(-levers.min_saturation))
    factor = levers.per_category("hidden_share_factor", cats)
    add = levers.per_category("hidden_share_add", cats)
    odds = levers.per_category("prevalence_odds", cats)
    trend = levers.per_category("prevalence_trend", cats)
    if levers.enforcement is not None and not state.has_offenders:
        raise ValueError(
            "the enforcement lever needs the repeat-offender component (traders.csv and a "
            "[policy] in the submission)"
        )
    return {
        "listings": listings,
        "hours": hours,
        "intensity": intensity,
        "decay": decay,
        "floor": floor,
        "hidden_on": bool(np.any(factor != 1.0) or np.any(add != 0.0)),
        "hidden_factor": factor,
        "hidden_add": add,
        "prevalence_odds": odds,
        "prevalence_trend": trend,
    }


def _first_occurrences(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the 2-D float array ``keys``, numbered in order of first occurrence.

    Rows are equal when their bytes are (``-0.0`` and ``0.0`` differ, NaNs of the same bits are
    equal): equal rows give equal results, and a pair of rows wrongly told apart would only be
    computed twice. Returns the number of each row's distinct value, and the index of the first
    occurrence of each distinct value.
    """
    keys = np.ascontiguousarray(keys, dtype=float)
    as_bytes = keys.view(np.dtype((np.void, keys.itemsize * keys.shape[1]))).ravel()
    _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    number = np.empty(len(order), dtype=np.int64)
    number[order] = np.arange(len(order))
    return number[inverse.ravel()], first[order]


def _resolve(state: PosteriorState, levers_list: list[Levers]) -> dict[str, np.ndarray]:
    """Every scenario's levers as the kernel's arrays, computed as :func:`_cells_reference` does.

    The per-scenario (K, T) quantities (listings, hours, intensity, efficiency decay) use the
    reference's own NumPy expressions, so the kernel sees bit-identical inputs.
    """
    k_len, t_len = state.listings.shape
    n_len = len(levers_list)
    listings_all = np.empty((n_len, k_len, t_len))
    intensity_all = np.empty((n_len, k_len, t_len))
    decay_all = np.empty((n_len, t_len))
    total = np.empty((n_len, k_len))
    hours_total = np.empty((n_len, k_len))
    efficiency = np.empty(n_len)
    decay_rate = np.empty(n_len)
    floor = np.full(n_len, np.nan)
    has_floor = np.zeros(n_len, dtype=bool)
    hidden_on = np.zeros(n_len, dtype=bool)
    hidden_factor = np.ones((n_len, k_len))
    hidden_add = np.zeros((n_len, k_len))
    prevalence_on = np.zeros((n_len, k_len), dtype=bool)
    log_odds = np.zeros((n_len, k_len))
    trend = np.zeros((n_len, k_len))
    enforcement_on = np.zeros(n_len, dtype=bool)
    enforcement_new = np.zeros(n_len)
    for i, levers in enumerate(levers_list):
        try:
            v = _lever_values(state, levers)
        except ValueError as err:
            raise _LeverError(i) from err
        listings, hours = v["listings"], v["hours"]
        if v["floor"] is not None:
            has_floor[i], floor[i] = True, v["floor"]
        if v["hidden_on"]:
            hidden_on[i], hidden_factor[i], hidden_add[i] = (
                True,
                v["hidden_factor"],
                v["hidden_add"],
            )
        odds, tau = v["prevalence_odds"], v["prevalence_trend"]
        prevalence_on[i] = (odds != 1.0) | (tau != 0.0)  # else e^{−(log 1 + 0 · t)} = 1 exactly
        log_odds[i], trend[i] = np.log(odds), tau
        if levers.enforcement is not None:
            enforcement_on[i], enforcement_new[i] = True, levers.enforcement
        listings_all[i] = listings
        intensity_all[i] = v["intensity"]
        decay_all[i] = v["decay"]
        total[i] = listings.sum(axis=-1)
        hours_total[i] = hours.sum(axis=-1)
        efficiency[i] = levers.efficiency_factor
        decay_rate[i] = levers.efficiency_decay
    shape = (n_len, k_len)
    category = np.broadcast_to(np.arange(k_len, dtype=float), shape)
    # Distinct saturation rows: (efficiency factor, decay, minimum saturation, category, intensity).
    uid, u_first = _first_occurrences(
        np.concatenate(
            [
                np.stack(
                    [
                        np.broadcast_to(efficiency[:, None], shape),
                        np.broadcast_to(decay_rate[:, None], shape),
                        np.broadcast_to(floor[:, None], shape),
                        category,
                    ],
                    axis=-1,
                ),
                intensity_all,
            ],
            axis=-1,
        ).reshape(n_len * k_len, 4 + t_len)
    )
    uid = uid.reshape(shape)
    u_n, u_k = np.divmod(u_first, k_len)
    # Distinct scenario × category rows: a category no scenario lever touches is computed once.
    scalars = np.stack(
        [
            category,
            uid.astype(float),
            hours_total,
            np.broadcast_to(hidden_on[:, None], shape).astype(float),
            np.where(hidden_on[:, None], hidden_factor, 1.0),
            np.where(hidden_on[:, None], hidden_add, 0.0),
            prevalence_on.astype(float),
            np.where(prevalence_on, log_odds, 0.0),
            np.where(prevalence_on, trend, 0.0),
            np.broadcast_to(enforcement_on[:, None], shape).astype(float),
            np.broadcast_to(np.where(enforcement_on, enforcement_new, 0.0)[:, None], shape),
            *np.moveaxis(listings_all, -1, 0),
        ],
        axis=-1,
    )  # (N, K, 11 + T): what makes a scenario × category row distinct
    rid, r_first = _first_occurrences(scalars.reshape(n_len * k_len, 11 + t_len))
    rid = rid.reshape(shape)
    n_idx, k_idx = np.divmod(r_first, k_len)
    position = _period_position(t_len).astype(float)
    return {
        "u_category": u_k.astype(np.int64),
        "u_efficiency": efficiency[u_n],
        "u_decay": decay_all[u_n].reshape(len(u_first), t_len),
        "u_intensity": intensity_all[u_n, u_k].reshape(len(u_first), t_len),
        "u_floor": floor[u_n],
        "rid": rid,
        "rid_runs": np.all(rid == rid[:, :1] + np.arange(k_len), axis=1),
        "r_category": k_idx.astype(np.int64),
        "r_uid": uid[n_idx, k_idx],
        "r_listings": listings_all[n_idx, k_idx],
        "r_total": total[n_idx, k_idx],
        "r_hours_total": hours_total[n_idx, k_idx],
        "r_floor": has_floor[n_idx],
        "r_hidden_on": hidden_on[n_idx],
        "r_hidden_factor": hidden_factor[n_idx, k_idx],
        "r_hidden_add": hidden_add[n_idx, k_idx],
        "r_prevalence_on": prevalence_on[n_idx, k_idx],
        "r_odds": _exp.exp(-(log_odds[n_idx, k_idx, None] + trend[n_idx, k_idx, None] * position)),
        "r_enforcement_on": enforcement_on[n_idx],
        "r_enforcement_new": enforcement_new[n_idx],
    }


def _kernel_array(state: PosteriorState, name: str, shape: tuple[int, ...], values=None):
    """A state field as a writeable, C-contiguous float64 array (one compiled signature)."""
    arr = np.ascontiguousarray(getattr(state, name) if values is None else values, dtype=float)
    if not arr.flags.writeable:
        arr = arr.copy()
    if arr.shape != shape:
        raise ValueError(f"PosteriorState.{name}: expected shape {shape}, got {arr.shape}")
    return arr


def _state_arrays(state: PosteriorState) -> dict[str, np.ndarray]:
    """The state's lever-independent arrays, checked and laid out for the kernel."""
    s_len, (k_len, t_len) = state.n_draws, state.listings.shape
    other = np.asarray(state.other_rates)
    c2 = other.shape[-1] if other.ndim == 4 else -1
    fp = 1.0 - np.asarray(state.false_positive_share, dtype=float)
    offenders = {}
    for key, name in (("enforcement", "enforcement"), ("after_share", "after_threshold_share")):
        if getattr(state, name) is None:
            offenders[key] = np.zeros(s_len)
        else:
            offenders[key] = _kernel_array(state, name, (s_len,))
    return {
        "logit_prevalence": _kernel_array(state, "logit_prevalence", (s_len, k_len, t_len)),
        "other_rates": _kernel_array(state, "other_rates", (s_len, k_len, t_len, c2), other),
        "amplitude": _kernel_array(state, "amplitude", (s_len, k_len)),
        "efficiency": _kernel_array(state, "efficiency", (s_len, k_len)),
        "fp_complement": _kernel_array(state, "false_positive_share", (s_len, k_len), fp),
        **offenders,
        "claimed": _kernel_array(state, "claimed_prevalence", (k_len,)),
    }


def _chunks(n_draws: int) -> int:
    """Blocks of draws for the kernel's parallel loop (a few per thread, for load balance)."""
    return max(1, min(n_draws, 4 * numba.get_num_threads()))


def evaluate_batch(
    state: PosteriorState, levers_list: list[Levers], outcomes: list[str]
) -> dict[str, np.ndarray]:
    """``outcomes`` of every scenario, each of shape (N, S, K); see ``evaluate_many``."""
    s_len, k_len = state.n_draws, len(state.categories)
    if state.listings.shape[1] > PAIRWISE_BLOCK or len(state.channels) > PAIRWISE_BLOCK:
        return _evaluate_with_reference(state, levers_list, outcomes)
    batch = _resolve(state, levers_list)
    arrays = _state_arrays(state)
    slots = np.array([outcomes.index(o) if o in outcomes else -1 for o in OUTCOMES], dtype=np.int64)
    out = np.empty((len(outcomes), len(levers_list), s_len, k_len))
    if len(levers_list) and s_len:
        run(**arrays, **batch, slots=slots, out=out, n_chunks=_chunks(s_len))
    return dict(zip(outcomes, out, strict=True))
