"""Checks across tables: known categories and periods, complete grids, detections <= listings,
enforcement.csv against the policy and traders.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd

from risklab.data._checks import Collector, ParsedTable, quote
from risklab.data._records import Policy
from risklab.data.schema import CHANNELS, MAX_PROBLEMS_PER_RULE, POLICY_TABLES, TABLES, TOML_FILE

__all__ = ["check_claim_coverage", "check_cross", "check_policy_tables"]


def _known(
    pt: ParsedTable, name: str, known: set[str] | np.ndarray, what: str, col: Collector
) -> None:
    """Cells of column ``name`` whose value is not among ``known`` (the listings.csv values)."""
    if name not in pt.frame:
        return
    s = pt.frame[name]
    unknown = pt.valid(name) & ~s.isin(list(known)).to_numpy()
    col.rows(
        pt.file,
        name,
        unknown,
        pt.lines,
        lambda i: f"unknown {what} {quote(s.iat[i])}: not in listings.csv",
        f"the {what} is not in listings.csv",
    )
    pt.bad[name] = pt.bad[name] | unknown


def _missing_cells(
    cells: pd.MultiIndex, cats: list[str], periods: list[str]
) -> tuple[int, list[tuple[str, str]]]:
    """Number of (category, period) cells of the full grid absent from ``cells``, and the first
    few of them in sorted order.

    The full grid is never built: a hostile listings.csv with n categories and n periods on its
    diagonal would make it n^2 cells (10^8 for a 200 kB file). ``cells`` holds unique cells of
    the grid, so the count is arithmetic, and the scan below stops after the cells listed; it
    visits at most the rows of the complete categories before them.
    """
    n = len(cats) * len(periods) - len(cells)
    first: list[tuple[str, str]] = []
    if n <= 0:
        return 0, first
    have = pd.Series(cells.get_level_values(1), index=cells.get_level_values(0))
    by_cat = {c: set(g) for c, g in have.groupby(level=0)}
    for cat in cats:
        present = by_cat.get(cat, set())
        if len(present) == len(periods):
            continue
        for period in periods:
            if period not in present:
                first.append((cat, period))
                if len(first) >= MAX_PROBLEMS_PER_RULE:
                    return n, first
    return n, first


def _grid(listings: ParsedTable) -> tuple[list[str], list[str], pd.MultiIndex]:
    ok = listings.valid("category", "period")
    f = listings.frame.loc[ok, ["category", "period"]]
    cats = sorted(f["category"].unique().tolist())
    periods = sorted(f["period"].unique().tolist())
    return cats, periods, pd.MultiIndex.from_frame(f.drop_duplicates())


def check_cross(
    tables: dict[str, ParsedTable], evidence: dict[str, ParsedTable], col: Collector
) -> None:
    """Run every check that needs more than one table.

    Parameters
    ----------
    tables : dict of str to ParsedTable
        Submission tables by name (``listings`` and ``detections`` if they could be read).
    evidence : dict of str to ParsedTable
        Evidence tables by name.
    col : Collector
        Receives the problems.
    """
    listings = tables.get("listings")
    if listings is None or "category" not in listings.bad or "period" not in listings.bad:
        return
    cats, periods, cells = _grid(listings)
    for pt in [*tables.values(), *evidence.values()]:
        if pt is listings:
            continue
        _known(pt, "category", set(cats), "category", col)
        if pt.spec.name != "overlaps":
            _known(pt, "period", set(periods), "period", col)
    # With an unreadable category or period in listings.csv, completeness would be guesswork.
    grid_ok = bool(listings.valid("category", "period").all())
    n_missing, missing = _missing_cells(cells, cats, periods) if grid_ok else (0, [])
    col.capped(
        listings.file,
        None,
        n_missing,
        lambda k: (
            None,
            f"no row for category {quote(missing[k][0])}, period {quote(missing[k][1])}: "
            "every category needs a row for every period",
        ),
        "a category-period row is missing",
    )
    det = tables.get("detections")
    if det is not None:
        _check_detections(det, listings, cells if grid_ok else None, col)


def _check_detections(
    det: ParsedTable, listings: ParsedTable, cells: pd.MultiIndex | None, col: Collector
) -> None:
    key = ["category", "period", "channel"]
    if all(c in det.frame for c in key):  # a missing column is reported once, by the header
        _check_channel_grid(det, cells, col)
    if all(c in det.frame for c in ("category", "period", "detected")) and all(
        c in listings.frame for c in ("category", "period", "listings")
    ):
        _check_detected_bound(det, listings, col)


def _check_channel_grid(det: ParsedTable, cells: pd.MultiIndex | None, col: Collector) -> None:
    ok = det.valid("category", "period", "channel")
    f = det.frame.loc[ok, ["category", "period", "channel"]]
    used = set(f["channel"].unique().tolist())
    channels = [c for c in CHANNELS if c in used]
    if channels and cells is not None and ok.all():
        grid = cells.to_frame(index=False, name=["category", "period"])
        need = pd.MultiIndex.from_frame(
            grid.merge(pd.DataFrame({"channel": channels}), how="cross")
        )
        missing = need.difference(pd.MultiIndex.from_frame(f))
        col.capped(
            det.file,
            None,
            len(missing),
            lambda k: (
                None,
                f"no row for category {quote(missing[k][0])}, period {quote(missing[k][1])}, "
                f"channel {quote(missing[k][2])}: every channel used needs a row for every "
                "category and period of listings.csv",
            ),
            "a category-period-channel row is missing",
        )


def _check_detected_bound(det: ParsedTable, listings: ParsedTable, col: Collector) -> None:
    """detected must not exceed the cell's listings."""
    lok = listings.valid("category", "period", "listings")
    lf = listings.frame.loc[lok, ["category", "period", "listings"]].assign(
        _line=listings.lines[lok]
    )
    lf = lf.drop_duplicates(["category", "period"])
    dok = det.valid("category", "period", "detected")
    df = det.frame.loc[dok, ["category", "period", "detected"]].assign(_pos=np.flatnonzero(dok))
    merged = df.merge(lf, on=["category", "period"], how="inner")
    over = merged[merged["detected"] > merged["listings"]]
    if len(over):
        mask = np.zeros(len(det.frame), dtype=bool)
        mask[over["_pos"].to_numpy()] = True
        info = over.set_index("_pos")

        def message(i: int) -> str:
            r = info.loc[i]
            return (
                f"detected ({r['detected']}) exceeds the {r['listings']} listings of category "
                f"{quote(r['category'])}, period {quote(r['period'])} "
                f"(listings.csv row {r['_line']})"
            )

        col.rows(det.file, "detected", mask, det.lines, message, "'detected' exceeds the listings")
        det.bad["detected"] = det.bad["detected"] | mask


def check_claim_coverage(
    listings: ParsedTable | None,
    claimed: dict[str, int] | None,
    locate,
    col: Collector,
) -> None:
    """Every category of listings.csv has a claim, and every claim a category of listings.csv."""
    if listings is None or claimed is None or "category" not in listings.bad:
        return
    cats = set(listings.frame.loc[listings.valid("category"), "category"].unique().tolist())
    for cat in sorted(cats - set(claimed)):
        col.add(
            TOML_FILE,
            None,
            "claims",
            f"no claim for category {quote(cat)} of listings.csv; add a [[claims]] block for it",
        )
    for cat, i in sorted(claimed.items(), key=lambda kv: kv[1]):
        if cat not in cats:
            key = f"claims[{i}].category"
            col.add(
                TOML_FILE, locate(key), key, f"unknown category {quote(cat)}: not in listings.csv"
            )


def check_policy_tables(
    tables: dict[str, ParsedTable],
    policy: Policy | None,
    policy_declared: bool | None,
    col: Collector,
) -> None:
    """Tables defined by the repeat-offender policy: ``[policy]`` present, totals agree.

    ``enforcement.csv`` counts, per period, the traders whose strike count reached the policy's
    ``strike_threshold`` and how many of them were suspended. It needs ``[policy]``; with
    ``traders.csv`` its totals over the periods must equal the traders (and the suspended
    traders) with at least ``strike_threshold`` strikes.

    Parameters
    ----------
    tables : dict of str to ParsedTable
        Submission tables by name.
    policy : Policy or None
        The validated ``[policy]`` section (None when absent or invalid).
    policy_declared : bool or None
        Whether submission.toml has a ``[policy]`` section (None when it could not be read):
        an invalid section is reported by the TOML checks, not again here.
    col : Collector
        Receives the problems.
    """
    for name in POLICY_TABLES:
        pt = tables.get(name)
        if pt is not None and policy is None and policy_declared is False:
            col.add(
                pt.file,
                None,
                None,
                f"needs the [policy] section of {TOML_FILE}: its counts are defined by the "
                "policy's strike_threshold; add [policy] with strike_threshold and "
                "claimed_enforcement",
            )
    enf, traders = tables.get("enforcement"), tables.get("traders")
    if enf is None or traders is None or policy is None:
        return
    # Totals are compared only when both headers are right and every row is valid (no
    # cascading problems: a bad, unknown or repeated period is reported once, by its own rule).
    for pt in (enf, traders):
        if not (pt.complete and pt.valid(*TABLES[pt.spec.name].columns).all()):
            return
    threshold = policy.strike_threshold
    past = traders.frame["strikes"].to_numpy() >= threshold
    expected = {
        "reached": (_total(traders.frame["traders"].to_numpy()[past]), "traders"),
        "suspended": (_total(traders.frame["suspended"].to_numpy()[past]), "suspended traders"),
    }
    for column, (want, what) in expected.items():
        got = _total(enf.frame[column].to_numpy())
        if got != want:
            col.add(
                enf.file,
                None,
                column,
                f"totals {got} over all periods, but {traders.file} has {want} {what} with "
                f"at least {threshold} strikes (policy.strike_threshold): {enf.file} and "
                f"{traders.file} must agree",
            )


def _total(values: np.ndarray) -> int:
    """Exact sum of counts (Python integers: 10^4 rows of 10^15 would overflow int64)."""
    return int(np.sum(values, dtype=object)) if len(values) else 0
