"""`mlgle loto generate`: modes at T* (Alg. 1) and the C.o.M for both GLE variants (Eq. 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.config import ConditionedConfig, Params
from mlgle.errors import ConfigError
from mlgle.gle import GLEFit, brownian_rng, com_msd_1d, interpolate_gle, mode_msd_1d, refit_gle
from mlgle.pipeline.loto import check_left_out, modes_store
from mlgle.store import atomic_dir, gle_json, write_json


def _initial(
    params: Params, settings: ConditionedConfig, fitted, modes_dir: Path, left_out: float
) -> tuple[np.ndarray, float]:
    """Initial windows (m, n, k, 3) at T* and the temperature they were drawn from."""
    from mlgle.nar.generate import initial_windows

    trained = [float(f) for f in fitted.scales.features[:, 0]]
    source = left_out
    if settings.initial == "nearest":
        source = min(trained, key=lambda t: (abs(t - left_out), t))
    mapped, _ = modes_store(modes_dir, source)
    k, m, cfg = fitted.model.modes, fitted.history, params.generate
    windows = initial_windows(
        mapped[:, :, 1 : k + 1], params.train.t_train, m, cfg.trajectories, cfg.seed
    )
    windows = windows.astype(np.float64)
    if source != left_out:  # same standardised window, rescaled to σ_z(T*)
        own = fitted.scales.training(trained.index(source)).sigma_z
        windows *= (fitted.standardisation(left_out).sigma_z / own)[:, None]
    return windows, source


def generate(
    params: Params,
    settings: ConditionedConfig,
    model_dir: Path,
    modes_dir: Path,
    left_out: float,
    out: Path,
    progress: bool = True,
) -> Path:
    """Alg. 1 at T* with the conditioned model and the C.o.M (Eq. 13) for both GLE variants.

    Writes ``out/modes.npy`` (frames, n, k, 3) float32, ``out/com_interpolate.npy`` and
    ``out/com_refit.npy`` (frames, n, 3) float32 from 0 with one shared Brownian path,
    ``out/gle.json`` (both variants' α, β) and ``out/meta.json``.
    """
    import torch

    from mlgle.nar.conditioned import ConditionedModes
    from mlgle.nar.generate import check_generated

    torch.set_num_threads(params.train.threads)
    fitted = ConditionedModes.load(Path(model_dir) / "model.pt")
    temps = [float(f) for f in fitted.scales.features[:, 0]]
    if tuple(temps) != check_left_out(params, left_out):
        raise ConfigError(f"{model_dir}: model trained on T = {temps}, not all but {left_out:g}")
    cfg, k = params.generate, fitted.model.modes
    initial, source = _initial(params, settings, fitted, modes_dir, left_out)
    gen = fitted.generate(left_out, initial, cfg.frames, cfg.seed, progress)
    check_generated(gen, f"{Path(model_dir) / 'model.pt'} at T* = {left_out:g}")
    points, t_fit = params.gle_points(), params.gle.t_fit
    fits, com_msd = {}, {}
    for t in temps:
        mapped, meta = modes_store(modes_dir, t)
        z = np.asarray(mapped[:t_fit, :, : k + 1], dtype=np.float64)
        fits[t] = GLEFit(points=points, k=k).fit(z[:, :, 0], z[:, :, 1:], meta.dt)
        com_msd[t] = com_msd_1d(z[:, :, 0], points)
    variants = {
        "interpolate": interpolate_gle(fits, left_out),
        "refit": refit_gle(com_msd, mode_msd_1d(gen, points), left_out, points, meta.dt, k),
    }
    with atomic_dir(out) as tmp:
        np.save(tmp / "modes.npy", gen.astype(np.float32, copy=False))
        for name, gle in variants.items():
            com = gle.generate_com(gen, brownian_rng(cfg.seed))
            np.save(tmp / f"com_{name}.npy", com.astype(np.float32))
        write_json(
            tmp / "gle.json",
            {
                "temperature": left_out,
                "primary": settings.gle,
                **{name: gle_json(gle) for name, gle in variants.items()},
                "per_temperature": {repr(t): gle_json(f) for t, f in fits.items()},
            },
        )
        write_json(
            tmp / "meta.json",
            {
                "temperature": left_out,
                "dt": meta.dt,
                "frames": cfg.frames,
                "trajectories": cfg.trajectories,
                "modes": list(range(1, k + 1)),
                "history": fitted.history,
                "seed": cfg.seed,
                "trained_on": temps,
                "initial": settings.initial,
                "initial_windows_from": {"temperature": source, "frame": params.train.t_train},
            },
        )
    return out
