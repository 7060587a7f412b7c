"""Repeat offenders: unseen offending traders, penalty enforcement and its effect on prevalence.

The platform's trader table (``traders.csv``: ``f_i`` traders with *i* ≥ 1 detected strikes,
``z_i`` of them suspended) and its repeat-offender policy (strike threshold *s*, claimed
enforcement ``q_c``) enter as sufficient statistics, so 10 traders or 10 million cost the same.
The full derivation, assumptions and limits are in ``docs/repeat-offenders.md``.

Offending traders. Trader *j* would post ``L_j ~ Poisson(λ_j)`` illegal listings over the
submission period if never suspended, ``λ_j ~ Gamma(a, rate a / μ_L)``; each is detected (a
strike) with the platform-wide probability ``d̄``, so the strikes a trader would collect are
``X_j ~ Poisson(d̄ λ_j)``, i.e. negative binomial with mean ``m = d̄ μ_L`` and shape ``a``. The
table identifies ``m`` and ``a`` (not ``μ_L`` and ``d̄`` separately), so those are the free
parameters (``offender_log_mean_strikes``, ``offender_log_dispersion = -log a``; the same priors
as :func:`risklab.estimators.ztnb` with ``method="bayes"``). ``d̄`` is the illegal-listing-weighted
mean over cells of the probability that at least one channel detects an illegal listing,
``1 - Π_c (1 - d_c)``, taken from the channel rates; it converts strikes into listings.

Suspensions. A trader reaching the s-th strike is suspended with probability ``q`` and then posts
nothing more, so a suspended trader's strike count is right-censored where it was stopped. The
likelihood of the table, conditional on being detected at least once, is::

    Σ_i (f_i - z_i) log P(X = i) + Σ_i z_i log P(X ≥ i) - n log(1 - P(X = 0))
    + log Binomial(Σ_{i≥s} z_i | Σ_{i≥s} f_i, q)

which is exact for suspension at the threshold and stays valid when suspension comes a few
strikes late (non-informative censoring); suspensions below the threshold (discretionary) are
censored counts without a ``q`` term.

Non-enforcement and prevalence. A never-suspended trader's listings after its s-th strike are
``(X - s)+ / d̄`` in expectation, so the share of the offenders' illegal listings that suspension
at the threshold removes is ``A = E[(X - s)+] / m`` (``d̄`` cancels). With enforcement ``q`` a share
``q A`` is removed; the share of the actual illegal listings that enforcement as claimed would
also have removed is ``non_enforcement_share = (q_c - q) A / (1 - q A)``, and the counterfactual
prevalence is ``π' = π (1 - S) / (1 - π S)`` with ``S`` that share (the removed listings leave the
denominator too). The table is platform-wide, so ``S`` applies to every category and period.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from risklab.dims import CATEGORY, PERIOD, STRIKES
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = ["RepeatOffenders", "TraderTable", "nb_logpmf", "trader_table"]


class TraderTable:
    """The sufficient statistics of ``traders.csv`` and the policy, as the model uses them.

    Attributes
    ----------
    strikes : numpy.ndarray
        Strike counts ``i`` of rows with at least one trader (ascending, ≥ 1).
    unsuspended, suspended : numpy.ndarray
        Traders per row not suspended (``f_i - z_i``) and suspended (``z_i``).
    threshold : int
        The policy's strike threshold ``s``.
    claimed_enforcement : float
        The platform's claimed enforcement probability ``q_c``.
    """

    def __init__(
        self,
        strikes: np.ndarray,
        traders: np.ndarray,
        suspended: np.ndarray,
        threshold: int,
        claimed_enforcement: float,
    ) -> None:
        strikes = np.asarray(strikes, dtype=np.int64)
        traders = np.asarray(traders, dtype=np.int64)
        suspended = np.asarray(suspended, dtype=np.int64)
        keep = traders > 0
        order = np.argsort(strikes[keep])
        self.strikes = strikes[keep][order]
        self.suspended = suspended[keep][order]
        self.unsuspended = traders[keep][order] - self.suspended
        self.threshold = int(threshold)
        self.claimed_enforcement = float(claimed_enforcement)

    @property
    def detected(self) -> int:
        """Traders detected at least once (``n``)."""
        return int(self.unsuspended.sum() + self.suspended.sum())

    @property
    def past_threshold(self) -> int:
        """Traders with at least ``threshold`` strikes."""
        past = self.strikes >= self.threshold
        return int(self.unsuspended[past].sum() + self.suspended[past].sum())

    @property
    def suspended_past_threshold(self) -> int:
        """Suspended traders with at least ``threshold`` strikes."""
        return int(self.suspended[self.strikes >= self.threshold].sum())

    @property
    def censor_limit(self) -> int:
        """Largest strike count with a suspension, at least the threshold."""
        rows = self.strikes[self.suspended > 0]
        return max(int(rows.max()) if rows.size else 0, self.threshold)


def trader_table(data: xr.Dataset) -> TraderTable | None:
    """The trader table of a submission Dataset, or None without traders or policy."""
    if STRIKES not in data.coords or "strike_threshold" not in data.attrs:
        return None
    if "traders_count" not in data or int(data["traders_count"].values.sum()) == 0:
        return None
    return TraderTable(
        data[STRIKES].values,
        data["traders_count"].values,
        data["traders_suspended"].values,
        int(data.attrs["strike_threshold"]),
        float(data.attrs["claimed_enforcement"]),
    )


def nb_logpmf(x, mean, shape):
    """Negative binomial log-probability of ``x`` with the given mean and shape (PyTensor).

    ``P(X = x) = Γ(x + a) / (Γ(a) x!) (a / (a + m))^a (m / (a + m))^x``, the gamma-Poisson
    mixture with ``λ ~ Gamma(a, rate a / m)``.
    """
    log_ratio = pt.log1p(mean / shape)  # log((a + m) / a)
    return (
        pt.gammaln(x + shape)
        - pt.gammaln(shape)
        - pt.gammaln(x + 1.0)
        - shape * log_ratio
        + x * (pt.log(mean) - pt.log(mean + shape))
    )


class RepeatOffenders(Component):
    """Zero-truncated NB trader table, binomial enforcement and the non-enforcement share."""

    name = "offenders"
    requires = ("prevalence", "channel_rate")
    provides = ("enforcement", "non_enforcement_share", "prevalence_if_enforced")
    default_priors = {
        # log of the mean strikes an offending trader would collect over the period (detected or
        # not): 95% between 0.02 and 50. Same as ``beta`` of risklab.estimators.ztnb (Bayes).
        "offender_log_mean_strikes": Prior("Normal", mu=0.0, sigma=2.0),
        # log NB dispersion 1/a (Var = m + m²/a): a from 0.05 to 19 (95%). Same as ``log_alpha``
        # of risklab.estimators.ztnb; keeps the flat ZTNB likelihood from running to a → 0.
        "offender_log_dispersion": Prior("Normal", mu=0.0, sigma=1.5),
        # Probability that a trader past the strike threshold is suspended: uniform.
        "enforcement": Prior("Beta", alpha=1.0, beta=1.0),
    }

    def is_active(self, data: xr.Dataset) -> bool:
        return trader_table(data) is not None

    def build(self, ctx: BuildContext) -> None:
        table = trader_table(ctx.data)
        if table is None:  # pragma: no cover - guarded by is_active
            raise RuntimeError("the offenders component needs traders.csv and a [policy]")
        s = table.threshold
        log_mean = ctx.prior("offender_log_mean_strikes")
        log_dispersion = ctx.prior("offender_log_dispersion")
        mean = pm.Deterministic("offender_mean_strikes", pt.exp(log_mean))
        shape = pm.Deterministic("offender_shape", pt.exp(-log_dispersion))

        # Log-probabilities at the observed strike counts, and on 0..C for the survival function
        # (C: the largest count with a suspension, at least s). The graph's size depends on the
        # table's length, never on the number of traders.
        rows = table.strikes
        log_pmf_rows = nb_logpmf(rows.astype(float), mean, shape)
        x = np.arange(table.censor_limit + 1, dtype=float)
        log_pmf = nb_logpmf(x, mean, shape)
        log_p0 = log_pmf[0]
        log_detected = pt.log1mexp(log_p0)  # log P(X ≥ 1)
        # P(X ≥ i) = 1 - P(X ≤ i - 1), needed where traders were suspended (censored counts).
        cdf = pt.cumsum(pt.exp(log_pmf))
        censored = table.suspended > 0
        log_sf = pt.log1p(-cdf[rows[censored] - 1])
        loglik = (
            pt.dot(table.unsuspended.astype(float), log_pmf_rows)
            + pt.dot(table.suspended[censored].astype(float), log_sf)
            - table.detected * log_detected
        )
        pm.Potential("offender_strikes", loglik)

        q = ctx.prior("enforcement")
        shift = ctx.monitoring_shift("enforcement")
        if shift is None:
            pm.Binomial(
                "enforcement_suspended",
                n=table.past_threshold,
                p=q,
                observed=table.suspended_past_threshold,
            )
            q_by_period = None
        else:  # a commitment moves enforcement: per-period suspensions (enforcement.csv)
            q_by_period = pm.Deterministic(
                "enforcement_by_period", pt.sigmoid(pt.log(q) - pt.log1p(-q) + shift), dims=PERIOD
            )
            reached = ctx.values("enforcement_reached").astype(np.int64)
            seen = np.flatnonzero(reached > 0)
            pm.Binomial(
                "enforcement_suspended_by_period",
                n=reached[seen],
                p=q_by_period[seen],
                observed=ctx.values("enforcement_suspended").astype(np.int64)[seen],
            )

        # Expected numbers given the parameters (the Horvitz–Thompson total n / (1 - p0)); the
        # findings add the finite-population noise N - n ~ NegBin(n, 1 - p0) (risklab.assess).
        n = float(table.detected)
        pm.Deterministic("offending_traders_expected", n * pt.exp(-log_detected))
        pm.Deterministic("undetected_traders_expected", n * pt.exp(log_p0 - log_detected))

        # Platform-wide probability that an illegal listing is detected by any channel.
        prevalence = ctx.shared["prevalence"]
        channel_rate = ctx.shared["channel_rate"]
        union = -pt.expm1(pt.sum(pt.log1p(-channel_rate), axis=-1))
        illegal = prevalence * ctx.values("listings").astype(float)
        d_bar = pm.Deterministic(
            "offender_detection_rate", pt.sum(illegal * union) / pt.sum(illegal)
        )
        pm.Deterministic("offender_mean_listings", mean / d_bar)

        # Share of a never-suspended population's illegal listings posted after the s-th
        # strike: A = E[(X - s)+] / m = 1 - Σ_{k=1..s} P(X ≥ k) / m.
        reached = pt.sum(1.0 - cdf[:s])
        after = pm.Deterministic("listings_after_threshold_share", 1.0 - reached / mean)
        q_claim = table.claimed_enforcement
        remaining = 1.0 - q * after
        share = pm.Deterministic("non_enforcement_share", (q_claim - q) * after / remaining)
        pm.Deterministic("unenforced_listings_share", (1.0 - q) * after / remaining)
        # Share of illegal listings by traders who would be detected at least twice.
        pmf01 = pt.exp(log_pmf[:2])
        x01 = pt.as_tensor(np.array([0.0, 1.0]))
        low = pt.sum(pmf01 * (x01 * d_bar + (1.0 - d_bar) * mean * (shape + x01) / (shape + mean)))
        pm.Deterministic("repeat_offender_share", 1.0 - low / mean)

        if q_by_period is not None:  # the share by period, from each period's enforcement
            share_t = pm.Deterministic(
                "non_enforcement_share_by_period",
                (q_claim - q_by_period) * after / (1.0 - q_by_period * after),
                dims=PERIOD,
            )
            share_kt = share_t[None, :]
        else:
            share_kt = share
        if_enforced = pm.Deterministic(
            "prevalence_if_enforced",
            prevalence * (1.0 - share_kt) / (1.0 - prevalence * share_kt),
            dims=(CATEGORY, PERIOD),
        )
        ctx.shared.update(
            enforcement=q, non_enforcement_share=share, prevalence_if_enforced=if_enforced
        )
