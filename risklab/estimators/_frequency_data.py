"""Input handling of the frequency-of-detection estimators (private).

Turns a frequency table (dict, array, Series) or trader-level data (DataFrame with a ``count``
column, optional ``traders`` weights and covariates) into grouped :class:`CountData`, with
errors that say what is wrong, and defines the warnings of :mod:`risklab.estimators.frequency`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from risklab.estimators._frequency_regression import CountData
from risklab.estimators._validation import EstimatorInputError, EstimatorWarning

__all__ = [
    "SPARSE_THRESHOLD",
    "FreqLike",
    "FrequencyEstimatorWarning",
    "SparseFrequencyWarning",
    "frame_data",
    "freq_dict",
    "parse_table",
    "resolve_data",
    "table_data",
    "warn",
    "warn_sparse",
]

#: Below this many traders in a frequency class the estimators resting on it are unstable.
SPARSE_THRESHOLD = 5

FreqLike = Mapping[int, int] | Sequence[int] | np.ndarray | pd.Series | pd.DataFrame


class FrequencyEstimatorWarning(EstimatorWarning):
    """A frequency-of-detection estimate is unreliable (boundary fit, no convergence, ...)."""


class SparseFrequencyWarning(FrequencyEstimatorWarning):
    """A frequency class that an estimator rests on (f1, f2, f3) is too small."""


# =========================================================================== input handling
def _as_int_counts(values: np.ndarray, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise EstimatorInputError(f"{what} must be numbers, got {values!r}") from exc
    if arr.size and not np.all(np.isfinite(arr)):
        raise EstimatorInputError(f"{what} must be finite numbers (no NaN or inf)")
    if np.any(arr < 0):
        raise EstimatorInputError(f"{what} must be non-negative, got {arr[arr < 0][0]:g}")
    if np.any(arr != np.round(arr)):
        bad = arr[arr != np.round(arr)][0]
        raise EstimatorInputError(f"{what} must be whole numbers, got {bad:g}")
    return arr.astype(np.int64)


def parse_table(freq: Any) -> np.ndarray:
    """Validate a frequency table; returns ``f`` with ``f[k - 1] = f_k``."""
    if isinstance(freq, pd.DataFrame):
        return frame_data(freq, []).frequency_array()
    if isinstance(freq, Mapping | pd.Series):
        items = freq.items() if isinstance(freq, Mapping) else zip(freq.index, freq, strict=True)
        keys, values = [], []
        for key, value in items:
            if isinstance(key, bool) or not isinstance(key, int | np.integer | float):
                raise EstimatorInputError(
                    f"frequency table keys must be detection counts k >= 1, got {key!r}"
                )
            if float(key) != int(key) or int(key) < 1:
                raise EstimatorInputError(
                    f"frequency table keys must be whole numbers k >= 1 (the zero class is "
                    f"never observed), got {key!r}"
                )
            keys.append(int(key))
            values.append(value)
        if not keys:
            raise EstimatorInputError("the frequency table is empty")
        counts = _as_int_counts(np.asarray(values, dtype=object).astype(float), "frequencies")
        f = np.zeros(max(keys), dtype=np.int64)
        np.add.at(f, np.asarray(keys) - 1, counts)
    else:
        if isinstance(freq, str | bytes) or freq is None:
            raise EstimatorInputError(
                f"freq must be a dict {{k: f_k}}, a 1-D array, a Series or a DataFrame, "
                f"got {type(freq).__name__}"
            )
        arr = np.asarray(freq, dtype=object)
        if arr.ndim != 1:
            raise EstimatorInputError(
                f"a frequency array must be 1-D (entry i holds f_(i+1)), got shape {arr.shape}"
            )
        f = _as_int_counts(arr.astype(float) if arr.size else np.zeros(0), "frequencies")
    if f.sum() < 1:
        raise EstimatorInputError("the frequency table holds no trader (all f_k are zero)")
    return f


def table_data(f: np.ndarray) -> CountData:
    """Intercept-only grouped data of a validated frequency array."""
    ks = np.flatnonzero(f) + 1
    return CountData(
        y=ks.astype(np.int64),
        w=f[ks - 1].astype(np.int64),
        X=np.ones((ks.size, 1)),
        names=("intercept",),
    )


def frame_data(frame: pd.DataFrame, covariates: Sequence[str]) -> CountData:
    """Individual-level (or grouped) traders → grouped design for the regression estimators."""
    count_col = "count" if "count" in frame.columns else "strikes" if "strikes" in frame else None
    if count_col is None:
        raise EstimatorInputError(
            "trader data need a 'count' column (detections per trader, k >= 1); "
            f"columns are {list(frame.columns)}"
        )
    if len(frame) == 0:
        raise EstimatorInputError("the trader data have no rows")
    y = _as_int_counts(frame[count_col].to_numpy(), f"column {count_col!r}")
    if np.any(y < 1):
        row = frame.index[int(np.flatnonzero(y < 1)[0])]
        raise EstimatorInputError(
            f"column {count_col!r}, row {row!r}: detection counts must be >= 1 (traders never "
            "detected cannot be in the data)"
        )
    w = (
        _as_int_counts(frame["traders"].to_numpy(), "column 'traders'")
        if "traders" in frame.columns
        else np.ones(len(frame), dtype=np.int64)
    )
    missing = [c for c in covariates if c not in frame.columns]
    if missing:
        raise EstimatorInputError(f"covariate column(s) {missing} not in the trader data")
    blocks = [np.ones((len(frame), 1))]
    names = ["intercept"]
    for col in covariates:
        series = frame[col]
        if series.isna().any():
            row = frame.index[int(np.flatnonzero(series.isna().to_numpy())[0])]
            raise EstimatorInputError(f"column {col!r}, row {row!r}: missing covariate value")
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            x = series.to_numpy(dtype=float)
            mean = np.average(x, weights=np.maximum(w, 0))
            sd = np.sqrt(np.average((x - mean) ** 2, weights=np.maximum(w, 0)))
            if not sd > 0:
                raise EstimatorInputError(f"covariate {col!r} is constant; drop it")
            blocks.append(((x - mean) / sd)[:, None])
            names.append(f"{col} (standardised)")
        else:
            levels = sorted(pd.unique(series.astype(str)))
            if len(levels) < 2:
                raise EstimatorInputError(f"covariate {col!r} has a single level; drop it")
            values = series.astype(str).to_numpy()
            for level in levels[1:]:  # the first level (sorted) is the reference
                blocks.append((values == level).astype(float)[:, None])
                names.append(f"{col}[{level}]")
    X = np.hstack(blocks)
    keep = w > 0
    if not keep.any():
        raise EstimatorInputError("the trader data hold no trader (all 'traders' are zero)")
    y, w, X = y[keep], w[keep], X[keep]
    rows, inverse = np.unique(np.column_stack([y, X]), axis=0, return_inverse=True)
    weights = np.bincount(inverse.ravel(), weights=w).astype(np.int64)
    X = rows[:, 1:]
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise EstimatorInputError(
            f"covariates {list(covariates)} are collinear (or a level never occurs with the "
            "others); the regression is not identified"
        )
    return CountData(y=rows[:, 0].astype(np.int64), w=weights, X=X, names=tuple(names))


def resolve_data(freq: Any, covariates: Any) -> CountData:
    """Resolve ``freq`` / ``covariates`` into grouped data (see the public docstrings)."""
    if covariates is None:
        if isinstance(freq, pd.DataFrame):
            return frame_data(freq, [])
        return table_data(parse_table(freq))
    if isinstance(covariates, pd.DataFrame):
        if isinstance(freq, pd.DataFrame):
            raise EstimatorInputError(
                "give the trader data once: either freq=DataFrame with covariates=[column "
                "names], or freq=None with covariates=DataFrame"
            )
        cols = [c for c in covariates.columns if c not in ("count", "strikes", "traders")]
        data = frame_data(covariates, cols)
        if freq is not None and not isinstance(freq, pd.DataFrame):
            given = parse_table(freq)
            own = data.frequency_array()
            if given.size != own.size or np.any(given != own):
                raise EstimatorInputError(
                    "freq and the covariate data disagree on the frequency table; pass "
                    "freq=None with a covariate DataFrame"
                )
        return data
    if isinstance(freq, pd.DataFrame):
        cols = [covariates] if isinstance(covariates, str) else list(covariates)
        return frame_data(freq, cols)
    raise EstimatorInputError(
        "covariates must be a DataFrame of traders (a 'count' column, optional 'traders', "
        "covariate columns), or column names of a trader DataFrame passed as freq"
    )


def warn(messages: list[str], message: str, category: type[Warning], stacklevel: int = 3) -> None:
    """Record ``message`` in a result's warnings and raise it as a Python warning."""
    messages.append(message)
    warnings.warn(message, category, stacklevel=stacklevel)


def warn_sparse(
    messages: list[str], f: np.ndarray, ks: Sequence[int], who: str, stacklevel: int = 4
) -> None:
    """Warn for each frequency class ``f_k`` (k in ``ks``) below :data:`SPARSE_THRESHOLD`."""
    for k in ks:
        fk = int(f[k - 1]) if k <= f.size else 0
        if fk < SPARSE_THRESHOLD:
            warn(
                messages,
                f"f{k} = {fk} < {SPARSE_THRESHOLD}: {who} rests on f{k} and is unstable",
                SparseFrequencyWarning,
                stacklevel=stacklevel,
            )


def freq_dict(f: np.ndarray) -> dict[int, int]:
    """``{k: f_k}`` of the non-empty classes, for ``details["frequencies"]``."""
    return {int(k + 1): int(v) for k, v in enumerate(f) if v}
