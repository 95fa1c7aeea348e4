"""Table 1, reports/metrics.json and the LOTO table from the evaluation summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from mlgle.stats import mare

# (name, summary key): the estimates of D in the order Table 1 shows them. D_short needs no
# model, D_gle the GLE fit alone, D_linear the linear AR baseline, D_mlgle the network.
ESTIMATES = (("short", "D_short"), ("gle", "D_gle"), ("linear", "D_linear"), ("mlgle", "D_mlgle"))
METRIC_KEYS = (
    "D_md",
    "D_md_ci95",
    "nu_min",
    "nacf_band_fraction",
    "nacf_band_fraction_per_mode",
    "msd_over_6Dt_at_half_train",  # the regime evidence: where the training window ends
    "slope_at_half_train",
)


def _present(ordered: Sequence[Mapping]) -> list[tuple[str, str]]:
    """The estimates every summary carries (D_linear only where the baseline stage ran)."""
    return [(name, key) for name, key in ESTIMATES if all(key in s for s in ordered)]


def metrics(summaries: Sequence[Mapping]) -> dict:
    """metrics.json: per temperature D_MD (with its CI), every estimate (with its CI where it
    has one), ν_min, the NACF band share (overall and per mode) and the regime evidence at
    T_train / 2; and the MARE of each estimate against D_MD."""
    if not summaries:
        raise ValueError("metrics: no evaluation summaries given")
    ordered = sorted(summaries, key=lambda s: s["temperature"])
    present = _present(ordered)
    extra = [k for _, key in present for k in (key, f"{key}_ci95")]
    temperatures = {
        repr(float(s["temperature"])): {k: s[k] for k in (*METRIC_KEYS, *extra) if k in s}
        for s in ordered
    }
    d_md = [s["D_md"] for s in ordered]
    return {
        "temperatures": temperatures,
        "summary": {
            **{f"mare_{name}": mare([s[key] for s in ordered], d_md) for name, key in present},
            "nacf_band_fraction_mean": float(np.mean([s["nacf_band_fraction"] for s in ordered])),
        },
        "units": "D in sigma^2/tau (reduced LJ units)",
    }


def _ci(values: Sequence[float] | None) -> str:
    return "" if values is None else f"[{values[0]:.4g}, {values[1]:.4g}]"


def _pct(value: float, reference: float) -> float:
    return round(100.0 * (value / reference - 1.0), 1)


def table1(summaries: Sequence[Mapping]) -> pl.DataFrame:
    """Table 1: one row per temperature: D_MD, then each estimate (D_short, the model-free
    baseline: Eq. 35 on the training frames alone; D_GLE; D_linear, the linear AR baseline;
    D_ML-GLE) with its 95 % CI and its error vs D_MD in %."""
    ordered = sorted(summaries, key=lambda s: s["temperature"])
    columns: dict[str, list] = {
        "T": [s["temperature"] for s in ordered],
        "D_md": [round(s["D_md"], 6) for s in ordered],
        "D_md_ci95": [_ci(s["D_md_ci95"]) for s in ordered],
    }
    present = _present(ordered)
    for _, key in present:
        columns[key] = [round(s[key], 6) for s in ordered]
        columns[f"{key}_ci95"] = [_ci(s.get(f"{key}_ci95")) for s in ordered]
    for name, key in present:
        columns[f"err_{name}_pct"] = [_pct(s[key], s["D_md"]) for s in ordered]
    return pl.DataFrame(columns)


def baselines_table(
    mlgle: Sequence[Mapping], linear: Sequence[Mapping]
) -> pl.DataFrame:
    """What the network buys, per temperature and mode: NACF band share (Eq. 34) and the KS
    distance of the z and Δz PDFs to MD for ML-GLE and the linear AR baseline, and per
    temperature the C.o.M MSD curve error (mean |log MSD ratio|) and D's error."""
    rows = []
    by_t = {s["temperature"]: s for s in linear}
    for s in sorted(mlgle, key=lambda s: s["temperature"]):
        lin = by_t[s["temperature"]]
        for j, mode in enumerate(range(1, len(s["nacf_band_fraction_per_mode"]) + 1)):
            rows.append(
                {
                    "T": s["temperature"],
                    "mode": mode,
                    "band_mlgle": round(s["nacf_band_fraction_per_mode"][j], 3),
                    "band_linear": round(lin["nacf_band_fraction_per_mode"][j], 3),
                    "ks_z_mlgle": round(s["ks_z_per_mode"][j], 3),
                    "ks_z_linear": round(lin["ks_z_per_mode"][j], 3),
                    "ks_dz_mlgle": round(s["ks_dz_per_mode"][j], 3),
                    "ks_dz_linear": round(lin["ks_dz_per_mode"][j], 3),
                    "msd_err_mlgle": round(s["msd_log_error"], 4),
                    "msd_err_linear": round(lin["msd_log_error"], 4),
                    "err_D_mlgle_pct": _pct(s["D_mlgle"], s["D_md"]),
                    "err_D_linear_pct": _pct(lin["D_linear"], s["D_md"]),
                }
            )
    return pl.DataFrame(rows)


def loto_table(loto: Sequence[Mapping], per_temperature: Mapping[float, Mapping]) -> pl.DataFrame:
    """One row per left-out temperature: D_MD, per-temperature ML-GLE and conditioned ML-GLE
    (both GLE variants) with 95 % CIs and relative errors in %, D_GLE fitted at T* vs
    interpolated, and the NACF band shares of both model families.

    loto: LOTO evaluation summaries; per_temperature: T -> the per-temperature evaluation
    summary (``mlgle evaluate``) at the same T.
    """
    rows = []
    for s in sorted(loto, key=lambda s: s["temperature"]):
        t = s["temperature"]
        if t not in per_temperature:
            raise ValueError(f"per_temperature: no per-temperature evaluation at T = {t:g}")
        p, v = per_temperature[t], s["variants"]
        rows.append(
            {
                "T": t,
                "trained_on": ", ".join(f"{x:g}" for x in s["trained_on"]),
                "D_md": round(s["D_md"], 6),
                "D_md_ci95": _ci(s["D_md_ci95"]),
                "D_mlgle_per_T": round(p["D_mlgle"], 6),
                "D_mlgle_per_T_ci95": _ci(p["D_mlgle_ci95"]),
                "err_per_T_pct": _pct(p["D_mlgle"], s["D_md"]),
                "D_mlgle_cond": round(v["interpolate"]["D_mlgle"], 6),
                "D_mlgle_cond_ci95": _ci(v["interpolate"]["D_mlgle_ci95"]),
                "err_cond_pct": _pct(v["interpolate"]["D_mlgle"], s["D_md"]),
                "D_mlgle_cond_refit": round(v["refit"]["D_mlgle"], 6),
                "D_mlgle_cond_refit_ci95": _ci(v["refit"]["D_mlgle_ci95"]),
                "err_cond_refit_pct": _pct(v["refit"]["D_mlgle"], s["D_md"]),
                "D_gle_per_T": round(p["D_gle"], 6),
                "D_gle_interp": round(v["interpolate"]["D_gle"], 6),
                "D_gle_refit": round(v["refit"]["D_gle"], 6),
                "nacf_band_per_T": round(p["nacf_band_fraction"], 3),
                "nacf_band_cond": round(s["nacf_band_fraction"], 3),
            }
        )
    if not rows:
        raise ValueError("loto: no LOTO evaluation summaries given")
    return pl.DataFrame(rows)


def loto_metrics(loto: Sequence[Mapping], per_temperature: Mapping[float, Mapping]) -> dict:
    """``{"temperatures": {T: D values, relative errors vs D_md, NACF band shares}, "summary":
    {"mare_per_T", "mare_cond", "mare_cond_refit"}}`` (MARE over the left-out temperatures)."""
    rows = {}
    for s in loto:
        p, v = per_temperature[s["temperature"]], s["variants"]
        d = {
            "D_md": s["D_md"],
            "D_mlgle_per_T": p["D_mlgle"],
            "D_mlgle_cond": v["interpolate"]["D_mlgle"],
            "D_mlgle_cond_refit": v["refit"]["D_mlgle"],
        }
        rows[repr(float(s["temperature"]))] = {
            **d,
            **{f"rel_err_{k[8:]}": d[k] / s["D_md"] - 1 for k in d if k != "D_md"},
            "nacf_band_per_T": p["nacf_band_fraction"],
            "nacf_band_cond": s["nacf_band_fraction"],
        }
    d_md = [r["D_md"] for r in rows.values()]
    summary = {
        f"mare_{name}": mare([r[f"D_mlgle_{name}"] for r in rows.values()], d_md)
        for name in ("per_T", "cond", "cond_refit")
    }
    return {"temperatures": rows, "summary": summary}


def markdown_table(table: pl.DataFrame) -> str:
    """A polars DataFrame as a Markdown table (Table 1, the LOTO table)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join([header, rule, *rows]) + "\n"
