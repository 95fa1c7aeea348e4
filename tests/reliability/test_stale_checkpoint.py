"""A checkpoint left by a killed run with other settings never blocks retraining (issue 15, item
4): it is set aside with a one-line notice and training starts afresh."""

from __future__ import annotations

import dataclasses

import torch
from reliability_helpers import modes_store, run

from mlgle.config import load_params
from mlgle.nar.train import fit_modes
from mlgle.store import read_modes


def _weights(model_dir):
    return torch.load(model_dir / "model.pt", weights_only=True)["state_dict"]


def test_a_checkpoint_of_other_settings_is_set_aside(tmp_path, tiny_params, capsys):
    params = tiny_params(tmp_path, train={"epochs": 1})
    modes = modes_store(tmp_path / "modes")
    cfg = load_params(params).train
    # what a killed `mlgle train` with another learning rate leaves behind
    checkpoint = tmp_path / ".model.checkpoint.pt"
    z, _ = read_modes(modes)
    slow = z[: cfg.t_train + cfg.t_val, :, 1:5]
    fit_modes(slow, dataclasses.replace(cfg, lr=1e-2), checkpoint=checkpoint, progress=False)
    assert checkpoint.is_file()
    base = ["train", "--params", params, "--modes", modes, "--no-progress", "--no-tracking"]
    code, lines = run([*base, "--out", tmp_path / "model"], capsys)
    assert code == 0
    (notice,) = (line for line in lines if "notice" in line)
    (aside,) = tmp_path.glob(".model.checkpoint.pt.stale-*")
    assert f"{checkpoint}: the checkpoint was written with other train settings (lr)" in notice
    assert str(aside) in notice and "training from scratch" in notice
    assert not checkpoint.exists()  # the fresh run's own checkpoint is removed on success
    # the run started afresh: the same weights as a run that never saw a checkpoint
    code, lines = run([*base, "--out", tmp_path / "fresh"], capsys)
    assert code == 0 and not any("notice" in line for line in lines)
    fresh, got = _weights(tmp_path / "fresh"), _weights(tmp_path / "model")
    assert all(torch.equal(fresh[name], got[name]) for name in fresh)


def test_an_unreadable_checkpoint_is_set_aside(tmp_path, capsys):
    z, _ = read_modes(modes_store(tmp_path / "modes"))
    cfg = load_params_tiny()
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"cut short by a full disk")
    fitted = fit_modes(z[:300, :, 1:3], cfg, checkpoint=checkpoint, progress=False)
    assert fitted.train_nll.shape == (cfg.epochs, 2)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"mlgle: notice: {checkpoint}: cannot read torch file")
    (aside,) = tmp_path.glob("checkpoint.pt.stale-*")
    assert aside.read_bytes() == b"cut short by a full disk"


def load_params_tiny():
    from mlgle.config import TrainConfig

    return TrainConfig(history=4, t_train=200, t_val=100, hidden=(4,), latent=2, epochs=1,
                       patience=0, threads=1)  # fmt: skip
