"""Tests for mlgle.nar.windows: strided windows, standardisation, rotated batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlgle.nar.frames import rotation_frames, to_frame
from mlgle.nar.windows import Standardisation, WindowDataset, sliding_windows, split_modes


def _modes(frames: int = 15, chains: int = 3, k: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.array([2.0, 0.5, 1.0, 3.0])[:k]
    return np.cumsum(rng.normal(size=(frames, chains, k, 3)), axis=0) * scales[:, None]


def test_sliding_windows_equal_brute_force_including_last_window() -> None:
    z = _modes()
    m = 4
    windows, targets = sliding_windows(z, m)
    frames, chains, k, _ = z.shape
    assert windows.shape == (frames - m, chains, k, m, 3)
    assert targets.shape == (frames - m, chains, k, 3)
    for i in range(frames - m):
        for c in range(chains):
            for j in range(k):
                expected = np.array([z[i + lag, c, j] for lag in range(m)])
                np.testing.assert_array_equal(windows[i, c, j], expected)
                np.testing.assert_array_equal(targets[i, c, j], z[i + m, c, j] - z[i + m - 1, c, j])
    # the last window ends at the second-to-last frame; its target reaches the last frame
    np.testing.assert_array_equal(windows[-1, :, :, -1], z[-2])
    np.testing.assert_array_equal(targets[-1], z[-1] - z[-2])


def test_sliding_windows_are_views_not_copies() -> None:
    z = _modes(frames=200, chains=5, k=3)
    windows, _ = sliding_windows(z, 16)
    assert np.shares_memory(windows, z)
    assert not windows.flags.writeable
    assert windows.base is not None


@pytest.mark.parametrize(
    ("history", "message"),
    [(0, "history: expected m >= 1"), (15, "15 frames leave no window of history m = 15")],
)
def test_sliding_windows_reject_bad_history(history: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sliding_windows(_modes(frames=15), history)


def test_sliding_windows_reject_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"z: expected shape \(frames, chains, k, 3\)"):
        sliding_windows(np.zeros((10, 2, 3)), 2)


def test_standardisation_is_scalar_rms_per_mode() -> None:
    z = _modes(frames=30, chains=4, k=3)
    std = Standardisation.from_training(z)
    for j in range(3):
        values = [z[t, c, j, d] for t in range(30) for c in range(4) for d in range(3)]
        steps = [
            z[t + 1, c, j, d] - z[t, c, j, d] for t in range(29) for c in range(4) for d in range(3)
        ]
        assert std.sigma_z[j] == pytest.approx(np.sqrt(np.mean(np.square(values))), rel=1e-12)
        assert std.sigma_dz[j] == pytest.approx(np.sqrt(np.mean(np.square(steps))), rel=1e-12)
    assert std.sigma_z.dtype == np.float64
    np.testing.assert_allclose(std.ratio, std.sigma_dz / std.sigma_z)


def test_standardisation_round_trips() -> None:
    z = _modes(k=3)
    std = Standardisation.from_training(z)
    np.testing.assert_allclose(std.destandardise(std.standardise(z)), z, rtol=1e-14)
    dz = np.diff(z, axis=0)
    np.testing.assert_allclose(
        std.destandardise_increment(std.standardise_increment(dz)), dz, rtol=1e-14
    )
    # after standardisation every mode has unit RMS over the training data
    np.testing.assert_allclose(np.sqrt(np.mean(std.standardise(z) ** 2, axis=(0, 1, 3))), 1.0)
    assert Standardisation.from_dict(std.to_dict()) == std


def test_standardisation_rejects_bad_scales() -> None:
    z = _modes(k=2)
    z[:, :, 1] = 0.0
    with pytest.raises(ValueError, match=r"σ_z is zero .* \[1\]"):
        Standardisation.from_training(z)
    with pytest.raises(ValueError, match="sigma_dz"):
        Standardisation(np.ones(2), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="missing key 'sigma_dz'"):
        Standardisation.from_dict({"sigma_z": [1.0]})


def test_split_modes_gives_disjoint_views() -> None:
    z = _modes(frames=20)
    train, val = split_modes(z, 12, 5)
    np.testing.assert_array_equal(train, z[:12])
    np.testing.assert_array_equal(val, z[12:17])
    assert np.shares_memory(train, z) and np.shares_memory(val, z)


def test_split_modes_too_short_names_everything() -> None:
    with pytest.raises(ValueError, match=r"20 frames .* t_train \(15\) \+ t_val \(6\) = 21"):
        split_modes(_modes(frames=20), 15, 6)


def test_standardisation_ignores_validation_span() -> None:
    z = _modes(frames=20)
    other = z.copy()
    other[12:] *= 10.0
    assert Standardisation.from_training(split_modes(z, 12, 8)[0]) == Standardisation.from_training(
        split_modes(other, 12, 8)[0]
    )


def _canonical_gram(x_hat: np.ndarray, target: np.ndarray, m: int) -> np.ndarray:
    vectors = np.concatenate([x_hat.reshape(m, 3), target[None]], axis=0)
    return vectors @ vectors.T


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_is_the_rotated_standardised_window(dtype: torch.dtype) -> None:
    """Independent of the frame code: a rotation keeps all inner products among the window
    vectors and the target, and puts z_{t-1} on e1 and z_{t-2} in the e1-e2 plane."""
    z = _modes(frames=15, chains=3, k=2)
    m = 4
    std = Standardisation.from_training(z)
    data = WindowDataset(z, std, m, dtype=dtype)
    assert len(data) == (15 - m) * 3
    indices = torch.tensor([0, 1, 5, len(data) - 1])
    x_hat, target = data.batch(indices)
    assert x_hat.shape == (2, 4, 3 * m) and target.shape == (2, 4, 3)
    assert x_hat.dtype == dtype and target.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for b, s in enumerate(indices.tolist()):
        t, c = divmod(s, 3)
        for j in range(2):
            window = z[t : t + m, c, j] / std.sigma_z[j]
            increment = (z[t + m, c, j] - z[t + m - 1, c, j]) / std.sigma_dz[j]
            expected = _canonical_gram(window, increment, m)
            got = _canonical_gram(x_hat[j, b].double().numpy(), target[j, b].double().numpy(), m)
            np.testing.assert_allclose(got, expected, atol=tol * np.abs(expected).max())
            last, second, third = (
                x_hat[j, b].double().numpy().reshape(m, 3)[i] for i in (-1, -2, -3)
            )
            np.testing.assert_allclose(last, [np.linalg.norm(window[-1]), 0.0, 0.0], atol=tol * 10)
            assert abs(second[2]) < tol * 10 and second[1] >= -tol and third[2] >= -tol


def test_batch_gathers_exactly_the_window_of_each_sample() -> None:
    """Bitwise: each sample's (k, m, 3) window, cut out one at a time from the standardised span
    in the dataset's dtype, rotated by its own frame, is what the batch holds (the batch gather
    copies, it does not round)."""
    z = _modes(frames=30, chains=4, k=3)
    m = 5
    std = Standardisation.from_training(z)
    data = WindowDataset(z, std, m)
    indices = torch.tensor([len(data) - 1, 0, 7, 7, 13, 4 * 9 + 2])
    x_hat, target = data.batch(indices)
    z_hat = torch.as_tensor(std.standardise(z), dtype=torch.float32)
    dz_hat = torch.as_tensor(std.standardise_increment(np.diff(z, axis=0)), dtype=torch.float32)
    for b, s in enumerate(indices.tolist()):
        t, c = divmod(s, 4)
        window = z_hat[t : t + m, c].transpose(0, 1)  # (k, m, 3)
        frame = rotation_frames(window)
        assert torch.equal(x_hat[:, b], to_frame(window, frame).reshape(3, 3 * m))
        expected = to_frame(dz_hat[t + m - 1, c][:, None, :], frame)[:, 0]
        assert torch.equal(target[:, b], expected)


def test_validation_dataset_stays_inside_its_span() -> None:
    z = _modes(frames=30, chains=2)
    train, val = split_modes(z, 20, 10)
    std = Standardisation.from_training(train)
    data = WindowDataset(val, std, 4, dtype=torch.float64)
    assert len(data) == (10 - 4) * 2
    _, target = data.batch(torch.tensor([len(data) - 1]))
    increment = (z[29, 1] - z[28, 1]) / std.sigma_dz[:, None]
    np.testing.assert_allclose(
        torch.linalg.vector_norm(target[:, 0], dim=-1).numpy(), np.linalg.norm(increment, axis=-1)
    )
    _, first = data.batch(torch.tensor([0]))
    increment = (z[24, 0] - z[23, 0]) / std.sigma_dz[:, None]
    np.testing.assert_allclose(
        torch.linalg.vector_norm(first[:, 0], dim=-1).numpy(), np.linalg.norm(increment, axis=-1)
    )


def test_dataset_rejects_bad_input() -> None:
    z = _modes(frames=10, k=2)
    std = Standardisation.from_training(z)
    with pytest.raises(ValueError, match="span of 10 frames has no window of history m = 10"):
        WindowDataset(z, std, 10)
    with pytest.raises(ValueError, match="3 modes but the standardisation has 2"):
        WindowDataset(_modes(frames=10, k=3), std, 4)
    with pytest.raises(ValueError, match="m >= 3"):
        WindowDataset(z, std, 2)
    data = WindowDataset(z, std, 4)
    with pytest.raises(IndexError, match=r"indices: expected sample indices in \[0, 18\)"):
        data.batch(torch.tensor([18]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_precomputed_batches_are_the_batches_computed_on_the_fly(dtype: torch.dtype) -> None:
    """Bitwise: after ``precompute`` (chunks of 7 samples, so chunk edges fall inside batches)
    every batch, in any order and with repeats, holds what the on-the-fly rotation gives."""
    z = _modes(frames=40, chains=5, k=3)
    std = Standardisation.from_training(z)
    fresh, cached = WindowDataset(z, std, 6, dtype), WindowDataset(z, std, 6, dtype)
    cached.precompute(chunk=7)
    assert cached.rotated_nbytes == 3 * len(cached) * (3 * 6 + 3) * (
        4 if dtype == torch.float32 else 8
    )
    generator = torch.Generator().manual_seed(0)
    for indices in [torch.randperm(len(fresh), generator=generator), torch.tensor([5, 5, 0, 169])]:
        for got, expected in zip(cached.batch(indices), fresh.batch(indices), strict=True):
            assert torch.equal(got, expected)
    with pytest.raises(IndexError, match=r"indices: expected sample indices in \[0, 170\)"):
        cached.batch(torch.tensor([170]))
