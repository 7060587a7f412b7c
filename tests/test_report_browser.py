"""The HTML report as a reader sees it: rendered by headless Chromium, offline, to a screenshot.

Skipped (with the reason) when Chromium is not installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr

from risklab.assess import assess
from risklab.outputs import write_assessment
from tests.test_report import mocked_fit

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if Path(path).exists():
            return path
    return shutil.which("chromium")


def _screenshot(chromium: str, page: Path, png: Path, profile: Path, height: int) -> None:
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size=1280,{height}",
        page.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=180)


@pytest.mark.skipif(_chromium() is None, reason="Chromium not installed (apt-get install chromium)")
def test_report_renders_in_a_headless_browser(tmp_path):
    model = mocked_fit(traders=False, seed=11)
    findings = assess(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # under mocked sampling the posterior draws are prior draws: reuse them as the prior
        prior = xr.Dataset({"prevalence": model.posterior["prevalence"]})
        write_assessment(model, findings, tmp_path / "out", prior=prior)
    page = tmp_path / "out" / "report.html"
    png = tmp_path / "shot.png"
    _screenshot(_chromium(), page, png, tmp_path / "profile", height=6000)
    pixels = mpimg.imread(png)[..., :3]
    assert pixels.shape[:2] == (6000, 1280)
    # not blank: text, tables and figures leave many non-white pixels, spread down the page
    ink = pixels.min(axis=-1) < 0.85
    assert pixels.std() > 0.05
    assert ink.mean() > 0.02
    rows_with_ink = ink.any(axis=1)
    assert rows_with_ink[:1000].mean() > 0.2 and rows_with_ink[1000:5000].mean() > 0.2
    # the unconverged banner (pinkish red, at the top) is rendered
    top = pixels[:400]
    banner = (top[..., 0] > 0.95) & (top[..., 1] < 0.93) & (top[..., 1] > 0.85)
    assert banner.mean() > 0.01
    # the embedded figures are drawn (a colourful band chart and figures somewhere below)
    saturated = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.3
    assert saturated[1000:].mean() > 0.005
    assert np.isfinite(pixels).all()
