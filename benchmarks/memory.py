"""Peak memory of training and generation at the paper's shape, each in a fresh process.

A child process (``python -m benchmarks.memory --child ...``) imports the package, builds its
inputs, records its peak resident set so far (the baseline; VmHWM on Linux), runs the measured
call and records the peak again; this counts numpy and torch allocations alike.
Training: ``fit_modes`` for one epoch on 1000 + 600 frames of 100 chains x 12 modes, m = 128,
batch 128 (synthetic AR(1) modes). Generation: ``generate_modes`` for 300 trajectories x 12
modes, m = 128, at two lengths; the peak grows with the (frames, n, k, 3) float32 output, so the
paper's 1e5 steps are projected from the longer run (see :func:`project`).
Run: ``python -m benchmarks.memory [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import numpy as np
import torch

from benchmarks.common import max_rss_bytes, peak_rss_child, spread, timed

PAPER_STEPS = 100_000
MIB = 2**20


def _ar1_modes(frames: int, chains: int, k: int, seed: int = 0) -> np.ndarray:
    """Isotropic AR(1) modes with decreasing correlation, (frames, chains, k, 3) float64."""
    rng = np.random.default_rng(seed)
    a = np.linspace(0.99, 0.8, k)[:, None]
    z = np.empty((frames, chains, k, 3))
    z[0] = rng.standard_normal((chains, k, 3))
    noise = rng.standard_normal((frames, chains, k, 3)) * np.sqrt(1 - a**2)
    for t in range(1, frames):
        z[t] = a * z[t - 1] + noise[t]
    return z


def _child_train(quick: bool) -> dict[str, Any]:
    from mlgle.config import TrainConfig
    from mlgle.nar.train import fit_modes

    shape = (
        dict(history=16, t_train=200, t_val=100)
        if quick
        else dict(history=128, t_train=1000, t_val=600)
    )
    chains = 10 if quick else 100
    config = dataclasses.replace(
        TrainConfig(), **shape, epochs=1, patience=0, threads=1, batch_size=128
    )
    modes = _ar1_modes(config.t_train + config.t_val, chains, 12)
    baseline = max_rss_bytes()
    seconds, _ = timed(lambda: fit_modes(modes, config, progress=False))
    return {
        "case": "train",
        "chains": chains,
        "modes": 12,
        **shape,
        "batch_size": config.batch_size,
        "epochs": 1,
        "seconds": seconds,
        "baseline_bytes": baseline,
        "peak_bytes": max_rss_bytes(),
    }


def _child_generate(trajectories: int, history: int, steps: int) -> dict[str, Any]:
    from benchmarks.generation import random_model_inputs
    from mlgle.nar.generate import generate_modes

    model, sigma_z, sigma_dz, initial = random_model_inputs(
        trajectories, 12, history, (256, 256), 12
    )
    baseline = max_rss_bytes()
    seconds, out = timed(
        lambda: generate_modes(model, sigma_z, sigma_dz, initial, history + steps, 0, False)
    )
    return {
        "case": "generate",
        "trajectories": trajectories,
        "modes": 12,
        "history": history,
        "steps": steps,
        "output_bytes": int(out.nbytes),
        "seconds": seconds,
        "baseline_bytes": baseline,
        "peak_bytes": max_rss_bytes(),
    }


def project(points: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    """The generation peak at ``steps``: the longest measured run's peak plus the remaining steps
    at the larger of the measured growth per step (a fit through the runs) and the output's own
    bytes per frame (conservative: the output is written, so it becomes resident)."""
    x = np.array([p["steps"] for p in points], dtype=float)
    y = np.array([p["peak_bytes"] for p in points], dtype=float)
    slope = float(np.polyfit(x, y, 1)[0])
    last = max(points, key=lambda p: p["steps"])
    per_frame = last["output_bytes"] / (last["steps"] + last["history"])
    return {
        "steps": steps,
        "projected_peak_bytes": float(
            last["peak_bytes"] + (steps - last["steps"]) * max(slope, per_frame)
        ),
        "measured_bytes_per_step": slope,
        "output_bytes_per_frame": float(per_frame),
        "output_bytes": float(per_frame * (steps + last["history"])),
    }


def measure(quick: bool = False, repeats: int = 1) -> dict[str, Any]:
    """Training and generation peaks, each from fresh child processes (``repeats`` each)."""
    flag = ["--quick"] if quick else []
    train = [
        peak_rss_child("benchmarks.memory", ["--child", "train", *flag]) for _ in range(repeats)
    ]
    n, m = (16, 16) if quick else (300, 128)
    lengths = (32, 128) if quick else (256, 1024)
    generate = [
        peak_rss_child(
            "benchmarks.memory",
            [
                "--child",
                "generate",
                "--trajectories",
                str(n),
                "--history",
                str(m),
                "--steps",
                str(steps),
            ],
        )
        for steps in lengths
        for _ in range(repeats)
    ]
    return {
        "method": "peak resident set (VmHWM) of a fresh child process per measurement",
        "train": {
            **{k: v for k, v in train[0].items() if not k.endswith("bytes") and k != "seconds"},
            "peak_mib": spread([t["peak_bytes"] / MIB for t in train]),
            "baseline_mib": spread([t["baseline_bytes"] / MIB for t in train]),
            "seconds": spread([t["seconds"] for t in train]),
        },
        "generate": {
            "runs": generate,
            "paper_protocol": project(generate, PAPER_STEPS),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--child", choices=["train", "generate"], default=None)
    parser.add_argument("--trajectories", type=int, default=300)
    parser.add_argument("--history", type=int, default=128)
    parser.add_argument("--steps", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.child == "train":
        print(json.dumps(_child_train(args.quick)))
    elif args.child == "generate":
        print(json.dumps(_child_generate(args.trajectories, args.history, args.steps)))
    else:
        print(json.dumps(measure(args.quick), indent=2))


if __name__ == "__main__":
    main()
