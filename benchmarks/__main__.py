"""``make bench``: every benchmark but the end-to-end one, in one run, side by side; one thread,
but training at the thread count of the train stage (``train.threads``).

Writes ``<out>/benchmarks.json`` (sections generation, md_vs_generation, msd, windows, memory,
training, machine, targets; "end_to_end" sections from ``make bench-e2e`` are kept) and
``<out>/benchmarks.md``. ``--quick`` runs tiny sizes in about a minute (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import generation, md_cost, memory, msd, training, windows
from benchmarks.common import machine, write_report
from benchmarks.report import targets, write_markdown
from mlgle.config import TrainConfig


def run(quick: bool, threads: int) -> dict[str, Any]:
    """All sections; the MD comparison uses the generation rate measured in the same run."""
    torch.set_num_threads(threads)
    sections: dict[str, Any] = {"machine": machine(threads), "quick": quick}
    seconds: dict[str, float] = {}

    def stage(name: str, function):
        start = time.perf_counter()
        result = function()
        seconds[name] = time.perf_counter() - start
        print(f"[bench] {name}: {seconds[name]:.1f} s", flush=True)
        return result

    gen = stage("generation", lambda: generation.measure(quick))
    sections["generation"] = gen
    default, long_chains = stage("md", lambda: md_cost.measure(quick, ranks=1))
    sections["md_vs_generation"] = md_cost.compare(
        md_cost.generation_cost(gen, threads), default, long_chains
    )
    sections["msd"] = stage("msd", lambda: msd.run(quick))
    sections["windows"] = stage("windows", lambda: windows.run(quick))
    sections["memory"] = stage("memory", lambda: memory.measure(quick))
    steps, repeats = (4, 2) if quick else (training.STEPS, training.REPEATS)
    train_threads = TrainConfig().threads  # the thread count the train stage runs at
    sections["training"] = stage(
        "training",
        lambda: training.measure(12, 64, (256, 256), 128, steps, repeats, train_threads),
    )
    torch.set_num_threads(threads)  # training.measure sets it too; keep the run's setting
    sections["bench_seconds"] = seconds
    sections["machine"]["load_average_1min_at_end"] = machine(threads)["load_average_1min"]
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (issue: 1)")
    args = parser.parse_args()
    report = write_report(args.out, run(args.quick, args.threads))
    report = write_report(args.out, {"targets": targets(report)})
    path = write_markdown(args.out, report)
    summary = {
        "generation": {
            k: report["generation"][k] for k in ("speedup_vs_loop", "fraction_of_flop_limit")
        },
        "md_vs_generation": {
            k: report["md_vs_generation"][k]
            for k in ("cost_ratio_per_chain_dt", "paper_system_ratio")
        },
        "msd": {k: report["msd"][k] for k in ("speedup_vs_tidynamics", "max_rel_diff")},
    }
    print(json.dumps(summary, indent=2))
    print(f"[bench] wrote {args.out / 'benchmarks.json'} and {path}")


if __name__ == "__main__":
    main()
