"""`mlgle sweep`: run or continue one Optuna study; its table and figure (Figs. 10, 11, 17)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
import polars as pl

from mlgle.config import Params, StudySpec
from mlgle.errors import SweepError
from mlgle.store import open_modes, write_file
from mlgle.sweep.data import (
    Reference,
    fingerprint,
    md_references,
    nacf_drop_lag,
    training_temperature,
)
from mlgle.sweep.objectives import Job, check_grid, study_constants
from mlgle.sweep.queue import (
    fill_queue,
    open_storage,
    redact,
    resolve_storage,
    run_workers,
    split_trials,
)
from mlgle.sweep.results import trials_table
from mlgle.sweep.spec import make_pruner, make_sampler

_log = logging.getLogger(__name__)
_DEFAULT_TRIALS = 20


def _write_outputs(
    out_dir: Path,
    spec: StudySpec,
    table: pl.DataFrame,
    curves: pl.DataFrame,
    refs: Sequence[Reference],
    heuristic: int | None,
) -> list[Path]:
    from mlgle.figures import sweeps as sweep_figures

    paths = [
        write_file(out_dir / f"{spec.name}.csv", table.write_csv),
        write_file(out_dir / f"{spec.name}.parquet", table.write_parquet),
    ]
    if spec.objective == "train":
        paths += [
            write_file(out_dir / f"{spec.name}_curves.csv", curves.write_csv),
            write_file(out_dir / f"{spec.name}_curves.parquet", curves.write_parquet),
        ]
    done = table.filter(pl.col("state") == "COMPLETE") if table.height else table
    figure = out_dir / f"{spec.name}.png"
    names = [d.name for d in spec.space]
    if spec.objective == "gle" and "k" in names:
        sweep_figures.gle_k(done, refs, figure)
    elif spec.objective == "gle":
        sweep_figures.gle_tfit(done, refs, figure, param=names[0])
    else:
        sweep_figures.training(
            table,
            curves,
            names[0],
            figure,
            heuristic=heuristic,
            dt=refs[0].dt,
            temperature=refs[0].temperature,
        )
    return [*paths, figure]


def run_study(
    params: Params,
    name: str,
    modes_dir: Path,
    out_dir: Path,
    n_trials: int | None = None,
    storage: str | None = None,
    workers: int = 1,
    tracking: bool = True,
    requeue_running: bool = False,
) -> pl.DataFrame:
    """Run (or continue) study ``name`` and export ``out_dir/<name>.csv|.parquet|.png``.

    modes_dir holds ``T<T>/`` modes stores; n_trials: grid points to add to the queue (default
    all missing; 0 only works off the queue) or trials to run for TPE / random (default the
    study's ``n_trials`` or 20); storage: None -> ``sweep.storage``; workers: processes
    ('spawn': a calling script needs the ``if __name__ == "__main__":`` guard).
    Returns the results table (one row per trial of this study).
    """
    spec = params.study(name)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"workers: expected an integer >= 1, got {workers!r}")
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0
    ):
        raise SweepError(f"n_trials: expected an integer >= 0, got {n_trials!r}")
    out_dir = Path(out_dir)
    refs, heuristic = _study_data(params, spec, Path(modes_dir))
    location = resolve_storage(params.sweep.storage if storage is None else storage, out_dir, name)
    study_name = f"{name}-{fingerprint(params, spec, refs)}"
    seed = params.sweep.seed
    study = optuna.create_study(
        storage=open_storage(location),
        study_name=study_name,
        direction=spec.direction,
        sampler=make_sampler(spec, seed),
        pruner=make_pruner(spec),
        load_if_exists=True,
    )
    study.set_user_attr("constants", study_constants(refs, heuristic))
    if location.startswith("sqlite") and workers > 1:
        _log.warning(
            "%s: SQLite serialises writers and may fail with 'database is locked' "
            "under %d workers; use the journal default or PostgreSQL",
            location,
            workers,
        )
    if spec.sampler == "grid":
        counts = fill_queue(study, spec, seed, n_trials, requeue_running)
        _log.info("study %s (%s in %s): %s", name, study_name, redact(location), counts)
        shares: list[int | None] = [None] * min(workers, counts["queued"])
    else:
        total = n_trials if n_trials is not None else spec.n_trials or _DEFAULT_TRIALS
        shares = list(split_trials(total, workers))
    with _parent_run(params, name, tracking) as run:
        parent = None if run is None else (run.run_id, run.experiment_id)
        jobs = [
            Job(params, spec, study_name, location, refs, parent, seed + i, share)
            for i, share in enumerate(shares)
        ]
        if jobs:
            run_workers(jobs)
        table, curves = trials_table(study, spec)
        paths = _write_outputs(out_dir, spec, table, curves, refs, heuristic)
        if run is not None:
            _log_summary(run, spec, study, table, paths, redact(location))
    return table


def _study_data(
    params: Params, spec: StudySpec, modes_dir: Path
) -> tuple[tuple[Reference, ...], int | None]:
    """D_MD references of the study's temperatures; the NACF heuristic for training studies."""
    temps = (
        params.md.temperatures if spec.objective == "gle" else (training_temperature(params, spec),)
    )
    refs = md_references(params, modes_dir, temps)
    if spec.sampler == "grid":
        check_grid(params, spec, refs)
    if spec.objective == "gle":
        return refs, None
    mapped, _ = open_modes(refs[0].store)
    return refs, nacf_drop_lag(mapped[:, :, 1])


def _log_summary(
    run, spec: StudySpec, study: optuna.Study, table: pl.DataFrame, paths: list[Path], where: str
) -> None:
    """Parent MLflow run: the Optuna study and storage, the best value, constants, artifacts."""
    run.set_tags({"optuna.study": study.study_name, "optuna.storage": where})
    done = table.filter(pl.col("state") == "COMPLETE") if table.height else table
    metrics = dict(study.user_attrs.get("constants", {})) | {"complete_trials": done.height}
    if done.height:
        best = done[spec.metric].min() if spec.direction == "minimize" else done[spec.metric].max()
        metrics[f"best_{spec.metric}"] = float(best)
    run.log_metrics(metrics)
    for path in paths:
        run.log_artifact(path)


@contextlib.contextmanager
def _parent_run(params: Params, name: str, tracking: bool) -> Iterator[Any]:
    if not tracking:
        yield None
        return
    from mlgle.tracking import Tracker

    with Tracker(params.tracking).run(f"sweep {name}", params, stage="sweep", study=name) as run:
        yield run



def main(params: Params, args: Any) -> None:
    """``mlgle sweep``: run the study named by ``args.study``, print where the results went."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    table = run_study(
        params,
        args.study,
        args.modes_dir,
        args.out,
        n_trials=args.n_trials,
        storage=args.storage,
        workers=args.workers,
        tracking=not args.no_tracking,
        requeue_running=args.requeue_running,
    )
    spec = params.study(args.study)
    complete = table.filter(pl.col("state") == "COMPLETE") if table.height else table
    print(
        f"{args.study}: {complete.height} of {table.height} trials complete; "
        f"results in {args.out / args.study}.csv, figure {args.out / args.study}.png"
    )
    if complete.height:
        best = complete.sort(spec.metric, descending=spec.direction == "maximize").row(
            0, named=True
        )
        shown = {d.name: best[d.name] for d in spec.space}
        print(f"best {spec.metric} = {best[spec.metric]:.6g} at {shown}")
