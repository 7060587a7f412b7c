"""The ``xarray.Dataset`` of a submission, and back.

Layout (the model code depends on it exactly; see ``docs/submission-format.md``):

- coords ``category``, ``period`` (sorted str), ``channel`` (canonical order), ``strikes`` (int64,
  only with traders.csv);
- int64 (category, period): listings, audit_{random,purposive}_{sampled,illegal}, planted,
  caught, appeals, overturned; float64 (category, period): review_hours;
  int64 (category, period, channel): detected;
- per category: claimed_prevalence, claimed_band, claimed_detection_rate (NaN when absent);
- per strikes: traders_count, traders_suspended;
- int64 per period: enforcement_reached, enforcement_suspended (only with enforcement.csv; 0 for
  periods without a row);
- netCDF-safe attrs (platform, scale, policy, tables_present, input_sha256, source, overlaps_json).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from risklab.data._records import Claim, Platform, Policy, Scale
from risklab.data.schema import AUDIT_DESIGNS, CHANNELS, OPTIONAL_TABLES, TABLES

__all__ = ["build_dataset", "records_from_dataset", "tables_from_dataset"]

CELL = ("category", "period")
#: (table, column) -> data variable, for the (category, period) count tables.
CELL_COUNTS: dict[tuple[str, str], str] = {
    ("planted", "planted"): "planted",
    ("planted", "caught"): "caught",
    ("appeals", "appeals"): "appeals",
    ("appeals", "overturned"): "overturned",
}
#: Count columns of enforcement.csv; data variable ``enforcement_<column>`` over ``period``.
ENFORCEMENT_COUNTS: tuple[str, ...] = ("reached", "suspended")


def _str_array(values: Any) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=str)


def _cell_sum(
    df: pd.DataFrame | None, column: str, cats: pd.Index, periods: pd.Index
) -> np.ndarray:
    out = np.zeros((len(cats), len(periods)), dtype=np.int64)
    if df is not None and len(df):
        ci = cats.get_indexer(df["category"])
        ti = periods.get_indexer(df["period"])
        np.add.at(out, (ci, ti), df[column].to_numpy(dtype=np.int64))
    return out


def build_dataset(
    *,
    platform: Platform,
    scale: Scale,
    claims: dict[str, Claim],
    policy: Policy | None,
    tables: dict[str, pd.DataFrame],
    input_sha256: str,
    source: str,
) -> xr.Dataset:
    """Aggregate validated tables into the submission Dataset.

    Parameters
    ----------
    platform, scale, claims, policy
        Validated records; ``claims`` keyed by category.
    tables : dict of str to pandas.DataFrame
        Validated typed tables (evidence rows included; they are summed per key).
    input_sha256, source : str
        Provenance, stored in attrs.

    Returns
    -------
    xarray.Dataset
    """
    lst = tables["listings"]
    cats = pd.Index(sorted(lst["category"].unique().tolist()))
    periods = pd.Index(sorted(lst["period"].unique().tolist()))
    det = tables["detections"]
    present_channels = set(det["channel"].unique().tolist())
    channels = [c for c in CHANNELS if c in present_channels]
    ci, ti = cats.get_indexer(lst["category"]), periods.get_indexer(lst["period"])
    shape = (len(cats), len(periods))
    listings = np.zeros(shape, dtype=np.int64)
    listings[ci, ti] = lst["listings"].to_numpy(dtype=np.int64)
    hours = np.full(shape, np.nan)
    hours[ci, ti] = lst["review_hours"].to_numpy(dtype=np.float64)
    detected = np.zeros((*shape, len(channels)), dtype=np.int64)
    np.add.at(
        detected,
        (
            cats.get_indexer(det["category"]),
            periods.get_indexer(det["period"]),
            pd.Index(channels).get_indexer(det["channel"]),
        ),
        det["detected"].to_numpy(dtype=np.int64),
    )
    cell = list(CELL)
    data_vars: dict[str, Any] = {
        "listings": (cell, listings),
        "review_hours": (cell, hours),
        "detected": ([*cell, "channel"], detected),
    }
    audits = tables.get("audits")
    for design in AUDIT_DESIGNS:
        part = None if audits is None else audits[audits["design"] == design]
        for col in ("sampled", "illegal"):
            data_vars[f"audit_{design}_{col}"] = (cell, _cell_sum(part, col, cats, periods))
    for (table, col), var in CELL_COUNTS.items():
        data_vars[var] = (cell, _cell_sum(tables.get(table), col, cats, periods))
    ordered = [claims[c] for c in cats]
    data_vars["claimed_prevalence"] = ("category", np.array([c.prevalence for c in ordered]))
    data_vars["claimed_band"] = ("category", _str_array(c.band for c in ordered))
    data_vars["claimed_detection_rate"] = (
        "category",
        np.array([np.nan if c.detection_rate is None else c.detection_rate for c in ordered]),
    )
    coords: dict[str, Any] = {
        "category": _str_array(cats),
        "period": _str_array(periods),
        "channel": _str_array(channels),
    }
    traders = tables.get("traders")
    if traders is not None:
        tr = traders.sort_values("strikes")
        coords["strikes"] = tr["strikes"].to_numpy(dtype=np.int64)
        data_vars["traders_count"] = ("strikes", tr["traders"].to_numpy(dtype=np.int64))
        data_vars["traders_suspended"] = ("strikes", tr["suspended"].to_numpy(dtype=np.int64))
    enforcement = tables.get("enforcement")
    if enforcement is not None:
        ti = periods.get_indexer(enforcement["period"])
        for col in ENFORCEMENT_COUNTS:
            out = np.zeros(len(periods), dtype=np.int64)
            np.add.at(out, ti, enforcement[col].to_numpy(dtype=np.int64))
            data_vars[f"enforcement_{col}"] = ("period", out)
    attrs: dict[str, Any] = {
        "platform_name": platform.name,
        "period_start": platform.period_start,
        "period_end": platform.period_end,
        "scale_name": scale.name,
        "scale_thresholds": [float(t) for t in scale.thresholds],
        "scale_labels": [str(lab) for lab in scale.labels],
    }
    if policy is not None:
        attrs["strike_threshold"] = int(policy.strike_threshold)
        attrs["claimed_enforcement"] = float(policy.claimed_enforcement)
    attrs["tables_present"] = [t for t in OPTIONAL_TABLES if t in tables]
    attrs["input_sha256"] = input_sha256
    attrs["source"] = source
    overlaps = tables.get("overlaps")
    if overlaps is not None:
        attrs["overlaps_json"] = json.dumps(
            {
                "columns": [str(c) for c in overlaps.columns],
                "data": [[v.item() if isinstance(v, np.generic) else v for v in row]
                         for row in overlaps.itertuples(index=False, name=None)],
            }
        )  # fmt: skip
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _as_list(value: Any) -> list:
    """Attribute lists may come back from netCDF as numpy arrays or, for one item, scalars."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return [value.item()]
    return [value]


def records_from_dataset(
    ds: xr.Dataset,
) -> tuple[Platform, Scale, dict[str, Claim], Policy | None, list[str]]:
    """Platform, scale, claims, policy and optional table names stored in a submission Dataset."""
    a = ds.attrs
    platform = Platform(str(a["platform_name"]), str(a["period_start"]), str(a["period_end"]))
    scale = Scale(
        str(a["scale_name"]),
        tuple(float(t) for t in _as_list(a["scale_thresholds"])),
        tuple(str(lab) for lab in _as_list(a["scale_labels"])),
    )
    claims = {}
    cats = [str(c) for c in ds["category"].values]
    prev = ds["claimed_prevalence"].values
    band = ds["claimed_band"].values
    rate = ds["claimed_detection_rate"].values
    for i, cat in enumerate(cats):
        r = float(rate[i])
        claims[cat] = Claim(cat, float(prev[i]), str(band[i]), None if np.isnan(r) else r)
    policy = None
    if "strike_threshold" in a:
        policy = Policy(int(a["strike_threshold"]), float(a["claimed_enforcement"]))
    present = [str(t) for t in _as_list(a.get("tables_present", [])) if str(t)]
    return platform, scale, claims, policy, present


def normalise_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Give a Dataset read back from a file the in-memory dtypes (str coords, lists in attrs)."""
    ds = ds.copy()
    for name in ("category", "period", "channel"):
        ds = ds.assign_coords({name: _str_array(ds[name].values)})
    ds["claimed_band"] = ("category", _str_array(ds["claimed_band"].values))
    for key in ("scale_thresholds", "scale_labels", "tables_present"):
        if key in ds.attrs:
            ds.attrs[key] = _as_list(ds.attrs[key])
    ds.attrs["scale_thresholds"] = [float(t) for t in ds.attrs["scale_thresholds"]]
    ds.attrs["scale_labels"] = [str(t) for t in ds.attrs["scale_labels"]]
    ds.attrs["tables_present"] = [str(t) for t in ds.attrs.get("tables_present", []) if str(t)]
    return ds


def _text(values: Any) -> pd.Series:
    return pd.Series(list(values), dtype=str)


def _cells_frame(ds: xr.Dataset, values: dict[str, np.ndarray]) -> pd.DataFrame:
    cats, periods = ds["category"].values, ds["period"].values
    k, t = len(cats), len(periods)
    out = {"category": _text(np.repeat(cats, t)), "period": _text(np.tile(periods, k))}
    for name, arr in values.items():
        out[name] = arr.reshape(-1)
    return pd.DataFrame(out)


def _nonzero(df: pd.DataFrame, counts: list[str]) -> pd.DataFrame:
    keep = (df[counts].to_numpy() > 0).any(axis=1)
    return (df[keep] if keep.any() else df).reset_index(drop=True)


def tables_from_dataset(ds: xr.Dataset, present: list[str]) -> dict[str, pd.DataFrame]:
    """Rebuild tables in canonical form from a submission Dataset.

    Listings and detections are full grids; count tables (enforcement included: one row per
    period) keep the rows with a non-zero count (all rows if every count is zero); the
    ``source`` split of evidence rows is not kept.
    """
    tables = {
        "listings": _cells_frame(
            ds, {"listings": ds["listings"].values, "review_hours": ds["review_hours"].values}
        )
    }
    parts = []
    for j, ch in enumerate(ds["channel"].values):
        part = _cells_frame(ds, {"detected": ds["detected"].values[:, :, j]})
        part.insert(2, "channel", _text([str(ch)] * len(part)))
        parts.append(part)
    tables["detections"] = pd.concat(parts, ignore_index=True)
    if "audits" in present:
        parts = []
        for design in AUDIT_DESIGNS:
            part = _cells_frame(
                ds,
                {c: ds[f"audit_{design}_{c}"].values for c in ("sampled", "illegal")},
            )
            part.insert(2, "design", _text([design] * len(part)))
            parts.append(part)
        tables["audits"] = _nonzero(pd.concat(parts, ignore_index=True), ["sampled", "illegal"])
    for name in ("planted", "appeals"):
        if name in present:
            cols = [c for c in TABLES[name].columns if c not in ("category", "period")]
            df = _cells_frame(ds, {c: ds[CELL_COUNTS[(name, c)]].values for c in cols})
            tables[name] = _nonzero(df, cols)
    if "traders" in present and "strikes" in ds.coords:
        tables["traders"] = pd.DataFrame(
            {
                "strikes": ds["strikes"].values.astype(np.int64),
                "traders": ds["traders_count"].values.astype(np.int64),
                "suspended": ds["traders_suspended"].values.astype(np.int64),
            }
        )
    if "enforcement" in present and "enforcement_reached" in ds:
        df = pd.DataFrame({"period": _text(ds["period"].values)})
        for col in ENFORCEMENT_COUNTS:
            df[col] = ds[f"enforcement_{col}"].values.astype(np.int64)
        tables["enforcement"] = _nonzero(df, list(ENFORCEMENT_COUNTS))
    if "overlaps" in present and "overlaps_json" in ds.attrs:
        tables["overlaps"] = overlaps_from_json(str(ds.attrs["overlaps_json"]))
    return tables


def overlaps_from_json(text: str) -> pd.DataFrame:
    """The overlaps table stored in the ``overlaps_json`` attribute."""
    obj = json.loads(text)
    df = pd.DataFrame(obj["data"], columns=obj["columns"])
    df["category"] = df["category"].astype(str)
    for c in df.columns[1:]:
        df[c] = df[c].astype(np.int64)
    return df
