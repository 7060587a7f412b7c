"""Binding commitments: what a platform promised, from when, and what it should move.

A :class:`Commitment` names the model quantity it should move (:data:`QUANTITIES`), the first
period it is in force, the categories it covers and, when one was promised, a :class:`Target`.
Commitments come from Python or from a TOML file (:func:`load_commitments`; format in
``docs/monitoring.md``) and are checked against a submission (:func:`validate_commitments`)
before any model is built: every error names the file, the commitment and the key.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from risklab.dims import CATEGORY, PERIOD
from risklab.monitoring.quantities import QUANTITIES, quantity

__all__ = [
    "MAX_COMMITMENTS",
    "Commitment",
    "CommitmentError",
    "Target",
    "commitments_from_json",
    "commitments_to_json",
    "load_commitments",
    "validate_commitments",
]

#: Largest commitments file read (bytes), most commitments, longest name.
MAX_COMMITMENT_BYTES = 2**20
MAX_COMMITMENTS = 200
MAX_NAME_LENGTH = 120
_PERIOD = re.compile(r"^[0-9]{4}-(?:0[1-9]|1[0-2])$")
_KEYS = {"name", "effective", "quantity", "categories", "description", "target"}
_TARGET_KEYS = {"value", "by"}


class CommitmentError(ValueError):
    """An invalid commitment or commitments file (the message names file, commitment and key)."""


@dataclass(frozen=True)
class Target:
    """A promised value of a commitment's quantity.

    Parameters
    ----------
    value : float
        The promised value of the aggregate quantity (a share in [0, 1] for prevalence, hidden
        share and enforcement; positive for efficiency and review capacity).
    by : str, optional
        The period (``YYYY-MM``) at which the target applies; default the last period.
    """

    value: float
    by: str | None = None


@dataclass(frozen=True)
class Commitment:
    """A binding commitment.

    Parameters
    ----------
    name : str
        Unique name.
    effective : str
        First period (``YYYY-MM``) the commitment is in force.
    quantity : str
        The model quantity it should move: ``prevalence``, ``hidden_share``, ``efficiency``,
        ``review_capacity`` or ``enforcement``.
    categories : tuple of str, optional
        Categories it covers; default all (ignored for the platform-wide ``enforcement``).
    target : Target, optional
        The promised value, if any.
    description : str
        Free text for reports.

    Examples
    --------
    >>> Commitment("link controls", effective="2025-03", quantity="hidden_share",
    ...            target=Target(0.2))                           # doctest: +ELLIPSIS
    Commitment(name='link controls', ...)
    """

    name: str
    effective: str
    quantity: str
    categories: tuple[str, ...] | None = None
    target: Target | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.categories is not None and not isinstance(self.categories, tuple):
            object.__setattr__(self, "categories", tuple(self.categories))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe representation (the inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {
            "name": self.name,
            "effective": self.effective,
            "quantity": self.quantity,
            "description": self.description,
        }
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.target is not None:
            out["target"] = {"value": self.target.value}
            if self.target.by is not None:
                out["target"]["by"] = self.target.by
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Commitment:
        """Build from :meth:`to_dict` output (no validation against a submission)."""
        target = data.get("target")
        return cls(
            name=str(data["name"]),
            effective=str(data["effective"]),
            quantity=str(data["quantity"]),
            categories=tuple(data["categories"]) if data.get("categories") is not None else None,
            target=Target(float(target["value"]), target.get("by")) if target else None,
            description=str(data.get("description", "")),
        )


def commitments_to_json(commitments: Sequence[Commitment]) -> list[dict[str, Any]]:
    """Commitments as a JSON-safe list (stored in the results' provenance)."""
    return [c.to_dict() for c in commitments]


def commitments_from_json(items: Sequence[Mapping[str, Any]]) -> list[Commitment]:
    """Inverse of :func:`commitments_to_json`."""
    return [Commitment.from_dict(item) for item in items]


def load_commitments(path: str | os.PathLike) -> list[Commitment]:
    """Read a commitments file (TOML, one ``[[commitment]]`` table per commitment).

    Parameters
    ----------
    path : path
        The TOML file (at most 1 MiB, at most :data:`MAX_COMMITMENTS` commitments).

    Returns
    -------
    list of Commitment
        In file order. Check them against a submission with :func:`validate_commitments`.

    Raises
    ------
    CommitmentError
        Unreadable file, invalid TOML, unknown keys, wrong types; the message names the file, the
        commitment and the key.
    """
    source = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_COMMITMENT_BYTES:
            raise CommitmentError(f"{source}: is {size} bytes; at most {MAX_COMMITMENT_BYTES}")
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CommitmentError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    try:
        doc = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CommitmentError(f"{source}: is not valid UTF-8") from exc
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise CommitmentError(f"{source}: is not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - {"commitment"})
    if unknown:
        raise CommitmentError(
            f"{source}: unknown top-level key(s) {unknown}; commitments are [[commitment]] tables"
        )
    items = doc.get("commitment")
    if not isinstance(items, list) or not items:
        raise CommitmentError(f"{source}: no [[commitment]] tables")
    if len(items) > MAX_COMMITMENTS:
        raise CommitmentError(f"{source}: {len(items)} commitments; at most {MAX_COMMITMENTS}")
    return [_parse(item, i, source) for i, item in enumerate(items, start=1)]


def _parse(item: Any, index: int, source: str) -> Commitment:
    where = f"{source}: commitment {index}"
    if not isinstance(item, dict):
        raise CommitmentError(f"{where}: must be a table")
    if isinstance(item.get("name"), str) and item["name"].strip():
        where = f"{source}: commitment {item['name']!r}"
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise CommitmentError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    for key in ("name", "effective", "quantity"):
        if key not in item:
            raise CommitmentError(f"{where}: key {key!r} is required")
        if not isinstance(item[key], str) or not item[key].strip():
            raise CommitmentError(f"{where}: key {key!r} must be a non-empty string")
    categories = item.get("categories")
    if categories is not None and (
        not isinstance(categories, list)
        or not categories
        or not all(isinstance(c, str) and c for c in categories)
    ):
        raise CommitmentError(f"{where}: key 'categories' must be a non-empty list of strings")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise CommitmentError(f"{where}: key 'description' must be a string")
    target = None
    if "target" in item:
        raw = item["target"]
        if not isinstance(raw, dict):
            raise CommitmentError(f"{where}: key 'target' must be a table ([commitment.target])")
        bad = sorted(set(raw) - _TARGET_KEYS)
        if bad:
            raise CommitmentError(f"{where}: unknown key(s) {bad} in target; allowed: value, by")
        value = raw.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CommitmentError(f"{where}: key 'target.value' must be a number")
        by = raw.get("by")
        if by is not None and not isinstance(by, str):
            raise CommitmentError(f"{where}: key 'target.by' must be a period string (YYYY-MM)")
        target = Target(float(value), by)
    return Commitment(
        name=item["name"].strip(),
        effective=item["effective"].strip(),
        quantity=item["quantity"].strip(),
        categories=tuple(categories) if categories is not None else None,
        target=target,
        description=description,
    )


def validate_commitments(
    commitments: Sequence[Commitment], data: xr.Dataset, *, source: str = "commitments"
) -> list[Commitment]:
    """Check commitments against a submission's data; return them with categories resolved.

    Checks: unique names; known quantity; ``effective`` a period of the submission after the
    first (an interrupted time series needs at least one period before); categories known;
    target within the quantity's range and ``by`` a period at or after ``effective``;
    ``enforcement`` only with ``enforcement.csv`` (per-period suspensions) and a policy; no two
    commitments on the same quantity, date and category (their effects could not be separated).

    Parameters
    ----------
    commitments : sequence of Commitment
    data : xarray.Dataset
        The submission's data (``Submission.data``).
    source : str
        Name used in messages (e.g. the commitments file's path).

    Returns
    -------
    list of Commitment
        ``categories`` filled in (all categories when not given; ``()`` for enforcement).

    Raises
    ------
    CommitmentError
    """
    if not commitments:
        raise CommitmentError(f"{source}: no commitments given")
    periods = [str(p) for p in data[PERIOD].values]
    categories = [str(c) for c in data[CATEGORY].values]
    seen: set[str] = set()
    resolved: list[Commitment] = []
    slots: dict[tuple[str, str, str], str] = {}
    for c in commitments:
        where = f"{source}: commitment {c.name!r}"
        if not c.name or len(c.name) > MAX_NAME_LENGTH or "|" in c.name:
            raise CommitmentError(
                f"{where}: key 'name' must be 1-{MAX_NAME_LENGTH} characters without '|'"
            )
        if c.name in seen:
            raise CommitmentError(f"{where}: key 'name' is used twice")
        seen.add(c.name)
        if c.quantity not in QUANTITIES:
            raise CommitmentError(
                f"{where}: key 'quantity' is {c.quantity!r}; known: {', '.join(QUANTITIES)}"
            )
        q = quantity(c.quantity)
        _check_period(c.effective, periods, where, "effective")
        if periods.index(c.effective) == 0:
            raise CommitmentError(
                f"{where}: key 'effective' is the first period {c.effective}; monitoring needs "
                "at least one period before a commitment takes effect"
            )
        if q.per_category:
            cats = tuple(categories) if c.categories is None else c.categories
            unknown = sorted(set(cats) - set(categories))
            if unknown:
                raise CommitmentError(
                    f"{where}: key 'categories' names {unknown}, not categories of the submission"
                )
            if len(set(cats)) != len(cats):
                raise CommitmentError(f"{where}: key 'categories' repeats a category")
        else:
            cats = ()
            _check_enforcement_data(data, where)
        if c.target is not None:
            _check_target(c.target, q.unit, periods, c.effective, where)
        for cat in cats or ("*",):
            slot = (c.quantity, c.effective, cat)
            if slot in slots:
                raise CommitmentError(
                    f"{where}: moves {c.quantity} from {c.effective} in {cat!r} like commitment "
                    f"{slots[slot]!r}; their effects could not be told apart (merge them)"
                )
            slots[slot] = c.name
        resolved.append(Commitment(c.name, c.effective, c.quantity, cats, c.target, c.description))
    return resolved


def _check_period(value: str, periods: list[str], where: str, key: str) -> None:
    if not _PERIOD.match(value):
        raise CommitmentError(f"{where}: key {key!r} is {value!r}; write a month as YYYY-MM")
    if value not in periods:
        raise CommitmentError(
            f"{where}: key {key!r} is {value}, outside the submission's periods "
            f"{periods[0]}..{periods[-1]}"
        )


def _check_target(target: Target, unit: str, periods: list[str], effective: str, where: str):
    value = target.value
    if not math.isfinite(value):
        raise CommitmentError(f"{where}: key 'target.value' must be finite")
    if unit == "share" and not 0.0 <= value <= 1.0:
        raise CommitmentError(f"{where}: key 'target.value' is {value}; a share is in [0, 1]")
    if unit == "number" and value <= 0:
        raise CommitmentError(f"{where}: key 'target.value' is {value}; it must be positive")
    if target.by is not None:
        _check_period(target.by, periods, where, "target.by")
        if periods.index(target.by) < periods.index(effective):
            raise CommitmentError(
                f"{where}: key 'target.by' is {target.by}, before the commitment takes effect "
                f"({effective})"
            )


def _check_enforcement_data(data: xr.Dataset, where: str) -> None:
    if (
        "enforcement_reached" not in data
        or "strike_threshold" not in data.attrs
        or "traders_count" not in data
        or int(np.asarray(data["traders_count"].values).sum()) == 0
    ):
        raise CommitmentError(
            f"{where}: key 'quantity' is 'enforcement', which needs the repeat-offender data: "
            "traders.csv, suspensions per period (enforcement.csv) and a [policy] in "
            "submission.toml"
        )
    if int(np.asarray(data["enforcement_reached"].values).sum()) == 0:
        raise CommitmentError(
            f"{where}: enforcement.csv has no trader reaching the strike threshold"
        )
