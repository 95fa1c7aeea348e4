"""FFT MSD (Eq. 36) and autocorrelation: ``mlgle.stats`` against tidynamics on n trajectories of
``frames`` 3D points (default 300 x 1e5 x 3, Brownian random walks, float64).

mlgle gets the (frames, n, 3) array it is written for; tidynamics gets each trajectory as a
contiguous (frames, 3) array (its natural input) and the n results are averaged. Same data, same
run, alternating, both single-threaded unless a ``scipy.fft.set_workers`` context says otherwise
(tidynamics' numpy.fft always is). ``speedup_vs_tidynamics`` is the median over repeats of the
per-repeat ratio tidynamics seconds / mlgle seconds; ``load_average_1min`` the machine's load when
the section started and ended (the ratio, not the seconds, is what a loaded machine keeps).
``max_rel_diff`` is max over lags >= 1 of |mlgle - tidynamics| / |tidynamics|; where the two
differ it is round-off of either, so ``direct_check`` gives both errors against direct float64
sums over origins at a few lags (small, middle and last lags, where the FFT terms cancel most).
For the normalised ACF the relative difference is large only where the ACF is near 0 (the last
lags average a handful of products), ``max_abs_diff`` is the difference on the ACF's scale.
Run: ``python -m benchmarks.msd [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def direct_msd(x: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """MSD averaged over trajectories at the given lags by direct sums over origins: (L,)."""
    frames, n, _ = x.shape
    return np.array([np.sum((x[m:] - x[: frames - m]) ** 2) / (n * (frames - m)) for m in lags])


def check_lags(frames: int) -> np.ndarray:
    """Lags >= 1 where an FFT MSD loses most digits: the first, a few spaced ones, the last."""
    lags = [1, 2, 3, 10, frames // 100, frames // 2, frames - 10, frames - 2, frames - 1]
    return np.unique([m for m in lags if 1 <= m <= frames - 1])


def measure(trajectories: int, frames: int, repeats: int) -> dict[str, Any]:
    load_start = os.getloadavg()[0]
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
    load_end = os.getloadavg()[0]
    lags = check_lags(frames)
    exact = direct_msd(ours_layout, lags)
    return {
        "shape": {"trajectories": trajectories, "frames": frames, "dims": 3, "dtype": "float64"},
        "load_average_1min": {"start": load_start, "end": load_end},
        "mlgle_seconds": spread(seconds["msd_mlgle"]),
        "tidynamics_seconds": spread(seconds["msd_tidynamics"]),
        "speedup_spread": ratios(seconds["msd_tidynamics"], seconds["msd_mlgle"]),
        "speedup_vs_tidynamics": ratios(seconds["msd_tidynamics"], seconds["msd_mlgle"])["median"],
        "max_rel_diff": max_rel_diff(results["msd_mlgle"], results["msd_tidynamics"]),
        "direct_check": {
            "lags": lags.tolist(),
            "mlgle_max_rel_err": float(np.max(np.abs(results["msd_mlgle"][lags] - exact) / exact)),
            "tidynamics_max_rel_err": float(
                np.max(np.abs(results["msd_tidynamics"][lags] - exact) / exact)
            ),
        },
        "acf": {
            "mlgle_seconds": spread(seconds["acf_mlgle"]),
            "tidynamics_seconds": spread(seconds["acf_tidynamics"]),
            "speedup_vs_tidynamics": ratios(seconds["acf_tidynamics"], seconds["acf_mlgle"]),
            "max_rel_diff": max_rel_diff(results["acf_mlgle"], reference_acf),
            "max_abs_diff": float(np.max(np.abs(results["acf_mlgle"] - reference_acf))),
        },
    }


def run(quick: bool = False) -> dict[str, Any]:
    return measure(20, 2000, 2) if quick else measure(300, 100_000, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
