"""Every stage of mlgle.pipeline, end to end, on a tiny melt through the command line, in a
temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from mlgle import stats
from mlgle.cli import main
from mlgle.store import open_modes, open_trajectory


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_params) -> Path:
    """A directory holding the tiny params.yaml (conftest's sizes: 10 chains x 8 beads at T = 1,
    800 production frames of Δt = 0.1, k = 4 modes, 2 epochs, 12 generated chains x 500 frames)."""
    root = tmp_path_factory.mktemp("pipeline")
    # GLE lags 0.1-2 τ: at the default {1, m/2, m} = 0.1-0.8 τ the slow modes alone explain the
    # C.o.M MSD of this melt and fit-gle rejects the degenerate fit (α = 0).
    tiny_params(
        root, tracking={"uri": "sqlite:///mlflow.db", "experiment": "tiny"},
        gle={"points": [1, 10, 20]},
    )  # fmt: skip
    return root


def assert_stream_equals_in_memory(workdir: Path, gen: np.ndarray, com: np.ndarray) -> None:
    from mlgle.config import load_params
    from mlgle.gle import brownian_rng
    from mlgle.nar.generate import generate_modes, initial_windows
    from mlgle.nar.train import TrainedModes
    from mlgle.store import read_gle, read_modes

    params = load_params(workdir / "params.yaml")
    trained = TrainedModes.load(Path("experiments/models/T1.0/model.pt"))
    z, _ = read_modes("data/modes/T1.0")
    cfg, k = params.generate, trained.model.modes
    initial = initial_windows(
        z[:, :, 1 : k + 1], params.train.t_train, trained.history, cfg.trajectories, cfg.seed
    )
    std = trained.standardisation
    threads = torch.get_num_threads()
    torch.set_num_threads(params.train.threads)  # as the stage runs it
    try:
        modes = generate_modes(
            trained.model, std.sigma_z, std.sigma_dz, initial, cfg.frames, cfg.seed, False
        )
    finally:
        torch.set_num_threads(threads)
    x = read_gle(Path("experiments/gle/T1.0.json")).generate_com(modes, brownian_rng(cfg.seed))
    np.testing.assert_array_equal(gen, modes)
    np.testing.assert_array_equal(com, x.astype(np.float32))


def run(workdir: Path, *argv: str) -> None:
    assert main([argv[0], "--params", str(workdir / "params.yaml"), *argv[1:]]) == 0


@pytest.mark.lammps
@pytest.mark.slow
def test_every_stage_end_to_end(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    run(workdir, "simulate", "--temperature", "1.0", "--out", "data/md/T1.0", "--no-progress")
    positions, meta = open_trajectory("data/md/T1.0")
    assert positions.shape == (801, 10, 8, 3) and meta.dt == pytest.approx(0.1)

    run(workdir, "modes", "--trajectory", "data/md/T1.0", "--out", "data/modes/T1.0")
    modes, _ = open_modes("data/modes/T1.0")
    assert modes.shape == (801, 10, 5, 3)
    np.testing.assert_allclose(modes[:, :, 0], positions.mean(axis=2), atol=1e-5)

    run(workdir, "analyze-md", "--modes", "data/modes/T1.0", "--trajectory", "data/md/T1.0",
        "--out", "reports/md/T1.0")
    md = json.loads(Path("reports/md/T1.0/summary.json").read_text())
    assert md["D_md"] > 0 and 0.9 < md["bond_length"] < 1.1

    run(workdir, "fit-gle", "--modes", "data/modes/T1.0", "--out", "experiments/gle/T1.0.json")
    gle = json.loads(Path("experiments/gle/T1.0.json").read_text())
    assert gle["D_gle"] == pytest.approx(gle["alpha"] ** 2 / 2)
    assert gle["points"] == [1, 10, 20] and gle["alpha"] > 0

    run(workdir, "train", "--modes", "data/modes/T1.0", "--out", "experiments/models/T1.0",
        "--no-progress")
    curves = pl.read_csv("experiments/models/T1.0/nll.csv")
    assert curves.shape == (2 * 4, 4)
    assert Path("mlflow.db").exists()
    assert not list(Path("experiments/models").glob(".*checkpoint*"))

    run(workdir, "generate", "--model", "experiments/models/T1.0", "--modes", "data/modes/T1.0",
        "--gle", "experiments/gle/T1.0.json", "--out", "experiments/generated/T1.0",
        "--no-progress")
    gen = np.load("experiments/generated/T1.0/modes.npy")
    com = np.load("experiments/generated/T1.0/com.npy")
    assert gen.shape == (500, 12, 4, 3) and com.shape == (500, 12, 3)
    assert np.isfinite(gen).all() and np.all(com[0] == 0)
    # The stage streams both arrays to disk in frame blocks; the in-memory path (Alg. 1 into one
    # array, then Eq. 13 on all of it) gives the same files to the last bit.
    assert_stream_equals_in_memory(workdir, gen, com)

    run(workdir, "evaluate", "--modes", "data/modes/T1.0", "--generated",
        "experiments/generated/T1.0", "--gle", "experiments/gle/T1.0.json",
        "--out", "experiments/evaluation/T1.0")
    summary = json.loads(Path("experiments/evaluation/T1.0/summary.json").read_text())
    # Independent recomputation of one Table 1 cell: D_ML-GLE from the generated C.o.M (Eq. 35).
    t = np.arange(100, 301)
    d_direct = np.mean(stats.msd(com.astype(np.float64))[t] / (6 * t * 0.1))
    assert summary["D_mlgle"] == pytest.approx(d_direct, rel=1e-9)
    assert 0.0 <= summary["nacf_band_fraction"] <= 1.0

    run(workdir, "report", "--evaluations", "experiments/evaluation", "--models",
        "experiments/models", "--md-reports", "reports/md", "--out", "reports")
    metrics = json.loads(Path("reports/metrics.json").read_text())
    row = metrics["temperatures"]["1.0"]
    assert row["D_mlgle"] == summary["D_mlgle"]
    assert metrics["summary"]["mare_mlgle"] == pytest.approx(
        abs(summary["D_mlgle"] - summary["D_md"]) / summary["D_md"]
    )
    table = pl.read_csv("reports/table1.csv")
    assert table["D_md"][0] == pytest.approx(summary["D_md"], rel=1e-4)
    for name in ("fig05_mode_correlation", "fig06_mode_acf_fits", "fig09_nacf",
                 "fig13_mlgle_msd", "fig14_diffusion", "fig16_com_increment_pdfs"):
        assert Path(f"reports/figures/{name}.png").stat().st_size > 1000

    assert main(["reconstruct", "--generated", "experiments/generated/T1.0", "--beads", "8",
                 "--out", "recon.xyz", "--every", "100", "--chains", "2"]) == 0
    lines = Path("recon.xyz").read_text().splitlines()
    assert lines[0] == "16" and len(lines) == 5 * (16 + 2)
