"""MLflow tracking: URI resolution (also from DVC temp copies) and real nested runs in sqlite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mlgle.config import Params, TrackingConfig
from mlgle.tracking import EpochLogger, Tracker, flatten, project_root, resolve_tracking_uri


def test_relative_sqlite_uri_resolves_under_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    assert resolve_tracking_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert resolve_tracking_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLGLE_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri("sqlite:///mlflow.db", tmp_path) == "http://127.0.0.1:5001"


def test_project_root_escapes_dvc_experiment_copies(tmp_path):
    (tmp_path / "params.yaml").write_text("{}")
    copy = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc123"
    copy.mkdir(parents=True)
    (copy / "params.yaml").write_text("{}")
    assert project_root(copy) == tmp_path.resolve()
    assert project_root(tmp_path / "src") == tmp_path.resolve()


def test_flatten_nested_params():
    flat = flatten({"a": {"b": 1, "c": (1, 2)}, "d": "x"})
    assert flat == {"a.b": "1", "a.c": "[1, 2]", "d": "x"}


@dataclass
class Report:
    epoch: int
    train_nll: np.ndarray
    val_nll: np.ndarray
    best_epoch: np.ndarray


@pytest.mark.slow
def test_parent_and_nested_mode_runs_are_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    (tmp_path / "params.yaml").write_text("{}")
    tracker = Tracker(TrackingConfig(uri="sqlite:///mlflow.db", experiment="t"), root=tmp_path)
    assert (tmp_path / "mlflow.db").exists()
    artifact = tmp_path / "curve.csv"
    artifact.write_text("epoch,nll\n0,1.0\n")
    with tracker.run("train T=1", Params(), stage="train", temperature=1.0) as run:
        logger = EpochLogger(run, modes=[1, 2])
        for epoch in range(3):
            nll = np.array([3.0 - epoch, 2.0 + epoch])
            logger(Report(epoch, nll + 0.1, nll, np.array([epoch, 0])))
        logger.close(np.array([2, 0]), np.array([1.0, 2.0]))
        run.log_artifact(artifact)
        parent_id = run.run_id
    client = tracker.client
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["train.seed"] == str(Params().train.seed)
    assert parent.data.tags["stage"] == "train"
    assert "version.torch" in parent.data.tags and "git.commit" in parent.data.tags
    children = client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(r.data.tags["mode"] for r in children) == ["1", "2"]
    mode1 = next(r for r in children if r.data.tags["mode"] == "1")
    history = client.get_metric_history(mode1.info.run_id, "val_nll")
    assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 2.0), (2, 1.0)]
    assert mode1.data.metrics["best_val_nll"] == 1.0
    assert [a.path for a in client.list_artifacts(parent_id)] == ["curve.csv"]


def test_failed_block_marks_run_failed(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    uri = f"sqlite:///{Path(tmp_path) / 'runs.db'}"
    tracker = Tracker(TrackingConfig(uri=uri, experiment="t"), tmp_path)
    with pytest.raises(RuntimeError), tracker.run("boom") as run:
        raise RuntimeError("stage failed")
    assert tracker.client.get_run(run.run_id).info.status == "FAILED"


def test_losing_the_race_to_create_the_experiment_reads_the_winners(tmp_path, monkeypatch):
    """Two stages start on a fresh store: both find no experiment, the other one creates it
    first; this one's create then fails with "already exists" and must take the same id."""
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLGLE_TRACKING_URI", raising=False)
    (tmp_path / "params.yaml").write_text("{}")
    config = TrackingConfig(uri="sqlite:///mlflow.db", experiment="raced")
    winner = Tracker(config, root=tmp_path).experiment_id
    looked = []
    original = MlflowClient.get_experiment_by_name

    def stale_first_look(self, name):  # the lookup that ran before the winner's create
        looked.append(name)
        return None if len(looked) == 1 else original(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", stale_first_look)
    assert Tracker(config, root=tmp_path).experiment_id == winner
    assert looked == ["raced", "raced"]


def test_provenance_is_the_commit_of_the_checkout_the_stage_runs_in(tmp_path, monkeypatch):
    """A DVC experiment runs in its own copy of the repository: its commit, not the root's."""
    import subprocess

    from mlgle.tracking import provenance

    def commit_in(path: Path) -> str:
        path.mkdir()
        env = ["-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run(["git", "init", "-q", str(path)], check=True)
        (path / "f").write_text(str(path))
        subprocess.run(["git", "-C", str(path), "add", "f"], check=True)
        subprocess.run(["git", "-C", str(path), *env, "commit", "-qm", "x"], check=True)
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return out.stdout.strip()

    root, copy = commit_in(tmp_path / "root"), commit_in(tmp_path / "copy")
    assert root != copy
    monkeypatch.chdir(tmp_path / "copy")
    assert provenance()["git.commit"] == copy
