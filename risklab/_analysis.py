"""Helpers shared by the analyses on posterior draws (mitigation, allocation)."""

from __future__ import annotations

import math

import numpy as np

from risklab.counterfactual import PosteriorState
from risklab.models.diagnostics import unconverged_warning

__all__ = ["as_state", "check_non_negative", "check_prob", "state_and_convergence", "summarise"]


def check_non_negative(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError naming ``name`` when negative or not finite."""
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return value


def state_and_convergence(fitted_or_state) -> tuple[PosteriorState, bool | None]:
    """The posterior state of a fitted model (or the state itself) and whether the fit passed
    the convergence gate (``None`` for a bare state or a fit without a gate report)."""
    if isinstance(fitted_or_state, PosteriorState):
        return fitted_or_state, None
    convergence = getattr(fitted_or_state, "convergence", None)
    converged = None if convergence is None else bool(convergence.passed)
    return PosteriorState.from_fitted(fitted_or_state), converged


def as_state(fitted_or_state) -> tuple[PosteriorState, list[str]]:
    """The posterior state of a fitted model (or the state itself) and its caveats."""
    state, converged = state_and_convergence(fitted_or_state)
    warnings = []
    if converged is False:
        warnings.append(unconverged_warning(fitted_or_state.convergence))
    return state, warnings


def check_prob(prob: float, name: str = "prob") -> float:
    """``prob`` as a float, or a ValueError unless it lies in (0, 1)."""
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {prob!r}")
    return float(prob)


def summarise(values: np.ndarray, prob: float, axis: int = 0) -> dict[str, np.ndarray]:
    """Mean, median and equal-tailed ``prob`` interval of ``values`` along ``axis``."""
    tail = (1.0 - prob) / 2.0
    low, median, high = np.quantile(values, [tail, 0.5, 1.0 - tail], axis=axis)
    return {"mean": values.mean(axis=axis), "median": median, "low": low, "high": high}
