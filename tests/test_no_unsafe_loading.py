"""Nothing in ``risklab/`` loads data in a way that can run code: no pickle, eval, exec, ...

The package source is parsed (not grepped as text, so comments and docstrings may mention these
names) and every import and call is checked against a list of unsafe loaders. The checker is
itself tested on snippets, so that this test can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import risklab

PACKAGE = Path(risklab.__file__).parent

#: Modules whose loading functions unpickle (or unmarshal) data: importing them at all is refused.
UNSAFE_MODULES = {
    "pickle", "_pickle", "cPickle", "pickletools", "dill", "cloudpickle", "joblib", "marshal",
    "shelve", "jsonpickle", "copyreg",
}  # fmt: skip
#: Built-ins that run code given as text.
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}
#: ``module.function`` calls that load pickles or run code.
UNSAFE_CALLS = {
    ("yaml", "load"), ("yaml", "load_all"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
    ("yaml", "unsafe_load_all"), ("yaml", "full_load_all"), ("pd", "read_pickle"),
    ("pandas", "read_pickle"), ("torch", "load"), ("pd", "eval"), ("pandas", "eval"),
    ("os", "system"), ("os", "popen"), ("builtins", "eval"), ("builtins", "exec"),
}  # fmt: skip
#: Method names refused whatever the object they are called on.
UNSAFE_METHODS = {"read_pickle", "to_pickle", "unsafe_load", "loads_pickle"}
#: Keyword arguments that switch pickle on (``np.load(..., allow_pickle=True)``) or a shell.
UNSAFE_KEYWORDS = {"allow_pickle", "shell"}
#: Data files that hold pickles, refused anywhere in the package.
UNSAFE_SUFFIXES = {".pkl", ".pickle", ".npy", ".npz", ".joblib", ".dill", ".pt", ".pth"}


def _dotted(node: ast.AST) -> tuple[str, ...]:
    """``a.b.c`` of a Name/Attribute chain (empty when the chain starts elsewhere)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return ()


def _is_true(node: ast.AST) -> bool:
    return not (isinstance(node, ast.Constant) and node.value in (False, None))


def unsafe_uses(source: str, filename: str = "<source>") -> list[str]:
    """Every unsafe import or call in ``source``, as ``"file:line: what"``."""
    found = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            if module in UNSAFE_MODULES:
                flag(node, f"from {node.module} import ...")
            for alias in node.names:
                if (module, alias.name) in UNSAFE_CALLS or (
                    module == "builtins" and alias.name in UNSAFE_BUILTINS
                ):
                    flag(node, f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if len(name) == 1 and name[0] in UNSAFE_BUILTINS:
                flag(node, f"{name[0]}(...)")
            elif len(name) >= 2 and (name[-2], name[-1]) in UNSAFE_CALLS:
                flag(node, f"{'.'.join(name)}(...)")
            elif isinstance(node.func, ast.Attribute) and node.func.attr in UNSAFE_METHODS:
                flag(node, f".{node.func.attr}(...)")
            elif (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("eval", "query")
                and node.args
                and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp))
                and not (isinstance(node.args[0], ast.Constant) and node.args[0].value is None)
            ):  # pandas DataFrame.eval/query run an expression given as text
                flag(node, f".{node.func.attr}(<expression>)")
            for kw in node.keywords:
                if kw.arg in UNSAFE_KEYWORDS and _is_true(kw.value):
                    flag(node, f"{kw.arg}=... in {'.'.join(name) or 'a call'}")
    return found


def _package_sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20 and PACKAGE / "data" / "_io.py" in files
    return files


def test_package_has_no_unsafe_loading():
    found = []
    for path in _package_sources():
        found += unsafe_uses(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    assert not found, "unsafe loading in risklab/:\n" + "\n".join(found)


def test_package_ships_no_pickled_data():
    shipped = [p for p in PACKAGE.rglob("*") if p.suffix.lower() in UNSAFE_SUFFIXES]
    assert not shipped, shipped


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "import _pickle as p",
        "from pickle import loads",
        "import dill",
        "import joblib",
        "import marshal",
        "import shelve",
        "eval('1 + 1')",
        "exec(code)",
        "compile(src, 'f', 'exec')",
        "__import__(name)",
        "import yaml\nyaml.load(text)",
        "import yaml\nyaml.unsafe_load(text)",
        "import yaml\nyaml.full_load(text)",
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
        "import numpy\nnumpy.load(path, allow_pickle=flag)",
        "import pandas as pd\npd.read_pickle('x.pkl')",
        "df.to_pickle('x.pkl')",
        "import pandas as pd\npd.eval('a + b')",
        "df.query(f'a > {x}')",
        "df.eval('c = a + b')",
        "import subprocess\nsubprocess.run(cmd, shell=True)",
        "import os\nos.system(cmd)",
        "from builtins import eval",
        "import torch\ntorch.load(f)",
    ],
)
def test_checker_catches(snippet):
    assert unsafe_uses(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "import json\njson.loads(text)",
        "import tomllib\ntomllib.loads(text)",
        "import numpy as np\nnp.load('a.npy')",
        "import numpy as np\nnp.load('a.npy', allow_pickle=False)",
        "import re\nre.compile('a+')",
        "x.eval()",  # pytensor: evaluate a symbolic variable
        "x.eval({a: 1})",
        "import xarray as xr\nxr.open_datatree(path, engine='h5netcdf')",
        "# pickle, eval and exec in a comment\n'''and in a docstring: pickle.loads'''",
        "def __reduce__(self):\n    return (type(self), ())",
        "import subprocess\nsubprocess.run(['git', 'rev-parse'], shell=False)",
    ],
)
def test_checker_allows(snippet):
    assert not unsafe_uses(snippet), snippet
