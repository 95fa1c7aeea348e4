"""params.yaml -> frozen dataclasses, one per pipeline section.

Every key is typed. An unknown key, a value of the wrong type or a value out of range raises
:class:`ConfigError` naming the file and the dotted key. A profile file (``params/paper.yaml``)
overlays the base file key by key.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A params file is malformed; the message names the file and the key."""


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
    production_steps: int = 1_250_000
    steps_per_frame: int = 100
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
    k: int = 12

    def check(self, where: str) -> None:
        _positive(where, "modes.k", self.k)


@dataclass(frozen=True)
class GLEConfig:
    k: int = 12
    t_fit: int = 1000
    points: tuple[int, ...] = ()
    bootstrap: int = 200
    seed: int = 17

    def check(self, where: str) -> None:
        _positive(where, "gle.k", self.k)
        _at_least(where, "gle.t_fit", self.t_fit, 3)
        _at_least(where, "gle.bootstrap", self.bootstrap, 0)
        for p in self.points:
            _positive(where, "gle.points", p)
            if p >= self.t_fit:
                raise ConfigError(f"{where}: gle.points has lag {p} >= gle.t_fit ({self.t_fit})")


@dataclass(frozen=True)
class TrainConfig:
    history: int = 64
    t_train: int = 1000
    t_val: int = 600
    architecture: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    latent: int = 12
    activation: str = "relu"
    dropout: float = 0.0
    batch_size: int = 128
    lr: float = 1e-4
    epochs: int = 40
    patience: int = 10
    threads: int = 2
    seed: int = 1234

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


@dataclass(frozen=True)
class GenerateConfig:
    trajectories: int = 100
    frames: int = 12500
    seed: int = 99

    def check(self, where: str) -> None:
        _positive(where, "generate.trajectories", self.trajectories)
        _at_least(where, "generate.frames", self.frames, 2)


@dataclass(frozen=True)
class EvaluateConfig:
    d_window: tuple[int, int] = (3000, 6000)
    nacf_max_lag: int = 2000
    nacf_modes: tuple[int, ...] = (1, 2, 5, 10)
    band_level: float = 0.99
    seed: int = 7

    def check(self, where: str) -> None:
        if len(self.d_window) != 2 or not 0 < self.d_window[0] < self.d_window[1]:
            raise ConfigError(
                f"{where}: evaluate.d_window must be [t1, t2] with 0 < t1 < t2, got "
                f"{list(self.d_window)}"
            )
        _positive(where, "evaluate.nacf_max_lag", self.nacf_max_lag)
        for p in self.nacf_modes:
            _positive(where, "evaluate.nacf_modes", p)
        if not 0.0 < self.band_level < 1.0:
            raise ConfigError(
                f"{where}: evaluate.band_level must be in (0, 1), got {self.band_level}"
            )


@dataclass(frozen=True)
class SweepConfig:
    storage: str = ""
    seed: int = 2024
    studies: Mapping[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        for name, study in self.studies.items():
            key = f"sweep.studies.{name}"
            if not isinstance(study, Mapping):
                raise ConfigError(f"{where}: {key} must be a mapping")
            for required in ("metric", "direction", "space"):
                if required not in study:
                    raise ConfigError(f"{where}: {key}.{required} is missing")
            _choice(where, f"{key}.direction", study["direction"], ("minimize", "maximize"))
            _choice(where, f"{key}.sampler", study.get("sampler", "tpe"), ("grid", "tpe", "random"))


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
    # Temperature-conditioned model (mlgle loto); keys and values are checked by
    # mlgle.loto.LotoSettings.from_params, which names the file and the key.
    conditioned: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    def check(self) -> None:
        where = self.source
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if hasattr(section, "check"):
                section.check(where)
        for p in self.gle_points():
            if p >= self.gle.t_fit:
                raise ConfigError(
                    f"{where}: GLE regression lag {p} (from train.history) must be < gle.t_fit "
                    f"({self.gle.t_fit})"
                )

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
    if not value > 0:
        raise ConfigError(f"{where}: '{key}' must be > 0, got {value}")


def _at_least(where: str, key: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ConfigError(f"{where}: '{key}' must be >= {minimum}, got {value}")


def _choice(where: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: '{key}' must be one of {list(allowed)}, got {value!r}")


def add_params_option(parser: argparse.ArgumentParser) -> None:
    """``--params FILE`` (repeatable; later files overlay earlier ones) for a stage's parser."""
    parser.add_argument(
        "--params",
        action="append",
        type=Path,
        default=None,
        help="params file(s); later ones overlay earlier ones (default: params.yaml)",
    )


def params_from_args(args: argparse.Namespace) -> Params:
    """The params named by :func:`add_params_option` (default ``params.yaml``), validated."""
    return load_params(*(args.params or [Path("params.yaml")]))
