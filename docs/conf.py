"""Sphinx configuration of the risklab documentation (built by ``make docs``).

Three things are specific to this project:

* **Markdown sources.** Every page is MyST Markdown (``docs/*.md``), parsed by ``myst_nb`` with
  the extensions the pages use (``$...$`` and ``$$...$$`` maths, ``:::`` fences, heading anchors
  for ``[text](#heading)`` links).
* **The example gallery without a copy.** The examples live in ``examples/*.py`` (Jupytext
  percent format). ``docs/examples`` is a symbolic link to ``../examples`` (created here when
  missing), and ``.py`` files are read as notebooks through ``jupytext.reads``, so each example
  is a page of the gallery (``docs/examples.md``). The docs build never executes them
  (``nb_execution_mode = "off"``): ``tests/test_examples.py`` does. Where symbolic links are
  unavailable the examples are copied instead.
* **An API reference that follows the package.** ``docs/api.md`` holds the marker
  ``{risklab-api-modules}``; at build time (``source-read``) it is replaced by one ``automodule``
  section per module of :data:`API_MODULES` that exists (a module that exists but fails to
  import fails the build), so modules still being written appear as soon as they land.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import sys
import types
from collections.abc import Sequence
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import risklab  # noqa: E402

# -- project -----------------------------------------------------------------------------------
project = "risklab"
author = "risklab developers"
copyright = "risklab developers, MIT licence"
release = risklab.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------------------------
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = [
    "_build",
    "conf.py",
    "examples/_*",
    "examples/__pycache__",
    "**/.ipynb_checkpoints",
    "Thumbs.db",
    ".DS_Store",
]
root_doc = "index"
templates_path: list[str] = []

# -- reading the examples (Jupytext percent scripts) as notebooks ----------------------------
#: Name under which :func:`read_example` is importable for myst-nb (``nb_custom_formats`` names
#: its reader by import path; conf.py itself is not importable).
_READER_MODULE = "_risklab_docs_gallery"


def read_example(text: str):
    """A Jupytext percent script as a notebook, marked as Python (for syntax highlighting)."""
    import jupytext

    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    notebook.metadata.setdefault("language_info", {"name": "python", "pygments_lexer": "ipython3"})
    return notebook


_reader_module = types.ModuleType(_READER_MODULE)
_reader_module.read_example = read_example
sys.modules[_READER_MODULE] = _reader_module

# -- MyST / myst-nb ----------------------------------------------------------------------------
myst_enable_extensions = [
    "amsmath",
    "colon_fence",
    "deflist",
    "dollarmath",
    "smartquotes",
]
myst_heading_anchors = 3
myst_dmath_double_inline = True
nb_execution_mode = "off"  # tests/test_examples.py executes the examples
nb_custom_formats = {".py": [f"{_READER_MODULE}.read_example", {}]}
nb_merge_streams = True

# -- autodoc / napoleon (numpydoc docstrings) --------------------------------------------------
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_param = True
napoleon_preprocess_types = False

# -- HTML --------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"risklab {release}"
html_static_path = ["_static"]
html_css_files = ["risklab.css"]
html_show_sourcelink = True

# -- the example gallery: docs/examples -> ../examples -----------------------------------------
EXAMPLES = ROOT / "examples"
GALLERY = DOCS / "examples"


def link_examples(examples: Path = EXAMPLES, gallery: Path = GALLERY) -> None:
    """Make ``gallery`` show ``examples``: a symbolic link, else a directory of copies.

    An existing link to ``examples`` is kept; a directory of copies (made where symbolic links
    are unavailable) is refreshed: every example copied again, copies of removed examples
    deleted. Nothing else in it is touched.
    """
    if gallery.is_symlink():
        if gallery.resolve() == examples.resolve():
            return
        gallery.unlink()
    if not gallery.exists():
        try:
            os.symlink(os.path.relpath(examples, gallery.parent), gallery, target_is_directory=True)
            return
        except OSError:
            gallery.mkdir()
    for stale in gallery.glob("*.py"):
        if not (examples / stale.name).is_file():
            stale.unlink()
    for script in sorted(examples.glob("*.py")):
        shutil.copy2(script, gallery / script.name)


link_examples()

# -- API reference: one section per existing public module -------------------------------------
#: Public modules of the API reference, in reading order. Modules that do not exist (yet) are
#: skipped; a module that exists but fails to import fails the build.
API_MODULES = (
    "risklab.data",
    "risklab.data.synthetic",
    "risklab.models",
    "risklab.models.convergence_stats",
    "risklab.models.nutpie_cache",
    "risklab.assess",
    "risklab.priors",
    "risklab.counterfactual",
    "risklab.scenarios",
    "risklab.attribution",
    "risklab.mitigation",
    "risklab.design",
    "risklab.sweep",
    "risklab.consistency",
    "risklab.sensitivity",
    "risklab.estimators",
    "risklab.estimators.mse",
    "risklab.estimators.imperfect_test",
    "risklab.estimators.frequency",
    "risklab.plotting",
)
API_MARKER = "{risklab-api-modules}"


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def api_modules(candidates: Sequence[str] = API_MODULES) -> list[str]:
    """The modules of ``candidates`` that exist in this checkout, in order."""
    return [name for name in candidates if _module_exists(name)]


def _documented_elsewhere(name: str, modules: Sequence[str]) -> list[str]:
    """Members of module ``name`` whose documentation belongs in another section.

    Each class and function is documented once: in the section of the module that defines it
    when that module has a section, else in the deepest module with a section that exports it
    (so a package that re-exports a submodule's names leaves them to the submodule's section).
    """
    exports: dict[str, set[int]] = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        exports[module_name] = {
            id(getattr(module, m)) for m in getattr(module, "__all__", ()) if hasattr(module, m)
        }
    module = importlib.import_module(name)
    out = []
    for member in getattr(module, "__all__", ()):
        obj = getattr(module, member, None)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue  # data are documented under each name; only code has a home module
        home = getattr(obj, "__module__", None)
        if home not in modules:
            holders = [m for m in modules if id(obj) in exports[m]]
            home = max(holders, key=lambda m: m.count("."), default=name)
        if home != name:
            out.append(member)
    return sorted(out)


def api_sections(modules: Sequence[str]) -> str:
    """MyST source of the module sections of the API reference.

    Every object is documented once, in the section of the module that defines it: a member a
    package re-exports from a module with its own section is left out of the package's section.
    """
    parts = []
    for name in modules:
        options = ""
        elsewhere = _documented_elsewhere(name, modules)
        if elsewhere:
            options = f"   :exclude-members: {', '.join(elsewhere)}\n"
        # autodoc writes reStructuredText, so its directive runs inside an eval-rst block.
        parts.append(f"## `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n{options}```\n")
    return "\n".join(parts)


def _expand_api(app, docname: str, source: list[str]) -> None:
    if docname == "api" and API_MARKER in source[0]:
        source[0] = source[0].replace(API_MARKER, api_sections(api_modules()))


def setup(app):
    from pygments.lexers.special import TextLexer

    # ``csv`` code blocks (docs/submission-format.md): Pygments has no CSV lexer; show as text.
    app.add_lexer("csv", TextLexer)
    app.connect("source-read", _expand_api)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
