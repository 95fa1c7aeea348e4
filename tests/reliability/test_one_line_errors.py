"""Ordinary mistakes are one line naming the file or option, exit code 2, no traceback, nothing
written (issue 15, items 3 and 6); Ctrl-C is exit code 130."""

from __future__ import annotations

import pytest
import torch
from reliability_helpers import error_line, leftovers, modes_store, run, snapshot

from mlgle.config import TrainConfig
from mlgle.nar.bundle import write_model_dir
from mlgle.nar.train import fit_modes
from mlgle.store import TrajectoryMeta, read_modes, write_modes

FIG11 = {
    "metric": "d_gle_sq_error",
    "direction": "minimize",
    "sampler": "grid",
    "space": {"t_fit": {"type": "categorical", "choices": [100, 300]}},
}


@pytest.fixture
def work(tmp_path, tiny_params):
    """tmp_path with params.yaml and a modes store ``modes`` (600 frames, k = 4)."""
    tiny_params(tmp_path)
    modes_store(tmp_path / "modes")
    return tmp_path


@pytest.mark.parametrize("value", ["-1", "0", "inf", "nan"])
def test_import_refuses_a_temperature_that_is_not_positive(tmp_path, value, capsys):
    dump = tmp_path / "run.dump"
    dump.write_text("ITEM: TIMESTEP\n0\n")
    argv = ["import", dump, "--out", tmp_path / "T", "--dt", 1, f"--temperature={value}"]
    assert "error: --temperature: must be a positive" in error_line(argv, capsys, "import")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.dump"]


@pytest.mark.parametrize("value", ["-1", "0", "inf"])
def test_simulate_refuses_a_temperature_that_is_not_positive(work, value, capsys):
    before = snapshot(work)
    argv = ["simulate", "--params", work / "params.yaml", f"--temperature={value}",
            "--out", work / "md", "--no-progress"]  # fmt: skip
    assert "(--temperature)" in error_line(argv, capsys, "simulate")
    assert snapshot(work) == before


@pytest.mark.lammps
def test_a_lammps_failure_is_its_error_line_and_the_log(tmp_path, tiny_params, capsys):
    """dt = 5 τ blows the melt apart at once; the log keeps the details."""
    params = tiny_params(tmp_path, md={"timestep": 5.0, "ranks": 1, "equilibration_steps": 100})
    out = tmp_path / "T1.0"
    argv = ["simulate", "--params", params, "--temperature", 1.0, "--out", out, "--no-progress"]
    line = error_line(argv, capsys, "simulate")
    log = tmp_path / "T1.0.work" / "seg_0000.log"
    assert "LAMMPS failed (exit code" in line and "ERROR" in line and line.endswith(f"see {log}")
    assert log.is_file() and "ERROR" in log.read_text()
    assert not out.exists() and not leftovers(tmp_path)


def test_too_few_frames_name_the_store_and_the_keys(tmp_path, tiny_params, capsys):
    params = tiny_params(tmp_path)
    modes_store(tmp_path / "short", frames=50)
    argv = ["train", "--params", params, "--modes", tmp_path / "short", "--out", tmp_path / "m",
            "--no-progress", "--no-tracking"]  # fmt: skip
    assert "train.t_train + train.t_val" in error_line(argv, capsys, "train")
    argv = ["fit-gle", "--params", params, "--modes", tmp_path / "short", "--out", tmp_path / "g"]
    assert "gle.t_fit = 200 exceeds the 50 frames" in error_line(argv, capsys, "fit-gle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "short"]


def test_generate_and_evaluate_name_a_missing_or_mismatched_input(work, capsys):
    params, modes = work / "params.yaml", work / "modes"
    assert run(["fit-gle", "--params", params, "--modes", modes, "--out", work / "gle.json"],
               capsys)[0] == 0  # fmt: skip
    z, _ = read_modes(modes)
    config = TrainConfig(history=4, t_train=200, t_val=0, hidden=(4,), latent=2, epochs=1,
                         patience=0, threads=1)  # fmt: skip
    write_model_dir(work / "k2", fit_modes(z[:200, :, 1:3], config, progress=False), [1, 2], {})
    before = snapshot(work)
    base = ["generate", "--params", params, "--modes", modes, "--out", work / "gen",
            "--no-progress"]  # fmt: skip
    line = error_line([*base, "--model", work / "nosuch", "--gle", work / "gle.json"], capsys,
                      "generate")  # fmt: skip
    assert f"{work / 'nosuch' / 'model.pt'}: not found" in line
    line = error_line([*base, "--model", work / "k2", "--gle", work / "gle.json"], capsys,
                      "generate")  # fmt: skip
    assert "field 'k' = 4" in line and "k = 2" in line
    base = ["evaluate", "--params", params, "--modes", modes, "--out", work / "ev",
            "--no-tracking"]  # fmt: skip
    line = error_line([*base, "--generated", work / "nosuch", "--gle", work / "gle.json"],
                      capsys, "evaluate")  # fmt: skip
    assert str(work / "nosuch") in line and "not found" in line
    assert snapshot(work) == before and not leftovers(work)


def test_a_degenerate_gle_fit_names_the_lags(tmp_path, tiny_params, capsys):
    """C.o.M = mode 1: the slow mode explains the whole C.o.M MSD, α = 0 (D_GLE = 0)."""
    params = tiny_params(tmp_path)
    modes, _ = read_modes(modes_store(tmp_path / "full", k=1))
    modes[:, :, 0] = modes[:, :, 1]
    meta = TrajectoryMeta(1.0, 1.0, 16, 6, 600, source="rouse")
    write_modes(tmp_path / "modes", modes, meta)
    out = tmp_path / "gle.json"
    argv = ["fit-gle", "--params", params, "--modes", tmp_path / "modes", "--out", out]
    line = error_line(argv, capsys, "fit-gle")
    assert "degenerate GLE fit" in line and "α = 0" in line
    assert "[1, 4, 8] from train.history = 8" in line and "set gle.points to longer lags" in line
    assert not out.exists()


def test_a_study_that_does_not_exist_is_named(tmp_path, tiny_params, rouse_stores, capsys):
    stores = rouse_stores((1.0,), 16, 6, 600, seed=11)
    params = tiny_params(tmp_path, sweep={"storage": "", "studies": {"fig11_tfit": FIG11}})
    argv = ["sweep", "--study", "nosuch", "--params", params, "--modes-dir", stores,
            "--out", tmp_path / "sweeps", "--no-tracking"]  # fmt: skip
    line = error_line(argv, capsys, "sweep")
    assert "no study 'nosuch' in sweep.studies (known: fig11_tfit)" in line


@pytest.mark.parametrize("password", ["", ":hunter22"])
def test_an_unreachable_storage_is_one_line_without_its_password(
    tmp_path, tiny_params, rouse_stores, password, capsys
):
    stores = rouse_stores((1.0,), 16, 6, 600, seed=11)
    params = tiny_params(
        tmp_path,
        md={"temperatures": [1.0]},
        gle={"t_fit": 300},
        evaluate={"d_window": [50, 150]},
        sweep={"storage": "", "studies": {"fig11_tfit": FIG11}},
    )
    url = f"postgresql://nobody{password}@127.0.0.1:1/x"
    argv = ["sweep", "--study", "fig11_tfit", "--params", params, "--modes-dir", stores,
            "--out", tmp_path / "sweeps", "--no-tracking", "--storage", url]  # fmt: skip
    line = error_line(argv, capsys, "sweep")
    assert "--storage postgresql://nobody" in line and "cannot open the study storage" in line
    assert "hunter22" not in line
    assert not (tmp_path / "sweeps").exists()


def test_ctrl_c_is_exit_code_130_and_releases_the_output(work, monkeypatch, capsys):
    import mlgle.pipeline.fit_gle as stage

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "fit_gle", interrupted)
    argv = ["fit-gle", "--params", work / "params.yaml", "--modes", work / "modes",
            "--out", work / "gle.json"]  # fmt: skip
    code, lines = run(argv, capsys)
    assert code == 130 and lines == [
        "mlgle fit-gle: interrupted; outputs already written are intact"
    ]
    assert not leftovers(work) and not (work / "gle.json").exists()


def test_a_corrupt_model_file_is_one_line(work, capsys):
    """A library's multi-line message (torch.load's) still ends up as one line."""
    (work / "model").mkdir()
    (work / "model" / "model.pt").write_bytes(b"not a torch file")
    argv = ["generate", "--params", work / "params.yaml", "--model", work / "model",
            "--modes", work / "modes", "--gle", work / "gle.json", "--out", work / "gen",
            "--no-progress"]  # fmt: skip
    line = error_line(argv, capsys, "generate")
    assert f"{work / 'model' / 'model.pt'}: cannot read torch file" in line
    assert not (work / "gen").exists() and not leftovers(work)


def test_a_diverging_model_is_one_line_and_writes_nothing(work, capsys):
    """Non-finite generated modes (a diverged network) name the model, the mode and the frame."""
    import torch

    params, modes = work / "params.yaml", work / "modes"
    assert run(["fit-gle", "--params", params, "--modes", modes, "--out", work / "gle.json"],
               capsys)[0] == 0  # fmt: skip
    z, _ = read_modes(modes)
    config = TrainConfig(history=4, t_train=200, t_val=0, hidden=(4,), latent=2, epochs=1,
                         patience=0, threads=1)  # fmt: skip
    trained = fit_modes(z[:200, :, 1:5], config, progress=False)
    with torch.no_grad():
        for weight in trained.model.parameters():
            weight.fill_(float("nan"))
    write_model_dir(work / "model", trained, [1, 2, 3, 4], {})
    argv = ["generate", "--params", params, "--model", work / "model", "--modes", modes,
            "--gle", work / "gle.json", "--out", work / "gen", "--no-progress"]  # fmt: skip
    line = error_line(argv, capsys, "generate")
    assert f"{work / 'model' / 'model.pt'}: generated mode 1 is not finite from frame" in line
    assert not (work / "gen").exists() and not leftovers(work)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
@pytest.mark.parametrize("stage", ["train", "generate"])
def test_cuda_without_a_gpu_is_one_line_naming_the_key(tmp_path, tiny_params, capsys, stage):
    params = tiny_params(tmp_path, **{stage: {"device": "cuda"}})
    modes_store(tmp_path / "modes")
    argv = {
        "train": ["train", "--modes", tmp_path / "modes", "--no-tracking"],
        "generate": ["generate", "--modes", tmp_path / "modes", "--model", tmp_path / "model",
                     "--gle", tmp_path / "gle.json"],
    }[stage]  # fmt: skip
    line = error_line([*argv, "--params", params, "--out", tmp_path / "out", "--no-progress"],
                      capsys, stage)  # fmt: skip
    assert f"{stage}.device: cuda was asked" in line and "auto or cpu" in line
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
