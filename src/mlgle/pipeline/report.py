"""`mlgle report`: Table 1, reports/metrics.json and the paper's figures over all T."""

from __future__ import annotations

from pathlib import Path

from mlgle.config import Params
from mlgle.store import (
    read_json,
    temperature_tag,
    write_json,
    write_text,
)


def report(
    params: Params,
    evaluations_dir: Path,
    models_dir: Path,
    md_reports_dir: Path,
    out: Path,
    tracking: bool = True,
    linear_dir: Path | None = None,
) -> dict:
    """Table 1, reports/metrics.json and the paper's figures over md.temperatures; with
    ``linear_dir`` (``mlgle linear-ar`` outputs, T<T>/ each) the linear AR baseline joins Table 1,
    the metrics and Fig. 14, and ``baselines.csv|md`` compares it with ML-GLE per mode."""
    import json

    import polars as pl

    from mlgle.analysis.evaluation import EvaluationData
    from mlgle.analysis.md import load_nacf_panel
    from mlgle.analysis.tables import baselines_table, markdown_table, metrics, table1
    from mlgle.figures import paper as pf
    from mlgle.figures.md import nacf_fits

    tags = [temperature_tag(t) for t in params.md.temperatures]
    evaluations = [evaluations_dir / tag for tag in tags]
    models = [models_dir / tag for tag in tags]
    summaries = [read_json(e / "summary.json", "mlgle evaluate") for e in evaluations]
    linear = []
    if linear_dir is not None:
        linear = [read_json(linear_dir / tag / "summary.json", "mlgle linear-ar") for tag in tags]
        for s, lin in zip(summaries, linear, strict=True):
            s |= {"D_linear": lin["D_linear"], "D_linear_ci95": lin["D_linear_ci95"]}
    data = [EvaluationData.load(e / "evaluation.npz") for e in evaluations]
    result = metrics(summaries)
    figures_dir = out / "figures"
    write_json(out / "metrics.json", result)
    table = table1(summaries)
    write_text(out / "table1.csv", table.write_csv())
    write_text(out / "table1.md", markdown_table(table))
    if linear:
        baselines = baselines_table(summaries, linear)
        write_text(out / "baselines.csv", baselines.write_csv())
        write_text(out / "baselines.md", markdown_table(baselines))
    curves = {
        json.loads((m / "summary.json").read_text())["temperature"]: pl.read_csv(m / "nll.csv")
        for m in models
    }
    panels = [load_nacf_panel(md_reports_dir / tag) for tag in tags]
    nacf_fits(panels, figures_dir / "fig06_mode_acf_fits.png")
    pf.fig05_mode_correlation(data, figures_dir / "fig05_mode_correlation.png")
    pf.fig07_nll_curves(curves, figures_dir / "fig07_nll_curves.png")
    pf.fig09_nacf(data, figures_dir / "fig09_nacf.png", modes=params.evaluate.nacf_modes)
    d_md = {s["temperature"]: s["D_md"] for s in summaries}
    pf.fig12_gle_msd(data, figures_dir / "fig12_gle_msd.png", d_md=d_md)
    pf.fig13_mlgle_msd(data, figures_dir / "fig13_mlgle_msd.png", d_md=d_md)
    pf.fig14_diffusion(summaries, figures_dir / "fig14_diffusion.png")
    pf.fig15_increment_pdfs(data, figures_dir / "fig15_increment_pdfs.png")
    pf.fig16_com_increment_pdfs(data, figures_dir / "fig16_com_increment_pdfs.png")
    pf.fig18_probability_plots(
        data, figures_dir / "fig18_probability_plots.png", modes=params.evaluate.nacf_modes
    )
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run("report", params, stage="report") as run:
            run.log_metrics(result["summary"])
            for path in sorted(figures_dir.glob("*.png")):
                run.log_artifact(path, "figures")
            for name in ("metrics.json", "table1.csv", "table1.md"):
                run.log_artifact(out / name)
    return result
