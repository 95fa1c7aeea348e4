"""`mlgle budget cheap`: D_short and D_GLE against T_train over independent MD segments."""

from __future__ import annotations

from pathlib import Path

from mlgle.config import Params
from mlgle.store import open_modes, temperature_tag, write_file


def cheap(params: Params, modes_dir: Path, out: Path, tracking: bool = True) -> Path:
    """One row per (T, T_train, segment) of ``budget.t_trains`` x ``budget.segments`` at every
    temperature: D_short, D_GLE (lags {1, m/2, m} or gle.points) and their errors vs D_MD
    (Eq. 35 of the full run over evaluate.d_window). Writes the CSV ``out``; with tracking, one
    MLflow run with a nested run per (T, T_train) holding the mean and spread of both errors."""
    import numpy as np
    import polars as pl

    from mlgle import stats
    from mlgle.analysis.budget import segment_estimates

    rows = []
    for t in params.md.temperatures:
        mapped, meta = open_modes(Path(modes_dir) / temperature_tag(t))
        k = params.slow_modes(mapped.shape[2] - 1)
        z = mapped[:, :, : k + 1]
        d_md = stats.com_diffusion(
            np.asarray(z[:, :, 0], dtype=np.float64), meta.dt, params.evaluate.d_window
        ).value
        for t_train in params.budget.t_trains:
            for row in segment_estimates(
                z, meta.dt, t_train, params.budget.segments, params.gle_points(),
                params.evaluate.short_window,
            ):  # fmt: skip
                rows.append(
                    {
                        "T": t,
                        "t_train": t_train,
                        "budget_pct": 100.0 * t_train / meta.frames,
                        **row,
                        "D_md": d_md,
                        "err_short": row["D_short"] / d_md - 1,
                        "err_gle": row["D_gle"] / d_md - 1,
                    }
                )
    table = pl.DataFrame(rows)
    write_file(out, table.write_csv)
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run("budget cheap", params, stage="budget-cheap") as run:
            for (t, t_train), group in table.group_by(["T", "t_train"], maintain_order=True):
                child = run.nested(f"T={t:g} T_train={t_train}", {"T": t, "t_train": t_train})
                child.log_metrics(
                    {
                        f"{name}_{stat}": float(getattr(group[f"err_{name}"], stat)())
                        for name in ("short", "gle")
                        for stat in ("mean", "std")
                    }
                    | {"segments": group.height}
                )
                child.finish()
            run.log_artifact(out)
    return out
