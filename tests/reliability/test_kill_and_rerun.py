"""Fault injection (issue 15): each stage's process is killed with SIGKILL at a random point of a
tiny run, then run again; the output equals that of an uninterrupted run, and nothing the killed
run left behind (temporary outputs, a set-aside previous output, its lock) survives the rerun.

The per-temperature stages run on one Rouse store; ``import``, ``report``, the budget stages and
the four ``loto`` stages on Rouse stores at three temperatures. ``mlgle simulate`` has the same
test against LAMMPS (tests/md/test_melt.py) and ``mlgle sweep`` its interrupted-grid test
(tests/sweep/test_studies.py).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_helpers import leftovers, modes_store, rouse_positions, trajectory_store

from mlgle.cli import main
from mlgle.store import write_json

MLGLE = Path(sys.executable).with_name("mlgle")
# Fields that hold wall-clock seconds or where the run happened, not results.
VOLATILE = ("seconds", "elapsed", "wall", "time_s", "started", "host")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_params) -> Path:
    """A directory with params.yaml, a trajectory store, its modes, a GLE fit, a model and a
    generated ensemble, each made by the CLI in-process."""
    root = tmp_path_factory.mktemp("kill")
    params = tiny_params(root, train={"epochs": 4, "patience": 0})
    trajectory_store(root / "traj")
    modes_store(root / "modes")
    common = ["--params", params]
    for argv in (
        ["fit-gle", *common, "--modes", root / "modes", "--out", root / "gle.json"],
        ["train", *common, "--modes", root / "modes", "--out", root / "model", "--no-progress",
         "--no-tracking"],
        ["generate", *common, "--model", root / "model", "--modes", root / "modes", "--gle",
         root / "gle.json", "--out", root / "gen", "--no-progress"],
    ):  # fmt: skip
        assert main([str(a) for a in argv]) == 0, argv
    return root


def _stages(root: Path) -> dict[str, list]:
    """Stage name -> argv after the output option's value is appended (``--out OUT``)."""
    p = ["--params", root / "params.yaml"]
    modes, gle, model, gen = root / "modes", root / "gle.json", root / "model", root / "gen"
    return {
        "modes": ["modes", *p, "--trajectory", root / "traj"],
        "analyze-md": ["analyze-md", *p, "--modes", modes, "--trajectory", root / "traj"],
        "fit-gle": ["fit-gle", *p, "--modes", modes],
        "train": ["train", *p, "--modes", modes, "--no-progress", "--no-tracking"],
        "generate": ["generate", *p, "--model", model, "--modes", modes, "--gle", gle,
                     "--no-progress"],
        "evaluate": ["evaluate", *p, "--modes", modes, "--generated", gen, "--gle", gle,
                     "--no-tracking"],
        "linear-ar": ["linear-ar", *p, "--modes", modes, "--gle", gle, "--no-tracking"],
        "reconstruct": ["reconstruct", "--generated", gen, "--beads", "6", "--chains", "3"],
    }  # fmt: skip


def _run(argv: list, out: Path, kill_after: float | None = None) -> tuple[int, float]:
    """Run ``mlgle argv --out out`` in a new process -> (exit code, seconds); SIGKILL it after
    ``kill_after`` seconds if it still runs then (exit code -9). A failure fails the test."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(MLGLE), *map(str, argv), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    err = proc.stderr.read()
    assert "Traceback" not in err and proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode, time.perf_counter() - start


def _content(path: Path) -> dict[str, object]:
    """Every file under ``path`` (or ``path`` itself) -> comparable content: arrays exactly,
    JSON without wall-clock fields, other files as bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out: dict[str, object] = {}
    for f in files:
        name = f.name if f == path else str(f.relative_to(path))
        if f.suffix == ".npy":
            out[name] = np.load(f).tobytes()
        elif f.suffix == ".npz":
            with np.load(f) as data:
                out[name] = {k: data[k].tobytes() for k in data.files}
        elif f.suffix == ".pt":  # torch's zip archive is not byte-stable: compare the tensors
            out[name] = _tensors(torch.load(f, map_location="cpu", weights_only=False))
        elif f.suffix == ".json":
            out[name] = _strip(json.loads(f.read_text()))
        else:
            out[name] = f.read_bytes()
    return out


def _tensors(value):
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), tuple(value.shape), value.numpy().tobytes())
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items() if not any(w in k for w in VOLATILE)}
    if isinstance(value, (list, tuple)):
        return [_tensors(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tobytes()
    return value


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not any(w in k for w in VOLATILE)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


OUTPUT_NAMES = {"fit-gle": "gle.json", "reconstruct": "chains.xyz"}


def _kill_and_rerun(
    argv: list, name: str, seed: str, tmp_path: Path, per_file: bool = False
) -> None:
    """Run ``argv`` to a reference output, kill a second run at a random point (seeded by
    ``seed``), rerun it: the output equals the reference and no leftovers remain. A stage that
    replaces its output directory as a whole leaves, when killed, none or all of it; one that
    writes files into a shared directory (``per_file``: the report stages, whose DVC outs are
    single files beside other stages' outputs) leaves each visible file absent or complete."""
    reference, out = tmp_path / "reference" / name, tmp_path / "killed" / name
    out.parent.mkdir()  # a kill before the stage made its output's parent leaves it as it was
    code, seconds = _run(argv, reference)
    assert code == 0
    rng = random.Random(seed)  # a random point, the same one on every run of the suite
    for attempt in range(4):  # a run that finished before its kill point is tried again earlier
        code, _ = _run(argv, out, kill_after=rng.uniform(0.3, 0.95) * seconds / 2**attempt)
        if code == -signal.SIGKILL:
            break
        assert code == 0
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    assert code == -signal.SIGKILL, "the stage finished before every kill point"
    if per_file and out.exists():
        done, full = _visible(_content(out)), _content(reference)
        assert {f: done[f] for f in done} == {f: full.get(f) for f in done}
    elif out.exists():  # killed after the output was renamed into place: it must be complete
        assert _content(out) == _content(reference)
    visible = [p for p in out.parent.iterdir() if not p.name.startswith(".")]
    assert visible in ([], [out])  # nothing half-written under a visible name
    code, _ = _run(argv, out)
    assert code == 0
    assert _content(out) == _content(reference)
    assert not leftovers(out.parent), leftovers(out.parent)


def _visible(content: dict[str, object]) -> dict[str, object]:
    return {f: v for f, v in content.items() if not any(p.startswith(".") for p in Path(f).parts)}


@pytest.mark.parametrize("stage", list(_stages(Path())))
def test_a_killed_stage_reruns_to_the_uninterrupted_output(inputs, stage, tmp_path):
    _kill_and_rerun(_stages(inputs)[stage], OUTPUT_NAMES.get(stage, "out"), stage, tmp_path)


TEMPS = (1.0, 1.25, 1.5)


def _dump(path: Path, positions: np.ndarray) -> Path:
    """A LAMMPS text dump (id mol xu yu zu) of positions (frames, chains, beads, 3)."""
    frames, chains, beads, _ = positions.shape
    ids = np.arange(1, chains * beads + 1)
    with path.open("w") as f:
        for t in range(frames):
            f.write(f"ITEM: TIMESTEP\n{100 * t}\nITEM: NUMBER OF ATOMS\n{ids.size}\n")
            f.write("ITEM: BOX BOUNDS pp pp pp\n" + "0 50\n" * 3 + "ITEM: ATOMS id mol xu yu zu\n")
            rows = np.column_stack([ids, (ids - 1) // beads + 1, positions[t].reshape(-1, 3)])
            np.savetxt(f, rows, fmt=["%d", "%d", "%.6f", "%.6f", "%.6f"])
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_params, rouse_stores, evaluation_summary) -> Path:
    """Inputs of the study-level stages: a LAMMPS dump; Rouse stores at 1.0, 1.25, 1.5; at 1.0
    a GLE fit, linear AR, MD report, a budget ML-GLE point and the default evaluation and model;
    a LOTO model, ensemble and evaluation at 1.25 and evaluation summaries at every T."""
    root = tmp_path_factory.mktemp("kill_study")
    stores = rouse_stores(TEMPS, 8, 6, 700, law="arrhenius", spring=1.0, seed=0)
    (root / "modes").symlink_to(stores)
    sections = dict(
        gle={"t_fit": 200},
        train={"epochs": 2, "patience": 0},
        generate={"trajectories": 6, "frames": 400},
        evaluate={"d_window": [100, 300], "nacf_max_lag": 50, "nacf_modes": [1, 2]},
        conditioned={"leave_out": [1.25], "epochs": 2},
        budget={"t_trains": [100, 200], "segments": 2, "mlgle_t_trains": [100],
                "temperature": 1.0},
    )  # fmt: skip
    tiny_params(root, md={"temperatures": list(TEMPS)}, **sections)
    tiny_params(root, "params_1t.yaml", md={"temperatures": [1.0]}, **sections)  # report
    _dump(root / "run.dump", rouse_positions(chains=8, beads=6, frames=300))
    t1 = stores / "T1.0"
    p = ["--params", root / "params.yaml"]
    steps = [
        ["fit-gle", *p, "--modes", t1, "--out", root / "gle.json"],
        ["linear-ar", *p, "--modes", t1, "--gle", root / "gle.json", "--out",
         root / "linear" / "T1.0", "--no-tracking"],
        ["analyze-md", *p, "--modes", t1, "--out", root / "md" / "T1.0"],
        ["budget", "mlgle", *p, "--modes", t1, "--t-train", "100", "--out",
         root / "budget" / "T1.0" / "100", "--no-tracking"],
        ["budget", "cheap", *p, "--modes-dir", root / "modes", "--out", root / "cheap.csv",
         "--no-tracking"],
        ["loto", "train", *p, "--leave-out", "1.25", "--modes-dir", root / "modes", "--out",
         root / "loto_model", "--no-progress", "--no-tracking"],
        ["loto", "generate", *p, "--leave-out", "1.25", "--modes-dir", root / "modes",
         "--model", root / "loto_model", "--out", root / "loto_gen", "--no-progress"],
        ["loto", "evaluate", *p, "--leave-out", "1.25", "--modes-dir", root / "modes",
         "--generated", root / "loto_gen", "--out", root / "loto" / "T1.25", "--no-tracking"],
        ["budget", "mlgle", *p, "--modes", t1, "--t-train", "200", "--out", root / "default",
         "--no-tracking"],
    ]  # fmt: skip
    for argv in steps:
        assert main([str(a) for a in argv]) == 0, argv
    for name in ("evaluation", "model"):
        (root / f"{name}s").mkdir()
        (root / f"{name}s" / "T1.0").symlink_to(root / "default" / name)
    for t in TEMPS:
        write_json(root / "eval" / f"T{t!r}" / "summary.json",
                   evaluation_summary(t, 0.01, 0.011, 0.9))  # fmt: skip
    return root


def _study_stages(root: Path) -> dict[str, list]:
    p = ["--params", root / "params.yaml"]
    modes_dir, t1 = ["--modes-dir", root / "modes"], root / "modes" / "T1.0"
    loto = ["--leave-out", "1.25", *modes_dir]
    return {
        "import": ["import", root / "run.dump", "--dt", "1", "--temperature", "1.0"],
        "report": ["report", "--params", root / "params_1t.yaml", "--evaluations",
                   root / "evaluations", "--models", root / "models", "--md-reports", root / "md",
                   "--linear", root / "linear", "--no-tracking"],
        "budget-cheap": ["budget", "cheap", *p, *modes_dir, "--no-tracking"],
        "budget-mlgle": ["budget", "mlgle", *p, "--modes", t1, "--t-train", "100",
                         "--no-tracking"],
        "budget-report": ["budget", "report", *p, "--cheap", root / "cheap.csv", "--mlgle-dir",
                          root / "budget", "--evaluations", root / "evaluations",
                          "--no-tracking"],
        "loto-train": ["loto", "train", *p, *loto, "--no-progress", "--no-tracking"],
        "loto-generate": ["loto", "generate", *p, *loto, "--model", root / "loto_model",
                          "--no-progress"],
        "loto-evaluate": ["loto", "evaluate", *p, *loto, "--generated", root / "loto_gen",
                          "--no-tracking"],
        "loto-report": ["loto", "report", *p, "--loto", root / "loto", "--evaluations",
                        root / "eval", "--no-tracking"],
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(_study_stages(Path())))
def test_a_killed_study_stage_reruns_to_the_uninterrupted_output(study, stage, tmp_path):
    name = "cheap.csv" if stage == "budget-cheap" else "out"
    per_file = stage.endswith("report")
    _kill_and_rerun(_study_stages(study)[stage], name, stage, tmp_path, per_file)
