"""Recipes that must stay identical everywhere have one source each: rebuilding a GLEModel from
JSON, the Brownian-path seed, the Eq. 27 solve, D from C.o.M trajectories, the number of slow
modes k, the MARE."""

from __future__ import annotations

import numpy as np
import pytest

from mlgle import stats
from mlgle.config import Params
from mlgle.errors import StoreError
from mlgle.gle import GLEFit, GLEModel, brownian_rng, solve_eq27
from mlgle.store import gle_from_json, gle_json, read_gle, write_json


def test_gle_json_round_trips_and_names_a_missing_field(tmp_path):
    model = GLEModel(0.11, 0.7, 0.2, (1, 16, 32), 12)
    path = tmp_path / "gle.json"
    write_json(path, {"temperature": 1.0, **gle_json(model)})
    assert read_gle(path) == model
    with pytest.raises(StoreError, match=r"x\.json: field 'beta' is missing"):
        gle_from_json({"alpha": 1.0, "dt": 1.0, "points": [1, 2], "k": 1}, "x.json")
    with pytest.raises(StoreError, match="not found"):
        read_gle(tmp_path / "absent.json")


def test_brownian_path_rule_is_independent_of_the_mode_noise():
    a, b = brownian_rng(99).normal(size=5), np.random.default_rng(99).normal(size=5)
    assert np.array_equal(a, np.random.default_rng(100).normal(size=5))
    assert not np.array_equal(a, b)


def test_eq27_solve_recovers_exact_coefficients_and_clips_at_zero():
    t = np.array([1.0, 16.0, 32.0])
    s = np.array([0.3, 2.0, 2.5])
    alpha, beta = solve_eq27(t, 0.02**2 * t + 0.6**2 * s, s)
    assert (alpha, beta) == pytest.approx((0.02, 0.6), rel=1e-9)
    assert solve_eq27(t, 0.01 * t - 0.5 * s, s)[1] == 0.0  # β² >= 0 (NNLS)


def test_gle_fit_uses_the_same_solve():
    rng = np.random.default_rng(0)
    com = np.cumsum(rng.normal(size=(200, 8, 3)), axis=0)
    modes = rng.normal(size=(200, 8, 2, 3))
    fit = GLEFit(points=(1, 8, 16), k=2).fit(com, modes, 1.0)
    y = stats.msd_per_trajectory(com).mean(1)[[1, 8, 16]] / 3
    s = stats.msd_per_trajectory(modes.reshape(200, 8, -1)).mean(1)[[1, 8, 16]] / 3
    assert (fit.alpha, fit.beta) == pytest.approx(solve_eq27(np.array([1.0, 8, 16]), y, s))


def test_com_diffusion_is_eq35_on_the_per_chain_msd():
    com = np.cumsum(np.random.default_rng(1).normal(size=(300, 5, 3)), axis=0)
    got = stats.com_diffusion(com, 0.5, (50, 100))
    assert got == stats.diffusion_coefficient(stats.msd_per_trajectory(com), 0.5, 50, 100)


def test_slow_modes_is_modes_k_or_what_the_store_holds():
    params = Params()
    assert params.slow_modes(40) == params.modes.k == 12
    assert params.slow_modes(5) == 5


def test_mare():
    assert stats.mare([1.1, 0.8], [1.0, 1.0]) == pytest.approx(0.15)
