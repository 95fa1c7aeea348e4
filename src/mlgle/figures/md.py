"""MD reference figures: the C.o.M MSD with its local exponent, and Fig. 6 (mode NACFs with
exponential and Kohlrausch fits, Eq. 33)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mlgle.analysis.md import MDSummary, NACFPanel
from mlgle.figures.common import UNITS, save


def md_msd(summary: MDSummary, d_window: tuple[int, int], path: str | Path) -> Path:
    """C.o.M MSD (log-log) with 6 D_MD t and its local exponent: the transient sub-diffusion."""
    fig, (ax, ax_slope) = plt.subplots(
        2, 1, figsize=(5, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    t = np.arange(1, summary.msd.size) * summary.dt
    ax.loglog(t, summary.msd[1:], label="MD C.o.M")
    ax.loglog(
        t,
        6 * summary.d_md.value * t,
        "--",
        color="0.4",
        label=f"6 D t, D = {summary.d_md.value:.3g}",
    )
    ax.axvspan(
        d_window[0] * summary.dt,
        d_window[1] * summary.dt,
        color="0.9",
        zorder=0,
        label="D window (Eq. 35)",
    )
    ax.set_ylabel(f"MSD [σ²] ({UNITS})")
    ax.set_title(f"T = {summary.temperature:g}")
    ax.legend(frameon=False)
    ax_slope.semilogx(summary.lags * summary.dt, summary.slope, ".-")
    ax_slope.axhline(1.0, color="0.4", lw=0.8)
    ax_slope.set_ylabel("d log MSD / d log t")
    ax_slope.set_xlabel("t [τ]")
    ax_slope.set_ylim(0.5, 1.2)
    return save(fig, path)


def nacf_fits(summaries: Sequence[MDSummary | NACFPanel], path: str | Path) -> Path:
    """Fig. 6: MD mode NACFs with exponential (top) and Kohlrausch (bottom) fits."""
    cols = len(summaries)
    fig, axes = plt.subplots(2, cols, figsize=(3.6 * cols, 6), squeeze=False, sharey=True)
    for c, s in enumerate(summaries):
        for row, which in enumerate(("exponential", "Kohlrausch")):
            ax = axes[row, c]
            for i, (p, curve) in enumerate(s.nacf.items()):
                color = f"C{i}"
                t = np.arange(curve.size) * s.dt
                ax.plot(t, curve, color=color, label=f"p = {p}")
                fit = s.fits[p][row]
                ax.plot(t, fit(t), "--", color=color, lw=1)
            ax.set_xscale("log")
            ax.set_title(f"T = {s.temperature:g}, {which} fit")
            ax.set_xlabel("t [τ]")
        axes[0, c].legend(frameon=False, fontsize=7)
    axes[0, 0].set_ylabel("NACF")
    axes[1, 0].set_ylabel("NACF")
    return save(fig, path)
