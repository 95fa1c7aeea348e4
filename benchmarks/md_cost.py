"""MD cost per chain and Δt: the Kremer-Grest melt in LAMMPS through ``mlgle.md.melt.simulate``
(same input builder, same segments as the pipeline), at the default 20 beads and at 100 beads.

Each production segment's cost is LAMMPS' own "Loop time" (the integration loop with its DCD
output, not the start-up of a segment, which long runs amortise) x ranks, in core seconds, and
that times LAMMPS' "% CPU use", in CPU seconds (unaffected by other load on the machine); the
median over segments is the figure. Per chain per Δt = per step x steps_per_Δt / chains, so one
rank compares with one generation thread.
Run: ``python -m benchmarks.md_cost [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.common import spread, timed
from mlgle.config import MDConfig
from mlgle.md.melt import simulate

_LOOP = re.compile(r"^Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
_CPU = re.compile(r"^([0-9.]+)% CPU use with")


class LoopTime(NamedTuple):
    """One ``run`` of a LAMMPS log: wall seconds of its loop, ranks, steps, atoms, and the share
    of the wall time the ranks were on a CPU (LAMMPS' "% CPU use"; NaN when not printed)."""

    seconds: float
    procs: int
    steps: int
    atoms: int
    cpu_share: float


def loop_times(log: str) -> list[LoopTime]:
    """Every ``run`` of a LAMMPS log, in order; a "% CPU use" line counts for the run whose
    "Loop time" line it follows (a malformed "Loop time" line in between voids it)."""
    found: list[LoopTime] = []
    pending = False
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("Loop time"):
            match = _LOOP.match(line)
            pending = match is not None
            if match:
                seconds, procs, steps, atoms = match.groups()
                found.append(LoopTime(float(seconds), int(procs), int(steps), int(atoms), math.nan))
        elif pending and (match := _CPU.match(line)):
            found[-1] = found[-1]._replace(cpu_share=float(match.group(1)) / 100.0)
            pending = False
    return found


def measure_melt(
    chains: int, beads: int, segment_steps: int, segments: int, ranks: int, equilibration: int
) -> dict[str, Any]:
    """Run a short melt (push-off, ``equilibration`` steps, ``segments`` production segments) and
    return the per-segment cost of production."""
    config = dataclasses.replace(
        MDConfig(),
        temperatures=(1.0,),
        chains=chains,
        beads=beads,
        equilibration_steps=equilibration,
        production_steps=segment_steps * segments,
        restart_every=segment_steps,
        ranks=ranks,
    )
    with tempfile.TemporaryDirectory(prefix="mlgle-bench-md-") as tmp:
        work = Path(tmp) / "work"
        wall, _ = timed(
            lambda: simulate(
                config, 1.0, Path(tmp) / "store", work_dir=work, progress=False, keep_work=True
            )
        )
        runs = [
            loop_times((work / f"seg_{s:04d}.log").read_text())[-1] for s in range(1, segments + 1)
        ]
    if any(run.steps != segment_steps for run in runs):
        raise RuntimeError(f"LAMMPS logs: expected {segment_steps} steps per segment, got {runs}")
    wall_per_step = [run.seconds * run.procs / run.steps for run in runs]  # core-seconds
    cpu_per_step = [w * run.cpu_share for w, run in zip(wall_per_step, runs, strict=True)]
    atoms = chains * beads

    def per_chain_dt(values: list[float]) -> dict[str, float | int]:
        return spread([v * config.steps_per_frame / chains for v in values])

    return {
        "chains": chains,
        "beads": beads,
        "atoms": atoms,
        "ranks": ranks,
        "steps_per_dt": config.steps_per_frame,
        "timestep": config.timestep,
        "segment_steps": segment_steps,
        "loop_seconds_per_segment": spread([run.seconds for run in runs]),
        "cpu_share": spread([run.cpu_share for run in runs]),
        "atom_steps_per_core_second": spread([atoms / c for c in wall_per_step]),
        "core_seconds_per_chain_step": spread([c / chains for c in wall_per_step]),
        "core_seconds_per_chain_dt": per_chain_dt(wall_per_step),
        "cpu_seconds_per_chain_step": spread([c / chains for c in cpu_per_step]),
        "cpu_seconds_per_chain_dt": per_chain_dt(cpu_per_step),
        "simulate_wall_seconds": wall,
    }


def generation_cost(generation: dict[str, Any], threads: int) -> dict[str, float]:
    """Core seconds per chain per Δt of ``generate_modes`` from the generation benchmark's
    steady-state rate, by wall clock (x threads) and by process CPU time."""
    n = generation["shape"]["trajectories"]

    def per_chain_dt(section: dict[str, Any]) -> float:
        rate = section.get("steady_state", {}).get("ms_per_step", section["fast_ms_per_step"])
        return rate["median"] / 1e3 / n

    return {"wall": per_chain_dt(generation) * threads, "cpu": per_chain_dt(generation["cpu_time"])}


def compare(
    generation: dict[str, float],
    md_default: dict[str, Any],
    md_long_chains: dict[str, Any],
    paper_steps_per_dt: int = 2000,
) -> dict[str, Any]:
    """Ratios MD / generation per chain and Δt, measured (default melt, 100 beads) and
    extrapolated to the paper's system (100 beads, ``paper_steps_per_dt`` MD steps per Δt).

    ``generation``: :func:`generation_cost`. Headline ratios use CPU seconds (what a core spends,
    unaffected by other load); "wall" gives the same from wall-clock core seconds.
    """
    keys = {"cpu": "cpu_seconds", "wall": "core_seconds"}
    ratios = {
        clock: {
            "default_melt": md_default[f"{key}_per_chain_dt"]["median"] / generation[clock],
            "beads_100": md_long_chains[f"{key}_per_chain_dt"]["median"] / generation[clock],
            "paper_system": md_long_chains[f"{key}_per_chain_step"]["median"]
            * paper_steps_per_dt
            / generation[clock],
        }
        for clock, key in keys.items()
    }
    return {
        "generation_seconds_per_chain_dt": generation,
        "md_default": md_default,
        "md_100_beads": md_long_chains,
        "ratios": ratios,
        "cost_ratio_per_chain_dt": ratios["cpu"]["default_melt"],
        "ratio_100_beads": ratios["cpu"]["beads_100"],
        "paper_steps_per_dt": paper_steps_per_dt,
        "paper_system_ratio": ratios["cpu"]["paper_system"],
        "paper_extrapolation": (
            "measured CPU seconds per chain per MD step of the 100-bead Kremer-Grest melt x "
            f"{paper_steps_per_dt} MD steps per Δt (MD cost is linear in steps; frames are "
            "dumped once per Δt), divided by the measured generation cost per chain per Δt, "
            "which does not depend on the chain length; the paper's CG force field is not "
            "Kremer-Grest, so its cost per bead-step is taken as equal"
        ),
    }


def measure(quick: bool = False, ranks: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """(default melt, 100-bead melt) production costs."""
    if quick:
        return (
            measure_melt(10, 20, 200, 2, ranks, 0),
            measure_melt(10, 100, 200, 2, ranks, 0),
        )
    return (
        measure_melt(100, 20, 5000, 3, ranks, 2000),
        measure_melt(100, 100, 2000, 3, ranks, 2000),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--ranks", type=int, default=1)
    args = parser.parse_args()
    default, long_chains = measure(args.quick, args.ranks)
    print(json.dumps({"md_default": default, "md_100_beads": long_chains}, indent=2))


if __name__ == "__main__":
    main()
