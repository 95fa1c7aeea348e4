"""Pipeline stages: thin glue between params, stores and the numerical core.

Each function writes exactly the outputs it is given (the outs dvc.yaml declares), atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlgle.config import Params
from mlgle.store import (
    TrajectoryMeta,
    atomic_dir,
    open_modes,
    open_trajectory,
    temperature_tag,
    write_json,
    write_modes,
    write_text,
)

if TYPE_CHECKING:
    from mlgle.report.evaluation import EvaluationData

# Frames converted per block in the modes stage: bounds memory for long trajectories.
_MODES_BLOCK = 2048


def simulate(
    params: Params, temperature: float, out: Path, work_dir: Path | None, progress: bool
) -> Path:
    """Reference melt at one temperature -> trajectory store (Sec. 4.1)."""
    from mlgle.md.melt import simulate as run_melt

    return run_melt(params.md, temperature, out, work_dir=work_dir, progress=progress)


def import_data(
    paths: list[Path],
    out: Path,
    fmt: str,
    dt: float,
    temperature: float,
    chains: int | None,
    beads: int | None,
    units: str,
) -> Path:
    """External trajectory (LAMMPS dump, DCD, NetCDF, meltBR) -> store."""
    from mlgle.md.readers import import_trajectory

    return import_trajectory(
        paths,
        out,
        format=fmt,
        chains=chains,
        beads=beads,
        dt=dt,
        temperature=temperature,
        units=units,
    )


def modes(params: Params, trajectory: Path, out: Path) -> Path:
    """Trajectory store -> modes store with p = 0 (C.o.M) .. k (Eq. 15), block by block."""
    from mlgle.modes import normal_modes

    positions, meta = open_trajectory(trajectory)
    k = min(params.modes.k, meta.beads - 1)
    result = np.empty((meta.frames, meta.chains, k + 1, 3), dtype=np.float32)
    for start in range(0, meta.frames, _MODES_BLOCK):
        block = np.asarray(positions[start : start + _MODES_BLOCK], dtype=np.float64)
        result[start : start + _MODES_BLOCK] = normal_modes(block, k=k)
    return write_modes(out, result, meta)


def load_modes(store: Path) -> tuple[np.ndarray, TrajectoryMeta]:
    """Modes store -> (modes (frames, chains, k + 1, 3) float64 in memory, meta)."""
    mapped, meta = open_modes(store)
    return np.asarray(mapped, dtype=np.float64), meta


def fit_gle(params: Params, modes_store: Path, out: Path) -> dict:
    """GLE fit on the first T_fit frames (Eqs. 26-27), with a bootstrap CI of D_GLE over chains."""
    from mlgle.gle import GLEFit, bootstrap_diffusion

    z, meta = load_modes(modes_store)
    t_fit, k = params.gle.t_fit, min(params.gle.k, z.shape[2] - 1)
    if t_fit > meta.frames:
        raise ValueError(f"{modes_store}: gle.t_fit = {t_fit} exceeds the {meta.frames} frames")
    com, slow = z[:t_fit, :, 0], z[:t_fit, :, 1 : k + 1]
    points = params.gle_points()
    model = GLEFit(points=points, k=k).fit(com, slow, meta.dt)
    lo, hi = bootstrap_diffusion(com, slow, meta.dt, points, params.gle.bootstrap, params.gle.seed)
    result = {
        "temperature": meta.temperature,
        "alpha": model.alpha,
        "beta": model.beta,
        "D_gle": model.diffusion,
        "D_gle_ci95": [lo, hi],
        "k": k,
        "t_fit": t_fit,
        "points": list(points),
        "dt": meta.dt,
        "units": f"{meta.units}: length^2 / time",
    }
    write_json(out, result)
    return result


def train(params: Params, modes_store: Path, out: Path, progress: bool, tracking: bool) -> Path:
    """NAR models for modes 1..k on [0, T_train), validated on the next T_val frames (Sec. 4.4).

    Writes ``out/model.pt``, ``out/nll.csv`` (Fig. 7 curves) and ``out/summary.json``.
    A checkpoint beside ``out`` lets a killed run resume; it is removed on success.
    """
    from mlgle.nar.train import fit_modes

    z, meta = load_modes(modes_store)
    k = min(params.gle.k, z.shape[2] - 1)
    cfg = params.train
    needed = cfg.t_train + cfg.t_val
    if needed > meta.frames:
        raise ValueError(
            f"{modes_store}: train.t_train + train.t_val = {needed} frames, store has {meta.frames}"
        )
    slow = z[:needed, :, 1 : k + 1]
    checkpoint = out.with_name(f".{out.name}.checkpoint.pt")
    mode_ids = list(range(1, k + 1))

    def fit(callback=None):
        return fit_modes(slow, cfg, callback=callback, checkpoint=checkpoint, progress=progress)

    if tracking:
        from mlgle.tracking import EpochLogger, Tracker

        tracker = Tracker(params.tracking)
        with tracker.run(
            f"train T={meta.temperature:g}", params, stage="train", temperature=meta.temperature
        ) as run:
            logger = EpochLogger(run, mode_ids)
            trained = fit(logger)
            best_val = trained.val_nll[trained.best_epoch, np.arange(k)]
            logger.close(trained.best_epoch, best_val)
            result = write_training(out, trained, mode_ids, {"temperature": meta.temperature})
            run.log_artifact(result / "model.pt")
            run.log_artifact(result / "nll.csv")
    else:
        result = write_training(out, fit(), mode_ids, {"temperature": meta.temperature})
    checkpoint.unlink(missing_ok=True)
    return result


def write_training(out: Path, fitted, mode_ids: list[int], info: dict) -> Path:
    """A model directory, atomically: ``model.pt`` (``fitted.save``), ``nll.csv`` (train and
    validation NLL per epoch and mode, Fig. 7) and ``summary.json`` (``info`` then the modes, best
    epoch and best validation NLL per mode, epochs run). ``fitted`` is a TrainedModes or
    ConditionedModes (curves ``(epochs, k)``, best_epoch ``(k,)``)."""
    import polars as pl

    epochs, k = fitted.val_nll.shape
    curves = pl.DataFrame(
        {
            "epoch": np.repeat(np.arange(epochs), k),
            "mode": np.tile(mode_ids, epochs),
            "train_nll": fitted.train_nll.reshape(-1),
            "val_nll": fitted.val_nll.reshape(-1),
        }
    )
    best_val = fitted.val_nll[fitted.best_epoch, np.arange(k)]
    with atomic_dir(out) as tmp:
        fitted.save(tmp / "model.pt")
        curves.write_csv(tmp / "nll.csv")
        write_json(
            tmp / "summary.json",
            {
                **info,
                "modes": mode_ids,
                "best_epoch": [int(e) for e in fitted.best_epoch],
                "best_val_nll": [float(v) for v in best_val],
                "epochs_run": int(epochs),
            },
        )
    return out


def analyze_md(params: Params, modes_store: Path, trajectory: Path | None, out: Path) -> dict:
    """MD reference report at one temperature: summary.json, msd.csv, nacf.csv and figures."""
    import polars as pl

    from mlgle.report import figures
    from mlgle.report.md import chain_size, summarize_md

    z, meta = load_modes(modes_store)
    ev = params.evaluate
    summary = summarize_md(
        z,
        meta.dt,
        meta.temperature,
        ev.d_window,
        ev.nacf_modes,
        fit_lags=params.train.t_train,
        nacf_max_lag=ev.nacf_max_lag,
    )
    result = summary.to_json()
    if trajectory is not None:
        positions, _ = open_trajectory(trajectory)
        result.update(chain_size(positions, every=max(1, meta.frames // 200)))
    with atomic_dir(out) as tmp:
        write_json(tmp / "summary.json", result)
        pl.DataFrame(
            {"t": summary.lags * meta.dt, "msd": summary.msd[summary.lags], "slope": summary.slope}
        ).write_csv(tmp / "msd.csv")
        pl.DataFrame(
            {"t": np.arange(ev.nacf_max_lag + 1) * meta.dt}
            | {f"mode_{p}": curve for p, curve in summary.nacf.items()}
        ).write_csv(tmp / "nacf.csv")
        figures.md_msd(summary, ev.d_window, tmp / "msd.png")
        figures.nacf_fits([summary], tmp / "nacf_fits.png")
    return result


def generate(
    params: Params, model_dir: Path, modes_store: Path, gle_json: Path, out: Path, progress: bool
) -> Path:
    """Alg. 1: long mode trajectories from MD windows after T_train, C.o.M by Eq. 13.

    Writes ``out/modes.npy`` (frames, n, k, 3) float32 modes 1..k, ``out/com.npy`` (frames, n, 3)
    starting at 0, and ``out/meta.json``.
    """
    import json

    import torch

    from mlgle.gle import GLEModel
    from mlgle.nar.generate import generate_modes, initial_windows
    from mlgle.nar.train import TrainedModes

    cfg = params.generate
    torch.set_num_threads(params.train.threads)
    trained = TrainedModes.load(model_dir / "model.pt")
    z, meta = load_modes(modes_store)
    k, m = trained.model.modes, trained.history
    fit = json.loads(Path(gle_json).read_text())
    gle = GLEModel(fit["alpha"], fit["beta"], fit["dt"], tuple(fit["points"]), fit["k"])
    if gle.k != k:
        raise ValueError(f"{gle_json}: GLE fitted with k = {gle.k}, the models have k = {k}")
    initial = initial_windows(
        z[:, :, 1 : k + 1], params.train.t_train, m, cfg.trajectories, cfg.seed
    )
    std = trained.standardisation
    gen = generate_modes(
        trained.model, std.sigma_z, std.sigma_dz, initial, cfg.frames, cfg.seed, progress
    )
    com = gle.generate_com(gen, np.random.default_rng(cfg.seed + 1))
    with atomic_dir(out) as tmp:
        np.save(tmp / "modes.npy", gen.astype(np.float32, copy=False))
        np.save(tmp / "com.npy", com.astype(np.float32))
        write_json(
            tmp / "meta.json",
            {
                "temperature": meta.temperature,
                "dt": meta.dt,
                "frames": cfg.frames,
                "trajectories": cfg.trajectories,
                "modes": list(range(1, k + 1)),
                "history": m,
                "seed": cfg.seed,
                "initial_windows_from_frame": params.train.t_train,
            },
        )
    return out


def evaluate(
    params: Params,
    modes_store: Path,
    generated: Path,
    gle_json: Path,
    out: Path,
    tracking: bool,
) -> dict:
    """Generated vs MD at one temperature: ``out/summary.json`` and ``out/evaluation.npz``."""
    import json

    from mlgle.gle import GLEModel
    from mlgle.report.evaluation import evaluate as compare

    z, meta = load_modes(modes_store)
    gen = np.load(generated / "modes.npy")
    com = np.load(generated / "com.npy").astype(np.float64)
    fit = json.loads(Path(gle_json).read_text())
    gle = GLEModel(fit["alpha"], fit["beta"], fit["dt"], tuple(fit["points"]), fit["k"])
    ev = params.evaluate
    data, summary = compare(
        z,
        gen.astype(np.float64),
        com,
        gle,
        meta.dt,
        meta.temperature,
        ev.d_window,
        ev.nacf_max_lag,
        ev.band_level,
        ev.seed,
    )
    summary["D_gle_ci95"] = fit.get("D_gle_ci95")
    write_evaluation(out, data, summary, ev.nacf_modes)
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run(
            f"evaluate T={meta.temperature:g}",
            params,
            stage="evaluate",
            temperature=meta.temperature,
        ) as run:
            run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
            for p, share, ratio in zip(
                data.modes,
                summary["nacf_band_fraction_per_mode"],
                summary["dz_rms_ratio_per_mode"],
                strict=True,
            ):
                child = run.nested(f"mode {p}", {"mode": int(p)})
                child.log_metrics({"nacf_band_fraction": share, "dz_rms_ratio": ratio})
                child.finish()
            for name in ("summary.json", "fig09_nacf.png", "fig13_mlgle_msd.png"):
                run.log_artifact(out / name)
    return summary


def write_evaluation(
    out: Path, data: EvaluationData, summary: dict, nacf_modes: tuple[int, ...]
) -> Path:
    """One temperature's evaluation: evaluation.npz, summary.json and its Figs. 9 and 13."""
    from mlgle.report import paper_figures as pf

    with atomic_dir(out) as tmp:
        data.save(tmp / "evaluation.npz")
        write_json(tmp / "summary.json", summary)
        pf.fig09_nacf([data], tmp / "fig09_nacf.png", modes=nacf_modes)
        pf.fig13_mlgle_msd(
            [data], tmp / "fig13_mlgle_msd.png", d_md={data.temperature: summary["D_md"]}
        )
    return out


def report(
    params: Params,
    evaluations_dir: Path,
    models_dir: Path,
    md_reports_dir: Path,
    out: Path,
    tracking: bool = True,
) -> dict:
    """Table 1, reports/metrics.json and the paper's figures over md.temperatures."""
    import json

    import polars as pl

    from mlgle.report import paper_figures as pf
    from mlgle.report.evaluation import EvaluationData
    from mlgle.report.table import metrics, table1

    tags = [temperature_tag(t) for t in params.md.temperatures]
    evaluations = [evaluations_dir / tag for tag in tags]
    models = [models_dir / tag for tag in tags]
    summaries = [json.loads((e / "summary.json").read_text()) for e in evaluations]
    data = [EvaluationData.load(e / "evaluation.npz") for e in evaluations]
    result = metrics(summaries)
    figures_dir = out / "figures"
    write_json(out / "metrics.json", result)
    table = table1(summaries)
    write_text(out / "table1.csv", table.write_csv())
    write_text(out / "table1.md", markdown_table(table))
    curves = {
        json.loads((m / "summary.json").read_text())["temperature"]: pl.read_csv(m / "nll.csv")
        for m in models
    }
    from mlgle.report.figures import nacf_fits
    from mlgle.report.md import load_nacf_panel

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


def markdown_table(table) -> str:
    """A polars DataFrame as a Markdown table (Table 1, the LOTO table)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join([header, rule, *rows]) + "\n"


def reconstruct(generated: Path, beads: int, out: Path, every: int, chains: int) -> Path:
    """Generated modes -> bead positions with k modes (Eq. 14, Fig. 3) as an XYZ file.

    The C.o.M (mode 0) comes from ``com.npy``; ``every`` keeps one frame in that many and
    ``chains`` limits the chains written. OVITO and VMD read the result.
    """
    from mlgle.modes import positions_from_modes

    gen = np.load(generated / "modes.npy", mmap_mode="r")[::every, :chains]
    com = np.load(generated / "com.npy", mmap_mode="r")[::every, :chains]
    modes = np.concatenate([com[:, :, None], gen], axis=2).astype(np.float64)
    positions = positions_from_modes(modes, beads)
    frames, n = positions.shape[:2]
    lines: list[str] = []
    for f in range(frames):
        lines.append(f"{n * beads}")
        lines.append(f"frame {f * every} reconstructed from {modes.shape[2]} modes (Eq. 14)")
        atoms = positions[f].reshape(-1, 3)
        lines.extend(f"C {x:.5f} {y:.5f} {z:.5f}" for x, y, z in atoms)
    write_text(out, "\n".join(lines) + "\n")
    return out
