"""params.yaml -> frozen dataclasses, one per pipeline section.

Every key is typed. An unknown key, a value of the wrong type or a value out of range raises
:class:`ConfigError` naming the file and the dotted key. A profile file (``params/paper.yaml``)
overlays the base file key by key.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mlgle.errors import ConfigError


@dataclass(frozen=True)
class TrackingConfig:
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "mlgle"


@dataclass(frozen=True)
class MDConfig:
    temperatures: tuple[float, ...] = (1.0, 1.25, 1.5)
    chains: int = 100
    beads: int = 20
    density: float = 0.85
    thermostat: str = "langevin"
    damping: float = 2.0
    dpd_gamma: float = 4.5
    timestep: float = 0.01
    equilibration_steps: int = 100_000
    production_steps: int = 1_000_000
    steps_per_frame: int = 20
    restart_every: int = 100_000
    ranks: int = 2
    seed: int = 4928459

    @property
    def frame_dt(self) -> float:
        """Sampling interval Δt in τ."""
        return self.steps_per_frame * self.timestep

    @property
    def frames(self) -> int:
        """Number of stored production frames (the first at step 0 included)."""
        return self.production_steps // self.steps_per_frame + 1

    def check(self, where: str) -> None:
        _positive(where, "md.chains", self.chains)
        _at_least(where, "md.beads", self.beads, 2)
        _positive(where, "md.density", self.density)
        _positive(where, "md.damping", self.damping)
        _positive(where, "md.dpd_gamma", self.dpd_gamma)
        _positive(where, "md.timestep", self.timestep)
        _at_least(where, "md.equilibration_steps", self.equilibration_steps, 0)
        _positive(where, "md.production_steps", self.production_steps)
        _positive(where, "md.steps_per_frame", self.steps_per_frame)
        _positive(where, "md.restart_every", self.restart_every)
        _positive(where, "md.ranks", self.ranks)
        _choice(where, "md.thermostat", self.thermostat, ("langevin", "dpd"))
        if not self.temperatures:
            raise ConfigError(f"{where}: md.temperatures must list at least one temperature")
        for t in self.temperatures:
            _positive(where, "md.temperatures", t)
        if len(set(self.temperatures)) != len(self.temperatures):
            raise ConfigError(f"{where}: md.temperatures has duplicates: {self.temperatures}")
        if self.production_steps % self.steps_per_frame:
            raise ConfigError(
                f"{where}: md.production_steps ({self.production_steps}) must be a multiple of "
                f"md.steps_per_frame ({self.steps_per_frame})"
            )
        if self.restart_every % self.steps_per_frame:
            raise ConfigError(
                f"{where}: md.restart_every ({self.restart_every}) must be a multiple of "
                f"md.steps_per_frame ({self.steps_per_frame})"
            )


@dataclass(frozen=True)
class ModesConfig:
    """k of the paper: modes p = 0 (C.o.M) .. k are stored, p = 1..k are the slow modes of the
    GLE (Eq. 13) and of the NAR models."""

    k: int = 12

    def check(self, where: str) -> None:
        _positive(where, "modes.k", self.k)


@dataclass(frozen=True)
class GLEConfig:
    t_fit: int = 500
    points: tuple[int, ...] = ()
    bootstrap: int = 200
    seed: int = 17

    def check(self, where: str) -> None:
        _at_least(where, "gle.t_fit", self.t_fit, 3)
        _at_least(where, "gle.bootstrap", self.bootstrap, 0)
        for p in self.points:
            _positive(where, "gle.points", p)
            if p >= self.t_fit:
                raise ConfigError(f"{where}: gle.points has lag {p} >= gle.t_fit ({self.t_fit})")


DEVICES = ("auto", "cpu", "cuda")  # train.device, generate.device (mlgle.nar.device)
MATMUL_BACKENDS = ("auto", "onednn", "torch")  # generate.backend (mlgle.nar.model.FrozenNetworks)


@dataclass(frozen=True)
class TrainConfig:
    history: int = 64
    t_train: int = 500
    t_val: int = 300
    architecture: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    latent: int = 12
    activation: str = "relu"
    dropout: float = 0.0
    batch_size: int = 128
    lr: float = 1e-4
    epochs: int = 20
    patience: int = 5
    threads: int = 2
    seed: int = 1234
    device: str = "auto"

    def check(self, where: str) -> None:
        _at_least(where, "train.history", self.history, 3)
        _positive(where, "train.t_train", self.t_train)
        _at_least(where, "train.t_val", self.t_val, 0)
        if self.history >= self.t_train:
            raise ConfigError(
                f"{where}: train.history (m = {self.history}) must be < train.t_train "
                f"({self.t_train}): no training window fits"
            )
        if self.t_val and self.history >= self.t_val:
            raise ConfigError(
                f"{where}: train.history (m = {self.history}) must be < train.t_val "
                f"({self.t_val}): no validation window fits"
            )
        if not self.hidden:
            raise ConfigError(f"{where}: train.hidden must list at least one layer width")
        for h in self.hidden:
            _positive(where, "train.hidden", h)
        _positive(where, "train.latent", self.latent)
        _choice(where, "train.activation", self.activation, ("relu", "gelu", "tanh", "silu", "elu"))
        _choice(where, "train.architecture", self.architecture, ("mlp", "gru"))
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}: train.dropout must be in [0, 1), got {self.dropout}")
        _positive(where, "train.batch_size", self.batch_size)
        _positive(where, "train.lr", self.lr)
        _positive(where, "train.epochs", self.epochs)
        _at_least(where, "train.patience", self.patience, 0)
        _positive(where, "train.threads", self.threads)
        _choice(where, "train.device", self.device, DEVICES)


@dataclass(frozen=True)
class GenerateConfig:
    trajectories: int = 100
    frames: int = 25000
    seed: int = 99
    device: str = "auto"
    backend: str = "auto"

    def check(self, where: str) -> None:
        _positive(where, "generate.trajectories", self.trajectories)
        _at_least(where, "generate.frames", self.frames, 2)
        _choice(where, "generate.device", self.device, DEVICES)
        _choice(where, "generate.backend", self.backend, MATMUL_BACKENDS)


@dataclass(frozen=True)
class EvaluateConfig:
    d_window: tuple[int, int] = (2500, 7500)
    short_window: tuple[float, float] = (0.25, 0.5)
    nacf_max_lag: int = 2500
    nacf_modes: tuple[int, ...] = (1, 2, 5, 10)
    band_level: float = 0.99
    seed: int = 7

    def check(self, where: str) -> None:
        if len(self.d_window) != 2 or not 0 < self.d_window[0] < self.d_window[1]:
            raise ConfigError(
                f"{where}: evaluate.d_window must be [t1, t2] with 0 < t1 < t2, got "
                f"{list(self.d_window)}"
            )
        if len(self.short_window) != 2 or not 0 < self.short_window[0] < self.short_window[1] < 1:
            raise ConfigError(
                f"{where}: evaluate.short_window must be [f1, f2] with 0 < f1 < f2 < 1 "
                f"(fractions of train.t_train), got {list(self.short_window)}"
            )
        _positive(where, "evaluate.nacf_max_lag", self.nacf_max_lag)
        for p in self.nacf_modes:
            _positive(where, "evaluate.nacf_modes", p)
        if not 0.0 < self.band_level < 1.0:
            raise ConfigError(
                f"{where}: evaluate.band_level must be in (0, 1), got {self.band_level}"
            )


GLE_SWEEP_PARAMS = frozenset({"k", "t_fit"})
SWEEP_METRICS = {
    "gle": frozenset({"d_gle_rel_error", "d_gle_sq_error"}),
    "train": frozenset(
        {"best_val_nll", "d_mlgle_rel_error", "d_gle_rel_error", "nacf_band_fraction"}
    ),
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
_GENERATED = frozenset({"d_mlgle_rel_error", "d_gle_rel_error", "nacf_band_fraction"})


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
            raise ConfigError(f"{where}: must be a mapping {{type, low, high, choices, log}}")
        unknown = set(raw) - _DIMENSION_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        kind = raw.get("type")
        if kind == "categorical":
            choices = raw.get("choices")
            if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
                raise ConfigError(f"{where}.choices: expected a non-empty list")
            for c in choices:
                if not (c is None or isinstance(c, str | int | float | bool)):
                    raise ConfigError(f"{where}.choices: {c!r} is not a str, number or bool")
            return cls(name, kind, choices=tuple(choices))
        if kind not in ("int", "float"):
            raise ConfigError(f"{where}.type: expected int, float or categorical, got {kind!r}")
        low, high, step = raw.get("low"), raw.get("high"), raw.get("step")
        for key, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
        if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
            raise ConfigError(f"{where}: low and high of an int axis must be integers")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where}.log: expected true or false, got {log!r}")
        if not low <= high or (log and low <= 0):
            raise ConfigError(f"{where}: expected low <= high (and low > 0 with log), got {raw}")
        if step is not None and (
            isinstance(step, bool) or not isinstance(step, int | float) or step <= 0
        ):
            raise ConfigError(f"{where}.step: expected a number > 0, got {step!r}")
        if kind == "int":
            low, high = int(low), int(high)
        return cls(name, kind, low, high, step, log)

    def grid(self, where: str) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(self.low, self.high + 1, 1 if self.step is None else int(self.step)))
        if self.step is None:
            raise ConfigError(f"{where}: a float axis needs 'step' (or use choices) on a grid")
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
            raise ConfigError(f"{where}: must be a mapping")
        unknown = set(raw) - _STUDY_KEYS
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {sorted(unknown)} "
                f"(expected some of {sorted(_STUDY_KEYS)})"
            )
        for key in ("metric", "direction", "space"):
            if key not in raw:
                raise ConfigError(f"{where}.{key} is missing")
        space_raw = raw["space"]
        if not isinstance(space_raw, Mapping) or not space_raw:
            raise ConfigError(f"{where}.space: expected a non-empty mapping of parameters")
        space = tuple(
            Dimension.parse(str(p), d, f"{where}.space.{p}") for p, d in space_raw.items()
        )
        names = {d.name for d in space}
        objective = raw.get("objective") or _infer_objective(names, where)
        allowed = GLE_SWEEP_PARAMS if objective == "gle" else _train_keys()
        if objective not in SWEEP_METRICS or not names <= allowed:
            raise ConfigError(
                f"{where}: objective {objective!r} takes parameters {sorted(allowed)}, "
                f"got {sorted(names)}"
            )
        if raw["metric"] not in SWEEP_METRICS[objective]:
            raise ConfigError(
                f"{where}.metric: the {objective} objective reports "
                f"{sorted(SWEEP_METRICS[objective])}, got {raw['metric']!r}"
            )
        if raw["direction"] not in ("minimize", "maximize"):
            raise ConfigError(f"{where}.direction: expected minimize or maximize")
        sampler = raw.get("sampler", "tpe")
        if sampler not in ("grid", "tpe", "random"):
            raise ConfigError(f"{where}.sampler: expected grid, tpe or random, got {sampler!r}")
        overrides = raw.get("overrides") or {}
        if not isinstance(overrides, Mapping) or not set(overrides) <= _train_keys():
            raise ConfigError(
                f"{where}.overrides: expected a mapping of train keys "
                f"{sorted(_train_keys())}, got {overrides!r}"
            )
        generate_frames = _integer(raw.get("generate_frames", 0), f"{where}.generate_frames", 0)
        if objective == "train" and raw["metric"] in _GENERATED and not generate_frames:
            raise ConfigError(f"{where}.metric {raw['metric']} needs generate_frames > 0")
        temperature = raw.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, int | float)
        ):
            raise ConfigError(f"{where}.temperature: expected a number, got {temperature!r}")
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
        """{param: every grid value}; ConfigError for a float axis without ``step``."""
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


def _infer_objective(names: set[str], where: str) -> str:
    if names <= GLE_SWEEP_PARAMS:
        return "gle"
    if names <= _train_keys():
        return "train"
    raise ConfigError(
        f"{where}.space: parameters {sorted(names)} are neither GLE "
        f"{sorted(GLE_SWEEP_PARAMS)} nor train keys; set 'objective'"
    )


def _parse_pruner(raw: Any, where: str) -> dict[str, Any]:
    options = None
    if isinstance(raw, str):
        options = {"type": raw}
    elif isinstance(raw, Mapping):
        options = dict(raw)
    if options is None or options.get("type", "none") not in ("none", "median", "threshold"):
        raise ConfigError(
            f"{where}: expected none, median, threshold or a mapping with 'type', got {raw!r}"
        )
    options.setdefault("type", "none")
    if options["type"] == "none" and len(options) > 1:
        raise ConfigError(f"{where}: pruner 'none' takes no options, got {raw!r}")
    return options


def _integer(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _optional_int(value: Any, where: str, minimum: int) -> int | None:
    return None if value is None else _integer(value, where, minimum)


def _train_keys() -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(TrainConfig))


@dataclass(frozen=True)
class SweepConfig:
    """Optuna ablations: storage ("" = a journal file beside the results), seed, and the studies
    (``sweep.studies.<name>``, each parsed into a :class:`StudySpec` when the file is read)."""

    storage: str = ""
    seed: int = 2024
    studies: Mapping[str, StudySpec] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetConfig:
    """D error against the MD budget (beyond the paper): T_train (= T_fit) in frames, the
    independent segments per budget for D_short and D_GLE, the budgets that also get a trained
    ML-GLE, and the temperature those are trained at."""

    t_trains: tuple[int, ...] = (250, 500, 1000, 2500, 5000)
    segments: int = 8
    mlgle_t_trains: tuple[int, ...] = (250,)
    temperature: float = 1.25

    def check(self, where: str) -> None:
        if not self.t_trains:
            raise ConfigError(f"{where}: budget.t_trains must list at least one T_train")
        for t in (*self.t_trains, *self.mlgle_t_trains):
            _at_least(where, "budget.t_trains", t, 4)
        _positive(where, "budget.segments", self.segments)
        _positive(where, "budget.temperature", self.temperature)


CONDITIONINGS = ("film", "concat")
SCALES = ("interpolate", "pooled")
GLE_VARIANTS = ("interpolate", "refit")
INITIALS = ("nearest", "target")


@dataclass(frozen=True)
class ConditionedConfig:
    """The temperature-conditioned model of ``mlgle loto`` (beyond the paper).

    conditioning: film | concat (how T enters the mode networks); scales: interpolate | pooled
    (σ_z, σ_Δz across T); gle: interpolate | refit (the α, β behind the headline D_ML-GLE; both
    are always evaluated); initial: nearest | target (initial windows from the nearest training
    temperature, rescaled to σ_z(T*), so no data at T* is used to generate; or from the MD at T*
    after t_train); leave_out: temperatures left out one at a time, [] = every interior
    temperature; epochs, patience, seed replace those of the ``train`` section. An epoch visits
    every training temperature's windows, so with two of them 10 epochs make as many optimiser
    steps as the per-temperature 20.
    """

    conditioning: str = "film"
    scales: str = "interpolate"
    gle: str = "interpolate"
    initial: str = "nearest"
    leave_out: tuple[float, ...] = (1.25,)
    epochs: int = 10
    patience: int = 5
    seed: int = 1234

    def check(self, where: str) -> None:
        _choice(where, "conditioned.conditioning", self.conditioning, CONDITIONINGS)
        _choice(where, "conditioned.scales", self.scales, SCALES)
        _choice(where, "conditioned.gle", self.gle, GLE_VARIANTS)
        _choice(where, "conditioned.initial", self.initial, INITIALS)
        _positive(where, "conditioned.epochs", self.epochs)
        _at_least(where, "conditioned.patience", self.patience, 0)
        for t in self.leave_out:
            _positive(where, "conditioned.leave_out", t)

    def train_config(self, train: TrainConfig) -> TrainConfig:
        """The ``train`` section with this section's epochs, patience and seed."""
        return dataclasses.replace(
            train, epochs=self.epochs, patience=self.patience, seed=self.seed
        )


@dataclass(frozen=True)
class Params:
    """All sections of params.yaml."""

    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    md: MDConfig = field(default_factory=MDConfig)
    modes: ModesConfig = field(default_factory=ModesConfig)
    gle: GLEConfig = field(default_factory=GLEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    conditioned: ConditionedConfig = field(default_factory=ConditionedConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    source: str = "<defaults>"

    def check(self) -> None:
        where = self.source
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if hasattr(section, "check"):
                section.check(where)
        if self.budget.temperature not in self.md.temperatures:
            raise ConfigError(
                f"{where}: budget.temperature {self.budget.temperature:g} must be one of "
                f"md.temperatures {list(self.md.temperatures)}"
            )
        for p in self.gle_points():
            if p >= self.gle.t_fit:
                raise ConfigError(
                    f"{where}: GLE regression lag {p} (from train.history) must be < gle.t_fit "
                    f"({self.gle.t_fit})"
                )

    def slow_modes(self, stored: int) -> int:
        """k of the paper: the slow modes p = 1..k that the GLE (Eq. 13) and the NAR models use,
        ``modes.k`` or fewer when a store holds fewer (``stored`` = modes p >= 1 in it)."""
        return min(self.modes.k, stored)

    def study(self, name: str) -> StudySpec:
        """``sweep.studies.<name>``; ConfigError naming the file and the known studies."""
        if name not in self.sweep.studies:
            raise ConfigError(
                f"{self.source}: no study '{name}' in sweep.studies "
                f"(known: {', '.join(sorted(self.sweep.studies)) or 'none'})"
            )
        return self.sweep.studies[name]

    def gle_points(self) -> tuple[int, ...]:
        """Regression lags of Eq. 27: ``gle.points`` or {1, m/2, m} with m = train.history."""
        if self.gle.points:
            return tuple(self.gle.points)
        m = self.train.history
        return tuple(sorted({1, m // 2, m}))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for MLflow params and provenance)."""
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


def load_params(*paths: str | Path) -> Params:
    """Read one or more params files, later files overlaying earlier ones key by key.

    Raises :class:`ConfigError` naming the file and the dotted key on any unknown key,
    wrong type or out-of-range value.
    """
    if not paths:
        raise ConfigError("load_params needs at least one params file")
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read params file ({exc.strerror})") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: top level must be a mapping of sections")
        _overlay(merged, data, origin, str(path), prefix="")
    source = " + ".join(str(p) for p in paths)
    sections = [f.name for f in dataclasses.fields(Params) if f.name != "source"]
    missing = [name for name in sections if name not in merged]
    if missing:
        raise ConfigError(
            f"{source}: section '{missing[0]}' is missing (every params file set needs the "
            f"sections {', '.join(sections)}; start from the repository's params.yaml)"
        )
    params = _build(Params, merged, origin, prefix="", extra={"source": source})
    params.check()
    return params


def _overlay(
    base: dict[str, Any], new: Mapping[str, Any], origin: dict[str, str], path: str, prefix: str
) -> None:
    for key, value in new.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), dict) and key != "studies":
            _overlay(base[key], value, origin, path, prefix=f"{dotted}.")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
        origin[dotted] = path


def _build(cls: type, data: Mapping[str, Any], origin: dict[str, str], prefix: str, extra=None):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - set(extra or {})
    kwargs: dict[str, Any] = dict(extra or {})
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        where = origin.get(dotted, origin.get(prefix.rstrip("."), "<params>"))
        if key not in names:
            raise ConfigError(
                f"{where}: unknown key '{dotted}' (expected one of: {', '.join(sorted(names))})"
            )
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: '{dotted}' must be a mapping of keys")
            kwargs[key] = _build(hint, value, origin, prefix=f"{dotted}.")
        else:
            kwargs[key] = _coerce(hint, value, dotted, where)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str, where: str) -> Any:
    origin_type = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin_type is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a list, got {type(value).__name__}")
        item = args[0]
        if (len(args) == 2 and args[1] is Ellipsis) or len(args) == 1:
            return tuple(_coerce(item, v, key, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where}: '{key}' must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, key, where) for a, v in zip(args, value, strict=True))
    if origin_type in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(option, value, key, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: '{key}' has a value of the wrong type: {value!r}")
    if origin_type in (Mapping, dict) and args and args[1] is StudySpec:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a mapping of study names")
        return {str(name): StudySpec.parse(str(name), raw, where) for name, raw in value.items()}
    if origin_type in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a mapping")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{where}: '{key}' has an unsupported type {hint}")  # pragma: no cover


def _positive(where: str, key: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{where}: '{key}' must be a finite number > 0, got {value}")


def _at_least(where: str, key: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ConfigError(f"{where}: '{key}' must be >= {minimum}, got {value}")


def _choice(where: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: '{key}' must be one of {list(allowed)}, got {value!r}")
