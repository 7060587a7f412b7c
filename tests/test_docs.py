"""The documentation builds with warnings as errors, and holds every page, example and module.

The build is the one ``make docs`` runs (``sphinx-build -W --keep-going -b html docs ...``), into
a temporary directory. It needs the ``docs`` extra (Sphinx, myst-nb, Jupytext, furo); without it
the build tests are skipped with that reason.
"""

from __future__ import annotations

import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_MISSING = [
    name
    for name in ("sphinx", "myst_nb", "jupytext", "furo")
    if importlib.util.find_spec(name) is None
]
needs_docs = pytest.mark.skipif(
    bool(_MISSING), reason=f"docs extra not installed (missing {', '.join(_MISSING)})"
)


@pytest.fixture(scope="module")
def conf() -> dict:
    """The namespace of docs/conf.py (its helpers; importing it links docs/examples)."""
    if _MISSING:
        pytest.skip(f"docs extra not installed (missing {', '.join(_MISSING)})")
    return runpy.run_path(str(DOCS / "conf.py"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Build the HTML docs once, warnings as errors; the output directory and the process."""
    if _MISSING:
        pytest.skip(f"docs extra not installed (missing {', '.join(_MISSING)})")
    out = tmp_path_factory.mktemp("docs") / "html"
    doctrees = out.parent / "doctrees"
    command = ["-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(doctrees)]
    proc = subprocess.run(
        [sys.executable, *command, str(DOCS), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return out, proc


def _site(built) -> Path:
    """The built site; with ``--keep-going`` it is complete even when warnings fail the build
    (``test_docs_build_without_warnings`` reports those)."""
    out, proc = built
    assert (out / "index.html").is_file(), f"no site was built:\n{proc.stderr[-3000:]}"
    return out


@needs_docs
def test_docs_build_without_warnings(built):
    out, proc = built
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout[-3000:]}\n{proc.stderr}"
    assert "WARNING" not in proc.stderr, proc.stderr
    assert (out / "index.html").is_file()


@needs_docs
def test_every_page_is_built_and_reachable(built):
    out = _site(built)
    pages = sorted(DOCS.glob("*.md")) + sorted((DOCS / "dev").glob("*.md"))
    index = (out / "index.html").read_text(encoding="utf-8")
    for page in pages:
        html = out / page.relative_to(DOCS).with_suffix(".html")
        assert html.is_file(), f"{page.name} was not built"
        if page.stem != "index":
            # In the site's navigation (sidebar of the root page), hence in a toctree.
            assert f'href="{html.relative_to(out).as_posix()}"' in index, page.name


@needs_docs
def test_every_example_is_a_gallery_page(built):
    out = _site(built)
    gallery = (out / "examples.html").read_text(encoding="utf-8")
    for script in sorted((ROOT / "examples").glob("[!_]*.py")):
        page = out / "examples" / f"{script.stem}.html"
        assert page.is_file(), f"{script.name} has no gallery page"
        assert f'href="examples/{script.stem}.html"' in gallery, script.name
        html = page.read_text(encoding="utf-8")
        # Rendered as a notebook: Markdown text and highlighted code cells, not one literal block.
        assert "cell_input" in html and 'class="highlight-ipython3' in html, script.name


@needs_docs
def test_api_reference_documents_each_existing_module(built, conf):
    out = _site(built)
    api = (out / "api.html").read_text(encoding="utf-8")
    modules = conf["api_modules"]()
    assert {"risklab.data", "risklab.models", "risklab.assess", "risklab.priors"} <= set(modules)
    assert {"risklab.counterfactual", "risklab.estimators", "risklab.plotting"} <= set(modules)
    for module in modules:
        assert f'id="module-{module}"' in api, module
    # Documented objects, with numpydoc sections turned into field lists by napoleon.
    for target in ("risklab.assess.assess", "risklab.models.PlatformRiskModel"):
        assert f'id="{target}"' in api, target
    assert '<dt class="field-odd">Parameters' in api


def test_api_modules_skip_what_does_not_exist(conf):
    names = ["risklab.assess", "risklab.no_such_module", "no_such_package.sub", "risklab.priors"]
    assert conf["api_modules"](names) == ["risklab.assess", "risklab.priors"]


def test_api_sections_document_each_object_once(conf):
    both = conf["api_sections"](["risklab.estimators", "risklab.estimators.frequency"])
    alone = conf["api_sections"](["risklab.estimators"])
    # ztnb is defined in risklab.estimators.frequency and re-exported by risklab.estimators:
    # documented in the package section only when frequency has no section of its own.
    package_part = both.split("## `risklab.estimators.frequency`")[0]
    assert ":exclude-members:" in package_part and "ztnb" in package_part
    assert ":exclude-members:" not in alone


def test_gallery_link_falls_back_to_a_copy(conf, tmp_path, monkeypatch):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "one.py").write_text("# %% [markdown]\n# # One\n")
    gallery = tmp_path / "docs" / "examples"
    gallery.parent.mkdir()
    conf["link_examples"](examples, gallery)
    assert gallery.is_symlink() and (gallery / "one.py").is_file()
    conf["link_examples"](examples, gallery)  # idempotent
    assert gallery.is_symlink()

    def no_symlinks(*args, **kwargs):
        raise OSError("symbolic links not supported")

    monkeypatch.setattr(conf["os"], "symlink", no_symlinks)
    other = tmp_path / "docs2" / "examples"
    other.parent.mkdir()
    conf["link_examples"](examples, other)
    assert not other.is_symlink()
    assert (other / "one.py").read_text() == (examples / "one.py").read_text()
    # Refresh: a removed example's copy goes, a new one comes, other files stay.
    (other / "notes.txt").write_text("kept")
    (examples / "one.py").unlink()
    (examples / "two.py").write_text("# %% [markdown]\n# # Two\n")
    conf["link_examples"](examples, other)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt", "two.py"]


def test_example_reader_marks_python(conf):
    notebook = conf["read_example"]("# %% [markdown]\n# # Title\n\n# %%\nx = 1\n")
    assert [c.cell_type for c in notebook.cells] == ["markdown", "code"]
    assert notebook.metadata["kernelspec"]["language"] == "python"
