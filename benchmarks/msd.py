"""FFT MSD (Eq. 36) and autocorrelation: ``mlgle.stats`` against tidynamics on n trajectories of
``frames`` 3D points (default 300 x 1e5 x 3, Brownian random walks, float64).

mlgle gets the (frames, n, 3) array it is written for; tidynamics gets each trajectory as a
contiguous (frames, 3) array (its natural input) and the n results are averaged. Same data, same
run, alternating. ``max_rel_diff`` is max over lags >= 1 of |mlgle - tidynamics| / |tidynamics|.
Run: ``python -m benchmarks.msd [--quick]``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import tidynamics

from benchmarks.common import alternate, ratios, spread
from mlgle import stats


def max_rel_diff(ours: np.ndarray, reference: np.ndarray) -> float:
    """max over lags >= 1 of |ours - reference| / |reference| (lag 0 is 0 for an MSD)."""
    return float(np.max(np.abs(ours[1:] - reference[1:]) / np.abs(reference[1:])))


def tidynamics_msd(per_trajectory: np.ndarray) -> np.ndarray:
    """Mean over trajectories of tidynamics.msd: (n, frames, d) -> (frames,)."""
    return np.mean([tidynamics.msd(x) for x in per_trajectory], axis=0)


def tidynamics_lagged(per_trajectory: np.ndarray) -> np.ndarray:
    """Mean over trajectories of tidynamics.acf (Σ_d x_i·x_{i+m} / (frames - m)): (n, frames, d)
    -> (frames,), what ``mlgle.stats.acf`` normalises by its lag-0 value."""
    return np.mean([tidynamics.acf(x) for x in per_trajectory], axis=0)


def measure(trajectories: int, frames: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    ours_layout = rng.standard_normal((frames, trajectories, 3)).cumsum(axis=0)
    theirs_layout = np.ascontiguousarray(ours_layout.transpose(1, 0, 2))
    results: dict[str, np.ndarray] = {}

    def keep(name: str, function):
        def run() -> None:
            results[name] = function()

        return run

    seconds = alternate(
        {
            "msd_mlgle": keep("msd_mlgle", lambda: stats.msd(ours_layout)),
            "msd_tidynamics": keep("msd_tidynamics", lambda: tidynamics_msd(theirs_layout)),
            "acf_mlgle": keep("acf_mlgle", lambda: stats.acf(ours_layout)),
            "acf_tidynamics": keep("acf_tidynamics", lambda: tidynamics_lagged(theirs_layout)),
        },
        repeats,
        warmup=False,
    )
    reference_acf = results["acf_tidynamics"] / results["acf_tidynamics"][0]
    return {
        "shape": {"trajectories": trajectories, "frames": frames, "dims": 3, "dtype": "float64"},
        "mlgle_seconds": spread(seconds["msd_mlgle"]),
        "tidynamics_seconds": spread(seconds["msd_tidynamics"]),
        "speedup_spread": ratios(seconds["msd_tidynamics"], seconds["msd_mlgle"]),
        "speedup_vs_tidynamics": ratios(seconds["msd_tidynamics"], seconds["msd_mlgle"])["median"],
        "max_rel_diff": max_rel_diff(results["msd_mlgle"], results["msd_tidynamics"]),
        "acf": {
            "mlgle_seconds": spread(seconds["acf_mlgle"]),
            "tidynamics_seconds": spread(seconds["acf_tidynamics"]),
            "speedup_vs_tidynamics": ratios(seconds["acf_tidynamics"], seconds["acf_mlgle"]),
            "max_rel_diff": max_rel_diff(results["acf_mlgle"], reference_acf),
        },
    }


def run(quick: bool = False) -> dict[str, Any]:
    return measure(20, 2000, 2) if quick else measure(300, 100_000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
