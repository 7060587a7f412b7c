"""nutpie's compiled model with its C callbacks cached on disk between runs.

``pm.sample(nuts_sampler="nutpie")`` compiles the model through
:func:`nutpie.compile_pymc_model`. PyTensor caches the numba code of the log density and of the
deterministics on disk, but nutpie wraps each in a C callback (``numba.cfunc``) that it compiles
afresh in every process: numba types the wrapper, links the cached code into it and runs LLVM
over the result. On the bundled demo that took 11 s for the log density and 3 s for the
deterministics *with a warm cache*, a quarter of ``risklab demo``.

:func:`compile_nutpie` builds the same two callbacks from source registered with PyTensor's own
numba cache (the mechanism PyTensor uses for its generated functions), under a key made of the
PyTensor graph's cache key, the callback's source, the dimensions and the values of the graph's
shared variables, which the callback holds as constants. A second process with the same model
loads both callbacks from disk (0.7 s). The callbacks return what nutpie's do, bit for bit
(tested: log density, gradient and deterministics at fixed points, and whole posteriors), so the
draws of a seed are those of ``pm.sample``. When a graph has no PyTensor cache key (an operation
PyTensor cannot cache) the callbacks are compiled uncached, as nutpie does.

Every fit runs ``pm.sample`` inside :func:`cached_nutpie_compilation`, which hands the
compilation ``pm.sample`` asks of nutpie to :func:`compile_nutpie`, and PyMC's check that every
variable has a gradient to :func:`assign_step_methods` (one gradient instead of one per
variable). ``pm.sample`` stays the one entry point: its seeds, settings and result groups are
unchanged.

The module relies on private helpers of nutpie (``nutpie.compile_pymc``) and reproduces its
callback contract, so it is used only with the nutpie versions listed in
:data:`SUPPORTED_NUTPIE`, which ``tests/test_nutpie_cache.py`` checks against nutpie's own
compilation; with any other version, or if the helpers are missing or the callbacks fail to
compile, :func:`compile_nutpie` returns nutpie's own compilation. Sampling never depends on this
module, only its speed.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["SUPPORTED_NUTPIE", "assign_step_methods", "cached_nutpie_compilation", "compile_nutpie"]

#: nutpie versions (major.minor) whose callback contract — signatures, return codes, the fields
#: of its compiled model — this module reproduces and ``tests/test_nutpie_cache.py`` checks.
#: With any other version, :func:`compile_nutpie` uses nutpie's own compilation (slower, never
#: wrong).
SUPPORTED_NUTPIE = ("0.16",)

# State of cached_nutpie_compilation: open blocks, and nutpie's and PyMC's own functions while
# any is open.
_lock = threading.Lock()
_active = 0
_nutpie_compile: Callable[..., Any] | None = None
_pymc_assign_step_methods: Callable[..., Any] | None = None

#: The C callback nuts-rs calls for the log density and its gradient (nutpie's contract: 0 on
#: success, 3 for a non-finite gradient, 4 for a non-finite log density, 1 on an error, -1 for
#: a wrong dimension). ``FGRAPH`` is PyTensor's compiled function; ``SHARED_i`` the shared
#: variables' values, held as (read-only) constants: no copy per call, and the same numbers
#: as nutpie's callbacks, which pass them through ``user_data`` (tested bit for bit).
_LOGP_SOURCE = """
def risklab_nutpie_logp(dim, x_, out_, logp_, user_data_):
    if dim != N_DIM:
        return -1
    try:
        x = numba.carray(x_, (N_DIM,))
        out = numba.carray(out_, (N_DIM,))
        logp = numba.carray(logp_, ())
        logp_val, grad = FGRAPH(x{shared})
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:  # noqa: BLE001
        return 1
    return 0
"""

#: The C callback that expands a point into every stored variable (deterministics included).
_EXPAND_SOURCE = """
def risklab_nutpie_expand(dim, expanded, x_, out_, user_data_):
    if dim != N_DIM:
        return -1
    if expanded != N_EXPANDED:
        return -1
    try:
        x = numba.carray(x_, (N_DIM,))
        out = numba.carray(out_, (N_EXPANDED,))
        (values,) = FGRAPH(x{shared})
        out[...] = values
    except Exception:  # noqa: BLE001
        return -2
    return 0
"""


def _signatures():
    from numba import types

    double_p = types.CPointer(types.double)
    logp = types.int64(types.uint64, double_p, double_p, double_p, types.voidptr)
    expand = types.int64(types.uint64, types.uint64, double_p, double_p, types.voidptr)
    return logp, expand


def _cached_callback(source: str, name: str, signature, function, n_dim: int, n_expanded: int):
    """``numba.cfunc`` of ``source`` around PyTensor ``function``; cached if PyTensor keys it."""
    import numba
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    fgraph = function.vm.jit_fn
    graph_key = CACHED_SRC_FUNCTIONS.get(fgraph.py_func)
    # (np.array, not np.ascontiguousarray: that would make a 0-d value 1-d)
    shared = [np.array(var.get_value(), order="C", copy=True) for var in function.get_shared()]
    names = [f"SHARED_{i}" for i in range(len(shared))]
    source = source.format(shared="".join(f", {n}" for n in names))
    key = None
    if graph_key is not None:
        digest = hashlib.sha256()
        for part in (__name__, source, graph_key, f"{n_dim} {n_expanded}", _versions()):
            digest.update(part.encode())
        for value in shared:
            digest.update(f"{value.dtype.str} {value.shape}".encode())
            digest.update(value.tobytes())
        key = f"risklab_{digest.hexdigest()}"
    env = {
        # A real module: numba can cache only functions whose globals name one.
        "__name__": __name__,
        "np": np,
        "numba": numba,
        "FGRAPH": fgraph,
        "N_DIM": n_dim,
        "N_EXPANDED": n_expanded,
        **dict(zip(names, shared, strict=True)),
    }
    python_function = compile_numba_function_src(source, name, global_env=env, cache_key=key)
    if key is not None:
        try:
            return numba.cfunc(signature, cache=True)(python_function)
        except Exception as exc:  # an unreadable cache entry must not stop a fit
            warnings.warn(
                f"risklab: compiling {name} without the disk cache ({type(exc).__name__}: {exc})",
                RuntimeWarning,
                stacklevel=2,
            )
    return numba.cfunc(signature)(python_function)


def _versions() -> str:
    """The versions that shape a callback's compiled code (part of its cache key)."""
    import nutpie
    import pytensor

    return f"nutpie {nutpie.__version__} pytensor {pytensor.__version__}"


def _nutpie_supported() -> bool:
    """Whether the installed nutpie's version is one of :data:`SUPPORTED_NUTPIE`."""
    import nutpie

    return ".".join(nutpie.__version__.split(".")[:2]) in SUPPORTED_NUTPIE


def compile_nutpie(model) -> Any:
    """Compile ``model`` for nutpie as :func:`nutpie.compile_pymc_model` does, callbacks cached.

    Parameters
    ----------
    model : pymc.Model
        The model (compiled under the caller's PyTensor flags, e.g. inside
        :func:`~risklab.models.numerics.strict_floating_point`).

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        What ``nutpie.compile_pymc_model(model)`` returns, except that its shared variables are
        compiled in as constants (``with_data`` cannot replace them; risklab builds a new model
        for new data). With a nutpie outside :data:`SUPPORTED_NUTPIE`, nutpie's own result.
    """
    if not _nutpie_supported():
        return _original_compile()(model)
    try:
        from nutpie.compile_pymc import (
            CompiledPyMCModel,
            _make_functions,
            _prepare_dims_and_coords,
            _wrap_with_lock,
            make_user_data,
        )
    except ImportError:  # pragma: no cover - a nutpie without these helpers
        return _original_compile()(model)
    from pymc.initial_point import make_initial_point_fn

    # compile_pymc_model's defaults: support points, jittered, on the transformed scale.
    initial_point_fn = _wrap_with_lock(
        make_initial_point_fn(
            model=model,
            overrides=None,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    (n_dim, n_expanded, logp_function, expand_function, initial_point, shape_info, renamed) = (
        _make_functions(
            model,
            mode="NUMBA",
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=initial_point_fn,
            var_names=None,
        )
    )
    logp_signature, expand_signature = _signatures()
    try:
        logp = _cached_callback(
            _LOGP_SOURCE, "risklab_nutpie_logp", logp_signature, logp_function, n_dim, n_expanded
        )
        expand = _cached_callback(
            _EXPAND_SOURCE,
            "risklab_nutpie_expand",
            expand_signature,
            expand_function,
            n_dim,
            n_expanded,
        )
    except Exception as exc:  # a graph these callbacks cannot wrap: nutpie's own compilation
        warnings.warn(
            f"risklab: nutpie's callbacks compiled without the disk cache ({type(exc).__name__})",
            RuntimeWarning,
            stacklevel=2,
        )
        return _original_compile()(model)
    dims, coords = _prepare_dims_and_coords(model, shape_info, renamed)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp,
        compiled_expand_func=expand,
        initial_point_func=initial_point,
        shared_data={},
        shared_var_keys={},
        user_data=make_user_data({}, {}),
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_function,
        expand_func=expand_function,
        reparameterized_names=renamed,
    )


@contextmanager
def cached_nutpie_compilation() -> Iterator[None]:
    """Inside this block, ``pm.sample(nuts_sampler="nutpie")`` compiles with :func:`compile_nutpie`.

    ``pm.sample`` stays the one entry point (its seeds, settings and result groups are used
    unchanged, and tests can replace it); only the compilation it asks of
    ``nutpie.compile_pymc_model`` is swapped, for the duration of the block, and only for the
    call ``pm.sample`` makes by default (numba backend, every variable, default initial
    points). Any other call goes to nutpie's own function. The block also lets ``pm.sample``
    check that every variable has a gradient with one gradient rather than one per variable
    (:func:`assign_step_methods`). Blocks may nest and run in several threads at once: the
    functions are restored when the last one ends.
    """
    import nutpie
    import pymc.sampling.mcmc as pymc_mcmc

    global _active, _nutpie_compile, _pymc_assign_step_methods
    with _lock:
        if _active == 0:
            _nutpie_compile = nutpie.compile_pymc_model
            nutpie.compile_pymc_model = _compile_pymc_model
            _pymc_assign_step_methods = pymc_mcmc.assign_step_methods
            pymc_mcmc.assign_step_methods = assign_step_methods
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                nutpie.compile_pymc_model = _nutpie_compile
                pymc_mcmc.assign_step_methods = _pymc_assign_step_methods
                _nutpie_compile = _pymc_assign_step_methods = None


def assign_step_methods(model, step=None, methods=None):
    """PyMC's ``assign_step_methods`` with one gradient for all variables instead of one each.

    ``pm.sample`` calls PyMC's function before anything else, also when nutpie samples. It
    differentiates the model's log density once per variable, only to learn whether each has a
    gradient: 2.2–4.5 s on the bundled demo (21 variables), against about 1 s for one gradient
    with respect to all of them (0.3 s of it the log density's graph). If that one succeeds,
    every variable has a gradient, and the step methods are chosen as PyMC chooses them (the
    most competent of ``methods`` for a variable with a gradient). With a step given, a discrete
    variable, or a gradient that fails, this is PyMC's own function.

    Parameters
    ----------
    model : pymc.Model
    step : step method or sequence of them, optional
    methods : sequence of step method classes, optional
        As ``pymc.sampling.mcmc.assign_step_methods``.

    Returns
    -------
    tuple
        ``(provided_steps, selected_steps)``, as PyMC's function.
    """
    import pymc.sampling.mcmc as pymc_mcmc
    import pytensor.gradient as tg
    from pymc.vartypes import discrete_types

    # PyMC's own function, also while a block has swapped it (as _original_compile for nutpie).
    pymc_own = _pymc_assign_step_methods or pymc_mcmc.assign_step_methods
    if step is not None or any(var.dtype in discrete_types for var in model.value_vars):
        return pymc_own(model, step, methods=methods)
    try:
        tg.grad(model.logp(), model.value_vars)
    except (NotImplementedError, tg.NullTypeGradError):
        return pymc_own(model, step, methods=methods)
    candidates = list(methods or pymc_mcmc.STEP_METHODS)
    selected: dict[type, list] = {}
    for var in model.value_vars:
        rv = model.values_to_rvs[var]
        best = max(candidates, key=lambda method, rv=rv: method._competence(rv, True))
        selected.setdefault(best, []).append(var)
    return [], selected


def _original_compile() -> Callable[..., Any]:
    """nutpie's own ``compile_pymc_model`` (also while :func:`cached_nutpie_compilation` runs)."""
    import nutpie

    return _nutpie_compile or nutpie.compile_pymc_model


def _compile_pymc_model(model, *, var_names=None, backend="numba", **kwargs):
    """Stands in for ``nutpie.compile_pymc_model`` inside :func:`cached_nutpie_compilation`."""
    if var_names is None and backend == "numba" and not kwargs:
        return compile_nutpie(model)
    return _original_compile()(model, var_names=var_names, backend=backend, **kwargs)
