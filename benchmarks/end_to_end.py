"""End to end, both routes run for real (``make bench-e2e``): the ML-GLE route against the MD that
gives D_MD to the same precision, on the default system.

At one temperature (the first of params.yaml), with the default params and this machine's
resources (md.ranks MPI ranks, train.threads torch threads), ``--repeats`` pairs of runs, the two
routes alternating (ML-GLE then MD, MD then ML-GLE, ...) so that a drift of the machine's load
falls on both:

- **ML-GLE route**, each step the pipeline's own stage code (``mlgle.pipeline``): MD of push-off,
  equilibration and T_train + T_val frames; normal modes (Eq. 15); GLE fit with its bootstrap CI
  (Eqs. 26-27); NAR training; generation of generate.frames frames for generate.trajectories
  chains (Alg. 1, Eq. 13); D_ML-GLE (Eq. 35, CI over chains) and the generated NACFs.
- **MD route**: the same melt (same seed, so the route's MD is this run's first frames) to
  generate.frames x generate.trajectories / md.chains production frames, the same chain-frames
  Eq. 35 averages over as the generated run (so the same CI if the dynamics agree; both CIs are
  reported as measured); normal modes; D_MD from p = 0 (Eq. 35).

Each pair uses its own melt seed (md.seed + 1 + pair), independent of the pipeline's MD, whose
store (``--reference``, default ``data/modes/T<T>`` after ``dvc repro``) gives the D both routes
are judged against. Reported: the wall-clock ratio MD / ML-GLE per pair (median and range), every
stage's seconds, the D errors of both routes and of D_GLE, both CI half-widths, the 1-min load
average before and after every run and LAMMPS' CPU share; then, labelled as an estimate, the same
two routes at the paper's sizes (params/paper.yaml) from the measured per-unit costs
(:func:`paper_estimate`). Results merge into ``reports/benchmarks.json`` under "end_to_end"; the
run it replaces keeps its key figures in "end_to_end_history".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import load_report, machine, spread, timed, write_report
from benchmarks.generation import network_flops
from benchmarks.md_cost import loop_times
from benchmarks.report import targets, write_markdown
from mlgle import stats
from mlgle.config import Params, load_params
from mlgle.md.lammps_input import PUSHOFF_STEPS
from mlgle.md.melt import simulate
from mlgle.pipeline.fit_gle import fit_gle
from mlgle.pipeline.generate import generate
from mlgle.pipeline.modes import modes
from mlgle.pipeline.train import train
from mlgle.store import open_modes, read_json, temperature_tag

PAPER_PROFILE = Path("params/paper.yaml")


def break_even_frames(
    fixed_mlgle: float, per_frame_mlgle: float, fixed_md: float, per_frame_md: float
) -> float:
    """T_sim (frames) where the routes cost the same: F_ml + g T = F_md + c T.

    fixed_*: costs independent of T_sim (seconds); per_frame_*: cost per generated / simulated
    frame. Returns (F_ml - F_md) / (c - g), 0.0 when ML-GLE is never dearer, and inf when MD is
    never dearer (c <= g while F_ml > F_md).
    """
    values = {
        "fixed_mlgle": fixed_mlgle,
        "per_frame_mlgle": per_frame_mlgle,
        "fixed_md": fixed_md,
        "per_frame_md": per_frame_md,
    }
    for name, value in values.items():
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"break_even_frames: {name} must be finite and >= 0, got {value}")
    extra = fixed_mlgle - fixed_md
    saving = per_frame_md - per_frame_mlgle
    if extra <= 0:
        return 0.0
    if saving <= 0:
        return float("inf")
    return extra / saving


def md_frames_same_precision(params: Params) -> int:
    """Production frames of the MD route: generate.frames x generate.trajectories / md.chains
    (rounded up), the chain-frames the generated run gives Eq. 35."""
    cfg = params.generate
    return math.ceil(cfg.frames * cfg.trajectories / params.md.chains)


def _route_params(params: Params, seed: int) -> Params:
    """The ML-GLE route: MD of T_train + T_val production frames (T_fit where that is longer),
    melt seed ``seed``."""
    frames = _route_frames(params)
    md = dataclasses.replace(
        params.md, production_steps=frames * params.md.steps_per_frame, seed=seed
    )
    return dataclasses.replace(params, md=md)


def _route_frames(params: Params) -> int:
    """Production frames of MD the ML-GLE route needs: training, validation and the GLE fit."""
    return max(params.train.t_train + params.train.t_val, params.gle.t_fit)


def _md_params(params: Params, seed: int) -> Params:
    """The MD route: :func:`md_frames_same_precision` production frames, melt seed ``seed``."""
    steps = md_frames_same_precision(params) * params.md.steps_per_frame
    return dataclasses.replace(
        params, md=dataclasses.replace(params.md, production_steps=steps, seed=seed)
    )


def _md_rates(work: Path, start: float, config) -> dict[str, Any]:
    """Equilibration and production wall-clock from the segments' restart files (written at the
    end of each segment), and LAMMPS' loop time and CPU share per production segment."""
    restarts = sorted(work.glob("seg_*.restart"))
    ends = [p.stat().st_mtime for p in restarts]
    loops = [loop_times(p.with_suffix(".log").read_text())[-1] for p in restarts[1:]]
    return {
        "equilibration_seconds": ends[0] - start,
        "production_seconds": ends[-1] - ends[0],
        "production_steps": config.production_steps,
        "lammps_cpu_share": float(np.median([run.cpu_share for run in loops])),
        "segments": len(loops),
        "ranks": config.ranks,
    }


def _d_of_com(com: np.ndarray, dt: float, window: tuple[int, int]) -> stats.DiffusionEstimate:
    """Eq. 35 over ``window`` (frames) of the per-chain C.o.M MSDs; com (frames, chains, 3)."""
    return stats.diffusion_coefficient(
        stats.msd_per_trajectory(np.asarray(com, dtype=np.float64)), dt, *window
    )


def _d_entry(d: stats.DiffusionEstimate) -> dict[str, Any]:
    return {
        "D": d.value,
        "ci95": list(d.ci95),
        "ci95_rel_halfwidth": (d.ci95[1] - d.ci95[0]) / 2 / d.value,
    }


class _Stages:
    """Wall seconds of named stages, printed as they finish."""

    def __init__(self, route: str) -> None:
        self.route, self.seconds = route, {}

    def __call__(self, name: str, function: Callable[[], Any]) -> Any:
        self.seconds[name], result = timed(function)
        print(f"[bench-e2e] {self.route} {name}: {self.seconds[name]:.1f} s", flush=True)
        return result


def _load() -> float:
    return os.getloadavg()[0]


def mlgle_route(params: Params, temperature: float, work: Path) -> dict[str, Any]:
    """The ML-GLE route in ``work``: short MD, modes, GLE fit, training, generation, D."""
    stage, load_before = _Stages("ML-GLE"), _load()
    paths = {name: work / name for name in ("md", "md.work", "modes", "models", "generated")}
    gle_json = work / "gle.json"
    start = time.time()
    stage(
        "md",
        lambda: simulate(
            params.md, temperature, paths["md"], work_dir=paths["md.work"], progress=False,
            keep_work=True,
        ),
    )  # fmt: skip
    md = _md_rates(paths["md.work"], start, params.md)
    stage("modes", lambda: modes(params, paths["md"], paths["modes"]))
    fit = stage("gle_fit", lambda: fit_gle(params, paths["modes"], gle_json))
    stage("train", lambda: train(params, paths["modes"], paths["models"], False, False))
    generated = paths["generated"]
    stage(
        "generate",
        lambda: generate(params, paths["models"], paths["modes"], gle_json, generated, False),
    )
    ev = params.evaluate

    def evaluate() -> stats.DiffusionEstimate:
        gen = np.load(generated / "modes.npy", mmap_mode="r")
        for j in range(gen.shape[2]):
            stats.acf(np.asarray(gen[:, :, j], dtype=np.float64))[: ev.nacf_max_lag + 1]
        return _d_of_com(np.load(generated / "com.npy"), fit["dt"], ev.d_window)

    d = stage("evaluate", evaluate)
    summary = read_json(paths["models"] / "summary.json", "mlgle train")
    return {
        "seconds": sum(stage.seconds.values()),
        "stage_seconds": stage.seconds,
        "md": md,
        "epochs_run": summary["epochs_run"],
        "matmul_backend": read_json(generated / "meta.json", "mlgle generate").get(
            "matmul_backend"
        ),
        "D_mlgle": _d_entry(d),
        "D_gle": fit["D_gle"],
        "load_average_1min": {"before": load_before, "after": _load()},
    }


def md_route(params: Params, temperature: float, work: Path) -> dict[str, Any]:
    """The MD route in ``work``: MD to :func:`md_frames_same_precision` frames, modes, D_MD."""
    stage, load_before = _Stages("MD"), _load()
    paths = {name: work / name for name in ("md", "md.work", "modes")}
    start = time.time()
    stage(
        "md",
        lambda: simulate(
            params.md, temperature, paths["md"], work_dir=paths["md.work"], progress=False,
            keep_work=True,
        ),
    )  # fmt: skip
    md = _md_rates(paths["md.work"], start, params.md)
    stage("modes", lambda: modes(params, paths["md"], paths["modes"]))

    def evaluate() -> stats.DiffusionEstimate:
        z, meta = open_modes(paths["modes"])
        return _d_of_com(z[:, :, 0], meta.dt, params.evaluate.d_window)

    d = stage("evaluate", evaluate)
    return {
        "seconds": sum(stage.seconds.values()),
        "stage_seconds": stage.seconds,
        "md": md,
        "production_frames": params.md.production_steps // params.md.steps_per_frame,
        "D_md": _d_entry(d),
        "load_average_1min": {"before": load_before, "after": _load()},
    }


def reference_d(store: Path, window: tuple[int, int]) -> dict[str, Any]:
    """D_MD (Eq. 35) of the C.o.M (p = 0) of a modes store, with its CI."""
    z, meta = open_modes(store)
    d = _d_of_com(z[:, :, 0], meta.dt, window)
    return {"store": str(store), "frames": int(meta.frames), "chains": int(meta.chains)} | (
        _d_entry(d)
    )


def unit_costs(params: Params, mlgle: dict[str, Any], md: dict[str, Any]) -> dict[str, float]:
    """Seconds per unit of work, from one ML-GLE route and one MD route of ``params``' sizes.

    MD: per bead-step of equilibration (push-off included) and of production (the MD route's
    segments), and per bead-frame for gathering the frames into the store; modes: per
    bead-frame; GLE fit: per chain-frame of T_fit; training: per
    network-FLOP of forward + backward (3x the forward's 2 Σ in·out, Eq. 22's MLP) over the
    training windows and the epochs run; generation: per network-FLOP of the generated steps;
    evaluation: per generated chain-frame (ML-GLE) or simulated chain-frame (MD).
    """
    c, n = params.md.chains, params.md.beads
    tr, gen = params.train, params.generate
    k = min(params.modes.k, n - 1)
    md_frames = md["production_frames"] + 1
    flops = k * network_flops(tr.history, tr.hidden, tr.latent)
    equilibration_steps = params.md.equilibration_steps + PUSHOFF_STEPS
    rates = md["md"]
    store = md["stage_seconds"]["md"] - rates["equilibration_seconds"] - rates["production_seconds"]
    return {
        "md_equilibration_per_bead_step": rates["equilibration_seconds"]
        / (c * n * equilibration_steps),
        "md_production_per_bead_step": rates["production_seconds"]
        / (c * n * rates["production_steps"]),
        "md_store_per_bead_frame": store / (c * n * md_frames),
        "modes_per_bead_frame": md["stage_seconds"]["modes"] / (c * n * md_frames),
        "gle_fit_per_chain_frame": mlgle["stage_seconds"]["gle_fit"] / (c * params.gle.t_fit),
        "train_per_flop": mlgle["stage_seconds"]["train"]
        / (3 * flops * c * (tr.t_train - tr.history) * mlgle["epochs_run"]),
        "generate_per_flop": mlgle["stage_seconds"]["generate"]
        / (flops * gen.trajectories * gen.frames),
        "evaluate_mlgle_per_chain_frame": mlgle["stage_seconds"]["evaluate"]
        / (gen.trajectories * gen.frames),
        "evaluate_md_per_chain_frame": md["stage_seconds"]["evaluate"] / (c * md_frames),
    }


def paper_estimate(costs: dict[str, float], params: Params) -> dict[str, Any]:
    """Both routes' seconds at ``params``' sizes from :func:`unit_costs`: an estimate, every
    stage taken as linear in its unit of work, training for all train.epochs epochs (an upper
    bound where early stopping ends it sooner; the paper's profile has patience 0).

    Returns {"mlgle": {stage: s}, "md": {stage: s}, "mlgle_seconds", "md_seconds",
    "md_over_mlgle", "md_frames"} and the MD alone to md.production_steps ("t_sim_frames",
    "md_to_t_sim_seconds"), the study's T_sim, where that differs from the chain-frames match.
    """
    c, n, spf = params.md.chains, params.md.beads, params.md.steps_per_frame
    tr, gen = params.train, params.generate
    k = min(params.modes.k, n - 1)
    flops = k * network_flops(tr.history, tr.hidden, tr.latent)
    equilibration = costs["md_equilibration_per_bead_step"] * c * n * (
        params.md.equilibration_steps + PUSHOFF_STEPS
    )
    route_frames = _route_frames(params)
    md_frames = md_frames_same_precision(params)
    production = costs["md_production_per_bead_step"] * c * n * spf
    production += costs["md_store_per_bead_frame"] * c * n  # per frame, gathered and stored
    store_frame_0 = costs["md_store_per_bead_frame"] * c * n
    mlgle = {
        "md": equilibration + store_frame_0 + production * route_frames,
        "modes": costs["modes_per_bead_frame"] * c * n * (route_frames + 1),
        "gle_fit": costs["gle_fit_per_chain_frame"] * c * params.gle.t_fit,
        "train": costs["train_per_flop"] * 3 * flops * c * (tr.t_train - tr.history) * tr.epochs,
        "generate": costs["generate_per_flop"] * flops * gen.trajectories * gen.frames,
        "evaluate": costs["evaluate_mlgle_per_chain_frame"] * gen.trajectories * gen.frames,
    }
    md = {
        "md": equilibration + store_frame_0 + production * md_frames,
        "modes": costs["modes_per_bead_frame"] * c * n * (md_frames + 1),
        "evaluate": costs["evaluate_md_per_chain_frame"] * c * (md_frames + 1),
    }
    total_mlgle, total_md = sum(mlgle.values()), sum(md.values())
    t_sim = params.md.production_steps // spf
    return {
        "mlgle": mlgle,
        "md": md,
        "mlgle_seconds": total_mlgle,
        "md_seconds": total_md,
        "md_over_mlgle": total_md / total_mlgle,
        "md_frames": md_frames,
        "t_sim_frames": t_sim,
        "md_to_t_sim_seconds": equilibration + store_frame_0 + production * t_sim,
    }


def run(
    params: Params, repeats: int, reference: Path | None, work: Path, paper: Params | None
) -> dict[str, Any]:
    """``repeats`` pairs of (ML-GLE route, MD route) in ``work``, alternating which runs first."""
    temperature = params.md.temperatures[0]
    pairs = []
    for pair in range(repeats):
        seed = params.md.seed + 1 + pair
        routes = {
            "mlgle": lambda p=pair, s=seed: mlgle_route(
                _route_params(params, s), temperature, work / f"pair{p}" / "mlgle"
            ),
            "md": lambda p=pair, s=seed: md_route(
                _md_params(params, s), temperature, work / f"pair{p}" / "md"
            ),
        }
        order = ["mlgle", "md"] if pair % 2 == 0 else ["md", "mlgle"]
        result: dict[str, Any] = {"seed": seed, "order": order}
        for name in order:
            result[name] = routes[name]()
        result["md_over_mlgle"] = result["md"]["seconds"] / result["mlgle"]["seconds"]
        print(f"[bench-e2e] pair {pair}: MD / ML-GLE = {result['md_over_mlgle']:.3g}", flush=True)
        pairs.append(result)
    summary = _summary(params, pairs, reference)
    if paper is not None:
        each = [unit_costs(params, p["mlgle"], p["md"]) for p in pairs]
        costs = {name: float(np.median([c[name] for c in each])) for name in each[0]}
        summary["paper_estimate"] = {
            "is": (
                "an estimate: the measured seconds per unit of work (MD bead-steps and "
                "bead-frames, network FLOPs of training and generation, chain-frames of the "
                "analyses; medians over the pairs) scaled to "
                f"{PAPER_PROFILE}'s sizes on this machine, the MD route again to the generated "
                "run's chain-frames. Generation's work outside the matmuls is scaled with the "
                "FLOPs too, which overstates it at the paper's wider windows (conservative for "
                "ML-GLE)"
            ),
            "unit_costs": costs,
            **paper_estimate(costs, paper),
        }
    return summary


def _summary(
    params: Params, pairs: list[dict[str, Any]], reference: Path | None
) -> dict[str, Any]:
    """Ratios, D errors and loads of the pairs; the break-even T_sim from their medians."""
    ev, first = params.evaluate, pairs[0]

    def med(get: Callable[[dict], float]) -> float:
        return float(np.median([get(p) for p in pairs]))

    def per_frame(p: dict) -> float:  # the ML-GLE route's cost that grows with T_gen
        seconds = p["mlgle"]["stage_seconds"]
        return (seconds["generate"] + seconds["evaluate"]) / generated_frames

    generated_frames = params.generate.frames
    mlgle_s, per_frame_mlgle = med(lambda p: p["mlgle"]["seconds"]), med(per_frame)
    md_frames = first["md"]["production_frames"]
    # Per generated frame: the MD route runs the chain-frames of one generated frame in
    # trajectories / chains of its frames, so both per-frame costs count the same precision.
    per_frame_md = med(lambda p: p["md"]["seconds"] - p["md"]["md"]["equilibration_seconds"])
    per_frame_md /= generated_frames
    result: dict[str, Any] = {
        "temperature": params.md.temperatures[0],
        "t_train": params.train.t_train,
        "t_val": params.train.t_val,
        "generated_frames": generated_frames,
        "trajectories": params.generate.trajectories,
        "md_frames": md_frames,
        "chains": params.md.chains,
        "md_ranks": params.md.ranks,
        "torch_threads": params.train.threads,
        "d_window": list(ev.d_window),
        "pairs": pairs,
        "md_over_mlgle": spread([p["md_over_mlgle"] for p in pairs]),
        "speedup_vs_md": med(lambda p: p["md_over_mlgle"]),  # DESIGN's name: the median
        "mlgle_route_seconds": spread([p["mlgle"]["seconds"] for p in pairs]),
        "md_route_seconds": spread([p["md"]["seconds"] for p in pairs]),
        "break_even_frames": break_even_frames(
            mlgle_s - per_frame_mlgle * generated_frames,
            per_frame_mlgle,
            med(lambda p: p["md"]["md"]["equilibration_seconds"]),
            per_frame_md,
        ),
        "load_average_1min": spread(
            [
                p[route]["load_average_1min"][when]
                for p in pairs
                for route in ("mlgle", "md")
                for when in ("before", "after")
            ]
        ),
        "lammps_cpu_share": spread(
            [p[r]["md"]["lammps_cpu_share"] for p in pairs for r in ("mlgle", "md")]
        ),
        "machine": machine(params.train.threads),
    }
    result["D_error_mlgle"] = None  # DESIGN's name: the median error, with a reference
    if reference is None:
        print(
            "[bench-e2e] no reference MD store (data/modes/T<T> after `dvc repro`, or "
            "--reference): D errors not computed",
            flush=True,
        )
        return result
    ref = reference_d(reference, ev.d_window)
    d_ref = ref["D"]
    result["reference"] = ref
    result["D_errors"] = {
        name: spread([get(p) / d_ref - 1 for p in pairs])
        for name, get in (
            ("mlgle", lambda p: p["mlgle"]["D_mlgle"]["D"]),
            ("gle", lambda p: p["mlgle"]["D_gle"]),
            ("md", lambda p: p["md"]["D_md"]["D"]),
        )
    }
    result["D_error_mlgle"] = result["D_errors"]["mlgle"]["median"]
    result["ci95_rel_halfwidth"] = {
        "mlgle": spread([p["mlgle"]["D_mlgle"]["ci95_rel_halfwidth"] for p in pairs]),
        "md": spread([p["md"]["D_md"]["ci95_rel_halfwidth"] for p in pairs]),
    }
    return result


def history_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The key figures of an earlier end-to-end run, kept when a new run replaces it."""
    if "pairs" not in result:  # a run of the extrapolating benchmark before both ran for real
        return {
            "started_at": result.get("started_at"),
            "md_over_mlgle": result.get("speedup_vs_md"),
            "md_is": "extrapolated",
            "mlgle_route_seconds": result.get("mlgle_route_seconds"),
            "md_route_seconds": result.get("md_to_t_sim_seconds"),
            "load_average_1min": result["machine"]["load_average_1min"],
        }
    return {
        "started_at": result.get("started_at"),
        "md_over_mlgle": result["md_over_mlgle"]["median"],
        "md_is": "run",
        "mlgle_route_seconds": result["mlgle_route_seconds"]["median"],
        "md_route_seconds": result["md_route_seconds"]["median"],
        "load_average_1min": result["load_average_1min"]["max"],
    }


def quick_params(params: Params) -> Params:
    """Tiny sizes for a smoke test of the machinery (numbers meaningless)."""
    return dataclasses.replace(
        params,
        md=dataclasses.replace(
            params.md, chains=10, equilibration_steps=1000, restart_every=2000
        ),
        train=dataclasses.replace(params.train, history=8, t_train=60, t_val=30, epochs=1),
        gle=dataclasses.replace(params.gle, t_fit=60, bootstrap=10),
        generate=dataclasses.replace(params.generate, trajectories=10, frames=200),
        evaluate=dataclasses.replace(params.evaluate, d_window=(50, 100), nacf_max_lag=50),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--reference", type=Path, default=None, help="modes store of long MD")
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs (default 2)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    params = load_params(args.params)
    paper = load_params(args.params, PAPER_PROFILE) if PAPER_PROFILE.is_file() else None
    if args.quick:
        params = quick_params(params)
    reference = args.reference
    if reference is None:
        default = Path("data/modes") / temperature_tag(params.md.temperatures[0])
        reference = default if default.is_dir() else None
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="mlgle-bench-e2e-") as tmp:
        result = {
            "started_at": started,
            "quick": args.quick,
            **run(params, args.repeats, reference, Path(tmp), paper),
        }
    previous = load_report(args.out)
    history = previous.get("end_to_end_history", [])
    replaced = previous.get("end_to_end")
    if replaced is not None and not replaced.get("quick"):  # a smoke test's numbers mean nothing
        history = [*history, history_entry(replaced)]
    report = write_report(args.out, {"end_to_end": result, "end_to_end_history": history})
    report = write_report(args.out, {"targets": targets(report)})
    write_markdown(args.out, report)
    print(json.dumps({k: v for k, v in result.items() if k != "pairs"}, indent=2))


if __name__ == "__main__":
    main()
