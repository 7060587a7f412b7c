"""Repeat offenders of a simulated marketplace: the ``traders`` table (and ``enforcement`` table).

Offending traders with gamma-distributed rates post illegal listings, each detected with the
platform-wide detection probability (a detection is a strike); a trader reaching the policy's
strike threshold is suspended with the enforcement probability and then posts nothing more.
:func:`simulate_traders` gives the ``traders`` table of
:func:`risklab.data.synthetic.simulate_marketplace`; :func:`simulate_traders_by_period` also
places every listing in time, so that the enforcement probability can change from one period to
the next, and returns the ``enforcement`` table (``period, reached, suspended``).

Both draw the same numbers in the same order for the table they share, so with a constant
enforcement probability :func:`simulate_traders_by_period` gives exactly the ``traders`` table of
:func:`simulate_traders` (the listing times are drawn last).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["simulate_traders", "simulate_traders_by_period"]


def _listings_after_threshold_share(mean_strikes: float, shape: float, threshold: int) -> float:
    """``E[(X - s)+] / E[X]`` for ``X ~ NB(mean_strikes, shape)``: the share of a never-suspended
    offender population's illegal listings posted after the s-th detection."""
    dist = stats.nbinom(shape, shape / (shape + mean_strikes))
    reached = sum(float(dist.sf(k - 1)) for k in range(1, threshold + 1))
    return 1.0 - reached / mean_strikes


def simulate_traders(
    rng: np.random.Generator,
    *,
    n_offending_traders: int,
    offender_shape: float,
    offender_mean_listings: float,
    detection_rate: float,
    enforcement: float,
    strike_threshold: int,
    claimed_enforcement: float,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate the trader table of a repeat-offender policy.

    Trader *j* has rate ``λ_j ~ Gamma(a, rate a / μ_L)`` and would post ``L_j ~ Poisson(λ_j)``
    illegal listings over the period, in time order, each detected independently with
    probability ``detection_rate`` (a detection is a strike). At the ``strike_threshold``-th
    strike the trader is suspended with probability ``enforcement`` and posts nothing after it.

    Returns
    -------
    (pandas.DataFrame, dict)
        The ``traders`` table (``strikes, traders, suspended``, one row per strike count from 1
        to the largest observed) and the truth behind it.
    """
    table, _, truth = _simulate(
        rng,
        n_offending_traders=n_offending_traders,
        offender_shape=offender_shape,
        offender_mean_listings=offender_mean_listings,
        detection_rate=detection_rate,
        enforcement=enforcement,
        strike_threshold=strike_threshold,
        claimed_enforcement=claimed_enforcement,
        periods=None,
        enforcement_by_period=None,
    )
    return table, truth


def simulate_traders_by_period(
    rng: np.random.Generator,
    *,
    periods: Sequence[str],
    enforcement_by_period: Sequence[float] | np.ndarray,
    n_offending_traders: int,
    offender_shape: float,
    offender_mean_listings: float,
    detection_rate: float,
    enforcement: float,
    strike_threshold: int,
    claimed_enforcement: float,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Simulate the trader table with listing times and a per-period enforcement probability.

    As :func:`simulate_traders`, and each illegal listing gets a time uniform over the
    submission window (sorted within its trader, so listings stay in time order; period
    ``floor(time · T)``). A trader whose ``strike_threshold``-th strike falls in period ``t`` is
    suspended with probability ``enforcement_by_period[t]``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The trader stream.
    periods : sequence of str
        The submission's periods (``T`` of them).
    enforcement_by_period : array-like, shape (T,)
        Suspension probability ``q[t]`` of a trader reaching the threshold in period ``t``.
    n_offending_traders, offender_shape, offender_mean_listings, detection_rate : see above
        As in :func:`simulate_traders`.
    enforcement : float
        The baseline probability ``q`` (used for the expected-value truth keys, which assume a
        constant probability).
    strike_threshold, claimed_enforcement : int, float
        As in :func:`simulate_traders`.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, dict)
        The ``traders`` table, the ``enforcement`` table (``period, reached, suspended``, one
        row per period) and the truth, which also holds ``enforcement_by_period``.
        ``Σ reached`` is the number of traders with ``strikes >= strike_threshold`` in the
        ``traders`` table and ``Σ suspended`` the suspended ones.
    """
    periods = [str(p) for p in periods]
    q_t = np.asarray(enforcement_by_period, dtype=float)
    if q_t.shape != (len(periods),) or not len(periods):
        raise ValueError(
            f"enforcement_by_period must have one value per period ({len(periods)}), "
            f"got shape {q_t.shape}"
        )
    if not np.all((q_t >= 0) & (q_t <= 1)):
        raise ValueError("enforcement_by_period must be in [0, 1]")
    return _simulate(
        rng,
        n_offending_traders=n_offending_traders,
        offender_shape=offender_shape,
        offender_mean_listings=offender_mean_listings,
        detection_rate=detection_rate,
        enforcement=enforcement,
        strike_threshold=strike_threshold,
        claimed_enforcement=claimed_enforcement,
        periods=periods,
        enforcement_by_period=q_t,
    )


def _simulate(
    rng: np.random.Generator,
    *,
    n_offending_traders: int,
    offender_shape: float,
    offender_mean_listings: float,
    detection_rate: float,
    enforcement: float,
    strike_threshold: int,
    claimed_enforcement: float,
    periods: list[str] | None,
    enforcement_by_period: np.ndarray | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    if not 0 < detection_rate <= 1:
        raise ValueError(f"detection_rate must be in (0, 1], got {detection_rate!r}")
    for name, value in (("enforcement", enforcement), ("claimed", claimed_enforcement)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if strike_threshold < 1 or n_offending_traders < 1:
        raise ValueError("strike_threshold and n_offending_traders must be at least 1")
    n, s = int(n_offending_traders), int(strike_threshold)
    rate = rng.gamma(offender_shape, offender_mean_listings / offender_shape, n)
    listings = rng.poisson(rate)
    owner = np.repeat(np.arange(n), listings)
    detected = rng.random(owner.size) < detection_rate
    suspend_uniform = rng.random(n)
    # Strike number of every detected listing within its trader (listings are in time order).
    start = np.concatenate([[0], np.cumsum(listings)[:-1]])
    cum = np.cumsum(detected)
    before = np.concatenate([[0], cum])[start]
    strike_no = cum - np.repeat(before, listings)
    natural = np.bincount(owner, weights=detected, minlength=n).astype(np.int64)
    # Listings a trader posts after its s-th strike (all of them if never suspended).
    at_threshold = detected & (strike_no == s)
    position = np.full(n, -1, dtype=np.int64)
    position[owner[at_threshold]] = np.nonzero(at_threshold)[0] - start[owner[at_threshold]]
    reached = natural >= s
    after = np.where(reached, listings - position - 1, 0)
    enforcement_table = None
    if enforcement_by_period is None:
        suspended = reached & (suspend_uniform < enforcement)
    else:
        n_periods = len(enforcement_by_period)
        # Listing times, uniform over the window and sorted within each trader (owner is sorted).
        times = rng.random(owner.size)
        times = times[np.lexsort((times, owner))]
        period_of = np.minimum((times * n_periods).astype(np.int64), n_periods - 1)
        strike_period = np.zeros(n, dtype=np.int64)
        strike_period[owner[at_threshold]] = period_of[at_threshold]
        suspended = reached & (suspend_uniform < enforcement_by_period[strike_period])
        enforcement_table = pd.DataFrame(
            {
                "period": list(periods or []),
                "reached": np.bincount(strike_period[reached], minlength=n_periods),
                "suspended": np.bincount(strike_period[suspended], minlength=n_periods),
            }
        ).astype({"reached": np.int64, "suspended": np.int64})
    strikes = np.where(suspended, s, natural)

    seen = strikes >= 1
    top = int(strikes.max()) if seen.any() else 1
    count = np.bincount(strikes[seen], minlength=top + 1)[1:]
    susp = np.bincount(strikes[suspended], minlength=top + 1)[1:]
    table = pd.DataFrame(
        {
            "strikes": np.arange(1, top + 1, dtype=np.int64),
            "traders": count.astype(np.int64),
            "suspended": susp.astype(np.int64),
        }
    )

    mean_strikes = detection_rate * offender_mean_listings
    share_after = _listings_after_threshold_share(mean_strikes, offender_shape, s)
    q, qc = float(enforcement), float(claimed_enforcement)
    posted = listings.sum() - after[suspended].sum()
    counterfactual = listings.sum() - qc * after.sum()
    # Repeat offenders: traders who would be detected at least twice (without suspension).
    a, m = offender_shape, mean_strikes
    dist = stats.nbinom(a, a / (a + m))
    low = sum(
        dist.pmf(x) * (x * detection_rate + (1 - detection_rate) * m * (a + x) / (a + m))
        for x in (0, 1)
    )
    truth = {
        "offending_traders": n,
        "detected_traders": int(seen.sum()),
        "undetected_traders": int(n - seen.sum()),
        "traders_past_threshold": int(reached.sum()),
        "enforcement": q,
        "enforcement_realised": float(suspended.sum() / max(1, reached.sum())),
        "claimed_enforcement": qc,
        "strike_threshold": s,
        "offender_shape": float(offender_shape),
        "offender_mean_listings": float(offender_mean_listings),
        "offender_detection_rate": float(detection_rate),
        "offender_mean_strikes": float(mean_strikes),
        "offender_zero_probability": float(dist.pmf(0)),
        "listings_after_threshold_share": float(share_after),
        "non_enforcement_share": float((qc - q) * share_after / (1 - q * share_after)),
        "non_enforcement_share_realised": float(1 - counterfactual / posted),
        "unenforced_listings_share": float((1 - q) * share_after / (1 - q * share_after)),
        "repeat_offender_share": float(1 - low / m),
        "repeat_offender_share_realised": float(listings[natural >= 2].sum() / listings.sum()),
    }
    if enforcement_by_period is not None:
        truth["enforcement_by_period"] = [float(v) for v in enforcement_by_period]
    return table, enforcement_table, truth
