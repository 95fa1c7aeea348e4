"""Figures of the Optuna ablations (Figs. 10, 11, 17 and the history m study), from the tables.

Input tables are those written by :mod:`mlgle.sweep`: one row per trial with the swept params,
the metric and the user attrs (``d_gle_T<T>``, ``d_gle_sq_error_ci95``, ``best_val_nll``, ...),
and for training studies a long table of curves (number, param, epoch, mode, train_nll, val_nll).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import seaborn as sns
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from mlgle.figures.common import UNITS, save


def _empty(ax: plt.Axes) -> None:
    ax.text(0.5, 0.5, "no complete trials", ha="center", va="center", transform=ax.transAxes)


def gle_k(table: pl.DataFrame, refs: Sequence[Any], path: str | Path) -> Path:
    """Fig. 10: D_GLE = α²/2 (Eq. 27) vs the number of modes k, one panel per T_fit, one line
    per temperature; D_MD (Eq. 35) and its 95 % CI over chains as a horizontal line and band.

    table: COMPLETE trials with columns k, t_fit, d_gle_<T>; refs: :class:`mlgle.sweep.Reference`.
    """
    t_fits = sorted(table["t_fit"].unique().to_list()) if table.height else [None]
    fig, axes = plt.subplots(
        1, len(t_fits), figsize=(3.8 * len(t_fits), 3.6), sharey=True, squeeze=False
    )
    colours = sns.color_palette("rocket", len(refs))
    for ax, t_fit in zip(axes[0], t_fits, strict=True):
        if t_fit is None:
            _empty(ax)
            continue
        rows = table.filter(pl.col("t_fit") == t_fit).sort("k")
        for ref, colour in zip(refs, colours, strict=True):
            ax.axhspan(*ref.d_md_ci95, color=colour, alpha=0.15, lw=0)
            ax.axhline(ref.d_md, color=colour, lw=0.8, ls="--")
            ax.plot(
                rows["k"],
                rows[f"d_gle_{ref.tag}"],
                "o-",
                color=colour,
                ms=3,
                label=f"T = {ref.temperature:g}",
            )
        ax.set_title(f"T_fit = {t_fit} Δt")
        ax.set_xlabel("k (slowest modes in Eq. 27)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_ylabel(f"D_GLE [σ²/τ] ({UNITS})")
    if table.height:
        axes[0, -1].legend(frameon=False, fontsize="small", title="dashed: D_MD, band: 95 % CI")
    return save(fig, path)


def gle_tfit(
    table: pl.DataFrame, refs: Sequence[Any], path: str | Path, param: str = "t_fit"
) -> Path:
    """Fig. 11: mean over temperatures of (D_MD − D_GLE)² vs T_fit, with Student-t 95 % intervals
    over the temperatures (``d_gle_sq_error_ci95``)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    if table.height:
        rows = table.sort(param)
        x = rows[param].to_numpy()
        half = rows["d_gle_sq_error_ci95"].fill_null(np.nan).to_numpy()
        ax.errorbar(
            x,
            rows["d_gle_sq_error"].to_numpy(),
            yerr=half,
            fmt="o-",
            capsize=3,
            label=f"k = {rows['k'][0]}, {len(refs)} temperatures",
        )
        ax.set_xscale("log")
        ax.set_xticks(x)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.legend(frameon=False)
    else:
        _empty(ax)
    dt = refs[0].dt if refs else 1.0
    ax.set_xlabel(f"T_fit [frames of Δt = {dt:g} τ]" if param == "t_fit" else param)
    ax.set_ylabel(f"MSE (D_MD − D_GLE)² [σ⁴/τ²] ({UNITS})")
    ax.axhline(0.0, color="0.5", lw=0.6)
    return save(fig, path)


def training(
    table: pl.DataFrame,
    curves: pl.DataFrame,
    param: str,
    path: str | Path,
    heuristic: int | None = None,
    dt: float = 1.0,
    temperature: float | None = None,
) -> Path:
    """Fig. 17: NLL vs epoch (train solid, validation dashed; mean over the modes), also for
    history m: one colour per value of ``param``, and the best validation NLL vs ``param``. For
    the history the paper's heuristic (first lag where the mode-1 NACF < 0.8) is marked.
    """
    fig, (ax, ax_best) = plt.subplots(1, 2, figsize=(9, 3.6))
    if curves.height:
        mean = (
            curves.group_by(["number", param, "epoch"])
            .agg(pl.col("train_nll").mean(), pl.col("val_nll").mean())
            .sort("epoch")
        )
        values = sorted(mean[param].unique().to_list())
        colours = dict(zip(values, sns.color_palette("viridis", len(values)), strict=True))
        groups = sorted(mean.group_by(["number", param]), key=lambda g: (g[0][1], g[0][0]))
        for (number, value), rows in groups:
            pruned = _state(table, number) == "PRUNED"
            style = {"color": colours[value], "alpha": 0.5 if pruned else 1.0}
            ax.plot(rows["epoch"], rows["train_nll"], "-", label=f"{param} = {value}", **style)
            ax.plot(rows["epoch"], rows["val_nll"], "--", **style)
        ax.legend(frameon=False, fontsize="small", title="solid: train, dashed: val")
    else:
        _empty(ax)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("NLL per sample (Eq. 21, standardised increments)")
    if temperature is not None:
        ax.set_title(f"T = {temperature:g}")
    done = table.filter(pl.col("state") == "COMPLETE") if table.height else table
    if done.height:
        rows = done.sort(param)
        ax_best.plot(rows[param], rows["best_val_nll"], "o-")
        if all(v > 0 for v in rows[param].to_list()):
            ax_best.set_xscale("log", base=2)
            ax_best.set_xticks(rows[param].to_list())
            ax_best.xaxis.set_major_formatter(ScalarFormatter())
            ax_best.xaxis.set_minor_formatter(plt.NullFormatter())
    else:
        _empty(ax_best)
    if heuristic is not None and param == "history":
        ax_best.axvline(
            heuristic, color="C3", ls=":", label=f"NACF₁ < 0.8 at {heuristic} Δt (paper's m)"
        )
        ax_best.legend(frameon=False, fontsize="small")
    unit = f" [frames of Δt = {dt:g} τ, {UNITS}]" if param == "history" else ""
    ax_best.set_xlabel(f"{param}{unit}")
    ax_best.set_ylabel("best validation NLL (mean over modes)")
    return save(fig, path)


def _state(table: pl.DataFrame, number: int) -> str | None:
    rows = table.filter(pl.col("number") == number)
    return rows["state"][0] if rows.height else None
