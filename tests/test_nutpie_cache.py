"""nutpie's C callbacks compiled from PyTensor's disk cache (risklab.models.nutpie_cache).

The cached callbacks must compute exactly what nutpie's own compute (log density, gradient and
deterministics, bit for bit), follow the model's data (the shared variables are compiled in as
constants, so new data must give a new cache entry, never a stale one), give pm.sample the same
draws, load from disk on a second compilation, and leave nutpie as they found it. The block
also replaces PyMC's step assignment (one gradient for all variables), which must choose what
PyMC's own chooses.
"""

from __future__ import annotations

import ctypes
import warnings

import numpy as np
import pymc as pm
import pymc.sampling.mcmc as pymc_mcmc
import pytensor.gradient
import pytest

from risklab.models import nutpie_cache
from risklab.models.numerics import strict_floating_point
from risklab.models.nutpie_cache import (
    assign_step_methods,
    cached_nutpie_compilation,
    compile_nutpie,
)

nutpie = pytest.importorskip("nutpie")

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _model(observed: np.ndarray, exposure: np.ndarray) -> pm.Model:
    """A small hierarchical Poisson model with data containers (1-d and 0-d) and a deterministic."""
    with pm.Model(coords={"cell": np.arange(observed.size)}) as model:
        exposure_data = pm.Data("exposure", exposure, dims="cell")
        scale = pm.Data("scale", 1.0)  # a 0-d shared variable
        mu = pm.Normal("mu", 0.0, scale)
        sd = pm.HalfNormal("sd", 1.0)
        z = pm.Normal("z", 0.0, 1.0, dims="cell")
        rate = pm.Deterministic("rate", pm.math.exp(mu + sd * z), dims="cell")
        pm.Poisson("y", rate * exposure_data, observed=observed, dims="cell")
    return model


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    exposure = rng.uniform(1.0, 5.0, 6)
    return rng.poisson(2.0 * exposure), exposure


def _evaluate(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray, np.ndarray]:
    """Return code, log density, gradient and expanded point of a compiled model at ``x``."""
    x = np.ascontiguousarray(x, dtype=float)
    grad, logp = np.empty(compiled.n_dim), np.empty(())
    expanded = np.empty(compiled.n_expanded)
    user_data = compiled.user_data.ctypes.data_as(ctypes.c_void_p)
    code = compiled.compiled_logp_func.ctypes(
        compiled.n_dim,
        x.ctypes.data_as(_DOUBLE_P),
        grad.ctypes.data_as(_DOUBLE_P),
        logp.ctypes.data_as(_DOUBLE_P),
        user_data,
    )
    expand_code = compiled.compiled_expand_func.ctypes(
        compiled.n_dim,
        compiled.n_expanded,
        x.ctypes.data_as(_DOUBLE_P),
        expanded.ctypes.data_as(_DOUBLE_P),
        user_data,
    )
    assert expand_code == 0
    return code, float(logp), grad, expanded


def _points(n_dim: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [np.zeros(n_dim), *rng.normal(0.0, 1.0, (4, n_dim)), np.full(n_dim, 800.0)]


@pytest.mark.parametrize("seed", [1, 2])
def test_callbacks_match_nutpies_bit_for_bit(seed):
    """Log density, gradient, return codes (including a non-finite point) and deterministics
    equal nutpie's own compilation's; a second data set gives its own numbers, not the first's."""
    model = _model(*_data(seed))
    with strict_floating_point():
        ours = compile_nutpie(model)
        theirs = nutpie.compile_pymc_model(model)
    assert ours.n_dim == theirs.n_dim and ours.n_expanded == theirs.n_expanded
    assert ours.shapes == theirs.shapes and ours.dims == theirs.dims
    for x in _points(ours.n_dim):
        code, logp, grad, expanded = _evaluate(ours, x)
        code_ref, logp_ref, grad_ref, expanded_ref = _evaluate(theirs, x)
        assert code == code_ref
        np.testing.assert_array_equal([logp], [logp_ref])
        np.testing.assert_array_equal(grad, grad_ref)
        np.testing.assert_array_equal(expanded, expanded_ref)
    assert {_evaluate(ours, x)[0] for x in _points(ours.n_dim)} == {0, 3}  # 800: overflow


def test_second_compilation_loads_from_disk():
    """The same model compiled twice: the second time both callbacks come from the cache."""
    model = _model(*_data(5))
    with strict_floating_point():
        compile_nutpie(model)  # fills the cache (or finds it filled by an earlier run)
        again = compile_nutpie(_model(*_data(5)))
    assert again.compiled_logp_func.cache_hits == 1
    assert again.compiled_expand_func.cache_hits == 1


def test_new_data_never_reuses_another_datas_callback():
    """Same graph, other data values: a new cache key, and the callback sees the new values."""
    observed, exposure = _data(6)
    with strict_floating_point():
        first = compile_nutpie(_model(observed, exposure))
        second = compile_nutpie(_model(observed, exposure * 2.0))
        reference = nutpie.compile_pymc_model(_model(observed, exposure * 2.0))
    x = np.zeros(first.n_dim)
    assert _evaluate(first, x)[1] != _evaluate(second, x)[1]
    assert _evaluate(second, x)[1] == _evaluate(reference, x)[1]


def test_pm_sample_draws_are_unchanged_inside_the_block(monkeypatch):
    """pm.sample with nutpie compiles through compile_nutpie inside the block (so a PyMC that
    stopped calling ``nutpie.compile_pymc_model`` would be noticed) and gives the same draws
    and groups as with nutpie's own compilation."""
    calls = []

    def counting(model):
        calls.append(model)
        return compile_nutpie(model)

    monkeypatch.setattr(nutpie_cache, "compile_nutpie", counting)
    model = _model(*_data(7))
    kwargs = dict(draws=60, tune=60, chains=2, cores=1, random_seed=11, progressbar=False)
    with model, strict_floating_point(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = pm.sample(nuts_sampler="nutpie", **kwargs)
        assert calls == []
        with cached_nutpie_compilation():
            cached = pm.sample(nuts_sampler="nutpie", **kwargs)
    assert calls == [model]
    assert sorted(cached.children) == sorted(plain.children)
    for group in ("posterior", "sample_stats", "constant_data", "observed_data"):
        assert cached[group].to_dataset().equals(plain[group].to_dataset()), group


def test_block_restores_nutpie_and_passes_other_calls_through(monkeypatch):
    """Nested blocks restore nutpie's function when the last ends (also after an error), and
    calls other than pm.sample's default one reach nutpie's own function."""
    original = nutpie.compile_pymc_model
    calls = []

    def recording(model, **kwargs):
        calls.append(kwargs)
        return "nutpie's"

    monkeypatch.setattr(nutpie, "compile_pymc_model", recording)
    pymc_own = pymc_mcmc.assign_step_methods
    with cached_nutpie_compilation():
        assert nutpie.compile_pymc_model is not recording
        assert pymc_mcmc.assign_step_methods is assign_step_methods
        with pytest.raises(RuntimeError), cached_nutpie_compilation():
            raise RuntimeError
        assert nutpie.compile_pymc_model is not recording  # the outer block still runs
        assert nutpie.compile_pymc_model(None, backend="jax") == "nutpie's"
        assert nutpie.compile_pymc_model(None, var_names=["mu"]) == "nutpie's"
    assert nutpie.compile_pymc_model is recording
    assert pymc_mcmc.assign_step_methods is pymc_own
    assert calls == [
        {"var_names": None, "backend": "jax"},
        {"var_names": ["mu"], "backend": "numba"},
    ]
    monkeypatch.setattr(nutpie, "compile_pymc_model", original)


def test_unreadable_cache_entry_compiles_uncached_with_a_warning(monkeypatch):
    """A failing cache (e.g. an entry written by another version) costs time, never the fit."""
    import numba

    real_cfunc = numba.cfunc

    def failing_cache(signature, **options):
        if options.get("cache"):
            raise OSError("cache entry unreadable")
        return real_cfunc(signature, **options)

    monkeypatch.setattr(numba, "cfunc", failing_cache)
    model = _model(*_data(8))
    with strict_floating_point(), pytest.warns(RuntimeWarning, match="without the disk cache"):
        compiled = compile_nutpie(model)
    with strict_floating_point():
        reference = nutpie_cache._original_compile()(model)
    x = np.zeros(compiled.n_dim)
    assert _evaluate(compiled, x)[1] == _evaluate(reference, x)[1]


def test_unsupported_nutpie_version_uses_nutpies_own_compilation(monkeypatch):
    """A nutpie whose callback contract this module has not been checked against: no shortcut."""
    model = _model(*_data(9))
    monkeypatch.setattr(nutpie, "__version__", "0.99.0")
    with strict_floating_point():
        compiled = compile_nutpie(model)
    assert compiled.compiled_logp_func.__name__ != "risklab_nutpie_logp"
    monkeypatch.undo()
    with strict_floating_point():
        assert compile_nutpie(model).compiled_logp_func.__name__ == "risklab_nutpie_logp"


def test_supported_versions_include_the_installed_nutpie():
    """The versions this suite checks are the ones the module accepts (update both together)."""
    assert nutpie_cache._nutpie_supported(), nutpie.__version__


def _mixed_model() -> pm.Model:
    """Continuous variables and a discrete one (PyMC assigns it a Metropolis-type step)."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 1.0)
        k = pm.Poisson("k", 3.0)
        pm.Normal("y", mu + k, 1.0, observed=[2.0, 4.0])
    return model


def _named(assignment) -> tuple[list, dict]:
    provided, selected = assignment
    return provided, {method: [v.name for v in values] for method, values in selected.items()}


@pytest.mark.parametrize("make", [lambda: _model(*_data(3)), _mixed_model])
def test_step_assignment_is_pymcs(make, monkeypatch):
    """One gradient for all variables selects what PyMC's per-variable gradients select: with
    every variable differentiable, with a discrete variable, with a step given and when the
    gradient fails (then PyMC picks a gradient-free method)."""
    model = make()
    pymc_own = pymc_mcmc.assign_step_methods
    methods = pymc_mcmc.STEP_METHODS
    with cached_nutpie_compilation():
        assert _named(assign_step_methods(model, None, methods=methods)) == _named(
            pymc_own(model, None, methods=methods)
        )
        with model:
            step = pm.Metropolis([model["mu"]])
        assert _named(assign_step_methods(model, step, methods=methods)) == _named(
            pymc_own(model, step, methods=methods)
        )

        def no_gradient(*args, **kwargs):
            raise NotImplementedError

        monkeypatch.setattr(pytensor.gradient, "grad", no_gradient)
        ours = _named(assign_step_methods(model, None, methods=methods))
        assert ours == _named(pymc_own(model, None, methods=methods))
    assert pm.NUTS not in ours[1]
