"""The baselines and the budget study on a tiny Rouse store, through the command line: the linear
AR stage, Table 1 and metrics.json with every estimate beside D_MD, and the budget stages."""

from __future__ import annotations

import json

import polars as pl
import pytest

from mlgle.cli import main
from mlgle.store import temperature_tag

FRAMES = 1200
TINY = {
    "md": {"temperatures": [1.0]},
    "budget": {"t_trains": [100, 200, 400], "segments": 3, "mlgle_t_trains": [100],
               "temperature": 1.0},
    "evaluate": {"d_window": [100, 300], "nacf_max_lag": 50, "nacf_modes": [1, 2],
                 "short_window": [0.25, 0.5]},
}  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory, rouse_stores, tiny_params):
    root = tmp_path_factory.mktemp("baselines")
    modes_dir = rouse_stores([1.0], chains=12, beads=8, frames=FRAMES, k=4)
    params = tiny_params(root, **TINY)
    tag = temperature_tag(1.0)
    store = modes_dir / tag
    p = ["--params", str(params)]
    steps = [
        ["fit-gle", *p, "--modes", str(store), "--out", str(root / "gle.json")],
        ["linear-ar", *p, "--modes", str(store), "--gle", str(root / "gle.json"),
         "--out", str(root / "linear" / tag), "--no-tracking"],
        ["budget", "cheap", *p, "--modes-dir", str(modes_dir), "--out", str(root / "cheap.csv"),
         "--no-tracking"],
        ["budget", "mlgle", *p, "--modes", str(store), "--t-train", "100",
         "--out", str(root / "budget" / tag / "100"), "--no-tracking"],
        ["budget", "mlgle", *p, "--modes", str(store), "--t-train", "200",
         "--out", str(root / "default"), "--no-tracking"],
    ]  # fmt: skip
    for argv in steps:
        assert main(argv) == 0, argv
    (root / "evaluations").mkdir()
    (root / "evaluations" / tag).symlink_to(root / "default" / "evaluation")
    (root / "models").mkdir()
    (root / "models" / tag).symlink_to(root / "default" / "model")
    (root / "md").mkdir()
    assert main(["analyze-md", *p, "--modes", str(store), "--out", str(root / "md" / tag)]) == 0
    assert main([
        "report", *p, "--evaluations", str(root / "evaluations"), "--models", str(root / "models"),
        "--md-reports", str(root / "md"), "--linear", str(root / "linear"),
        "--out", str(root / "reports"), "--no-tracking",
    ]) == 0  # fmt: skip
    assert main([
        "budget", "report", *p, "--cheap", str(root / "cheap.csv"),
        "--mlgle-dir", str(root / "budget"), "--evaluations", str(root / "evaluations"),
        "--out", str(root / "budget_report"), "--no-tracking",
    ]) == 0  # fmt: skip
    return root


def test_table1_and_metrics_carry_every_estimate_beside_d_md(study):
    table = pl.read_csv(study / "reports" / "table1.csv")
    for name in ("short", "gle", "linear", "mlgle"):
        assert f"err_{name}_pct" in table.columns
    row = table.row(0, named=True)
    expected = 100 * (row["D_linear"] / row["D_md"] - 1)
    assert row["err_linear_pct"] == pytest.approx(expected, abs=0.1)
    metrics = json.loads((study / "reports" / "metrics.json").read_text())
    assert {"mare_short", "mare_gle", "mare_linear", "mare_mlgle"} <= set(metrics["summary"])
    assert "D_md_ci95" in metrics["temperatures"]["1.0"]
    baselines = pl.read_csv(study / "reports" / "baselines.csv")
    assert baselines["mode"].to_list() == [1, 2, 3, 4]
    assert baselines["band_linear"].is_between(0, 1).all()


def test_linear_summary_is_an_evaluation_of_the_linear_model(study):
    summary = json.loads((study / "linear" / "T1.0" / "summary.json").read_text())
    model = json.loads((study / "linear" / "T1.0" / "model.json").read_text())
    assert summary["D_linear"] == summary["D_mlgle"]
    assert len(summary["nacf_band_fraction_per_mode"]) == 4
    assert len(model["coefficients"]) == 4 and len(model["coefficients"][0]) == 8  # k x m


def test_budget_cheap_has_every_segment_and_the_report_every_budget(study):
    cheap = pl.read_csv(study / "cheap.csv")
    counts = dict(cheap.group_by("t_train").len().iter_rows())
    assert counts == {100: 3, 200: 3, 400: 3}  # min(segments, frames // t_train)
    assert (cheap["err_short"] == cheap["D_short"] / cheap["D_md"] - 1).all()
    budget = pl.read_csv(study / "budget_report" / "budget.csv")
    assert budget["t_train"].to_list() == [100, 200, 400]
    with_mlgle = budget.filter(pl.col("err_mlgle").is_not_null())["t_train"].to_list()
    assert with_mlgle == [100, 200]  # the trained point and the default study's
    assert (study / "budget_report" / "fig_budget.png").stat().st_size > 10_000


def test_budget_markdown_shows_the_csv_errors_in_percent(study):
    budget = pl.read_csv(study / "budget_report" / "budget.csv")
    lines = (study / "budget_report" / "budget.md").read_text().splitlines()
    rows = [line.strip("| ").split(" | ") for line in lines[2 : 2 + budget.height]]
    for row, csv in zip(rows, budget.iter_rows(named=True), strict=True):
        assert row[1] == str(csv["t_train"])
        assert row[4] == f"{100 * csv['short_mean']:+.1f} ± {100 * csv['short_std']:.1f}"
        if csv["err_mlgle"] is None:
            assert row[6] == row[7] == "—"
        else:
            assert row[6].startswith(f"{100 * csv['err_mlgle']:+.1f} [")
