"""A small prior specification, call-compatible with ``pymc_extras.prior.Prior``.

A :class:`Prior` names a PyMC distribution and its parameters; parameters may themselves be
priors (hierarchies). It turns into a PyMC variable with :meth:`Prior.create_variable` inside a
model context, serialises to JSON-safe dicts and back, and prints readably, so the resolved priors
of a fit can travel with its results and appear in reports.

We do not depend on pymc-extras (it pins PyMC below 6.4); the subset implemented here is the
part of its interface that risklab uses: ``Prior(distribution, *, dims=None, centered=True,
transform=None, **parameters)``, ``create_variable(name)``, ``to_dict()``, ``from_dict()``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm

__all__ = ["Prior", "PriorError", "resolve_priors"]


class PriorError(ValueError):
    """A prior specification or override is invalid."""


_NON_CENTERABLE = "non-centred parametrisation needs a Normal with a `mu` and a `sigma`"


class Prior:
    """Specification of a prior distribution.

    Parameters
    ----------
    distribution : str
        Name of a PyMC distribution, e.g. ``"Normal"``, ``"HalfNormal"``, ``"Beta"``.
    dims : str or tuple of str, optional
        Dims of the variable (must be coords of the model it is created in).
    centered : bool, default True
        For a Normal whose ``mu`` or ``sigma`` is itself a prior: ``False`` creates the
        non-centred form ``mu + sigma * z`` with ``z ~ Normal(0, 1)``.
    transform : str, optional
        Name of a ``pymc.math`` function applied to the variable (e.g. ``"exp"``, ``"sigmoid"``);
        the untransformed variable is named ``<name>_raw``.
    **parameters
        Distribution parameters: numbers, array-likes, or nested :class:`Prior` objects.

    Examples
    --------
    >>> Prior("Normal", mu=0, sigma=Prior("HalfNormal", sigma=1), dims="category", centered=False)
    Prior("Normal", mu=0, sigma=Prior("HalfNormal", sigma=1), dims="category", centered=False)
    """

    def __init__(
        self,
        distribution: str,
        *,
        dims: str | tuple[str, ...] | None = None,
        centered: bool = True,
        transform: str | None = None,
        **parameters: Any,
    ) -> None:
        candidate = getattr(pm, distribution, None) if isinstance(distribution, str) else None
        if not (isinstance(candidate, type) and issubclass(candidate, pm.Distribution)):
            raise PriorError(f"unknown PyMC distribution {distribution!r}")
        if transform is not None and not hasattr(pm.math, transform):
            raise PriorError(f"unknown transform {transform!r}: not a function of pymc.math")
        self.distribution = distribution
        self.dims: tuple[str, ...] = (dims,) if isinstance(dims, str) else tuple(dims or ())
        self.centered = bool(centered)
        self.transform = transform
        self.parameters: dict[str, Any] = dict(parameters)
        if not self.centered and (distribution != "Normal" or {"mu", "sigma"} - set(parameters)):
            raise PriorError(_NON_CENTERABLE)

    # ------------------------------------------------------------------ creation
    def create_variable(self, name: str):
        """Create the PyMC variable (inside a model context) and return it.

        Nested priors become variables named ``<name>_<parameter>``.
        """
        dims = self.dims or None
        params = {
            key: value.create_variable(f"{name}_{key}") if isinstance(value, Prior) else value
            for key, value in self.parameters.items()
        }
        raw_name = f"{name}_raw" if self.transform else name
        if not self.centered:
            offset = pm.Normal(f"{raw_name}_offset", mu=0.0, sigma=1.0, dims=dims)
            var = pm.Deterministic(raw_name, params["mu"] + params["sigma"] * offset, dims=dims)
        else:
            var = getattr(pm, self.distribution)(raw_name, **params, dims=dims)
        if self.transform:
            var = pm.Deterministic(name, getattr(pm.math, self.transform)(var), dims=dims)
        return var

    def sample_prior(self, draws: int = 1000, *, random_seed: int | None = None) -> np.ndarray:
        """Draw from this prior outside any model (nested priors included, dims ignored)."""
        spec = Prior.from_dict({**self.to_dict(), "dims": None})
        with pm.Model():
            var = spec.create_variable("x")
            return np.asarray(pm.draw(var, draws=draws, random_seed=random_seed))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; :meth:`from_dict` inverts it exactly."""
        out: dict[str, Any] = {"dist": self.distribution}
        params = {}
        for key, value in self.parameters.items():
            if isinstance(value, Prior):
                params[key] = value.to_dict()
            elif isinstance(value, np.ndarray | list | tuple):
                params[key] = np.asarray(value).tolist()
            elif isinstance(value, np.generic):
                params[key] = value.item()
            else:
                params[key] = value
        if params:
            out["kwargs"] = params
        if self.dims:
            out["dims"] = list(self.dims)
        if not self.centered:
            out["centered"] = False
        if self.transform:
            out["transform"] = self.transform
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prior:
        """Rebuild a prior from :meth:`to_dict` output."""
        try:
            kwargs = {
                key: cls.from_dict(value) if isinstance(value, Mapping) else value
                for key, value in dict(data.get("kwargs", {})).items()
            }
            dims = data.get("dims")
            return cls(
                data["dist"],
                dims=tuple(dims) if dims else None,
                centered=data.get("centered", True),
                transform=data.get("transform"),
                **kwargs,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise PriorError(f"not a prior specification: {data!r}") from exc

    def to_json(self) -> str:
        """Compact JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    # ------------------------------------------------------------------ comparison / display
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prior) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        parts = [repr(self.distribution)]
        parts += [f"{key}={_format_value(value)}" for key, value in self.parameters.items()]
        if self.dims:
            dims = self.dims[0] if len(self.dims) == 1 else self.dims
            parts.append(f"dims={dims!r}")
        if not self.centered:
            parts.append("centered=False")
        if self.transform:
            parts.append(f"transform={self.transform!r}")
        return f"Prior({', '.join(parts)})"


def _format_value(value: Any) -> str:
    if isinstance(value, Prior):
        return repr(value)
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    return repr(value)


def resolve_priors(
    defaults: Mapping[str, Prior], overrides: Mapping[str, Prior | Mapping[str, Any]] | None
) -> dict[str, Prior]:
    """Merge user overrides into a model's default priors.

    Parameters
    ----------
    defaults : mapping of str to Prior
        The model's ``default_priors``.
    overrides : mapping, optional
        Priors to replace, by name; values are :class:`Prior` objects or their dict form.

    Returns
    -------
    dict of str to Prior

    Raises
    ------
    PriorError
        When an override names a prior the model does not have, or is not a prior.
    """
    resolved = dict(defaults)
    for name, value in (overrides or {}).items():
        if name not in defaults:
            known = ", ".join(sorted(defaults))
            raise PriorError(f"unknown prior {name!r}; this model's priors are: {known}")
        if isinstance(value, Mapping):
            value = Prior.from_dict(value)
        if not isinstance(value, Prior):
            raise PriorError(f"prior {name!r} must be a Prior or its dict form, got {value!r}")
        resolved[name] = value
    return resolved
