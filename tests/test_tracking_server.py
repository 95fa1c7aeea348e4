"""An MLflow tracking server: ``mlgle train`` with ``MLGLE_TRACKING_URI`` set to a server's URL
logs its parent run (params, metrics, artifacts) and its nested per-mode runs there, uploading the
artifacts over HTTP to the server's artifact store, and writes no local store."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgle.cli import main

STARTUP_TIMEOUT = 90.0  # seconds: the first start creates the sqlite schema (migrations)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    """Poll ``url/health`` until it answers 200; fail with the server's output if the server
    exits or never answers within STARTUP_TIMEOUT."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited ({proc.returncode}):\n{log.read_text()}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer {url}/health in {STARTUP_TIMEOUT:g} s:\n"
                f"{log.read_text()}")  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (``mlflow server`` runs uvicorn as a child), then
    SIGKILL it if it is still there after 15 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # workers left behind by a clean exit
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def tracking_server(tmp_path) -> Iterator[tuple[str, Path]]:
    """``mlflow server`` on 127.0.0.1:<free port>, sqlite backend and a proxied artifact store
    (``--serve-artifacts``: clients upload over HTTP) under ``tmp_path/server``; yields (url,
    server directory) and terminates the server afterwards."""
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{server_dir / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(server_dir / "artifacts"),
    ]  # fmt: skip
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runner processes
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLGLE_TRACKING_URI", None)
    log = server_dir / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=server_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, proc, log)
        yield url, server_dir
    finally:
        stop(proc)


@pytest.mark.slow
def test_train_logs_runs_and_artifacts_to_a_tracking_server(
    tracking_server, tmp_path, monkeypatch, rouse_stores, tiny_params, one_torch_thread
):
    from mlflow.tracking import MlflowClient

    url, server_dir = tracking_server
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLGLE_TRACKING_URI", url)
    store = rouse_stores([1.0], chains=6, beads=8, frames=320, k=3) / "T1.0"
    # tiny_params points tracking.uri at work/mlflow.db: MLGLE_TRACKING_URI must win over it.
    params = tiny_params(
        work, tracking={"experiment": "server-test"}, modes={"k": 3},
        train={"epochs": 2, "seed": 23, "t_train": 200, "t_val": 100},
    )  # fmt: skip
    out = work / "model"
    argv = ["train", "--params", str(params), "--modes", str(store), "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert (out / "nll.csv").is_file() and (out / "model.pt").is_file()

    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("server-test")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "train T=1"
    assert parent.data.tags["stage"] == "train"
    assert "version.mlflow" in parent.data.tags
    assert parent.data.params["train.seed"] == "23"
    assert parent.data.params["train.epochs"] == "2"
    assert parent.data.params["modes.k"] == "3"
    assert {"train_nll_mean", "val_nll_mean"} <= set(parent.data.metrics)
    history = client.get_metric_history(parent.info.run_id, "val_nll_mean")
    assert sorted(m.step for m in history) == [0, 1]  # one point per epoch

    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1  # every other run is a child of this one
    assert sorted(r.data.tags["mode"] for r in children) == ["1", "2", "3"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"train_nll", "val_nll", "best_epoch", "best_val_nll"} <= set(child.data.metrics)
        assert len(client.get_metric_history(child.info.run_id, "train_nll")) == 2

    # Artifacts went through the server's proxy into its artifact destination.
    artifacts = {a.path: a for a in client.list_artifacts(parent.info.run_id)}
    assert set(artifacts) == {"model.pt", "nll.csv"}
    assert artifacts["model.pt"].file_size == (out / "model.pt").stat().st_size
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:"), parent.info.artifact_uri
    served = list((server_dir / "artifacts").rglob("nll.csv"))
    assert len(served) == 1 and served[0].read_bytes() == (out / "nll.csv").read_bytes()
    fetched = Path(client.download_artifacts(parent.info.run_id, "nll.csv", str(tmp_path)))
    assert fetched.read_bytes() == (out / "nll.csv").read_bytes()

    # Nothing was logged locally.
    assert (server_dir / "mlflow.db").is_file()
    for name in ("mlflow.db", "mlruns", "mlartifacts"):
        assert not (work / name).exists(), name
        assert not (tmp_path / name).exists(), name
