"""Portable ``exp`` and ``expm1`` for the counterfactual computation.

Private. The counterfactual kernel (:mod:`risklab._counterfactual_kernel`) evaluates one
``expm1`` per saturation cell and draw and one ``exp`` per prevalence cell; with the C library's
functions those calls were most of its cost (9 ns for ``exp``, 17 ns for ``expm1`` per value on
x86-64), because a library call cannot be vectorised. These functions are written with
arithmetic only, so the compiled kernel's loops vectorise (≈ 2.5 ns per value with AVX2). The
kernel compiles this module's :func:`reduce_argument` and :func:`taylor_expm1` with numba, and
:func:`exp` and :func:`expm1` apply the same two functions to arrays, so the kernel stays bit for
bit equal to the NumPy reference (:func:`risklab.counterfactual._evaluate_arrays_reference`).

Being ours rather than the platform's, the results are also the same on every machine: NumPy's
own ``np.exp`` uses a SIMD implementation on CPUs with AVX-512 and the C library elsewhere, which
differ in the last place.

Algorithm (the classic one of fdlibm): ``x = k ln 2 + r`` with integer ``k`` and
``|r| ≤ ln 2 / 2`` (``k`` rounded to nearest with the ``1.5 · 2^52`` shift, ``k ln 2``
subtracted in two parts so the reduction is exact), ``expm1(r)`` by its Taylor polynomial to
degree 13 (truncation error below 10⁻¹⁷ relative; evaluated in Estrin's scheme), and ``2^k``
built from its exponent bits.
Then ``exp(x) = 2^k + 2^k expm1(r)`` and ``expm1(x) = 2^k expm1(r) + (2^k − 1)`` (exact in the
last step for ``k = 0``, so ``expm1`` keeps full relative accuracy near zero). Accuracy against
the C library over [−700, 700]: ``exp`` within 1 unit in the last place, ``expm1`` within 2
(``tests/test_exp.py``). Below −708 ``exp`` is 0 and ``expm1`` is −1 (the library returns
subnormal numbers down to −745); above 709 ``exp`` is ``inf`` (the library overflows at 709.78);
NaN propagates.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["exp", "expm1"]

#: 1 / ln 2.
INV_LN2 = 1.4426950408889634
#: ln 2 in two parts (fdlibm): ``k · LN2_HI`` is exact for ``|k| < 2^21``.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
#: Adding ``1.5 · 2^52`` rounds to an integer (to nearest, ties to even), held in the low bits.
SHIFT = 6755399441055744.0
#: Arguments are clamped to this range before the reduction (``2^k`` stays a normal number).
LOWEST = -708.0
HIGHEST = 709.0
#: Taylor coefficients 1/n! of ``expm1`` for n = 13, 12, …, 2 (highest degree first).
COEFFICIENTS = tuple(1.0 / math.factorial(n) for n in range(13, 1, -1))


def reduce_argument(x):
    """``kd`` (holding ``k`` in its low bits) and ``r`` of ``x = k ln 2 + r``, ``|r| ≤ ln 2 / 2``.

    Plain arithmetic on scalars or arrays: the NumPy functions below call it on arrays and the
    counterfactual kernel compiles the same function with numba, so both compute alike.
    """
    kd = x * INV_LN2 + SHIFT
    k = kd - SHIFT
    return kd, (x - k * LN2_HI) - k * LN2_LO


def taylor_expm1(r):
    """``expm1(r)`` for ``|r| ≤ ln 2 / 2`` by its Taylor polynomial, ``r + r² (c2 + c3 r + … +
    c13 r¹¹)``, in Estrin's scheme (pairs of terms combined with r², r⁴, r⁸: a short chain of
    dependent operations, which is what makes the compiled loop fast). Scalars or arrays, as
    :func:`reduce_argument`."""
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = COEFFICIENTS
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    ab = (c2 + c3 * r) + (c4 + c5 * r) * r2
    cd = (c6 + c7 * r) + (c8 + c9 * r) * r2
    ef = (c10 + c11 * r) + (c12 + c13 * r) * r2
    return r + r2 * ((ab + cd * r4) + ef * r8)


def _parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``2^k`` and ``expm1(r)`` of ``x = k ln 2 + r``."""
    x = np.minimum(np.maximum(x, LOWEST), HIGHEST)  # NaN propagates, as in the kernel
    kd, r = reduce_argument(x)
    scale = ((kd.view(np.int64) + 1023) << 52).view(np.float64)
    return scale, taylor_expm1(r)


def exp(x) -> np.ndarray:
    """``e^x`` elementwise, as the counterfactual kernel computes it (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    scale, p = _parts(x)
    out = scale + scale * p
    out = np.where(x > HIGHEST, np.inf, out)
    return np.where(x < LOWEST, 0.0, out)


def expm1(x) -> np.ndarray:
    """``e^x − 1`` elementwise, as the counterfactual kernel computes it (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    scale, p = _parts(x)
    return np.where(x > HIGHEST, np.inf, scale * p + (scale - 1.0))
