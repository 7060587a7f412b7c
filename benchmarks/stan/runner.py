"""The Stan peer: the flagship model in Stan (``platform.stan``), run with rstan, timed like PyMC.

:func:`stan_data` turns a submission into the Stan model's data, taking the priors from
:class:`risklab.PlatformRiskModel` itself (so the two stay the same model; a prior whose family
the Stan file does not mirror is an error) and the per-element centring of the partially centred
variables from the built PyMC model (:func:`centred_mask`); :func:`check_structure` refuses a
PyMC model whose free variables or likelihood terms the Stan file does not mirror.
:func:`stan_case` simulates the same marketplace as
:func:`benchmarks.flagship.assessment_case`, compiles the model (``compile``), samples it
(``sampling``: wall time of rstan's ``sampling()``, chains in parallel) and computes the same
headline diagnostics from the draws.

Only rstan is driven (Debian: ``apt-get install r-cran-rstan``); :func:`stan_installation`
says what is there. The file uses only vectors, matrices and integer scalars so that it also
compiles with current CmdStan, for which no driver is written yet.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import diagnostics, headline_draws, marketplace, usable_cores

HERE = Path(__file__).resolve().parent
STAN_FILE = HERE / "platform.stan"
R_SCRIPT = HERE / "run_rstan.R"

#: The prior families ``platform.stan`` mirrors, with the parameters it reads, by prior name.
PRIOR_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "detection_level_logit_mu": ("Normal", ("mu", "sigma")),
    "detection_level_logit_sd": ("HalfNormal", ("sigma",)),
    "efficiency_log_mu": ("Normal", ("mu", "sigma")),
    "efficiency_log_sd": ("HalfNormal", ("sigma",)),
    "prevalence_intercept": ("Normal", ("mu", "sigma")),
    "prevalence_category_sd": ("HalfNormal", ("sigma",)),
    "prevalence_trend_mu": ("Normal", ("mu", "sigma")),
    "prevalence_trend_sd": ("HalfNormal", ("sigma",)),
    "prevalence_cell_sd": ("HalfNormal", ("sigma",)),
    "channel_log_ratio_mu": ("Normal", ("mu", "sigma")),
    "purposive_uplift": ("HalfNormal", ("sigma",)),
    "offender_log_mean_strikes": ("Normal", ("mu", "sigma")),
    "offender_log_dispersion": ("Normal", ("mu", "sigma")),
    "enforcement": ("Beta", ("alpha", "beta")),
}
#: Components the Stan file implements.
STAN_COMPONENTS = {"capacity", "prevalence", "channels", "offenders", "audits", "planted"}


def stan_installation() -> dict[str, str] | None:
    """``{"kind": "rstan", "version": ...}`` when Rscript with rstan is installed, else None."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    try:
        proc = subprocess.run(
            [rscript, "-e", 'cat(as.character(packageVersion("rstan")))'],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return {"kind": "rstan", "version": proc.stdout.strip().splitlines()[-1]}


def _prior_values(priors: dict[str, Any]) -> dict[str, list[float] | float]:
    out: dict[str, list[float] | float] = {}
    for name, (family, keys) in PRIOR_FAMILIES.items():
        spec = priors.get(name)
        if spec is None:  # component inactive: the Stan block is switched off by sizes/flags
            values = [0.0, 1.0] if len(keys) == 2 else [1.0]
        else:
            if spec.distribution != family or not spec.centered or spec.transform:
                raise ValueError(
                    f"prior {name!r} is {spec.to_dict()}; benchmarks/stan/platform.stan mirrors "
                    f"only a centred {family}({', '.join(keys)}) prior: update the Stan file"
                )
            try:
                values = [float(spec.parameters[k]) for k in keys]
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"prior {name!r}: numeric {keys} needed ({exc})") from exc
        out[f"p_{name}"] = values if len(values) == 2 else values[0]
    return out


#: Free variables of the PyMC model that ``platform.stan`` mirrors (partially centred ones by
#: their assembled name), and the likelihood terms. Anything else means the Stan file is stale.
PARTIALLY_CENTRED = (
    "detection_level_logit",
    "log_detected_level",
    "log_detected_rate",
    "channel_log_ratio",
)
FREE_VARIABLES = {
    "detection_level_logit_mu",
    "detection_level_logit_sd",
    "efficiency_log_mu",
    "efficiency_log_sd",
    "efficiency_log_offset",
    "prevalence_intercept",
    "prevalence_category_sd",
    "prevalence_trend_mu",
    "prevalence_trend_sd",
    "prevalence_cell_sd",
    "prevalence_trend_offset",
    "channel_log_ratio_mu",
    "purposive_uplift",
    "offender_log_mean_strikes",
    "offender_log_dispersion",
    "enforcement",
}
LIKELIHOOD_TERMS = {
    "detected",
    "audit_random",
    "audit_purposive",
    "planted_caught",
    "enforcement_suspended",
    "offender_strikes",
}


def centred_mask(pm_model, name: str) -> np.ndarray:
    """Which elements of the partially centred variable ``name`` the PyMC model samples centred.

    Read from the built model's coords (``{name}_centred_element`` / ``{name}_offset_element``,
    see :mod:`risklab.models.components._parametrisation`); a variable that is a plain free
    ``Normal`` is centred everywhere.
    """
    import itertools

    dims = pm_model.named_vars_to_dims[name]
    labels = [
        "|".join(str(part) for part in parts)
        for parts in itertools.product(*(pm_model.coords[d] for d in dims))
    ]
    shape = tuple(len(pm_model.coords[d]) for d in dims)
    centred_coord, offset_coord = f"{name}_centred_element", f"{name}_offset_element"
    if centred_coord in pm_model.coords or offset_coord in pm_model.coords:
        centred = {str(v) for v in pm_model.coords.get(centred_coord, ())}
        return np.array([label in centred for label in labels]).reshape(shape)
    if name in {v.name for v in pm_model.free_RVs}:
        return np.ones(shape, dtype=bool)
    raise ValueError(
        f"{name!r}: neither a free variable nor partially centred; update the Stan file"
    )


def check_structure(pm_model) -> None:
    """Raise ValueError when the PyMC model's free variables or likelihood terms differ from
    those ``platform.stan`` mirrors (the model changed: update the Stan file)."""
    split = {f"{n}_{kind}" for n in PARTIALLY_CENTRED for kind in ("centred", "offset")}
    free = {v.name for v in pm_model.free_RVs}
    unknown = free - FREE_VARIABLES - split - set(PARTIALLY_CENTRED)
    terms = {v.name for v in pm_model.observed_RVs} | {v.name for v in pm_model.potentials}
    unknown_terms = terms - LIKELIHOOD_TERMS
    if unknown or unknown_terms:
        raise ValueError(
            "benchmarks/stan/platform.stan is out of date with PlatformRiskModel: free variables "
            f"{sorted(unknown)} and likelihood terms {sorted(unknown_terms)} are not mirrored"
        )


def stan_data(submission, priors: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data of ``platform.stan`` for a submission.

    The priors (default: the model's defaults; overrides as for :class:`PlatformRiskModel`) and
    the centred/non-centred choice per element are read from the built PyMC model, so the Stan
    fit samples the same model with the same free variables.

    Raises
    ------
    ValueError
        When the submission needs a component the Stan file lacks (appeals, overlaps), or a
        prior's family differs from the one the Stan file mirrors.
    """
    from risklab.models import PlatformRiskModel
    from risklab.models.components.capacity import INTENSITY_FLOOR, review_intensity
    from risklab.models.components.channels import RATIO_SPREAD
    from risklab.models.components.offenders import trader_table
    from risklab.models.components.prevalence import period_position

    model = PlatformRiskModel(submission, priors=priors)
    names = {c.name for c in model.components}
    missing = names - STAN_COMPONENTS
    if missing:
        raise ValueError(f"the Stan peer does not implement the components {sorted(missing)}")
    pm_model = model.build()
    check_structure(pm_model)
    priors = model.priors
    data = submission.data

    def kt(name: str) -> np.ndarray:
        return np.asarray(data[name].transpose("category", "period").values, dtype=float)

    listings = kt("listings")
    k_len, t_len = listings.shape
    intensity = np.maximum(review_intensity(kt("review_hours"), listings), INTENSITY_FLOOR)
    channels = [str(c) for c in data["channel"].values]
    detected = np.asarray(
        data["detected"].transpose("category", "period", "channel").values, dtype=float
    )
    secondary = [i for i, c in enumerate(channels) if c != "proactive"]
    detected_sec = (
        np.concatenate([detected[:, :, i] for i in secondary], axis=0)
        if secondary
        else np.zeros((0, t_len))
    )
    cell_centred = centred_mask(pm_model, "log_detected_rate")
    level_centred = centred_mask(pm_model, "log_detected_level")
    detection_centred = centred_mask(pm_model, "detection_level_logit")
    channel_centred = (
        centred_mask(pm_model, "channel_log_ratio")
        if secondary
        else np.zeros((0, k_len), dtype=bool)
    )
    purposive_n = kt("audit_purposive_sampled") if "audits" in names else np.zeros_like(listings)
    used = np.flatnonzero(purposive_n.sum(axis=1) > 0)
    purposive_map = np.zeros((k_len, used.size))
    purposive_map[used, np.arange(used.size)] = 1.0

    def evidence(n: str, y: str, component: str) -> tuple[np.ndarray, np.ndarray]:
        if component not in names:
            return np.zeros_like(listings), np.zeros_like(listings)
        return kt(n), kt(y)

    audit_n, audit_y = evidence("audit_random_sampled", "audit_random_illegal", "audits")
    _, purposive_y = evidence("audit_purposive_sampled", "audit_purposive_illegal", "audits")
    planted_n, planted_y = evidence("planted", "caught", "planted")

    out: dict[str, Any] = {
        "K": k_len,
        "T": t_len,
        "C2": len(secondary),
        "KP": int(used.size),
        "listings": listings,
        "intensity": intensity,
        "position": period_position(t_len),
        "detected_pro": detected[:, :, channels.index("proactive")],
        "detected_sec": detected_sec,
        "cell_centred": cell_centred.astype(float),
        "level_centred": level_centred.astype(float),
        "detection_centred": detection_centred.astype(float),
        "channel_centred": channel_centred.astype(float),
        "channel_ratio_spread": RATIO_SPREAD,
        "audit_n": audit_n,
        "audit_y": audit_y,
        "purposive_n": purposive_n,
        "purposive_y": purposive_y,
        "purposive_map": purposive_map,
        "planted_n": planted_n,
        "planted_y": planted_y,
    }
    table = trader_table(data) if "offenders" in names else None
    if table is None:
        out.update(
            has_offenders=0,
            R=0,
            strikes=np.zeros(0),
            unsuspended=np.zeros(0),
            NC=0,
            censored_suspended=np.zeros(0),
            X=1,
            below=np.zeros((0, 1)),
            n_detected_traders=0.0,
            past_threshold=0,
            suspended_past_threshold=0,
            threshold=1,
            claimed_enforcement=0.0,
        )
    else:
        censored = table.suspended > 0
        x_len = table.censor_limit + 1
        rows = table.strikes[censored]
        below = (np.arange(x_len)[None, :] < rows[:, None]).astype(float)
        out.update(
            has_offenders=1,
            R=int(table.strikes.size),
            strikes=table.strikes.astype(float),
            unsuspended=table.unsuspended.astype(float),
            NC=int(rows.size),
            censored_suspended=table.suspended[censored].astype(float),
            X=int(x_len),
            below=below,
            n_detected_traders=float(table.detected),
            past_threshold=table.past_threshold,
            suspended_past_threshold=table.suspended_past_threshold,
            threshold=table.threshold,
            claimed_enforcement=table.claimed_enforcement,
        )
    out.update(_prior_values(priors))
    return out


def _r_number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    return repr(float(x)) if math.isfinite(x) else ("Inf" if x > 0 else "-Inf")


def write_rdump(data: dict[str, Any], path: Path) -> Path:
    """Write ``data`` in R dump format (``rstan::read_rdump``); ints stay ints, arrays reals."""
    lines = []
    for name, value in data.items():
        if isinstance(value, bool | np.bool_):
            value = int(value)
        if isinstance(value, int | np.integer):
            lines.append(f"{name} <- {int(value)}L")
            continue
        if isinstance(value, float | np.floating):
            lines.append(f"{name} <- {_r_number(float(value))}")
            continue
        array = np.asarray(value, dtype=float)
        flat = array.ravel(order="F")  # R is column-major
        body = f"c({', '.join(_r_number(v) for v in flat)})" if flat.size else "numeric(0)"
        # Always with .Dim: a plain c(x) of length one would be read as a scalar.
        shape = ", ".join(f"{d}L" for d in np.atleast_1d(array).shape)
        lines.append(f"{name} <- structure({body}, .Dim = c({shape}))")
    path.write_text("\n".join(lines) + "\n")
    return path


_NAME = re.compile(r"^(?P<var>\w+)(?:\[(?P<idx>[\d,]+)\])?$")


def read_draws(path: Path, chains: int) -> dict[str, np.ndarray]:
    """Draws written by ``run_rstan.R``, as arrays of shape (chain, draw, ...)."""
    frame = pd.read_csv(path)
    frame = frame.sort_values(["chain", "draw"])
    n_draw = int(frame["draw"].max()) + 1
    out: dict[str, np.ndarray] = {}
    groups: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for column in frame.columns:
        match = _NAME.match(str(column))
        if not match or column in ("chain", "draw"):
            continue
        idx = tuple(int(i) - 1 for i in match["idx"].split(",")) if match["idx"] else ()
        groups.setdefault(match["var"], []).append((idx, column))
    for var, items in groups.items():
        shape = tuple(max(i[d] for i, _ in items) + 1 for d in range(len(items[0][0])))
        array = np.full((chains, n_draw, *shape), np.nan)
        for idx, column in items:
            array[(slice(None), slice(None), *idx)] = (
                frame[column].to_numpy().reshape(chains, n_draw)
            )
        out[var] = array
    return out


def stan_case(
    *,
    seed: int = 1,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float | None = None,
    n_categories: int = 10,
    n_periods: int = 24,
    total_listings: float = 1e8,
    n_traders: int | None = 100_000,
    cores: int | None = None,
    timeout: float = 3600.0,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Fit the flagship marketplace with Stan; the same record as the PyMC assessment case.

    ``stages``: ``build`` (data preparation in Python), ``compile`` (stanc + C++), ``sampling``
    (rstan's ``sampling()``); ``r_wall_s`` is the whole R process. With ``cache_dir`` the
    compiled model is kept there (keyed by the Stan file's MD5) and reused, and ``compile`` is
    then the time to load it. Raises RuntimeError when rstan is missing or R fails.
    """
    from risklab.models import SamplerConfig

    installation = stan_installation()
    if installation is None:
        raise RuntimeError("no Stan installation: install r-cran-rstan (Debian) to run the peer")
    config = {"draws": draws, "tune": tune, "chains": chains}
    if target_accept is not None:
        config["target_accept"] = target_accept
    cfg = SamplerConfig(**config)
    sim = marketplace(
        seed,
        n_categories=n_categories,
        n_periods=n_periods,
        total_listings=total_listings,
        n_traders=n_traders,
    )
    submission = sim.to_submission()
    start = time.perf_counter()
    data = stan_data(submission)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="risklab-stan-") as tmp:
        tmp_path = Path(tmp)
        write_rdump(data, tmp_path / "data.R")
        command = [
            "Rscript",
            str(R_SCRIPT),
            str(STAN_FILE),
            str(tmp_path / "data.R"),
            str(tmp_path),
            str(cfg.chains),
            str(cfg.draws),
            str(cfg.tune),
            str(seed),
            str(cfg.target_accept),
            str(cores or min(cfg.chains, usable_cores())),
            str(cache_dir or ""),
        ]
        r_start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        r_wall = time.perf_counter() - r_start
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"rstan failed (exit {proc.returncode}):\n{tail}")
        timing = dict(
            line.split("=", 1)
            for line in (tmp_path / "timing.txt").read_text().splitlines()
            if "=" in line
        )
        draws_arrays = read_draws(tmp_path / "draws.csv", cfg.chains)
    has_offenders = bool(data["has_offenders"])
    headline = headline_draws(
        draws_arrays["prevalence"],
        draws_arrays["detection_rate"],
        data["listings"],
        enforcement=draws_arrays["enforcement_q"] if has_offenders else None,
        non_enforcement_share=draws_arrays["non_enforcement_share"] if has_offenders else None,
    )
    diag = diagnostics(headline)
    sampling = float(timing["sampling_s"])
    stages = {"build": build_s, "compile": float(timing["compile_s"]), "sampling": sampling}
    total = float(sum(stages.values()))
    return {
        "case": {
            "seed": seed,
            "n_categories": n_categories,
            "n_periods": n_periods,
            "total_listings": total_listings,
            "n_traders": n_traders,
        },
        "sampler": {**{k: v for k, v in config.items()}, "sampler": "stan"},
        "stan": {
            **installation,
            "stan_version": timing.get("stan"),
            "compiled_model_cached": timing.get("cached") == "TRUE",
        },
        "stages": stages,
        "total_s": total,
        "r_wall_s": r_wall,
        "divergences": int(timing["divergences"]),
        "treedepth_hits": int(timing["treedepth_hits"]),
        "gradient_evaluations": int(timing["leapfrog_steps"]),
        "min_ess_bulk": diag["min_ess_bulk"],
        "min_ess_bulk_at": diag.get("min_ess_bulk_at"),
        "min_ess_tail": diag["min_ess_tail"],
        "max_rhat": diag["max_rhat"],
        "max_rhat_at": diag.get("max_rhat_at"),
        "ess_per_s": diag["min_ess_bulk"] / sampling if sampling > 0 else float("nan"),
        "ess_per_s_total": diag["min_ess_bulk"] / total if total > 0 else float("nan"),
        "headline": diag["summary"],
    }
