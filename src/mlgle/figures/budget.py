"""D error against the MD budget (beyond the paper): one panel per temperature."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from mlgle.figures.common import UNITS


def draw_budget(summary: pl.DataFrame, mlgle: pl.DataFrame) -> Figure:
    """Relative error of D vs D_MD against T_train (% of T_sim, log axis): D_short and D_GLE as
    mean ± std over independent segments (``summary``: T, budget_pct, {short,gle}_{mean,std});
    ML-GLE points with their 95 % CI (``mlgle``: T, budget_pct, err_mlgle, err_lo, err_hi)."""
    import matplotlib.pyplot as plt

    temps = sorted(summary["T"].unique())
    fig, axes = plt.subplots(1, len(temps), figsize=(3.6 * len(temps), 3.2), sharey=True,
                             squeeze=False)  # fmt: skip
    for ax, t in zip(axes[0], temps, strict=True):
        rows = summary.filter(pl.col("T") == t).sort("budget_pct")
        x = rows["budget_pct"].to_numpy()
        for name, label, marker in (("short", "no model (Eq. 35)", "v"), ("gle", "GLE fit", "s")):
            mean, std = 100 * rows[f"{name}_mean"].to_numpy(), 100 * rows[f"{name}_std"].to_numpy()
            ax.errorbar(x, mean, yerr=std, fmt=f"{marker}-", capsize=3, label=label)
        points = mlgle.filter(pl.col("T") == t).sort("budget_pct")
        if points.height:
            err = 100 * points["err_mlgle"].to_numpy()
            lo, hi = 100 * points["err_lo"].to_numpy(), 100 * points["err_hi"].to_numpy()
            x_ml = points["budget_pct"].to_numpy()
            ax.errorbar(x_ml, err, yerr=np.stack([err - lo, hi - err]), fmt="o",
                        color="tab:purple", capsize=3, label="ML-GLE (95 % CI)")  # fmt: skip
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("T_train [% of T_sim]")
        ax.set_title(f"T = {t:g}", fontsize=9)
    axes[0, 0].set_ylabel("D / D_MD − 1 [%]")
    # ML-GLE points exist at budget.temperature only: one legend for the panels together.
    labelled = {}
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        labelled.update(zip(labels, handles, strict=True))
    axes[0, 0].legend(labelled.values(), labelled.keys(), frameon=False, fontsize=7)
    fig.suptitle(f"D error against the MD budget ({UNITS})", fontsize=9)
    return fig
