"""Generation speed (Alg. 1): ``generate_modes`` against the per-mode loop
``generate_modes_reference`` (one single-mode network and one ``MultivariateNormal`` per mode and
step), same weights, same seed, same run, alternating; and against the FLOP limit, the float32
matmul peak measured in the same repeats at the same thread count (the faster of torch's two CPU
backends, MKL through ``torch.mm`` and oneDNN, which ``generate_modes`` uses).

FLOPs counted: the network's matrix products only, 2·in·out per layer (a multiply and an add per
weight) for every layer 3m -> hidden... -> latent -> head (9 = mean 3 + L 3 + log d 3), times k
modes and n trajectories per generated step. Not counted: bias adds, activations, the frame
construction and rotation (2·9·m per sample, under 1 % here), sampling and integration.
"Network alone": the same steps of the frozen network (the backend ``generate_modes`` picks)
on a fixed input, nothing around it: the floor any loop around this network has.
Run: ``python -m benchmarks.generation [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmarks.common import CLOCKS, clocked, matmul_peak, ratios, spread
from mlgle.nar.generate import generate_modes, generate_modes_reference
from mlgle.nar.model import FrozenNetworks, ModeNetworks

HEAD = 9  # mean (3) + below-diagonal L (3) + log d (3)
PAPER_STEPS = 100_000  # T_sim = 1e5 Δt (Sec. 4.2)


def network_flops(history: int, hidden: Sequence[int], latent: int) -> int:
    """Matmul FLOPs of one mode network for one sample: 2 Σ_layers in·out (Eq. 22's MLP).

    Layers 3m -> hidden[0] -> ... -> hidden[-1] -> latent -> 9.
    """
    if history < 1 or latent < 1 or not hidden or min(hidden) < 1:
        raise ValueError(
            f"network_flops: history, latent and hidden widths must be positive, got "
            f"history={history}, hidden={list(hidden)}, latent={latent}"
        )
    widths = [3 * history, *hidden, latent, HEAD]
    return 2 * sum(a * b for a, b in itertools.pairwise(widths))


def step_flops(model: ModeNetworks, trajectories: int) -> int:
    """Matmul FLOPs of one generated step: k modes x n trajectories x one network pass."""
    per_sample = network_flops(model.history, model.hidden, model.latent)
    return model.modes * trajectories * per_sample


def random_model_inputs(
    n: int, k: int, history: int, hidden: Sequence[int], latent: int
) -> tuple[ModeNetworks, np.ndarray, np.ndarray, np.ndarray]:
    """A float32 model with fixed random weights, scales (k,) and initial windows (m, n, k, 3)."""
    model = ModeNetworks(k, history, hidden, latent, seeds=range(k)).eval()
    rng = np.random.default_rng(0)
    sigma_z = np.linspace(1.0, 0.2, k)
    sigma_dz = 0.1 * sigma_z
    initial = rng.normal(size=(history, n, k, 3)) * sigma_z[:, None]
    return model, sigma_z, sigma_dz, initial


def compare(
    n: int,
    k: int,
    history: int,
    hidden: Sequence[int],
    latent: int,
    steps: int,
    repeats: int,
    peak_size: int,
    long_steps: int = 0,
    long_repeats: int = 0,
) -> dict[str, Any]:
    """Fast path, reference loop and matmul peak, alternating in each repeat.

    Each repeat times one ``peak_size``³ matmul per backend, ``generate_modes`` and
    ``generate_modes_reference`` for ``steps`` generated steps each (whole calls: checks, buffers
    and output included), and in the first ``long_repeats`` repeats also a ``long_steps`` run of
    the fast path (several ring-buffer flushes and noise blocks) for the steady-state rate.
    Figures by wall clock at the top level, by process CPU time under "cpu_time".
    """
    model, sigma_z, sigma_dz, initial = random_model_inputs(n, k, history, hidden, latent)
    flops = step_flops(model, n)

    def run(function, frames: int) -> dict[str, float]:
        seconds, _ = clocked(
            lambda: function(model, sigma_z, sigma_dz, initial, history + frames, 0, False)
        )
        return {clock: value / frames for clock, value in seconds.items()}

    network = FrozenNetworks(model, n)  # "auto": the backend generate_modes picks
    # The layout generate_modes feeds it: the rotated window (m, 3, k, n) as a (k, n, 3m) view.
    window = torch.randn(history, 3, k, n, generator=torch.Generator().manual_seed(0))
    x = window.view(3 * history, k, n).permute(1, 2, 0)

    def network_alone() -> dict[str, float]:
        with torch.inference_mode():
            seconds, _ = clocked(lambda: [network(x) for _ in range(steps)])
        return {clock: value / steps for clock, value in seconds.items()}

    run(generate_modes, 2)  # warm-up
    run(generate_modes_reference, 2)
    network_alone()
    peaks, fast, slow, long, alone = [], [], [], [], []
    for r in range(repeats):
        peaks.append(matmul_peak(peak_size))
        alone.append(network_alone())
        fast.append(run(generate_modes, steps))
        slow.append(run(generate_modes_reference, steps))
        if r < long_repeats:
            long.append(run(generate_modes, long_steps))
    by_clock = {
        clock: _summarise(
            flops,
            peaks,
            [f[clock] for f in fast],
            [s[clock] for s in slow],
            [s[clock] for s in long],
            [a[clock] for a in alone],
            clock,
        )
        for clock in CLOCKS
    }
    result: dict[str, Any] = {
        "shape": {
            "trajectories": n,
            "modes": k,
            "history": history,
            "hidden": list(hidden),
            "latent": latent,
            "steps_per_call": steps,
            "steady_state_steps_per_call": long_steps,
            "dtype": "float32",
        },
        "flops_per_step": flops,
        "matmul_backend": network.backend,
        "matmul_peak_size": peak_size,
        "clock": "wall (process CPU time under cpu_time)",
        **by_clock["wall"],
        "cpu_time": by_clock["cpu"],
    }
    return result


def _summarise(
    flops: int,
    peaks: list[dict[str, dict[str, float]]],
    fast: list[float],
    slow: list[float],
    long: list[float],
    alone: list[float],
    clock: str,
) -> dict[str, Any]:
    """Medians and spreads of one clock's seconds per step (per repeat: peak, fast, loop, long,
    network alone)."""
    peak = [p["best"][clock] for p in peaks]
    limit = [flops / p for p in peak]  # FLOP-limit seconds per step, per repeat
    result: dict[str, Any] = {
        "matmul_peak_gflops": spread([p / 1e9 for p in peak]),
        "matmul_peak_gflops_by_backend": {
            name: spread([p[name][clock] / 1e9 for p in peaks])
            for name in peaks[0]
            if name != "best"
        },
        "flop_limit_ms_per_step": spread([s * 1e3 for s in limit]),
        "fast_ms_per_step": spread([s * 1e3 for s in fast]),
        "reference_ms_per_step": spread([s * 1e3 for s in slow]),
        "speedup_vs_loop_spread": ratios(slow, fast),
        "fraction_of_flop_limit_short": ratios(limit, fast),
        # What no implementation of this network can beat: the loop's time / FLOP-limit time.
        "speedup_bound_at_flop_limit": ratios(slow, limit),
        "network_alone_ms_per_step": spread([s * 1e3 for s in alone]),
        # The floor of any loop around this network: its own time / FLOP-limit time.
        "network_alone_over_flop_limit": ratios(alone, limit),
    }
    result["speedup_vs_loop"] = result["speedup_vs_loop_spread"]["median"]
    if long:
        fraction = ratios(limit[: len(long)], long)
        result["steady_state"] = {
            "ms_per_step": spread([s * 1e3 for s in long]),
            "fraction_of_flop_limit": fraction,
            "paper_protocol_steps": PAPER_STEPS,
            "projected_seconds": spread([s * PAPER_STEPS for s in long]),
            "flop_limit_seconds": spread([s * PAPER_STEPS for s in limit[: len(long)]]),
            "time_over_flop_limit": ratios(long, limit[: len(long)]),
            "outside_network_ms_per_step": spread(
                [(a - b) * 1e3 for a, b in zip(long, alone, strict=False)]
            ),
        }
        result["fraction_of_flop_limit"] = fraction["median"]
    else:
        result["fraction_of_flop_limit"] = result["fraction_of_flop_limit_short"]["median"]
    return result


def measure(quick: bool = False) -> dict[str, Any]:
    """The paper's shape (300 trajectories x 12 modes, m = 128, hidden (256, 256), latent 12)
    and, for comparison with the issue's earlier numbers, 100 trajectories at the same m."""
    if quick:
        paper = compare(16, 12, 128, (256, 256), 12, 4, 2, 512, long_steps=8, long_repeats=1)
        issue = compare(8, 12, 128, (256, 256), 12, 4, 2, 512)
    else:
        paper = compare(300, 12, 128, (256, 256), 12, 64, 5, 4096, long_steps=640, long_repeats=3)
        issue = compare(100, 12, 128, (256, 256), 12, 64, 5, 4096)
    paper["issue_shape"] = issue
    return paper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(measure(args.quick), indent=2))


if __name__ == "__main__":
    main()
