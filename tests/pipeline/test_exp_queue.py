"""The DVC experiment queue: experiments queued with ``dvc exp run --queue -S ...`` and run by
``dvc queue start -j 2`` in temporary copies under ``.dvc/tmp/exps`` report their metrics to
``dvc exp show``, and :class:`mlgle.tracking.Tracker` with the relative ``sqlite:///mlflow.db``
logs each run to the one store at the root of the original repository, not into the copies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dvc_helpers import init_repo, sh, tool_env

from mlgle.config import TrackingConfig
from mlgle.tracking import Tracker

EXPERIMENT = "queue-test"
QUEUE_TIMEOUT = 300.0  # seconds for both experiments (two cores shared with other jobs)

RENDEZVOUS_SECONDS = 120
STAGE_SCRIPT = f"""\
import json
import os
import pathlib
import time

import yaml

# Two workers run the two stages at once: each announces itself in a directory outside the
# repository and waits (up to {RENDEZVOUS_SECONDS} s) for the other, then says whether it came.
rendezvous = pathlib.Path(os.environ["RENDEZVOUS"])
(rendezvous / str(os.getpid())).touch()
deadline = time.time() + {RENDEZVOUS_SECONDS}
while len(list(rendezvous.iterdir())) < 2 and time.time() < deadline:
    time.sleep(0.2)
met = len(list(rendezvous.iterdir())) >= 2

from mlgle.config import TrackingConfig
from mlgle.tracking import Tracker

scale = yaml.safe_load(pathlib.Path("params.yaml").read_text())["scale"]
metrics = {{"score": 10 * scale, "square": scale * scale}}
pathlib.Path("metrics.json").write_text(json.dumps(metrics))
tracker = Tracker(TrackingConfig(uri="sqlite:///mlflow.db", experiment="{EXPERIMENT}"))
print("tracking to", tracker.uri, "from", pathlib.Path.cwd())
with tracker.run(f"scale={{scale}}", {{"scale": scale}}, stage="score") as run:
    run.set_tags({{
        "cwd": str(pathlib.Path.cwd()),
        "copy_has_db": str(pathlib.Path("mlflow.db").exists()),
        "met_the_other": str(met),
    }})
    run.log_metrics(metrics)
"""

DVC_YAML = """\
stages:
  score:
    cmd: python score.py
    deps: [score.py]
    params: [scale]
    metrics:
      - metrics.json:
          cache: false
"""


def dvc(cwd: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m dvc argv`` in ``cwd`` without checking its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", *argv], cwd=cwd, env=tool_env(), capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip


def start_workers(repo: Path, log: Path) -> None:
    """``dvc queue start -j 2``. Its output goes to a file, not to pipes: the two workers it
    spawns in the background inherit its stdout/stderr, so reading pipes to EOF would wait
    until the workers exit (10 s after the queue is empty)."""
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", "2"], cwd=repo,
            env=tool_env(), stdout=out, stderr=subprocess.STDOUT, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, log.read_text()
    assert "Started '2' new experiments task queue workers" in log.read_text(), log.read_text()


def queue_states(repo: Path, names: set[str]) -> dict[str, str]:
    """``dvc queue status`` rows: task name -> status (Queued, Running, Success, Failed)."""
    states: dict[str, str] = {}
    for line in sh(repo, "dvc", "queue", "status").splitlines():
        fields = line.split()
        if fields and fields[0] != "Task":
            name = next((f for f in fields if f in names), None)
            if name is not None:
                states[name] = fields[-1]
    return states


def wait_for_queue(repo: Path, names: set[str]) -> dict[str, str]:
    """Poll ``dvc queue status`` until every task in ``names`` has left Queued/Running."""
    deadline = time.monotonic() + QUEUE_TIMEOUT
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = queue_states(repo, names)
        if set(states) == names and not {"Queued", "Running"} & set(states.values()):
            return states
        time.sleep(1)
    logs = "\n".join(dvc(repo, "queue", "logs", n).stdout for n in sorted(names))
    pytest.fail(f"queue not done in {QUEUE_TIMEOUT:g} s: {states}\n{logs}")


def experiments(show: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json`` -> experiment name -> {'params': ..., 'metrics': ...}."""
    found: dict[str, dict[str, Any]] = {}
    for baseline in show:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs", []):
                data = rev.get("data") or {}
                found[rev.get("name") or exp.get("name")] = {
                    "params": data.get("params", {}).get("params.yaml", {}).get("data", {}),
                    "metrics": data.get("metrics", {}).get("metrics.json", {}).get("data", {}),
                }
    return found


@pytest.mark.slow
def test_queued_experiments_run_in_parallel_and_log_to_the_root_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "rendezvous").mkdir()
    monkeypatch.setenv("RENDEZVOUS", str(tmp_path / "rendezvous"))  # workers inherit it
    repo = init_repo(tmp_path / "repo")
    (repo / "params.yaml").write_text("scale: 1\n")
    (repo / "score.py").write_text(STAGE_SCRIPT)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / ".gitignore").write_text("mlflow.db\nmlruns/\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "tiny pipeline")
    # The repository's store and experiment exist before the queue starts (as after a first
    # `dvc repro`): two workers that both find no experiment would race to create it.
    root_store = Tracker(TrackingConfig(uri="sqlite:///mlflow.db", experiment=EXPERIMENT), repo)
    assert root_store.uri == f"sqlite:///{repo.resolve() / 'mlflow.db'}"

    names = {"exp-s2": 2, "exp-s3": 3}
    for name, scale in names.items():
        sh(repo, "dvc", "exp", "run", "--queue", "--name", name, "-S", f"scale={scale}")
    queued = queue_states(repo, set(names))
    assert queued == {"exp-s2": "Queued", "exp-s3": "Queued"}, queued
    try:
        start_workers(repo, tmp_path / "queue-start.log")
        states = wait_for_queue(repo, set(names))
        if set(states.values()) != {"Success"}:
            logs = "\n".join(dvc(repo, "queue", "logs", n).stdout for n in sorted(names))
            pytest.fail(f"queued experiments did not succeed: {states}\n{logs}")
    finally:
        dvc(repo, "queue", "stop", "--kill")

    shown = experiments(json.loads(sh(repo, "dvc", "exp", "show", "--json")))
    assert set(names) <= set(shown), shown
    for name, scale in names.items():
        assert shown[name]["params"] == {"scale": scale}
        assert shown[name]["metrics"] == {"score": 10 * scale, "square": scale * scale}
    assert "metrics.json" not in sh(repo, "git", "status", "--porcelain")  # workspace untouched

    client = root_store.client
    runs = client.search_runs([root_store.experiment_id])
    assert sorted(r.data.params["scale"] for r in runs) == ["2", "3"]
    exps = (repo / ".dvc" / "tmp" / "exps").resolve()
    for run in runs:
        scale = int(run.data.params["scale"])
        assert run.info.status == "FINISHED"
        assert run.data.metrics == {"score": 10 * scale, "square": scale * scale}
        assert Path(run.data.tags["cwd"]).is_relative_to(exps), run.data.tags["cwd"]
        assert run.data.tags["copy_has_db"] == "False"
    assert len({r.data.tags["cwd"] for r in runs}) == 2  # one temporary copy each
    # Two workers: each stage found the other running (not a race on timestamps under load).
    assert [r.data.tags["met_the_other"] for r in runs] == ["True", "True"]
    assert not list((repo / ".dvc").rglob("mlflow.db"))
    assert not list((repo / ".dvc").rglob("mlruns"))
