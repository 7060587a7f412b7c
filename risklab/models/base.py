"""Model lifecycle shared by risklab models: build, sample, check, save, load, provenance.

construct (no sampling) → :meth:`RiskModel.build` → :meth:`RiskModel.sample_prior_predictive`
→ :meth:`RiskModel.fit` (runs the convergence gate) → :attr:`RiskModel.idata` (an
``xarray.DataTree`` with provenance on its root attrs) → :meth:`RiskModel.save` /
:meth:`RiskModel.load`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pymc as pm
import xarray as xr

from risklab._atomic import atomic_path
from risklab.data import Submission
from risklab.models.components.base import BuildContext, Component
from risklab.models.config import SamplerConfig, derive_seeds
from risklab.models.diagnostics import ConvergenceReport, check_convergence
from risklab.models.numerics import strict_floating_point
from risklab.models.nutpie_cache import cached_nutpie_compilation
from risklab.models.provenance import provenance_attrs
from risklab.priors import Prior, resolve_priors

__all__ = ["ModelFileError", "NotFittedError", "RiskModel"]

FIT_DATA_GROUP = "fit_data"


class NotFittedError(RuntimeError):
    """A fitted model was needed."""


class ModelFileError(ValueError):
    """A results file is not one this version of risklab can load."""


class RiskModel:
    """Base class: a PyMC model assembled from components, with a reproducible lifecycle.

    Subclasses set :attr:`model_type`, :attr:`model_version` and :meth:`default_components`.
    """

    model_type: ClassVar[str] = "RiskModel"
    #: Bumped whenever the model's structure changes so that saved results are not misread.
    model_version: ClassVar[str] = "0"

    def __init__(
        self,
        submission: Submission,
        *,
        priors: dict[str, Prior | dict] | None = None,
        sampler_config: SamplerConfig | None = None,
        components: list[Component] | None = None,
    ) -> None:
        self.submission = submission
        all_components = components if components is not None else self.default_components()
        self.components = [c for c in all_components if c.is_active(submission.data)]
        self.priors = resolve_priors(self.default_priors, priors)
        self.sampler_config = sampler_config or SamplerConfig()
        self._model: pm.Model | None = None
        self.idata: xr.DataTree | None = None
        self.convergence: ConvergenceReport | None = None

    # ---------------------------------------------------------------- declaration
    @classmethod
    def default_components(cls) -> list[Component]:  # pragma: no cover - interface
        """The components of this model type, in build order."""
        raise NotImplementedError

    @property
    def default_priors(self) -> dict[str, Prior]:
        """Default priors of the active components, by name."""
        priors: dict[str, Prior] = {}
        for component in self.components:
            priors.update(component.default_priors)
        return priors

    def coords(self) -> dict[str, list[str]]:
        """Model coordinates taken from the submission data."""
        data = self.submission.data
        return {
            dim: [str(v) for v in data[dim].values] for dim in ("category", "period", "channel")
        }

    # ---------------------------------------------------------------- build & sample
    def build(self) -> pm.Model:
        """Build (once) and return the PyMC model. No sampling happens here."""
        if self._model is None:
            ctx = BuildContext(data=self.submission.data, priors=self.priors)
            with pm.Model(coords=self.coords()) as model:
                for component in self.components:
                    missing = [name for name in component.requires if name not in ctx.shared]
                    if missing:
                        raise RuntimeError(
                            f"component {component.name!r} needs {missing} from an earlier "
                            "component"
                        )
                    component.build(ctx)
            self._model = model
        return self._model

    @property
    def model(self) -> pm.Model:
        """The PyMC model (built on first access)."""
        return self.build()

    def sample_prior_predictive(
        self, draws: int = 500, *, random_seed: int = 0, var_names: list[str] | None = None
    ) -> xr.DataTree:
        """Draw from the prior and prior predictive distributions.

        Parameters
        ----------
        draws : int
            Number of draws.
        random_seed : int
            Seed; the draws use the stream derived for the prior predictive.
        var_names : list of str, optional
            Only these variables (the compiled function then holds only what they need, which
            is several times cheaper than the whole prior predictive); default all.
        """
        seed = derive_seeds(random_seed)["prior_predictive"]
        with self.build(), strict_floating_point():
            return pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=var_names)

    def fit(
        self, *, random_seed: int = 0, sampler_config: SamplerConfig | None = None
    ) -> xr.DataTree:
        """Sample the posterior, run the convergence gate and attach provenance.

        Parameters
        ----------
        random_seed : int
            The one user seed; every random step uses a seed derived from it.
        sampler_config : SamplerConfig, optional
            Overrides the model's sampler configuration.

        Returns
        -------
        xarray.DataTree
            Also stored as :attr:`idata`. Convergence is in :attr:`convergence`; a failed gate
            raises no exception but emits a :class:`UserWarning` and is recorded on the results.
        """
        if sampler_config is not None:
            self.sampler_config = sampler_config
        cfg = self.sampler_config
        seeds = derive_seeds(random_seed)
        kwargs: dict[str, Any] = {
            "draws": cfg.draws,
            "tune": cfg.tune,
            "chains": cfg.chains,
            "cores": cfg.parallel_chains(),
            "random_seed": seeds["sample"],
            "progressbar": cfg.progressbar,
            "nuts_sampler": cfg.sampler,
            "nuts": {"target_accept": cfg.target_accept},
        }
        if cfg.adaptation is not None:
            kwargs["nuts"]["adaptation"] = cfg.adaptation
        with self.build(), strict_floating_point(), cached_nutpie_compilation():
            idata = pm.sample(**kwargs)
        idata = _sanitise(idata)
        idata[FIT_DATA_GROUP] = xr.DataTree(self.submission.data)
        self.convergence = check_convergence(idata)
        idata.attrs.update(
            provenance_attrs(
                model_type=self.model_type,
                model_version=self.model_version,
                priors=self.priors,
                sampler_json=cfg.to_json(),
                seed=random_seed,
                derived_seeds=seeds,
                sampler=cfg.sampler,
                input_sha256=self.submission.input_sha256,
                components=[c.name for c in self.components],
            )
        )
        idata.attrs["convergence"] = self.convergence.to_json()
        idata.attrs["converged"] = int(self.convergence.passed)
        self.idata = idata
        if not self.convergence.passed:
            warnings.warn(
                "the sampler did not converge: " + "; ".join(self.convergence.problems),
                UserWarning,
                stacklevel=2,
            )
        return idata

    # ---------------------------------------------------------------- results
    @property
    def is_fitted(self) -> bool:
        """Whether posterior draws are attached."""
        return self.idata is not None and "posterior" in self.idata.children

    def require_fitted(self) -> xr.DataTree:
        """The results, or a clear error when the model was not fitted."""
        if not self.is_fitted:
            raise NotFittedError(f"{self.model_type} has not been fitted: call .fit() first")
        return self.idata

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws as a Dataset (dims chain, draw, ...)."""
        return self.require_fitted()["posterior"].to_dataset()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the results (with fitted data and provenance) to netCDF, atomically."""
        idata = self.require_fitted()
        path = Path(path)
        with atomic_path(path, suffix=".nc") as tmp:
            idata.to_netcdf(tmp, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RiskModel:
        """Rebuild a fitted model from a file written by :meth:`save`.

        Raises
        ------
        ModelFileError
            When the file is not a risklab results file of this model type and version.
        """
        try:
            with xr.open_datatree(path, engine="h5netcdf") as tree:
                idata = tree.load()
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path}: not a readable netCDF results file ({exc})") from exc
        attrs = idata.attrs
        if attrs.get("model_type") != cls.model_type:
            raise ModelFileError(
                f"{path}: holds a {attrs.get('model_type', 'non-risklab')!r} result, "
                f"not {cls.model_type!r}"
            )
        if str(attrs.get("model_version")) != cls.model_version:
            raise ModelFileError(
                f"{path}: written by model version {attrs.get('model_version')!r}; this risklab "
                f"reads version {cls.model_version!r}. Refit with this version."
            )
        if FIT_DATA_GROUP not in idata.children or "posterior" not in idata.children:
            raise ModelFileError(f"{path}: results file lacks its fitted data or posterior")
        submission = Submission.from_dataset(idata[FIT_DATA_GROUP].to_dataset())
        priors = {k: Prior.from_dict(v) for k, v in json.loads(attrs["priors"]).items()}
        model = cls._rebuild(
            submission, priors, SamplerConfig.from_json(attrs["sampler_config"]), attrs
        )
        model.idata = idata
        model.convergence = ConvergenceReport.from_json(attrs["convergence"])
        return model

    @classmethod
    def _rebuild(
        cls,
        submission: Submission,
        priors: dict[str, Prior],
        sampler_config: SamplerConfig,
        attrs: dict,
    ) -> RiskModel:
        """Construct the model a results file describes (subclasses with more state override)."""
        active = _active_prior_names(cls, submission)
        return cls(
            submission,
            priors={k: v for k, v in priors.items() if k in active},
            sampler_config=sampler_config,
        )


def _active_prior_names(
    cls: type[RiskModel], submission: Submission, components: list[Component] | None = None
) -> set[str]:
    names: set[str] = set()
    for component in components if components is not None else cls.default_components():
        if component.is_active(submission.data):
            names.update(component.default_priors)
    return names


def _sanitise(idata: xr.DataTree) -> xr.DataTree:
    """Make every group netCDF-safe: object arrays (e.g. divergence messages) become strings."""
    for node in idata.subtree:
        ds = node.to_dataset()
        changed = False
        for name, var in ds.data_vars.items():
            if var.dtype == object:
                ds[name] = var.copy(
                    data=np.vectorize(lambda v: "" if v is None else str(v))(var.values).astype(str)
                )
                changed = True
        if changed:
            node.dataset = ds
    return idata
