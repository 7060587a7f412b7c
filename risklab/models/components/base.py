"""The component protocol: one part of the platform model, with its priors and data needs.

A component adds variables and likelihood terms to a PyMC model under construction. Components
communicate through a :class:`BuildContext`: each one reads the tensors earlier components
published (``ctx.shared``) and publishes its own, so the platform model is assembled from parts
without any of them knowing the others' internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from risklab.priors import Prior

__all__ = ["BuildContext", "Component", "shift_key"]


@dataclass
class BuildContext:
    """What components share while a model is built.

    Attributes
    ----------
    data : xarray.Dataset
        The submission's validated data (see :class:`risklab.data.Submission`).
    priors : dict of str to Prior
        Resolved priors of the whole model, by name.
    shared : dict
        Tensors published by components, e.g. ``"logit_prevalence"``, ``"detection_rate"``.
    """

    data: xr.Dataset
    priors: dict[str, Prior]
    shared: dict[str, Any] = field(default_factory=dict)

    def prior(self, name: str, **overrides: Any):
        """Create the variable for the prior ``name`` (with dims overridden if given)."""
        spec = self.priors[name]
        if overrides:
            spec = Prior.from_dict({**spec.to_dict(), **overrides})
        return spec.create_variable(name)

    def values(self, name: str) -> np.ndarray:
        """The data variable ``name`` as a NumPy array."""
        return np.asarray(self.data[name].values)

    def monitoring_shift(self, quantity: str):
        """The link-scale shift of ``quantity`` published by the commitments component of a
        monitoring model (:mod:`risklab.monitoring.its`), or None (platform model)."""
        return self.shared.get(shift_key(quantity))


def shift_key(quantity: str) -> str:
    """Key of ``BuildContext.shared`` holding the link-scale shift of a monitored quantity."""
    return f"its_shift_{quantity}"


class Component:
    """Base class of model components.

    Subclasses set :attr:`name`, :attr:`default_priors`, and implement :meth:`build`. A component
    whose data are absent from a submission reports ``is_active(data) == False`` and is skipped.
    """

    #: Short identifier used in provenance and error messages.
    name: ClassVar[str] = "component"
    #: Priors this component declares, by name. Names are unique across components.
    default_priors: ClassVar[dict[str, Prior]] = {}
    #: Names of tensors in ``ctx.shared`` this component needs before it can build.
    requires: ClassVar[tuple[str, ...]] = ()
    #: Names of tensors this component publishes into ``ctx.shared``.
    provides: ClassVar[tuple[str, ...]] = ()

    def is_active(self, data: xr.Dataset) -> bool:
        """Whether the submission holds the data this component models."""
        return True

    def build(self, ctx: BuildContext) -> None:  # pragma: no cover - interface
        """Add this component's variables and likelihood terms to the current model."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
