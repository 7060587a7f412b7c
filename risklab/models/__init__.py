"""Models: the platform risk model, its components, and the shared lifecycle."""

from risklab.models.base import ModelFileError, NotFittedError, RiskModel
from risklab.models.config import SamplerConfig, derive_seeds
from risklab.models.diagnostics import ConvergenceReport, Thresholds, check_convergence
from risklab.models.platform import PlatformRiskModel

__all__ = [
    "ConvergenceReport",
    "ModelFileError",
    "NotFittedError",
    "PlatformRiskModel",
    "RiskModel",
    "SamplerConfig",
    "Thresholds",
    "check_convergence",
    "derive_seeds",
]
