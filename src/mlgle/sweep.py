"""Optuna ablation studies (Secs. 4.4-4.5, Figs. 10, 11, 17, Appendix C): ``mlgle sweep``.

Studies are data: ``sweep.studies.<name>`` in params.yaml names the metric, the direction, the
sampler (``grid`` | ``tpe`` | ``random``, seeded with ``sweep.seed``) and the search space
``{param: {type: int|float|categorical, low, high, step, log, choices}}``. Optional keys:

- ``objective``: ``gle`` (space over ``k``, ``t_fit``) or ``train`` (space over ``train.*`` keys);
  inferred from the space when absent.
- ``pruner``: ``none`` (default), ``median`` or ``threshold``, or a mapping
  ``{type: median, n_startup_trials: 2, n_warmup_steps: 1}``; training studies report the
  per-epoch mean validation NLL (``trial.report``) and are pruned from the training callback.
- ``overrides``: ``train.*`` values for this study only (a modest budget, e.g. ``{epochs: 5}``);
  ``modes``: train only the slowest n modes; ``temperature``: the training temperature (default
  the middle of ``md.temperatures``); ``generate_frames`` (0 = skip) and ``generate_trajectories``:
  a generated ensemble per trial for D_ML-GLE; ``n_trials``: default for non-grid samplers.

Objectives call the same core as the stages: ``GLEFit`` (Eq. 27) and ``stats`` (Eq. 35) for the
GLE studies, ``fit_modes`` / ``generate_modes`` for the training studies. D_MD per temperature
(Eq. 35 over ``evaluate.d_window`` of the full MD run, Student-t 95 % CI over chains) is computed
once per study invocation. Each trial's value is the study's metric; every other number goes to
``trial.set_user_attr`` and is a column of the exported table ``<out>/<study>.csv|.parquet``
(one row per trial); training curves also go to ``<study>_curves.csv|.parquet`` (long format).
The figure is ``<out>/<study>.png``.

Budget: a training study trains with ``params.train`` overlaid by its ``overrides``, on its
``modes`` slowest modes. The default params.yaml keeps that small (6 epochs on t_train = 400
frames, 1-2 modes: minutes on 2 cores). For the full budget drop them, e.g.
``dvc exp run -S 'sweep.studies.fig17_batch.overrides={}' -S sweep.studies.fig17_batch.modes=12``,
or give a profile its own ``sweep.studies`` (overlaid as a whole):
``mlgle sweep --study fig17_batch --params params.yaml --params params/paper.yaml``.

Storage. ``sweep.storage: ""`` (or ``--storage ""``) stores the study in an Optuna journal file,
``<out>/<study>.journal`` (``JournalStorage(JournalFileBackend(path))``): an append-only log
guarded by a file lock, so several worker processes on one machine append concurrently without
the "database is locked" failures SQLite gives under concurrent writers. A value with ``://`` is
an RDB URL (``postgresql://user@host/db`` for workers on several hosts, ``sqlite:///file.db`` for
one writer) passed to ``optuna.storages.RDBStorage``; any other value is a journal file path.
Browse any of them with ``optuna-dashboard <journal file or URL>``.

Resuming. The Optuna study name is ``<study>-<fingerprint>``, a hash of the study mapping, the
params it depends on and the modes stores' metadata: rerunning with the same inputs continues the
study (``load_if_exists``), changed inputs start a fresh study beside the old one.

Grid studies run exactly once per grid point. Optuna's GridSampler maps trial number n < grid
size to grid point n, but a worker that keeps asking after the grid is handed out, and every
trial number past the grid size, draws an unfinished point again (duplicates under concurrency),
and a FAILED trial counts as visited and is never redone. So the invoking process enqueues each
grid point that has no COMPLETE, PRUNED, RUNNING or WAITING trial (FAILED points are retried),
in a seeded shuffled order, at most ``n_trials`` of them; workers only pop WAITING trials (an
atomic state change in both storages) and stop when none is left. Further hosts sharing an RDB
storage join with ``--n-trials 0``: they work off the queue without adding to it. RUNNING trials
of a killed run are left alone unless ``--requeue-running`` marks them FAILED and queues them again.
Non-grid studies call ``study.optimize`` with their share of ``n_trials`` per worker (worker i is
seeded ``sweep.seed + i``).

Workers. ``workers=W`` starts W processes ('spawn': no torch or OpenMP state crosses a fork), each
opening its own storage and, with tracking, its own MLflow client. One parent MLflow run per
invocation (``sweep <study>``); every trial is a nested run with its params, metrics and, for
training studies, the per-epoch curves (step = epoch).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
import scipy.stats
from optuna.trial import TrialState

from mlgle import stats
from mlgle.config import Params, TrainConfig, add_params_option, params_from_args
from mlgle.gle import GLEFit
from mlgle.store import open_modes, read_meta, temperature_tag

__all__ = [
    "STUDY_DEFAULTS",
    "QueuedGridSampler",
    "Reference",
    "StudySpec",
    "SweepError",
    "add_sweep_parser",
    "gle_point",
    "gle_setting",
    "main_sweep",
    "md_references",
    "nacf_drop_lag",
    "open_storage",
    "resolve_storage",
    "run_study",
    "study_spec",
    "train_setting",
    "trials_table",
]

_log = logging.getLogger(__name__)

_MODEST_TRAINING = {"epochs": 6, "t_train": 400, "t_val": 200, "patience": 0}
"""The default profile's training budget for the sweeps (full budget: ``overrides: {}``)."""

STUDY_DEFAULTS: dict[str, dict[str, Any]] = {
    "fig10_k": {
        "metric": "d_gle_rel_error",
        "direction": "minimize",
        "sampler": "grid",
        "space": {
            "k": {"type": "int", "low": 1, "high": 12},
            "t_fit": {"type": "categorical", "choices": [200, 500, 1000]},
        },
    },
    "fig11_tfit": {
        "metric": "d_gle_sq_error",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"t_fit": {"type": "categorical", "choices": [100, 200, 500, 1000, 2000, 4000]}},
    },
    "fig17_batch": {
        "metric": "best_val_nll",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"batch_size": {"type": "categorical", "choices": [8, 32, 64, 128, 256]}},
        "overrides": _MODEST_TRAINING,
        "modes": 1,
    },
    "history_m": {
        "metric": "best_val_nll",
        "direction": "minimize",
        "sampler": "grid",
        "space": {"history": {"type": "categorical", "choices": [16, 32, 64, 128]}},
        "overrides": _MODEST_TRAINING,
        "modes": 2,
        "generate_frames": 0,
    },
}
"""Studies used when params.yaml has no ``sweep.studies.<name>`` (same format)."""

GLE_PARAMS = frozenset({"k", "t_fit"})
TRAIN_PARAMS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
METRICS = {
    "gle": frozenset({"d_gle_rel_error", "d_gle_sq_error"}),
    "train": frozenset({"best_val_nll", "d_mlgle_rel_error", "d_gle_rel_error"}),
}
_STUDY_KEYS = frozenset(
    {
        "metric",
        "direction",
        "sampler",
        "space",
        "objective",
        "pruner",
        "overrides",
        "modes",
        "temperature",
        "generate_frames",
        "generate_trajectories",
        "n_trials",
    }
)
_DIMENSION_KEYS = frozenset({"type", "low", "high", "step", "log", "choices"})
_GENERATED = frozenset({"d_mlgle_rel_error", "d_gle_rel_error"})  # train: need generation
_CURVES = ("train_nll_curve", "val_nll_curve")
_HOLDS_GRID_POINT = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
_DEFAULT_TRIALS = 20
_HEURISTIC_DROP = 0.8


class SweepError(ValueError):
    """A study definition or its data is unusable; the message names the key or file."""


# --------------------------------------------------------------------------- study definitions


@dataclass(frozen=True)
class Dimension:
    """One search-space axis: ``int`` / ``float`` in [low, high] (step, log) or ``categorical``."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @classmethod
    def parse(cls, name: str, raw: Any, where: str) -> Dimension:
        if not isinstance(raw, Mapping):
            raise SweepError(f"{where}: must be a mapping {{type, low, high, choices, log}}")
        unknown = set(raw) - _DIMENSION_KEYS
        if unknown:
            raise SweepError(f"{where}: unknown key(s) {sorted(unknown)}")
        kind = raw.get("type")
        if kind == "categorical":
            choices = raw.get("choices")
            if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
                raise SweepError(f"{where}.choices: expected a non-empty list")
            for c in choices:
                if not (c is None or isinstance(c, str | int | float | bool)):
                    raise SweepError(f"{where}.choices: {c!r} is not a str, number or bool")
            return cls(name, kind, choices=tuple(choices))
        if kind not in ("int", "float"):
            raise SweepError(f"{where}.type: expected int, float or categorical, got {kind!r}")
        low, high, step = raw.get("low"), raw.get("high"), raw.get("step")
        for key, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SweepError(f"{where}.{key}: expected a number, got {value!r}")
        if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
            raise SweepError(f"{where}: low and high of an int axis must be integers")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise SweepError(f"{where}.log: expected true or false, got {log!r}")
        if not low <= high or (log and low <= 0):
            raise SweepError(f"{where}: expected low <= high (and low > 0 with log), got {raw}")
        if step is not None and (
            isinstance(step, bool) or not isinstance(step, int | float) or step <= 0
        ):
            raise SweepError(f"{where}.step: expected a number > 0, got {step!r}")
        if kind == "int":
            low, high = int(low), int(high)
        return cls(name, kind, low, high, step, log)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(self.name, self.low, self.high, step=step, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self, where: str) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(self.low, self.high + 1, 1 if self.step is None else int(self.step)))
        if self.step is None:
            raise SweepError(f"{where}: a float axis needs 'step' (or use choices) on a grid")
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [float(self.low + i * self.step) for i in range(count)]


@dataclass(frozen=True)
class StudySpec:
    """A parsed ``sweep.studies.<name>`` mapping (see the module docstring for the keys)."""

    name: str
    metric: str
    direction: str
    sampler: str
    space: tuple[Dimension, ...]
    objective: str
    pruner: Mapping[str, Any]
    overrides: Mapping[str, Any]
    modes: int | None
    temperature: float | None
    generate_frames: int
    generate_trajectories: int | None
    n_trials: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, name: str, raw: Mapping[str, Any], source: str = "<params>") -> StudySpec:
        where = f"{source}: sweep.studies.{name}"
        if not isinstance(raw, Mapping):
            raise SweepError(f"{where}: must be a mapping")
        unknown = set(raw) - _STUDY_KEYS
        if unknown:
            raise SweepError(
                f"{where}: unknown key(s) {sorted(unknown)} "
                f"(expected some of {sorted(_STUDY_KEYS)})"
            )
        for key in ("metric", "direction", "space"):
            if key not in raw:
                raise SweepError(f"{where}.{key} is missing")
        space_raw = raw["space"]
        if not isinstance(space_raw, Mapping) or not space_raw:
            raise SweepError(f"{where}.space: expected a non-empty mapping of parameters")
        space = tuple(
            Dimension.parse(str(p), d, f"{where}.space.{p}") for p, d in space_raw.items()
        )
        names = {d.name for d in space}
        objective = raw.get("objective") or _infer_objective(names, where)
        allowed = GLE_PARAMS if objective == "gle" else TRAIN_PARAMS
        if objective not in METRICS or not names <= allowed:
            raise SweepError(
                f"{where}: objective {objective!r} takes parameters {sorted(allowed)}, "
                f"got {sorted(names)}"
            )
        if raw["metric"] not in METRICS[objective]:
            raise SweepError(
                f"{where}.metric: the {objective} objective reports "
                f"{sorted(METRICS[objective])}, got {raw['metric']!r}"
            )
        if raw["direction"] not in ("minimize", "maximize"):
            raise SweepError(f"{where}.direction: expected minimize or maximize")
        sampler = raw.get("sampler", "tpe")
        if sampler not in ("grid", "tpe", "random"):
            raise SweepError(f"{where}.sampler: expected grid, tpe or random, got {sampler!r}")
        overrides = raw.get("overrides") or {}
        if not isinstance(overrides, Mapping) or not set(overrides) <= TRAIN_PARAMS:
            raise SweepError(
                f"{where}.overrides: expected a mapping of train keys "
                f"{sorted(TRAIN_PARAMS)}, got {overrides!r}"
            )
        generate_frames = _integer(raw.get("generate_frames", 0), f"{where}.generate_frames", 0)
        if objective == "train" and raw["metric"] in _GENERATED and not generate_frames:
            raise SweepError(f"{where}.metric {raw['metric']} needs generate_frames > 0")
        temperature = raw.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, int | float)
        ):
            raise SweepError(f"{where}.temperature: expected a number, got {temperature!r}")
        return cls(
            name=name,
            metric=raw["metric"],
            direction=raw["direction"],
            sampler=sampler,
            space=space,
            objective=objective,
            pruner=_parse_pruner(raw.get("pruner", "none"), f"{where}.pruner"),
            overrides=dict(overrides),
            modes=_optional_int(raw.get("modes"), f"{where}.modes", 1),
            temperature=None if temperature is None else float(temperature),
            generate_frames=generate_frames,
            generate_trajectories=_optional_int(
                raw.get("generate_trajectories"), f"{where}.generate_trajectories", 2
            ),
            n_trials=_optional_int(raw.get("n_trials"), f"{where}.n_trials", 1),
            raw=dict(raw),
        )

    def grid(self) -> dict[str, list[Any]]:
        """{param: every grid value}; SweepError for a float axis without ``step``."""
        return {d.name: d.grid(f"sweep.studies.{self.name}.space.{d.name}") for d in self.space}

    @property
    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.grid().values())

    def grid_points(self, seed: int) -> list[dict[str, Any]]:
        """Every grid point once, as {param: value}, in an order shuffled by ``seed``."""
        axes = self.grid()
        points = [dict(zip(axes, v, strict=True)) for v in itertools.product(*axes.values())]
        order = np.random.default_rng(seed).permutation(len(points))
        return [points[i] for i in order]

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        """GridSampler over the full grid, or TPE / random, seeded with ``seed``."""
        if self.sampler == "grid":
            return QueuedGridSampler(self.grid(), seed=seed)
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        options = dict(self.pruner)
        kind = options.pop("type")
        if kind == "median":
            return optuna.pruners.MedianPruner(**options)
        if kind == "threshold":
            return optuna.pruners.ThresholdPruner(**options)
        return optuna.pruners.NopPruner()


class QueuedGridSampler(optuna.samplers.GridSampler):
    """GridSampler for studies whose grid points are queued once with ``enqueue_trial``.

    Workers only pop queued trials, so the sampler never has to pick a point; its ``after_trial``
    does not call ``study.stop()`` (invalid outside ``optimize`` and needless: an empty queue ends
    a worker). Used on its own with ``study.optimize`` it is Optuna's GridSampler.
    """

    def after_trial(self, study, trial, state, values) -> None:
        return None


def _infer_objective(names: set[str], where: str) -> str:
    if names <= GLE_PARAMS:
        return "gle"
    if names <= TRAIN_PARAMS:
        return "train"
    raise SweepError(
        f"{where}.space: parameters {sorted(names)} are neither GLE "
        f"{sorted(GLE_PARAMS)} nor train keys; set 'objective'"
    )


def _parse_pruner(raw: Any, where: str) -> dict[str, Any]:
    options = None
    if isinstance(raw, str):
        options = {"type": raw}
    elif isinstance(raw, Mapping):
        options = dict(raw)
    if options is None or options.get("type", "none") not in ("none", "median", "threshold"):
        raise SweepError(
            f"{where}: expected none, median, threshold or a mapping with 'type', got {raw!r}"
        )
    options.setdefault("type", "none")
    if options["type"] == "none" and len(options) > 1:
        raise SweepError(f"{where}: pruner 'none' takes no options, got {raw!r}")
    return options


def _integer(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SweepError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _optional_int(value: Any, where: str, minimum: int) -> int | None:
    return None if value is None else _integer(value, where, minimum)


def study_spec(params: Params, name: str) -> StudySpec:
    """``sweep.studies.<name>`` from params, else :data:`STUDY_DEFAULTS`; SweepError if neither."""
    studies = params.sweep.studies
    if name in studies:
        return StudySpec.parse(name, studies[name], params.source)
    if name in STUDY_DEFAULTS:
        return StudySpec.parse(name, STUDY_DEFAULTS[name], "<mlgle.sweep defaults>")
    known = sorted(set(studies) | set(STUDY_DEFAULTS))
    raise SweepError(f"{params.source}: no study '{name}' in sweep.studies (known: {known})")


# --------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Reference:
    """One temperature's modes store and D_MD (Eq. 35) with its Student-t 95 % CI over chains."""

    temperature: float
    store: str
    dt: float
    frames: int
    modes: int
    d_md: float
    d_md_ci95: tuple[float, float]

    @property
    def tag(self) -> str:
        return temperature_tag(self.temperature)


def training_temperature(params: Params, spec: StudySpec) -> float:
    """The study's ``temperature`` or the middle of ``md.temperatures`` (sorted)."""
    temps = sorted(params.md.temperatures)
    if spec.temperature is None:
        return temps[len(temps) // 2]
    if spec.temperature not in temps:
        raise SweepError(
            f"sweep.studies.{spec.name}.temperature: {spec.temperature} is not in "
            f"md.temperatures {temps}"
        )
    return spec.temperature


def md_references(
    params: Params, modes_dir: Path, temperatures: Sequence[float]
) -> tuple[Reference, ...]:
    """D_MD of each ``modes_dir/T<T>`` store from its full C.o.M run over evaluate.d_window."""
    t1, t2 = params.evaluate.d_window
    out = []
    for temperature in temperatures:
        store = Path(modes_dir) / temperature_tag(temperature)
        if not store.is_dir():
            raise SweepError(
                f"{store}: modes store for T = {temperature} not found "
                "(run `dvc repro modes` or pass --modes)"
            )
        mapped, meta = open_modes(store)
        if t2 > meta.frames - 1:
            raise SweepError(
                f"evaluate.d_window [{t1}, {t2}] needs more than the "
                f"{meta.frames} frames of {store}"
            )
        com = np.asarray(mapped[:, :, 0], dtype=np.float64)
        d = stats.diffusion_coefficient(stats.msd_per_trajectory(com), meta.dt, t1, t2)
        out.append(
            Reference(
                float(temperature),
                str(store),
                float(meta.dt),
                int(meta.frames),
                int(mapped.shape[2]) - 1,
                d.value,
                tuple(d.ci95),
            )
        )
    return tuple(out)


def nacf_drop_lag(mode: np.ndarray, level: float = _HEURISTIC_DROP) -> int | None:
    """First lag (frames) where the NACF of one mode falls below ``level`` (the paper's m rule).

    mode: (frames, chains, 3), e.g. mode 1 of the MD run. None if it never does.
    """
    below = np.flatnonzero(stats.acf(np.asarray(mode, dtype=np.float64)) < level)
    return int(below[0]) if below.size else None


def _fingerprint(params: Params, spec: StudySpec, refs: Sequence[Reference]) -> str:
    """Hash of everything the trials depend on, so a changed input starts a fresh study."""
    payload = {
        "study": spec.raw,
        "seed": params.sweep.seed,
        "gle": dataclasses.asdict(params.gle),
        "gle_points": params.gle_points(),
        "d_window": params.evaluate.d_window,
        "stores": [read_meta(r.store).to_json() for r in refs],
    }
    if spec.objective == "train":
        payload |= {"train": dataclasses.asdict(params.train), "generate": params.generate.seed}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# --------------------------------------------------------------------------------- objectives


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


def _study_constants(refs: Sequence[Reference], heuristic: int | None) -> dict[str, float]:
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
class _Job:
    """Everything a worker process needs (picklable)."""

    params: Params
    spec: StudySpec
    study_name: str
    storage: str
    refs: tuple[Reference, ...]
    parent_run: tuple[str, str] | None
    seed: int
    n_trials: int | None  # None: pop queued (grid) trials until none is left


class _Objective:
    """Trial -> metric; secondary numbers as user attrs, a nested MLflow run per trial."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.parent = None
        if job.parent_run is not None:
            from mlgle.tracking import Run, Tracker

            tracker = Tracker(job.params.tracking)
            self.parent = Run(tracker.client, *job.parent_run)

    def __call__(self, trial: optuna.Trial) -> float:
        spec = self.job.spec
        values = {d.name: d.suggest(trial) for d in spec.space}
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
    """(k, T_fit) of a trial: its values, else gle.k (at most the stored modes) and gle.t_fit."""
    available = min(r.modes for r in refs)
    k = int(values.get("k", min(params.gle.k, available)))
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
    k = spec.modes or min(params.gle.k, ref.modes)
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


def _train_trial(job: _Job, trial: optuna.Trial, values: Mapping[str, Any], run) -> dict:
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
    """D_GLE with lags {1, m/2, m} and D_ML-GLE of a generated ensemble (Alg. 1, Eqs. 13, 35)."""
    from mlgle.nar.generate import generate_modes, initial_windows

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
    com = gle.generate_com(gen, np.random.default_rng(seed + 1))
    d = stats.diffusion_coefficient(stats.msd_per_trajectory(com), ref.dt, t1, t2)
    return {
        "d_gle": gle.diffusion,
        "d_gle_rel_error": abs(gle.diffusion / ref.d_md - 1.0),
        "d_mlgle": d.value,
        "d_mlgle_lo": d.ci95[0],
        "d_mlgle_hi": d.ci95[1],
        "d_mlgle_rel_error": abs(d.value / ref.d_md - 1.0),
    }


def _check_grid(params: Params, spec: StudySpec, refs: Sequence[Reference]) -> None:
    """Fail before any work if a grid point cannot run (lags, frames, modes, train settings)."""
    for point in spec.grid_points(0):
        if spec.objective == "gle":
            gle_setting(params, refs, point)
        else:
            train_setting(params, spec, refs[0], point)


# ------------------------------------------------------------------------------ storage, queue


def resolve_storage(storage: str, out_dir: Path, name: str) -> str:
    """ "" -> the journal file ``out_dir/<name>.journal``; URLs and other paths unchanged."""
    return str(Path(out_dir) / f"{name}.journal") if storage == "" else storage


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """An RDB URL (``scheme://...``) -> RDBStorage; anything else is a journal file path."""
    if "://" in storage:
        return optuna.storages.RDBStorage(storage)
    from optuna.storages.journal import JournalFileBackend

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def _key(values: Mapping[str, Any]) -> tuple:
    return tuple(
        sorted(
            (k, float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
            for k, v in values.items()
        )
    )


def _fill_queue(
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


def _drain(study: optuna.Study, objective) -> None:
    """Run queued trials until none is WAITING; never creates a trial.

    Claims go through ``study._storage``, the storage the study reads through (for an RDB URL a
    caching wrapper that must see the claimed trial), as ``Study.ask`` does internally.
    """
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    while (trial_id := _pop(storage, study_id)) is not None:
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


def _work(job: _Job) -> None:
    """One worker: open the storage, then drain the grid queue or optimize its share."""
    study = optuna.load_study(
        study_name=job.study_name,
        storage=open_storage(job.storage),
        sampler=job.spec.make_sampler(job.seed),
        pruner=job.spec.make_pruner(),
    )
    objective = _Objective(job)
    if job.n_trials is None:
        _drain(study, objective)
    else:
        study.optimize(objective, n_trials=job.n_trials)


def _run_workers(jobs: Sequence[_Job]) -> None:
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


def _shares(total: int, workers: int) -> list[int]:
    return [s for s in (total // workers + (i < total % workers) for i in range(workers)) if s]


# ------------------------------------------------------------------------------ results, study


def trials_table(study: optuna.Study, spec: StudySpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per trial: number, state, params, metric, scalar user attrs and the study's
    constants (D_MD per temperature, ...); long-format curves).

    Curves (training studies): number, params, epoch, mode, train_nll, val_nll.
    """
    rows, curves = [], []
    names = [d.name for d in spec.space]
    constants = study.user_attrs.get("constants", {})
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        values = t.system_attrs.get("fixed_params", {}) | t.params
        duration = t.duration.total_seconds() if t.duration is not None else None
        row = {
            "number": t.number,
            "state": t.state.name,
            **{n: values.get(n) for n in names},
            spec.metric: t.value,
            "duration_s": duration,
        }
        row |= {
            k: v
            for k, v in t.user_attrs.items()
            if k not in row and (v is None or isinstance(v, str | int | float | bool))
        }
        row |= {k: v for k, v in constants.items() if k not in row}
        rows.append(row)
        if all(c in t.user_attrs for c in _CURVES):
            train, val = (np.asarray(t.user_attrs[c], dtype=np.float64) for c in _CURVES)
            epochs, k = val.shape
            curves.append(
                pl.DataFrame(
                    {
                        "number": np.full(epochs * k, t.number),
                        **{n: [values.get(n)] * (epochs * k) for n in names},
                        "epoch": np.repeat(np.arange(epochs), k),
                        "mode": np.tile(np.arange(1, k + 1), epochs),
                        "train_nll": train.reshape(-1),
                        "val_nll": val.reshape(-1),
                    }
                )
            )
    table = (
        pl.DataFrame(rows, infer_schema_length=None)
        if rows
        else pl.DataFrame({"number": [], "state": []})
    )
    return table, (pl.concat(curves, how="diagonal_relaxed") if curves else pl.DataFrame())


def _atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _write_outputs(
    out_dir: Path,
    spec: StudySpec,
    table: pl.DataFrame,
    curves: pl.DataFrame,
    refs: Sequence[Reference],
    heuristic: int | None,
) -> list[Path]:
    from mlgle.report import sweep_figures

    paths = [
        _atomic(out_dir / f"{spec.name}.csv", table.write_csv),
        _atomic(out_dir / f"{spec.name}.parquet", table.write_parquet),
    ]
    if spec.objective == "train":
        paths += [
            _atomic(out_dir / f"{spec.name}_curves.csv", curves.write_csv),
            _atomic(out_dir / f"{spec.name}_curves.parquet", curves.write_parquet),
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
    spec = study_spec(params, name)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"workers: expected an integer >= 1, got {workers!r}")
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0
    ):
        raise SweepError(f"n_trials: expected an integer >= 0, got {n_trials!r}")
    out_dir = Path(out_dir)
    refs, heuristic = _study_data(params, spec, Path(modes_dir))
    location = resolve_storage(params.sweep.storage if storage is None else storage, out_dir, name)
    study_name = f"{name}-{_fingerprint(params, spec, refs)}"
    seed = params.sweep.seed
    study = optuna.create_study(
        storage=open_storage(location),
        study_name=study_name,
        direction=spec.direction,
        sampler=spec.make_sampler(seed),
        pruner=spec.make_pruner(),
        load_if_exists=True,
    )
    study.set_user_attr("constants", _study_constants(refs, heuristic))
    if location.startswith("sqlite") and workers > 1:
        _log.warning(
            "%s: SQLite serialises writers and may fail with 'database is locked' "
            "under %d workers; use the journal default or PostgreSQL",
            location,
            workers,
        )
    if spec.sampler == "grid":
        counts = _fill_queue(study, spec, seed, n_trials, requeue_running)
        _log.info("study %s (%s in %s): %s", name, study_name, _redact(location), counts)
        shares: list[int | None] = [None] * min(workers, counts["queued"])
    else:
        total = n_trials if n_trials is not None else spec.n_trials or _DEFAULT_TRIALS
        shares = list(_shares(total, workers))
    with _parent_run(params, name, tracking) as run:
        parent = None if run is None else (run.run_id, run.experiment_id)
        jobs = [
            _Job(params, spec, study_name, location, refs, parent, seed + i, share)
            for i, share in enumerate(shares)
        ]
        if jobs:
            _run_workers(jobs)
        table, curves = trials_table(study, spec)
        paths = _write_outputs(out_dir, spec, table, curves, refs, heuristic)
        if run is not None:
            _log_summary(run, spec, study, table, paths, _redact(location))
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
        _check_grid(params, spec, refs)
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


def _redact(location: str) -> str:
    """Drop a password from an RDB URL before it is logged."""
    if "://" not in location or "@" not in location:
        return location
    scheme, rest = location.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


# ---------------------------------------------------------------------------------------- CLI


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``mlgle sweep`` to an argparse subparsers object; returns the new parser."""
    p = subparsers.add_parser(
        "sweep",
        help="Optuna ablation study (Figs. 10, 11, 17, history m) from sweep.studies",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--study", required=True, help="study name in sweep.studies (e.g. fig10_k)")
    p.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="grid: points to add to the queue (default all missing, 0: only work "
        "off the queue); tpe/random: trials to run (default 20)",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="RDB URL or journal file (default sweep.storage; '' = <out>/<study>.journal)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--modes",
        type=Path,
        default=Path("data/modes"),
        help="directory of T<T> modes stores (default data/modes)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports/sweeps"),
        help="tables, figure and default journal (default reports/sweeps)",
    )
    add_params_option(p)
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument(
        "--requeue-running",
        action="store_true",
        help="mark RUNNING trials (of a killed run) FAILED and queue them again",
    )
    return p


def main_sweep(args: argparse.Namespace) -> None:
    """Entry point of ``mlgle sweep``: run the study, print where the results went."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    params = params_from_args(args)
    table = run_study(
        params,
        args.study,
        args.modes,
        args.out,
        n_trials=args.n_trials,
        storage=args.storage,
        workers=args.workers,
        tracking=not args.no_tracking,
        requeue_running=args.requeue_running,
    )
    spec = study_spec(params, args.study)
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
