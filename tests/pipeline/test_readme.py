"""make readme-results (mlgle.pipeline.readme): the README block is rebuilt from reports/, never
typed by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlgle.pipeline.readme import BUDGET_FIGURE, END, FIGURES, LOTO_FIGURE, START, update_readme


def make_reports(root):
    (root / "reports" / "figures").mkdir(parents=True)
    (root / "reports" / "metrics.json").write_text(
        json.dumps({"summary": {"mare_short": 0.2, "mare_gle": 0.123, "mare_linear": 0.09,
                                "mare_mlgle": 0.0456, "nacf_band_fraction_mean": 0.81},
                    "temperatures": {"1.0": {"msd_over_6Dt_at_half_train": 1.0871,
                                             "slope_at_half_train": 0.8861,
                                             "nacf_band_fraction_per_mode": [0.5, 0.987]}}})
    )
    (root / "reports" / "table1.md").write_text("| T | D_md |\n|---|---|\n| 1.0 | 0.003 |\n")
    (root / "reports" / "repro_wallclock.json").write_text(json.dumps({"seconds": 1500}))
    for name in FIGURES:
        (root / "reports" / "figures" / name).write_bytes(b"png")


def test_block_is_replaced_from_reports(tmp_path):
    make_reports(tmp_path)
    (tmp_path / "README.md").write_text(f"# x\n\n{START}\nold\n{END}\n\nafter\n")
    update_readme(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "old" not in text and text.endswith("after\n") and text.startswith("# x\n")
    assert "| 1.0 | 0.003 |" in text
    assert "GLE fit 12.3 %, linear AR 9.0 %, ML-GLE 4.6 %" in text and "81 % of lags" in text
    assert "D_short 20.0 %" in text
    assert "| 1 | 1.087 | 0.886 | 0.50 0.99 |" in text  # the regime evidence, per-mode shares
    assert "What the network buys" not in text and "MD budget" not in text
    assert "Wall-clock: 25.0 min (`make repro`)" in text
    assert all((tmp_path / "docs" / "figures" / n).read_bytes() == b"png" for n in FIGURES)


def test_baseline_and_budget_tables_join_the_block_when_their_stages_ran(tmp_path):
    make_reports(tmp_path)
    (tmp_path / "reports" / "baselines.md").write_text("| T | mode | share |\n|---|---|---|\n")
    (tmp_path / "reports" / "budget").mkdir()
    (tmp_path / "reports" / "budget" / "budget.md").write_text("| T_train | err |\n|--|--|\n")
    (tmp_path / "reports" / "budget" / BUDGET_FIGURE).write_bytes(b"budget png")
    (tmp_path / "README.md").write_text(f"{START}\n{END}\n")
    update_readme(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "What the network buys" in text and "| T | mode | share |" in text
    assert "MD budget" in text and "| T_train | err |" in text
    assert f"](docs/figures/{BUDGET_FIGURE})" in text
    assert (tmp_path / "docs" / "figures" / BUDGET_FIGURE).read_bytes() == b"budget png"


def test_loto_table_joins_the_block_when_the_study_ran(tmp_path):
    make_reports(tmp_path)
    (tmp_path / "README.md").write_text(f"{START}\n{END}\n")
    update_readme(tmp_path)
    assert "Leave one temperature out" not in (tmp_path / "README.md").read_text()

    loto = tmp_path / "reports" / "loto"
    loto.mkdir()
    columns = {
        "T": 1.25, "trained_on": "1, 1.5", "D_md": 0.004, "D_md_ci95": "[0.0036, 0.0044]",
        "D_mlgle_per_T": 0.00376, "D_mlgle_per_T_ci95": "[0.0034, 0.0041]", "err_per_T_pct": -6.0,
        "D_mlgle_cond": 0.00404, "D_mlgle_cond_ci95": "[0.0036, 0.0044]", "err_cond_pct": 1.0,
        "D_mlgle_cond_refit": 0.00398, "D_mlgle_cond_refit_ci95": "[0.0036, 0.0044]",
        "err_cond_refit_pct": -0.5, "nacf_band_per_T": 0.884, "nacf_band_cond": 0.861,
    }
    header = ",".join(columns)
    row = ",".join(f'"{v}"' if isinstance(v, str) else str(v) for v in columns.values())
    (loto / "loto.csv").write_text(f"{header}\n{row}\n")
    (loto / LOTO_FIGURE).write_bytes(b"d(T)")
    update_readme(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "| 1.25 (1, 1.5) | 0.00400 [0.0036, 0.0044] |" in text
    assert "0.00376 [0.0034, 0.0041], -6.0 %" in text and "0.00404 [0.0036, 0.0044], +1.0 %" in text
    assert "| 0.88 / 0.86 |" in text
    assert (tmp_path / "docs" / "figures" / LOTO_FIGURE).read_bytes() == b"d(T)"


def test_missing_markers_is_an_error(tmp_path):
    make_reports(tmp_path)
    (tmp_path / "README.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        update_readme(tmp_path)


def test_make_target_runs_the_module(tmp_path):
    """``python -m mlgle.pipeline.readme ROOT`` (the readme-results target) updates ROOT."""
    make_reports(tmp_path)
    (tmp_path / "README.md").write_text(f"{START}\nold\n{END}\n")
    subprocess.run(
        [sys.executable, "-m", "mlgle.pipeline.readme", str(tmp_path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    text = (tmp_path / "README.md").read_text()
    assert "old" not in text and "| 1.0 | 0.003 |" in text


def test_the_wall_clock_per_part_of_the_study_joins_the_block(tmp_path):
    """make repro's mlgle.pipeline.wallclock summary: the total and each part's stage time."""
    make_reports(tmp_path)
    timing = {"seconds": 4230, "how": "clean clone", "parts": {"default study": 2958.0,
                                                               "sweeps": 300.0}}
    (tmp_path / "reports" / "repro_wallclock.json").write_text(json.dumps(timing))
    (tmp_path / "README.md").write_text(f"{START}\n{END}\n")
    update_readme(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "Wall-clock: 70.5 min (clean clone). The stages' own time: default study 49.3 min, " \
        "sweeps 5.0 min" in text
