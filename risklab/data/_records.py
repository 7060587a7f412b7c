"""The small records of a submission: platform, risk scale, claims and repeat-offender policy.

Their rules are written once, as functions returning ``(key, message)`` pairs, and used both by
the dataclasses (which raise ``ValueError`` when built directly with bad values) and by the
``submission.toml`` validator (which turns them into :class:`~risklab.data.errors.Problem`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from risklab.data.schema import MAX_COUNT, PERIOD_PATTERN

__all__ = [
    "Claim",
    "Platform",
    "Policy",
    "Scale",
    "claim_issues",
    "period_issues",
    "policy_issues",
    "scale_issues",
    "short_repr",
]

_PERIOD = re.compile(PERIOD_PATTERN)


def _fmt(x: object) -> str:
    return repr(x) if isinstance(x, str) else f"{x}"


def short_repr(value: object, limit: int = 60) -> str:
    """``repr`` of a value for a message, shortened (hostile files may hold huge values)."""
    try:
        text = repr(value)
    except Exception:  # e.g. an int of more than 4300 digits (only from Python, not from TOML)
        kind = f"integer of {value.bit_length()} bits" if isinstance(value, int) else "value"
        text = f"<{kind} of type {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(x: float) -> bool:
    """``math.isfinite`` that is False (not OverflowError) for ints too large for a float."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def period_issues(start: str, end: str) -> list[tuple[str, str]]:
    """Rule violations of a reporting period, as ``(key, message)`` pairs."""
    out = []
    for key, value in (("period_start", start), ("period_end", end)):
        if not (isinstance(value, str) and _PERIOD.fullmatch(value)):
            out.append((key, f"must be a month written 'YYYY-MM', got {_fmt(value)}"))
    if not out and end < start:
        out.append(("period_end", f"'{end}' is before period_start '{start}'"))
    return out


def scale_issues(thresholds: tuple[float, ...], labels: tuple[str, ...]) -> list[tuple[str, str]]:
    """Rule violations of a risk scale, as ``(key, message)`` pairs."""
    out = []
    if len(thresholds) == 0:
        out.append(("thresholds", "must hold at least one cut point"))
    bad = [t for t in thresholds if not (_finite(t) and 0.0 < t < 1.0)]
    if bad:
        out.append(("thresholds", f"each must be strictly between 0 and 1, got {bad[0]}"))
    elif any(b <= a for a, b in itertools.pairwise(thresholds)):
        got = short_repr(list(thresholds))
        out.append(("thresholds", f"must be strictly ascending, got {got}"))
    if len(labels) != len(thresholds) + 1:
        out.append(
            (
                "labels",
                f"must hold one more label than thresholds ({len(thresholds) + 1}), "
                f"got {len(labels)}",
            )
        )
    dupes = sorted(lab for lab, n in Counter(labels).items() if n > 1)
    if dupes:
        more = ", ..." if len(dupes) > 5 else ""
        shown = ", ".join(short_repr(lab) for lab in dupes[:5])
        out.append(("labels", f"must be unique; repeated: {shown}{more}"))
    if any(lab == "" for lab in labels):
        out.append(("labels", "must not be empty strings"))
    return out


def claim_issues(prevalence: float, detection_rate: float | None) -> list[tuple[str, str]]:
    """Rule violations of one claim's numbers, as ``(key, message)`` pairs."""
    out = []
    if prevalence == 0:
        out.append(
            (
                "prevalence",
                "must be greater than 0: the underestimation ratio (true / claimed prevalence) "
                "needs a positive claim; state the smallest prevalence you cannot rule out",
            )
        )
    elif not (_finite(prevalence) and 0.0 < prevalence < 1.0):
        out.append(("prevalence", f"must be strictly between 0 and 1, got {prevalence}"))
    if detection_rate is not None and not (_finite(detection_rate) and 0.0 < detection_rate <= 1.0):
        out.append(("detection_rate", f"must be in (0, 1], got {detection_rate}"))
    return out


def policy_issues(strike_threshold: int, claimed_enforcement: float) -> list[tuple[str, str]]:
    """Rule violations of a repeat-offender policy, as ``(key, message)`` pairs."""
    out = []
    if strike_threshold < 1:
        out.append(("strike_threshold", f"must be at least 1, got {strike_threshold}"))
    elif strike_threshold > MAX_COUNT:
        got = short_repr(strike_threshold)
        out.append(("strike_threshold", f"must be at most {MAX_COUNT:.0e}, got {got}"))
    if not (_finite(claimed_enforcement) and 0.0 <= claimed_enforcement <= 1.0):
        out.append(("claimed_enforcement", f"must be in [0, 1], got {claimed_enforcement}"))
    return out


def _raise(cls: str, issues: list[tuple[str, str]]) -> None:
    if issues:
        raise ValueError(f"invalid {cls}: " + "; ".join(f"{k} {m}" for k, m in issues))


@dataclass(frozen=True)
class Platform:
    """The platform and the reporting period of its assessment.

    Attributes
    ----------
    name : str
        Platform name.
    period_start, period_end : str
        First and last month of the reporting period, ``"YYYY-MM"``; ``period_end >= period_start``.
    """

    name: str
    period_start: str
    period_end: str

    def __post_init__(self) -> None:
        _raise("Platform", period_issues(self.period_start, self.period_end))


@dataclass(frozen=True)
class Scale:
    """A platform's declared risk scale: cut points on the detected (or true) share.

    Attributes
    ----------
    name : str
        Name of the scale, e.g. ``"likelihood"``.
    thresholds : tuple of float
        Strictly ascending cut points, each in (0, 1).
    labels : tuple of str
        Band labels, one more than ``thresholds``, unique, lowest band first.

    Examples
    --------
    >>> s = Scale("likelihood", (0.002, 0.006), ("very unlikely", "possible", "almost certain"))
    >>> s.band_of(0.002)
    'possible'
    """

    name: str
    thresholds: tuple[float, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "labels", tuple(str(lab) for lab in self.labels))
        _raise("Scale", scale_issues(self.thresholds, self.labels))

    def band_index(self, share: float | np.ndarray) -> np.ndarray:
        """Index of the band of each share.

        Parameters
        ----------
        share : float or array_like
            Share(s) of listings, in [0, 1].

        Returns
        -------
        numpy.ndarray
            Integer band indices, same shape as ``share``: ``share < thresholds[0]`` gives 0,
            ``thresholds[0] <= share < thresholds[1]`` gives 1, and so on.
        """
        return np.asarray(np.searchsorted(np.asarray(self.thresholds), share, side="right"))

    def band_of(self, share: float) -> str:
        """Label of the band holding ``share`` (a cut point belongs to the band above it)."""
        return self.labels[int(self.band_index(float(share)))]


@dataclass(frozen=True)
class Claim:
    """What a platform claims about one product category.

    Attributes
    ----------
    category : str
        Product category (as in ``listings.csv``).
    prevalence : float
        Claimed prevalence of illegal listings, strictly between 0 and 1.
    band : str
        Claimed band: a label of the platform's :class:`Scale`.
    detection_rate : float or None
        Optional claimed proactive detection rate, in (0, 1].
    """

    category: str
    prevalence: float
    band: str
    detection_rate: float | None = None

    def __post_init__(self) -> None:
        _raise("Claim", claim_issues(self.prevalence, self.detection_rate))


@dataclass(frozen=True)
class Policy:
    """A platform's repeat-offender policy.

    Attributes
    ----------
    strike_threshold : int
        Number of detected violations after which a trader is to be suspended (at least 1).
    claimed_enforcement : float
        Claimed share of traders past the threshold that are suspended, in [0, 1].
    """

    strike_threshold: int
    claimed_enforcement: float

    def __post_init__(self) -> None:
        _raise("Policy", policy_issues(self.strike_threshold, self.claimed_enforcement))
