"""Pipeline stages: thin glue between params, stores and the numerical core.

Each function writes exactly the outputs it is given (the outs dvc.yaml declares), atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.config import Params
from mlgle.store import (
    TrajectoryMeta,
    atomic_dir,
    open_modes,
    open_trajectory,
    write_json,
    write_modes,
)

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
    import polars as pl

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
            result = _write_training(out, trained, meta, mode_ids, pl)
            run.log_artifact(result / "model.pt")
            run.log_artifact(result / "nll.csv")
    else:
        result = _write_training(out, fit(), meta, mode_ids, pl)
    checkpoint.unlink(missing_ok=True)
    return result


def _write_training(out: Path, trained, meta: TrajectoryMeta, mode_ids: list[int], pl) -> Path:
    epochs, k = trained.val_nll.shape
    curves = pl.DataFrame(
        {
            "epoch": np.repeat(np.arange(epochs), k),
            "mode": np.tile(mode_ids, epochs),
            "train_nll": trained.train_nll.reshape(-1),
            "val_nll": trained.val_nll.reshape(-1),
        }
    )
    best_val = trained.val_nll[trained.best_epoch, np.arange(k)]
    with atomic_dir(out) as tmp:
        trained.save(tmp / "model.pt")
        curves.write_csv(tmp / "nll.csv")
        write_json(
            tmp / "summary.json",
            {
                "temperature": meta.temperature,
                "modes": mode_ids,
                "best_epoch": [int(e) for e in trained.best_epoch],
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
