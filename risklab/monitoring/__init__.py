"""Monitoring binding commitments: did prevalence, detection and enforcement move, and by how much.

See ``docs/monitoring.md``. :class:`Commitment` and :func:`load_commitments` declare what a platform
committed to; :class:`MonitoringModel` fits the platform model with an interrupted time series
(level and slope change at each effective date, hierarchical over categories); :func:`monitor`
reports per commitment the change, P(improved), P(target met) and the counterfactual without it.
"""

from risklab.monitoring.analysis import MonitoringResult, monitor, status_label
from risklab.monitoring.commitments import (
    Commitment,
    CommitmentError,
    Target,
    load_commitments,
    validate_commitments,
)
from risklab.monitoring.model import MonitoringModel
from risklab.monitoring.quantities import QUANTITIES, Quantity

__all__ = [
    "QUANTITIES",
    "Commitment",
    "CommitmentError",
    "MonitoringModel",
    "MonitoringResult",
    "Quantity",
    "Target",
    "load_commitments",
    "monitor",
    "status_label",
    "validate_commitments",
]
