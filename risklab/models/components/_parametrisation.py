"""Partially centred normal variables: centred where the data are strong, non-centred where weak.

A hierarchical ``x ~ Normal(μ, σ)`` is best sampled *centred* (``x`` free) when the data pin
``x`` down more tightly than the prior (likelihood precision ≫ 1/σ²), and *non-centred*
(``x = μ + σ z``, ``z ~ Normal(0, 1)`` free) when they do not — otherwise NUTS meets the funnel
between ``x`` and ``σ`` (Papaspiliopoulos, Roberts & Sköld 2007; Betancourt & Girolami 2015).
A submission mixes both regimes (a small category of a few dozen listings a month beside one of
millions), so the choice is made element by element from the data: :func:`centred_where`
compares a per-element information proxy (e.g. the detections of a cell) with the prior
precision at the typical spread, ``1/σ_ref²``, and samples an element centred when the data's
standard deviation is at most half that spread (``information ≥ 4/σ_ref²``; :data:`MARGIN`).
Between the regimes either choice works; the margin keeps elements whose posterior spread
reaches small values of σ (the funnel's neck) non-centred — on a 10 × 24 marketplace of 10⁴
listings, a margin of one left 27 divergences in the category levels, all at small
``prevalence_category_sd``.

The choice changes the sampler's geometry only, never the model: both parametrisations define
the same distribution of ``x`` (unit Jacobian of ``z ↦ μ + σ z`` given μ, σ is absorbed in the
standard normal density; PyMC's logp of the transformed variables is exact). The assembled ``x``
is recorded as a :class:`pymc.Deterministic` under ``name`` with the original dims, so results,
findings and scenario code read it as before; the free variables are ``{name}_centred`` and
``{name}_offset`` over flat element dims ``{name}_centred_element`` and ``{name}_offset_element``
(labels ``"category|period"``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pymc as pm
import pytensor.tensor as pt

__all__ = ["MARGIN", "centred_where", "partially_centred_normal", "prior_scale"]

#: Centred only when the data's standard deviation is at most ``1/MARGIN`` of the prior spread.
MARGIN = 2.0


def centred_where(information: np.ndarray, reference_sd: float) -> np.ndarray:
    """Elements whose data information exceeds the prior precision at ``reference_sd``.

    Parameters
    ----------
    information : numpy.ndarray
        A proxy for the Fisher information the data carry about each element (e.g. the number of
        detections of a cell, for a log-rate).
    reference_sd : float
        The scale of the hierarchical spread the prior expects.

    Returns
    -------
    numpy.ndarray of bool
        ``information · reference_sd² ≥ MARGIN²``.
    """
    return np.asarray(information, dtype=float) * float(reference_sd) ** 2 >= MARGIN**2


def partially_centred_normal(
    name: str,
    mu,
    sigma,
    centred: np.ndarray,
    *,
    dims: tuple[str, ...],
):
    """``Normal(mu, sigma)`` over ``dims``, centred where ``centred`` and non-centred elsewhere.

    Parameters
    ----------
    name : str
        Name of the assembled variable (a Deterministic with ``dims``).
    mu, sigma : tensor-like
        Broadcastable to the shape of ``dims``.
    centred : numpy.ndarray of bool
        Shape of ``dims``; True where the element is sampled centred.
    dims : tuple of str
        Model coords of the variable.

    Returns
    -------
    TensorVariable
        The assembled variable.
    """
    model = pm.modelcontext(None)
    centred = np.asarray(centred, dtype=bool)
    shape = centred.shape
    labels = [
        "|".join(str(part) for part in parts)
        for parts in itertools.product(*(model.coords[d] for d in dims))
    ]
    flat_mu = pt.broadcast_to(pt.as_tensor(mu), shape).ravel()
    flat_sigma = pt.broadcast_to(pt.as_tensor(sigma), shape).ravel()
    value = pt.zeros(int(np.prod(shape)))
    mask = centred.ravel()
    for kind, idx in (("centred", np.flatnonzero(mask)), ("offset", np.flatnonzero(~mask))):
        if idx.size == 0:
            continue
        var_name = f"{name}_{kind}"
        coord = f"{var_name}_element"
        model.add_coord(coord, [labels[i] for i in idx])
        if kind == "centred":
            free = pm.Normal(var_name, flat_mu[idx], flat_sigma[idx], dims=coord)
            value = pt.set_subtensor(value[idx], free)
        else:
            free = pm.Normal(var_name, 0.0, 1.0, dims=coord)
            value = pt.set_subtensor(value[idx], flat_mu[idx] + flat_sigma[idx] * free)
    return pm.Deterministic(name, value.reshape(shape), dims=dims)


def prior_scale(spec, default: float) -> float:
    """Typical size of a scale parameter under its prior (the reference of :func:`centred_where`).

    HalfNormal, HalfStudentT, HalfCauchy: ``sigma`` / ``beta``; Gamma: its mean; Exponential: its
    mean; anything else: ``default``.
    """
    kwargs = getattr(spec, "parameters", None) or {}
    dist = getattr(spec, "distribution", "")
    try:
        if dist in ("HalfNormal", "HalfStudentT") and "sigma" in kwargs:
            return float(kwargs["sigma"])
        if dist == "HalfCauchy" and "beta" in kwargs:
            return float(kwargs["beta"])
        if dist == "Gamma" and {"alpha", "beta"} <= set(kwargs):
            return float(kwargs["alpha"]) / float(kwargs["beta"])
        if dist == "Exponential" and "lam" in kwargs:
            return 1.0 / float(kwargs["lam"])
    except (TypeError, ValueError):  # nested priors as parameters: fall back
        pass
    return default
