"""The model's levers, evaluated on posterior draws without refitting.

Every analysis that asks "what if" — stress scenarios (:mod:`risklab.scenarios`), the attribution
of underestimation, Art. 35 mitigation (:mod:`risklab.mitigation`) and audit design — moves one or
more of the fitted model's levers and recomputes, draw by draw, what the platform would detect and
how much illegal content would remain. This module is that computation, once, in NumPy:

* :class:`PosteriorState` holds, per posterior draw, the quantities the levers act on (the
  proactive detection amplitude and efficiency of the capacity curve, logit prevalence, the other
  channels' rates, the false-positive share, enforcement) and the submission's data (listings,
  review hours, claims, scale). It is built from a fitted :class:`~risklab.PlatformRiskModel`
  (:meth:`PosteriorState.from_fitted`) or directly from arrays (for known-truth checks).
* :class:`Levers` is one intervention: review hours (× and +, per category), listing volume,
  hidden share (evasion), detection efficiency (× and a per-period decay: adversarial
  adaptation), enforcement probability, prevalence odds and trend, and a minimum review
  saturation (the "adequately resourced" counterfactual).
* :func:`evaluate` applies levers to every draw and returns an :class:`xarray.Dataset` of
  per-category outcomes over ``(chain, draw, category)``; :func:`evaluate_arrays` returns the
  same as plain arrays, and :func:`evaluate_many` evaluates many interventions at once.

The computation runs in a compiled kernel (:mod:`risklab._counterfactual_kernel`, numba,
parallel over draws, compiled once and cached on disk) that reproduces the NumPy reference
:func:`_evaluate_arrays_reference` kept below bit for bit (same operations, same order, NumPy's
pairwise sums, and risklab's own ``exp``/``expm1`` of :mod:`risklab._exp`, which vectorise in the
kernel and give the same numbers on every machine); without numba the reference is used.

The equations (``docs/scenarios.md`` has the derivation). With ``s(x) = 1 − e^{−x}``, the fitted
capacity curve is ``d_pro[k, t] = A[k] · s(θ[k] r[k, t])`` with amplitude ``A[k] = d̄[k] /
s(θ[k] r̄[k])`` (so the hidden share is ``h = 1 − min(1, A)``). Under levers:

* review hours ``H' = f_k H + a_k · N'[k, t] / Σ_t N'[k, t]`` (added hours spread in proportion to
  listings) and listings ``N' = g_k N`` give intensity ``r' = 1000 H' / N'``; with a minimum
  saturation σ, ``r' ← max(r', −log(1 − σ) / θ')``;
* efficiency ``θ'[k, t] = e · θ[k] · (1 − δ)^t`` (``t`` = 0, 1, … over the submission's periods);
* hidden share ``h' = clip(c_k h + b_k, 0, 1)`` rescales the amplitude, ``A' = A (1 − h')/(1 − h)``;
* ``d_pro' = min(A' s(θ' r'), 1 − 10⁻⁹)``; the other channels keep their fitted rates (users and
  flaggers report what they see, whatever the platform's review effort);
* ``logit π' = logit π + log o_k + τ_k · position[t]``; with an enforcement lever ``q'`` (needs the
  repeat-offender component) the illegal listings a stricter or laxer suspension removes,
  ``S = (q' − q) A_s / (1 − q A_s)`` (``A_s``: share of a never-suspended offender population's
  listings posted after the strike threshold), give ``π'' = π' (1 − S) / (1 − π' S)``.

Outputs per category (sums and listings-weighted means over periods, with the lever's listings):
``prevalence``; ``reported_share`` — the detected share the platform would report, Σ over channels
of the actioned detections per listing, ``π Σ_c d_c / (1 − φ)`` (how platforms compute their
claims); ``underestimation`` = prevalence / reported share; ``underestimation_vs_claim`` =
prevalence / the submission's claimed prevalence; ``illegal_listings``; ``undetected_listings``
(illegal listings no channel detects, ``N π Π_c (1 − d_c)``); ``detection_rate`` (proactive,
listings-weighted) and ``review_hours``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import xarray as xr

from risklab import _exp
from risklab.dims import CATEGORY, PERIOD, SAMPLE_DIMS

__all__ = [
    "OUTCOMES",
    "Levers",
    "PosteriorState",
    "evaluate",
    "evaluate_arrays",
    "evaluate_many",
    "saturation_intensity",
]

#: Largest detection probability (as in the capacity component).
MAX_RATE = 1.0 - 1e-9
#: Review-intensity floor (hours per 1000 listings), as in the capacity component.
INTENSITY_FLOOR = 1e-6

#: Per-category outcomes of :func:`evaluate`, in order.
OUTCOMES = (
    "prevalence",
    "reported_share",
    "underestimation",
    "underestimation_vs_claim",
    "illegal_listings",
    "undetected_listings",
    "detection_rate",
    "review_hours",
)

PerCategory = float | Mapping[str, float] | np.ndarray


def _saturation(x):
    return -_exp.expm1(-x)


def saturation_intensity(efficiency, saturation: float):
    """Review intensity at which proactive detection reaches ``saturation`` of its reach.

    ``s(θ r) = σ`` ⇔ ``r = −log(1 − σ) / θ`` (hours per 1000 listings).
    """
    if not 0.0 < saturation < 1.0:
        raise ValueError(f"saturation must be in (0, 1), got {saturation!r}")
    return -np.log1p(-saturation) / np.asarray(efficiency, dtype=float)


@dataclass(frozen=True)
class Levers:
    """One intervention on the model's levers; every default leaves the fitted world unchanged.

    Per-category arguments take a number (all categories) or a mapping category → number
    (unnamed categories keep the neutral value).

    Parameters
    ----------
    review_hours_factor : float or mapping, default 1
        Multiplies review hours (``f_k``).
    review_hours_add : float or mapping, default 0
        Extra review hours over the whole submission period per category (``a_k``), spread over
        periods in proportion to listings; negative values remove hours (never below zero).
    listings_factor : float or mapping, default 1
        Multiplies listing volume (``g_k``); review hours stay as they are, so intensity falls.
    hidden_share_factor : float or mapping, default 1
        Multiplies the hidden share (``c_k``); 0.5 halves evasion.
    hidden_share_add : float or mapping, default 0
        Adds to the hidden share (``b_k``), after the factor; the result is clipped to [0, 1].
    efficiency_factor : float, default 1
        Multiplies review efficiency θ (``e``); below one models adversarial adaptation.
    efficiency_decay : float, default 0
        Per-period relative decay δ of θ, from the first period (``θ (1 − δ)^t``).
    enforcement : float, optional
        Set the probability that a trader past the strike threshold is suspended (needs the
        repeat-offender component in the fit).
    prevalence_odds : float or mapping, default 1
        Multiplies the odds of prevalence (``o_k``).
    prevalence_trend : float or mapping, default 0
        Adds to the logit-prevalence trend over the whole submission period (``τ_k``).
    min_saturation : float, optional
        Raise review intensity where needed so that proactive detection reaches at least this
        share of its reach (``s(θ' r') ≥ σ``): the "adequately resourced" counterfactual.
    """

    review_hours_factor: PerCategory = 1.0
    review_hours_add: PerCategory = 0.0
    listings_factor: PerCategory = 1.0
    hidden_share_factor: PerCategory = 1.0
    hidden_share_add: PerCategory = 0.0
    efficiency_factor: float = 1.0
    efficiency_decay: float = 0.0
    enforcement: float | None = None
    prevalence_odds: PerCategory = 1.0
    prevalence_trend: PerCategory = 0.0
    min_saturation: float | None = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.efficiency_factor) or self.efficiency_factor <= 0:
            raise ValueError(f"efficiency_factor must be positive, got {self.efficiency_factor}")
        if not 0.0 <= self.efficiency_decay < 1.0:
            raise ValueError(f"efficiency_decay must be in [0, 1), got {self.efficiency_decay}")
        if self.enforcement is not None and not 0.0 <= self.enforcement <= 1.0:
            raise ValueError(f"enforcement must be in [0, 1], got {self.enforcement}")
        if self.min_saturation is not None and not 0.0 < self.min_saturation < 1.0:
            raise ValueError(f"min_saturation must be in (0, 1), got {self.min_saturation}")

    def is_neutral(self) -> bool:
        """Whether these levers leave every quantity as fitted."""
        return self == Levers()

    def per_category(self, name: str, categories: list[str]) -> np.ndarray:
        """The lever ``name`` as an array over ``categories`` (neutral where unnamed)."""
        value = getattr(self, name)
        if isinstance(value, int | float):  # the common case, checked without NumPy
            _check_lever(name, [float(value)])
            return np.full(len(categories), float(value))
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(categories))
            if unknown:
                raise ValueError(f"{name}: unknown categories {unknown}; known: {categories}")
            neutral = _NEUTRAL_LEVERS[name]
            out = np.array([float(value.get(c, neutral)) for c in categories])
        else:
            out = np.broadcast_to(np.asarray(value, dtype=float), (len(categories),)).copy()
        _check_lever(name, out.tolist())
        return out


def _check_lever(name: str, values: list[float]) -> None:
    """Raise ``ValueError`` if a per-category lever's ``values`` are out of its domain."""
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be finite")
    if name in ("review_hours_factor", "hidden_share_factor") and min(values, default=0) < 0:
        raise ValueError(f"{name} must be non-negative")
    if name in ("listings_factor", "prevalence_odds") and min(values, default=1) <= 0:
        raise ValueError(f"{name} must be positive")


#: Each lever's neutral value (its default).
_NEUTRAL_LEVERS = {f.name: f.default for f in fields(Levers)}


@dataclass
class PosteriorState:
    """The fitted quantities the levers act on, per posterior draw (``S`` = chains × draws).

    Attributes
    ----------
    categories, periods, channels : list of str
        Labels; ``channels[0]`` is ``"proactive"``.
    listings, review_hours : numpy.ndarray, shape (K, T)
        The submission's listings and review hours.
    claimed_prevalence : numpy.ndarray, shape (K,)
    thresholds : numpy.ndarray
        Cut points of the platform's scale (band ``i``: ``t_{i-1} ≤ share < t_i``).
    labels : list of str
        Band labels.
    amplitude : numpy.ndarray, shape (S, K)
        ``A = d̄ / s(θ r̄)``: proactive detection with unlimited review (may exceed one).
    efficiency : numpy.ndarray, shape (S, K)
        Review efficiency θ[k] (an array of shape (S,) is one θ for every category).
    logit_prevalence : numpy.ndarray, shape (S, K, T)
    other_rates : numpy.ndarray, shape (S, K, T, C - 1)
        Detection rates of the channels other than proactive.
    false_positive_share : numpy.ndarray, shape (S, K)
        Zero without appeals data.
    enforcement, after_threshold_share : numpy.ndarray, shape (S,), optional
        ``q`` and ``A_s`` of the repeat-offender component (``None`` without it).
    claimed_enforcement : float, optional
    sample_shape : tuple of int
        ``(chains, draws)`` of the draws, to label outputs.
    """

    categories: list[str]
    periods: list[str]
    channels: list[str]
    listings: np.ndarray
    review_hours: np.ndarray
    claimed_prevalence: np.ndarray
    thresholds: np.ndarray
    labels: list[str]
    amplitude: np.ndarray
    efficiency: np.ndarray
    logit_prevalence: np.ndarray
    other_rates: np.ndarray
    false_positive_share: np.ndarray
    enforcement: np.ndarray | None = None
    after_threshold_share: np.ndarray | None = None
    claimed_enforcement: float | None = None
    sample_shape: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        efficiency = np.asarray(self.efficiency, dtype=float)
        if efficiency.ndim == 1:  # one θ for every category
            efficiency = np.repeat(efficiency[:, None], len(self.categories), axis=1)
        self.efficiency = efficiency
        if not self.sample_shape:
            self.sample_shape = (1, int(self.efficiency.shape[0]))

    @property
    def n_draws(self) -> int:
        """Number of posterior draws ``S``."""
        return int(self.efficiency.shape[0])

    @property
    def has_offenders(self) -> bool:
        """Whether the enforcement lever is available."""
        return self.enforcement is not None

    @property
    def hidden_share(self) -> np.ndarray:
        """``h = 1 − min(1, A)``, shape (S, K)."""
        return 1.0 - np.minimum(self.amplitude, 1.0)

    @property
    def intensity(self) -> np.ndarray:
        """Review intensity (hours per 1000 listings), shape (K, T)."""
        return np.maximum(self.review_hours / self.listings * 1000.0, INTENSITY_FLOOR)

    @classmethod
    def from_fitted(cls, fitted) -> PosteriorState:
        """Collect the state from a fitted :class:`~risklab.PlatformRiskModel`."""
        posterior = fitted.posterior
        submission = fitted.submission
        data = submission.data
        categories = [str(c) for c in data[CATEGORY].values]
        channels = [str(c) for c in data["channel"].values]
        sample_shape = tuple(int(posterior.sizes[d]) for d in SAMPLE_DIMS)

        def flat(name: str, dims: tuple[str, ...] = ()) -> np.ndarray:
            da = posterior[name].transpose(*SAMPLE_DIMS, *dims)
            return np.asarray(da.values, dtype=float).reshape(-1, *da.shape[2:])

        listings = data["listings"].transpose(CATEGORY, PERIOD).values.astype(float)
        hours = data["review_hours"].transpose(CATEGORY, PERIOD).values.astype(float)
        intensity = np.maximum(hours / listings * 1000.0, INTENSITY_FLOOR)
        efficiency = flat("efficiency", (CATEGORY,))
        level = flat("detection_level", (CATEGORY,))
        amplitude = level / _saturation(efficiency * intensity.mean(axis=1)[None, :])
        prevalence = flat("prevalence", (CATEGORY, PERIOD))
        logit_prevalence = np.log(prevalence) - np.log1p(-prevalence)
        d_pro = flat("detection_rate", (CATEGORY, PERIOD))
        secondary = [c for c in channels if c != "proactive"]
        if secondary:
            ratio = flat("channel_ratio", ("secondary_channel", CATEGORY))  # (S, C2, K)
            rate_k = _saturation(ratio * d_pro.mean(axis=2)[:, None, :])
            other = np.broadcast_to(
                np.moveaxis(rate_k, 1, 2)[:, :, None, :],
                (*d_pro.shape, len(secondary)),
            ).copy()
        else:
            other = np.zeros((*d_pro.shape, 0))
        if "false_positive_share" in posterior:
            fp = flat("false_positive_share", (CATEGORY,))
        else:
            fp = np.zeros_like(amplitude)
        enforcement = after = claimed_q = None
        if "enforcement" in posterior and "listings_after_threshold_share" in posterior:
            enforcement = flat("enforcement")
            after = flat("listings_after_threshold_share")
            claimed_q = float(submission.policy.claimed_enforcement)
        return cls(
            categories=categories,
            periods=[str(p) for p in data[PERIOD].values],
            channels=["proactive", *secondary],
            listings=listings,
            review_hours=hours,
            claimed_prevalence=data["claimed_prevalence"].values.astype(float),
            thresholds=np.asarray(submission.scale.thresholds, dtype=float),
            labels=list(submission.scale.labels),
            amplitude=amplitude,
            efficiency=efficiency,
            logit_prevalence=logit_prevalence,
            other_rates=other,
            false_positive_share=fp,
            enforcement=enforcement,
            after_threshold_share=after,
            claimed_enforcement=claimed_q,
            sample_shape=sample_shape,
        )

    def band_index(self, share: np.ndarray) -> np.ndarray:
        """Band of each share on the platform's scale (index into :attr:`labels`)."""
        return np.searchsorted(self.thresholds, share, side="right")


def _cells_reference(state: PosteriorState, levers: Levers) -> dict[str, np.ndarray]:
    """Cell-level quantities under ``levers``: arrays of shape (S, K, T)."""
    cats = state.categories
    k_len, t_len = state.listings.shape
    listings = state.listings * levers.per_category("listings_factor", cats)[:, None]
    share_of_period = listings / listings.sum(axis=1, keepdims=True)
    hours = (
        state.review_hours * levers.per_category("review_hours_factor", cats)[:, None]
        + levers.per_category("review_hours_add", cats)[:, None] * share_of_period
    )
    hours = np.maximum(hours, 0.0)
    intensity = np.maximum(hours / listings * 1000.0, INTENSITY_FLOOR)  # (K, T)
    decay = (1.0 - levers.efficiency_decay) ** np.arange(t_len)
    theta = state.efficiency[:, :, None] * levers.efficiency_factor * decay[None, None, :]
    intensity = np.broadcast_to(intensity, (state.n_draws, k_len, t_len))
    if levers.min_saturation is not None:
        floor = saturation_intensity(theta, levers.min_saturation)  # (S, K, T)
        intensity = np.maximum(intensity, floor)
        hours = intensity * listings / 1000.0  # (S, K, T)
    amplitude = state.amplitude
    factor = levers.per_category("hidden_share_factor", cats)
    add = levers.per_category("hidden_share_add", cats)
    if np.any(factor != 1.0) or np.any(add != 0.0):
        hidden = state.hidden_share
        new_hidden = np.clip(hidden * factor + add, 0.0, 1.0)
        amplitude = amplitude * (1.0 - new_hidden) / (1.0 - hidden)
    d_pro = np.minimum(amplitude[:, :, None] * _saturation(theta * intensity), MAX_RATE)
    position = _period_position(t_len)
    # logit π' = logit π + log o + τ · position, as odds: e^{−logit π'} = e^{−logit π} · e^{−(…)}
    # (the levers' factor is per category and period, the same in every draw).
    lever_odds = _exp.exp(
        -(
            np.log(levers.per_category("prevalence_odds", cats))[:, None]
            + levers.per_category("prevalence_trend", cats)[:, None] * position[None, :]
        )
    )
    inverse = 1.0 + _exp.exp(-state.logit_prevalence) * lever_odds[None]  # 1 / π'
    if levers.enforcement is not None:
        if not state.has_offenders:
            raise ValueError(
                "the enforcement lever needs the repeat-offender component (traders.csv and a "
                "[policy] in the submission)"
            )
        # π'' = π' (1 − S) / (1 − π' S), written with one division: (1 − S) / (1/π' − S).
        q, a_s = state.enforcement, state.after_threshold_share
        removed = ((levers.enforcement - q) * a_s / (1.0 - q * a_s))[:, None, None]
        prevalence = (1.0 - removed) / (inverse - removed)
    else:
        prevalence = 1.0 / inverse
    return {
        "listings": np.broadcast_to(listings, prevalence.shape),
        "hours": np.broadcast_to(hours, prevalence.shape),
        "prevalence": prevalence,
        "d_pro": d_pro,
    }


def _period_position(n_periods: int) -> np.ndarray:
    if n_periods == 1:
        return np.zeros(1)
    return np.arange(n_periods) / (n_periods - 1) - 0.5


def _evaluate_arrays_reference(state: PosteriorState, levers: Levers) -> dict[str, np.ndarray]:
    """The NumPy reference of :func:`evaluate_arrays` (the equations, vectorised; for tests)."""
    cells = _cells_reference(state, levers)
    listings, prevalence, d_pro = cells["listings"], cells["prevalence"], cells["d_pro"]
    other = state.other_rates
    illegal = listings * prevalence
    missed = (1.0 - d_pro) * np.prod(1.0 - other, axis=-1)
    actioned = (d_pro + other.sum(axis=-1)) / (1.0 - state.false_positive_share[:, :, None])
    total_listings = listings.sum(axis=-1)
    prevalence_k = illegal.sum(axis=-1) / total_listings
    reported = (illegal * actioned).sum(axis=-1) / total_listings
    return {
        "prevalence": prevalence_k,
        "reported_share": reported,
        "underestimation": prevalence_k / reported,
        "underestimation_vs_claim": prevalence_k / state.claimed_prevalence[None, :],
        "illegal_listings": illegal.sum(axis=-1),
        "undetected_listings": (illegal * missed).sum(axis=-1),
        "detection_rate": (listings * d_pro).sum(axis=-1) / total_listings,
        "review_hours": cells["hours"].sum(axis=-1),
    }


class _LeverError(Exception):
    """A scenario's levers do not fit the state (``__cause__`` holds the ValueError)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _kernel():
    """The compiled batch evaluation, or ``None`` when numba is unavailable."""
    try:
        from risklab import _counterfactual_kernel
    except ImportError:  # pragma: no cover - numba is a dependency; keep the NumPy path usable
        return None
    return _counterfactual_kernel.evaluate_batch


def evaluate_many(
    state: PosteriorState,
    levers_list: Sequence[Levers | None],
    *,
    outcomes: Sequence[str] = OUTCOMES,
) -> dict[str, np.ndarray]:
    """Outcomes of many interventions on every posterior draw, in one compiled pass.

    Identical (bit for bit) to ``[evaluate_arrays(state, lv) for lv in levers_list]`` stacked on
    a leading scenario axis, but faster for many scenarios: the levers are resolved once, the
    draws are evaluated in parallel, the lever-independent cell quantities once per draw, and the
    proactive saturation once per distinct (efficiency levers, category, intensity) among the
    scenarios. For very many scenarios, call it on chunks of ``levers_list`` and summarise each
    chunk, or ask for a subset of ``outcomes``. Bands: ``state.band_index(out["prevalence"])``.

    Parameters
    ----------
    state : PosteriorState
        From :meth:`PosteriorState.from_fitted` (or built from arrays).
    levers_list : sequence of Levers or None
        The interventions (``None`` = the fitted world).
    outcomes : sequence of str, default :data:`OUTCOMES`
        The outcomes to return (a subset saves memory: each is ``N × S × K`` float64, e.g.
        320 MB for 1000 scenarios × 4000 draws × 10 categories).

    Returns
    -------
    dict of str to numpy.ndarray
        Each requested outcome as an array of shape ``(N, S, K)`` (scenario, draw, category).

    Raises
    ------
    ValueError
        If an outcome is unknown, or a scenario's levers do not fit the state (the message names
        ``levers_list[i]``).
    """
    outcomes = list(outcomes)
    unknown = sorted(set(outcomes) - set(OUTCOMES))
    if unknown:
        raise ValueError(f"outcomes: unknown {unknown}; known: {list(OUTCOMES)}")
    levers_list = [lv or Levers() for lv in levers_list]
    try:
        return _evaluate_many(state, levers_list, outcomes)
    except _LeverError as err:
        raise ValueError(f"levers_list[{err.index}]: {err.__cause__}") from err.__cause__


def _evaluate_many(
    state: PosteriorState, levers_list: list[Levers], outcomes: list[str]
) -> dict[str, np.ndarray]:
    """:func:`evaluate_many` on resolved arguments; lever errors raise :class:`_LeverError`."""
    kernel = _kernel()
    if kernel is None:  # pragma: no cover
        return _evaluate_with_reference(state, levers_list, outcomes)
    return kernel(state, levers_list, outcomes)


def _evaluate_with_reference(
    state: PosteriorState, levers_list: list[Levers], outcomes: list[str]
) -> dict[str, np.ndarray]:
    """The NumPy reference, one scenario at a time (slow; for states the kernel does not take)."""
    out = {o: np.empty((len(levers_list), state.n_draws, len(state.categories))) for o in outcomes}
    for i, levers in enumerate(levers_list):
        try:
            one = _evaluate_arrays_reference(state, levers)
        except ValueError as err:
            raise _LeverError(i) from err
        for o in outcomes:
            out[o][i] = one[o]
    return out


def evaluate_arrays(state: PosteriorState, levers: Levers) -> dict[str, np.ndarray]:
    """:func:`evaluate` without labels: each outcome as an array of shape (S, K)."""
    try:
        out = _evaluate_many(state, [levers], list(OUTCOMES))
    except _LeverError as err:
        raise err.__cause__ from None
    return {name: values[0] for name, values in out.items()}


def evaluate(state: PosteriorState, levers: Levers | None = None) -> xr.Dataset:
    """Outcomes per posterior draw and category under ``levers``.

    Parameters
    ----------
    state : PosteriorState
        From :meth:`PosteriorState.from_fitted` (or built from arrays).
    levers : Levers, optional
        The intervention; default none (the fitted world).

    Returns
    -------
    xarray.Dataset
        :data:`OUTCOMES` over ``(chain, draw, category)``, plus ``band`` and ``reported_band``
        (index into ``attrs["labels"]``) of the prevalence and of the reported share.
    """
    out = evaluate_arrays(state, levers or Levers())
    coords = {CATEGORY: state.categories}
    shape = (*state.sample_shape, len(state.categories))
    dims = (*SAMPLE_DIMS, CATEGORY)
    ds = xr.Dataset(
        {name: (dims, out[name].reshape(shape)) for name in OUTCOMES},
        coords=coords,
        attrs={"labels": list(state.labels)},
    )
    ds["band"] = (dims, state.band_index(out["prevalence"]).reshape(shape))
    ds["reported_band"] = (dims, state.band_index(out["reported_share"]).reshape(shape))
    return ds
