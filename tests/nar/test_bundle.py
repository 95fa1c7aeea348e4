"""Tests for mlgle.nar.bundle: the model directory of the training stages and the torch files."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from nar_fixtures import TINY, stationary_ar1

from mlgle.errors import CheckpointError
from mlgle.nar.bundle import read_torch, save_torch, write_model_dir
from mlgle.nar.train import TrainedModes, fit_modes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_model_dir_holds_the_model_its_curves_and_summary(tmp_path):
    modes = stationary_ar1([0.9, 0.5], [1.0, 2.0], frames=60, chains=8, seed=3)
    trained = fit_modes(modes, TINY, progress=False)
    out = write_model_dir(tmp_path / "T1.0", trained, [1, 2], {"temperature": 1.0})
    names = sorted(p.name for p in out.iterdir())
    assert names == [".mlgle-output", "model.pt", "nll.csv", "summary.json"]
    loaded = TrainedModes.load(out / "model.pt")
    np.testing.assert_array_equal(loaded.val_nll, trained.val_nll)
    curves = pl.read_csv(out / "nll.csv")
    assert curves.columns == ["epoch", "mode", "train_nll", "val_nll"]
    assert curves.height == TINY.epochs * 2
    np.testing.assert_allclose(
        curves.sort(["epoch", "mode"])["val_nll"].to_numpy().reshape(TINY.epochs, 2),
        trained.val_nll,
        rtol=1e-12,
    )
    summary = json.loads((out / "summary.json").read_text())
    best = trained.val_nll[trained.best_epoch, [0, 1]]
    assert summary["temperature"] == 1.0 and summary["modes"] == [1, 2]
    assert summary["epochs_run"] == TINY.epochs
    assert summary["best_epoch"] == trained.best_epoch.tolist()
    np.testing.assert_allclose(summary["best_val_nll"], best, rtol=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["T1.0"]  # nothing temporary left


def test_torch_files_round_trip_and_bad_files_are_named(tmp_path):
    save_torch({"a": torch.arange(3)}, tmp_path / "ok.pt")
    torch.testing.assert_close(read_torch(tmp_path / "ok.pt")["a"], torch.arange(3))
    with pytest.raises(CheckpointError, match=r"missing\.pt: not found"):
        read_torch(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list\.pt: expected a dict payload, got list"):
        read_torch(tmp_path / "list.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"cut\.pt: cannot read torch file"):
        read_torch(tmp_path / "cut.pt")


def test_the_same_payload_gives_the_same_bytes_wherever_it_is_saved(tmp_path):
    """DVC hashes model.pt: the bytes must not depend on the (random) temporary file name."""
    payload = {"w": torch.arange(6.0).reshape(2, 3), "n": 3}
    first, second = tmp_path / "a" / "model.pt", tmp_path / "b" / "other.pt"
    save_torch(payload, first)
    save_torch(payload, second)
    assert first.read_bytes() == second.read_bytes()


def test_a_file_that_is_not_a_torch_file_is_a_checkpoint_error(tmp_path):
    """Any unreadable file, not only a truncated zip, is one CheckpointError naming it."""
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"junk\.pt: cannot read torch file"):
        read_torch(tmp_path / "junk.pt")
