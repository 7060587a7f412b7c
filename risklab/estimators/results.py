"""Result objects shared by the standalone estimators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PopulationEstimate:
    """Estimate of the size of a partly observed population.

    Attributes
    ----------
    estimate : float
        Point estimate of the total population size (MLE or posterior median).
    interval : tuple of float
        ``(low, high)`` interval for the total at probability ``prob``.
    prob : float
        Probability mass of ``interval``.
    se : float
        Standard error of ``estimate`` (asymptotic for MLEs, posterior s.d. for Bayesian fits).
    observed : int
        Number of distinct units actually observed.
    draws : numpy.ndarray or None
        Posterior draws of the total, or None for likelihood-based fits.
    details : dict
        Method-specific extras (deviance, df, AIC, hyperparameters, warnings, ...).
    """

    estimate: float
    interval: tuple[float, float]
    prob: float
    se: float
    observed: int
    draws: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def unobserved(self) -> float:
        """Point estimate of the units never observed (``estimate - observed``)."""
        return self.estimate - self.observed


@dataclass(frozen=True)
class PrevalenceEstimate:
    """Estimate of a prevalence (a proportion in [0, 1]).

    Attributes
    ----------
    estimate : float
        Point estimate (corrected MLE or posterior median).
    interval : tuple of float
        ``(low, high)`` interval at probability ``prob``.
    prob : float
        Probability mass of ``interval``.
    se : float
        Standard error (delta method or posterior s.d.).
    draws : numpy.ndarray or None
        Posterior draws, or None for closed-form estimators.
    details : dict
        Method-specific extras.
    """

    estimate: float
    interval: tuple[float, float]
    prob: float
    se: float
    draws: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)
