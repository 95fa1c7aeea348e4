"""make readme-results: the README block is rebuilt from reports/, never typed by hand."""

from __future__ import annotations

import json

import pytest

from mlgle.report.readme import END, FIGURES, START, update_readme


def make_reports(root):
    (root / "reports" / "figures").mkdir(parents=True)
    (root / "reports" / "metrics.json").write_text(
        json.dumps({"summary": {"mare_gle": 0.123, "mare_mlgle": 0.0456,
                                "nacf_band_fraction_mean": 0.81}})
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
    assert "GLE fit 12.3 %, ML-GLE 4.6 %" in text and "81 % of lags" in text
    assert "Wall-clock: 25.0 min (`make repro`)" in text
    assert all((tmp_path / "docs" / "figures" / n).read_bytes() == b"png" for n in FIGURES)


def test_missing_markers_is_an_error(tmp_path):
    make_reports(tmp_path)
    (tmp_path / "README.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        update_readme(tmp_path)
