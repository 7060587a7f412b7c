"""risklab: Bayesian assessment of illegal-product risk on online marketplaces (DSA Arts. 34/35).

The public API: load a submission, build and fit the platform model, assess it.

>>> import risklab
>>> sub = risklab.load_submission("submission/", evidence="evidence/")   # doctest: +SKIP
>>> model = risklab.PlatformRiskModel(sub)                                # doctest: +SKIP
>>> model.fit(random_seed=1)                                              # doctest: +SKIP
>>> risklab.assess(model).table                                           # doctest: +SKIP
"""

from risklab._version import __version__
from risklab.assess import Findings, assess
from risklab.data import Submission, SubmissionError, load_submission
from risklab.data.synthetic import simulate_marketplace
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.priors import Prior

__all__ = [
    "Findings",
    "PlatformRiskModel",
    "Prior",
    "SamplerConfig",
    "Submission",
    "SubmissionError",
    "__version__",
    "assess",
    "load_submission",
    "simulate_marketplace",
]
