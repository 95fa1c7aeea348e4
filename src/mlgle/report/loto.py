"""The leave-one-temperature-out table, metrics and D(T) figure (``mlgle loto report``).

Reads the LOTO evaluation summaries of :mod:`mlgle.loto` at the left-out temperatures and the
per-temperature evaluation summaries (``mlgle evaluate``), and writes ``loto.csv``, ``loto.md``,
``loto.json`` and ``fig_d_vs_t.png``: D_MD, per-temperature ML-GLE and conditioned ML-GLE (both
GLE variants) with 95 % CIs (Eq. 35) and relative errors, and the NACF band shares (Eq. 34).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from mlgle.config import Params
from mlgle.loto import LotoSettings, left_out_temperatures
from mlgle.report.figures import save
from mlgle.stages import markdown_table
from mlgle.store import StoreError, temperature_tag, write_json, write_text

VARIANT_LABELS = {"interpolate": "interpolated", "refit": "refit"}


def _pct(value: float, reference: float) -> float:
    return round(100.0 * (value / reference - 1.0), 1)


def _ci(values: Sequence[float]) -> str:
    return f"[{values[0]:.4g}, {values[1]:.4g}]"


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
    mare = {
        f"mare_{name}": float(np.mean([abs(r[f"rel_err_{name}"]) for r in rows.values()]))
        for name in ("per_T", "cond", "cond_refit")
    }
    return {"temperatures": rows, "summary": mare}


def draw_d_vs_t(loto: Sequence[Mapping], per_temperature: Mapping[float, Mapping]):
    """D(T): MD and per-temperature ML-GLE at every temperature, conditioned ML-GLE (both GLE
    variants) at the left-out ones, all with 95 % CIs over chains (Eq. 35); reduced LJ units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = np.array(sorted(per_temperature))
    step = np.diff(temps).min() if temps.size > 1 else 0.25
    fig, ax = plt.subplots(figsize=(5.2, 3.6))

    def series(xs, values, cis, dx, label, **style):
        values, cis = np.asarray(values), np.asarray(cis)
        err = np.stack([values - cis[:, 0], cis[:, 1] - values])
        ax.errorbar(np.asarray(xs) + dx * step, values, yerr=err, capsize=3, label=label, **style)

    rows = [per_temperature[t] for t in temps]
    for key, dx, label, style in (
        ("D_md", -0.09, "MD (long run)", {"fmt": "o", "color": "0.15"}),
        ("D_mlgle", -0.03, "ML-GLE, per-temperature model", {"fmt": "s", "color": "tab:blue"}),
    ):
        series(temps, [r[key] for r in rows], [r[f"{key}_ci95"] for r in rows], dx, label, **style)
    held = sorted(loto, key=lambda s: s["temperature"])
    xs = [s["temperature"] for s in held]
    for name, dx, style in (
        ("interpolate", 0.03, {"fmt": "D", "color": "tab:red"}),
        ("refit", 0.09, {"fmt": "D", "color": "tab:red", "mfc": "white"}),
    ):
        variant = [s["variants"][name] for s in held]
        label = f"ML-GLE, conditioned, T unseen (α, β {VARIANT_LABELS[name]})"
        d = [v["D_mlgle"] for v in variant]
        series(xs, d, [v["D_mlgle_ci95"] for v in variant], dx, label, **style)
    ax.set_xlabel("T [ε/k_B]")
    ax.set_ylabel("D [σ²/τ]")
    ax.set_title("C.o.M diffusion, leave-one-temperature-out (reduced LJ units)", fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    return fig


def report(
    params: Params,
    settings: LotoSettings,
    loto_dir: Path,
    evaluations_dir: Path,
    out: Path,
    tracking: bool = True,
) -> pl.DataFrame:
    """The LOTO table (``out/loto.csv``, ``out/loto.md``), ``out/loto.json`` (metrics) and
    ``out/fig_d_vs_t.png`` from ``loto_dir/T<T>/summary.json`` (left-out temperatures) and
    ``evaluations_dir/T<T>/summary.json`` (every md.temperatures)."""

    def read(directory: Path, t: float, stage: str) -> dict:
        path = Path(directory) / temperature_tag(t) / "summary.json"
        if not path.is_file():
            raise StoreError(f"{path}: missing; `{stage}` at T = {t:g} writes it")
        return json.loads(path.read_text())

    loto = [
        read(loto_dir, t, "mlgle loto evaluate") for t in left_out_temperatures(params, settings)
    ]
    per_t = {float(t): read(evaluations_dir, t, "mlgle evaluate") for t in params.md.temperatures}
    table = loto_table(loto, per_t)
    metrics = {
        **loto_metrics(loto, per_t),
        "settings": dataclasses.asdict(settings),
        "units": "D in sigma^2/tau (reduced LJ units)",
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "loto.csv", table.write_csv())
    write_text(out / "loto.md", markdown_table(table) + _NOTE)
    write_json(out / "loto.json", metrics)
    save(draw_d_vs_t(loto, per_t), out / "fig_d_vs_t.png")
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run("loto report", params, stage="loto-report") as run:
            run.log_params({"conditioned": dataclasses.asdict(settings)})
            run.log_metrics(metrics["summary"])
            for name in ("loto.csv", "loto.md", "loto.json", "fig_d_vs_t.png"):
                run.log_artifact(out / name)
    return table


_NOTE = (
    "\nD in σ²/τ (reduced LJ units), 95 % CIs over chains (Eq. 35); errors relative to D_md. "
    "cond = one model conditioned on T, trained without T (α, β interpolated in 1/T; refit: "
    "Eq. 27 with the generated modes). nacf_band = share of lags inside the MD 99 % band.\n"
)
