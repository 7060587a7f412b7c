"""Submission consistency: is each figure the platform reported plausible under the fitted model?

A platform's submission reports figures the model can reproduce: its detections per category and
channel, the detected share it calls prevalence (``claimed_prevalence``), and a claimed proactive
detection rate. :func:`check_consistency` asks of each one whether the fitted model could have
produced it.

* **Detections** (per category × channel, summed over periods; optionally per cell). For every
  posterior draw ``s`` the model's channel probabilities (``risklab/models/components/
  channels.py``) give replicated counts::

      y_rep[s, k, t, c] ~ Binomial(N[k, t], π[s, k, t] · d_c[s, k, t] / (1 − φ[s, k]))

  (``φ``: the false-positive share, zero without appeals data), summed over periods. The observed
  sum is compared with the replicates by the two-sided posterior predictive p-value (mid-p, so
  that ties of discrete counts do not bias it)::

      p = min(1, 2 · min(P(y_rep > y) + ½ P(y_rep = y), P(y_rep < y) + ½ P(y_rep = y)))

* **Detected share** per category: the claimed prevalence against the replicated detected share
  ``Σ_{t,c} y_rep[s, k, t, c] / Σ_t N[k, t]`` — what the platform would report if it computed
  its claim, as platforms do, from its actioned detections (:mod:`risklab.counterfactual`,
  ``reported_share``). A claim outside that distribution is not the platform's own detected
  share (a claim below it understates even what was detected). Same two-sided p-value.
* **Claimed detection rate** per category against the posterior proactive detection rate its
  review hours buy (listings-weighted over periods, as in :func:`risklab.assess`). This is a
  parameter, not data, so the check is the one-sided tail ``P(d ≥ claim)``: the claim is flagged
  when the posterior puts less than ``alpha`` on detection rates at least as high as claimed.

Replicates are drawn with a seed derived from the fit's seed (or ``random_seed``), so the same
fit always gives the same report. Under a correct model and a point-mass posterior at the truth,
the count p-values are uniform; with a real posterior (fitted to the same counts) they are
conservative — the model absorbs part of any discrepancy — so a flag is strong evidence, and a
figure the model can absorb on its own (one category × channel count with no other evidence on
that category) will rarely be flagged. ``docs/consistency-and-sensitivity.md`` explains how to
read the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from risklab._atomic import atomic_path
from risklab.dims import CATEGORY, CHANNEL, DEFAULT_PROB, PERIOD, SAMPLE_DIMS
from risklab.models.config import derive_seeds
from risklab.models.diagnostics import unconverged_warning

__all__ = [
    "CONSISTENCY_COLUMNS",
    "ConsistencyReport",
    "check_consistency",
    "consistency_table",
    "predictive_p_value",
]

#: Columns of :attr:`ConsistencyReport.table`, in order.
CONSISTENCY_COLUMNS = (
    "kind",
    "category",
    "channel",
    "period",
    "figure",
    "observed",
    "predictive_median",
    "predictive_low",
    "predictive_high",
    "p_value",
    "flagged",
)

#: Sub-stream (of the fit's posterior-predictive seed) of the consistency replicates
#: (:mod:`risklab.assess` uses sub-stream 1 for the never-detected traders).
_CONSISTENCY_STREAM = 2
#: Posterior draws replicated at once (bounds memory: draws × categories × periods × channels).
_CHUNK = 256


@dataclass
class ConsistencyReport:
    """Posterior predictive checks of the figures a platform reported.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per reported figure, columns :data:`CONSISTENCY_COLUMNS`. ``kind`` is
        ``"detections"`` (category × channel, summed over periods), ``"detections_cell"`` (one
        cell, with ``period``; only with ``per_cell=True``), ``"detected_share"`` (the claimed
        prevalence) or ``"detection_rate"`` (the claimed proactive detection rate). For the first
        three, ``predictive_*`` summarise the posterior predictive replicates and ``p_value`` is
        two-sided; for ``detection_rate`` they summarise the posterior detection rate and
        ``p_value`` is ``P(d ≥ claim)``.
    flags : list of str
        One plain-language sentence per flagged figure, in table order.
    notes : list of str
        Caveats: how many flags chance alone would give, an unconverged fit.
    replicates : xarray.Dataset
        ``detections`` over ``(chain, draw, category, channel)`` and ``detected_share`` over
        ``(chain, draw, category)``: the posterior predictive replicates behind the table.
    prob : float
        Mass of the equal-tailed intervals.
    alpha : float
        Flagging level.
    """

    table: pd.DataFrame
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    replicates: xr.Dataset | None = None
    prob: float = DEFAULT_PROB
    alpha: float = 0.05

    @property
    def flagged(self) -> pd.DataFrame:
        """The flagged rows of :attr:`table`."""
        return self.table[self.table["flagged"]]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :attr:`table` as CSV, atomically."""
        path = Path(path)
        with atomic_path(path, suffix=".csv") as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
        return path


def predictive_p_value(replicates: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Two-sided mid-p posterior predictive p-value along the first axis.

    Parameters
    ----------
    replicates : numpy.ndarray, shape (S, ...)
        Replicated values, one per posterior draw.
    observed : numpy.ndarray, shape (...)
        The observed values.

    Returns
    -------
    numpy.ndarray, shape (...)
        ``min(1, 2 · min(P(rep > obs) + ½ P(rep = obs), P(rep < obs) + ½ P(rep = obs)))``.
    """
    replicates = np.asarray(replicates)
    observed = np.asarray(observed)
    above = (replicates > observed).mean(axis=0)
    ties = (replicates == observed).mean(axis=0)
    upper = above + 0.5 * ties
    lower = 1.0 - above - 0.5 * ties
    return np.minimum(1.0, 2.0 * np.minimum(upper, lower))


def _flat(da: xr.DataArray, dims: tuple[str, ...]) -> np.ndarray:
    da = da.transpose(*SAMPLE_DIMS, *dims)
    return np.asarray(da.values, dtype=float).reshape(-1, *da.shape[2:])


def _channel_probabilities(posterior: xr.Dataset, data: xr.Dataset) -> np.ndarray:
    """Per-draw probability that a listing is actioned by each channel, shape (S, K, T, C).

    ``π · d_c / (1 − φ)`` with the channel rates of ``DetectionChannels``:
    ``d_c = 1 − exp(−ρ[c, k] · mean_t d_pro[k, t])`` for the channels other than proactive.
    """
    categories = [str(c) for c in data[CATEGORY].values]
    prevalence = _flat(posterior["prevalence"].sel({CATEGORY: categories}), (CATEGORY, PERIOD))
    d_pro = _flat(posterior["detection_rate"].sel({CATEGORY: categories}), (CATEGORY, PERIOD))
    rates = []
    for channel in (str(c) for c in data[CHANNEL].values):
        if channel == "proactive":
            rates.append(d_pro)
            continue
        if "channel_ratio" not in posterior:
            raise ValueError(
                f"the posterior lacks 'channel_ratio', needed for the {channel!r} detections"
            )
        ratio = posterior["channel_ratio"].sel({"secondary_channel": channel, CATEGORY: categories})
        rate_k = -np.expm1(-_flat(ratio, (CATEGORY,)) * d_pro.mean(axis=2))
        rates.append(np.broadcast_to(rate_k[:, :, None], d_pro.shape))
    p = prevalence[..., None] * np.stack(rates, axis=-1)
    if "false_positive_share" in posterior:
        phi = _flat(posterior["false_positive_share"].sel({CATEGORY: categories}), (CATEGORY,))
        p = p / (1.0 - phi[:, :, None, None])
    return np.clip(p, 0.0, 1.0)


def _replicate(
    listings: np.ndarray, p: np.ndarray, rng: np.random.Generator, keep_cells: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Binomial replicates, summed over periods: (S, K, C); the cells (S, K, T, C) if asked."""
    n = listings[None, :, :, None]
    sums = np.empty((p.shape[0], p.shape[1], p.shape[3]), dtype=np.int64)
    cells = np.empty(p.shape, dtype=np.int64) if keep_cells else None
    for start in range(0, p.shape[0], _CHUNK):
        block = rng.binomial(n, p[start : start + _CHUNK])
        sums[start : start + _CHUNK] = block.sum(axis=2)
        if cells is not None:
            cells[start : start + _CHUNK] = block
    return sums, cells


def _summary(draws: np.ndarray, prob: float) -> np.ndarray:
    """Median, low, high along the first axis: shape (3, ...)."""
    tail = (1.0 - prob) / 2.0
    q = np.quantile(draws, [tail, 0.5, 1.0 - tail], axis=0)
    return np.stack([q[1], q[0], q[2]])


def consistency_table(
    posterior: xr.Dataset,
    data: xr.Dataset,
    *,
    rng: np.random.Generator,
    prob: float = DEFAULT_PROB,
    alpha: float = 0.05,
    per_cell: bool = False,
) -> tuple[pd.DataFrame, xr.Dataset]:
    """The consistency table from posterior draws and a submission's data.

    The engine of :func:`check_consistency`, for callers holding draws rather than a fitted
    model (e.g. known-truth checks).

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws over ``(chain, draw, ...)`` of ``prevalence`` and ``detection_rate`` (category ×
        period), ``channel_ratio`` (secondary_channel × category; needed when channels other
        than proactive were reported) and optionally ``false_positive_share`` (category).
    data : xarray.Dataset
        The submission's data (``listings``, ``detected``, ``claimed_prevalence``,
        ``claimed_detection_rate``).
    rng : numpy.random.Generator
        Source of the replicates.
    prob, alpha, per_cell
        As in :func:`check_consistency`.

    Returns
    -------
    table : pandas.DataFrame
    replicates : xarray.Dataset
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    for name in ("prevalence", "detection_rate"):
        if name not in posterior:
            raise ValueError(f"the posterior lacks {name!r}")
    categories = [str(c) for c in data[CATEGORY].values]
    periods = [str(t) for t in data[PERIOD].values]
    channels = [str(c) for c in data[CHANNEL].values]
    sample_shape = tuple(int(posterior.sizes[d]) for d in SAMPLE_DIMS)
    listings = data["listings"].transpose(CATEGORY, PERIOD).values.astype(np.int64)
    detected = data["detected"].transpose(CATEGORY, PERIOD, CHANNEL).values.astype(np.int64)

    p = _channel_probabilities(posterior, data)
    sums, cells = _replicate(listings, p, rng, per_cell)
    total = listings.sum(axis=1).astype(float)
    share = sums.sum(axis=2) / total[None, :]
    rows: list[dict] = []

    observed = detected.sum(axis=1)
    p_values = predictive_p_value(sums, observed)
    stats = _summary(sums, prob)
    for i, cat in enumerate(categories):
        for j, channel in enumerate(channels):
            rows.append(
                _row("detections", cat, channel, None, f"{channel} detections, {cat}",
                     observed[i, j], stats[:, i, j], p_values[i, j], alpha)
            )  # fmt: skip
    if cells is not None:
        p_cells = predictive_p_value(cells, detected)
        stats_cells = _summary(cells, prob)
        for i, cat in enumerate(categories):
            for t, period in enumerate(periods):
                for j, channel in enumerate(channels):
                    rows.append(
                        _row("detections_cell", cat, channel, period,
                             f"{channel} detections, {cat}, {period}", detected[i, t, j],
                             stats_cells[:, i, t, j], p_cells[i, t, j], alpha)
                    )  # fmt: skip

    claimed = data["claimed_prevalence"].values.astype(float)
    p_share = predictive_p_value(share, claimed)
    stats_share = _summary(share, prob)
    for i, cat in enumerate(categories):
        rows.append(
            _row("detected_share", cat, None, None, f"claimed prevalence (detected share), {cat}",
                 claimed[i], stats_share[:, i], p_share[i], alpha)
        )  # fmt: skip

    weights = listings / listings.sum(axis=1, keepdims=True)
    d_pro = _flat(posterior["detection_rate"].sel({CATEGORY: categories}), (CATEGORY, PERIOD))
    detection = (d_pro * weights[None]).sum(axis=2)
    claimed_rate = data["claimed_detection_rate"].values.astype(float)
    stats_rate = _summary(detection, prob)
    for i, cat in enumerate(categories):
        if not np.isfinite(claimed_rate[i]):
            continue
        tail = float((detection[:, i] >= claimed_rate[i]).mean())
        rows.append(
            _row("detection_rate", cat, None, None, f"claimed proactive detection rate, {cat}",
                 claimed_rate[i], stats_rate[:, i], tail, alpha)
        )  # fmt: skip

    table = pd.DataFrame(rows, columns=list(CONSISTENCY_COLUMNS))
    dims = (*SAMPLE_DIMS, CATEGORY)
    replicates = xr.Dataset(
        {
            "detections": (
                (*dims, CHANNEL),
                sums.reshape(*sample_shape, len(categories), len(channels)),
            ),
            "detected_share": (dims, share.reshape(*sample_shape, len(categories))),
        },
        coords={CATEGORY: categories, CHANNEL: channels},
    )
    return table, replicates


def _row(kind, category, channel, period, figure, observed, stats, p_value, alpha) -> dict:
    return {
        "kind": kind,
        "category": category,
        "channel": channel,
        "period": period,
        "figure": figure,
        "observed": float(observed),
        "predictive_median": float(stats[0]),
        "predictive_low": float(stats[1]),
        "predictive_high": float(stats[2]),
        "p_value": float(p_value),
        "flagged": bool(p_value < alpha),
    }


def check_consistency(
    fitted,
    *,
    prob: float = DEFAULT_PROB,
    alpha: float = 0.05,
    per_cell: bool = False,
    random_seed: int | None = None,
) -> ConsistencyReport:
    """Posterior predictive checks of every figure the platform reported.

    Parameters
    ----------
    fitted : PlatformRiskModel
        A fitted model; its submission holds the reported figures.
    prob : float, default 0.90
        Mass of the equal-tailed predictive intervals.
    alpha : float, default 0.05
        A figure is flagged when its p-value (two-sided for counts and the detected share,
        ``P(d ≥ claim)`` for the claimed detection rate) is below ``alpha``.
    per_cell : bool, default False
        Also check each category × period × channel count.
    random_seed : int, optional
        Seed of the replicates; default derived from the fit's seed, so the report is
        reproducible.

    Returns
    -------
    ConsistencyReport

    Notes
    -----
    With ``m`` checks at level ``alpha`` about ``alpha · m`` figures are flagged by chance when
    the model holds and the posterior sits at the truth; with a posterior fitted to the same
    counts, fewer (posterior predictive p-values are conservative). A flag means the figure
    conflicts with the rest of the submission and the evidence under the model — a question to
    put to the platform, not by itself proof of misreporting.
    """
    idata = fitted.require_fitted()
    base = int(idata.attrs.get("random_seed", 0)) if random_seed is None else int(random_seed)
    stream = derive_seeds(base)["posterior_predictive"]
    rng = np.random.default_rng([stream, _CONSISTENCY_STREAM])
    table, replicates = consistency_table(
        fitted.posterior,
        fitted.submission.data,
        rng=rng,
        prob=prob,
        alpha=alpha,
        per_cell=per_cell,
    )
    posterior = fitted.posterior
    flags = [_sentence(row, prob, posterior) for row in table[table["flagged"]].itertuples()]
    notes = []
    n_random = int((table["kind"] != "detection_rate").sum())
    notes.append(
        f"{int(table['flagged'].sum())} of {len(table)} reported figures flagged at level "
        f"{alpha:g}. If the model holds, chance alone flags about {alpha * n_random:.1f} of the "
        f"{n_random} count and share checks (fewer with a posterior fitted to these counts)."
    )
    convergence = getattr(fitted, "convergence", None)
    if convergence is not None and not convergence.passed:
        notes.append(unconverged_warning(convergence, "these checks"))
    return ConsistencyReport(
        table=table, flags=flags, notes=notes, replicates=replicates, prob=prob, alpha=alpha
    )


def _sentence(row, prob: float, posterior: xr.Dataset) -> str:
    """A plain-language sentence for one flagged row."""
    interval = f"{prob:.0%} posterior predictive interval"
    if row.kind in ("detections", "detections_cell"):
        where = row.category if row.period is None else f"{row.category} in {row.period}"
        direction = "more" if row.observed > row.predictive_median else "fewer"
        return (
            f"The platform reported {row.observed:,.0f} {row.channel} detections in {where}: "
            f"{direction} than the model expects from the rest of the submission and the "
            f"evidence ({interval} {row.predictive_low:,.0f}–{row.predictive_high:,.0f}; "
            f"two-sided p = {row.p_value:.3g})."
        )
    if row.kind == "detected_share":
        if row.observed < row.predictive_median:
            reading = "it understates even the share of listings the platform's own detections "
            reading += "imply"
        else:
            reading = "it exceeds the share of listings the platform's detections imply"
        return (
            f"The prevalence claimed for {row.category} ({row.observed:.3%}) is not its "
            f"detected share: {reading} ({interval} {row.predictive_low:.3%}–"
            f"{row.predictive_high:.3%}; two-sided p = {row.p_value:.3g})."
        )
    sentence = (
        f"The claimed proactive detection rate for {row.category} ({row.observed:.0%}) is more "
        f"than its review hours buy under the model: P(detection rate ≥ claim) = "
        f"{row.p_value:.3g}; posterior median {row.predictive_median:.0%} ({prob:.0%} interval "
        f"{row.predictive_low:.0%}–{row.predictive_high:.0%})."
    )
    if "hidden_share" in posterior:
        reach = 1.0 - posterior["hidden_share"].sel({CATEGORY: row.category})
        p_reach = float((reach >= row.observed).mean())
        sentence += (
            f" Even unlimited review would reach it with probability {p_reach:.2f} (the share "
            "of illegal listings within reach of proactive detection)."
        )
    return sentence
