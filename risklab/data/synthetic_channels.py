"""Channel overlaps and complaint reversals for a simulated marketplace, from its truth.

:func:`add_overlaps` adds an ``overlaps`` table (capture histories over the detection channels)
and :func:`add_appeals` an ``appeals`` table (complaints against removals and how many were
overturned) to a :class:`~risklab.data.synthetic.SimulatedMarketplace`. Both draw from their own
random streams (``numpy.random.default_rng([seed, 2])`` and ``[seed, 3]``), so the tables that
:func:`~risklab.data.synthetic.simulate_marketplace` made are unchanged (except that
:func:`add_appeals` by default adds the false positives to the detections, which is the point).

The generating process is the one the platform model assumes (``docs/overlaps-and-appeals.md``):
illegal listings ``N[k, t] ~ Binomial(listings, π)`` each get a capture history from the pairwise
log-linear model with the true channel rates and the chosen dependence; actioned detections are
true detections plus false positives making up the share ``φ[k]`` of them; appealed decisions are
overturned with probability ``invlogit(logit φ[k] + δ)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations, product

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from risklab.data.synthetic import SimulatedMarketplace

__all__ = ["add_appeals", "add_overlaps", "true_channel_rates"]


def true_channel_rates(sim: SimulatedMarketplace) -> dict[str, np.ndarray]:
    """True (category × period) rate of every channel of a simulated marketplace."""
    d_pro = np.array([sim.truth["detection_rate"][c] for c in sim.truth["categories"]])
    channels = list(dict.fromkeys(sim.tables["detections"]["channel"]))
    rates = {"proactive": d_pro}
    for channel in channels:
        if channel != "proactive":
            rate_k = -np.expm1(-sim.truth["channel_ratio"][channel] * d_pro.mean(axis=1))
            rates[channel] = np.broadcast_to(rate_k[:, None], d_pro.shape)
    return {c: rates[c] for c in channels}


def _listings(sim: SimulatedMarketplace) -> np.ndarray:
    df = sim.tables["listings"]
    wide = df.pivot(index="category", columns="period", values="listings")
    return wide.loc[sim.truth["categories"], sim.truth["periods"]].to_numpy(dtype=np.int64)


def add_overlaps(
    sim: SimulatedMarketplace,
    rng_seed: int | None = None,
    *,
    dependence: float | Mapping[str, float] = 0.0,
    categories: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
) -> SimulatedMarketplace:
    """Add an ``overlaps`` table drawn from the marketplace's truth (in place; also returned).

    Parameters
    ----------
    sim : SimulatedMarketplace
        From :func:`risklab.data.synthetic.simulate_marketplace`.
    rng_seed : int, optional
        Seed of the overlap stream; default the marketplace's seed (stream ``[seed, 2]``).
    dependence : float or mapping, default 0.0
        Pairwise log odds ratio ``γ`` between channels: one value for every pair, or a mapping
        ``{"proactive:notice": 0.5, ...}`` (pairs not named are independent).
    categories : sequence of str, optional
        Categories with overlap data; default all.
    channels : sequence of str, optional
        Channels that are columns of the table; default every channel of the detections.

    Returns
    -------
    SimulatedMarketplace
        With ``tables["overlaps"]`` and truth keys ``overlap_categories``,
        ``overlap_channels``, ``overlap_dependence`` (by pair), ``overlap_illegal_listings``
        (the realised illegal listings of each overlap category over the period) and
        ``overlap_observed`` (those caught by at least one channel).
    """
    seed = sim.truth["seed"] if rng_seed is None else rng_seed
    rng = np.random.default_rng([int(seed), 2])
    all_cats = list(sim.truth["categories"])
    rates = true_channel_rates(sim)
    channels = list(rates) if channels is None else [str(c) for c in channels]
    categories = all_cats if categories is None else [str(c) for c in categories]
    pairs = list(combinations(range(len(channels)), 2))
    labels = [f"{channels[i]}:{channels[j]}" for i, j in pairs]
    if isinstance(dependence, Mapping):
        gamma = np.array([float(dependence.get(lab, 0.0)) for lab in labels])
    else:
        gamma = np.full(len(pairs), float(dependence))
    histories = np.array(list(product((0, 1), repeat=len(channels))), dtype=np.int64)
    pair_x = np.stack([histories[:, i] * histories[:, j] for i, j in pairs], axis=1)
    pi = np.array([sim.truth["prevalence"][c] for c in all_cats])
    listings = _listings(sim)
    rows = []
    illegal_total: dict[str, int] = {}
    observed: dict[str, int] = {}
    for cat in categories:
        k = all_cats.index(cat)
        counts = np.zeros(len(histories), dtype=np.int64)
        n_illegal = 0
        for t in range(listings.shape[1]):
            n = int(rng.binomial(listings[k, t], pi[k, t]))
            n_illegal += n
            logit_d = np.array([logit(rates[c][k, t]) for c in channels])
            score = histories @ logit_d + pair_x @ gamma
            p = np.exp(score - np.logaddexp.reduce(score))
            counts += rng.multinomial(n, p / p.sum())
        illegal_total[cat] = n_illegal
        observed[cat] = int(counts[1:].sum())
        for h, n_h in zip(histories[1:], counts[1:], strict=True):
            if n_h > 0:
                rows.append((cat, *(int(v) for v in h), int(n_h)))
    sim.tables["overlaps"] = pd.DataFrame(rows, columns=["category", *channels, "count"])
    sim.truth.update(
        overlap_categories=categories,
        overlap_channels=channels,
        overlap_dependence=dict(zip(labels, gamma.tolist(), strict=True)),
        overlap_illegal_listings=illegal_total,
        overlap_observed=observed,
    )
    return sim


def add_appeals(
    sim: SimulatedMarketplace,
    rng_seed: int | None = None,
    *,
    false_positive_share: float | Mapping[str, float] | None = None,
    false_positive_logit_mu: float = -3.0,
    false_positive_logit_sd: float = 0.4,
    appeal_rate: float = 0.2,
    selection: float = 0.0,
    categories: Sequence[str] | None = None,
    false_positives_in_detections: bool = True,
) -> SimulatedMarketplace:
    """Add an ``appeals`` table (and false positives in the detections) from a truth φ.

    Parameters
    ----------
    sim : SimulatedMarketplace
        From :func:`risklab.data.synthetic.simulate_marketplace`.
    rng_seed : int, optional
        Seed of the appeals stream; default the marketplace's seed (stream ``[seed, 3]``).
    false_positive_share : float or mapping, optional
        True false-positive share ``φ[k]`` of actioned detections; default drawn per category as
        ``invlogit(Normal(false_positive_logit_mu, false_positive_logit_sd))``.
    false_positive_logit_mu, false_positive_logit_sd : float
        The logit-normal distribution of φ when it is drawn.
    appeal_rate : float, default 0.2
        Share of actioned decisions appealed.
    selection : float, default 0.0
        Appeal-selection factor δ (logit): appealed decisions are overturned with probability
        ``invlogit(logit φ + δ)``.
    categories : sequence of str, optional
        Categories with appeals; default all.
    false_positives_in_detections : bool, default True
        Add false positives to ``detections``: each channel's actioned count becomes its true
        count plus ``Binomial(listings − true, φ/(1 − φ) · true / (listings − true))`` (false
        positives making up the share φ of actioned detections in expectation).

    Returns
    -------
    SimulatedMarketplace
        With ``tables["appeals"]`` and truth keys ``false_positive_share`` and ``precision``
        (by category), ``appeal_selection`` and ``appeal_rate``.
    """
    seed = sim.truth["seed"] if rng_seed is None else rng_seed
    rng = np.random.default_rng([int(seed), 3])
    all_cats = list(sim.truth["categories"])
    periods = list(sim.truth["periods"])
    if false_positive_share is None:
        drawn = expit(rng.normal(false_positive_logit_mu, false_positive_logit_sd, len(all_cats)))
        phi = dict(zip(all_cats, drawn.tolist(), strict=True))
    elif isinstance(false_positive_share, Mapping):
        phi = {c: float(false_positive_share[c]) for c in all_cats}
    else:
        phi = dict.fromkeys(all_cats, float(false_positive_share))
    listings = _listings(sim)
    det = sim.tables["detections"].copy()
    if false_positives_in_detections:
        k_idx = det["category"].map({c: i for i, c in enumerate(all_cats)}).to_numpy()
        t_idx = det["period"].map({p: j for j, p in enumerate(periods)}).to_numpy()
        true = det["detected"].to_numpy(dtype=np.int64)
        f = np.array([phi[c] for c in det["category"]])
        room = np.maximum(listings[k_idx, t_idx] - true, 1)
        p_fp = np.clip(f / (1.0 - f) * true / room, 0.0, 1.0)
        det["detected"] = true + rng.binomial(room, p_fp)
        sim.tables["detections"] = det
    actioned = det.groupby(["category", "period"])["detected"].sum()
    cats = all_cats if categories is None else [str(c) for c in categories]
    rows = []
    for cat in cats:
        p_over = float(expit(logit(phi[cat]) + selection))
        for per in periods:
            a = int(rng.binomial(int(actioned.get((cat, per), 0)), appeal_rate))
            rows.append((cat, per, a, int(rng.binomial(a, p_over))))
    sim.tables["appeals"] = pd.DataFrame(
        rows, columns=["category", "period", "appeals", "overturned"]
    )
    sim.truth.update(
        false_positive_share=phi,
        precision={c: 1.0 - v for c, v in phi.items()},
        appeal_selection=float(selection),
        appeal_rate=float(appeal_rate),
    )
    return sim
