"""Tests for mlgle.nar.train: recovery of a known process, batching, resume, best epochs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from nar_fixtures import TINY

from mlgle.config import TrainConfig
from mlgle.errors import CheckpointError
from mlgle.nar import train as train_module
from mlgle.nar.model import covariance
from mlgle.nar.train import (
    EpochReport,
    TrainedModes,
    evaluate_nll,
    fit_modes,
)
from mlgle.nar.windows import WindowDataset, split_modes


def ar1(frames: int, chains: int, a: np.ndarray, s: np.ndarray, seed: int) -> np.ndarray:
    """Stationary isotropic AR(1) per mode, z_t = a z_{t-1} + s ξ_t: (frames, chains, k, 3)."""
    rng = np.random.default_rng(seed)
    a, s = np.asarray(a, dtype=float)[:, None], np.asarray(s, dtype=float)[:, None]
    z = np.empty((frames, chains, a.shape[0], 3))
    z[0] = rng.normal(size=z.shape[1:]) * s / np.sqrt(1.0 - a**2)
    for t in range(1, frames):  # inherently sequential
        z[t] = a * z[t - 1] + s * rng.normal(size=z.shape[1:])
    return z


def _states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_recovers_conditional_mean_and_covariance_of_ar1() -> None:
    """For z_t = a z_{t-1} + s ξ the standardised rotated target has mean
    (a - 1)(σ_z/σ_Δz) ẑ_{t-1} (the last vector of the rotated window) and covariance
    (s/σ_Δz)² I. Tolerances, in units of the noise std s/σ_Δz: RMS mean error < 0.1 (observed
    0.02-0.06 over four seeds; the true mean has RMS 0.39 and 1.0, so a model ignoring the
    history, or one missing the σ_z/σ_Δz factor (0.22 off for mode 0), fails); sample-averaged
    covariance within 0.05 of I (observed <= 0.031; its sampling error over ≈ 76 000 windows
    is ≈ 0.005)."""
    a, s = np.array([0.9, 0.5]), np.array([1.0, 0.3])
    config = dataclasses.replace(
        TINY, t_train=300, t_val=60, hidden=(32, 32), latent=8, batch_size=512, epochs=12
    )
    trained = fit_modes(ar1(360, 256, a, s, seed=1), config, progress=False)
    std = trained.standardisation
    test = WindowDataset(ar1(120, 64, a, s, seed=2), std, config.history)
    x_hat, _ = test.batch(torch.arange(len(test)))
    with torch.no_grad():
        params = trained.model(x_hat)
    mean = params.mean.double().numpy()
    cov = covariance(params).double().numpy()
    last = x_hat[:, :, -3:].double().numpy()
    for j in range(2):
        noise = s[j] / std.sigma_dz[j]
        expected = (a[j] - 1.0) * std.sigma_z[j] / std.sigma_dz[j] * last[j]
        error = np.sqrt(np.mean(np.sum((mean[j] - expected) ** 2, axis=-1))) / noise
        assert error < 0.1, f"mode {j}: RMS mean error {error:.3f} noise std"
        np.testing.assert_allclose(cov[j].mean(axis=0) / noise**2, np.eye(3), atol=0.05)


def test_batched_modes_equal_separate_single_mode_trainings() -> None:
    modes = ar1(60, 8, [0.9, 0.6, 0.2], [1.0, 0.5, 2.0], seed=3)
    batched = fit_modes(modes, TINY, progress=False)
    state = batched.model.state_dict()
    for j in range(3):
        single = fit_modes(modes[:, :, j : j + 1], TINY, mode_seeds=[TINY.seed + j], progress=False)
        for name, tensor in single.model.state_dict().items():
            torch.testing.assert_close(state[name][j], tensor[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(batched.train_nll[:, j], single.train_nll[:, 0], atol=1e-6)
        np.testing.assert_allclose(batched.val_nll[:, j], single.val_nll[:, 0], atol=1e-6)
        assert batched.best_epoch[j] == single.best_epoch[0]
        assert single.standardisation.sigma_z[0] == batched.standardisation.sigma_z[j]


def test_multi_tensor_adam_trains_bitwise_like_the_single_tensor_loop(monkeypatch) -> None:
    """The trainer's Adam(foreach=True) is a speed change only: the same seed gives the same
    weights and curves, bit for bit, as torch's default single-tensor Adam."""
    modes = ar1(60, 8, [0.9, 0.6], [1.0, 0.5], seed=5)
    config = dataclasses.replace(TINY, dropout=0.2)
    fast = fit_modes(modes, config, progress=False)
    monkeypatch.setattr(
        train_module,
        "adam",
        lambda model, lr: torch.optim.Adam(model.parameters(), lr=lr, foreach=False),
    )
    loop = fit_modes(modes, config, progress=False)
    assert _states_equal(fast.model.state_dict(), loop.model.state_dict())
    assert np.array_equal(fast.train_nll, loop.train_nll)
    assert np.array_equal(fast.val_nll, loop.val_nll)


def test_precomputed_windows_train_bitwise_like_windows_rotated_per_batch(monkeypatch) -> None:
    """Keeping the rotated windows is a speed change only: with PRECOMPUTE_BYTES = 0 (rotate per
    batch) the same seed gives the same weights and curves, bit for bit; and the budget decides
    whether the trainer keeps them."""
    modes = ar1(60, 8, [0.9, 0.6], [1.0, 0.5], seed=5)
    kept: list[bool] = []
    build = train_module.WindowDataset.precompute

    def spy(self, *args, **kwargs) -> None:
        kept.append(True)
        build(self, *args, **kwargs)

    monkeypatch.setattr(train_module.WindowDataset, "precompute", spy)
    cached = fit_modes(modes, TINY, progress=False)
    assert kept == [True, True]  # training and validation windows
    monkeypatch.setattr(train_module, "PRECOMPUTE_BYTES", 0)
    rotated = fit_modes(modes, TINY, progress=False)
    assert kept == [True, True]
    assert _states_equal(cached.model.state_dict(), rotated.model.state_dict())
    assert np.array_equal(cached.train_nll, rotated.train_nll)
    assert np.array_equal(cached.val_nll, rotated.val_nll)


class _Killed(RuntimeError):
    pass


def test_resume_after_kill_equals_uninterrupted_run(tmp_path: Path) -> None:
    """Dropout on, so the restored RNG state matters too."""
    modes = ar1(60, 8, [0.9, 0.5], [1.0, 1.0], seed=4)
    config = dataclasses.replace(TINY, dropout=0.3, epochs=4)
    reference = fit_modes(modes, config, progress=False)

    def kill_after_epoch_1(report: EpochReport) -> None:
        if report.epoch == 1:
            raise _Killed

    checkpoint = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(_Killed):
        fit_modes(modes, config, callback=kill_after_epoch_1, checkpoint=checkpoint, progress=False)
    assert checkpoint.exists()
    assert not [p for p in checkpoint.parent.iterdir() if p.suffix == ".tmp"]
    epochs_run: list[int] = []
    resumed = fit_modes(
        modes,
        config,
        callback=lambda r: epochs_run.append(r.epoch),
        checkpoint=checkpoint,
        progress=False,
    )
    assert epochs_run == [2, 3]
    assert _states_equal(resumed.model.state_dict(), reference.model.state_dict())
    np.testing.assert_array_equal(resumed.train_nll, reference.train_nll)
    np.testing.assert_array_equal(resumed.val_nll, reference.val_nll)
    np.testing.assert_array_equal(resumed.best_epoch, reference.best_epoch)
    # a finished checkpoint returns the same result without training again
    again = fit_modes(
        modes, config, callback=epochs_run.append, checkpoint=checkpoint, progress=False
    )
    assert epochs_run == [2, 3]
    assert _states_equal(again.model.state_dict(), reference.model.state_dict())


def test_a_checkpoint_of_other_settings_is_set_aside_and_training_starts_fresh(
    tmp_path: Path, capsys
) -> None:
    modes = ar1(60, 8, [0.9], [1.0], seed=5)
    checkpoint = tmp_path / "checkpoint.pt"
    fit_modes(modes, dataclasses.replace(TINY, epochs=1), checkpoint=checkpoint, progress=False)
    other = dataclasses.replace(TINY, lr=1e-2)
    resumed = fit_modes(modes, other, checkpoint=checkpoint, progress=False)
    fresh = fit_modes(modes, other, progress=False)
    err = capsys.readouterr().err
    assert "other train settings (lr)" in err and err.count("\n") == 1
    assert len(list(tmp_path.glob("checkpoint.pt.stale-*"))) == 1  # set aside, not deleted
    np.testing.assert_array_equal(resumed.train_nll, fresh.train_nll)  # started from scratch


def _overfitting_run(
    tmp_path: Path, patience: int
) -> tuple[TrainedModes, dict[int, dict[str, torch.Tensor]], np.ndarray, TrainConfig]:
    """Few chains, a wide net and a high rate: the two modes overfit at different epochs.
    A callback reads the per-epoch checkpoint to record the weights after every epoch."""
    modes = ar1(120, 4, [0.95, 0.0], [1.0, 1.0], seed=0)
    config = dataclasses.replace(
        TINY, t_train=60, t_val=60, hidden=(64, 64), latent=8, batch_size=16, epochs=15,
        dropout=0.1, patience=patience,
    )  # fmt: skip
    checkpoint = tmp_path / f"patience{patience}.pt"
    weights: dict[int, dict[str, torch.Tensor]] = {}

    def record(report: EpochReport) -> None:
        weights[report.epoch] = torch.load(checkpoint, weights_only=True)["model"]

    trained = fit_modes(modes, config, callback=record, checkpoint=checkpoint, progress=False)
    return trained, weights, modes, config


def test_best_epoch_is_chosen_per_mode(tmp_path: Path) -> None:
    trained, weights, modes, config = _overfitting_run(tmp_path, patience=0)
    best = trained.best_epoch
    assert best[0] != best[1], "setup should make the modes' minima fall in different epochs"
    np.testing.assert_array_equal(best, np.argmin(trained.val_nll, axis=0))
    for name, tensor in trained.model.state_dict().items():
        for j in range(2):
            assert torch.equal(tensor[j], weights[int(best[j])][name][j]), (name, j)
    # the returned model's validation NLL (eval mode, dropout off) is each mode's minimum
    _, val_span = split_modes(modes, config.t_train, config.t_val)
    val = WindowDataset(val_span, trained.standardisation, config.history)
    np.testing.assert_allclose(
        evaluate_nll(trained.model, val), trained.val_nll.min(axis=0), rtol=1e-6
    )


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path: Path) -> None:
    full, _, _, _ = _overfitting_run(tmp_path, patience=0)
    stopped, _, _, config = _overfitting_run(tmp_path, patience=2)
    epochs_run = stopped.val_nll.shape[0]
    assert epochs_run < config.epochs
    assert epochs_run == stopped.best_epoch.max() + 1 + config.patience
    np.testing.assert_array_equal(stopped.val_nll, full.val_nll[:epochs_run])
    # the stopped run had not improved on any mode in its last `patience` epochs
    best_before = full.val_nll[: epochs_run - config.patience].min(axis=0)
    assert np.all(full.val_nll[epochs_run - config.patience : epochs_run] >= best_before)


def test_sigma_and_training_ignore_validation_data() -> None:
    modes = ar1(60, 8, [0.9, 0.5], [1.0, 1.0], seed=6)
    changed = modes.copy()
    changed[TINY.t_train :] *= 3.0
    a = fit_modes(modes, TINY, progress=False)
    b = fit_modes(changed, TINY, progress=False)
    assert a.standardisation == b.standardisation
    np.testing.assert_array_equal(a.train_nll, b.train_nll)
    assert not np.allclose(a.val_nll, b.val_nll)


def test_without_validation_keeps_last_weights(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, t_val=0, patience=1)
    checkpoint = tmp_path / "checkpoint.pt"
    trained = fit_modes(
        ar1(40, 8, [0.9], [1.0], seed=7), config, checkpoint=checkpoint, progress=False
    )
    assert np.isnan(trained.val_nll).all() and trained.val_nll.shape == (config.epochs, 1)
    np.testing.assert_array_equal(trained.best_epoch, [config.epochs - 1])
    last = torch.load(checkpoint, weights_only=True)["model"]
    assert _states_equal(trained.model.state_dict(), last)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    modes = ar1(60, 8, [0.9, 0.5], [1.0, 1.0], seed=8)
    trained = fit_modes(modes, dataclasses.replace(TINY, dropout=0.2), progress=False)
    path = tmp_path / "models" / "nar.pt"
    trained.save(path)
    loaded = TrainedModes.load(path)
    assert not loaded.model.training
    assert _states_equal(loaded.model.state_dict(), trained.model.state_dict())
    assert loaded.model.config() == trained.model.config()
    assert loaded.standardisation == trained.standardisation
    assert loaded.history == trained.history and loaded.config == trained.config
    np.testing.assert_array_equal(loaded.train_nll, trained.train_nll)
    np.testing.assert_array_equal(loaded.val_nll, trained.val_nll)
    np.testing.assert_array_equal(loaded.best_epoch, trained.best_epoch)
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a saved TrainedModes"):
        TrainedModes.load(tmp_path / "other.pt")


def test_errors_name_the_setting() -> None:
    modes = ar1(50, 4, [0.9], [1.0], seed=9)
    with pytest.raises(ValueError, match=r"50 frames .* t_train \(40\) \+ t_val \(20\) = 60"):
        fit_modes(modes, TINY, progress=False)
    with pytest.raises(ValueError, match=r"history \(m = 40\) must be < train.t_train \(40\)"):
        fit_modes(modes, dataclasses.replace(TINY, history=40, t_val=0), progress=False)
    with pytest.raises(ValueError, match=r"train.history \(m = 8\) must be < train.t_val \(8\)"):
        fit_modes(modes, dataclasses.replace(TINY, history=8, t_val=8), progress=False)
    with pytest.raises(ValueError, match="mode_seeds: expected 1 seeds"):
        fit_modes(ar1(60, 4, [0.9], [1.0], 9), TINY, mode_seeds=[1, 2], progress=False)
    with pytest.raises(ValueError, match=r"modes: expected shape \(frames, chains, k, 3\)"):
        fit_modes(np.zeros((60, 4, 3)), TINY, progress=False)
