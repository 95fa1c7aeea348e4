"""Tests of mlgle.pipeline.loto: the left-out temperatures and the four ``mlgle loto`` stages end
to end on Rouse chains, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlgle import stats
from mlgle.cli import main
from mlgle.config import load_params
from mlgle.errors import ConfigError
from mlgle.pipeline.loto import check_left_out, left_out_temperatures, modes_store
from mlgle.store import open_modes, write_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEMPS = (1.0, 1.25, 1.5)


def test_left_out_defaults_to_the_interior_temperatures(tiny_params, tmp_path):
    params = load_params(
        tiny_params(
            tmp_path, md={"temperatures": [1.0, 1.25, 1.5, 1.75]}, conditioned={"leave_out": []}
        )
    )
    assert left_out_temperatures(params, params.conditioned) == (1.25, 1.5)
    assert check_left_out(params, 1.25) == (1.0, 1.5, 1.75)
    for bad in (1.0, 1.75, 1.3):
        with pytest.raises(ConfigError, match="interior"):
            check_left_out(params, bad)
    config = params.conditioned.train_config(params.train)
    assert (config.epochs, config.history) == (params.conditioned.epochs, params.train.history)
    edges = load_params(tiny_params(tmp_path, md={"temperatures": [1.0, 1.5]}))
    with pytest.raises(ConfigError, match="interior"):
        left_out_temperatures(edges, edges.conditioned)  # leave_out [1.25] is not in md


def test_modes_store_checks_the_temperature(rouse_stores, tmp_path):
    stores = rouse_stores(TEMPS, 8, 6, 700, law="arrhenius", spring=1.0, seed=0)
    mapped, meta = modes_store(stores, 1.25)
    assert meta.temperature == 1.25 and mapped.shape == (700, 8, 5, 3)
    (tmp_path / "T1.5").symlink_to(stores / "T1.25")
    with pytest.raises(ConfigError, match=r"T1\.5: store holds T = 1.25, expected 1.5"):
        modes_store(tmp_path, 1.5)


@pytest.mark.slow
def test_stages_end_to_end(tiny_params, rouse_stores, evaluation_summary, tmp_path, monkeypatch,
                           capsys):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    # Rouse chains whose friction falls with T (ζ = exp(1/T), kT = T): D grows with T.
    stores = rouse_stores(TEMPS, 8, 6, 700, law="arrhenius", spring=1.0, seed=0)
    params = tiny_params(
        tmp_path,
        md={"temperatures": list(TEMPS)},
        modes={"k": 4},
        gle={"t_fit": 200},
        train={"history": 8, "t_train": 200, "t_val": 100, "hidden": [16, 16], "latent": 4,
               "batch_size": 64, "threads": 1},
        generate={"trajectories": 10, "frames": 600},
        evaluate={"d_window": [100, 300], "nacf_max_lag": 50, "nacf_modes": [1, 2]},
        conditioned={"leave_out": [1.25], "epochs": 10},
    )  # fmt: skip

    def run(*argv: str) -> int:
        return main(["loto", argv[0], "--params", str(params), *argv[1:]])

    modes_dir = ("--modes-dir", str(stores))
    assert run("train", "--leave-out", "1.25", *modes_dir, "--out", "models/T1.25",
               "--no-progress", "--no-tracking") == 0  # fmt: skip
    summary = json.loads(Path("models/T1.25/summary.json").read_text())
    assert summary["trained_on"] == [1.0, 1.5] and 1 <= summary["epochs_run"] <= 10
    assert pl.read_csv("models/T1.25/nll.csv").shape == (summary["epochs_run"] * 4, 4)

    assert run("generate", "--leave-out", "1.25", *modes_dir, "--model", "models/T1.25",
               "--out", "gen/T1.25", "--no-progress") == 0  # fmt: skip
    gen = np.load("gen/T1.25/modes.npy")
    assert gen.shape == (600, 10, 4, 3) and np.isfinite(gen).all()
    meta = json.loads(Path("gen/T1.25/meta.json").read_text())
    assert meta["initial_windows_from"]["temperature"] == 1.0  # nearest, the lower on a tie
    # Byte-reproducible (DVC hashes the directory): a second run writes the same files.
    assert run("generate", "--leave-out", "1.25", *modes_dir, "--model", "models/T1.25",
               "--out", "gen/again", "--no-progress") == 0  # fmt: skip
    for path in Path("gen/T1.25").iterdir():
        assert path.read_bytes() == (Path("gen/again") / path.name).read_bytes(), path.name
    gle = json.loads(Path("gen/T1.25/gle.json").read_text())
    for name in ("interpolate", "refit"):
        com = np.load(f"gen/T1.25/com_{name}.npy")
        assert com.shape == (600, 10, 3) and np.all(com[0] == 0)
    # The two variants share B(t): their difference is the mode term and α alone.
    b = {n: np.load(f"gen/T1.25/com_{n}.npy") / gle[n]["alpha"] for n in ("interpolate", "refit")}
    z = gen[:, :, :, :].sum(axis=2)
    for n in b:
        b[n] -= gle[n]["beta"] / gle[n]["alpha"] * (z - z[0])
    np.testing.assert_allclose(b["interpolate"], b["refit"], atol=1e-3)

    assert run("evaluate", "--leave-out", "1.25", *modes_dir, "--generated", "gen/T1.25",
               "--out", "loto/T1.25", "--no-tracking") == 0  # fmt: skip
    result = json.loads(Path("loto/T1.25/summary.json").read_text())
    # Independent recomputation of D_MD at T* (Eq. 35) from the store's C.o.M.
    t = np.arange(100, 301)
    com_md = np.asarray(open_modes(stores / "T1.25")[0][:, :, 0], dtype=float)
    d_md = np.mean(stats.msd(com_md)[t] / (6 * t))
    assert result["D_md"] == pytest.approx(d_md, rel=1e-6)
    assert result["variants"]["refit"]["D_mlgle"] > 0 and result["gle"] == "interpolate"

    # Per-temperature evaluation summaries the report compares with; one missing is named.
    write_json(Path("eval/T1.0/summary.json"), evaluation_summary(1.0, 0.01, 0.011, 0.9))
    capsys.readouterr()
    report = ("report", "--loto", "loto", "--evaluations", "eval", "--out", "reports/loto",
              "--no-tracking")  # fmt: skip
    assert run(*report) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("mlgle loto report: error: ")
    assert "eval/T1.25/summary.json: missing; `mlgle evaluate`" in line
    assert not Path("reports/loto").exists()
    for t in TEMPS:
        write_json(Path(f"eval/T{t!r}/summary.json"), evaluation_summary(t, 0.01, 0.011, 0.9))

    assert run(*report) == 0
    table = pl.read_csv("reports/loto/loto.csv")
    assert table["T"].to_list() == [1.25]
    assert table["D_md"][0] == pytest.approx(result["D_md"], rel=1e-4)
    assert Path("reports/loto/fig_d_vs_t.png").stat().st_size > 1000
    assert "| T |" in Path("reports/loto/loto.md").read_text()
