"""Peak memory of training, generation and evaluation at the paper's shape, each in a fresh
process.

A child process (``python -m benchmarks.memory --child ...``) imports the package, builds its
inputs, records its peak resident set so far (the baseline; VmHWM on Linux), runs the measured
call and records the peak again; this counts numpy and torch allocations and the resident pages
of memory-mapped files alike.
Training: ``fit_modes`` for one epoch on 1000 + 600 frames of 100 chains x 12 modes, m = 128,
batch 128 (synthetic AR(1) modes). Generation, 300 trajectories x 12 modes, m = 128, at two
lengths, both ways: "in memory" (``generate_modes``, the path before issue 13: its peak grows
with the (frames, n, k, 3) float32 output, so the paper's 1e5 steps are projected, see
:func:`project`) and "streamed" (what ``mlgle generate`` runs: ``stream_modes`` into
``NpyFrameWriter`` files, the C.o.M by ``GLEModel.com_stream``). Evaluation: ``evaluate`` of a
paper-shaped ensemble (300 x 12 x (1e5 + 128) generated, 100 chains x 13 x 1e5 MD, AR(1) modes
written to disk first) read memory-mapped, as ``mlgle evaluate`` reads it; measured at the
paper's size, not projected.
Run: ``python -m benchmarks.memory [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path
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


def _child_generate(trajectories: int, history: int, steps: int, streamed: bool) -> dict[str, Any]:
    from benchmarks.generation import random_model_inputs
    from mlgle.nar.generate import generate_modes

    model, sigma_z, sigma_dz, initial = random_model_inputs(
        trajectories, 12, history, (256, 256), 12
    )
    frames = history + steps
    baseline = max_rss_bytes()
    if streamed:
        with tempfile.TemporaryDirectory() as directory:
            seconds, _ = timed(
                lambda: _stream_to_files(
                    Path(directory), model, sigma_z, sigma_dz, initial, frames
                )
            )
    else:
        seconds, _ = timed(
            lambda: generate_modes(model, sigma_z, sigma_dz, initial, frames, 0, False)
        )
    return {
        "case": "generate",
        "path": "streamed" if streamed else "in memory",
        "trajectories": trajectories,
        "modes": 12,
        "history": history,
        "steps": steps,
        "output_bytes": int(frames * trajectories * 12 * 3 * 4),
        "seconds": seconds,
        "baseline_bytes": baseline,
        "peak_bytes": max_rss_bytes(),
    }


def _stream_to_files(
    directory: Path,
    model: torch.nn.Module,
    sigma_z: np.ndarray,
    sigma_dz: np.ndarray,
    initial: np.ndarray,
    frames: int,
) -> None:
    """What ``mlgle generate`` runs: modes and C.o.M written in frame blocks as generated."""
    from mlgle.blockio import NpyFrameWriter
    from mlgle.gle import GLEModel
    from mlgle.nar.generate import stream_modes

    _, n, k, _ = initial.shape
    com = GLEModel(alpha=0.1, beta=0.5, dt=1.0, points=(1, 2), k=k).com_stream(
        np.random.default_rng(1), n
    )
    modes_file = NpyFrameWriter(directory / "modes.npy", (frames, n, k, 3), np.float32)
    com_file = NpyFrameWriter(directory / "com.npy", (frames, n, 3), np.float32)

    def write(first: int, block: np.ndarray) -> None:
        modes_file.write(first, block)
        com_file.write(first, com(block).astype(np.float32))

    with modes_file, com_file:
        stream_modes(model, sigma_z, sigma_dz, initial, frames, 0, write, False)


def _write_ar1_file(path: Path, shape: tuple[int, ...], seed: int, walk: bool = False) -> None:
    """An AR(1) (or, ``walk``, random-walk) series (frames, ...) float32 written frame block by
    frame block: isotropic, correlation 0.99 per frame, unit variance."""
    from mlgle.blockio import NpyFrameWriter

    rng = np.random.default_rng(seed)
    a, block = (1.0, 0.01) if walk else (0.99, np.sqrt(1 - 0.99**2))
    state = np.zeros(shape[1:]) if walk else rng.standard_normal(shape[1:])
    rows = max(1, (8 << 20) // (8 * int(np.prod(shape[1:]))))
    with NpyFrameWriter(path, shape, np.float32) as writer:
        for first in range(0, shape[0], rows):
            noise = rng.standard_normal((min(rows, shape[0] - first), *shape[1:])) * block
            out = np.empty_like(noise)
            for t, step in enumerate(noise):
                state = a * state + step
                out[t] = state
            writer.write(first, out)


def _child_evaluate(quick: bool) -> dict[str, Any]:
    from mlgle.analysis.evaluation import evaluate
    from mlgle.gle import GLEModel

    if quick:
        gen_shape, md_shape, window, max_lag = (2128, 16, 12, 3), (2000, 10, 13, 3), (200, 600), 200
    else:
        gen_shape = (PAPER_STEPS + 128, 300, 12, 3)
        md_shape, window, max_lag = (PAPER_STEPS, 100, 13, 3), (2500, 7500), 2500
    n = gen_shape[1]
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        _write_ar1_file(directory / "md.npy", md_shape, 0)
        _write_ar1_file(directory / "gen.npy", gen_shape, 1)
        _write_ar1_file(directory / "com.npy", (*gen_shape[:2], 3), 2, walk=True)
        md, gen, com = (
            np.load(directory / f"{x}.npy", mmap_mode="r") for x in ("md", "gen", "com")
        )
        gle = GLEModel(alpha=0.1, beta=0.5, dt=1.0, points=(1, 2), k=12)
        baseline = max_rss_bytes()
        seconds, _ = timed(
            lambda: evaluate(md, gen, com, gle, 1.0, 1.0, window, max_lag, 0.99, 7)
        )
        peak = max_rss_bytes()
    return {
        "case": "evaluate",
        "generated_shape": list(gen_shape),
        "md_shape": list(md_shape),
        "file_bytes": int(4 * (np.prod(gen_shape) + np.prod(md_shape) + 3 * gen_shape[0] * n)),
        "in_memory_float64_bytes": int(8 * (np.prod(gen_shape) + np.prod(md_shape))),
        "seconds": seconds,
        "baseline_bytes": baseline,
        "peak_bytes": peak,
    }


def project(points: list[dict[str, Any]], steps: int, written: bool = True) -> dict[str, Any]:
    """The generation peak at ``steps``: the longest measured run's peak plus the remaining steps
    at the measured growth per step (a fit through the runs), at least the output's own bytes
    per frame when the output is ``written`` into memory (conservative: it becomes resident).
    For the streamed path the output goes to disk, so only the measured growth counts."""
    x = np.array([p["steps"] for p in points], dtype=float)
    y = np.array([p["peak_bytes"] for p in points], dtype=float)
    slope = float(np.polyfit(x, y, 1)[0])
    last = max(points, key=lambda p: p["steps"])
    per_frame = last["output_bytes"] / (last["steps"] + last["history"])
    growth = max(slope, per_frame) if written else max(slope, 0.0)
    return {
        "steps": steps,
        "projected_peak_bytes": float(last["peak_bytes"] + (steps - last["steps"]) * growth),
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
    size = ["--trajectories", str(n), "--history", str(m)]
    runs = {
        path: [
            peak_rss_child(
                "benchmarks.memory",
                ["--child", "generate", *size, "--steps", str(steps), *flags],
            )
            for steps in lengths
            for _ in range(repeats)
        ]
        for path, flags in (("in_memory", []), ("streamed", ["--streamed"]))
    }
    evaluation = peak_rss_child("benchmarks.memory", ["--child", "evaluate", *flag])
    return {
        "method": "peak resident set (VmHWM) of a fresh child process per measurement",
        "train": {
            **{k: v for k, v in train[0].items() if not k.endswith("bytes") and k != "seconds"},
            "peak_mib": spread([t["peak_bytes"] / MIB for t in train]),
            "baseline_mib": spread([t["baseline_bytes"] / MIB for t in train]),
            "seconds": spread([t["seconds"] for t in train]),
        },
        "generate": {
            "runs": runs["in_memory"],
            "paper_protocol": project(runs["in_memory"], PAPER_STEPS),
            "streamed": {
                "runs": runs["streamed"],
                "paper_protocol": project(runs["streamed"], PAPER_STEPS, written=False),
            },
        },
        "evaluate": evaluation,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--child", choices=["train", "generate", "evaluate"], default=None)
    parser.add_argument("--streamed", action="store_true", help="generate: the streamed path")
    parser.add_argument("--trajectories", type=int, default=300)
    parser.add_argument("--history", type=int, default=128)
    parser.add_argument("--steps", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.child == "train":
        print(json.dumps(_child_train(args.quick)))
    elif args.child == "generate":
        result = _child_generate(args.trajectories, args.history, args.steps, args.streamed)
        print(json.dumps(result))
    elif args.child == "evaluate":
        print(json.dumps(_child_evaluate(args.quick)))
    else:
        print(json.dumps(measure(args.quick), indent=2))


if __name__ == "__main__":
    main()
