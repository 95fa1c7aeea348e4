"""Tests of mlgle.figures.loto: the D(T) figure of the leave-one-temperature-out study."""

from __future__ import annotations

import numpy as np
from matplotlib.container import ErrorbarContainer

from mlgle.figures.loto import draw_d_vs_t


def test_d_vs_t_error_bars_are_the_cis_of_both_families(evaluation_summary, loto_summary):
    per_t = {t: evaluation_summary(t, d, 1.1 * d, 0.9) for t, d in ((1.5, 0.005), (1.0, 0.003))}
    per_t[1.25] = evaluation_summary(1.25, 0.004, 0.0042, 0.9)
    ax = draw_d_vs_t([loto_summary], per_t).axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    ordered = [per_t[t] for t in (1.0, 1.25, 1.5)]
    expected = [
        ([r[key] for r in ordered], [r[f"{key}_ci95"] for r in ordered])
        for key in ("D_md", "D_mlgle")
    ] + [([0.0046], [[0.0044, 0.0048]]), ([0.0038], [[0.0036, 0.004]])]
    assert len(bars) == 4 and "interpolated" in bars[2].get_label()
    for bar, (values, cis) in zip(bars, expected, strict=True):
        line, _, (segments,) = bar.lines
        np.testing.assert_allclose(line.get_ydata(), values)
        np.testing.assert_allclose([sorted(g[:, 1]) for g in segments.get_segments()], cis)
    assert np.all(np.diff(bars[0].lines[0].get_xdata()) > 0)  # temperatures in order
