"""The counterfactual computation's own exp/expm1 (risklab._exp and its compiled twin).

Accuracy is checked against extended precision (x86-64 ``long double``; the C library where
``long double`` is plain double), the compiled functions against the NumPy ones bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from risklab import _counterfactual_kernel as kernel
from risklab import _exp

EXTENDED = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant


def _ulps(values: np.ndarray, exact) -> np.ndarray:
    """|values − exact| in units in the last place of float64 at ``exact``."""
    rounded = np.asarray(exact, dtype=np.float64)
    err = np.abs(values.astype(np.longdouble) - exact)
    return np.asarray(err / np.spacing(np.abs(rounded)).astype(np.longdouble), dtype=float)


def _exact_exp(x: np.ndarray):
    return np.exp(x.astype(np.longdouble)) if EXTENDED else np.exp(x)


def _exact_expm1(x: np.ndarray):
    return np.expm1(x.astype(np.longdouble)) if EXTENDED else np.expm1(x)


@pytest.fixture(scope="module")
def arguments() -> np.ndarray:
    rng = np.random.default_rng(20261129)
    return np.concatenate(
        [
            rng.uniform(-700.0, 700.0, 100_000),
            rng.uniform(-2.0, 2.0, 100_000),
            rng.normal(0.0, 1e-3, 20_000),
            np.linspace(-40.0, 0.0, 20_001),  # expm1(−θ r): the saturation's arguments
            np.log(2.0) * np.arange(-50, 51) / 2.0,  # reduction boundaries (ties of k)
        ]
    )


def test_exp_within_one_ulp(arguments):
    slack = 0.0 if EXTENDED else 1.0  # the library's own error when it is the reference
    assert _ulps(_exp.exp(arguments), _exact_exp(arguments)).max() <= 1.0 + slack


def test_expm1_within_two_ulps_and_relatively_accurate_near_zero(arguments):
    slack = 0.0 if EXTENDED else 1.0
    assert _ulps(_exp.expm1(arguments), _exact_expm1(arguments)).max() <= 2.0 + slack
    tiny = np.array([1e-300, -1e-300, 1e-17, -1e-12, 3e-9, -5e-6])
    # exp(x) − 1 would lose every digit here; expm1 keeps them.
    np.testing.assert_allclose(_exp.expm1(tiny), np.expm1(tiny), rtol=4e-16, atol=0)


def test_special_values_and_shapes():
    assert _exp.exp(0.0) == 1.0 and _exp.exp(-0.0) == 1.0 and _exp.expm1(0.0) == 0.0
    assert _exp.exp(1.0) == pytest.approx(np.e, rel=2.3e-16)
    assert np.isnan(_exp.exp(np.nan)) and np.isnan(_exp.expm1(np.nan))
    assert _exp.exp(800.0) == np.inf and _exp.exp(np.inf) == np.inf
    assert _exp.exp(-800.0) == 0.0 and _exp.exp(-np.inf) == 0.0
    assert _exp.expm1(-800.0) == -1.0 and _exp.expm1(-np.inf) == -1.0
    assert np.ndim(_exp.exp(0.5)) == 0
    assert _exp.exp(np.zeros((2, 3, 4))).shape == (2, 3, 4)
    strided = np.linspace(-3.0, 3.0, 20).reshape(4, 5)[:, ::2]
    np.testing.assert_array_equal(_exp.exp(strided), _exp.exp(strided.copy()))


@numba.njit
def _compiled(x, out_exp, out_expm1):
    for i in range(x.shape[0]):
        out_exp[i] = kernel._exp_(x[i])
        out_expm1[i] = kernel._expm1(x[i])


def test_compiled_twin_is_bit_identical(arguments):
    x = np.concatenate(
        [arguments, [0.0, -0.0, np.nan, np.inf, -np.inf, 709.5, -708.5, 709.0, -708.0, 1e-310]]
    )
    got_exp, got_expm1 = np.empty_like(x), np.empty_like(x)
    _compiled(x, got_exp, got_expm1)
    for got, ref in ((got_exp, _exp.exp(x)), (got_expm1, _exp.expm1(x))):
        nan = np.isnan(ref)
        np.testing.assert_array_equal(np.isnan(got), nan)
        np.testing.assert_array_equal(got[~nan].view(np.int64), ref[~nan].view(np.int64))
