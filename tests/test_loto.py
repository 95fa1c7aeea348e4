"""Tests of mlgle.loto and mlgle.report.loto: GLE parameters at an unseen temperature, the LOTO
stages and table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from mlgle import stats
from mlgle.config import ConfigError, load_params
from mlgle.gle import GLEModel
from mlgle.loto import (
    LotoSettings,
    add_loto_parser,
    check_left_out,
    interpolate_gle,
    left_out_temperatures,
    main_loto,
    refit_gle,
)
from mlgle.modes import normal_modes
from mlgle.report.loto import draw_d_vs_t, loto_metrics, loto_table
from mlgle.store import StoreError, TrajectoryMeta, write_json, write_modes
from mlgle.synthetic import rouse_chains

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _params(tmp_path: Path, **sections) -> Path:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, values in sections.items():
        base[name].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


# --- α, β at an unseen temperature ---------------------------------------------------------


def test_interpolated_gle_is_exact_at_nodes_and_arrhenius_between():
    fits = {
        1.0: GLEModel(0.08, 0.9, 1.0, (1, 32, 64), 12),
        1.5: GLEModel(0.11, 0.7, 1.0, (1, 32, 64), 12),
    }
    assert interpolate_gle(fits, 1.5) == fits[1.5]
    # D = α²/2 of Arrhenius form D = A exp(-E/T) through both fits is reproduced at T = 1.25.
    d1, d2 = fits[1.0].diffusion, fits[1.5].diffusion
    energy = np.log(d2 / d1) / (1 / 1.0 - 1 / 1.5)
    expected = d1 * np.exp(-energy * (1 / 1.25 - 1 / 1.0))
    assert interpolate_gle(fits, 1.25).diffusion == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="outside the training values"):
        interpolate_gle(fits, 1.6)
    with pytest.raises(ValueError, match="differ"):
        interpolate_gle({**fits, 2.0: GLEModel(0.1, 0.5, 1.0, (1, 16, 32), 12)}, 1.25)


def test_refit_recovers_alpha_beta_when_the_com_msd_is_arrhenius():
    # y_T(t) = A(T) (α0² t + β0² s(t)) with A(T) = exp(-2/T) and the same mode MSD s(t) at every
    # T: interpolating log y in 1/T is exact, so Eq. 27 at T* must return α² = A(T*) α0²,
    # β² = A(T*) β0² to rounding.
    lags = (1, 32, 64)
    s = np.array([0.05, 0.6, 0.9])
    alpha0, beta0 = 0.3, 1.2
    y = {t: np.exp(-2 / t) * (alpha0**2 * np.array(lags) + beta0**2 * s) for t in (1.0, 1.5)}
    fit = refit_gle(y, s, 1.25, lags, 1.0, 12)
    scale = np.exp(-2 / 1.25)
    assert fit.alpha**2 == pytest.approx(scale * alpha0**2, rel=1e-9)
    assert fit.beta**2 == pytest.approx(scale * beta0**2, rel=1e-9)
    with pytest.raises(ValueError, match="modes_msd"):
        refit_gle(y, s[:2], 1.25, lags, 1.0, 12)


# --- settings ------------------------------------------------------------------------------


def test_settings_defaults_interior_temperatures_and_errors(tmp_path):
    params = load_params(
        _params(
            tmp_path, md={"temperatures": [1.0, 1.25, 1.5, 1.75]}, conditioned={"leave_out": []}
        )
    )
    settings = LotoSettings.from_params(params)
    assert settings == LotoSettings()
    assert left_out_temperatures(params, settings) == (1.25, 1.5)
    assert check_left_out(params, 1.25) == (1.0, 1.5, 1.75)
    for bad in (1.0, 1.75, 1.3):
        with pytest.raises(ConfigError, match="interior"):
            check_left_out(params, bad)
    config = settings.train_config(params)
    assert (config.epochs, config.history) == (settings.epochs, params.train.history)

    class WithSection:  # what Params looks like once the lead adds the section
        def __init__(self, section: dict) -> None:
            self.source, self.conditioned = "p.yaml", section

    given = LotoSettings.from_params(WithSection({"conditioning": "concat", "leave_out": [1.5]}))
    assert (given.conditioning, given.leave_out, given.scales) == ("concat", (1.5,), "interpolate")
    with pytest.raises(ConfigError, match=r"p.yaml: unknown key 'conditioned.colour'"):
        LotoSettings.from_params(WithSection({"colour": 1}))
    with pytest.raises(ConfigError, match=r"conditioned.conditioning"):
        LotoSettings.from_params(WithSection({"conditioning": "gru"}))


# --- table ---------------------------------------------------------------------------------


def _summary(t, d_md, d_ml, band, d_gle=0.003):
    return {
        "temperature": t, "D_md": d_md, "D_md_ci95": [0.9 * d_md, 1.1 * d_md],
        "D_mlgle": d_ml, "D_mlgle_ci95": [0.95 * d_ml, 1.05 * d_ml], "D_gle": d_gle,
        "nacf_band_fraction": band,
    }


def test_table_errors_are_relative_to_md():
    per_t = {t: _summary(t, d, 1.1 * d, 0.9) for t, d in ((1.0, 0.003), (1.25, 0.004))}
    loto = {
        **_summary(1.25, 0.004, 0.0046, 0.8),
        "trained_on": [1.0, 1.5],
        "variants": {
            "interpolate": {"D_mlgle": 0.0046, "D_mlgle_ci95": [0.0044, 0.0048], "D_gle": 0.0041},
            "refit": {"D_mlgle": 0.0038, "D_mlgle_ci95": [0.0036, 0.004], "D_gle": 0.0035},
        },
    }
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


def test_d_vs_t_error_bars_are_the_cis_of_both_families():
    from matplotlib.container import ErrorbarContainer

    per_t = {t: _summary(t, d, 1.1 * d, 0.9) for t, d in ((1.5, 0.005), (1.0, 0.003))}
    per_t[1.25] = _summary(1.25, 0.004, 0.0042, 0.9)
    loto = {
        **_summary(1.25, 0.004, 0.0046, 0.8),
        "trained_on": [1.0, 1.5],
        "variants": {
            "interpolate": {"D_mlgle": 0.0046, "D_mlgle_ci95": [0.0044, 0.0048], "D_gle": 0.0041},
            "refit": {"D_mlgle": 0.0038, "D_mlgle_ci95": [0.0036, 0.004], "D_gle": 0.0035},
        },
    }
    ax = draw_d_vs_t([loto], per_t).axes[0]
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


# --- stages end to end on Rouse chains ------------------------------------------------------


def _rouse_store(root: Path, temperature: float, frames: int, seed: int) -> np.ndarray:
    """Modes store of Rouse chains whose friction falls with T (ζ = exp(1/T)): D grows with T."""
    positions = rouse_chains(8, 6, frames, 1.0, kT=temperature, friction=np.exp(1 / temperature),
                             spring=1.0, seed=seed)
    modes = normal_modes(positions, k=4)
    meta = TrajectoryMeta(temperature=temperature, dt=1.0, chains=8, beads=6, frames=frames)
    write_modes(root / "data" / "modes" / f"T{temperature!r}", modes, meta)
    return modes


@pytest.mark.slow
def test_stages_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    temps = (1.0, 1.25, 1.5)
    modes = {t: _rouse_store(tmp_path, t, 700, seed=i) for i, t in enumerate(temps)}
    params = _params(
        tmp_path,
        md={"temperatures": list(temps)},
        gle={"k": 4, "t_fit": 200},
        train={"history": 8, "t_train": 200, "t_val": 100, "hidden": [16, 16], "latent": 4,
               "batch_size": 64, "threads": 1},
        generate={"trajectories": 10, "frames": 600},
        evaluate={"d_window": [100, 300], "nacf_max_lag": 50, "nacf_modes": [1, 2]},
    )
    parser = argparse.ArgumentParser()
    add_loto_parser(parser.add_subparsers(dest="stage"))

    def run(*argv: str) -> None:
        args = parser.parse_args(["loto", argv[0], "--params", str(params), *argv[1:]])
        main_loto(args)

    run("train", "--leave-out", "1.25", "--out", "models/T1.25", "--no-progress", "--no-tracking")
    summary = json.loads(Path("models/T1.25/summary.json").read_text())
    assert summary["trained_on"] == [1.0, 1.5] and 1 <= summary["epochs_run"] <= 10
    assert pl.read_csv("models/T1.25/nll.csv").shape == (summary["epochs_run"] * 4, 4)

    run("generate", "--leave-out", "1.25", "--model", "models/T1.25", "--out", "gen/T1.25",
        "--no-progress")
    gen = np.load("gen/T1.25/modes.npy")
    assert gen.shape == (600, 10, 4, 3) and np.isfinite(gen).all()
    meta = json.loads(Path("gen/T1.25/meta.json").read_text())
    assert meta["initial_windows_from"]["temperature"] == 1.0  # nearest, the lower on a tie
    gle = json.loads(Path("gen/T1.25/gle.json").read_text())
    for name in ("interpolate", "refit"):
        com = np.load(f"gen/T1.25/com_{name}.npy")
        assert com.shape == (600, 10, 3) and np.all(com[0] == 0)
    # The two variants share B(t): their difference is the mode term and α alone.
    b = {n: np.load(f"gen/T1.25/com_{n}.npy") / gle[n]["alpha"] for n in ("interpolate", "refit")}
    z = gen[:, :, :, :].sum(axis=2)
    for n in b:
        b[n] -= gle[n]["beta"] / gle[n]["alpha"] * (z - z[0])
    np.testing.assert_allclose(b["interpolate"], b["refit"], atol=1e-3)

    run("evaluate", "--leave-out", "1.25", "--generated", "gen/T1.25", "--out", "loto/T1.25",
        "--no-tracking")
    result = json.loads(Path("loto/T1.25/summary.json").read_text())
    # Independent recomputation of D_MD at T* (Eq. 35) from the store's C.o.M.
    t = np.arange(100, 301)
    d_md = np.mean(stats.msd(modes[1.25][:, :, 0].astype(np.float32).astype(float))[t] / (6 * t))
    assert result["D_md"] == pytest.approx(d_md, rel=1e-6)
    assert result["variants"]["refit"]["D_mlgle"] > 0 and result["gle"] == "interpolate"

    # Per-temperature evaluation summaries the report compares with; one missing is named.
    write_json(Path("eval/T1.0/summary.json"), _summary(1.0, 0.01, 0.011, 0.9))
    with pytest.raises(StoreError, match=r"eval/T1.25/summary.json: missing; `mlgle evaluate`"):
        run("report", "--loto", "loto", "--evaluations", "eval", "--out", "reports/loto",
            "--no-tracking")
    assert not Path("reports/loto").exists()
    for t in temps:
        write_json(Path(f"eval/T{t!r}/summary.json"), _summary(t, 0.01, 0.011, 0.9))

    run("report", "--loto", "loto", "--evaluations", "eval", "--out", "reports/loto",
        "--no-tracking")
    table = pl.read_csv("reports/loto/loto.csv")
    assert table["T"].to_list() == [1.25]
    assert table["D_md"][0] == pytest.approx(result["D_md"], rel=1e-4)
    assert Path("reports/loto/fig_d_vs_t.png").stat().st_size > 1000
    assert "| T |" in Path("reports/loto/loto.md").read_text()
