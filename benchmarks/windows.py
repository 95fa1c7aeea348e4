"""Training windows (Sec. 4.2): ``mlgle.nar.windows.sliding_windows`` (a strided view) against
building them by concatenation in a loop, the array grown by one target time per iteration.

Default case: 100 chains x 1000 frames x 1 mode, m = 128 (the loop copies the growing array every
iteration, O(frames²); one mode keeps it under a minute). Same data, same run, alternating; the
view is timed alone and with ``np.ascontiguousarray`` (the same contiguous array the loop ends
with), and the results are checked equal.
Run: ``python -m benchmarks.windows [--quick]``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from benchmarks.common import alternate, ratios, spread
from mlgle.nar.windows import sliding_windows


def concatenated_windows(z: np.ndarray, history: int) -> tuple[np.ndarray, np.ndarray]:
    """The naive baseline: windows and targets grown by ``np.concatenate`` once per target time.

    z (frames, chains, k, 3) -> windows (frames - m, chains, k, m, 3), targets
    (frames - m, chains, k, 3), the layout of ``sliding_windows``.
    """
    frames, chains, k, _ = z.shape
    windows = np.empty((0, chains, k, history, 3), dtype=z.dtype)
    targets = np.empty((0, chains, k, 3), dtype=z.dtype)
    for t in range(history, frames):
        window = z[t - history : t].transpose(1, 2, 0, 3)[None]
        windows = np.concatenate([windows, window])
        targets = np.concatenate([targets, (z[t] - z[t - 1])[None]])
    return windows, targets


def measure(chains: int, frames: int, modes: int, history: int, repeats: int) -> dict[str, Any]:
    z = np.random.default_rng(0).standard_normal((frames, chains, modes, 3))
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def materialised() -> None:
        windows, targets = sliding_windows(z, history)
        results["view"] = (np.ascontiguousarray(windows), targets)

    def loop() -> None:
        results["loop"] = concatenated_windows(z, history)

    seconds = alternate(
        {
            "loop": loop,
            "view": lambda: sliding_windows(z, history),
            "view_materialised": materialised,
        },
        repeats,
        warmup=False,
    )
    equal = all(np.array_equal(a, b) for a, b in zip(results["loop"], results["view"], strict=True))
    if not equal:
        raise RuntimeError("windows benchmark: the loop and the view disagree")
    return {
        "shape": {"chains": chains, "frames": frames, "modes": modes, "history": history},
        "concatenation_seconds": spread(seconds["loop"]),
        "view_seconds": spread(seconds["view"]),
        "view_materialised_seconds": spread(seconds["view_materialised"]),
        "speedup_vs_concatenation": ratios(seconds["loop"], seconds["view_materialised"]),
        "speedup_view_only": ratios(seconds["loop"], seconds["view"]),
        "window_bytes": int(results["view"][0].nbytes),
    }


def run(quick: bool = False) -> dict[str, Any]:
    return measure(10, 200, 1, 16, 2) if quick else measure(100, 1000, 1, 128, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
