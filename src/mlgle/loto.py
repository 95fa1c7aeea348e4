"""Leave-one-temperature-out (LOTO) study: D at a temperature the NAR model never saw (Sec. 5).

One :mod:`mlgle.nar.conditioned` model is trained on every reference temperature but one, modes
are generated at the left-out temperature T* and evaluated exactly as the per-temperature
models are (:func:`mlgle.report.evaluation.evaluate`: D_MD, D_ML-GLE (Eq. 35), NACF band share
(Eq. 34)). The C.o.M needs α(T*), β(T*) (Eq. 13), obtained two ways and both evaluated:

- ``interpolate``: the per-temperature fits of Eq. 27 (GLEFit on the first T_fit frames, as
  ``mlgle fit-gle``) at the training temperatures, log α² and log β² interpolated linearly in
  1/T (Arrhenius form; exact at the training temperatures);
- ``refit``: Eq. 27 solved at T* with the right-hand side's mode MSDs Σ_j ⟨Δz_j²⟩(t) taken from
  the GENERATED modes at T* and the left-hand side, the short-time C.o.M MSD at the regression
  lags, interpolated (log, linear in 1/T) from the training temperatures' first T_fit frames.

Both C.o.M variants share one Brownian path B(t), so their difference is α, β alone. Stages
(``mlgle loto train|generate|evaluate|report``) write only the paths given; the settings come
from the ``conditioned:`` section of params.yaml (defaults in :class:`LotoSettings`). The table,
metrics and D(T) figure of ``report`` live in :mod:`mlgle.report.loto`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize

from mlgle import stats
from mlgle.config import (
    ConfigError,
    Params,
    TrainConfig,
    add_params_option,
    params_from_args,
)
from mlgle.gle import GLEFit, GLEModel
from mlgle.nar.conditioned import CONDITIONINGS, SCALES, interpolate_log
from mlgle.store import atomic_dir, open_modes, temperature_tag, write_json

GLE_VARIANTS = ("interpolate", "refit")
INITIALS = ("nearest", "target")


@dataclass(frozen=True)
class LotoSettings:
    """The ``conditioned:`` section of params.yaml.

    conditioning: film | concat (how T enters the mode networks); scales: interpolate | pooled
    (σ_z, σ_Δz across T); gle: interpolate | refit (the α, β behind the headline D_ML-GLE; both
    are always evaluated); initial: nearest | target (initial windows from the nearest training
    temperature, rescaled to σ_z(T*), so no data at T* is used to generate; or from the MD at T*
    after t_train, as the per-temperature generate stage does); leave_out: temperatures left out
    one at a time, () = every interior temperature; epochs, patience, seed replace those of the
    ``train`` section (the other training settings are shared with it). An epoch visits every
    training temperature's windows, so with two of them the default 10 epochs make as many
    optimiser steps as the per-temperature default of 20; seed = train.seed starts every mode
    network from the per-temperature model's initial weights.
    """

    conditioning: str = "film"
    scales: str = "interpolate"
    gle: str = "interpolate"
    initial: str = "nearest"
    leave_out: tuple[float, ...] = ()
    epochs: int = 10
    patience: int = 5
    seed: int = 1234

    def check(self, where: str) -> None:
        for key, allowed in (
            ("conditioning", CONDITIONINGS),
            ("scales", SCALES),
            ("gle", GLE_VARIANTS),
            ("initial", INITIALS),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"{where}: 'conditioned.{key}' must be one of {list(allowed)}, "
                    f"got {getattr(self, key)!r}"
                )
        for key, minimum in (("epochs", 1), ("patience", 0)):
            value = getattr(self, key)
            if not isinstance(value, int) or value < minimum:
                raise ConfigError(
                    f"{where}: 'conditioned.{key}' must be an integer >= {minimum}, got {value!r}"
                )

    @classmethod
    def from_params(cls, params: Params) -> LotoSettings:
        """``params.conditioned`` (a dataclass or mapping) over the defaults, checked."""
        section = getattr(params, "conditioned", None) or {}
        data = dataclasses.asdict(section) if dataclasses.is_dataclass(section) else dict(section)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"{params.source}: unknown key 'conditioned.{unknown[0]}' (expected one of: "
                f"{', '.join(sorted(names))})"
            )
        if "leave_out" in data:
            data["leave_out"] = tuple(float(t) for t in data["leave_out"])
        settings = cls(**data)
        settings.check(params.source)
        return settings

    def train_config(self, params: Params) -> TrainConfig:
        """The ``train`` section with this section's epochs, patience and seed."""
        return dataclasses.replace(
            params.train, epochs=self.epochs, patience=self.patience, seed=self.seed
        )


def left_out_temperatures(params: Params, settings: LotoSettings) -> tuple[float, ...]:
    """``settings.leave_out``, or all interior temperatures of md.temperatures, checked."""
    chosen = settings.leave_out or tuple(sorted(params.md.temperatures)[1:-1])
    if not chosen:
        raise ConfigError(
            f"{params.source}: md.temperatures {list(params.md.temperatures)} has no interior "
            "temperature to leave out (need at least three)"
        )
    for t in chosen:
        check_left_out(params, t)
    return tuple(chosen)


def check_left_out(params: Params, temperature: float) -> tuple[float, ...]:
    """The training temperatures for leaving ``temperature`` out; it must be an interior one of
    md.temperatures (only interpolation in T is supported)."""
    temps = sorted(params.md.temperatures)
    if temperature not in temps or not temps[0] < temperature < temps[-1]:
        raise ConfigError(
            f"{params.source}: left-out temperature {temperature:g} must be an interior value of "
            f"md.temperatures {temps}"
        )
    return tuple(t for t in temps if t != temperature)


# ---------------------------------------------------------------------------------------------
# GLE parameters at an unseen temperature


def interpolate_gle(fits: Mapping[float, GLEModel], temperature: float) -> GLEModel:
    """α(T*), β(T*): log α² and log β² linear in 1/T between the per-temperature fits (Eq. 27).

    fits: training temperature -> GLEModel (same dt, points, k). Exact at a training temperature;
    a zero β² interpolates linearly in β². Outside the training range: ValueError.
    """
    models = list(fits.values())
    if len({(m.dt, m.points, m.k) for m in models}) != 1:
        raise ValueError("fits: the GLE fits differ in dt, points or k; cannot interpolate")
    squares = np.array([[m.alpha**2, m.beta**2] for m in models])
    alpha2, beta2 = interpolate_log(np.array(list(fits)), squares, temperature, "temperature")
    first = models[0]
    return GLEModel(float(np.sqrt(alpha2)), float(np.sqrt(beta2)), first.dt, first.points, first.k)


def com_msd_1d(com: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """1D C.o.M MSD ⟨ΔX²⟩ at ``lags``: com (frames, chains, 3) -> (lags,) (Eq. 26's left side)."""
    return stats.msd(com)[list(lags)] / 3.0


def mode_msd_1d(modes: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """Σ_j 1D mode MSD ⟨Δz_j²⟩ at ``lags``: modes (frames, n, k, 3) -> (lags,) (Eq. 26)."""
    frames, n = modes.shape[:2]
    return stats.msd(modes.reshape(frames, n, -1))[list(lags)] / 3.0


def refit_gle(
    com_msd: Mapping[float, np.ndarray],
    modes_msd: np.ndarray,
    temperature: float,
    points: Sequence[int],
    dt: float,
    k: int,
) -> GLEModel:
    """Eq. 27 at T*: NNLS of y(T*) ≈ α² t + β² s(T*) at the lags ``points``.

    com_msd: training temperature -> 1D C.o.M MSD at the lags (lags,), interpolated in log along
    1/T to y(T*); modes_msd: s(T*) = Σ_j 1D MSD of the generated modes at the lags (lags,).
    """
    nodes = np.array(list(com_msd))
    y = interpolate_log(nodes, np.stack(list(com_msd.values())), temperature, "temperature")
    s = np.asarray(modes_msd, dtype=np.float64)
    if y.shape != s.shape or s.shape != (len(points),):
        raise ValueError(f"modes_msd: expected shape ({len(points)},) at the lags, got {s.shape}")
    t = np.asarray(points, dtype=np.float64) * dt
    (alpha2, beta2), _ = scipy.optimize.nnls(np.column_stack([t, s]), y)
    return GLEModel(
        float(np.sqrt(alpha2)), float(np.sqrt(beta2)), float(dt), tuple(int(p) for p in points), k
    )


def _gle_json(model: GLEModel) -> dict[str, Any]:
    return {
        "alpha": model.alpha,
        "beta": model.beta,
        "D_gle": model.diffusion,
        "dt": model.dt,
        "points": list(model.points),
        "k": model.k,
    }


def _gle_from_json(data: Mapping[str, Any]) -> GLEModel:
    return GLEModel(data["alpha"], data["beta"], data["dt"], tuple(data["points"]), data["k"])


# ---------------------------------------------------------------------------------------------
# Stages


def _store(modes_dir: Path, temperature: float) -> tuple[np.ndarray, Any]:
    """Memory-mapped modes (frames, chains, K + 1, 3) and meta of one temperature's store."""
    path = Path(modes_dir) / temperature_tag(temperature)
    mapped, meta = open_modes(path)
    if not np.isclose(meta.temperature, temperature):
        raise ConfigError(f"{path}: store holds T = {meta.temperature:g}, expected {temperature:g}")
    return mapped, meta


def _k(params: Params, mapped: np.ndarray) -> int:
    return min(params.gle.k, mapped.shape[2] - 1)


def train(
    params: Params,
    settings: LotoSettings,
    modes_dir: Path,
    left_out: float,
    out: Path,
    progress: bool = True,
    tracking: bool = True,
) -> Path:
    """One conditioned model on all md.temperatures but ``left_out`` (frames [0, t_train) train,
    the next t_val validate, as ``mlgle train``). Writes ``out/model.pt``, ``out/nll.csv`` and
    ``out/summary.json``; a checkpoint beside ``out`` makes a killed run resumable."""
    from mlgle.nar.conditioned import fit_conditioned
    from mlgle.stages import write_training

    temps = check_left_out(params, left_out)
    config = settings.train_config(params)
    needed = config.t_train + config.t_val
    datasets = []
    for t in temps:
        mapped, meta = _store(modes_dir, t)
        if needed > meta.frames:
            raise ConfigError(f"{params.source}: t_train + t_val = {needed} > {meta.frames} frames")
        datasets.append(np.asarray(mapped[:needed, :, 1 : _k(params, mapped) + 1], np.float64))
    k = datasets[0].shape[2]
    checkpoint = out.with_name(f".{out.name}.checkpoint.pt")
    mode_ids = list(range(1, k + 1))
    start = time.perf_counter()

    def fit(callback=None):
        return fit_conditioned(
            datasets,
            list(temps),
            config,
            settings.conditioning,
            settings.scales,
            callback=callback,
            checkpoint=checkpoint,
            progress=progress,
        )

    info = {"left_out": left_out, "trained_on": list(temps), **dataclasses.asdict(settings)}
    if tracking:
        from mlgle.tracking import EpochLogger, Tracker

        with Tracker(params.tracking).run(
            f"loto train T={left_out:g}", params, stage="loto-train", temperature=left_out
        ) as run:
            run.log_params({"conditioned": dataclasses.asdict(settings)})
            logger = EpochLogger(run, mode_ids)
            fitted = fit(logger)
            logger.close(fitted.best_epoch, fitted.val_nll[fitted.best_epoch, np.arange(k)])
            write_training(out, fitted, mode_ids, {**info, "seconds": time.perf_counter() - start})
            run.log_artifact(out / "nll.csv")
            run.log_artifact(out / "summary.json")
    else:
        fitted = fit()
        write_training(out, fitted, mode_ids, {**info, "seconds": time.perf_counter() - start})
    checkpoint.unlink(missing_ok=True)
    return out


def _initial(
    params: Params, settings: LotoSettings, fitted, modes_dir: Path, left_out: float
) -> tuple[np.ndarray, float]:
    """Initial windows (m, n, k, 3) at T* and the temperature they were drawn from."""
    from mlgle.nar.generate import initial_windows

    trained = [float(f) for f in fitted.scales.features[:, 0]]
    source = left_out
    if settings.initial == "nearest":
        source = min(trained, key=lambda t: (abs(t - left_out), t))
    mapped, _ = _store(modes_dir, source)
    k, m, cfg = fitted.model.modes, fitted.history, params.generate
    windows = initial_windows(
        mapped[:, :, 1 : k + 1], params.train.t_train, m, cfg.trajectories, cfg.seed
    )
    windows = windows.astype(np.float64)
    if source != left_out:  # same standardised window, rescaled to σ_z(T*)
        own = fitted.scales.training(trained.index(source)).sigma_z
        windows *= (fitted.standardisation(left_out).sigma_z / own)[:, None]
    return windows, source


def generate(
    params: Params,
    settings: LotoSettings,
    model_dir: Path,
    modes_dir: Path,
    left_out: float,
    out: Path,
    progress: bool = True,
) -> Path:
    """Alg. 1 at T* with the conditioned model and the C.o.M (Eq. 13) for both GLE variants.

    Writes ``out/modes.npy`` (frames, n, k, 3) float32, ``out/com_interpolate.npy`` and
    ``out/com_refit.npy`` (frames, n, 3) float32 from 0 with one shared Brownian path,
    ``out/gle.json`` (both variants' α, β) and ``out/meta.json``.
    """
    import torch

    from mlgle.nar.conditioned import ConditionedModes

    torch.set_num_threads(params.train.threads)
    fitted = ConditionedModes.load(Path(model_dir) / "model.pt")
    temps = [float(f) for f in fitted.scales.features[:, 0]]
    if tuple(temps) != check_left_out(params, left_out):
        raise ConfigError(f"{model_dir}: model trained on T = {temps}, not all but {left_out:g}")
    cfg, k = params.generate, fitted.model.modes
    initial, source = _initial(params, settings, fitted, modes_dir, left_out)
    start = time.perf_counter()
    gen = fitted.generate(left_out, initial, cfg.frames, cfg.seed, progress)
    seconds = time.perf_counter() - start
    points, t_fit = params.gle_points(), params.gle.t_fit
    fits, com_msd = {}, {}
    for t in temps:
        mapped, meta = _store(modes_dir, t)
        z = np.asarray(mapped[:t_fit, :, : k + 1], dtype=np.float64)
        fits[t] = GLEFit(points=points, k=k).fit(z[:, :, 0], z[:, :, 1:], meta.dt)
        com_msd[t] = com_msd_1d(z[:, :, 0], points)
    variants = {
        "interpolate": interpolate_gle(fits, left_out),
        "refit": refit_gle(com_msd, mode_msd_1d(gen, points), left_out, points, meta.dt, k),
    }
    with atomic_dir(out) as tmp:
        np.save(tmp / "modes.npy", gen.astype(np.float32, copy=False))
        for name, gle in variants.items():
            com = gle.generate_com(gen, np.random.default_rng(cfg.seed + 1))
            np.save(tmp / f"com_{name}.npy", com.astype(np.float32))
        write_json(
            tmp / "gle.json",
            {
                "temperature": left_out,
                "primary": settings.gle,
                **{name: _gle_json(gle) for name, gle in variants.items()},
                "per_temperature": {repr(t): _gle_json(f) for t, f in fits.items()},
            },
        )
        write_json(
            tmp / "meta.json",
            {
                "temperature": left_out,
                "dt": meta.dt,
                "frames": cfg.frames,
                "trajectories": cfg.trajectories,
                "modes": list(range(1, k + 1)),
                "history": fitted.history,
                "seed": cfg.seed,
                "trained_on": temps,
                "initial": settings.initial,
                "initial_windows_from": {"temperature": source, "frame": params.train.t_train},
                "generation_seconds": seconds,
            },
        )
    return out


def evaluate(
    params: Params,
    settings: LotoSettings,
    modes_dir: Path,
    generated: Path,
    left_out: float,
    out: Path,
    tracking: bool = True,
) -> dict[str, Any]:
    """Generated vs MD at T*, exactly as ``mlgle evaluate`` (same function and settings), once
    per GLE variant. Writes ``out/summary.json`` (the primary variant's summary plus
    ``variants``), ``out/evaluation.npz`` and Figs. 9 and 13 of the primary variant."""
    from mlgle.report.evaluation import evaluate as compare
    from mlgle.stages import write_evaluation

    check_left_out(params, left_out)
    mapped, meta = _store(modes_dir, left_out)
    z = np.asarray(mapped, dtype=np.float64)
    generated = Path(generated)
    gen = np.load(generated / "modes.npy").astype(np.float64)
    gles = json.loads((generated / "gle.json").read_text())
    trained_on = json.loads((generated / "meta.json").read_text())["trained_on"]
    ev = params.evaluate
    results = {}
    for name in GLE_VARIANTS:
        com = np.load(generated / f"com_{name}.npy").astype(np.float64)
        results[name] = compare(
            z,
            gen,
            com,
            _gle_from_json(gles[name]),
            meta.dt,
            meta.temperature,
            ev.d_window,
            ev.nacf_max_lag,
            ev.band_level,
            ev.seed,
        )
    data, summary = results[settings.gle]
    summary = {
        **summary,
        "trained_on": trained_on,
        "conditioning": settings.conditioning,
        "scales": settings.scales,
        "initial": settings.initial,
        "gle": settings.gle,
        "variants": {
            name: {
                "alpha": gles[name]["alpha"],
                "beta": gles[name]["beta"],
                "D_gle": s["D_gle"],
                "D_mlgle": s["D_mlgle"],
                "D_mlgle_ci95": s["D_mlgle_ci95"],
            }
            for name, (_, s) in results.items()
        },
    }
    write_evaluation(out, data, summary, ev.nacf_modes)
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run(
            f"loto evaluate T={left_out:g}", params, stage="loto-evaluate", temperature=left_out
        ) as run:
            run.log_params({"conditioned": dataclasses.asdict(settings)})
            metrics = {k: v for k, v in summary.items() if isinstance(v, float)}
            for name, v in summary["variants"].items():
                metrics[f"D_mlgle_{name}"] = v["D_mlgle"]
                metrics[f"D_gle_{name}"] = v["D_gle"]
                metrics[f"err_{name}"] = v["D_mlgle"] / summary["D_md"] - 1
            run.log_metrics(metrics)
            for name in ("summary.json", "fig09_nacf.png", "fig13_mlgle_msd.png"):
                run.log_artifact(out / name)
    return summary


# ---------------------------------------------------------------------------------------------
# Command line: `mlgle loto <action>`


def add_loto_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``loto`` with actions train | generate | evaluate | report to ``mlgle``'s parsers."""
    parser = subparsers.add_parser(
        "loto",
        help="leave-one-temperature-out: one NAR model conditioned on T, D at an unseen T",
    )
    actions = parser.add_subparsers(dest="loto_action", required=True, metavar="<action>")

    def action(name: str, help: str, *, left_out: bool = True) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help)
        add_params_option(p)
        if left_out:
            p.add_argument("--leave-out", type=float, required=True, help="T* left out")
        return p

    p = action("train", "train one conditioned model on all temperatures but T*")
    p.add_argument("--modes-dir", type=Path, default=Path("data/modes"), help="holds T<T>/")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")

    p = action("generate", "generate modes at T* and the C.o.M for both GLE variants")
    p.add_argument("--model", type=Path, required=True, help="model directory (loto train)")
    p.add_argument("--modes-dir", type=Path, default=Path("data/modes"), help="holds T<T>/")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    p.add_argument("--no-progress", action="store_true")

    p = action("evaluate", "generated vs MD at T*, as mlgle evaluate")
    p.add_argument("--modes-dir", type=Path, default=Path("data/modes"), help="holds T<T>/")
    p.add_argument("--generated", type=Path, required=True, help="loto generate output")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")

    p = action("report", "LOTO table and D(T) figure", left_out=False)
    p.add_argument("--loto", type=Path, required=True, help="holds T<T>/summary.json (evaluate)")
    p.add_argument("--evaluations", type=Path, required=True, help="per-temperature T<T>/")
    p.add_argument("--out", type=Path, default=Path("reports/loto"))
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    return parser


def main_loto(args: argparse.Namespace) -> None:
    """Run the ``mlgle loto`` action parsed by :func:`add_loto_parser`."""
    params = params_from_args(args)
    settings = LotoSettings.from_params(params)
    action = args.loto_action
    if action == "train":
        train(
            params,
            settings,
            args.modes_dir,
            args.leave_out,
            args.out,
            not args.no_progress,
            not args.no_tracking,
        )
    elif action == "generate":
        generate(
            params,
            settings,
            args.model,
            args.modes_dir,
            args.leave_out,
            args.out,
            not args.no_progress,
        )
    elif action == "evaluate":
        evaluate(
            params,
            settings,
            args.modes_dir,
            args.generated,
            args.leave_out,
            args.out,
            not args.no_tracking,
        )
    else:
        from mlgle.report.loto import report

        report(params, settings, args.loto, args.evaluations, args.out, not args.no_tracking)
