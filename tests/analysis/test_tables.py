"""Tests of mlgle.analysis.tables: the LOTO table and metrics, and the Markdown rendering."""

from __future__ import annotations

import polars as pl
import pytest

from mlgle.analysis.tables import loto_metrics, loto_table, markdown_table


def test_loto_table_errors_are_relative_to_md(evaluation_summary, loto_summary):
    per_t = {t: evaluation_summary(t, d, 1.1 * d, 0.9) for t, d in ((1.0, 0.003), (1.25, 0.004))}
    loto = loto_summary
    row = loto_table([loto], per_t).row(0, named=True)
    assert row["trained_on"] == "1, 1.5"
    assert row["err_per_T_pct"] == pytest.approx(10.0)
    assert row["err_cond_pct"] == pytest.approx(15.0)
    assert row["err_cond_refit_pct"] == pytest.approx(-5.0)
    assert (row["nacf_band_per_T"], row["nacf_band_cond"]) == (0.9, 0.8)
    with pytest.raises(ValueError, match=r"T = 1.25"):
        loto_table([loto], {1.0: per_t[1.0]})
    metrics = loto_metrics([loto], per_t)
    assert metrics["temperatures"]["1.25"]["rel_err_cond_refit"] == pytest.approx(-0.05)
    assert metrics["summary"] == pytest.approx(
        {"mare_per_T": 0.1, "mare_cond": 0.15, "mare_cond_refit": 0.05}
    )


def test_markdown_table_has_a_header_a_rule_and_one_line_per_row():
    table = pl.DataFrame({"T": [1.0, 1.5], "D_md": [0.003, 0.005]})
    assert markdown_table(table) == "| T | D_md |\n|---|---|\n| 1.0 | 0.003 |\n| 1.5 | 0.005 |\n"
