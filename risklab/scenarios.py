"""Stress scenarios: named interventions on the model's levers, evaluated on every posterior draw.

A :class:`Scenario` is a name, a description and a :class:`~risklab.counterfactual.Levers`
(review hours, listing volume, hidden share, efficiency decay, enforcement, prevalence odds and
trend). Scenarios come from Python or from a TOML file (:func:`load_scenarios`; the format is in
``docs/scenarios.md``) and are validated against the fit before anything runs.
:func:`stress_test` evaluates every scenario on every posterior draw with
:func:`risklab.counterfactual.evaluate_many` (no refit; batches of scenarios, so memory stays
bounded) and returns a :class:`StressTestResult`: the draws over
``(scenario, chain, draw, category)``, a per-category table, a platform-wide table, and
:meth:`StressTestResult.to_directory` to write them with figures.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from risklab._analysis import state_and_convergence
from risklab._atomic import publish_directory
from risklab.counterfactual import OUTCOMES, Levers, PosteriorState, evaluate_many
from risklab.dims import CATEGORY, DEFAULT_PROB, SAMPLE_DIMS, SCENARIO

__all__ = [
    "BASELINE",
    "LEVER_KEYS",
    "MAX_SCENARIOS",
    "MAX_SCENARIO_BYTES",
    "STRESS_FILES",
    "Scenario",
    "ScenarioError",
    "StressTestResult",
    "load_scenarios",
    "stress_test",
    "validate_scenarios",
]

#: Name of the reference scenario (no intervention unless the user defines it).
BASELINE = "baseline"
#: Largest scenario file read (bytes) and most scenarios in one file.
MAX_SCENARIO_BYTES = 2**20
MAX_SCENARIOS = 10_000
MAX_NAME_LENGTH = 120
#: Files :meth:`StressTestResult.to_directory` writes (``scenarios.nc`` only with draws).
STRESS_FILES = (
    "scenarios.csv",
    "scenarios_platform.csv",
    "scenarios.nc",
    "scenario_undetected.png",
    "scenario_bands.png",
)

#: Levers that take a number (all categories) or a table category -> number.
PER_CATEGORY = (
    "review_hours_factor",
    "review_hours_add",
    "listings_factor",
    "hidden_share_factor",
    "hidden_share_add",
    "prevalence_odds",
    "prevalence_trend",
)
#: Allowed range of each lever: (low, high, low inclusive, high inclusive).
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "review_hours_factor": (0.0, math.inf, True, False),
    "review_hours_add": (-math.inf, math.inf, False, False),
    "listings_factor": (0.0, math.inf, False, False),
    "hidden_share_factor": (0.0, math.inf, True, False),
    "hidden_share_add": (-1.0, 1.0, True, True),
    "prevalence_odds": (0.0, math.inf, False, False),
    "prevalence_trend": (-math.inf, math.inf, False, False),
    "efficiency_factor": (0.0, math.inf, False, False),
    "efficiency_decay": (0.0, 1.0, True, False),
    "enforcement": (0.0, 1.0, True, True),
    "min_saturation": (0.0, 1.0, False, False),
}
#: Keys of a ``[[scenario]]`` table that set a lever (the fields of :class:`Levers`).
LEVER_KEYS = tuple(f.name for f in fields(Levers))
_OTHER_KEYS = ("name", "description")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: Outcomes summarised with median and interval in :attr:`StressTestResult.table`.
_SUMMARISED = (
    "prevalence",
    "reported_share",
    "underestimation",
    "underestimation_vs_claim",
    "illegal_listings",
    "undetected_listings",
    "undetected_change",
    "detection_rate",
)
_PLATFORM = ("prevalence", "reported_share", "illegal_listings", "undetected_listings")


class ScenarioError(ValueError):
    """An invalid scenario or scenario file (the message names file, scenario and key)."""


@dataclass(frozen=True)
class Scenario:
    """A named intervention.

    Parameters
    ----------
    name : str
        Unique label (the ``scenario`` coordinate).
    levers : Levers, default no intervention
        What the scenario changes.
    description : str, optional
        Free text carried into the outputs.
    """

    name: str
    levers: Levers = field(default_factory=Levers)
    description: str = ""

    @classmethod
    def from_mapping(cls, name: str, description: str = "", **levers: Any) -> Scenario:
        """Build from lever keyword arguments, checked like the TOML reader.

        Example: ``Scenario.from_mapping("adaptation", efficiency_decay=0.05)``.
        """
        unknown = sorted(set(levers) - set(LEVER_KEYS))
        if unknown:
            raise ScenarioError(f"{_where(None, 1, name, unknown[0])}: unknown lever")
        return _make_scenario(name, description, levers, 1, None)

    def changed_levers(self) -> dict[str, Any]:
        """The levers that differ from no intervention (JSON-serialisable)."""
        out = {}
        for f in fields(Levers):
            value = getattr(self.levers, f.name)
            if isinstance(value, Mapping):
                out[f.name] = {str(k): float(v) for k, v in value.items()}
            elif isinstance(value, np.ndarray):
                out[f.name] = value.tolist()
            elif value != f.default:
                out[f.name] = value
        return out


# --------------------------------------------------------------------------------------------
# Reading and validation


def _where(source: str | None, index: int, name: str | None, key: str | None = None) -> str:
    parts = [source] if source else []
    label = f"scenario {index}" + (f" ({name!r})" if name else "")
    parts.append(label)
    if key:
        parts.append(key)
    return ": ".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_range(key: str, value: float) -> str | None:
    low, high, low_in, high_in = _RANGES[key]
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    ok_low = value >= low if low_in else value > low
    ok_high = value <= high if high_in else value < high
    if ok_low and ok_high:
        return None
    left, right = "[" if low_in else "(", "]" if high_in else ")"
    return f"must be in {left}{low:g}, {high:g}{right}, got {value!r}"


def _coerce_lever(key: str, value: Any) -> tuple[Any, str | None]:
    """Plain Python value of one lever, or an error message (without location)."""
    if key in PER_CATEGORY and isinstance(value, Mapping):
        out = {}
        for cat, v in value.items():
            if not _is_number(v):
                return None, f"{cat}: expected a number, got {type(v).__name__}"
            problem = _check_range(key, float(v))
            if problem:
                return None, f"{cat}: {problem}"
            out[str(cat)] = float(v)
        return out, None
    if isinstance(value, np.ndarray) and key in PER_CATEGORY:  # one value per category, in order
        for v in np.ravel(value):
            problem = _check_range(key, float(v))
            if problem:
                return None, problem
        return value, None
    if not _is_number(value):
        kind = "a number or a table category -> number" if key in PER_CATEGORY else "a number"
        return None, f"expected {kind}, got {type(value).__name__}"
    problem = _check_range(key, float(value))
    return (None, problem) if problem else (float(value), None)


def _scenario_from_table(table: Any, index: int, source: str) -> Scenario:
    if not isinstance(table, Mapping):
        raise ScenarioError(f"{_where(source, index, None)}: expected a table [[scenario]]")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(f"{_where(source, index, None, 'name')}: needs a non-empty string")
    name = name.strip()
    unknown = sorted(set(table) - set(LEVER_KEYS) - set(_OTHER_KEYS))
    if unknown:
        raise ScenarioError(
            f"{_where(source, index, name, unknown[0])}: unknown key; known levers: "
            f"{', '.join(LEVER_KEYS)}"
        )
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{_where(source, index, name, 'description')}: expected a string")
    levers = {k: table[k] for k in LEVER_KEYS if k in table}
    return _make_scenario(name, description, levers, index, source)


def _make_scenario(
    name: str, description: str, levers: Mapping[str, Any], index: int, source: str | None
) -> Scenario:
    clean = {}
    for key, value in levers.items():
        coerced, problem = _coerce_lever(key, value)
        if problem:
            raise ScenarioError(f"{_where(source, index, name, key)}: {problem}")
        clean[key] = coerced
    try:
        built = Levers(**clean)
    except ValueError as exc:  # pragma: no cover - the ranges above are stricter
        raise ScenarioError(f"{_where(source, index, name)}: {exc}") from exc
    return Scenario(name=name, levers=built, description=description)


def load_scenarios(
    path: str | os.PathLike,
    *,
    categories: Sequence[str] | None = None,
    enforcement_available: bool | None = None,
) -> list[Scenario]:
    """Read and validate a scenario file (TOML, one ``[[scenario]]`` table per scenario).

    Parameters
    ----------
    path : path
        The TOML file (at most :data:`MAX_SCENARIO_BYTES`).
    categories : sequence of str, optional
        The fit's categories; per-category levers naming others are errors.
    enforcement_available : bool, optional
        Whether the fit has the repeat-offender component; if False, an ``enforcement`` lever is
        an error.

    Returns
    -------
    list of Scenario
        In file order (no baseline is added here; :func:`stress_test` adds it).

    Raises
    ------
    ScenarioError
        Naming the file, the scenario (1-based index and name) and the key.
    """
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read the scenario file ({exc.strerror})") from exc
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            f"{source}: a scenario file may be at most {MAX_SCENARIO_BYTES:,} bytes"
        )
    try:
        doc = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: is not valid UTF-8") from exc
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise ScenarioError(f"{source}: is not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - {"scenario"})
    if unknown:
        raise ScenarioError(f"{source}: {unknown[0]}: unknown key; write [[scenario]] tables")
    tables = doc.get("scenario")
    if not isinstance(tables, list) or not tables:
        raise ScenarioError(f"{source}: scenario: expected one or more [[scenario]] tables")
    if len(tables) > MAX_SCENARIOS:
        raise ScenarioError(f"{source}: at most {MAX_SCENARIOS:,} scenarios, got {len(tables):,}")
    scenarios = [_scenario_from_table(t, i, source) for i, t in enumerate(tables, start=1)]
    validate_scenarios(
        scenarios,
        categories=categories,
        enforcement_available=enforcement_available,
        source=source,
    )
    return scenarios


def validate_scenarios(
    scenarios: Sequence[Scenario],
    *,
    categories: Sequence[str] | None = None,
    enforcement_available: bool | None = None,
    source: str | None = None,
) -> None:
    """Check names, lever types and ranges, categories and the enforcement lever.

    Raises :class:`ScenarioError` at the first problem (scenarios are numbered from 1).
    """
    seen: dict[str, int] = {}
    cats = list(categories) if categories is not None else None
    for index, scenario in enumerate(scenarios, start=1):
        if not isinstance(scenario, Scenario):
            raise ScenarioError(f"{_where(source, index, None)}: expected a Scenario")
        name = scenario.name
        if not isinstance(name, str) or not name.strip():
            raise ScenarioError(f"{_where(source, index, None, 'name')}: needs a non-empty string")
        if len(name) > MAX_NAME_LENGTH or _CONTROL.search(name):
            raise ScenarioError(
                f"{_where(source, index, name[:40], 'name')}: at most {MAX_NAME_LENGTH} "
                "characters, no control characters"
            )
        folded = name.casefold()
        if folded in seen:
            raise ScenarioError(
                f"{_where(source, index, name, 'name')}: duplicate of scenario {seen[folded]}"
            )
        seen[folded] = index
        for key in LEVER_KEYS:
            value = getattr(scenario.levers, key)
            if value is None:
                continue
            _, problem = _coerce_lever(key, value)
            if problem:
                raise ScenarioError(f"{_where(source, index, name, key)}: {problem}")
            if key in PER_CATEGORY and cats is not None:
                if isinstance(value, Mapping):
                    unknown = sorted(set(map(str, value)) - set(cats))
                    if unknown:
                        raise ScenarioError(
                            f"{_where(source, index, name, key)}: unknown category "
                            f"{unknown[0]!r}; the fit has {', '.join(cats)}"
                        )
                try:
                    scenario.levers.per_category(key, cats)
                except ValueError as exc:
                    raise ScenarioError(f"{_where(source, index, name, key)}: {exc}") from exc
        if scenario.levers.enforcement is not None and enforcement_available is False:
            raise ScenarioError(
                f"{_where(source, index, name, 'enforcement')}: the fit has no repeat-offender "
                "component (it needs traders.csv and a [policy] in the submission)"
            )


def _with_baseline(scenarios: Sequence[Scenario]) -> list[Scenario]:
    scenarios = list(scenarios)
    names = [s.name for s in scenarios]
    if BASELINE in names:
        i = names.index(BASELINE)
        return [scenarios[i], *scenarios[:i], *scenarios[i + 1 :]]
    return [Scenario(BASELINE, Levers(), "no intervention: the fitted world"), *scenarios]


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class StressTestResult:
    """Outcomes of :func:`stress_test`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scenario × category (scenario order, then category order): median, ``low``
        and ``high`` (equal-tailed interval of mass ``prob``) of ``prevalence``,
        ``reported_share`` (the detected share the platform would report), ``underestimation``
        (prevalence / reported share: U under the scenario), ``underestimation_vs_claim``,
        ``illegal_listings``, ``undetected_listings``, ``undetected_change`` (scenario −
        baseline, per draw) and ``detection_rate``; ``review_hours_median``;
        ``p_underestimated`` (P(U > 1)), ``p_undetected_below_baseline``,
        ``p_reported_band_below_true`` (the reported share falls in a lower band of the
        platform's scale than the prevalence), ``most_likely_band`` and ``p_band:<label>`` per
        band (of the prevalence).
    totals : pandas.DataFrame
        One row per scenario, platform-wide (sums over categories per draw): ``listings``,
        ``prevalence``, ``reported_share``, ``underestimation``, ``illegal_listings``,
        ``undetected_listings``, ``undetected_change`` (median, low, high),
        ``p_undetected_below_baseline``, ``review_hours_median`` and the changed levers as JSON.
    draws : xarray.Dataset or None
        :data:`~risklab.counterfactual.OUTCOMES`, ``band`` and ``reported_band`` over
        ``(scenario, chain, draw, category)`` and ``platform_<outcome>`` over
        ``(scenario, chain, draw)``; None when ``keep_draws=False``.
    scenarios : list of Scenario
        Evaluated, baseline first.
    prob : float
    converged : bool or None
        Whether the fit passed its convergence gate (None for a bare PosteriorState).
    elapsed : float
        Seconds spent evaluating.
    n_draws : int
        Posterior draws per scenario.
    """

    table: pd.DataFrame
    totals: pd.DataFrame
    draws: xr.Dataset | None
    scenarios: list[Scenario]
    prob: float = DEFAULT_PROB
    converged: bool | None = None
    elapsed: float = 0.0
    n_draws: int = 0
    labels: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Scenario-draws evaluated per second."""
        return len(self.scenarios) * self.n_draws / max(self.elapsed, 1e-12)

    def write_into(self, directory: str | os.PathLike) -> list[Path]:
        """Write the files into ``directory`` directly (no clash check; not atomic).

        Use :meth:`to_directory` unless you stage the files yourself.
        """
        import matplotlib.pyplot as plt

        from risklab.plotting.scenarios import plot_scenario_bands, plot_undetected_by_scenario

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in (("scenarios.csv", self.table), ("scenarios_platform.csv", self.totals)):
            _escaped(frame).to_csv(
                directory / name, index=False, float_format="%.6g", lineterminator="\n"
            )
            written.append(directory / name)
        if self.draws is not None:
            self.draws.to_netcdf(directory / "scenarios.nc", engine="h5netcdf")
            written.append(directory / "scenarios.nc")
        ax = plot_undetected_by_scenario(self)
        ax.figure.savefig(
            directory / "scenario_undetected.png", dpi=120, metadata={"Software": None}
        )
        plt.close(ax.figure)
        fig = plot_scenario_bands(self)
        fig.savefig(directory / "scenario_bands.png", dpi=120, metadata={"Software": None})
        plt.close(fig)
        written += [directory / "scenario_undetected.png", directory / "scenario_bands.png"]
        return written

    def to_directory(self, out: str | os.PathLike, *, force: bool = False) -> list[Path]:
        """Write :data:`STRESS_FILES` into ``out`` atomically (staged, then renamed into place).

        Nothing is overwritten without ``force``; on failure ``out`` is left as it was.
        """
        out = Path(out)
        check_stress_writable(out, force=force)
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".risklab-staging-", dir=out))
        try:
            self.write_into(staging)
            return publish_directory(staging, out, force=force)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def check_stress_writable(
    out: str | os.PathLike, *, force: bool, extra: Sequence[str] = ()
) -> None:
    """Raise :class:`FileExistsError` early when output files exist and ``force`` is not set."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    clashes = [n for n in (*STRESS_FILES, *extra) if (out / n).exists()]
    if clashes and not force:
        raise FileExistsError(f"{out} already holds {', '.join(clashes)}; pass --force to replace")


def _escaped(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_PREFIXES) else v
            )
    return frame


#: Scenarios evaluated per compiled batch (bounds memory: 8 outcomes × draws × categories each).
_BATCH = 64


def _evaluated(state: PosteriorState, scenarios: list[Scenario]):
    """Outcome arrays (S, K) per scenario, evaluated in batches by one compiled pass each."""
    for first in range(0, len(scenarios), _BATCH):
        batch = scenarios[first : first + _BATCH]
        outs = evaluate_many(state, [sc.levers for sc in batch])
        for j in range(len(batch)):
            yield {name: values[j] for name, values in outs.items()}


def stress_test(
    fitted_or_state: Any,
    scenarios: Sequence[Scenario] | str | os.PathLike,
    *,
    prob: float = DEFAULT_PROB,
    keep_draws: bool = True,
) -> StressTestResult:
    """Evaluate every scenario on every posterior draw (no refit).

    Parameters
    ----------
    fitted_or_state : PlatformRiskModel or PosteriorState
        A fitted model (or the state built from one, or from arrays).
    scenarios : sequence of Scenario, or path of a TOML scenario file
        A scenario named ``"baseline"`` is the reference (moved first); without one, a baseline
        with no intervention is added first.
    prob : float, default 0.90
        Mass of the equal-tailed intervals.
    keep_draws : bool, default True
        Keep all draws in :attr:`StressTestResult.draws` (memory: about
        ``10 × scenarios × draws × categories × 8`` bytes). With False only the tables are kept
        and memory does not grow with the number of scenarios.

    Returns
    -------
    StressTestResult

    Raises
    ------
    ScenarioError
        Before anything is evaluated, for any invalid scenario (unknown category, enforcement
        without the repeat-offender component, out-of-range value, duplicate name).
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    state, converged = state_and_convergence(fitted_or_state)
    if isinstance(scenarios, (str, os.PathLike)):
        scenarios = load_scenarios(
            scenarios, categories=state.categories, enforcement_available=state.has_offenders
        )
    scenarios = _with_baseline(scenarios)
    validate_scenarios(
        scenarios, categories=state.categories, enforcement_available=state.has_offenders
    )
    start = time.perf_counter()
    n, s, k = len(scenarios), state.n_draws, len(state.categories)
    tail = (1.0 - prob) / 2.0
    quantiles = np.array([0.5, tail, 1.0 - tail])
    base_listings = state.listings.sum(axis=1)
    store = None
    if keep_draws:
        store = {o: np.empty((n, s, k)) for o in OUTCOMES}
        store["band"] = np.empty((n, s, k), dtype=np.int16)
        store["reported_band"] = np.empty((n, s, k), dtype=np.int16)
        for o in _PLATFORM:
            store["platform_" + o] = np.empty((n, s))
    rows, totals = [], []
    baseline_undetected = baseline_total = None
    for i, (scenario, out) in enumerate(zip(scenarios, _evaluated(state, scenarios), strict=True)):
        listings = base_listings * scenario.levers.per_category("listings_factor", state.categories)
        platform = _platform(out, listings)
        if baseline_undetected is None:
            baseline_undetected = out["undetected_listings"]
            baseline_total = platform["undetected_listings"]
        out["undetected_change"] = out["undetected_listings"] - baseline_undetected
        band = state.band_index(out["prevalence"])
        reported_band = state.band_index(out["reported_share"])
        rows.append(_category_rows(scenario, state, out, band, reported_band, quantiles))
        totals.append(_platform_row(scenario, listings, out, platform, baseline_total, quantiles))
        if store is not None:
            for o in OUTCOMES:
                store[o][i] = out[o]
            store["band"][i] = band
            store["reported_band"][i] = reported_band
            for o in _PLATFORM:
                store["platform_" + o][i] = platform[o]
    elapsed = time.perf_counter() - start
    table = _concat_rows(rows)
    table["converged"] = converged
    draws = None if store is None else _draws_dataset(store, scenarios, state, prob)
    return StressTestResult(
        table=table,
        totals=pd.DataFrame(totals),
        draws=draws,
        scenarios=scenarios,
        prob=prob,
        converged=converged,
        elapsed=elapsed,
        n_draws=s,
        labels=list(state.labels),
    )


def _platform(out: dict[str, np.ndarray], listings: np.ndarray) -> dict[str, np.ndarray]:
    total = listings.sum()
    illegal = out["illegal_listings"].sum(axis=1)
    return {
        "prevalence": illegal / total,
        "reported_share": (out["reported_share"] * listings).sum(axis=1) / total,
        "illegal_listings": illegal,
        "undetected_listings": out["undetected_listings"].sum(axis=1),
    }


def _quantiles(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles (NumPy's default) along the last axis; q first in the output.

    One sort serves all three quantiles, which is faster than :func:`numpy.quantile` here.
    """
    x = np.sort(x, axis=-1)
    pos = q * (x.shape[-1] - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, x.shape[-1] - 1)
    a, b = x[..., lo], x[..., hi]
    return np.moveaxis(a + (b - a) * (pos - lo), -1, 0)


def _category_rows(scenario, state, out, band, reported_band, quantiles) -> dict[str, Any]:
    stacked = np.stack([out[o].T for o in _SUMMARISED])  # (Q, K, S)
    q = _quantiles(stacked, quantiles)  # (3, Q, K)
    k = len(state.categories)
    frame: dict[str, Any] = {SCENARIO: [scenario.name] * k, CATEGORY: list(state.categories)}
    for j, o in enumerate(_SUMMARISED):
        for m, suffix in enumerate(("median", "low", "high")):
            frame[f"{o}_{suffix}"] = q[m, j]
    frame["review_hours_median"] = np.median(out["review_hours"], axis=0)
    frame["p_underestimated"] = (out["underestimation"] > 1).mean(axis=0)
    frame["p_undetected_below_baseline"] = (out["undetected_change"] < 0).mean(axis=0)
    frame["p_reported_band_below_true"] = (reported_band < band).mean(axis=0)
    probs = np.stack([(band == b).mean(axis=0) for b in range(len(state.labels))], axis=-1)
    frame["most_likely_band"] = [state.labels[b] for b in probs.argmax(axis=-1)]
    for b, label in enumerate(state.labels):
        frame[f"p_band:{label}"] = probs[:, b]
    return frame


def _concat_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = {}
    for name, first in rows[0].items():
        if isinstance(first, list):
            columns[name] = [v for r in rows for v in r[name]]
        else:
            columns[name] = np.concatenate([r[name] for r in rows])
    return pd.DataFrame(columns)


def _platform_row(scenario, listings, out, platform, baseline_total, quantiles) -> dict:
    per_draw = dict(platform)
    per_draw["underestimation"] = platform["prevalence"] / platform["reported_share"]
    per_draw["undetected_change"] = platform["undetected_listings"] - baseline_total
    row: dict[str, Any] = {SCENARIO: scenario.name, "listings": float(listings.sum())}
    names = ("prevalence", "reported_share", "underestimation", "illegal_listings")
    names += ("undetected_listings", "undetected_change")
    q = _quantiles(np.stack([per_draw[n] for n in names]), quantiles)
    for j, n in enumerate(names):
        for m, suffix in enumerate(("median", "low", "high")):
            row[f"{n}_{suffix}"] = float(q[m, j])
    row["p_undetected_below_baseline"] = float((per_draw["undetected_change"] < 0).mean())
    row["review_hours_median"] = float(np.median(out["review_hours"].sum(axis=1)))
    row["description"] = scenario.description
    row["levers"] = json.dumps(scenario.changed_levers(), sort_keys=True)
    return row


def _draws_dataset(store, scenarios, state, prob) -> xr.Dataset:
    chains, draws = state.sample_shape
    n, k = len(scenarios), len(state.categories)
    dims4 = (SCENARIO, *SAMPLE_DIMS, CATEGORY)
    dims3 = (SCENARIO, *SAMPLE_DIMS)
    data = {}
    for name, arr in store.items():
        if arr.ndim == 3:
            data[name] = (dims4, arr.reshape(n, chains, draws, k))
        else:
            data[name] = (dims3, arr.reshape(n, chains, draws))
    ds = xr.Dataset(
        data,
        coords={
            SCENARIO: [s.name for s in scenarios],
            "description": (SCENARIO, [s.description for s in scenarios]),
            "levers": (
                SCENARIO,
                [json.dumps(s.changed_levers(), sort_keys=True) for s in scenarios],
            ),
            CATEGORY: list(state.categories),
        },
        attrs={
            "labels": json.dumps(list(state.labels)),
            "thresholds": np.asarray(state.thresholds, dtype=float),
            "prob": prob,
            "baseline": scenarios[0].name,
        },
    )
    return ds
