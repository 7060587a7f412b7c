"""Standalone estimators of hidden populations and prevalence.

They depend on nothing above :mod:`risklab.priors` and are reused by the model components.
"""

from risklab.estimators.results import PopulationEstimate, PrevalenceEstimate

__all__ = ["PopulationEstimate", "PrevalenceEstimate"]

# capture–recapture (multiple-systems estimation) and imperfect-test prevalence
from risklab.estimators import imperfect_test, mse
from risklab.estimators._validation import EstimatorInputError, EstimatorWarning

# frequency-of-detection estimators (offending traders never detected)
from risklab.estimators.frequency import (
    FrequencyEstimatorWarning,
    SparseFrequencyWarning,
    chao_lower_bound,
    one_inflated_ztnb,
    one_inflated_ztpoisson,
    zelterman,
    ztnb,
    ztpoisson,
)

__all__ += ["EstimatorInputError", "EstimatorWarning", "imperfect_test", "mse"]

__all__ += [
    "FrequencyEstimatorWarning",
    "SparseFrequencyWarning",
    "chao_lower_bound",
    "frequency",
    "one_inflated_ztnb",
    "one_inflated_ztpoisson",
    "zelterman",
    "ztnb",
    "ztpoisson",
]
