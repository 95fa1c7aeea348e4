"""Fault injection (issue 15): each stage's process is killed with SIGKILL at a random point of a
tiny run, then run again; the output equals that of an uninterrupted run, and nothing the killed
run left behind (temporary outputs, a set-aside previous output, its lock) survives the rerun.

``mlgle simulate`` has the same test against LAMMPS (tests/md/test_melt.py) and ``mlgle sweep``
its interrupted-grid test (tests/sweep/test_studies.py).
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
from reliability_helpers import leftovers, modes_store, trajectory_store

from mlgle.cli import main

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


@pytest.mark.parametrize("stage", list(_stages(Path())))
def test_a_killed_stage_reruns_to_the_uninterrupted_output(inputs, stage, tmp_path):
    argv = _stages(inputs)[stage]
    name = OUTPUT_NAMES.get(stage, "out")
    reference, out = tmp_path / "reference" / name, tmp_path / "killed" / name
    code, seconds = _run(argv, reference)
    assert code == 0
    rng = random.Random(stage)  # a random point, the same one on every run of the suite
    for attempt in range(4):  # a run that finished before its kill point is tried again earlier
        code, _ = _run(argv, out, kill_after=rng.uniform(0.3, 0.95) * seconds / 2**attempt)
        if code == -signal.SIGKILL:
            break
        assert code == 0
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    assert code == -signal.SIGKILL, "the stage finished before every kill point"
    if out.exists():  # killed after the output was renamed into place: it must be complete
        assert _content(out) == _content(reference)
    visible = [p for p in out.parent.iterdir() if not p.name.startswith(".")]
    assert visible in ([], [out])  # nothing half-written under a visible name
    code, _ = _run(argv, out)
    assert code == 0
    assert _content(out) == _content(reference)
    assert not leftovers(out.parent), leftovers(out.parent)
