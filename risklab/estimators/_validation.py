"""Input checks and small posterior helpers shared by the standalone estimators.

Every check raises :class:`EstimatorInputError` (a :class:`ValueError`) with a message that names
the offending column, row or argument, so that a user can fix the input without reading the code.
The posterior helpers (intervals, MCMC diagnostics, running PyMC) keep the estimators consistent
with the library-wide convergence rules of DESIGN.md §6 (R-hat ≤ 1.01, bulk ESS ≥ 400, no
divergences).
"""

from __future__ import annotations

import math
import numbers
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Name of the column holding the number of units with each capture history.
COUNT_COLUMN = "count"

#: Largest number of lists accepted (the table has 2**L - 1 cells).
MAX_LISTS = 16


class EstimatorInputError(ValueError):
    """Invalid input to a standalone estimator (bad table, counts or arguments)."""


class EstimatorWarning(UserWarning):
    """A fit ran but its result needs care (non-existent MLE, poor convergence, truncation)."""


@dataclass(frozen=True)
class CaptureTable:
    """A validated capture–recapture table in canonical form.

    Attributes
    ----------
    lists : tuple of str
        List names, in the column order of the input table.
    histories : numpy.ndarray
        ``(2**L - 1, L)`` 0/1 matrix of every possible non-empty capture history; row ``c`` is the
        binary expansion of ``c + 1`` with the first list as the most significant bit.
    counts : numpy.ndarray
        Number of units observed with each history (zero for histories absent from the input).
    """

    lists: tuple[str, ...]
    histories: np.ndarray
    counts: np.ndarray

    @property
    def n_lists(self) -> int:
        """Number of lists."""
        return len(self.lists)

    @property
    def n_observed(self) -> int:
        """Number of distinct units observed on at least one list."""
        return int(self.counts.sum())

    def list_totals(self) -> np.ndarray:
        """Number of units on each list."""
        return self.histories.T @ self.counts

    def overlap(self, names: Iterable[str]) -> int:
        """Number of units captured by every list in ``names``."""
        idx = [self.lists.index(name) for name in names]
        on_all = self.histories[:, idx].all(axis=1)
        return int(self.counts[on_all].sum())

    def to_frame(self) -> pd.DataFrame:
        """The full table (all ``2**L - 1`` histories, zeros included) as a DataFrame."""
        frame = pd.DataFrame(self.histories, columns=list(self.lists))
        frame[COUNT_COLUMN] = self.counts
        return frame


def all_histories(n_lists: int) -> np.ndarray:
    """Every non-empty 0/1 history of ``n_lists`` lists, in canonical order."""
    codes = np.arange(1, 2**n_lists)
    shifts = np.arange(n_lists - 1, -1, -1)
    return ((codes[:, None] >> shifts[None, :]) & 1).astype(np.int64)


def _is_zero_one(values: pd.Series) -> np.ndarray:
    """Boolean mask of entries that are 0 or 1 (bools, ints or integral floats)."""
    numeric = pd.to_numeric(values, errors="coerce")
    arr = numeric.to_numpy(dtype=float, na_value=np.nan)
    return np.isin(arr, (0.0, 1.0))


def validate_capture_table(table: object) -> CaptureTable:
    """Check a capture–recapture table and return it in canonical form.

    Parameters
    ----------
    table : pandas.DataFrame
        One 0/1 column per list (the column names are the list names) and a ``count`` column, one
        row per observed capture history. Histories that are not listed have count 0.

    Returns
    -------
    CaptureTable
        The full table over all ``2**L - 1`` non-empty histories.

    Raises
    ------
    EstimatorInputError
        If the table is not a DataFrame, lacks ``count``, has fewer than two lists, has entries
        other than 0/1 in a list column, negative / non-integer / missing counts, an all-zero
        history, duplicated histories, no observed unit, or a list on which nobody was captured.
    """
    if not isinstance(table, pd.DataFrame):
        raise EstimatorInputError(
            "The capture–recapture table must be a pandas DataFrame with one 0/1 column per list "
            f"and a '{COUNT_COLUMN}' column; got {type(table).__name__}."
        )
    if COUNT_COLUMN not in table.columns:
        raise EstimatorInputError(
            f"The capture–recapture table has no '{COUNT_COLUMN}' column (columns: "
            f"{[str(c) for c in table.columns]}). Add one holding the number of units with each "
            "capture history."
        )
    list_cols = [c for c in table.columns if c != COUNT_COLUMN]
    names = [str(c) for c in list_cols]
    if len(list_cols) < 2:
        raise EstimatorInputError(
            f"Capture–recapture needs at least 2 lists; the table has {len(list_cols)} list "
            f"column(s) {names} besides '{COUNT_COLUMN}'."
        )
    if len(list_cols) > MAX_LISTS:
        raise EstimatorInputError(
            f"The table has {len(list_cols)} lists; at most {MAX_LISTS} are supported (the model "
            "has 2**L - 1 cells). Merge small lists first."
        )
    if len(set(names)) != len(names):
        raise EstimatorInputError(f"List column names must be unique; got {names}.")
    if len(table) == 0:
        raise EstimatorInputError("The capture–recapture table has no rows.")

    for col, name in zip(list_cols, names, strict=True):
        ok = _is_zero_one(table[col])
        if not ok.all():
            row = table.index[int(np.argmin(ok))]
            raise EstimatorInputError(
                f"List column '{name}' must contain only 0 or 1; row {row!r} has "
                f"{table.loc[row, col]!r}."
            )

    counts_raw = pd.to_numeric(table[COUNT_COLUMN], errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    for pos, value in enumerate(counts_raw):
        row = table.index[pos]
        if not np.isfinite(value):
            raise EstimatorInputError(
                f"Column '{COUNT_COLUMN}' must hold non-negative integers; row {row!r} has "
                f"{table[COUNT_COLUMN].iloc[pos]!r}."
            )
        if value < 0:
            raise EstimatorInputError(
                f"Column '{COUNT_COLUMN}' must be non-negative; row {row!r} has {value:g}."
            )
        if value != math.floor(value):
            raise EstimatorInputError(
                f"Column '{COUNT_COLUMN}' must hold whole numbers; row {row!r} has {value:g}."
            )

    hist = np.column_stack(
        [pd.to_numeric(table[c]).to_numpy(dtype=float).astype(np.int64) for c in list_cols]
    )
    empty = hist.sum(axis=1) == 0
    if empty.any():
        row = table.index[int(np.argmax(empty))]
        raise EstimatorInputError(
            f"Row {row!r} is the all-zero capture history (a unit on no list). Units never "
            "captured are what the estimator infers; remove that row."
        )
    L = len(list_cols)
    codes = hist @ (1 << np.arange(L - 1, -1, -1))
    uniq, n_seen = np.unique(codes, return_counts=True)
    if (n_seen > 1).any():
        dup_code = uniq[n_seen > 1][0]
        rows = [table.index[i] for i in np.flatnonzero(codes == dup_code)]
        pattern = dict(zip(names, hist[np.flatnonzero(codes == dup_code)[0]].tolist(), strict=True))
        raise EstimatorInputError(
            f"Capture history {pattern} appears in several rows {rows}; give each history once "
            "with its total count."
        )

    counts = np.zeros(2**L - 1, dtype=np.int64)
    counts[codes - 1] = counts_raw.astype(np.int64)
    if counts.sum() == 0:
        raise EstimatorInputError("All counts are zero: no unit was observed on any list.")
    histories = all_histories(L)
    totals = histories.T @ counts
    if (totals == 0).any():
        empty_lists = [names[j] for j in np.flatnonzero(totals == 0)]
        raise EstimatorInputError(
            f"List(s) {empty_lists} captured nobody, so their capture probability cannot be "
            "estimated; drop them from the table."
        )
    return CaptureTable(lists=tuple(names), histories=histories, counts=counts)


def normalise_interactions(
    interactions: Iterable[Sequence[str] | str] | None,
    lists: Sequence[str],
    *,
    hierarchical: bool = True,
) -> tuple[tuple[str, ...], ...]:
    """Check interaction terms and return them sorted, in list order, without duplicates.

    Parameters
    ----------
    interactions : iterable of tuple of str or str
        Terms such as ``("A", "B")`` or ``"A:B"``; each names at least two distinct lists.
    lists : sequence of str
        The table's list names.
    hierarchical : bool, default True
        Add every lower-order interaction contained in a requested term (``("A", "B", "C")`` brings
        ``A:B``, ``A:C`` and ``B:C``), as in hierarchical log-linear models.

    Returns
    -------
    tuple of tuple of str
        Terms ordered by size, then by list order.
    """
    if interactions is None:
        return ()
    if isinstance(interactions, str):
        interactions = [interactions]
    order = {name: i for i, name in enumerate(lists)}
    terms: set[tuple[str, ...]] = set()
    for raw in interactions:
        term = tuple(s.strip() for s in raw.split(":")) if isinstance(raw, str) else tuple(raw)
        term = tuple(str(t) for t in term)
        unknown = [t for t in term if t not in order]
        if unknown:
            raise EstimatorInputError(
                f"Interaction {raw!r} names unknown list(s) {unknown}; the lists are {list(lists)}."
            )
        if len(set(term)) != len(term):
            raise EstimatorInputError(f"Interaction {raw!r} repeats a list.")
        if len(term) < 2:
            raise EstimatorInputError(
                f"Interaction {raw!r} names a single list; main effects are always included, an "
                "interaction needs at least two lists."
            )
        if len(term) == len(lists):
            raise EstimatorInputError(
                f"Interaction {raw!r} involves all {len(lists)} lists. The highest-order "
                "interaction is never identifiable from capture–recapture data (it is confounded "
                "with the unobserved cell); the saturated model cannot estimate the population."
            )
        term = tuple(sorted(term, key=order.__getitem__))
        terms.add(term)
        if hierarchical:
            from itertools import combinations

            for size in range(2, len(term)):
                terms.update(combinations(term, size))
    return tuple(sorted(terms, key=lambda t: (len(t), [order[x] for x in t])))


def check_count(value: object, name: str, *, allow_zero: bool = True) -> int:
    """Return ``value`` as an int after checking it is a non-negative whole number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise EstimatorInputError(f"'{name}' must be a whole number; got {value!r}.")
    fvalue = float(value)
    if not math.isfinite(fvalue) or fvalue != math.floor(fvalue):
        raise EstimatorInputError(f"'{name}' must be a whole number; got {value!r}.")
    if fvalue < 0 or (fvalue == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise EstimatorInputError(f"'{name}' must be {bound}; got {value!r}.")
    return int(fvalue)


def check_successes(successes: object, trials: object, what: str) -> tuple[int, int]:
    """Check a (successes, trials) pair and return it as ints."""
    k = check_count(successes, f"{what} successes")
    n = check_count(trials, f"{what} trials", allow_zero=False)
    if k > n:
        raise EstimatorInputError(f"{what}: {k} successes out of {n} trials is impossible.")
    return k, n


def check_studies(studies: object, what: str) -> list[tuple[int, int]]:
    """Check a list of ``(correct, n)`` validation studies."""
    if (
        isinstance(studies, tuple)
        and len(studies) == 2
        and all(isinstance(v, numbers.Real) for v in studies)
    ):
        studies = [studies]
    if not isinstance(studies, Iterable) or isinstance(studies, str | bytes):
        raise EstimatorInputError(
            f"{what} must be a list of (correct, n) pairs, e.g. [(399, 401)]; got {studies!r}."
        )
    out: list[tuple[int, int]] = []
    for i, pair in enumerate(studies):
        try:
            correct, n = pair
        except (TypeError, ValueError):
            raise EstimatorInputError(
                f"{what}[{i}] must be a (correct, n) pair; got {pair!r}."
            ) from None
        out.append(check_successes(correct, n, f"{what}[{i}]"))
    if not out:
        raise EstimatorInputError(f"{what} is empty; give at least one (correct, n) study.")
    return out


def check_prob(prob: object) -> float:
    """Check an interval probability in (0, 1)."""
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real) or not 0 < float(prob) < 1:
        raise EstimatorInputError(f"'prob' must be strictly between 0 and 1; got {prob!r}.")
    return float(prob)


def resolve_seed(random_seed: int | None) -> int:
    """Return ``random_seed``, or a fresh seed (to be recorded) when it is None."""
    if random_seed is None:
        return secrets.randbits(32)
    if isinstance(random_seed, bool) or not isinstance(random_seed, numbers.Integral):
        raise EstimatorInputError(f"'random_seed' must be an int or None; got {random_seed!r}.")
    if random_seed < 0:
        raise EstimatorInputError(f"'random_seed' must be non-negative; got {random_seed!r}.")
    return int(random_seed)


# ---------------------------------------------------------------------------------------------
# posterior helpers

#: Convergence thresholds of DESIGN.md §6.
RHAT_MAX = 1.01
ESS_MIN = 400.0

SAMPLERS = ("nutpie", "pymc")
INTERVALS = ("eti", "hdi")


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise EstimatorInputError(f"'{name}' must be one of {list(choices)}; got {value!r}.")
    return str(value)


def check_mcmc_size(draws: object, tune: object, chains: object) -> tuple[int, int, int]:
    """Check the MCMC size arguments."""
    d = check_count(draws, "draws", allow_zero=False)
    t = check_count(tune, "tune")
    c = check_count(chains, "chains", allow_zero=False)
    return d, t, c


def posterior_interval(draws: np.ndarray, prob: float, kind: str = "eti") -> tuple[float, float]:
    """Equal-tailed (``"eti"``) or shortest (``"hdi"``) interval of 1-D draws at ``prob``."""
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    if kind == "eti":
        lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
        return float(lo), float(hi)
    n = len(x)
    k = max(int(np.ceil(prob * n)), 1)
    if k >= n:
        return float(x[0]), float(x[-1])
    widths = x[k:] - x[: n - k]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k])


def chain_diagnostics(draws: np.ndarray) -> dict[str, float]:
    """R-hat and bulk/tail ESS of a ``(chain, draw)`` array (NaN where undefined)."""
    import arviz as az

    arr = np.asarray(draws, dtype=float)
    out = {"rhat": float("nan"), "ess_bulk": float("nan"), "ess_tail": float("nan")}
    if arr.ndim != 2 or arr.shape[1] < 4 or not np.isfinite(arr).all():
        return out
    if np.ptp(arr) == 0:
        return {"rhat": 1.0, "ess_bulk": float(arr.size), "ess_tail": float(arr.size)}
    out["ess_bulk"] = float(az.ess(arr, method="bulk"))
    out["ess_tail"] = float(az.ess(arr, method="tail", prob=(0.05, 0.95)))
    if arr.shape[0] > 1:
        out["rhat"] = float(az.rhat(arr))
    return out


def convergence_report(
    diagnostics: dict[str, dict[str, float]], divergences: int = 0
) -> tuple[bool, list[str]]:
    """Apply the DESIGN.md §6 rules to per-quantity diagnostics; return (converged, warnings)."""
    warnings: list[str] = []
    for name, diag in diagnostics.items():
        rhat, ess = diag.get("rhat", np.nan), diag.get("ess_bulk", np.nan)
        if np.isfinite(rhat) and rhat > RHAT_MAX:
            warnings.append(f"R-hat of {name} is {rhat:.3f} (> {RHAT_MAX}): chains disagree.")
        if np.isfinite(ess) and ess < ESS_MIN:
            warnings.append(f"Bulk ESS of {name} is {ess:.0f} (< {ESS_MIN:.0f}): draw more.")
    if divergences:
        warnings.append(f"{divergences} divergent transition(s): the posterior may be biased.")
    return (not warnings), warnings


def run_pymc(
    model: object,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int,
    target_accept: float = 0.9,
) -> object:
    """Sample a PyMC model with nutpie or PyMC's NUTS; return the ``xarray.DataTree``."""
    import logging

    import pymc as pm

    from risklab.models.numerics import strict_floating_point
    from risklab.models.nutpie_cache import cached_nutpie_compilation

    kwargs: dict[str, object] = {}
    if sampler == "pymc":
        kwargs["cores"] = 1
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with model, strict_floating_point(), cached_nutpie_compilation():  # type: ignore[attr-defined]
            return pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                nuts_sampler=sampler,
                random_seed=random_seed,
                target_accept=target_accept,
                progressbar=False,
                compute_convergence_checks=False,
                **kwargs,
            )
    finally:
        logger.setLevel(level)


def count_divergences(idata: object) -> int:
    """Number of divergent transitions recorded in a PyMC/nutpie ``DataTree``."""
    try:
        div = idata["sample_stats"]["diverging"]  # type: ignore[index]
    except KeyError:
        return 0
    return int(np.asarray(div).sum())
