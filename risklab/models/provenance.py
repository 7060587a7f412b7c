"""Provenance: what produced a set of results, carried on the results' root attrs."""

from __future__ import annotations

import json
import platform as _platform
from importlib import metadata

from risklab._version import __version__

__all__ = ["PROVENANCE_PACKAGES", "package_versions", "provenance_attrs"]

PROVENANCE_PACKAGES = (
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "xarray",
    "numpy",
    "scipy",
    "pandas",
    "h5netcdf",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose code shapes the numbers."""
    versions = {"python": _platform.python_version(), "risklab": __version__}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_attrs(
    *,
    model_type: str,
    model_version: str,
    priors: dict,
    sampler_json: str,
    seed: int,
    derived_seeds: dict[str, int],
    sampler: str,
    input_sha256: str,
    components: list[str],
) -> dict[str, str | int]:
    """Root attrs of a results DataTree (all netCDF-safe scalars or strings)."""
    return {
        "risklab_version": __version__,
        "model_type": model_type,
        "model_version": model_version,
        "components": json.dumps(components),
        "priors": json.dumps({k: v.to_dict() for k, v in priors.items()}, sort_keys=True),
        "sampler_config": sampler_json,
        "random_seed": int(seed),
        "derived_seeds": json.dumps(derived_seeds, sort_keys=True),
        "sampler": sampler,
        "package_versions": json.dumps(package_versions(), sort_keys=True),
        "input_sha256": input_sha256,
    }
