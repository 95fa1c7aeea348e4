"""D_short, the model-free baseline, on a process with a known transient: 3D Brownian motion
plus a bounded Ornstein-Uhlenbeck term, MSD(t) = 6 D t + c (1 - exp(-t/τ)), c = 6 s² (s² the OU
variance per component). Eq. 35 over lags [T/4, T/2] then has the bias
c/6 · mean_t (1 - exp(-t/τ)) / t, which the estimate must show."""

from __future__ import annotations

import numpy as np
import pytest

from mlgle.analysis.evaluation import short_window_diffusion


def brownian_plus_ou(
    frames: int, chains: int, d: float, s2: float, tau: float, dt: float, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, np.sqrt(2 * d * dt), size=(frames - 1, chains, 3))
    brownian = np.concatenate([np.zeros((1, chains, 3)), np.cumsum(steps, axis=0)])
    a = np.exp(-dt / tau)
    ou = np.empty((frames, chains, 3))
    ou[0] = rng.normal(0.0, np.sqrt(s2), size=(chains, 3))  # stationary start
    kicks = rng.normal(0.0, np.sqrt(s2 * (1 - a * a)), size=(frames - 1, chains, 3))
    for t in range(1, frames):
        ou[t] = a * ou[t - 1] + kicks[t - 1]
    return brownian + ou


def theory(d: float, s2: float, tau: float, dt: float, lo: int, hi: int) -> float:
    t = dt * np.arange(lo, hi + 1)
    msd = 6 * d * t + 6 * s2 * (1 - np.exp(-t / tau))
    return float(np.mean(msd / (6 * t)))


def test_short_window_estimate_has_the_transient_bias_theory_predicts():
    d, s2, tau, dt, t_train = 0.004, 0.5, 30.0, 1.0, 400
    com = brownian_plus_ou(t_train + 50, 400, d, s2, tau, dt, seed=3)
    est = short_window_diffusion(com, dt, t_train, (0.25, 0.5))
    expected = theory(d, s2, tau, dt, 100, 200)
    assert expected / d - 1 > 0.5  # the transient biases the short window strongly upwards
    assert est.ci95[0] < expected < est.ci95[1]
    assert est.value == pytest.approx(expected, rel=0.08)
    assert not est.ci95[0] < d < est.ci95[1]  # and the CI excludes the true D


def test_short_window_uses_only_the_training_frames():
    com = brownian_plus_ou(1000, 20, 0.004, 0.5, 30.0, 1.0, seed=4)
    a = short_window_diffusion(com, 1.0, 400, (0.25, 0.5))
    b = short_window_diffusion(com[:400], 1.0, 400, (0.25, 0.5))
    assert a == b


def test_a_window_outside_the_training_frames_is_refused():
    com = np.zeros((100, 3, 3))
    with pytest.raises(ValueError, match="short window"):
        short_window_diffusion(com, 1.0, 200, (0.25, 0.5))
