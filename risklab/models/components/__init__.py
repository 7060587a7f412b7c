"""Model components: each adds one part of the platform model (DESIGN.md §3)."""

from risklab.models.components.appeals import ComplaintReversals
from risklab.models.components.audits import Audits
from risklab.models.components.base import BuildContext, Component
from risklab.models.components.capacity import CapacityDetection
from risklab.models.components.channels import DetectionChannels
from risklab.models.components.offenders import RepeatOffenders
from risklab.models.components.overlaps import ChannelOverlaps
from risklab.models.components.planted import PlantedListings
from risklab.models.components.prevalence import Prevalence

__all__ = [
    "Audits",
    "BuildContext",
    "CapacityDetection",
    "ChannelOverlaps",
    "ComplaintReversals",
    "Component",
    "DetectionChannels",
    "PlantedListings",
    "Prevalence",
    "RepeatOffenders",
]
