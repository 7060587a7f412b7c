"""Merging per-table aggregation results, the listing-age summary and atomic file writing.

Helpers of :mod:`risklab.data.transparency_db` (split out to keep modules small).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from risklab.data._tdb_sources import SourceTable
from risklab.data._tdb_sql import EXCLUDED_REASONS, UNMAPPED_REASON
from risklab.data.mappings import CategoryMapping
from risklab.dims import CHANNELS

__all__ = ["Accumulator", "summarise_age", "write_files"]

_GROUP_KEYS = {
    "breakdown": [
        "rule",
        "period",
        "channel",
        "ground",
        "automated_detection",
        "automated_decision",
    ],
    "age": ["rule", "period", "channel", "age_days"],
    "coverage": ["created_date"],
    "platforms": ["platform_name"],
}


def write_files(root: Path, files: dict[str, bytes], *, overwrite: bool) -> list[Path]:
    """Write files atomically into ``root``; refuse to replace any unless ``overwrite``."""
    from risklab._atomic import atomic_path

    targets = [root / n for n in files]
    clash = [t for t in targets if t.exists()]
    if clash and not overwrite:
        raise FileExistsError(f"refusing to overwrite {clash[0]} (use --force / overwrite=True)")
    root.mkdir(parents=True, exist_ok=True)
    for target, data in zip(targets, files.values(), strict=True):
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    return targets


def summarise_age(hist: pd.DataFrame) -> pd.DataFrame:
    """Listing-age summary (see :attr:`TdbAggregate.listing_age`) from an age histogram."""
    keys = ["category", "period", "channel"]
    cols = [
        *keys,
        "statements",
        "with_age",
        "negative_age",
        "mean_days",
        "p10_days",
        "p25_days",
        "median_days",
        "p75_days",
        "p90_days",
    ]
    rows = []
    for key, g in hist.groupby(keys, sort=True):
        total = int(g["statements"].sum())
        aged = g[g["age_days"].notna()]
        neg = int(aged.loc[aged["age_days"] < 0, "statements"].sum())
        ok = aged[aged["age_days"] >= 0].sort_values("age_days")
        ages = ok["age_days"].to_numpy(dtype=np.int64)
        counts = ok["statements"].to_numpy(dtype=np.int64)
        n = int(counts.sum())
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row.update(statements=total, with_age=int(aged["statements"].sum()), negative_age=neg)
        if n:
            cum = np.cumsum(counts)
            row["mean_days"] = float((ages * counts).sum() / n)
            for name, q in (
                ("p10", 0.1),
                ("p25", 0.25),
                ("median", 0.5),
                ("p75", 0.75),
                ("p90", 0.9),
            ):
                row[f"{name}_days"] = int(ages[np.searchsorted(cum, q * n, side="left")])
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    for c in ("p10_days", "p25_days", "median_days", "p75_days", "p90_days"):
        out[c] = out[c].astype("Int64")
    return out


class Accumulator:
    """Merges per-table results; compacts the lists so memory stays bounded by groups."""

    _COMPACT_EVERY = 32

    def __init__(self, mapping: CategoryMapping) -> None:
        self.mapping = mapping
        self.parts: dict[str, list[pd.DataFrame]] = {k: [] for k in _GROUP_KEYS}
        self.status: list[pd.DataFrame] = []
        self.rejected: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []

    def add(
        self,
        table: SourceTable,
        available: dict[str, str],
        result: pd.DataFrame,
        n_rejected: int,
        listed: list[dict[str, Any]],
        seconds: float,
    ) -> int:
        for gs, keys in _GROUP_KEYS.items():
            part = result.loc[result["gs"] == gs, [*keys, "n"]]
            if gs in ("breakdown", "age"):
                part = part[part["rule"].notna()]
            if gs == "coverage":
                ok = part["created_date"].astype(str).str.fullmatch(r"\d{4}-\d{2}-\d{2}")
                part = part[part["created_date"].notna() & ok]
            if gs == "platforms":
                part = part[part["platform_name"].notna()]
            self.parts[gs].append(part)
            if len(self.parts[gs]) >= self._COMPACT_EVERY:
                self.parts[gs] = [_sum(self.parts[gs], keys)]
        st = result.loc[result["gs"] == "status", ["reason", "db_category", "n", "example_uuid"]]
        st = st.rename(columns={"n": "statements"}).assign(file=table.label)
        if n_rejected:
            st = pd.concat(
                [
                    st,
                    pd.DataFrame(
                        [
                            {
                                "file": table.label,
                                "reason": "malformed_csv_row",
                                "db_category": None,
                                "statements": n_rejected,
                                "example_uuid": None,
                            }
                        ]
                    ),
                ],
                ignore_index=True,
            )
        self.status.append(st)
        self.rejected += listed
        n = int(st["statements"].sum())
        self.files.append(
            {
                "file": table.label,
                "kind": table.kind,
                "variant": "full" if "decision_facts" in available else "light",
                "schema_version": 2 if "content_id_ean" in available else 1,
                "statements": n,
                "kept": int(st.loc[st["reason"] == "kept", "statements"].sum()),
                "seconds": round(seconds, 3),
            }
        )
        return n

    def finish(self, platform: str, notes: list[str]) -> Any:
        merged = {
            gs: _sum(parts, keys)
            for (gs, keys), parts in zip(_GROUP_KEYS.items(), self.parts.values(), strict=True)
        }
        cat_of = {i: r.category for i, r in enumerate(self.mapping.rules)}
        for gs in ("breakdown", "age"):
            df = merged[gs]
            df.insert(0, "category", df.pop("rule").astype(int).map(cat_of))
            merged[gs] = df
        bd = merged["breakdown"].rename(columns={"n": "statements", "ground": "decision_ground"})
        bd = _order(
            bd,
            [
                "category",
                "period",
                "channel",
                "decision_ground",
                "automated_detection",
                "automated_decision",
            ],
        )
        bd = bd.groupby(list(bd.columns[:-1]), as_index=False, sort=False)["statements"].sum()
        det = bd.groupby(["category", "period", "channel"], as_index=False, sort=False)[
            "statements"
        ].sum()
        det = _order(
            det.rename(columns={"statements": "detected"}), ["category", "period", "channel"]
        )
        age = merged["age"].rename(columns={"n": "statements"})
        age = age.groupby(
            ["category", "period", "channel", "age_days"], as_index=False, sort=False, dropna=False
        )["statements"].sum()
        age["age_days"] = age["age_days"].astype("Int64")
        age = _order(age, ["category", "period", "channel", "age_days"])
        status = pd.concat(self.status, ignore_index=True) if self.status else _empty_status()
        status["outcome"] = status["reason"].map(_outcome)
        status = status[["file", "outcome", "reason", "db_category", "statements", "example_uuid"]]
        coverage = (
            merged["coverage"].rename(columns={"n": "statements"}).sort_values("created_date")
        )
        others = (
            merged["platforms"]
            .rename(columns={"n": "statements"})
            .sort_values("statements", ascending=False)
        )
        from risklab.data.transparency_db import TdbAggregate

        return TdbAggregate(
            platform=platform,
            detections=det.reset_index(drop=True),
            breakdown=bd.reset_index(drop=True),
            age_histogram=age.reset_index(drop=True),
            status=status.reset_index(drop=True),
            rejected_lines=pd.DataFrame(self.rejected, columns=["file", "line", "error"]),
            coverage=coverage.reset_index(drop=True),
            other_platforms=others.reset_index(drop=True),
            files=pd.DataFrame(self.files),
            notes=notes,
        )


def _outcome(reason: str) -> str:
    if reason in ("kept", UNMAPPED_REASON):
        return reason
    return "excluded" if reason in EXCLUDED_REASONS else "skipped"


def _sum(parts: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=[*keys, "n"])
    df = pd.concat(parts, ignore_index=True)
    return df.groupby(keys, as_index=False, sort=False, dropna=False)["n"].sum()


def _order(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if "channel" in df.columns:
        rank = {c: i for i, c in enumerate(CHANNELS)}
        df = df.assign(_ch=df["channel"].map(rank))
        keys = [k if k != "channel" else "_ch" for k in keys]
        return df.sort_values(keys, na_position="first").drop(columns="_ch").reset_index(drop=True)
    return df.sort_values(keys).reset_index(drop=True)


def _empty_status() -> pd.DataFrame:
    return pd.DataFrame(columns=["file", "reason", "db_category", "statements", "example_uuid"])
