"""Training throughput: the k mode networks trained as one batched module against a Python loop
over k one-mode models, same data, same batches, same run, alternating (issue 4's benchmark),
and the batched step against its FLOP limit (issue 16).

The data are the default study's training span, its windows rotated once up front as the trainer
does. Each repeat times ``steps`` full training steps (batch gather, forward, NLL of Eq. 21,
backward, the trainer's Adam ``mlgle.nar.train.adam``) of both variants back to back, at the
train stage's thread count by default, and the float32 matmul peak of the same thread count
(``benchmarks.common.matmul_peak``, the faster backend). The FLOP-limit time of a step is 3x its
forward matmul FLOPs (forward, and the two products of the backward pass) at that peak;
``time_over_flop_limit`` is the measured batched step time over it, per clock (wall and process
CPU), per repeat; then the same steps phase by phase (:func:`step_parts`), which says how far the
matmul-bound forward and backward passes are from the limit and what the rest costs.
Run: ``python -m benchmarks.training --out reports``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import CLOCKS, clocked, matmul_peak, ratios, spread
from benchmarks.generation import network_flops
from mlgle.config import TrainConfig
from mlgle.modes import normal_modes
from mlgle.nar.model import ModeNetworks, gaussian_nll
from mlgle.nar.train import PRECOMPUTE_BYTES, adam
from mlgle.nar.windows import Standardisation, WindowDataset
from mlgle.synthetic import rouse_chains

CHAINS, FRAMES = 100, 500
"""The training span: the default study's (100 chains, T_train = 500 frames)."""

# Steps per timed block and repeats of a full `make bench`. A 20-step block (~0.4 s) could not
# resolve the ~1.2-1.3x of the kept windows against this machine's noise (0.97x, 0.93-1.08, in a
# run of 2026-12-07); 50 x 7 gave 1.21x (1.06-1.3).
STEPS, REPEATS = 50, 7


def _step(models, optimisers, data, index, batched: bool) -> None:
    x, y = data.batch(index)
    if batched:
        (model,), (opt,) = models, optimisers
        loss = gaussian_nll(model(x), y).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return
    for j, (model, opt) in enumerate(zip(models, optimisers, strict=True)):
        loss = gaussian_nll(model(x[j : j + 1]), y[j : j + 1]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


PARTS = ("gather", "forward", "nll", "backward", "adam")


def step_parts(model, optimiser, data, indices) -> dict[str, float]:
    """Wall seconds per batched step spent in each of PARTS, summed over ``indices`` and
    divided by their number: the batch gather (with the rotation to the window's frame), the
    network's forward pass, the NLL of Eq. 21, the backward pass and the optimiser's step."""
    seconds = dict.fromkeys(PARTS, 0.0)
    for index in indices:
        t0 = time.perf_counter()
        x, y = data.batch(index)
        t1 = time.perf_counter()
        out = model(x)
        t2 = time.perf_counter()
        loss = gaussian_nll(out, y).mean(dim=1).sum()
        t3 = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        optimiser.step()
        t5 = time.perf_counter()
        for name, (a, b) in zip(PARTS, itertools.pairwise((t0, t1, t2, t3, t4, t5)), strict=True):
            seconds[name] += b - a
    return {name: value / len(indices) for name, value in seconds.items()}


def measure(
    k: int,
    history: int,
    hidden: tuple[int, ...],
    batch: int,
    steps: int,
    repeats: int,
    threads: int,
) -> dict:
    torch.set_num_threads(threads)
    positions = rouse_chains(chains=CHAINS, beads=k + 4, frames=FRAMES, dt=1.0, seed=0)
    modes = normal_modes(positions, k=k)[:, :, 1:]
    standardisation = Standardisation.from_training(modes)
    data = WindowDataset(modes, standardisation, history)
    # As the trainer does (mlgle.nar.train.PRECOMPUTE_BYTES): rotate every window once, then
    # each step's gather is one index_select; "batched_rotating" rotates per batch, as before.
    precomputed = data.rotated_nbytes <= PRECOMPUTE_BYTES
    precompute_s = clocked(data.precompute)[0]["wall"] if precomputed else 0.0
    seeds = list(range(k))
    batched = [ModeNetworks(k, history, hidden, seeds=seeds)]
    looped = [ModeNetworks(1, history, hidden, seeds=[s]) for s in seeds]
    variants = {
        "batched": (batched, [adam(m, 1e-4) for m in batched], True, data),
        "loop": (looped, [adam(m, 1e-4) for m in looped], False, data),
    }
    if precomputed:
        rotating = [ModeNetworks(k, history, hidden, seeds=seeds)]
        per_batch = WindowDataset(modes, standardisation, history)
        variants["batched_rotating"] = (rotating, [adam(rotating[0], 1e-4)], True, per_batch)
    generator = torch.Generator().manual_seed(0)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    step_seconds: dict[str, list[float]] = {clock: [] for clock in CLOCKS}  # batched, per step
    limits: dict[str, list[float]] = {clock: [] for clock in CLOCKS}  # FLOP-limit s per step
    parts: dict[str, list[float]] = {name: [] for name in PARTS}  # batched, wall s per step
    flops = 3 * batch * k * network_flops(history, hidden, batched[0].latent)
    for _ in range(repeats):
        indices = [torch.randint(len(data), (batch,), generator=generator) for _ in range(steps)]
        peak = matmul_peak(512)["best"]
        for clock in CLOCKS:
            limits[clock].append(flops / peak[clock])
        for name, (models, opts, is_batched, source) in variants.items():
            _step(models, opts, source, indices[0], is_batched)  # warm-up

            def run(
                models=models, opts=opts, is_batched=is_batched, source=source, indices=indices
            ) -> None:
                for index in indices:
                    _step(models, opts, source, index, is_batched)

            seconds, _ = clocked(run)
            rates[name].append(steps * batch * k / seconds["wall"])
            if name == "batched":
                for clock in CLOCKS:
                    step_seconds[clock].append(seconds[clock] / steps)
                for part, value in step_parts(models[0], opts[0], data, indices).items():
                    parts[part].append(value)
    result = {
        name: {"median": statistics.median(r), "min": min(r), "max": max(r)}
        for name, r in rates.items()
    }
    result["speedup_batched_vs_loop"] = ratios(rates["batched"], rates["loop"])
    if precomputed:
        result["speedup_precomputed_vs_rotating"] = ratios(
            rates["batched"], rates["batched_rotating"]
        )
    result["flop_limit"] = {
        "flops_per_step": flops,
        "flop_limit_ms_per_step": {c: spread([s * 1e3 for s in limits[c]]) for c in CLOCKS},
        "ms_per_step": {c: spread([s * 1e3 for s in step_seconds[c]]) for c in CLOCKS},
    }
    result["time_over_flop_limit"] = {c: ratios(step_seconds[c], limits[c]) for c in CLOCKS}
    # Where the time goes (wall clock, the same steps again, phase by phase): the matmul-bound
    # forward and backward passes against the FLOP limit, and everything else.
    matmuls = [f + b for f, b in zip(parts["forward"], parts["backward"], strict=True)]
    result["parts_ms_per_step"] = {name: spread([v * 1e3 for v in parts[name]]) for name in PARTS}
    result["forward_backward_over_flop_limit"] = ratios(matmuls, limits["wall"])
    result["windows"] = {
        "chains": CHAINS,
        "frames": FRAMES,
        "samples": len(data),
        "precomputed": precomputed,
        "precomputed_mib": data.rotated_nbytes / 2**20 if precomputed else 0.0,
        "precompute_s": precompute_s,
    }
    result["shape"] = {
        "modes": k,
        "history": history,
        "hidden": list(hidden),
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "threads": threads,
    }
    result["unit"] = "samples x modes per second"
    result["machine"] = {
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cpu_count": torch.get_num_threads(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument(
        "--threads", type=int, default=TrainConfig().threads, help="default: the train stage's"
    )
    args = parser.parse_args()
    result = measure(12, 64, (256, 256), 128, args.steps, args.repeats, args.threads)
    out = args.out / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(result, indent=2) + "\n")
    s = result["speedup_batched_vs_loop"]
    print(
        f"training: batched {result['batched']['median']:.0f} vs loop "
        f"{result['loop']['median']:.0f} samples·modes/s, speed-up {s['median']:.2f}x "
        f"(range {s['min']:.2f}-{s['max']:.2f}) -> {out / 'training.json'}"
    )


if __name__ == "__main__":
    main()
