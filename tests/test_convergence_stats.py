"""The vectorised R-hat and ESS of the convergence gate against ArviZ's per-element estimators."""

from __future__ import annotations

import arviz_stats.base as azb
import numpy as np
import pytest

from risklab.models import convergence_stats as cs


def _ar1(rng, chains, draws, phi, shift=0.0):
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    noise = rng.normal(size=(chains, draws)) * np.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x + shift


def _cases():
    rng = np.random.default_rng(20261129)
    cases = {
        "iid": rng.normal(size=(4, 1000)),
        "ar 0.5": _ar1(rng, 4, 1000, 0.5),
        "ar 0.95": _ar1(rng, 4, 1000, 0.95),
        "ar 0.999": _ar1(rng, 4, 500, 0.999),
        "antithetic": _ar1(rng, 4, 1000, -0.7),
        "stuck chain": np.concatenate([rng.normal(size=(3, 400)), np.full((1, 400), 2.5)]),
        "shifted chain": _ar1(rng, 4, 400, 0.3) + np.array([[0], [0], [0], [3]]),
        "skewed": rng.lognormal(sigma=2, size=(2, 301)),
        "ties": rng.integers(0, 3, size=(4, 200)).astype(float),
        "binary rare": (rng.uniform(size=(3, 250)) < 0.01).astype(float),
        "constant": np.full((4, 100), 0.7),
        "short": rng.normal(size=(2, 7)),
        "one chain": rng.normal(size=(1, 300)),
        "with nan": np.where(np.arange(400) == 17, np.nan, rng.normal(size=(2, 400))),
    }
    return cases


def _reference(x, what):
    array = azb.array_stats
    if what == "rhat":
        return float(array.rhat(x, method="rank"))
    if what == "bulk":
        return float(array.ess(x, method="bulk"))
    return float(array.ess(x, method="tail", prob=cs.TAIL_PROBS))


@pytest.mark.parametrize("what", ["rhat", "bulk", "tail"])
def test_matches_arviz_element_by_element(what):
    cases = _cases()
    ours = {"rhat": cs.rhat_rank, "bulk": cs.ess_bulk, "tail": cs.ess_tail}[what]
    for name, x in cases.items():
        expected = _reference(x, what)
        got = float(ours(x[:, :, None])[0])
        if np.isnan(expected):
            assert np.isnan(got), (name, got)
        else:
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (name, got, expected)


def test_batched_equals_one_at_a_time():
    """All elements together give what each element gives alone (no leakage across elements),
    for any shape after (chain, draw)."""
    rng = np.random.default_rng(3)
    phis = np.array([0.0, 0.5, 0.9, -0.5, 0.99, 0.2])
    x = np.stack([_ar1(rng, 4, 300, phi) for phi in phis], axis=-1).reshape(4, 300, 2, 3)
    x[:, :, 1, 2] = 1.0  # a constant element among varying ones
    for fn in (cs.rhat_rank, cs.ess_bulk, cs.ess_tail):
        together = fn(x)
        assert together.shape == (2, 3)
        for i in range(2):
            for j in range(3):
                alone = fn(x[:, :, i, j][:, :, None])[0]
                np.testing.assert_allclose(together[i, j], alone, rtol=1e-12)


def test_estimators_behave_as_documented():
    rng = np.random.default_rng(11)
    iid = rng.normal(size=(4, 1000, 1))
    sticky = _ar1(rng, 4, 1000, 0.95)[:, :, None]
    # Independent draws: ESS near the number of draws; AR(1) with phi 0.95: near
    # n (1 - phi) / (1 + phi) = 4000 / 39 ≈ 103.
    assert 3000 < cs.ess_bulk(iid)[0] < 5000
    assert 50 < cs.ess_bulk(sticky)[0] < 200
    assert cs.rhat_rank(iid)[0] < 1.01
    apart = np.concatenate([rng.normal(size=(2, 500)), rng.normal(size=(2, 500)) + 2])[:, :, None]
    assert cs.rhat_rank(apart)[0] > 1.3


def test_rejects_draws_without_chain_and_draw_dimensions():
    with pytest.raises(ValueError, match="chain, draw"):
        cs.ess_bulk(np.zeros(10))


def test_table_matches_arviz_summary_labels_and_values():
    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(5)
    ds = xr.Dataset(
        {
            "p": (("chain", "draw", "category", "period"), rng.normal(size=(3, 200, 2, 3))),
            "s": (("chain", "draw"), _ar1(rng, 3, 200, 0.8)),
            "v": (("chain", "draw", "v_dim_0"), rng.normal(size=(3, 200, 2))),
        },
        coords={"category": ["toys", "medicines"], "period": ["2024-01", "2024-02", "2024-03"]},
    )
    ours = cs.diagnostics_table(ds)
    reference = az.summary(
        xr.DataTree.from_dict({"posterior": ds}), kind="diagnostics", round_to="none"
    )
    assert list(ours.index) == list(reference.index)
    for column in ("r_hat", "ess_bulk"):
        np.testing.assert_allclose(ours[column], reference[column].astype(float), rtol=1e-9)
    tail = az.ess(ds, method="tail", prob=cs.TAIL_PROBS)
    np.testing.assert_allclose(ours.loc["s", "ess_tail"], float(tail["s"]), rtol=1e-9)
    np.testing.assert_allclose(
        ours.loc["p[medicines, 2024-02]", "ess_tail"],
        float(tail["p"].sel(category="medicines", period="2024-02")),
        rtol=1e-9,
    )
