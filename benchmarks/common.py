"""Shared pieces of the benchmarks: repeat statistics, the machine, the matmul peak, fresh-process
peak memory, and the merged ``reports/benchmarks.json``.

Every figure is a median over repeats with its spread (min, max); a comparison is the median of
per-repeat ratios of variants timed back to back in the same repeat.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPORT = "benchmarks.json"


def spread(values: Sequence[float]) -> dict[str, float | int]:
    """Median, min, max and count of repeated measurements."""
    if not values:
        raise ValueError("spread: needs at least one value")
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "repeats": len(values),
    }


def ratios(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, float | int]:
    """Spread of the per-repeat ratios numerator[i] / denominator[i] (same repeat, same run)."""
    return spread([a / b for a, b in zip(numerator, denominator, strict=True)])


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of one call."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


CLOCKS = ("wall", "cpu")


def clocked(function: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """({"wall": seconds, "cpu": process CPU seconds}, result) of one call.

    With one torch thread the CPU time is the time the work itself took, whatever else runs on
    the machine; the wall time also counts the time the process waited for a core.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}, result


def alternate(
    variants: Mapping[str, Callable[[], Any]], repeats: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Wall seconds of each variant per repeat, the variants run back to back in every repeat."""
    if warmup:
        for function in variants.values():
            function()
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, function in variants.items():
            seconds[name].append(timed(function)[0])
    return seconds


def cpu_model() -> str:
    """'model name' of /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int) -> dict[str, Any]:
    """The machine a run measures: CPU model, cores, torch threads, library versions, load."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average_1min": os.getloadavg()[0],
    }


def matmul_peak(size: int) -> dict[str, dict[str, float]]:
    """Achieved float32 FLOP/s of one (size, size) x (size, size) product by each CPU backend torch
    offers, at the current thread count, by wall and CPU clock: ``torch.mm`` (MKL sgemm) and,
    where available, oneDNN (``torch.ops.mkldnn._linear_pointwise``, weight prepacked), and
    "best", the faster per clock (the FLOP limit). 2·size³ FLOPs per product; one warm-up each.
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    c = torch.empty(size, size)
    flops = 2.0 * size**3
    backends: dict[str, Callable[[], Any]] = {"mkl": lambda: torch.mm(a, b, out=c)}
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        packed = torch.ops.mkldnn._reorder_linear_weight(b.T.contiguous(), size)
        backends["onednn"] = lambda: torch.ops.mkldnn._linear_pointwise(
            a, packed, None, "none", [], ""
        )
    result: dict[str, dict[str, float]] = {}
    for name, product in backends.items():
        product()
        seconds, _ = clocked(product)
        result[name] = {clock: flops / seconds[clock] for clock in CLOCKS}
    result["best"] = {clock: max(r[clock] for r in result.values()) for clock in CLOCKS}
    return result


def peak_rss_child(module: str, arguments: Sequence[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m module arguments`` in a fresh process; return the JSON it prints last.

    The child measures its own peak resident set (:func:`max_rss_bytes`), which counts numpy
    and torch allocations alike (tracemalloc sees neither torch's nor all of numpy's).
    """
    result = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=Path(__file__).resolve().parents[1],  # the repository root: `benchmarks` imports
    )
    if result.returncode:
        raise RuntimeError(
            f"python -m {module} {' '.join(arguments)} failed ({result.returncode}):\n"
            f"{result.stderr[-3000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes.

    Linux: VmHWM of /proc/self/status, the high-water mark of this process image; ru_maxrss
    would not do in a child, as getrusage keeps it across exec and a vfork-spawned child starts
    from its parent's peak. Elsewhere: ru_maxrss (KiB on Linux, bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def load_report(out: Path) -> dict[str, Any]:
    """The current ``out/benchmarks.json`` (empty when absent)."""
    path = out / REPORT
    return json.loads(path.read_text()) if path.is_file() else {}


def write_report(out: Path, sections: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``sections`` into ``out/benchmarks.json`` (top-level keys replaced), atomically."""
    report = {**load_report(out), **sections}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{REPORT}.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out / REPORT)
    return report
