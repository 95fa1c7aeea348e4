"""Table 1 and reports/metrics.json from the per-temperature evaluation summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

METRIC_KEYS = (
    "D_md",
    "D_md_ci95",
    "D_gle",
    "D_mlgle",
    "D_mlgle_ci95",
    "nu_min",
    "nacf_band_fraction",
)


def mare(predicted: Sequence[float], reference: Sequence[float]) -> float:
    """Mean absolute relative error of ``predicted`` against ``reference``."""
    p, r = np.asarray(predicted, dtype=float), np.asarray(reference, dtype=float)
    return float(np.mean(np.abs(p - r) / np.abs(r)))


def metrics(summaries: Sequence[Mapping]) -> dict:
    """The metrics.json contract of DESIGN.md: per temperature values and the MAREs."""
    if not summaries:
        raise ValueError("metrics: no evaluation summaries given")
    ordered = sorted(summaries, key=lambda s: s["temperature"])
    temperatures = {
        repr(float(s["temperature"])): {key: s[key] for key in METRIC_KEYS} for s in ordered
    }
    d_md = [s["D_md"] for s in ordered]
    return {
        "temperatures": temperatures,
        "summary": {
            "mare_gle": mare([s["D_gle"] for s in ordered], d_md),
            "mare_mlgle": mare([s["D_mlgle"] for s in ordered], d_md),
            "nacf_band_fraction_mean": float(np.mean([s["nacf_band_fraction"] for s in ordered])),
        },
        "units": "D in sigma^2/tau (reduced LJ units; dt = 1 tau, so also per dt)",
    }


def _ci(values: Sequence[float] | None) -> str:
    return "" if values is None else f"[{values[0]:.4g}, {values[1]:.4g}]"


def table1(summaries: Sequence[Mapping]) -> pl.DataFrame:
    """One row per temperature: D_MD, D_GLE and D_ML-GLE with their 95 % CIs (Table 1)."""
    ordered = sorted(summaries, key=lambda s: s["temperature"])
    return pl.DataFrame(
        {
            "T": [s["temperature"] for s in ordered],
            "D_md": [round(s["D_md"], 6) for s in ordered],
            "D_md_ci95": [_ci(s["D_md_ci95"]) for s in ordered],
            "D_gle": [round(s["D_gle"], 6) for s in ordered],
            "D_gle_ci95": [_ci(s.get("D_gle_ci95")) for s in ordered],
            "D_mlgle": [round(s["D_mlgle"], 6) for s in ordered],
            "D_mlgle_ci95": [_ci(s["D_mlgle_ci95"]) for s in ordered],
            "err_gle_pct": [round(100 * (s["D_gle"] / s["D_md"] - 1), 1) for s in ordered],
            "err_mlgle_pct": [round(100 * (s["D_mlgle"] / s["D_md"] - 1), 1) for s in ordered],
        }
    )
