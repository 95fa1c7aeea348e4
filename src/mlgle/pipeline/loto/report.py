"""`mlgle loto report`: the LOTO table, metrics (loto.json) and the D(T) figure."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl

from mlgle.analysis.tables import loto_metrics, loto_table, markdown_table
from mlgle.config import ConditionedConfig, Params
from mlgle.figures.common import save
from mlgle.figures.loto import draw_d_vs_t
from mlgle.pipeline.loto import left_out_temperatures
from mlgle.store import StoreError, temperature_tag, write_json, write_text


def report(
    params: Params,
    settings: ConditionedConfig,
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
