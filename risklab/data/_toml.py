"""Reading and validating ``submission.toml`` (or the equivalent dict of ``from_dataframes``)."""

from __future__ import annotations

import datetime as _dt
import math
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from risklab.data._records import (
    Claim,
    Platform,
    Policy,
    Scale,
    claim_issues,
    period_issues,
    policy_issues,
    scale_issues,
    short_repr,
)
from risklab.data.errors import Problem
from risklab.data.schema import MAX_TOML_BYTES, TOML_FILE, TOML_SCHEMA, UNSAFE_CHARS

__all__ = ["Meta", "dumps_toml", "meta_to_dict", "parse_toml", "pythonize", "validate_meta"]

Locator = Callable[[str], int | None]
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_AT_LINE = re.compile(r"at line (\d+)")
_INLINE_TABLE = re.compile(r"^\s*\{")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_-]+)\s*=")
_INDEX = re.compile(r"\[\d+\]$")
_CONTROL = re.compile(UNSAFE_CHARS)
#: Largest magnitude of a TOML number read as a float (beyond it ``float()`` overflows).
_FLOAT_MAX = sys.float_info.max


_CONTROL_MESSAGE = (
    "must be plain text on one line: no control characters (line breaks, tabs, NUL, escape "
    "sequences), text-direction overrides or lone surrogates"
)


def _no_line(key: str) -> int | None:
    return None


def _locator(text: str) -> Locator:
    """Map dotted keys (``"scale.labels"``, ``"claims[2].band"``) to the line defining them.

    Understands section headers, ``[[array]]`` blocks, ``key = value`` lines and top-level arrays
    of inline tables written one table per line (``claims = [ {category = ...}, ... ]``). A key
    not found falls back to its enclosing key's line (``claims[2].band`` -> ``claims[2]`` ->
    ``claims``), or None.
    """
    where: dict[str, int] = {}
    prefix = ""
    counts: dict[str, int] = {}
    inline_array: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if inline_array is not None:
            if _INLINE_TABLE.match(line):
                counts[inline_array] = counts.get(inline_array, 0) + 1
                item = f"{inline_array}[{counts[inline_array]}]"
                where.setdefault(item, lineno)
                for k in _INLINE_KEY.findall(line):
                    where.setdefault(f"{item}.{k}", lineno)
            if line.strip().startswith("]"):
                inline_array = None
            continue
        m = _HEADER.match(line)
        if m:
            name = m.group(2)
            if m.group(1) == "[[":
                counts[name] = counts.get(name, 0) + 1
                prefix = f"{name}[{counts[name]}]"
            else:
                prefix = name
            where.setdefault(prefix, lineno)
            continue
        m = _KEY.match(line)
        if m:
            key = f"{prefix}.{m.group(1)}" if prefix else m.group(1)
            where.setdefault(key, lineno)
            if not prefix and line.split("=", 1)[1].strip() == "[":
                inline_array = m.group(1)

    def locate(key: str) -> int | None:
        while key:
            if key in where:
                return where[key]
            parent = key.rpartition(".")[0]
            key = parent if parent else _INDEX.sub("", key) if _INDEX.search(key) else ""
        return None

    return locate


def parse_toml(raw: bytes) -> tuple[dict[str, Any] | None, Locator, list[Problem]]:
    """Decode and parse ``submission.toml``.

    Returns
    -------
    doc : dict or None
        The parsed document, None if it cannot be parsed.
    locate : callable
        Maps a dotted key to its line number (or None).
    problems : list of Problem
    """
    if len(raw) > MAX_TOML_BYTES:
        msg = f"is {len(raw):,} bytes; submission.toml may be at most {MAX_TOML_BYTES:,} bytes"
        return None, _no_line, [Problem(TOML_FILE, None, None, msg)]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, _no_line, [Problem(TOML_FILE, line, None, "is not valid UTF-8")]
    try:
        doc = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        # TOMLDecodeError (a ValueError); also a ValueError for integers of more than 4300
        # digits, and RecursionError for arrays or inline tables nested thousands deep.
        if isinstance(exc, RecursionError):
            msg = "arrays or tables nested too deeply"
        elif isinstance(exc, tomllib.TOMLDecodeError):
            msg = str(exc)
        else:
            msg = "a number has too many digits"
        m = _AT_LINE.search(msg)
        row = int(m.group(1)) if m else None
        return None, _no_line, [Problem(TOML_FILE, row, None, f"is not valid TOML: {msg}")]
    return doc, _locator(text), []


def pythonize(value: Any) -> Any:
    """Turn numpy scalars/arrays, tuples and pandas NA into plain Python values, recursively."""
    if isinstance(value, dict):
        return {str(k): pythonize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [pythonize(v) for v in list(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _type_name(v: Any) -> str:
    names = [
        (bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
        (dict, "table"), (_dt.datetime, "date-time"), (_dt.date, "date"), (_dt.time, "time"),
    ]  # fmt: skip
    for t, name in names:
        if isinstance(v, t):
            return name
    return type(v).__name__


@dataclass
class Meta:
    """Validated contents of ``submission.toml``; a field is None when that part was invalid."""

    platform: Platform | None = None
    scale: Scale | None = None
    claims: list[tuple[int, Claim]] | None = None  # (1-based [[claims]] block, claim)
    claimed: dict[str, int] | None = None  # every category named by a claim -> its block
    policy: Policy | None = None
    #: Whether the document has a ``[policy]`` section (valid or not); None when no document
    #: could be read (a missing or unparsable submission.toml).
    policy_declared: bool | None = None
    problems: list[Problem] = field(default_factory=list)
    locate: Locator = _no_line


class _Checker:
    def __init__(self, meta: Meta) -> None:
        self.meta = meta

    def problem(self, key: str, message: str) -> None:
        self.meta.problems.append(Problem(TOML_FILE, self.meta.locate(key), key, message))

    def section(self, doc: dict, name: str) -> dict | None:
        """Check a table section: present, a table, no unknown keys, all required keys."""
        if name not in doc:
            self.problem(name, f"missing section [{name}]")
            return None
        sec = doc[name]
        return self.table(sec, name, name)

    def table(self, sec: Any, key: str, schema: str) -> dict | None:
        if not isinstance(sec, dict):
            self.problem(key, f"must be a table, got {_type_name(sec)}")
            return None
        ok = True
        for k in sec:
            if k not in TOML_SCHEMA[schema]:
                allowed = ", ".join(TOML_SCHEMA[schema])
                self.problem(f"{key}.{k}", f"unknown key (expected: {allowed})")
        for k, required in TOML_SCHEMA[schema].items():
            if required and k not in sec:
                self.problem(f"{key}.{k}", "missing required key")
                ok = False
        return sec if ok else None

    def string(self, sec: dict, key: str, name: str) -> str | None:
        v = sec[name]
        if not isinstance(v, str):
            self.problem(f"{key}.{name}", f"must be a string, got {_type_name(v)} {short_repr(v)}")
            return None
        if not v.strip():
            self.problem(f"{key}.{name}", "must not be empty")
            return None
        if _CONTROL.search(v):
            self.problem(f"{key}.{name}", f"{_CONTROL_MESSAGE}, got {short_repr(v)}")
            return None
        return v

    def number(self, sec: dict, key: str, name: str, integer: bool = False) -> Any:
        v = sec[name]
        kinds = (int,) if integer else (int, float)
        if isinstance(v, bool) or not isinstance(v, kinds):
            what = "an integer" if integer else "a number"
            self.problem(f"{key}.{name}", f"must be {what}, got {_type_name(v)} {short_repr(v)}")
            return None
        if not integer and isinstance(v, int) and abs(v) > _FLOAT_MAX:
            self.problem(f"{key}.{name}", f"is too large, got {short_repr(v)}")
            return None
        return v

    def period(self, sec: dict, key: str, name: str) -> str | None:
        v = sec[name]
        if isinstance(v, _dt.date):  # TOML dates and date-times: keep the month
            return f"{v.year:04d}-{v.month:02d}"
        if not isinstance(v, str):
            got = f"{_type_name(v)} {short_repr(v)}"
            self.problem(f"{key}.{name}", f"must be a month 'YYYY-MM', got {got}")
            return None
        return v

    def issues(self, key: str, issues: list[tuple[str, str]]) -> bool:
        for k, msg in issues:
            self.problem(f"{key}.{k}", msg)
        return not issues


def validate_meta(doc: dict[str, Any], locate: Locator = _no_line) -> Meta:
    """Validate a parsed ``submission.toml`` document.

    Parameters
    ----------
    doc : dict
        Parsed TOML, or the equivalent dict built from ``from_dataframes`` arguments.
    locate : callable, optional
        Maps a dotted key to a line number.

    Returns
    -------
    Meta
        Validated records and the problems found.
    """
    meta = Meta(locate=locate, policy_declared="policy" in doc)
    c = _Checker(meta)
    for k in doc:
        if k not in TOML_SCHEMA:
            c.problem(k, f"unknown section (expected: {', '.join(TOML_SCHEMA)})")
    sec = c.section(doc, "platform")
    if sec is not None:
        name = c.string(sec, "platform", "name")
        start = c.period(sec, "platform", "period_start")
        end = c.period(sec, "platform", "period_end")
        if None not in (name, start, end) and c.issues("platform", period_issues(start, end)):
            meta.platform = Platform(name, start, end)
    sec = c.section(doc, "scale")
    if sec is not None:
        meta.scale = _scale(c, sec)
    if "claims" not in doc:
        c.problem("claims", "missing [[claims]]: one claim per category of listings.csv")
    elif not isinstance(doc["claims"], list) or not doc["claims"]:
        got = doc["claims"]
        c.problem("claims", f"must be an array of tables [[claims]], got {_type_name(got)}")
    else:
        _claims(c, doc["claims"], meta.scale, meta)
    if "policy" in doc:
        sec = c.table(doc["policy"], "policy", "policy")
        if sec is not None:
            s = c.number(sec, "policy", "strike_threshold", integer=True)
            e = c.number(sec, "policy", "claimed_enforcement")
            if s is not None and e is not None and c.issues("policy", policy_issues(s, e)):
                meta.policy = Policy(int(s), float(e))
    return meta


def _scale(c: _Checker, sec: dict) -> Scale | None:
    name = c.string(sec, "scale", "name")
    ok = name is not None
    th, labels = sec["thresholds"], sec["labels"]
    if not isinstance(th, list) or any(
        isinstance(t, bool) or not isinstance(t, (int, float)) for t in th
    ):
        c.problem("scale.thresholds", f"must be an array of numbers, got {short_repr(th)}")
        ok = False
    elif any(isinstance(t, int) and abs(t) > _FLOAT_MAX for t in th):
        huge = next(t for t in th if isinstance(t, int) and abs(t) > _FLOAT_MAX)
        msg = f"each must be strictly between 0 and 1, got {short_repr(huge)}"
        c.problem("scale.thresholds", msg)
        ok = False
    if not isinstance(labels, list) or any(not isinstance(lab, str) for lab in labels):
        c.problem("scale.labels", f"must be an array of strings, got {short_repr(labels)}")
        ok = False
    elif any(_CONTROL.search(lab) for lab in labels):
        bad = next(lab for lab in labels if _CONTROL.search(lab))
        c.problem("scale.labels", f"{_CONTROL_MESSAGE}, got {short_repr(bad)}")
        ok = False
    if ok and c.issues("scale", scale_issues(tuple(map(float, th)), tuple(labels))):
        return Scale(name, tuple(map(float, th)), tuple(labels))
    return None


def _claims(c: _Checker, items: list, scale: Scale | None, meta: Meta) -> None:
    """Validate the [[claims]] blocks; fill ``meta.claims`` and ``meta.claimed``."""
    meta.claims, meta.claimed = [], {}
    for i, item in enumerate(items, start=1):
        key = f"claims[{i}]"
        sec = c.table(item, key, "claims")
        if sec is None:
            if isinstance(item, dict) and isinstance(item.get("category"), str):
                meta.claimed.setdefault(item["category"], i)
            continue
        cat = c.string(sec, key, "category")
        prev = c.number(sec, key, "prevalence")
        band = c.string(sec, key, "band")
        rate = c.number(sec, key, "detection_rate") if "detection_rate" in sec else None
        ok = None not in (cat, prev, band) and ("detection_rate" not in sec or rate is not None)
        if prev is not None and not c.issues(key, claim_issues(prev, rate)):
            ok = False
        if band is not None and scale is not None and band not in scale.labels:
            labels = ", ".join(map(repr, scale.labels))
            c.problem(f"{key}.band", f"'{band}' is not a label of the scale ({labels})")
            ok = False
        if cat is not None:
            if cat in meta.claimed:
                first = meta.claimed[cat]
                c.problem(
                    f"{key}.category", f"duplicate claim for '{cat}' (first in claims[{first}])"
                )
                ok = False
            else:
                meta.claimed[cat] = i
        if ok:
            meta.claims.append(
                (i, Claim(cat, float(prev), band, None if rate is None else float(rate)))
            )


def meta_to_dict(
    platform: Platform, scale: Scale, claims: list[Claim], policy: Policy | None
) -> dict[str, Any]:
    """The ``submission.toml`` document (as a dict, ready for ``tomli_w``) of validated records."""
    doc: dict[str, Any] = {
        "platform": {
            "name": platform.name,
            "period_start": platform.period_start,
            "period_end": platform.period_end,
        },
        "scale": {
            "name": scale.name,
            "thresholds": list(scale.thresholds),
            "labels": list(scale.labels),
        },
        "claims": [],
    }
    for cl in claims:
        entry: dict[str, Any] = {
            "category": cl.category,
            "prevalence": cl.prevalence,
            "band": cl.band,
        }
        if cl.detection_rate is not None and not math.isnan(cl.detection_rate):
            entry["detection_rate"] = cl.detection_rate
        doc["claims"].append(entry)
    if policy is not None:
        doc["policy"] = {
            "strike_threshold": policy.strike_threshold,
            "claimed_enforcement": policy.claimed_enforcement,
        }
    return doc


def dumps_toml(doc: dict[str, Any]) -> str:
    """Write a submission.toml document, with one ``[[claims]]`` block per claim (readable)."""
    head = tomli_w.dumps({k: v for k, v in doc.items() if k != "claims"})
    blocks = ["[[claims]]\n" + tomli_w.dumps(claim) for claim in doc.get("claims", [])]
    return "\n".join([head.rstrip("\n") + "\n", *blocks])
