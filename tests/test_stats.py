"""Tests for mlgle.stats: MSD / ACF (Eq. 36), Mélard-Roy band (Eq. 34), D (Eq. 35), local slope,
MARE, interpolation in 1/T, exponential and Kohlrausch fits (Eq. 33)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import tidynamics
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgle import stats

# ---------------------------------------------------------------------------------------------
# References


def brute_msd(x: np.ndarray) -> np.ndarray:
    """O(frames²) time-averaged MSD, summed over d, averaged over n. x: (frames, n, d)."""
    frames = x.shape[0]
    out = np.zeros(frames)
    for m in range(frames):
        total = 0.0
        for i in range(frames - m):
            total += np.sum((x[i + m] - x[i]) ** 2) / x.shape[1]
        out[m] = total / (frames - m)
    return out


def brute_products(x: np.ndarray) -> np.ndarray:
    """O(frames²) ⟨x_i · x_{i+m}⟩ over origins, summed over d, averaged over n."""
    frames = x.shape[0]
    out = np.zeros(frames)
    for m in range(frames):
        total = 0.0
        for i in range(frames - m):
            total += np.sum(x[i + m] * x[i]) / x.shape[1]
        out[m] = total / (frames - m)
    return out


def brownian(rng: np.random.Generator, frames: int, n: int, diff: float, dt: float) -> np.ndarray:
    """(frames, n, 3) Brownian paths from 0 with per-component step variance 2 D dt."""
    steps = rng.normal(scale=np.sqrt(2.0 * diff * dt), size=(frames - 1, n, 3))
    return np.concatenate([np.zeros((1, n, 3)), np.cumsum(steps, axis=0)])


shapes = st.tuples(
    st.integers(min_value=1, max_value=24),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=3),
)


# ---------------------------------------------------------------------------------------------
# MSD and ACF


def test_msd_ballistic_is_v2_t2() -> None:
    rng = np.random.default_rng(0)
    frames, n, d = 64, 5, 3
    v = rng.normal(size=(n, d))
    x = np.arange(frames)[:, None, None] * v[None] + rng.normal(size=(1, n, d))  # offset: no effect
    expected = np.mean(np.sum(v**2, axis=1)) * np.arange(frames) ** 2
    # Exact up to FFT round-off, which scales with Σx² ~ frames² |v|².
    np.testing.assert_allclose(stats.msd(x), expected, rtol=1e-10, atol=1e-12 * expected[-1])
    assert stats.msd(x)[0] == 0.0


def test_msd_brownian_is_2dDt_within_5_standard_errors() -> None:
    rng = np.random.default_rng(1)
    frames, n, diff, dt = 100, 2000, 0.7, 0.05
    per_traj = stats.msd_per_trajectory(brownian(rng, frames, n, diff, dt))
    t = dt * np.arange(frames)
    # Trajectories are independent, so the standard error of the n-average at each lag is the
    # sample spread over trajectories / sqrt(n); 5 σ per lag over 99 lags: P(fail) < 1e-4.
    stderr = per_traj.std(axis=1, ddof=1) / np.sqrt(n)
    err = np.abs(per_traj.mean(axis=1) - 2 * 3 * diff * t)
    assert np.all(err[1:] < 5 * stderr[1:])
    # The estimator is not degenerate: stderr is a few % of the signal, not 0 or huge.
    assert np.all((stderr[1:] > 1e-3 * 6 * diff * t[1:]) & (stderr[1:] < 0.1 * 6 * diff * t[1:]))


@settings(max_examples=100, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_fft_msd_and_acf_match_brute_force(shape: tuple[int, int, int], seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=shape) * 3.0 + 1.0
    ref_msd = brute_msd(x)
    np.testing.assert_allclose(stats.msd(x), ref_msd, rtol=1e-10, atol=1e-10 * ref_msd.max())
    ref_c = brute_products(x)
    np.testing.assert_allclose(stats.acf(x), ref_c / ref_c[0], rtol=1e-10, atol=1e-10)


def test_msd_and_acf_match_tidynamics() -> None:
    rng = np.random.default_rng(2)
    frames, n, d = 500, 7, 3
    pos = np.cumsum(rng.normal(size=(frames, n, d)), axis=0)
    ref_msd = np.mean([tidynamics.msd(pos[:, j]) for j in range(n)], axis=0)
    # tidynamics' lag 0 is a cancellation Σx² - Σx², i.e. 0 up to round-off.
    np.testing.assert_allclose(stats.msd(pos), ref_msd, rtol=1e-10, atol=1e-10 * ref_msd.max())
    modes = rng.normal(size=(frames, n, d))
    ref_c = np.mean([tidynamics.acf(modes[:, j]) for j in range(n)], axis=0)
    np.testing.assert_allclose(stats.acf(modes), ref_c / ref_c[0], rtol=1e-10, atol=1e-12)


def test_acf_lag0_is_one_and_msd_lag0_is_zero() -> None:
    x = np.random.default_rng(3).normal(size=(50, 4, 3))
    assert stats.acf(x)[0] == 1.0
    assert stats.msd(x)[0] == 0.0


def direct_per_trajectory(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(frames²) per-trajectory MSD and lagged products Σ_d Σ_i x_i·x_{i+m} / (frames - m), by
    direct sums over origins in float64: x (frames, n, d) -> two (frames, n) arrays."""
    x = np.asarray(x, dtype=np.float64)
    frames, n, _ = x.shape
    msd_ref, prod_ref = np.zeros((frames, n)), np.zeros((frames, n))
    for m in range(frames):
        ahead, behind = x[m:], x[: frames - m]
        msd_ref[m] = np.sum((ahead - behind) ** 2, axis=(0, 2)) / (frames - m)
        prod_ref[m] = np.sum(ahead * behind, axis=(0, 2)) / (frames - m)
    return msd_ref, prod_ref


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 17, 64, 101, 250])
@pytest.mark.parametrize("n, d", [(1, 1), (3, 3), (10, 2)])
def test_per_trajectory_msd_and_products_match_direct_sums(frames: int, n: int, d: int) -> None:
    rng = np.random.default_rng(frames * 100 + n * 10 + d)
    x = np.cumsum(rng.normal(size=(frames, n, d)), axis=0) + rng.normal(scale=5.0, size=(1, n, d))
    msd_ref, prod_ref = direct_per_trajectory(x)
    got_msd = stats.msd_per_trajectory(x)
    got_prod = stats.lagged_products(x)
    assert got_msd.shape == got_prod.shape == (frames, n)
    assert got_msd.dtype == got_prod.dtype == np.float64
    assert np.all(got_msd[0] == 0.0) and np.all(got_msd >= 0.0)
    # Relative to each lag's value; the atol only covers exact zeros (none for random data).
    np.testing.assert_allclose(got_msd[1:], msd_ref[1:], rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(got_prod, prod_ref, rtol=1e-10, atol=1e-12 * prod_ref[0].max())
    c = prod_ref.mean(axis=1)
    np.testing.assert_allclose(stats.acf(x), c / c[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.msd(x), msd_ref.mean(axis=1), rtol=1e-10, atol=1e-300)


def test_single_frame_and_two_frames_are_exact() -> None:
    x = np.array([[[1.0, 2.0, 2.0]], [[2.0, 4.0, 4.0]]])  # (2, 1, 3)
    assert stats.msd_per_trajectory(x[:1]).tolist() == [[0.0]]
    np.testing.assert_allclose(stats.lagged_products(x[:1]), [[9.0]], rtol=1e-15)
    assert stats.acf(x[:1]).tolist() == [1.0]
    np.testing.assert_allclose(stats.msd_per_trajectory(x), [[0.0], [9.0]], rtol=1e-14)
    np.testing.assert_allclose(stats.lagged_products(x), [[22.5], [18.0]], rtol=1e-14)
    np.testing.assert_allclose(stats.acf(x), [1.0, 0.8], rtol=1e-14)


@pytest.mark.parametrize("frames", [999, 1000, 1024, 1537])
def test_per_trajectory_msd_and_products_match_tidynamics(frames: int) -> None:
    rng = np.random.default_rng(frames)
    n = 5
    pos = np.cumsum(rng.normal(size=(frames, n, 3)), axis=0)
    ref_msd = np.stack([tidynamics.msd(pos[:, j]) for j in range(n)], axis=1)
    got = stats.msd_per_trajectory(pos)
    assert np.all(got[0] == 0.0)
    np.testing.assert_allclose(got[1:], ref_msd[1:], rtol=1e-10, atol=0.0)
    ref_c = np.stack([tidynamics.acf(pos[:, j]) for j in range(n)], axis=1)
    np.testing.assert_allclose(
        stats.lagged_products(pos), ref_c, rtol=1e-10, atol=1e-12 * ref_c[0].max()
    )


def test_float32_input_gives_the_float64_result_of_its_values() -> None:
    x = np.cumsum(np.random.default_rng(4).normal(size=(301, 4, 3)), axis=0).astype(np.float32)
    wide = x.astype(np.float64)
    for func in (stats.msd_per_trajectory, stats.lagged_products, stats.msd, stats.acf):
        got = func(x)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, func(wide))
    msd_ref, _ = direct_per_trajectory(wide)
    np.testing.assert_allclose(stats.msd_per_trajectory(x)[1:], msd_ref[1:], rtol=1e-10)


def test_blocks_of_trajectories_do_not_change_the_result(monkeypatch) -> None:
    x = np.random.default_rng(5).normal(size=(200, 11, 3))
    whole = [f(x) for f in (stats.msd_per_trajectory, stats.lagged_products, stats.acf)]
    # 3 trajectories per block (size 400, d = 3): blocks of 3, 3, 3, 2.
    monkeypatch.setattr(stats, "_BLOCK_VALUES", 3 * 3 * stats._fft_size(200))
    blocked = [f(x) for f in (stats.msd_per_trajectory, stats.lagged_products, stats.acf)]
    for a, b in zip(whole, blocked, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-13 * np.abs(a).max())


def test_msd_of_a_long_offset_walk_keeps_small_lags_accurate() -> None:
    # Σ|x|² ~ 1e12 per trajectory against an MSD of 3 at lag 1: the FFT terms cancel by ~1e8.
    # Centring on the time mean and summing the fewer squares per lag keep 1e-10 relative.
    rng = np.random.default_rng(6)
    frames = 20_000
    x = np.cumsum(rng.normal(size=(frames, 2, 3)), axis=0) + 1e4
    got = stats.msd_per_trajectory(x)
    for m in (1, 2, 3, 10, 1000, frames // 2, frames - 3, frames - 2, frames - 1):
        ref = np.sum((x[m:] - x[:-m]) ** 2, axis=(0, 2)) / (frames - m)
        np.testing.assert_allclose(got[m], ref, rtol=1e-10, err_msg=f"lag {m}")


@pytest.mark.parametrize("func", [stats.msd, stats.acf, stats.msd_per_trajectory])
def test_wrong_rank_names_the_shape(func) -> None:
    with pytest.raises(ValueError, match=r"\(frames, n, d\).*\(5, 3\)"):
        func(np.zeros((5, 3)))


@pytest.mark.parametrize("func", [stats.msd, stats.acf, stats.msd_per_trajectory])
def test_nan_names_the_frame(func) -> None:
    x = np.ones((10, 2, 3))
    x[7, 1, 2] = np.nan
    with pytest.raises(ValueError, match="frame 7"):
        func(x)


def test_acf_of_zero_signal_is_an_error() -> None:
    with pytest.raises(ValueError, match="zero variance"):
        stats.acf(np.zeros((10, 2, 3)))


# ---------------------------------------------------------------------------------------------
# Mélard-Roy band (Eq. 34)

THETA = (0.6, -0.3)  # MA(2) coefficients


def ma2_true_acf(lags: int) -> np.ndarray:
    t1, t2 = THETA
    gamma0 = 1 + t1**2 + t2**2
    rho = np.zeros(lags)
    rho[:3] = [1.0, (t1 + t1 * t2) / gamma0, t2 / gamma0]
    return rho


def test_band_matches_hand_formula() -> None:
    rho = ma2_true_acf(6)
    n, level = 400, 0.95
    z = scipy.stats.norm.ppf(0.975)
    r1, r2 = rho[1], rho[2]
    expected = z / np.sqrt(n) * np.sqrt([0, 1, 1 + 2 * r1**2] + [1 + 2 * r1**2 + 2 * r2**2] * 3)
    np.testing.assert_allclose(stats.melard_roy_band(rho, n, level), expected, rtol=1e-14)
    # Default level is 99 %.
    z99 = scipy.stats.norm.ppf(0.995)
    np.testing.assert_allclose(stats.melard_roy_band(rho, n), expected * z99 / z, rtol=1e-14)


def test_band_monte_carlo_coverage_on_ma2() -> None:
    """For lags k > q = 2 the true ACF is 0 and the band is the sample ACF's null spread."""
    rng = np.random.default_rng(4)
    reps, n, level, lags = 4000, 1000, 0.95, 10
    noise = rng.normal(size=(n + 2, reps, 1))
    x = noise[2:] + THETA[0] * noise[1:-1] + THETA[1] * noise[:-2]  # (n, reps, 1)
    products = stats.lagged_products(x)[:lags]  # (lags, reps)
    sample = products / products[0]  # per-realisation ACF, (lags, reps)
    band = stats.melard_roy_band(ma2_true_acf(lags), n, level)
    inside = np.abs(sample[3:]) <= band[3:, None]
    coverage = inside.mean(axis=1)
    # Each lag: binomial over independent realisations; 4 σ tolerance (P(fail) ~ 6e-5 per lag).
    sigma = np.sqrt(level * (1 - level) / reps)
    assert np.all(np.abs(coverage - level) < 4 * sigma), coverage
    # Sharper: the band / z is the standard error itself. The sample std has relative error
    # ~ 1/sqrt(2 reps) = 1.1 %; allow 5 % (4 σ plus the O(k/n) finite-length bias).
    z = scipy.stats.norm.ppf(0.5 * (1 + level))
    np.testing.assert_allclose(sample[3:].std(axis=1), band[3:] / z, rtol=0.05)
    # At lag 1 the band uses the white-noise null: it must NOT cover an MA(2) with ρ_1 = 0.34.
    assert np.mean(np.abs(sample[1]) <= band[1]) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"acf": np.ones((3, 2)), "n_samples": 10}, r"acf.*\(3, 2\)"),
        ({"acf": np.array([1.0, np.nan]), "n_samples": 10}, "frame 1"),
        ({"acf": np.ones(3), "n_samples": 0}, "n_samples"),
        ({"acf": np.ones(3), "n_samples": 10.5}, "n_samples"),
        ({"acf": np.ones(3), "n_samples": 10, "level": 1.0}, "level"),
    ],
)
def test_band_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stats.melard_roy_band(**kwargs)


# ---------------------------------------------------------------------------------------------
# Diffusion coefficient (Eq. 35)


def test_diffusion_of_exact_msd() -> None:
    diff, dt, frames = 0.37, 0.25, 200
    exact = 6 * diff * dt * np.arange(frames)
    value = stats.diffusion_coefficient(exact, dt, 10, 150)
    assert isinstance(value, float)
    assert value == pytest.approx(diff, rel=1e-13)


def test_diffusion_window_is_inclusive() -> None:
    # MSD(t) = 6 dt t² (t in frames): MSD / (6 t dt) = t, whose mean over t1..t2 is (t1 + t2) / 2.
    dt, lags = 0.5, np.arange(40.0)
    value = stats.diffusion_coefficient(6 * dt * lags**2, dt, 3, 10)
    assert value == pytest.approx(6.5, rel=1e-14)


def test_diffusion_per_chain_value_is_d_of_the_mean_msd() -> None:
    rng = np.random.default_rng(5)
    per_chain = stats.msd_per_trajectory(brownian(rng, 120, 30, 0.5, 0.1))
    est = stats.diffusion_coefficient(per_chain, 0.1, 5, 60)
    assert isinstance(est, stats.DiffusionEstimate)
    assert est.n == 30
    assert est.value == pytest.approx(
        stats.diffusion_coefficient(per_chain.mean(axis=1), 0.1, 5, 60), rel=1e-12
    )
    lo, hi = est.ci95
    half = scipy.stats.t.ppf(0.975, 29) * est.stderr
    assert (lo, hi) == pytest.approx((est.value - half, est.value + half), rel=1e-12)


def test_diffusion_ci_covers_true_d() -> None:
    """Coverage of the Student-t 95 % CI over 400 independent ensembles of 20 chains."""
    rng = np.random.default_rng(6)
    diff, dt, frames, chains, reps = 0.5, 0.1, 200, 20, 400
    t1, t2 = 5, 20  # a short window: many origins, so per-chain D are close to Gaussian
    per_chain = stats.msd_per_trajectory(brownian(rng, frames, chains * reps, diff, dt))
    estimates = [
        stats.diffusion_coefficient(block, dt, t1, t2)
        for block in np.split(per_chain, reps, axis=1)
    ]
    lo, hi = np.array([e.ci95 for e in estimates]).T
    coverage = np.mean((lo <= diff) & (diff <= hi))
    # Binomial 4 σ around 0.95 (σ = 0.011). Measured offline over 20,000 ensembles of this
    # setup: 0.949 ± 0.001, so the t interval is calibrated here.
    assert abs(coverage - 0.95) < 4 * np.sqrt(0.95 * 0.05 / reps), coverage
    # And one big ensemble's CI covers D (|error| > 5 stderr has P ~ 1e-6).
    big = stats.diffusion_coefficient(per_chain, dt, t1, t2)
    assert abs(big.value - diff) < 5 * big.stderr
    assert big.ci95[0] <= diff <= big.ci95[1]


@pytest.mark.parametrize(
    ("t1", "t2", "match"),
    [
        (0, 10, "t1 < t2"),
        (10, 10, "t1 < t2"),
        (12, 10, "t1 < t2"),
        (5, 50, "<= 49"),
        (2.0, 9, "t1"),
    ],
)
def test_diffusion_bad_window(t1, t2, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stats.diffusion_coefficient(np.arange(50.0), 1.0, t1, t2)


def test_diffusion_bad_input() -> None:
    with pytest.raises(ValueError, match=r"msd3d.*\(4, 5, 3\)"):
        stats.diffusion_coefficient(np.ones((4, 5, 3)), 1.0, 1, 2)
    with pytest.raises(ValueError, match="dt"):
        stats.diffusion_coefficient(np.arange(50.0), 0.0, 1, 2)
    with pytest.raises(ValueError, match="n >= 2"):
        stats.diffusion_coefficient(np.arange(50.0)[:, None], 1.0, 1, 2)
    m = np.arange(50.0)
    m[20] = np.nan
    with pytest.raises(ValueError, match="frame 20"):
        stats.diffusion_coefficient(m, 1.0, 10, 30)
    assert np.isfinite(stats.diffusion_coefficient(m, 1.0, 21, 30))  # NaN outside the window


# ---------------------------------------------------------------------------------------------
# Local slope


@pytest.mark.parametrize("dt", [1.0, 0.01])
def test_local_slope_of_power_law_is_exact_everywhere(dt: float) -> None:
    t = dt * np.arange(300)
    slope = stats.local_slope(2.5 * t**0.6, dt)
    assert slope.shape == (299,)
    # Log-log is linear, so centred (interior) and one-sided (ends) differences are exact.
    np.testing.assert_allclose(slope, 0.6, atol=1e-10)


def test_local_slope_crossover_goes_from_1_to_half() -> None:
    dt = 0.01
    t = dt * np.arange(20001)
    slope = stats.local_slope(t / np.sqrt(1 + t), dt)  # exact slope 1 - t / (2 (1 + t))
    exact = 1 - 0.5 * t[1:] / (1 + t[1:])
    assert np.all(np.diff(slope) < 0)
    assert slope[0] > 0.99 and slope[-1] < 0.51
    # Truncation error of the centred difference ~ (Δ log t)² |f'''|; largest at lag 2 (4e-4).
    np.testing.assert_allclose(slope[1:-1], exact[1:-1], atol=1e-3)
    np.testing.assert_allclose(slope[[0, -1]], exact[[0, -1]], atol=3e-3)  # first-order ends


def test_local_slope_vectorised_over_columns() -> None:
    t = np.arange(50.0)[:, None]
    both = stats.local_slope(np.hstack([t**0.5, t**1.0]))
    assert both.shape == (49, 2)
    np.testing.assert_allclose(both, np.broadcast_to([0.5, 1.0], (49, 2)), atol=1e-10)


def test_local_slope_bad_input() -> None:
    with pytest.raises(ValueError, match="lag 3"):
        stats.local_slope(np.array([0.0, 1.0, 2.0, 0.0, 4.0]))
    with pytest.raises(ValueError, match="frames >= 3"):
        stats.local_slope(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="dt"):
        stats.local_slope(np.arange(5.0), dt=-1.0)


def test_local_slope_on_log_spaced_lags_of_a_power_law_is_exact() -> None:
    lags = stats.log_lags(1000, count=40)
    assert lags[0] == 1 and lags[-1] == 999 and np.all(np.diff(lags) > 0)
    t = np.arange(1000.0)
    slope = stats.local_slope(3.0 * t**0.7, dt=0.5, lags=lags)
    assert slope.shape == lags.shape
    np.testing.assert_allclose(slope, 0.7, atol=1e-10)
    # On the full grid the same estimator is the default.
    np.testing.assert_array_equal(
        stats.local_slope(t**0.7, lags=np.arange(1, 1000)), stats.local_slope(t**0.7)
    )
    with pytest.raises(ValueError, match="lags"):
        stats.local_slope(t**0.7, lags=np.array([0, 5, 10]))
    with pytest.raises(ValueError, match="lags"):
        stats.local_slope(t**0.7, lags=np.array([5, 1000]))


def test_com_diffusion_is_eq35_on_the_com_msd() -> None:
    rng = np.random.default_rng(3)
    com = brownian(rng, 200, 12, 0.3, 0.5)
    got = stats.com_diffusion(com, 0.5, (20, 80))
    expected = stats.diffusion_coefficient(stats.msd_per_trajectory(com), 0.5, 20, 80)
    assert got == expected


def test_mare_is_the_mean_absolute_relative_error() -> None:
    assert stats.mare([1.1, 1.8, 3.0], [1.0, 2.0, 3.0]) == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert stats.mare([-2.0], [-1.0]) == pytest.approx(1.0)


def test_is_int_and_check_dt() -> None:
    assert stats.is_int(3) and stats.is_int(np.int64(3))
    assert not stats.is_int(True) and not stats.is_int(3.0)
    assert stats.check_dt(2) == 2.0 and isinstance(stats.check_dt(np.float32(0.5)), float)
    for bad in (0.0, -1.0, np.inf, np.nan, True, "1"):
        with pytest.raises(ValueError, match="dt"):
            stats.check_dt(bad)


# ---------------------------------------------------------------------------------------------
# Interpolation in 1/T


def test_interpolate_log_zero_entries_go_linear() -> None:
    got = stats.interpolate_log(
        np.array([1.0, 2.0]), np.array([[0.0, 4.0], [2.0, 1.0]]), 4 / 3, "x"
    )
    # 1/x = 0.75 is half-way between 1 and 0.5.
    np.testing.assert_allclose(got, [1.0, 2.0], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Exponential and Kohlrausch fits (Eq. 33)


@pytest.mark.parametrize("tau", [0.3, 2.0, 40.0])
def test_fit_exponential_recovers_tau(tau: float) -> None:
    dt = 0.1
    t = dt * np.arange(400)
    fit = stats.fit_exponential(np.exp(-t / tau), dt)
    assert fit.tau == pytest.approx(tau, rel=1e-6)
    assert fit.rmse < 1e-8
    np.testing.assert_allclose(fit(t), np.exp(-t / tau), atol=1e-8)


@pytest.mark.parametrize(
    ("amplitude", "tau", "beta"), [(1.0, 3.0, 0.5), (0.9, 2.0, 0.85), (1.2, 1.5, 1.5)]
)
def test_fit_kohlrausch_recovers_parameters(amplitude: float, tau: float, beta: float) -> None:
    dt = 0.1
    t = dt * np.arange(300)
    data = amplitude * np.exp(-((t / tau) ** beta))
    fit = stats.fit_kohlrausch(data, dt)
    assert (fit.amplitude, fit.tau, fit.beta) == pytest.approx((amplitude, tau, beta), rel=1e-6)
    assert fit.rmse < 1e-8
    np.testing.assert_allclose(fit(t), data, atol=1e-8)


def test_fit_kohlrausch_on_exponential_gives_beta_one() -> None:
    t = np.arange(200.0)
    fit = stats.fit_kohlrausch(np.exp(-t / 25.0))
    assert fit.beta == pytest.approx(1.0, rel=1e-6)
    assert fit.tau == pytest.approx(25.0, rel=1e-6)
    assert fit.amplitude == pytest.approx(1.0, rel=1e-6)


def test_fit_uses_only_lags_up_to_max_lag() -> None:
    t = np.arange(100.0)
    data = np.exp(-t / 10.0)
    data[31:] = 0.5  # garbage after lag 30
    assert stats.fit_exponential(data, max_lag=30).tau == pytest.approx(10.0, rel=1e-6)
    assert stats.fit_kohlrausch(data, max_lag=30).beta == pytest.approx(1.0, rel=1e-6)
    assert stats.fit_exponential(data).rmse > 1e-2  # the full series is not an exponential


def test_fit_exponential_is_worse_than_kohlrausch_on_stretched_data() -> None:
    t = 0.5 * np.arange(200)
    data = np.exp(-((t / 8.0) ** 0.6))
    assert stats.fit_exponential(data, 0.5).rmse > 100 * stats.fit_kohlrausch(data, 0.5).rmse


@pytest.mark.parametrize("fit", [stats.fit_exponential, stats.fit_kohlrausch])
def test_fit_bad_input(fit) -> None:
    with pytest.raises(ValueError, match="max_lag"):
        fit(np.exp(-np.arange(10.0)), max_lag=10)
    with pytest.raises(ValueError, match="max_lag"):
        fit(np.exp(-np.arange(10.0)), max_lag=0)
    with pytest.raises(ValueError, match=r"acf.*\(10, 2\)"):
        fit(np.ones((10, 2)))
    with pytest.raises(ValueError, match="dt"):
        fit(np.exp(-np.arange(10.0)), dt=0.0)
