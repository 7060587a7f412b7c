"""Sampler configuration and seed derivation."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ADAPTATIONS", "SAMPLERS", "SamplerConfig", "derive_seeds", "usable_cores"]

#: NUTS implementations PyMC can drive.
SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
#: Mass-matrix adaptations of nutpie (``None``: nutpie's default, a diagonal one).
ADAPTATIONS = ("diag", "draw_diag", "low_rank")


@dataclass(frozen=True)
class SamplerConfig:
    """How a model is sampled.

    Parameters
    ----------
    draws, tune, chains : int
        Post-warm-up draws per chain, warm-up iterations per chain, number of chains. The
        default warm-up is 2000: with 1000, two of three seeds left one divergence after warm-up
        on the bundled demo; with 2000, none of four did (it adds about 3–5 s to the demo's fit).
    sampler : str
        One of ``"nutpie"`` (default), ``"pymc"``, ``"numpyro"``, ``"blackjax"``.
    target_accept : float
        Target acceptance rate of NUTS step-size adaptation.
    progressbar : bool
        Show sampling progress (not part of the provenance that identifies a fit).
    adaptation : str, optional
        nutpie's mass-matrix adaptation: ``"diag"``, ``"draw_diag"`` or ``"low_rank"`` (a
        diagonal plus low-rank mass matrix that follows correlated directions of the posterior);
        ``None`` (default) leaves nutpie's default (diagonal). nutpie only.
    cores : int, optional
        Chains sampled in parallel. ``None`` (default): as many cores as this process may use
        (:func:`usable_cores`), at most ``chains``. PyMC's own default is half the CPU count
        (it assumes hyper-threading), which on a 2-core machine ran nutpie's chains one after
        the other and doubled the sampling time. Every chain has its own seeded stream, so the
        draws do not depend on ``cores`` (tested), and it is not part of the provenance.
    """

    draws: int = 1000
    tune: int = 2000
    chains: int = 4
    sampler: str = "nutpie"
    target_accept: float = 0.95
    progressbar: bool = False
    adaptation: str | None = None
    cores: int | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < (1 if name != "tune" else 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.5 <= self.target_accept < 1:
            raise ValueError(f"target_accept must be in [0.5, 1), got {self.target_accept!r}")
        if self.adaptation is not None:
            if self.adaptation not in ADAPTATIONS:
                raise ValueError(
                    f"adaptation must be one of {ADAPTATIONS} or None, got {self.adaptation!r}"
                )
            if self.sampler != "nutpie":
                raise ValueError("adaptation applies to the nutpie sampler only")
        if self.cores is not None and (
            not isinstance(self.cores, int | np.integer)
            or isinstance(self.cores, bool)
            or self.cores < 1
        ):
            raise ValueError(f"cores must be a positive integer or None, got {self.cores!r}")

    def parallel_chains(self) -> int:
        """Chains to run at once: ``cores``, or the usable cores, at most ``chains``."""
        return max(1, min(self.chains, self.cores or usable_cores()))

    def to_json(self) -> str:
        """JSON of the settings that determine the numbers (progress display excluded)."""
        data = asdict(self)
        data.pop("progressbar")
        data.pop("cores")  # changes the wall time, not the draws
        if data["adaptation"] is None:  # the default leaves earlier provenance unchanged
            data.pop("adaptation")
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SamplerConfig:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for each random step, derived from one user seed.

    Uses :class:`numpy.random.SeedSequence`, so the streams are statistically independent and
    the same user seed always yields the same derived seeds.
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    names = ("prior_predictive", "sample", "posterior_predictive")
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return {
        name: int(child.generate_state(1, dtype=np.uint32)[0])
        for name, child in zip(names, children, strict=True)
    }
