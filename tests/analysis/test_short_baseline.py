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


def test_regime_evidence_shows_the_transient_theory_predicts():
    """At h = T_train/2 the MSD of Brownian + OU over 6 h D is 1 + s²(1 - e^{-h/τ})/(D h) and its
    log-slope (6 D + 6 s² e^{-h/τ}/τ) h / MSD(h), from MSD = 6Dt + 6s²(1 - e^{-t/τ})."""
    from mlgle.analysis.evaluation import regime_evidence

    d, s2, tau, dt, t_train = 0.004, 0.5, 30.0, 1.0, 200
    com = brownian_plus_ou(3000, 400, d, s2, tau, dt, seed=5)
    got = regime_evidence(com, dt, t_train, d)
    h = t_train // 2
    msd = 6 * d * h + 6 * s2 * (1 - np.exp(-h / tau))
    assert got["msd_over_6Dt_at_half_train"] == pytest.approx(msd / (6 * d * h), rel=0.05)
    slope = (6 * d + 6 * s2 * np.exp(-h / tau) / tau) * h / msd
    assert slope < 0.8 and got["slope_at_half_train"] == pytest.approx(slope, abs=0.05)
    # a window long past τ: the slope is back to 6 D h / MSD(h), nearer 1
    late = regime_evidence(com, dt, 2000, d)
    h = 1000
    msd_late = 6 * d * h + 6 * s2
    assert late["msd_over_6Dt_at_half_train"] == pytest.approx(msd_late / (6 * d * h), rel=0.05)
    assert late["slope_at_half_train"] == pytest.approx(6 * d * h / msd_late, abs=0.05)
