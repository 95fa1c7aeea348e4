"""Trial -> metrics: the GLE objective (Figs. 10, 11, Eq. 27) and the training objective
(Fig. 17, history m; optionally generation, Alg. 1, and D_ML-GLE, Eq. 35)."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import scipy.stats

from mlgle import stats
from mlgle.config import Params, StudySpec, TrainConfig
from mlgle.errors import GenerationError, SweepError
from mlgle.gle import GLEFit, brownian_rng
from mlgle.store import open_modes
from mlgle.sweep.data import Reference
from mlgle.sweep.spec import suggest


def gle_point(
    refs: Sequence[Reference], k: int, t_fit: int, points: Sequence[int]
) -> dict[str, float]:
    """Fig. 10/11 metrics of one (k, T_fit): D_GLE (Eq. 27) from the first t_fit frames per T.

    Returns d_gle_<T> and rel_error_<T> per temperature, d_gle_rel_error = mean_T |D_GLE/D_MD − 1|,
    d_gle_sq_error = mean_T (D_MD − D_GLE)² and its Student-t 95 % half-width over temperatures.
    """
    out: dict[str, float] = {}
    sq = []
    rel = []
    for ref in refs:
        mapped, _ = open_modes(ref.store)
        z = np.asarray(mapped[:t_fit, :, : k + 1], dtype=np.float64)
        d_gle = GLEFit(points=points, k=k).fit(z[:, :, 0], z[:, :, 1:], ref.dt).diffusion
        out[f"d_gle_{ref.tag}"] = d_gle
        out[f"rel_error_{ref.tag}"] = d_gle / ref.d_md - 1.0
        rel.append(abs(d_gle / ref.d_md - 1.0))
        sq.append((ref.d_md - d_gle) ** 2)
    n = len(sq)
    half = (
        float(scipy.stats.t.ppf(0.975, n - 1) * np.std(sq, ddof=1) / np.sqrt(n))
        if n > 1
        else float("nan")
    )
    out |= {
        "d_gle_rel_error": float(np.mean(rel)),
        "d_gle_sq_error": float(np.mean(sq)),
        "d_gle_sq_error_ci95": half,
    }
    return out


def study_constants(refs: Sequence[Reference], heuristic: int | None) -> dict[str, float]:
    """Columns shared by every trial: D_MD and its CI per temperature, the m heuristic."""
    out: dict[str, float] = {} if heuristic is None else {"nacf20_lag": heuristic}
    if len(refs) == 1:
        out["temperature"] = refs[0].temperature
    for ref in refs:
        out |= {
            f"d_md_{ref.tag}": ref.d_md,
            f"d_md_lo_{ref.tag}": ref.d_md_ci95[0],
            f"d_md_hi_{ref.tag}": ref.d_md_ci95[1],
        }
    return out


@dataclass(frozen=True)
class Job:
    """Everything a worker process needs (picklable)."""

    params: Params
    spec: StudySpec
    study_name: str
    storage: str
    refs: tuple[Reference, ...]
    parent_run: tuple[str, str] | None
    seed: int
    n_trials: int | None  # None: pop queued (grid) trials until none is left


class Objective:
    """Trial -> metric; secondary numbers as user attrs, a nested MLflow run per trial."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.parent = None
        if job.parent_run is not None:
            from mlgle.tracking import Run, Tracker

            tracker = Tracker(job.params.tracking)
            self.parent = Run(tracker.client, *job.parent_run)

    def __call__(self, trial: optuna.Trial) -> float:
        spec = self.job.spec
        values = {d.name: suggest(d, trial) for d in spec.space}
        run = None
        if self.parent is not None:
            run = self.parent.nested(
                f"trial {trial.number}", {"trial": trial.number, "study": spec.name}
            )
            run.log_params(values)
        status = "FAILED"
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            if spec.objective == "gle":
                metrics = self._gle(values)
            else:
                metrics = _train_trial(self.job, trial, values, run)
            for key, value in metrics.items():
                trial.set_user_attr(key, value)
            if run is not None:
                run.log_metrics(
                    {
                        k: v
                        for k, v in metrics.items()
                        if isinstance(v, int | float) and not isinstance(v, bool)
                    }
                )
            status = "FINISHED"
            return float(metrics[spec.metric])
        except GenerationError as exc:  # a diverged model is a result of this point, not a crash
            trial.set_user_attr("diverged", str(exc))
            print(f"mlgle sweep: notice: trial {trial.number} {values}: {exc}; recorded as "
                  "PRUNED", file=sys.stderr)  # fmt: skip
            status = "KILLED"
            raise optuna.TrialPruned(str(exc)) from exc
        except optuna.TrialPruned:
            status = "KILLED"
            raise
        finally:
            if run is not None:
                run.finish(status)

    def _gle(self, values: Mapping[str, Any]) -> dict[str, Any]:
        k, t_fit = gle_setting(self.job.params, self.job.refs, values)
        unswept = {name: v for name, v in (("k", k), ("t_fit", t_fit)) if name not in values}
        return unswept | gle_point(self.job.refs, k, t_fit, self.job.params.gle_points())


def gle_setting(
    params: Params, refs: Sequence[Reference], values: Mapping[str, Any]
) -> tuple[int, int]:
    """(k, T_fit) of a trial: its values, else modes.k (at most the stored modes) and gle.t_fit."""
    available = min(r.modes for r in refs)
    k = int(values.get("k", params.slow_modes(available)))
    t_fit = int(values.get("t_fit", params.gle.t_fit))
    frames = min(r.frames for r in refs)
    if not 1 <= k <= available or not max(params.gle_points()) < t_fit <= frames:
        raise SweepError(
            f"GLE trial {dict(values)}: needs 1 <= k <= {available} stored modes and GLE lags "
            f"{params.gle_points()} < t_fit <= {frames} frames, got k = {k}, t_fit = {t_fit}"
        )
    return k, t_fit


def train_setting(
    params: Params, spec: StudySpec, ref: Reference, values: Mapping[str, Any]
) -> tuple[TrainConfig, int]:
    """(TrainConfig, k) of a trial: params.train with the study's overrides and the trial's
    values, checked against the store (frames, modes) and the generation window."""
    merged = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.overrides.items()}
    where = f"sweep.studies.{spec.name} with {dict(values)}"
    try:
        cfg = dataclasses.replace(params.train, **(merged | dict(values)))
        cfg.check(where)
    except TypeError as exc:
        raise SweepError(f"{where}: ill-typed train value ({exc})") from exc
    k = spec.modes or params.slow_modes(ref.modes)
    problems = [
        (not cfg.t_val, "train.t_val > 0 (validation data)"),
        (k > ref.modes, f"modes <= {ref.modes} stored in {ref.store}"),
        (cfg.t_train + cfg.t_val > ref.frames, f"t_train + t_val <= {ref.frames} frames"),
        (
            0 < spec.generate_frames <= params.evaluate.d_window[1],
            f"generate_frames > evaluate.d_window t2 = {params.evaluate.d_window[1]}",
        ),
    ]
    for failed, expected in problems:
        if failed:
            raise SweepError(f"{where}: expected {expected}")
    return cfg, k


def _train_trial(job: Job, trial: optuna.Trial, values: Mapping[str, Any], run) -> dict:
    """Fig. 17 / history m: train on one temperature; best val NLL; optional generation."""
    import torch

    from mlgle.nar.train import fit_modes

    params, spec, (ref,) = job.params, job.spec, job.refs
    cfg, k = train_setting(params, spec, ref, values)
    mapped, _ = open_modes(ref.store)
    slow = np.asarray(mapped[: cfg.t_train + cfg.t_val, :, 1 : k + 1], dtype=np.float64)
    train_curve: list[list[float]] = []
    val_curve: list[list[float]] = []

    def callback(report) -> None:
        train_curve.append([float(v) for v in report.train_nll])
        val_curve.append([float(v) for v in report.val_nll])
        mean_val = float(np.mean(report.val_nll))
        trial.report(mean_val, report.epoch)
        if run is not None:
            per_mode = {f"val_nll_mode{j + 1}": v for j, v in enumerate(val_curve[-1])}
            run.log_metrics(
                {"train_nll": float(np.mean(report.train_nll)), "val_nll": mean_val, **per_mode},
                step=report.epoch,
            )
        if trial.should_prune():
            trial.set_user_attr("train_nll_curve", train_curve)
            trial.set_user_attr("val_nll_curve", val_curve)
            raise optuna.TrialPruned(f"pruned after epoch {report.epoch}")

    trained = fit_modes(slow, cfg, callback=callback, progress=False)
    best = trained.val_nll[trained.best_epoch, np.arange(k)]
    out: dict[str, Any] = {
        "best_val_nll": float(best.mean()),
        "modes": k,
        "epochs_run": len(train_curve),
        "train_nll_curve": train_curve,
        "val_nll_curve": val_curve,
        **{f"best_val_nll_mode{j + 1}": float(v) for j, v in enumerate(best)},
        **{f"best_epoch_mode{j + 1}": int(e) for j, e in enumerate(trained.best_epoch)},
    }
    if spec.generate_frames:
        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            out |= _generated_diffusion(params, spec, cfg, ref, trained, k)
        finally:
            torch.set_num_threads(threads)
    return out


def _generated_diffusion(
    params: Params, spec: StudySpec, cfg: TrainConfig, ref: Reference, trained, k: int
) -> dict[str, float]:
    """D_GLE with lags {1, m/2, m}, D_ML-GLE (Eqs. 13, 35) and the NACF band share (Eq. 34)
    of a generated ensemble (Alg. 1)."""
    from mlgle.nar.generate import check_generated, generate_modes, initial_windows

    t1, t2 = params.evaluate.d_window
    frames, seed = spec.generate_frames, params.generate.seed
    n = spec.generate_trajectories or params.generate.trajectories
    points = dataclasses.replace(params, train=cfg).gle_points()
    mapped, _ = open_modes(ref.store)
    t_fit = params.gle.t_fit
    fit_modes_ = np.asarray(mapped[:t_fit, :, : k + 1], dtype=np.float64)
    gle = GLEFit(points=points, k=k).fit(fit_modes_[:, :, 0], fit_modes_[:, :, 1:], ref.dt)
    initial = initial_windows(
        np.asarray(mapped[:, :, 1 : k + 1], dtype=np.float64), cfg.t_train, cfg.history, n, seed
    )
    std = trained.standardisation
    gen = generate_modes(
        trained.model, std.sigma_z, std.sigma_dz, initial, frames, seed, progress=False
    )
    check_generated(gen, f"the model of this trial ({cfg.history = })")
    com = gle.generate_com(gen, brownian_rng(seed))
    d = stats.com_diffusion(com, ref.dt, (t1, t2))
    ev = params.evaluate
    md = np.asarray(mapped[:, :, 1 : k + 1], dtype=np.float64)
    inside = stats.nacf_band_inside(md, gen, ev.nacf_max_lag, ev.band_level)[3]
    return {
        "nacf_band_fraction": float(inside.mean()),
        **{f"nacf_band_fraction_mode{j + 1}": float(v) for j, v in enumerate(inside.mean(1))},
        "d_gle": gle.diffusion,
        "d_gle_rel_error": abs(gle.diffusion / ref.d_md - 1.0),
        "d_mlgle": d.value,
        "d_mlgle_lo": d.ci95[0],
        "d_mlgle_hi": d.ci95[1],
        "d_mlgle_rel_error": abs(d.value / ref.d_md - 1.0),
    }


def check_grid(params: Params, spec: StudySpec, refs: Sequence[Reference]) -> None:
    """Fail before any work if a grid point cannot run (lags, frames, modes, train settings)."""
    for point in spec.grid_points(0):
        if spec.objective == "gle":
            gle_setting(params, refs, point)
        else:
            train_setting(params, spec, refs[0], point)
