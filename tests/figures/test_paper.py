"""Tests for mlgle.figures.paper: every figure is written as a real PNG, bad input is a
clear ValueError, and what is drawn is the data (CIs, best epochs, band shares, mode selection)."""

from __future__ import annotations

import dataclasses

import matplotlib.image
import numpy as np
import polars as pl
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

from mlgle.analysis.evaluation import EvaluationData
from mlgle.figures import paper as pf

LAGS = 41  # NACF lags 0..40: 40 lags >= 1 enter the band share
OUTSIDE = {1: 10, 2: 0, 3: 4}  # mode -> lags where the generated NACF leaves the band


def make_data(temperature: float, seed: int) -> EvaluationData:
    """3 modes; mode 3's increments have std 3, the others std 1; NACF_gen = NACF_md except at
    OUTSIDE[p] lags where it is shifted by twice the band."""
    rng = np.random.default_rng(seed)
    modes = np.array([1, 2, 3])
    t = np.arange(LAGS)
    nacf_md = np.exp(-t[None, :] / (8.0 / modes[:, None] ** 2))
    band = np.full((3, LAGS), 0.02)
    nacf_gen = nacf_md.copy()
    for j, p in enumerate(modes):
        nacf_gen[j, 1 : 1 + OUTSIDE[p]] += 2 * band[j, 0]
    lags = np.unique(np.geomspace(1, 199, 12).astype(int))
    gen_lags = lags[lags < 150]
    scale = np.array([[1.0], [1.0], [3.0]])
    return EvaluationData(
        temperature=temperature,
        dt=0.5,
        modes=modes,
        nacf_md=nacf_md,
        nacf_gen=nacf_gen,
        band=band,
        msd_lags=lags,
        msd_md=0.3 * lags**0.8,
        msd_gle=0.3 * lags**0.8 * 1.1,
        msd_mlgle=0.3 * gen_lags**0.8 * 0.9,
        msd_mlgle_lags=gen_lags,
        disp_md=rng.normal(size=(40, 3)),
        disp_gle=rng.normal(size=(40, 3)),
        disp_mlgle=rng.normal(size=(60, 3)),
        z_md=rng.normal(size=(3, 600)),
        z_gen=rng.normal(size=(3, 500)),
        dz_md=scale * rng.normal(size=(3, 600)),
        dz_gen=scale * rng.normal(size=(3, 500)),
        corr_md=np.eye(3) + 0.1 * (1 - np.eye(3)),
        dx_md=0.2 * rng.normal(size=700),
        dx_mlgle=0.25 * rng.normal(size=800),
    )


def make_curves(seed: int, best: dict[int, int]) -> pl.DataFrame:
    """20 epochs for modes 1..3; val_nll has its strict minimum at epoch best[p]."""
    rng = np.random.default_rng(seed)
    epochs = np.arange(20)
    frames = [
        pl.DataFrame(
            {
                "epoch": epochs,
                "mode": p,
                "train_nll": -np.log1p(epochs) - p + 0.01 * rng.normal(size=20),
                "val_nll": (epochs - best[p]) ** 2 / 50.0 - p,
            }
        )
        for p in (1, 2, 3)
    ]
    return pl.concat(frames)


BEST = {1: 7, 2: 3, 3: 12}


@pytest.fixture(scope="module")
def data() -> list[EvaluationData]:
    return [make_data(1.0, 0), make_data(1.5, 1)]


@pytest.fixture(scope="module")
def curves() -> dict[float, pl.DataFrame]:
    return {1.0: make_curves(0, BEST), 1.5: make_curves(1, BEST)}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """Deliberately unsorted in temperature."""
    return [
        {"temperature": 1.5, "D_md": 0.05, "D_md_ci95": [0.045, 0.056], "D_gle": 0.048,
         "D_mlgle": 0.052, "D_mlgle_ci95": [0.049, 0.055]},
        {"temperature": 1.0, "D_md": 0.03, "D_md_ci95": [0.027, 0.034], "D_gle": 0.031,
         "D_mlgle": 0.029, "D_mlgle_ci95": [0.026, 0.033]},
    ]  # fmt: skip


def calls(data, curves, rows) -> dict:
    return {
        "fig05": lambda p: pf.fig05_mode_correlation(data, p),
        "fig07": lambda p: pf.fig07_nll_curves(curves, p),
        "fig09": lambda p: pf.fig09_nacf(data, p),
        "fig12": lambda p: pf.fig12_gle_msd(data, p, d_md={1.0: 0.03, 1.5: 0.05}),
        "fig13": lambda p: pf.fig13_mlgle_msd(data, p),
        "fig14": lambda p: pf.fig14_diffusion(rows, p),
        "fig15": lambda p: pf.fig15_increment_pdfs(data, p),
        "fig16": lambda p: pf.fig16_com_increment_pdfs(data, p),
        "fig18": lambda p: pf.fig18_probability_plots(data, p),
    }


# ---------------------------------------------------------------------------------------------
# Every figure: a valid, non-blank PNG at the path given


@pytest.mark.parametrize("name", ["fig05", "fig07", "fig09", "fig12", "fig13", "fig14", "fig15",
                                  "fig16", "fig18"])  # fmt: skip
def test_writes_png(tmp_path, data, curves, rows, name):
    path = tmp_path / "sub" / f"{name}.png"
    assert calls(data, curves, rows)[name](path) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200
    assert image[..., :3].std() > 0.05  # not a single colour
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "draw", [pf.draw_fig05, pf.draw_fig09, pf.draw_fig12, pf.draw_fig13, pf.draw_fig15,
             pf.draw_fig16, pf.draw_fig18],
)  # fmt: skip
def test_empty_data_is_rejected(draw):
    with pytest.raises(ValueError, match="data: expected a non-empty sequence"):
        draw([])


def test_single_entry_not_in_a_sequence_is_rejected(data):
    with pytest.raises(ValueError, match="sequence of EvaluationData"):
        pf.draw_fig05(data[0])


@pytest.mark.parametrize(
    ("draw", "field", "value"),
    [
        (pf.draw_fig09, "nacf_gen", np.zeros((3, LAGS - 1))),
        (pf.draw_fig09, "band", np.zeros((2, LAGS))),
        (pf.draw_fig05, "corr_md", np.eye(2)),
        (pf.draw_fig12, "msd_gle", np.ones(3)),
        (pf.draw_fig13, "disp_mlgle", np.ones((5, 2))),
        (pf.draw_fig18, "z_gen", np.ones((3, 0))),
    ],
)
def test_misshaped_array_names_the_field(data, draw, field, value):
    bad = dataclasses.replace(data[1], **{field: value})
    with pytest.raises(ValueError, match=rf"data\[1\] \(T = 1.5\)\.{field}: expected"):
        draw([data[0], bad])


def test_missing_column_is_rejected(curves):
    bad = {**curves, 1.5: curves[1.5].drop("val_nll")}
    with pytest.raises(ValueError, match=r"curves\[1.5\].*missing \['val_nll'\]"):
        pf.draw_fig07(bad)


def test_empty_curves_are_rejected(curves):
    with pytest.raises(ValueError, match="non-empty mapping"):
        pf.draw_fig07({})
    with pytest.raises(ValueError, match="0 rows"):
        pf.draw_fig07({1.0: curves[1.0].clear()})


@pytest.mark.parametrize("draw", [pf.draw_fig09, pf.draw_fig15, pf.draw_fig18])
def test_modes_not_evaluated_are_rejected(data, draw):
    with pytest.raises(ValueError, match=r"none of \(7, 8\) evaluated at T = 1"):
        draw(data, modes=(7, 8))
    with pytest.raises(ValueError, match="modes: expected a non-empty sequence"):
        draw(data, modes=())


def test_fig14_rejects_missing_key_and_ci_not_around_value(rows):
    with pytest.raises(ValueError, match=r"rows\[0\]: missing keys \['D_gle'\]"):
        pf.draw_fig14([{k: v for k, v in rows[0].items() if k != "D_gle"}])
    with pytest.raises(ValueError, match=r"rows\[1\]\.D_mlgle_ci95: expected \[lo, hi\]"):
        pf.draw_fig14([rows[0], {**rows[1], "D_mlgle_ci95": [0.03, 0.04]}])
    with pytest.raises(ValueError, match="rows: expected a non-empty sequence"):
        pf.draw_fig14([])


def test_fig12_guide_needs_every_temperature(data):
    with pytest.raises(ValueError, match=r"d_md: no D_MD for T = 1\.5"):
        pf.draw_fig12(data, d_md={1.0: 0.03})


# ---------------------------------------------------------------------------------------------
# What is drawn is the data


def test_fig05_shows_the_matrix_on_a_shared_scale(data):
    fig = pf.draw_fig05(data)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == len(data)
    for image, d in zip(images, data, strict=True):
        np.testing.assert_array_equal(image.get_array(), d.corr_md)
        assert image.get_clim() == (-1.0, 1.0)
        labels = [t.get_text() for t in image.axes.get_xticklabels()]
        assert labels == [str(p) for p in d.modes]


def test_fig07_dots_sit_on_the_validation_minimum(curves):
    fig = pf.draw_fig07(curves, modes=(1, 2, 9))  # mode 9 absent: shown are 1 and 2
    for ax in fig.axes:
        dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
        curves_drawn = [line for line in ax.get_lines() if line.get_marker() != "o"]
        assert len(curves_drawn) == 4  # train + validation for modes 1 and 2
        best = sorted(line.get_xdata()[0] for line in dots)
        assert best == sorted([BEST[1], BEST[2]])
        for line in dots:
            epoch = line.get_xdata()[0]
            mode = 1 if epoch == BEST[1] else 2
            assert line.get_ydata()[0] == pytest.approx(-mode)  # val_nll at its minimum


def test_fig09_band_share_and_modes_shown(data):
    fig = pf.draw_fig09(data, modes=(1, 3, 5))  # 5 not evaluated
    nacf_axes = fig.axes[0::3]
    for ax in nacf_axes:
        assert len(ax.get_lines()) == 4  # MD and generated for modes 1, 3
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2
        np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), np.arange(1, LAGS) * 0.5)
    legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    for p in (1, 3):
        share = 100 * (LAGS - 1 - OUTSIDE[p]) / (LAGS - 1)  # 75 % and 90 %
        assert f"p = {p}: {share:.0f} % in band" in legend


@pytest.mark.parametrize(("draw", "model"), [(pf.draw_fig12, "gle"), (pf.draw_fig13, "mlgle")])
def test_msd_figures_plot_the_curves_and_normalised_pdfs(data, draw, model):
    fig = draw(data)
    top, bottom = fig.axes[0], fig.axes[len(data)]  # row-major: first column, both rows
    d = data[0]
    lags = d.msd_mlgle_lags if model == "mlgle" else d.msd_lags
    md, gen = top.get_lines()
    np.testing.assert_allclose(md.get_xydata(), np.c_[d.msd_lags * d.dt, d.msd_md])
    np.testing.assert_allclose(gen.get_xydata(), np.c_[lags * d.dt, getattr(d, f"msd_{model}")])
    steps = [p for p in bottom.patches if isinstance(p, StepPatch)]
    assert len(steps) == 2
    for step in steps:  # edges cover every sample: each PDF integrates to 1
        values, edges, _ = step.get_data()
        assert np.sum(values * np.diff(edges)) == pytest.approx(1.0)


def test_fig12_guide_is_six_d_t(data):
    fig = pf.draw_fig12(data, d_md={1.0: 0.03, 1.5: 0.05})
    guide = fig.axes[1].get_lines()[2]  # T = 1.5
    t, y = guide.get_xdata(), guide.get_ydata()
    np.testing.assert_allclose(y, 6 * 0.05 * t)
    assert y.min() >= data[1].msd_md.min()


def test_fig14_error_bars_are_the_cis(rows):
    ax = pf.draw_fig14(rows).axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [b.get_label() for b in bars] == ["MD (long run)", "ML-GLE"]
    by_t = sorted(rows, key=lambda r: r["temperature"])
    for bar, key in zip(bars, ("D_md", "D_mlgle"), strict=True):
        line, _, (segments,) = bar.lines
        assert isinstance(segments, LineCollection)
        np.testing.assert_allclose(line.get_ydata(), [r[key] for r in by_t])
        drawn = [sorted(seg[:, 1]) for seg in segments.get_segments()]
        np.testing.assert_allclose(drawn, [r[f"{key}_ci95"] for r in by_t])
    gle = next(line for line in ax.get_lines() if line.get_label().startswith("GLE"))
    np.testing.assert_allclose(gle.get_xydata(), [[r["temperature"], r["D_gle"]] for r in by_t])


def test_fig14_draws_the_gle_bootstrap_ci_when_every_row_has_one(rows):
    with_ci = [{**r, "D_gle_ci95": [r["D_gle"] * 0.9, r["D_gle"] * 1.2]} for r in rows]
    ax = pf.draw_fig14(with_ci).axes[0]
    bars = {c.get_label(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}
    assert list(bars) == ["MD (long run)", "GLE fit, α²/2", "ML-GLE"]
    by_t = sorted(with_ci, key=lambda r: r["temperature"])
    line, _, (segments,) = bars["GLE fit, α²/2"].lines
    np.testing.assert_allclose(line.get_xydata(), [[r["temperature"], r["D_gle"]] for r in by_t])
    drawn = [sorted(seg[:, 1]) for seg in segments.get_segments()]
    np.testing.assert_allclose(drawn, [r["D_gle_ci95"] for r in by_t])
    partial = [with_ci[0], rows[1]]  # one row without a CI: no GLE error bars at all
    ax = pf.draw_fig14(partial).axes[0]
    assert [c.get_label() for c in ax.containers] == ["MD (long run)", "ML-GLE"]


def test_fig15_pools_only_the_requested_modes(data):
    """Modes 1, 2 have unit-variance increments and mode 3 std 3: the Gaussian fitted over modes
    (1, 2) has the pooled std of those rows, over all modes a much wider one."""
    for modes, rows in (((1, 2), [0, 1]), (None, [0, 1, 2])):
        fig = pf.draw_fig15(data, modes=modes)
        for ax, samples in ((fig.axes[0], data[0].dz_md), (fig.axes[1], data[0].dz_gen)):
            pooled = samples[rows].ravel()
            (fit,) = ax.get_lines()
            x = fit.get_xdata()
            expected = np.exp(-0.5 * ((x - pooled.mean()) / pooled.std()) ** 2) / (
                np.sqrt(2 * np.pi) * pooled.std()
            )
            np.testing.assert_allclose(fit.get_ydata(), expected, rtol=1e-12)
            (step,) = [p for p in ax.patches if isinstance(p, StepPatch)]
            values, edges, _ = step.get_data()
            assert np.sum(values * np.diff(edges)) == pytest.approx(1.0)
            assert ax.get_yscale() == "log"


def test_fig18_plots_order_statistics_with_tails(data):
    fig = pf.draw_fig18(data, modes=(2, 3, 10))  # one column per evaluated requested mode
    assert len(fig.axes) == 2 * len(data)
    ax = fig.axes[0]  # T = 1.0, p = 2
    md_points, md_fit, gen_points, _ = ax.get_lines()
    ordered = md_points.get_ydata()
    z = np.sort(data[0].z_md[1])
    assert np.isin(ordered, z).all() and ordered[0] == z[0] and ordered[-1] == z[-1]
    np.testing.assert_array_equal(ordered[:25], z[:25])  # every tail point is kept
    assert np.all(np.diff(md_points.get_xdata()) > 0)
    assert gen_points.get_ydata()[-1] == data[0].z_gen[1].max()
    slope = np.diff(md_fit.get_ydata()) / np.diff(md_fit.get_xdata())
    assert slope[0] == pytest.approx(z.std(), rel=0.05)  # LS slope of a normal plot ≈ std


def test_draw_returns_a_figure_not_registered_with_pyplot(data):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    assert isinstance(pf.draw_fig05(data), Figure)
    assert plt.get_fignums() == before


def test_fig18_blank_panel_where_a_temperature_lacks_a_mode(data):
    other = dataclasses.replace(data[1], modes=np.array([1, 2, 4]))
    fig = pf.draw_fig18([data[0], other], modes=(3, 4))
    titles = [[ax.get_title() for ax in fig.axes[r * 2 : r * 2 + 2]] for r in range(2)]
    assert titles == [["T = 1, p = 3", ""], ["", "T = 1.5, p = 4"]]
    assert [ax.axison for ax in fig.axes] == [True, False, False, True]


def test_fig16_gaussians_are_fitted_to_the_com_increments(data):
    """The fitted curve in each panel is the Gaussian of that panel's ΔX samples."""
    fig = pf.draw_fig16(data)
    for ax, samples in ((fig.axes[0], data[0].dx_md), (fig.axes[1], data[0].dx_mlgle)):
        (fit,) = ax.get_lines()
        x = fit.get_xdata()
        expected = np.exp(-0.5 * ((x - samples.mean()) / samples.std()) ** 2) / (
            np.sqrt(2 * np.pi) * samples.std()
        )
        np.testing.assert_allclose(fit.get_ydata(), expected, rtol=1e-12)
