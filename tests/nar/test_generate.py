"""Tests of mlgle.nar.generate: Alg. 1 (Eqs. 23-25) and the initial windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nar_fixtures import stationary_ar1
from scipy.spatial.transform import Rotation

from mlgle.config import TrainConfig
from mlgle.nar.generate import (
    _generate_fast,
    _generate_reference,
    generate_modes,
    generate_modes_reference,
    initial_windows,
    stream_modes,
)
from mlgle.nar.model import ModeNetworks, onednn_available
from mlgle.nar.train import fit_modes
from mlgle.stats import acf, melard_roy_band, msd_per_trajectory

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_model(k: int = 3, m: int = 8, dropout: float = 0.0) -> ModeNetworks:
    return ModeNetworks(k, m, hidden=(16, 16), latent=4, dropout=dropout, seeds=range(k)).double()


def _inputs(k: int = 3, n: int = 4, m: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    sigma_z = np.linspace(0.5, 2.0, k)
    sigma_dz = np.linspace(0.2, 0.4, k)
    initial = rng.normal(size=(m, n, k, 3)) * sigma_z[:, None]
    return sigma_z, sigma_dz, initial


def _analytic_model(history: int, coefficient, log_d, lower) -> ModeNetworks:
    """A ModeNetworks with known output: Δẑ ~ N(c |z_{t-1}| e1-axis, L D Lᵀ), per mode.

    All weights zero except a ReLU path carrying x̂[last, 0] = |z_{t-1}| (>= 0, the first frame
    component of the newest window value) to the mean's first component with weight c; the
    head biases give L (lower) and log D. Rotated back, the mean increment is c z_{t-1}.
    """
    coefficient = np.asarray(coefficient, dtype=np.float64)
    k = coefficient.shape[0]
    model = ModeNetworks(k, history, hidden=(2, 2), latent=2).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.weights[0][:, 3 * (history - 1), 0] = 1.0
        for weight in model.weights[1:]:
            weight[:, 0, 0] = 1.0
        model.head_weight[:, 0, 0] = torch.as_tensor(coefficient)
        model.head_bias[:, 0, 3:6] = torch.tensor(np.broadcast_to(lower, (k, 3)))
        model.head_bias[:, 0, 6:9] = torch.tensor(np.broadcast_to(log_d, (k, 3)))
    return model


def _band_share(x: np.ndarray, a: float, lags: int, n_samples: int) -> float:
    """Share of lags 1..lags where acf(x) lies inside the 99 % Mélard-Roy band of a^t (Eq. 34)."""
    exact = a ** np.arange(x.shape[0])
    band = melard_roy_band(exact, n_samples, 0.99)
    inside = np.abs(acf(x) - exact)[1 : lags + 1] <= band[1 : lags + 1]
    return float(inside.mean())


# --- agreement with the independent implementation -----------------------------------------


@pytest.mark.parametrize("dtype, rtol", [(F64, 1e-10), (torch.float32, 2e-4)])
def test_fast_path_equals_reference_loop(dtype, rtol):
    # 300 steps cross the ring-buffer flushes and the noise blocks (128 steps each).
    sigma_z, sigma_dz, initial = _inputs()
    model = _random_model().to(dtype)
    args = (model, sigma_z, sigma_dz, initial, 8 + 300)
    fast = generate_modes(*args, seed=3, progress=False, dtype=dtype)
    slow = generate_modes_reference(*args, seed=3, progress=False, dtype=dtype)
    scale = np.abs(slow).max()
    np.testing.assert_allclose(fast, slow, rtol=0, atol=rtol * scale)


def test_fast_path_equals_reference_with_injected_noise():
    # The same ε through the private noise hook: 50 steps, k = 3, n = 4, m = 8.
    sigma_z, sigma_dz, initial = _inputs()
    eps = torch.randn((50, 3, 4, 3), generator=torch.Generator().manual_seed(5), dtype=F64)
    args = (_random_model(), sigma_z, sigma_dz, initial, 58)

    def fast_with(noise) -> np.ndarray:
        out = np.empty((58, 4, 3, 3))

        def keep(first: int, block: np.ndarray) -> None:
            out[first : first + len(block)] = block

        _generate_fast(*args, noise, keep, False, F64)
        return out

    fast, slow = fast_with(eps.__getitem__), _generate_reference(*args, eps.__getitem__, False, F64)
    np.testing.assert_allclose(fast, slow, rtol=1e-11, atol=1e-11)
    zero = fast_with(lambda step: torch.zeros((3, 4, 3), dtype=F64))
    assert np.abs(zero - fast).max() > 1e-3  # the noise does enter


def test_stream_modes_blocks_concatenate_to_generate_modes_bitwise():
    # 300 steps, m = 8: the blocks are the initial window, then at most 128 frames each (the ring
    # flushes), in frame order; together exactly generate_modes' array for the same seed.
    sigma_z, sigma_dz, initial = _inputs()
    args = (_random_model().float(), sigma_z, sigma_dz, initial, 8 + 300, 3)
    blocks: list[tuple[int, np.ndarray]] = []
    stream_modes(*args, lambda first, block: blocks.append((first, block.copy())), progress=False)
    firsts = [first for first, _ in blocks]
    sizes = [len(block) for _, block in blocks]
    assert firsts == list(np.cumsum([0, *sizes[:-1]])) and sum(sizes) == 308
    assert sizes[0] == 8 and max(sizes) <= 128
    whole = generate_modes(*args, progress=False)
    np.testing.assert_array_equal(np.concatenate([block for _, block in blocks]), whole)


@pytest.mark.skipif(not onednn_available(), reason="torch without oneDNN")
def test_fast_path_with_onednn_network_equals_reference_loop():
    # n = 40 trajectories on the oneDNN network; 140 steps cross a ring-buffer flush and a
    # noise block. float32 rounding as above.
    n = 40
    sigma_z, sigma_dz, initial = _inputs(n=n)
    args = (_random_model().float(), sigma_z, sigma_dz, initial, 8 + 140)
    fast = generate_modes(*args, seed=3, progress=False, backend="onednn")
    slow = generate_modes_reference(*args, seed=3, progress=False)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=2e-4 * np.abs(slow).max())


# --- symmetry (Eq. 17) --------------------------------------------------------------------------


@pytest.mark.parametrize("reflect", [False, True])
def test_orthogonal_transform_of_initial_transforms_trajectory(reflect):
    # R(Q y) = R(y) Qᵀ, so the frame inputs and increments are unchanged and z -> Q z exactly.
    sigma_z, sigma_dz, initial = _inputs(n=5)
    q = Rotation.random(random_state=11).as_matrix()
    if reflect:
        q = q @ np.diag([1.0, 1.0, -1.0])
    model = _random_model()
    base = generate_modes(model, sigma_z, sigma_dz, initial, 60, seed=4, progress=False, dtype=F64)
    turned = generate_modes(
        model, sigma_z, sigma_dz, initial @ q.T, 60, seed=4, progress=False, dtype=F64
    )
    np.testing.assert_allclose(turned, base @ q.T, rtol=0, atol=1e-9 * np.abs(base).max())


# --- analytic processes ---------------------------------------------------------------------


def test_radial_drift_without_noise_moves_along_z():
    # μ = (b, 0, 0) in the frame, D ≈ 0: every step adds (σ_Δz/σ_z) b along e1 = z/|z|, so the
    # direction is kept and |z| (standardised) grows by exactly that much per step.
    k, m, steps = 2, 4, 30
    b = np.array([0.5, -0.2])
    model = _analytic_model(m, [0.0, 0.0], log_d=-80.0, lower=0.0)
    with torch.no_grad():
        model.head_bias[:, 0, 0] = torch.as_tensor(b)
    sigma_z, sigma_dz, initial = _inputs(k=k, n=3, m=m)
    initial[-1] *= 5.0  # |z| large enough that the negative drift keeps it positive
    out = generate_modes(
        model, sigma_z, sigma_dz, initial, m + steps, seed=0, progress=False, dtype=F64
    )
    last = initial[-1] / sigma_z[:, None]
    radius = np.linalg.norm(last, axis=-1) + np.arange(1, steps + 1)[:, None, None] * (
        sigma_dz / sigma_z * b
    )
    expected = radius[..., None] * (last / np.linalg.norm(last, axis=-1, keepdims=True))
    np.testing.assert_allclose(out[m:] / sigma_z[:, None], expected, rtol=1e-9, atol=1e-9)


def test_zero_mean_increments_give_random_walk_msd():
    # μ = 0, Σ = L D Lᵀ constant: z performs a martingale walk with E|z_t - z_s|² =
    # σ_Δz² tr(Σ) (t - s) in physical units (σ_z cancels). Checked per lag against the
    # per-trajectory MSDs within 5 standard errors over 400 independent trajectories.
    k, n, m, steps = 3, 400, 4, 200
    log_d = np.array([[0.0, -1.0, 0.5], [-0.5, -0.5, -0.5], [1.0, 0.0, -2.0]])
    lower = np.array([[0.3, -0.4, 0.2], [0.0, 0.0, 0.0], [-1.0, 0.5, 0.7]])
    model = _analytic_model(m, np.zeros(k), log_d=log_d, lower=lower)
    sigma_z, sigma_dz, initial = _inputs(k=k, n=n, m=m, seed=1)
    out = generate_modes(
        model, sigma_z, sigma_dz, initial, m + steps, seed=6, progress=False, dtype=F64
    )
    lags = np.array([1, 5, 20, 60])
    for j in range(k):
        factor = np.eye(3)
        factor[np.tril_indices(3, -1)] = lower[j]
        trace = np.trace(factor @ np.diag(np.exp(log_d[j])) @ factor.T)
        per_chain = msd_per_trajectory(out[m - 1 :, :, j])[lags]  # (lags, n)
        mean, se = per_chain.mean(1), per_chain.std(1, ddof=1) / np.sqrt(n)
        theory = sigma_dz[j] ** 2 * trace * lags
        assert np.all(np.abs(mean - theory) < 5 * se), (j, mean, theory, se)


def test_linear_gaussian_model_reproduces_ar1_acf():
    # Mean c z_{t-1}, isotropic noise: z_t = a z_{t-1} + noise with a = 1 + c σ_Δz/σ_z, so the
    # ACF is exactly a^t. 240 stationary trajectories of 1000 frames against the 99 % Mélard-Roy
    # band of the generated sample size over lags up to 3 relaxation times. Each lag is outside
    # with probability <= 1 % (the band is conservative at short lags), so >= 95 % inside
    # allows for the runs of neighbouring lags that the correlated estimates leave together.
    a = np.array([0.7, 0.9, 0.95])
    sigma_z, m = np.array([1.0, 2.5, 0.4]), 4
    ratio = np.sqrt(2 * (1 - a))  # σ_Δz/σ_z of an AR(1)
    noise = np.sqrt(1 - a**2) / ratio  # stationary standardised variance 1
    model = _analytic_model(m, (a - 1) / ratio, log_d=2 * np.log(noise)[:, None], lower=0.0)
    initial = stationary_ar1(a, sigma_z, m, 240, seed=2)
    out = generate_modes(
        model, sigma_z, ratio * sigma_z, initial, 1000, seed=8, progress=False, dtype=F64
    )
    for j in range(3):
        lags = int(3 / -np.log(a[j]))
        assert _band_share(out[:, :, j], a[j], lags, out.shape[0] * out.shape[1]) >= 0.95
        assert _band_share(out[:, :, j], a[j] + 0.02, lags, out.shape[0] * out.shape[1]) < 0.5


@pytest.mark.slow
def test_trained_model_reproduces_ar1_acf():
    # End to end: fit_modes on 64 chains x 400 training frames of isotropic AR(1) modes, then
    # generate 100 x 1000 frames from windows after t_train. The band uses the TRAINING sample
    # size (64 x 400): a model fitted on those samples knows a only to about that precision
    # (SD of the lag-1 estimate ≈ 0.004, the band's lag-1 half-width 0.016); the 4x larger
    # generated sample adds little noise. Lags up to 3 relaxation times, >= 95 % inside (8/8
    # training seeds gave 100 % when this was written); a ± 0.03 must fall outside.
    a, sigma = np.array([0.8, 0.9]), np.array([1.0, 3.0])
    md = stationary_ar1(a, sigma, 600, 64, seed=0)
    config = TrainConfig(
        history=4,
        t_train=400,
        t_val=100,
        hidden=(16, 16),
        latent=4,
        batch_size=256,
        lr=3e-3,
        epochs=25,
        patience=0,
        threads=1,
        seed=0,
    )
    fitted = fit_modes(md, config, progress=False)
    initial = initial_windows(md, start=500, history=4, n=100, seed=1)
    scales = fitted.standardisation
    out = generate_modes(
        fitted.model, scales.sigma_z, scales.sigma_dz, initial, 1000, seed=2, progress=False
    )
    for j in range(2):
        lags = int(3 / -np.log(a[j]))
        assert _band_share(out[:, :, j], a[j], lags, 64 * 400) >= 0.95
        for wrong in (a[j] - 0.03, a[j] + 0.03):
            assert _band_share(out[:, :, j], wrong, lags, 64 * 400) < 0.5


# --- contract: shapes, determinism, mode, errors ----------------------------------------------


def test_shape_initial_rows_and_determinism():
    sigma_z, sigma_dz, initial = _inputs(n=6)
    model = _random_model().float()
    out = generate_modes(model, sigma_z, sigma_dz, initial, 40, seed=1, progress=False)
    assert out.shape == (40, 6, 3, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:8], initial.astype(np.float32))
    again = generate_modes(model, sigma_z, sigma_dz, initial, 40, seed=1, progress=False)
    np.testing.assert_array_equal(out, again)
    other = generate_modes(model, sigma_z, sigma_dz, initial, 40, seed=2, progress=False)
    assert not np.allclose(out[8:], other[8:])
    only = generate_modes(model, sigma_z, sigma_dz, initial, 8, seed=1, progress=False)
    np.testing.assert_array_equal(only, out[:8])


@pytest.mark.parametrize("generate", [generate_modes, generate_modes_reference])
@pytest.mark.parametrize("training", [True, False])
def test_runs_in_eval_mode_and_restores_mode(generate, training):
    # With dropout 0.5, a model left in train mode would drop units (and draw from the global
    # RNG): the result must equal the eval-mode result, and the mode must come back.
    sigma_z, sigma_dz, initial = _inputs()
    model = _random_model(dropout=0.5)
    expected = generate(
        model.eval(), sigma_z, sigma_dz, initial, 20, seed=0, progress=False, dtype=F64
    )
    model.train(training)
    out = generate(model, sigma_z, sigma_dz, initial, 20, seed=0, progress=False, dtype=F64)
    np.testing.assert_array_equal(out, expected)
    assert all(module.training == training for module in model.modules())


@pytest.mark.parametrize(
    "change, match",
    [
        ({"initial": np.zeros((7, 4, 3, 3))}, "initial: expected shape"),
        ({"initial": np.zeros((8, 4, 2, 3))}, "initial: expected shape"),
        ({"initial": np.zeros((8, 4, 3, 2))}, "initial: expected shape"),
        ({"initial": np.zeros((8, 3, 3))}, "initial: expected shape"),
        ({"initial": np.full((8, 4, 3, 3), np.nan)}, "initial: contains non-finite"),
        ({"sigma_z": np.ones(2)}, "sigma_z: expected shape"),
        ({"sigma_dz": np.ones(4)}, "sigma_dz: expected shape"),
        ({"sigma_dz": np.array([1.0, 0.0, 1.0])}, "sigma_dz: expected finite positive"),
        ({"frames": 7}, "frames: expected an integer >= history"),
        ({"dtype": torch.float32}, "model: parameters are torch.float64"),
    ],
)
@pytest.mark.parametrize("generate", [generate_modes, generate_modes_reference])
def test_bad_input_errors(generate, change, match):
    sigma_z, sigma_dz, initial = _inputs()
    args = {
        "model": _random_model(),
        "sigma_z": sigma_z,
        "sigma_dz": sigma_dz,
        "initial": initial,
        "frames": 20,
        "seed": 0,
        "progress": False,
        "dtype": F64,
    }
    with pytest.raises(ValueError, match=match):
        generate(**{**args, **change})


# --- initial windows --------------------------------------------------------------------------


def _labelled_modes(frames: int, chains: int, k: int = 2) -> np.ndarray:
    """modes[t, c, j, d] = 1000 t + c + 0.1 j + 0.01 d: every value names its frame and chain."""
    t, c, j, d = np.meshgrid(
        np.arange(frames), np.arange(chains), np.arange(k), np.arange(3), indexing="ij"
    )
    return 1000.0 * t + c + 0.1 * j + 0.01 * d


@pytest.mark.parametrize("n", [3, 5, 13])
def test_initial_windows_are_slices_after_start(n):
    modes = _labelled_modes(frames=60, chains=5)
    start, m = 30, 6
    windows = initial_windows(modes, start=start, history=m, n=n, seed=0)
    assert windows.shape == (m, n, 2, 3)
    t0 = (windows[0, :, 0, 0] // 1000).astype(int)
    chain = np.rint(windows[0, :, 0, 0] % 1000).astype(int)
    for i in range(n):
        np.testing.assert_array_equal(windows[:, i], modes[t0[i] : t0[i] + m, chain[i]])
    assert t0.min() >= start and t0.max() + m <= 60
    counts = np.bincount(chain, minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.max() == -(-n // 5)  # cycling
    for c in range(5):  # windows of one chain do not overlap
        starts = np.sort(t0[chain == c])
        assert np.all(np.diff(starts) >= m)


def test_initial_windows_seeded():
    modes = _labelled_modes(frames=200, chains=8)
    first = initial_windows(modes, start=50, history=5, n=10, seed=3)
    np.testing.assert_array_equal(first, initial_windows(modes, 50, 5, 10, seed=3))
    assert not np.array_equal(first, initial_windows(modes, 50, 5, 10, seed=4))


def test_initial_windows_fill_available_frames_exactly():
    # 3 windows of 4 frames per chain in the 12 frames after start: the only placement.
    modes = _labelled_modes(frames=20, chains=2)
    windows = initial_windows(modes, start=8, history=4, n=6, seed=0)
    t0 = (windows[0, :, 0, 0] // 1000).astype(int)
    assert sorted(t0.tolist()) == [8, 8, 12, 12, 16, 16]


@pytest.mark.parametrize(
    "modes, kwargs, match",
    [
        (_labelled_modes(20, 2), {"start": 8, "history": 4, "n": 7}, "modes: 7 windows"),
        (_labelled_modes(20, 2), {"start": 18, "history": 4, "n": 1}, "only 2 of 20 frames"),
        (_labelled_modes(20, 2), {"start": 25, "history": 4, "n": 1}, "only 0 of 20 frames"),
        (np.zeros((20, 2, 3)), {"start": 0, "history": 4, "n": 1}, "modes: expected shape"),
        (np.zeros((20, 0, 2, 3)), {"start": 0, "history": 4, "n": 1}, "modes: expected shape"),
        (_labelled_modes(20, 2), {"start": -1, "history": 4, "n": 1}, "start: expected"),
        (_labelled_modes(20, 2), {"start": 0, "history": 0, "n": 1}, "history: expected"),
        (_labelled_modes(20, 2), {"start": 0, "history": 4, "n": 0}, "n: expected"),
    ],
)
def test_initial_windows_errors(modes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        initial_windows(modes, seed=0, **kwargs)
