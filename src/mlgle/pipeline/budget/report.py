"""`mlgle budget report`: the budget table (CSV, Markdown), metrics and figure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlgle.config import Params
from mlgle.store import read_json, temperature_tag, write_json, write_text

if TYPE_CHECKING:
    import polars as pl


def report(
    params: Params, cheap_csv: Path, mlgle_dir: Path, evaluations_dir: Path, out: Path,
    tracking: bool = True,
) -> Path:  # fmt: skip
    """Per (T, T_train): mean and spread of the D_short and D_GLE errors over segments, and the
    ML-GLE error where one was trained (``mlgle_dir/T<T>/<t_train>/evaluation``, plus the default
    study's evaluation at budget.temperature with train.t_train). Writes ``out/budget.csv``,
    ``out/budget.md``, ``out/budget.json`` and ``out/fig_budget.png``."""
    import polars as pl

    from mlgle.analysis.tables import markdown_table
    from mlgle.figures.budget import draw_budget
    from mlgle.figures.common import save

    cheap = pl.read_csv(cheap_csv)
    summary = (
        cheap.group_by(["T", "t_train", "budget_pct"], maintain_order=True)
        .agg(
            pl.len().alias("segments"),
            *(
                getattr(pl.col(f"err_{n}"), stat)().alias(f"{n}_{stat}")
                for n in ("short", "gle")
                for stat in ("mean", "std")
            ),
        )
        .sort(["T", "t_train"])
    )
    t, tag = params.budget.temperature, temperature_tag(params.budget.temperature)
    sources = {
        n: Path(mlgle_dir) / tag / str(n) / "evaluation" for n in params.budget.mlgle_t_trains
    }
    sources[params.train.t_train] = Path(evaluations_dir) / tag
    frames = cheap.filter(pl.col("T") == t).select(
        (pl.col("t_train") * 100.0 / pl.col("budget_pct")).round().first()
    ).item()
    points = []
    for n, directory in sorted(sources.items()):
        s = read_json(directory / "summary.json", "mlgle budget mlgle / mlgle evaluate")
        lo, hi = s["D_mlgle_ci95"]
        points.append(
            {
                "T": t,
                "t_train": n,
                "budget_pct": 100.0 * n / frames,
                "err_mlgle": s["D_mlgle"] / s["D_md"] - 1,
                "err_lo": lo / s["D_md"] - 1,
                "err_hi": hi / s["D_md"] - 1,
                "nacf_band_fraction": s["nacf_band_fraction"],
            }
        )
    mlgle = pl.DataFrame(points)
    table = summary.join(mlgle.drop("budget_pct"), on=["T", "t_train"], how="left")
    out = Path(out)
    write_text(out / "budget.csv", table.write_csv())
    write_text(out / "budget.md", markdown_table(_shown(table)) + _NOTE)
    write_json(out / "budget.json", {"rows": table.to_dicts()})
    save(draw_budget(summary, mlgle), out / "fig_budget.png")
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run("budget report", params, stage="budget-report") as run:
            for row in mlgle.to_dicts():
                child = run.nested(f"ML-GLE T_train={row['t_train']}", {"t_train": row["t_train"]})
                child.log_metrics({k: float(v) for k, v in row.items() if k != "T"})
                child.finish()
            for name in ("budget.csv", "budget.md", "fig_budget.png"):
                run.log_artifact(out / name)
    return out


def _shown(table: pl.DataFrame) -> pl.DataFrame:
    """The budget table as Markdown cells: errors in % (mean ± std over segments; ML-GLE with its
    95 % CI over chains), "—" where no ML-GLE was trained."""
    import polars as pl

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:+.1f}"

    rows = []
    for r in table.iter_rows(named=True):
        trained = r["err_mlgle"] is not None
        rows.append(
            {
                "T": f"{r['T']:g}",
                "T_train [frames]": str(r["t_train"]),
                "% of T_sim": f"{r['budget_pct']:.1f}",
                "segments": str(r["segments"]),
                "D_short err [%]": f"{pct(r['short_mean'])} ± {100 * r['short_std']:.1f}",
                "D_GLE err [%]": f"{pct(r['gle_mean'])} ± {100 * r['gle_std']:.1f}",
                "D_ML-GLE err [%] (95 % CI)": (
                    f"{pct(r['err_mlgle'])} [{pct(r['err_lo'])}, {pct(r['err_hi'])}]"
                    if trained else "—"
                ),
                "NACF band share": f"{r['nacf_band_fraction']:.2f}" if trained else "—",
            }
        )
    return pl.DataFrame(rows)


_NOTE = (
    "\nErrors are D / D_MD − 1 (D_MD: Eq. 35 of the full run over evaluate.d_window). D_short, "
    "D_GLE: mean ± std over independent segments of T_train frames; D_ML-GLE: one trained model "
    "at budget.temperature, with its 95 % CI over chains (budget.csv has every number).\n"
)
