"""PlatformRiskModel: the true prevalence of illegal listings behind a platform's assessment.

Assembled from components (DESIGN.md §3): capacity (with evasion) → prevalence → detection
channels → repeat offenders → audits → planted listings. Components whose data a submission lacks
are left out (a submission without audits has no audit likelihood, one without ``traders.csv``
and a ``[policy]`` no repeat-offender part), and the assessment then says what identified
prevalence.
"""

from __future__ import annotations

from risklab.models.base import RiskModel
from risklab.models.components import (
    Audits,
    CapacityDetection,
    ChannelOverlaps,
    ComplaintReversals,
    Component,
    DetectionChannels,
    PlantedListings,
    Prevalence,
    RepeatOffenders,
)

__all__ = ["PlatformRiskModel"]


class PlatformRiskModel(RiskModel):
    """Bayesian model of a marketplace's illegal-listing prevalence, detection and evidence.

    Parameters
    ----------
    submission : risklab.data.Submission
        The platform's submission (plus any regulator evidence).
    priors : dict, optional
        Prior overrides by name (see :attr:`default_priors`); unknown names are errors.
    sampler_config : risklab.models.SamplerConfig, optional
        Chains, draws, warm-up, sampler; default 4 × 1000 after 2000 warm-up with nutpie.
    components : list of Component, optional
        Replace the default components (advanced use).

    Examples
    --------
    >>> from risklab import PlatformRiskModel, assess, load_submission
    >>> sub = load_submission("my-submission/")                    # doctest: +SKIP
    >>> model = PlatformRiskModel(sub)                              # doctest: +SKIP
    >>> model.fit(random_seed=1)                                    # doctest: +SKIP
    >>> assess(model).table                                         # doctest: +SKIP
    """

    model_type = "PlatformRiskModel"
    #: "2": repeat offenders (trader table, enforcement, non-enforcement share) added.
    #: "3": channel overlaps (MSE) and complaint reversals (false-positive share) added.
    #: "4": partially centred cells, category levels and detection levels (free variables
    #: ``*_centred`` / ``*_offset``; same model, different sampler geometry).
    #: "5": review efficiency per category (``log θ[k]``, hierarchical, partially centred) and
    #: channel ratios with a fixed spread over categories (partially centred).
    model_version = "5"

    @classmethod
    def default_components(cls) -> list[Component]:
        return [
            CapacityDetection(),
            Prevalence(),
            ComplaintReversals(),  # before DetectionChannels: publishes false_positive_share
            DetectionChannels(),
            ChannelOverlaps(),
            RepeatOffenders(),
            Audits(),
            PlantedListings(),
        ]
