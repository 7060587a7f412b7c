"""risklab: Bayesian assessment of illegal-product risk on online marketplaces (DSA Arts. 34/35).

The public API: load a submission, build and fit the platform model, assess it (Art. 34), then
ask why (attribution), how robust (consistency, sensitivity, scenarios), what mitigation would
change (Art. 35) and how much evidence would settle it (audit design); and, once commitments are
binding, whether they moved what they should (``risklab.monitoring``: ``MonitoringModel``,
``monitor``).

>>> import risklab
>>> sub = risklab.load_submission("submission/", evidence="evidence/")   # doctest: +SKIP
>>> model = risklab.PlatformRiskModel(sub)                                # doctest: +SKIP
>>> model.fit(random_seed=1)                                              # doctest: +SKIP
>>> risklab.assess(model).table                                           # doctest: +SKIP
>>> risklab.attribute(model).table                                        # doctest: +SKIP

Analysis modules: :mod:`risklab.counterfactual` (the levers), :mod:`risklab.attribution`,
:mod:`risklab.scenarios`, :mod:`risklab.mitigation`, :mod:`risklab.allocation`,
:mod:`risklab.design`, :mod:`risklab.consistency`, :mod:`risklab.sensitivity`,
:mod:`risklab.sweep`.
"""

from risklab._version import __version__
from risklab.allocation import allocate_review_hours, hours_to_target
from risklab.assess import Findings, assess
from risklab.attribution import Attribution, attribute
from risklab.consistency import check_consistency
from risklab.counterfactual import Levers, PosteriorState
from risklab.data import Submission, SubmissionError, load_submission
from risklab.data.synthetic import simulate_marketplace
from risklab.design import AuditPlan, plan_audit
from risklab.mitigation import Measure
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.monitoring import Commitment, MonitoringModel, load_commitments, monitor
from risklab.priors import Prior
from risklab.scenarios import Scenario, load_scenarios, stress_test
from risklab.sensitivity import compare_prior_sets, prior_sensitivity
from risklab.sweep import SweepTask, sweep

__all__ = [
    "Attribution",
    "AuditPlan",
    "Commitment",
    "Findings",
    "Levers",
    "Measure",
    "MonitoringModel",
    "PlatformRiskModel",
    "PosteriorState",
    "Prior",
    "SamplerConfig",
    "Scenario",
    "Submission",
    "SubmissionError",
    "SweepTask",
    "__version__",
    "allocate_review_hours",
    "assess",
    "attribute",
    "check_consistency",
    "compare_prior_sets",
    "hours_to_target",
    "load_commitments",
    "load_scenarios",
    "load_submission",
    "monitor",
    "plan_audit",
    "prior_sensitivity",
    "simulate_marketplace",
    "stress_test",
    "sweep",
]
