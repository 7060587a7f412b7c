"""Turning parsed template rows into the tables of a transparency report.

Helper of :mod:`risklab.data.templates` (split out to keep modules small): channel formulas,
mapping of category and keyword rows onto risklab categories part by part, gaps and notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from risklab.data._templates_parts import PART_NAMES, WideRow
from risklab.data._templates_read import parse_count, parse_number, parse_share
from risklab.data.errors import Problem
from risklab.data.mappings import CategoryMapping
from risklab.dims import CHANNELS

__all__ = ["CHANNEL_FORMULAS", "RATES", "Extract", "largest_remainder"]

#: Channel = signed sum of (part, figure) of the wide parts (see the module docstring).
CHANNEL_FORMULAS: dict[str, tuple[tuple[int, str, int], ...]] = {
    "proactive": ((5, "measures", 1), (6, "measures", 1)),
    "notice": (
        (4, "actions_law", 1),
        (4, "actions_tc", 1),
        (4, "tf_actions_law", -1),
        (4, "tf_actions_tc", -1),
    ),
    "trusted_flagger": ((4, "tf_actions_law", 1), (4, "tf_actions_tc", 1)),
    "authority": ((3, "order_items", 1),),
}

_AUTOMATED = {
    "number of measures solely taken by automated means": "automated_measures",
    "number of measures not taken by automated means": "non_automated_measures",
    "number of notices solely processed by automated means": "automated_notices",
    "number of notices not processed by automated means": "non_automated_notices",
    "accuracy of the automated means - accuracy": "accuracy",
    "accuracy of the automated means - precision": "precision",
    "accuracy of the automated means - recall": "recall",
}
RATES = ("accuracy", "precision", "recall")
_SCOPES = {
    "total number": "total",
    "own-initiative": "own_initiative",
    "nam total": "notices",
    "nam trusted flagger": "trusted_flagger_notices",
    "total": "total",
}
_MODERATORS = {
    "number of internal moderators employed by the provider": "internal",
    "number of external moderators contracted by the provider": "external",
    "number of total moderators with sufficient linguistic expertise": "linguistic",
}
_REMOVAL_COMPLAINTS = (
    "complaint regarding a decision to remove or disable access to or restrict visibility of "
    "information"
)
_COMPLAINT_SCOPES = {
    "total number": "complaints",
    "decisions upheld": "upheld",
    "decisions partially reversed": "partially_reversed",
    "decisions reversed": "reversed",
}
_SUSPENSIONS = "number of suspensions enacted for the provision of manifestly illegal content"


class Extract:
    """Turns parsed rows into the report's tables, recording gaps and notes."""

    def __init__(
        self,
        mapping: CategoryMapping,
        parts: list[int],
        blank_as_zero: bool,
        problems: list[Problem],
    ) -> None:
        self.mapping = mapping
        self.parts = parts
        self.blank_as_zero = blank_as_zero
        self.problems = problems
        self.gaps: list[tuple[Any, ...]] = []
        self.notes: list[str] = []
        self.mentioned: set[str] = set()

    def gap(self, file: str, row: int | None, column: str | None, item: str, reason: str) -> None:
        self.gaps.append((file, row, column, item, reason))

    def relevant(self, db_category: str, keywords: set[str]) -> set[str]:
        """risklab categories a category row can feed: rules matching the category and either
        any keyword or a keyword the report lists under it."""
        out = set()
        for rule in self.mapping.rules:
            cats, kws = rule.db_categories(), rule.keywords()
            if rule.category is None or (cats is not None and db_category not in cats):
                continue
            if kws is None or kws & keywords:
                out.add(rule.category)
        return out

    # ----------------------------------------------------------------------- parts 3–6
    def counts_frame(self, wide: list[WideRow]) -> pd.DataFrame:
        rows = []
        for r in wide:
            for m, v in r.values.items():
                c = r.cells.get(m)
                rows.append(
                    (
                        r.part,
                        r.db_category,
                        r.keyword,
                        r.scope,
                        m,
                        v,
                        r.gaps.get(m),
                        c.file if c else None,
                        c.row if c else None,
                        c.column if c else None,
                    )
                )
        df = pd.DataFrame(
            rows,
            columns=[
                "part",
                "db_category",
                "keyword",
                "scope",
                "measure",
                "value",
                "gap",
                "file",
                "row",
                "column",
            ],
        )
        df["value"] = df["value"].astype("Int64")
        return df

    def _value(self, row: WideRow, measure: str) -> int | None:
        v = row.values.get(measure)
        if v is None and self.blank_as_zero and row.gaps.get(measure) == "empty":
            return 0
        return v

    def detections(self, wide: list[WideRow]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Detections per risklab category and channel, each figure mapped part by part.

        Each (part, figure) of a channel's formula is mapped on its own — category rows and
        keyword rows of that part only — and the mapped amounts are then added with their sign,
        so a keyword filled in one part and left empty in another does not blur the mapping.
        """
        rows_of: dict[int, dict[tuple[str, str | None], WideRow]] = {}
        member_states: dict[int, dict[tuple[str, str | None], list[WideRow]]] = {}
        for r in wide:
            if r.part == 3 and r.scope != "TOTAL":
                member_states.setdefault(3, {}).setdefault((r.db_category, r.keyword), []).append(r)
            else:
                rows_of.setdefault(r.part, {})[(r.db_category, r.keyword)] = r
        totals: dict[tuple[str, str], int] = {}
        unknown: set[tuple[str, str]] = set()
        detail: list[tuple[Any, ...]] = []
        for channel, formula in CHANNEL_FORMULAS.items():
            for part, measure, sign in formula:
                if part not in self.parts:
                    unknown.update((cat, channel) for cat in self.mapping.categories)
                    self.gap(
                        "",
                        None,
                        None,
                        f"{channel} (part {part}: {PART_NAMES[part]})",
                        "part not supplied",
                    )
                    continue
                rows = rows_of.get(part, {})
                values = {
                    key: self._figure(row, measure, member_states.get(part, {}).get(key))
                    for key, row in rows.items()
                }
                for c in dict.fromkeys(c for c, _ in rows if c != "TOTAL"):
                    self._map_category(
                        channel, part, measure, sign, c, values, rows, totals, detail, unknown
                    )
                self._check_total(channel, part, measure, values)
        rows_out = []
        for cat in self.mapping.categories:
            for ch in CHANNELS:
                if (cat, ch) in unknown:
                    rows_out.append((cat, ch, None))
                elif (cat, ch) in totals:
                    value = totals[(cat, ch)]
                    if value < 0:
                        self.problems.append(
                            Problem(
                                "part 4",
                                None,
                                None,
                                f"{ch} for {cat} is negative ({value}): trusted-flagger actions "
                                "exceed all actions; part 4 must report them within the totals",
                            )
                        )
                        continue
                    rows_out.append((cat, ch, value))
        det = pd.DataFrame(rows_out, columns=["category", "channel", "detected"])
        det["detected"] = det["detected"].astype("Int64")
        det = det[det["category"].isin(self.mentioned)].reset_index(drop=True)
        dd = pd.DataFrame(
            detail,
            columns=[
                "part",
                "measure",
                "db_category",
                "keyword",
                "channel",
                "value",
                "outcome",
                "category",
                "note",
            ],
        )
        dd["value"] = dd["value"].astype("Int64")
        return det, dd

    def _figure(self, row: WideRow, measure: str, ms_rows: list[WideRow] | None) -> int | None:
        value = self._value(row, measure)
        if value is None and ms_rows:
            ms = [self._value(r, measure) for r in ms_rows]
            if all(v is not None for v in ms):
                self.notes.append(
                    f"part {row.part}, {row.keyword or row.db_category}: TOTAL row "
                    f"empty for {measure}; member-state rows summed"
                )
                return sum(ms)  # type: ignore[arg-type]
        return value

    def _map_category(
        self,
        channel: str,
        part: int,
        measure: str,
        sign: int,
        c: str,
        values: dict,
        rows: dict,
        totals: dict,
        detail: list,
        unknown: set,
    ) -> None:
        keywords = {k for (cc, k) in values if cc == c and k is not None}
        known = {k: values[(c, k)] for k in keywords if values[(c, k)] is not None}
        total = values.get((c, None))
        note = ""
        if total is None and known:
            total = sum(known.values())
            note = "category total empty: keyword rows summed"
        feeds = self.relevant(c, keywords)
        self.mentioned.update(feeds)
        if total is None:
            unknown.update((cat, channel) for cat in feeds)
            if feeds:
                row = rows.get((c, None))
                cell = row.cells.get(measure) if row is not None else None
                self.gap(
                    cell.file if cell else "",
                    cell.row if cell else None,
                    cell.column if cell else None,
                    f"{channel}: part {part} {measure}, {c}",
                    (row.gaps.get(measure) if row is not None else None) or "empty",
                )
            return
        if total == 0:
            for cat in feeds:
                totals[(cat, channel)] = totals.get((cat, channel), 0)
            detail.append(
                (
                    part,
                    measure,
                    c,
                    None,
                    channel,
                    0,
                    "mapped" if feeds else "unmapped",
                    ",".join(sorted(feeds)) or None,
                    "zero",
                )
            )
            return
        for cat in feeds:  # rule semantics: a category gets what its rules match, maybe 0
            totals.setdefault((cat, channel), 0)
        s = sum(known.values())
        pieces: list[tuple[str | None, int]]
        if s <= total:
            pieces = [*sorted(known.items()), (None, total - s)]
        else:
            alloc = largest_remainder(total, [known[k] for k in sorted(known)])
            pieces = list(zip(sorted(known), alloc, strict=True))
            note = (
                f"keyword rows sum to {s} > category total {total} (statements with several "
                "keywords): total shared out in proportion"
            )
        for k, v in pieces:
            if v == 0 and k is None and known:
                continue
            outcome, cat = self.mapping.classify(c, [k] if k else [])
            detail.append((part, measure, c, k, channel, v, outcome, cat, note))
            if outcome == "mapped":
                totals[(cat, channel)] = totals.get((cat, channel), 0) + sign * v

    def _check_total(self, channel: str, part: int, measure: str, values: dict) -> None:
        """Note when the TOTAL row disagrees with the sum of the category rows."""
        reported = values.get(("TOTAL", None))
        cats = [v for (c, k), v in values.items() if k is None and c != "TOTAL"]
        if reported is None or not cats or any(v is None for v in cats):
            return
        if sum(cats) != reported:
            self.notes.append(
                f"part {part} {measure}: TOTAL row ({reported}) differs from the "
                f"sum of the category rows ({sum(cats)})"
            )

    # -------------------------------------------------------------------------- part 8
    def automated(self, long: list[Any]) -> pd.DataFrame:
        rows = []
        for r in (x for x in long if x.part == 8):
            ind = _AUTOMATED.get(r.indicator)
            if ind is None:
                self.notes.append(
                    f"{r.cell.file}, row {r.cell.row}: indicator not used: {r.indicator!r}"
                )
                continue
            scope = _scope(r.scope)
            if scope is None:
                if r.value.strip():
                    self.problems.append(
                        r.cell.problem(
                            f"scope {r.scope!r} is the template placeholder; "
                            "write the language code"
                        )
                    )
                continue
            if ind in RATES:
                value, extra, problem = parse_share(r.value, r.cell)
            else:
                value, extra, problem = parse_count(r.value, r.cell)
            if problem is not None:
                self.problems.append(problem)
                continue
            gap = extra if value is None else None
            note = extra if value is not None else None
            if gap and scope in ("total", "own_initiative") and ind in RATES:
                self.gap(r.cell.file, r.cell.row, r.cell.column, f"part 8 {ind} ({scope})", gap)
            rows.append((scope, ind, value, gap, note, r.cell.file, r.cell.row))
        if 8 not in self.parts:
            self.gap("", None, None, "part 8 (automated means)", "not supplied")
        return pd.DataFrame(
            rows, columns=["scope", "indicator", "value", "gap", "note", "file", "row"]
        )

    # -------------------------------------------------------------------------- part 9
    def moderators(self, long: list[Any]) -> pd.DataFrame:
        rows = []
        for r in (x for x in long if x.part == 9):
            kind = _MODERATORS.get(r.indicator)
            scope = _scope(r.scope)
            if kind is None or scope is None:
                if r.value.strip() and scope is None:
                    self.problems.append(
                        r.cell.problem(
                            f"scope {r.scope!r} is the template placeholder; "
                            "write the language code"
                        )
                    )
                continue
            value, gap, problem = parse_number(r.value, r.cell)
            if problem is not None:
                self.problems.append(problem)
                continue
            if gap and scope == "total" and kind != "linguistic":
                self.gap(r.cell.file, r.cell.row, r.cell.column, f"part 9 {kind} moderators", gap)
            rows.append((kind, scope, value, gap, r.cell.file, r.cell.row))
        if 9 not in self.parts:
            self.gap("", None, None, "part 9 (human resources)", "not supplied")
        return pd.DataFrame(rows, columns=["kind", "scope", "value", "gap", "file", "row"])

    # -------------------------------------------------------------------------- part 7
    def complaints(self, long: list[Any]) -> tuple[pd.DataFrame, dict[str, int | None], int | None]:
        rows = []
        appeals: dict[str, int | None] = dict.fromkeys(_COMPLAINT_SCOPES.values())
        suspensions = None
        cells = {}
        for r in (x for x in long if x.part == 7):
            if r.scope in ("median time", "percentage of outcomes implemented"):
                value, gap, problem = parse_number(r.value, r.cell)
            else:
                value, gap, problem = parse_count(r.value, r.cell)
            if problem is not None:
                self.problems.append(problem)
                continue
            rows.append((r.section, r.indicator, r.scope, value, gap, r.cell.file, r.cell.row))
            if r.indicator == _REMOVAL_COMPLAINTS and r.scope in _COMPLAINT_SCOPES:
                key = _COMPLAINT_SCOPES[r.scope]
                appeals[key], cells[key] = value, r.cell
                if gap and key in ("complaints", "reversed"):
                    self.gap(
                        r.cell.file,
                        r.cell.row,
                        r.cell.column,
                        f"part 7 complaints against removals: {r.scope}",
                        gap,
                    )
            elif r.indicator == _SUSPENSIONS:
                suspensions = value
                if gap:
                    self.gap(
                        r.cell.file,
                        r.cell.row,
                        r.cell.column,
                        "part 7 suspensions of repeat offenders",
                        gap,
                    )
        total = appeals.get("complaints")
        for key in ("upheld", "partially_reversed", "reversed"):
            v = appeals.get(key)
            if v is not None and total is not None and v > total:
                self.problems.append(
                    cells[key].problem(
                        f"{key.replace('_', ' ')} ({v}) exceeds the complaints ({total})"
                    )
                )
        if 7 not in self.parts:
            self.gap("", None, None, "part 7 (complaints and recidivism)", "not supplied")
        df = pd.DataFrame(
            rows, columns=["section", "indicator", "scope", "value", "gap", "file", "row"]
        )
        return df, appeals, suspensions

    # ------------------------------------------------------------------------- part 10
    def recipients(self, long: list[Any]) -> pd.DataFrame:
        rows = []
        for r in (x for x in long if x.part == 10):
            scope = r.scope.upper()
            if scope == "[...]":
                if r.value.strip():
                    self.problems.append(
                        r.cell.problem(
                            "scope '[...]' is the template placeholder; write the member state"
                        )
                    )
                continue
            value, gap, problem = parse_count(r.value, r.cell)
            if problem is not None:
                self.problems.append(problem)
                continue
            rows.append((scope, value, gap, r.cell.file, r.cell.row))
        df = pd.DataFrame(rows, columns=["member_state", "recipients", "gap", "file", "row"])
        df["recipients"] = df["recipients"].astype("Int64")
        return df


def _scope(text: str) -> str | None:
    if text in _SCOPES:
        return _SCOPES[text]
    if len(text) == 2 and text.isalpha():
        return text.lower()
    return None


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` into integers summing to ``total``."""
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() == 0:
        return [0] * len(weights)
    exact = total * w / w.sum()
    base = np.floor(exact).astype(np.int64)
    rest = int(total - base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:rest]] += 1
    return [int(x) for x in base]
