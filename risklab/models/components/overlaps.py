"""Channel overlaps: multiple-systems estimation of prevalence inside the platform model.

``overlaps.csv`` cross-classifies the listings the channels detected by *capture history* — which
combination of channels caught each one. Per category ``k`` with rows in the table, the units are
the illegal listings over the submission period, the same units the detection binomials count::

    N[k, t] = π[k, t] · listings[k, t],        N[k] = Σ_t N[k, t]

Within a cell each illegal listing has a capture history ``h ∈ {0, 1}^C`` over the table's ``C``
channels, drawn from a log-linear (quadratic-exponential) model with pairwise list dependence::

    P(h | k, t) = exp(Σ_c h_c logit d_c[k, t] + Σ_{c<c'} h_c h_c' γ[c, c']) / Z[k, t]

where ``d_c[k, t]`` is the model's channel rate (``ctx.shared["channel_rate"]``) and ``Z`` sums the
numerator over all ``2^C`` histories, the unobserved all-zero one included. With ``γ = 0`` the
channels are independent and ``P(c catches)`` is exactly ``d_c``; ``γ[c, c'] > 0`` (positive
dependence: listings one channel finds are easier for the other) makes the overlap larger than
independence predicts. ``exp(γ)`` is the conditional odds ratio of the two channels given the
others. Each non-zero history's count is Poisson::

    n_h[k] ~ Poisson(Σ_t N[k, t] · P(h | k, t))  =  Poisson(N[k] · p̄_h[k])

with ``p̄_h`` the illegal-listing-weighted mean history probability. This is the standard
Poisson log-linear likelihood of multiple-systems estimation on the ``2^C − 1`` observed cells
(histories missing from the table are zeros), so the overlaps identify ``N[k]`` — and with the
listings, prevalence — without audits. Prior: ``γ ~ Normal(0, 0.5)`` per channel pair, shared by
categories (``overlap_dependence``): odds ratios between 0.38 and 2.7 (95%). With two channels
the pairwise term is not identified by the table (three cells, four parameters) and its prior
carries it; with three channels the two-way model is saturated and with four it has 4 degrees of
freedom.

Approximations (see ``docs/overlaps-and-appeals.md``): the population is closed over the period;
dependence is only pairwise (no three-way terms); the channel totals of the table re-use the
detections that ``detections.csv`` already counts, so the marginal detected rates are counted
twice (they are identified to ~1/√n either way; the overlap information that identifies ``d`` and
hence ``π`` is counted once); with ``γ ≠ 0`` the channel's marginal rate under this model differs
slightly from ``d_c`` (``exp(logit d_c)`` is then the odds of capture given no other channel).
"""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from risklab.data._dataset import overlaps_from_json
from risklab.dims import CATEGORY, CHANNEL
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = [
    "OVERLAP_CATEGORY",
    "OVERLAP_HISTORY",
    "OVERLAP_PAIR",
    "ChannelOverlaps",
    "OverlapTable",
    "overlap_table",
]

OVERLAP_CATEGORY = "overlap_category"
OVERLAP_HISTORY = "overlap_history"
OVERLAP_PAIR = "overlap_pair"


class OverlapTable:
    """The overlaps table as the model uses it: every non-zero history, zeros filled in.

    Attributes
    ----------
    channels : list of str
        The table's channel columns (in the table's order).
    categories : list of str
        Categories with at least one row.
    histories : numpy.ndarray
        ``(2^C − 1, C)`` 0/1 matrix of the non-zero histories.
    counts : numpy.ndarray
        ``(len(categories), 2^C − 1)`` observed counts (0 where the table has no row).
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.channels = [str(c) for c in frame.columns if c not in ("category", "count")]
        if len(self.channels) < 2:
            raise ValueError("the overlaps table needs at least two channel columns")
        all_histories = np.array(list(product((0, 1), repeat=len(self.channels))), dtype=np.int64)
        self.histories = all_histories[all_histories.sum(axis=1) > 0]
        self.categories = sorted({str(c) for c in frame["category"]})
        index = {tuple(int(v) for v in h): j for j, h in enumerate(self.histories)}
        self.counts = np.zeros((len(self.categories), len(self.histories)), dtype=np.int64)
        cat_index = {c: i for i, c in enumerate(self.categories)}
        for rec in frame.to_dict("records"):
            history = tuple(int(rec[c]) for c in self.channels)
            if sum(history) == 0:
                raise ValueError("the overlaps table holds an all-zero history")
            self.counts[cat_index[str(rec["category"])], index[history]] += int(rec["count"])

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Index pairs ``(c, c')``, ``c < c'``, of the table's channels."""
        return list(combinations(range(len(self.channels)), 2))

    @property
    def pair_labels(self) -> list[str]:
        """Labels ``"a:b"`` of the channel pairs."""
        return [f"{self.channels[i]}:{self.channels[j]}" for i, j in self.pairs]

    @property
    def history_labels(self) -> list[str]:
        """Histories as 0/1 strings in channel order, e.g. ``"101"``."""
        return ["".join(str(v) for v in h) for h in self.histories]

    def pair_design(self) -> np.ndarray:
        """``(2^C − 1, n_pairs)`` products ``h_c h_c'`` of the histories."""
        return np.stack([self.histories[:, i] * self.histories[:, j] for i, j in self.pairs], 1)


def overlap_table(data: xr.Dataset) -> OverlapTable | None:
    """The overlaps table of a submission Dataset, or None when absent or empty."""
    text = data.attrs.get("overlaps_json")
    if not text:
        return None
    frame = overlaps_from_json(str(text))
    if len(frame) == 0 or int(frame["count"].sum()) == 0:
        return None
    return OverlapTable(frame)


def history_log_probabilities(logit_rate, gamma, histories: np.ndarray, pair_design: np.ndarray):
    """Log-probabilities of the non-zero histories under the pairwise log-linear model.

    Parameters
    ----------
    logit_rate : tensor
        ``(..., C)`` logits of the channel rates.
    gamma : tensor
        ``(n_pairs,)`` pairwise log odds ratios.
    histories, pair_design : numpy.ndarray
        From :class:`OverlapTable`.

    Returns
    -------
    tensor
        ``(..., 2^C − 1)`` log ``P(h)`` (normalised over all ``2^C`` histories).
    """
    score = pt.tensordot(logit_rate, histories.T.astype(float), axes=[[-1], [0]])
    score = score + pt.dot(pair_design.astype(float), gamma)
    # The all-zero history has score 0: log Z = log(1 + Σ_h exp(score_h)).
    zero = pt.zeros_like(score[..., :1])
    log_z = pt.logsumexp(pt.concatenate([zero, score], axis=-1), axis=-1, keepdims=True)
    return score - log_z


class ChannelOverlaps(Component):
    """Poisson log-linear likelihood of the channels' capture histories (overlaps.csv)."""

    name = "overlaps"
    requires = ("prevalence", "channel_rate")
    provides = ("overlap_dependence",)
    default_priors = {
        # Pairwise log odds ratio between two channels' captures (list dependence), shared by
        # categories: 95% of odds ratios between 0.38 and 2.7; 0 is independence.
        "overlap_dependence": Prior("Normal", mu=0.0, sigma=0.5),
    }

    def is_active(self, data: xr.Dataset) -> bool:
        return overlap_table(data) is not None

    def build(self, ctx: BuildContext) -> None:
        table = overlap_table(ctx.data)
        if table is None:  # pragma: no cover - guarded by is_active
            raise RuntimeError("the overlaps component needs a non-empty overlaps table")
        model_channels = [str(c) for c in ctx.data[CHANNEL].values]
        unknown = [c for c in table.channels if c not in model_channels]
        if unknown:
            raise ValueError(f"overlaps.csv: channels {unknown} are not in detections.csv")
        categories = [str(c) for c in ctx.data[CATEGORY].values]
        unknown = [c for c in table.categories if c not in categories]
        if unknown:
            raise ValueError(f"overlaps.csv: categories {unknown} are not in listings.csv")
        cat_idx = np.array([categories.index(c) for c in table.categories], dtype=np.int64)
        ch_idx = np.array([model_channels.index(c) for c in table.channels], dtype=np.int64)

        model = pm.modelcontext(None)
        model.add_coord(OVERLAP_CATEGORY, table.categories)
        model.add_coord(OVERLAP_HISTORY, table.history_labels)
        model.add_coord(OVERLAP_PAIR, table.pair_labels)
        gamma = ctx.prior("overlap_dependence", dims=[OVERLAP_PAIR])

        rate = ctx.shared["channel_rate"][cat_idx][:, :, ch_idx]  # (K', T, C)
        logit_rate = pt.log(rate) - pt.log1p(-rate)
        log_p = history_log_probabilities(logit_rate, gamma, table.histories, table.pair_design())
        listings = ctx.values("listings").astype(float)[cat_idx]
        illegal = ctx.shared["prevalence"][cat_idx] * listings  # (K', T)
        total = pm.Deterministic("overlap_illegal_listings", illegal.sum(axis=1),
                                 dims=OVERLAP_CATEGORY)  # fmt: skip
        expected = pt.sum(illegal[:, :, None] * pt.exp(log_p), axis=1)  # (K', H)
        pm.Deterministic(
            "overlap_unseen_expected", total - expected.sum(axis=1), dims=OVERLAP_CATEGORY
        )
        pm.Poisson(
            "overlap_histories",
            mu=expected,
            observed=table.counts,
            dims=(OVERLAP_CATEGORY, OVERLAP_HISTORY),
        )
        ctx.shared["overlap_dependence"] = gamma
