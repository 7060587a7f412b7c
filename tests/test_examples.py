"""The examples in ``examples/`` are valid Jupytext notebooks and run to the end.

Every ``examples/*.py`` (found by glob, so new examples are covered without editing this file):

* parses as a Jupytext percent notebook whose first cell is a Markdown title;
* is seeded and prints the package versions;
* runs as a plain script, in a fresh working directory with the Agg backend, with ``pm.sample``
  replaced by prior draws (``pymc.testing.mock_sample``: no MCMC, a few draws), and exits 0.
  With prior draws the convergence gate fails: an example must survive that. (Models with a
  flat prior have no prior draws; those few small models are sampled for real, briefly.)

One slow test runs ``examples/quickstart.py`` for real (its own small draws) end to end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import risklab

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("[!_]*.py"))

#: Draws per chain under mocked sampling: enough for quantiles, cheap to post-process.
MOCK_DRAWS = 40
#: Seconds an example may take under mocked sampling (model compilation dominates).
MOCK_TIMEOUT = 900

#: Runs one example with ``pm.sample`` replaced by prior draws (argv[1]: the script). A model
#: with an improper (flat) prior has no prior draws; it is sampled for real instead, with at most
#: 2 chains × MOCK_DRAWS draws after 50 warm-up (the standalone estimators' small models).
_MOCKED_RUNNER = textwrap.dedent(
    f"""
    import runpy
    import sys
    import warnings

    import numpy as np
    import pymc as pm
    from pymc.testing import mock_sample

    _real_sample = pm.sample


    def _no_divergences(size):
        return np.zeros(size, dtype=bool)


    def fake_sample(draws=1000, **kwargs):
        kwargs.pop("sample_stats", None)
        draws = min(int(draws), {MOCK_DRAWS})
        try:
            return mock_sample(draws, sample_stats={{"diverging": _no_divergences}}, **kwargs)
        except NotImplementedError:  # "Cannot sample from flat variable"
            kwargs["tune"] = min(int(kwargs.get("tune") or 1000), 50)
            kwargs["chains"] = min(int(kwargs.get("chains") or 2), 2)
            return _real_sample(draws=draws, **kwargs)


    pm.sample = fake_sample
    warnings.simplefilter("ignore")
    sys.argv = [sys.argv[1]]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _failure(proc: subprocess.CompletedProcess) -> str:
    stdout, stderr = proc.stdout[-4000:], proc.stderr[-6000:]
    return f"exit {proc.returncode}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"


def _check_quickstart(proc: subprocess.CompletedProcess, cwd: Path) -> None:
    out = cwd / "demo-output" / "examples"
    for name in (
        "quickstart_prevalence_vs_claimed.png",
        "quickstart_posterior.nc",
        "quickstart_findings.csv",
    ):
        assert (out / name).stat().st_size > 0, name
    assert "reloaded findings identical: True" in proc.stdout
    table = (out / "quickstart_findings.csv").read_text().splitlines()
    assert table[0].split(",")[:3] == ["category", "prevalence_median", "prevalence_low"]
    assert len(table) == 1 + 10  # the demo's ten categories


def _check_figures(*names: str):
    def check(proc: subprocess.CompletedProcess, cwd: Path) -> None:
        for name in names:
            assert (cwd / "demo-output" / "examples" / name).stat().st_size > 0, name

    return check


#: Checks of what particular examples must produce, beyond exiting 0.
EXTRA_CHECKS = {
    "quickstart": _check_quickstart,
    "case_study": _check_figures("case_study_prevalence.png", "case_study_enforcement.png"),
    "capacity_and_detection": _check_figures("capacity_curves.png"),
    "monitoring": _check_figures(
        "monitoring_trends.png",
        "monitoring_status.png",
        "monitoring_kpis.png",
        "monitoring_report/monitoring_report.html",
        "monitoring_report/monitoring_report.md",
        "monitoring_report/monitoring_status.png",
    ),
}


def test_examples_found():
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.py", "case_study.py", "capacity_and_detection.py"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_jupytext_notebook(script: Path):
    jupytext = pytest.importorskip("jupytext", reason="needs jupytext (.[docs])")
    text = script.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    cells = notebook.cells
    assert len(cells) >= 2, f"{script.name}: fewer than two cells"
    assert cells[0].cell_type == "markdown", f"{script.name}: first cell is not Markdown"
    assert cells[0].source.lstrip().startswith("# "), f"{script.name}: no '# Title' first"
    assert any(c.cell_type == "code" for c in cells), f"{script.name}: no code cell"
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
    # Round trip: writing the notebook back gives the same cells (no content lost to the format).
    again = jupytext.reads(jupytext.writes(notebook, fmt="py:percent"), fmt="py:percent")
    assert [c.source for c in again.cells] == [c.source for c in cells]


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_seeded_and_prints_versions(script: Path):
    text = script.read_text(encoding="utf-8")
    assert re.search(r"\bSEED\s*=\s*\d+", text), f"{script.name}: no SEED = <int>"
    assert "__version__" in text or "importlib.metadata" in text, f"{script.name}: no versions"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_with_mocked_sampling(script: Path, tmp_path: Path):
    proc = _run(["-c", _MOCKED_RUNNER, str(script)], cwd=tmp_path, timeout=MOCK_TIMEOUT)
    assert proc.returncode == 0, _failure(proc)
    assert risklab.__version__ in proc.stdout, f"{script.name} did not print risklab's version"
    if script.stem in EXTRA_CHECKS:
        EXTRA_CHECKS[script.stem](proc, tmp_path)


@pytest.mark.slow
@pytest.mark.extended
def test_quickstart_runs_for_real(tmp_path: Path):
    proc = _run([str(ROOT / "examples" / "quickstart.py")], cwd=tmp_path, timeout=1800)
    assert proc.returncode == 0, _failure(proc)
    assert "convergence" in proc.stdout
    _check_quickstart(proc, tmp_path)


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize(
    "script", [p for p in EXAMPLES if p.stem != "quickstart"], ids=lambda p: p.stem
)
def test_example_runs_for_real(script: Path, tmp_path: Path):
    """Every other example, really sampled with its own (small) draws: `make test-all`."""
    proc = _run([str(script)], cwd=tmp_path, timeout=3600)
    assert proc.returncode == 0, _failure(proc)
    assert risklab.__version__ in proc.stdout
    if script.stem in EXTRA_CHECKS:
        EXTRA_CHECKS[script.stem](proc, tmp_path)
