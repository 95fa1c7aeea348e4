"""`mlgle analyze-md`: the MD reference report (MSD, local slope, NACF fits, D_MD)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.config import Params
from mlgle.store import (
    atomic_dir,
    open_trajectory,
    read_modes,
    write_json,
)


def analyze_md(params: Params, modes_store: Path, trajectory: Path | None, out: Path) -> dict:
    """MD reference report at one temperature: summary.json, msd.csv, nacf.csv and figures."""
    import polars as pl

    from mlgle.analysis.md import chain_size, summarize_md
    from mlgle.figures import md as figures

    z, meta = read_modes(modes_store)
    ev = params.evaluate
    summary = summarize_md(
        z,
        meta.dt,
        meta.temperature,
        ev.d_window,
        ev.nacf_modes,
        fit_lags=params.train.t_train,
        nacf_max_lag=ev.nacf_max_lag,
    )
    result = summary.to_json()
    if trajectory is not None:
        positions, _ = open_trajectory(trajectory)
        result.update(chain_size(positions, every=max(1, meta.frames // 200)))
    with atomic_dir(out) as tmp:
        write_json(tmp / "summary.json", result)
        pl.DataFrame(
            {"t": summary.lags * meta.dt, "msd": summary.msd[summary.lags], "slope": summary.slope}
        ).write_csv(tmp / "msd.csv")
        pl.DataFrame(
            {"t": np.arange(ev.nacf_max_lag + 1) * meta.dt}
            | {f"mode_{p}": curve for p, curve in summary.nacf.items()}
        ).write_csv(tmp / "nacf.csv")
        figures.md_msd(summary, ev.d_window, tmp / "msd.png")
        figures.nacf_fits([summary], tmp / "nacf_fits.png")
    return result
