"""End to end at the paper's 1 % ratio (``make bench-e2e``): the ML-GLE route against MD to T_sim.

At one temperature (the first of params.yaml) with the default params, wall-clock of every stage
of the ML-GLE route, each run through the pipeline's own stage code (``mlgle.pipeline``) on this
machine's default resources (md.ranks MPI ranks, train.threads torch threads):

1. MD: push-off, equilibration and T_train + T_val frames of production (``melt.simulate``);
2. normal modes; 3. GLE fit with its bootstrap CI; 4. NAR training (train.epochs, patience);
5. generation of T_sim frames for generate.trajectories chains (modes, then the C.o.M, Eq. 13);
6. evaluation of the generated run: D_ML-GLE (Eq. 35) and the generated mode NACFs.

MD to T_sim is extrapolated from the rates measured in step 1: the equilibration wall-clock
(segment 0) + T_sim x LAMMPS' loop time per frame of production (median over segments; the
start-up of each segment and writing and analysing the store are not counted, so the MD figure
is a lower bound, which favours MD). D errors are relative to D_MD of the longest MD
available (``--reference``, default the pipeline's ``data/modes/T<T>`` store, 12,501 frames).
Break-even: the T_sim where both routes cost the same, from the fixed and per-frame costs.
Results merge into ``reports/benchmarks.json`` under "end_to_end"; the run it replaces keeps its
key figures in "end_to_end_history" (the route's wall-clock depends on what else the machine runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import load_report, machine, timed, write_report
from benchmarks.md_cost import loop_times
from benchmarks.report import targets, write_markdown
from mlgle import stats
from mlgle.config import Params, load_params
from mlgle.md.melt import simulate
from mlgle.pipeline.fit_gle import fit_gle
from mlgle.pipeline.generate import generate
from mlgle.pipeline.modes import modes
from mlgle.pipeline.train import train
from mlgle.store import open_modes, temperature_tag

PAPER_T_TRAIN = 1000
PAPER_T_SIM = 100_000


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


def _route_params(params: Params, t_sim: int) -> Params:
    """The params with an MD run of T_train + T_val frames (segments of md.restart_every steps as
    in the pipeline) and T_sim generated frames."""
    frames = params.train.t_train + params.train.t_val
    md = dataclasses.replace(params.md, production_steps=frames * params.md.steps_per_frame)
    generate = dataclasses.replace(params.generate, frames=t_sim)
    return dataclasses.replace(params, md=md, generate=generate)


def _md_rates(work: Path, start: float, md_frames: int, config) -> dict[str, Any]:
    """Equilibration and production wall-clock from the segments' restart files (written at the
    end of each segment), and LAMMPS' loop time per step as a cross-check."""
    restarts = sorted(work.glob("seg_*.restart"))
    ends = [p.stat().st_mtime for p in restarts]
    equilibration = ends[0] - start
    production = ends[-1] - ends[0]
    loops = [loop_times(p.with_suffix(".log").read_text())[-1] for p in restarts[1:]]
    return {
        "equilibration_seconds": equilibration,
        "production_seconds": production,
        "production_frames": md_frames,
        "seconds_per_frame": production / md_frames,
        "loop_seconds_per_frame": float(
            np.median([run.seconds / run.steps * config.steps_per_frame for run in loops])
        ),
        "lammps_cpu_share": float(np.median([run.cpu_share for run in loops])),
        "segments": len(loops),
        "ranks": config.ranks,
    }


def _evaluate_generated(generated: Path, dt: float, window: tuple[int, int], max_lag: int):
    """D_ML-GLE with its CI (Eq. 35) and the NACFs of the generated modes."""
    com = np.load(generated / "com.npy").astype(np.float64)
    gen = np.load(generated / "modes.npy", mmap_mode="r")
    d = stats.diffusion_coefficient(stats.msd_per_trajectory(com), dt, *window)
    for j in range(gen.shape[2]):
        stats.acf(np.asarray(gen[:, :, j], dtype=np.float64))[: max_lag + 1]
    return d


def _reference_d(store: Path, window: tuple[int, int]) -> dict[str, Any]:
    modes, meta = open_modes(store)
    com = np.asarray(modes[:, :, 0], dtype=np.float64)
    d = stats.diffusion_coefficient(stats.msd_per_trajectory(com), meta.dt, *window)
    return {
        "store": str(store),
        "frames": int(meta.frames),
        "chains": int(meta.chains),
        "D_md": d.value,
        "D_md_ci95": list(d.ci95),
        "D_md_rel_halfwidth": (d.ci95[1] - d.value) / d.value,
    }


def _only_for_d(
    seconds: dict[str, float], t_sim: int, frames: int, md_seconds: float
) -> dict[str, Any]:
    """Estimate: the route generating only the ``frames`` that D's window needs (generation and
    evaluation scaled linearly in frames), against the same MD to T_sim."""
    scaled = (seconds["generate"] + seconds["evaluate"]) * frames / t_sim
    total = sum(seconds.values()) - seconds["generate"] - seconds["evaluate"] + scaled
    return {
        "frames": frames,
        "route_seconds_estimate": total,
        "speedup_vs_md_estimate": md_seconds / total,
    }


def run(params: Params, t_sim: int, reference: Path | None, work: Path) -> dict[str, Any]:
    """Time the ML-GLE route in ``work``; compare with the MD rates and the reference D."""
    temperature = params.md.temperatures[0]
    route = _route_params(params, t_sim)
    md_frames = route.md.frames - 1
    paths = {name: work / name for name in ("md", "md.work", "modes", "models", "generated")}
    gle_json = work / "gle.json"
    seconds: dict[str, float] = {}

    def stage(name: str, function):
        seconds[name], result = timed(function)
        print(f"[bench-e2e] {name}: {seconds[name]:.1f} s", flush=True)
        return result

    start = time.time()
    stage(
        "md",
        lambda: simulate(
            route.md,
            temperature,
            paths["md"],
            work_dir=paths["md.work"],
            progress=False,
            keep_work=True,
        ),
    )
    md = _md_rates(paths["md.work"], start, md_frames, route.md)
    stage("modes", lambda: modes(route, paths["md"], paths["modes"]))
    fit = stage("gle_fit", lambda: fit_gle(route, paths["modes"], gle_json))
    stage("train", lambda: train(route, paths["modes"], paths["models"], False, False))
    stage(
        "generate",
        lambda: generate(
            route, paths["models"], paths["modes"], gle_json, paths["generated"], False
        ),
    )
    ev = route.evaluate
    d_mlgle = stage(
        "evaluate",
        lambda: _evaluate_generated(paths["generated"], fit["dt"], ev.d_window, ev.nacf_max_lag),
    )
    total = sum(seconds.values())
    md_per_frame = md["loop_seconds_per_frame"]
    md_to_t_sim = md["equilibration_seconds"] + t_sim * md_per_frame
    per_frame_mlgle = (seconds["generate"] + seconds["evaluate"]) / t_sim
    fixed_mlgle = total - per_frame_mlgle * t_sim
    result: dict[str, Any] = {
        "temperature": temperature,
        "t_train": route.train.t_train,
        "t_val": route.train.t_val,
        "t_sim": t_sim,
        "md_frames_run": md_frames,
        "trajectories": route.generate.trajectories,
        "chains": route.md.chains,
        "md_ranks": route.md.ranks,
        "torch_threads": route.train.threads,
        "stage_seconds": seconds,
        "mlgle_route_seconds": total,
        "dominant_stage": max(seconds, key=seconds.get),
        "md_rates": md,
        "md_to_t_sim_seconds": md_to_t_sim,
        "md_to_t_sim_is": (
            "extrapolated: measured equilibration wall-clock + T_sim x measured LAMMPS loop time "
            "per production frame (segment start-ups not counted: a lower bound)"
        ),
        "speedup_vs_md": md_to_t_sim / total,
        "break_even": {
            "fixed_mlgle_seconds": fixed_mlgle,
            "per_frame_mlgle_seconds": per_frame_mlgle,
            "fixed_md_seconds": md["equilibration_seconds"],
            "per_frame_md_seconds": md_per_frame,
        },
        "break_even_frames": break_even_frames(
            fixed_mlgle, per_frame_mlgle, md["equilibration_seconds"], md_per_frame
        ),
        "if_generating_only_for_D": _only_for_d(seconds, t_sim, ev.d_window[1] + 1, md_to_t_sim),
        "D_gle": fit["D_gle"],
        "D_mlgle": d_mlgle.value,
        "D_mlgle_ci95": list(d_mlgle.ci95),
        "machine": machine(route.train.threads),
    }
    if reference is not None:
        ref = _reference_d(reference, ev.d_window)
        result["reference"] = ref
        result["D_error_mlgle"] = (d_mlgle.value - ref["D_md"]) / ref["D_md"]
        result["D_error_gle"] = (fit["D_gle"] - ref["D_md"]) / ref["D_md"]
        result["D_error_md"] = (
            "0 by construction at the reference length; its 95 % CI half-width is "
            f"{ref['D_md_rel_halfwidth']:.1%} of D_md"
        )
    else:
        result["D_error_mlgle"] = None
        print(
            "[bench-e2e] no reference MD store (data/modes/T<T> after `dvc repro modes`, or "
            "--reference): D errors not computed",
            flush=True,
        )
    return result


def history_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The key figures of an earlier end-to-end run, kept when a new run replaces it (the route's
    wall-clock depends on what else the machine runs)."""
    keys = (
        "started_at",
        "t_sim",
        "speedup_vs_md",
        "mlgle_route_seconds",
        "md_to_t_sim_seconds",
        "stage_seconds",
        "break_even_frames",
        "D_error_mlgle",
    )
    entry = {k: result.get(k) for k in keys}
    entry["load_average_1min"] = result["machine"]["load_average_1min"]
    entry["lammps_cpu_share"] = result["md_rates"].get("lammps_cpu_share")
    return entry


def quick_params(params: Params) -> Params:
    """Tiny sizes for a smoke test of the machinery (numbers meaningless)."""
    return dataclasses.replace(
        params,
        md=dataclasses.replace(params.md, chains=10, equilibration_steps=1000),
        train=dataclasses.replace(params.train, history=8, t_train=60, t_val=30, epochs=1),
        gle=dataclasses.replace(params.gle, t_fit=60, bootstrap=10),
        generate=dataclasses.replace(params.generate, trajectories=10),
        evaluate=dataclasses.replace(params.evaluate, d_window=(50, 100), nacf_max_lag=50),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--reference", type=Path, default=None, help="modes store of long MD")
    parser.add_argument("--t-sim", type=int, default=PAPER_T_SIM, help="frames to generate")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args()
    params = load_params(args.params)
    t_sim = args.t_sim
    if args.quick:
        params, t_sim = quick_params(params), 200
    reference = args.reference
    if reference is None:
        default = Path("data/modes") / temperature_tag(params.md.temperatures[0])
        reference = default if default.is_dir() else None
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="mlgle-bench-e2e-") as tmp:
        result = {"started_at": started, **run(params, t_sim, reference, Path(tmp))}
    previous = load_report(args.out)
    history = previous.get("end_to_end_history", [])
    if "end_to_end" in previous:
        history = [*history, history_entry(previous["end_to_end"])]
    report = write_report(args.out, {"end_to_end": result, "end_to_end_history": history})
    report = write_report(args.out, {"targets": targets(report)})
    write_markdown(args.out, report)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
