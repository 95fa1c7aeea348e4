"""Study storage (journal file or RDB URL), the grid queue that runs each point once, workers."""

from __future__ import annotations

import contextlib
import multiprocessing
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from mlgle.config import StudySpec
from mlgle.errors import SweepError
from mlgle.sweep.objectives import Job, Objective
from mlgle.sweep.spec import make_pruner, make_sampler

_HOLDS_GRID_POINT = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def resolve_storage(storage: str, out_dir: Path, name: str) -> str:
    """ "" -> the journal file ``out_dir/<name>.journal``; URLs and other paths unchanged."""
    return str(Path(out_dir) / f"{name}.journal") if storage == "" else storage


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """An RDB URL (``scheme://...``) -> RDBStorage; anything else is a journal file path.

    A storage that cannot be opened (no driver, unreachable server, unwritable file) is a
    SweepError naming it, its password redacted.
    """
    try:
        if "://" in storage:
            return optuna.storages.RDBStorage(storage)
        from optuna.storages.journal import JournalFileBackend

        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(storage))
    except Exception as exc:
        if not _storage_failure(exc):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        password = _password(storage)
        if password:
            reason = re.sub(rf"(?<![\w]){re.escape(password)}(?![\w])", "***", reason)
        if isinstance(exc, ImportError) and storage.startswith("postgresql"):
            reason += " (install the PostgreSQL driver: pip install 'mlgle[postgres]')"
        raise SweepError(
            f"--storage {redact(storage)}: cannot open the study storage: {reason}"
        ) from None


def _storage_failure(exc: Exception) -> bool:
    """A user's storage (driver, server, URL or file) rather than a bug."""
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.SQLAlchemyError | ImportError | OSError | ValueError)


def _password(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password if "://" in url else None
    except ValueError:
        return None


def redact(location: str) -> str:
    """An RDB URL without its password (``user:***@host``); a journal path unchanged."""
    password = _password(location)
    if not password:
        return location
    scheme, rest = location.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _key(values: Mapping[str, Any]) -> tuple:
    return tuple(
        sorted(
            (k, float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
            for k, v in values.items()
        )
    )


def fill_queue(
    study: optuna.Study,
    spec: StudySpec,
    seed: int,
    n_trials: int | None,
    requeue_running: bool,
) -> dict[str, int]:
    """Enqueue grid points without a COMPLETE/PRUNED/RUNNING/WAITING trial (at most n_trials).

    FAILED points are queued again; with ``requeue_running`` RUNNING trials are marked FAILED
    first. Returns counts: grid size, points done, running, queued (waiting now), added.
    """
    held: dict[TrialState, set[tuple]] = {s: set() for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        state = t.state
        if state == TrialState.RUNNING and requeue_running:
            study.tell(t.number, state=TrialState.FAIL)
            state = TrialState.FAIL
        held[state].add(_key(t.system_attrs.get("fixed_params", {}) | t.params))
    taken = set().union(*(held[s] for s in _HOLDS_GRID_POINT))
    missing = [p for p in spec.grid_points(seed) if _key(p) not in taken]
    added = missing if n_trials is None else missing[:n_trials]
    for point in added:
        study.enqueue_trial(point)
    return {
        "grid": spec.grid_size,
        "done": len(held[TrialState.COMPLETE] | held[TrialState.PRUNED]),
        "running": len(held[TrialState.RUNNING]),
        "queued": len(held[TrialState.WAITING]) + len(added),
        "added": len(added),
    }


def _pop(storage: optuna.storages.BaseStorage, study_id: int) -> int | None:
    """Atomically claim one WAITING trial (WAITING -> RUNNING); None when the queue is empty."""
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return trial_id
    return None


def _drain(study: optuna.Study, storage: optuna.storages.BaseStorage, objective: Callable) -> None:
    """Run queued trials until none is WAITING; never creates a trial.

    ``storage`` is the one ``study`` was loaded from: claims go to it directly; reading the
    study's trials afterwards puts the claimed trial into Optuna's RDB cache before it is used.
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    while (trial_id := _pop(storage, study_id)) is not None:
        study.get_trials(deepcopy=False)  # lets Optuna's RDB cache learn of the claimed trial
        trial = optuna.trial.Trial(study, trial_id)
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            study.tell(trial, value)


def _work(job: Job) -> None:
    """One worker: open the storage, then drain the grid queue or optimize its share."""
    storage = open_storage(job.storage)
    study = optuna.load_study(
        study_name=job.study_name,
        storage=storage,
        sampler=make_sampler(job.spec, job.seed),
        pruner=make_pruner(job.spec),
    )
    objective = Objective(job)
    if job.n_trials is None:
        _drain(study, storage, objective)
    else:
        study.optimize(objective, n_trials=job.n_trials)


def run_workers(jobs: Sequence[Job]) -> None:
    """One job in this process; several in 'spawn' processes, all joined, failures raised."""
    if len(jobs) == 1:
        _work(jobs[0])
        return
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_work, args=(job,), name=f"sweep-worker-{i}")
        for i, job in enumerate(jobs)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    finally:
        for p in procs:  # on an interrupt: let workers record FAIL, then stop stragglers
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
    failed = [f"{p.name} (exit code {p.exitcode})" for p in procs if p.exitcode]
    if failed:
        raise SweepError(f"sweep workers failed: {', '.join(failed)}; see their tracebacks above")


def split_trials(total: int, workers: int) -> list[int]:
    """``total`` trials split over ``workers`` as evenly as possible (empty shares dropped)."""
    return [s for s in (total // workers + (i < total % workers) for i in range(workers)) if s]
