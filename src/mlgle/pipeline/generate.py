"""`mlgle generate`: long mode and C.o.M trajectories (Alg. 1, Eq. 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.config import Params
from mlgle.errors import StoreError
from mlgle.store import (
    atomic_dir,
    read_gle,
    read_modes,
    write_json,
)


def generate(
    params: Params, model_dir: Path, modes_store: Path, gle_json: Path, out: Path, progress: bool
) -> Path:
    """Long trajectories (Alg. 1, see mlgle.nar.generate) from MD windows after T_train; C.o.M by
    Eq. 13.

    Writes ``out/modes.npy`` (frames, n, k, 3) float32 modes 1..k, ``out/com.npy`` (frames, n, 3)
    starting at 0, and ``out/meta.json``.
    """
    import torch

    from mlgle.gle import brownian_rng
    from mlgle.nar.generate import check_generated, generate_modes, initial_windows
    from mlgle.nar.train import TrainedModes

    cfg = params.generate
    torch.set_num_threads(params.train.threads)
    trained = TrainedModes.load(model_dir / "model.pt")
    z, meta = read_modes(modes_store)
    k, m = trained.model.modes, trained.history
    gle = read_gle(gle_json)
    if gle.k != k:
        raise StoreError(
            f"{gle_json}: field 'k' = {gle.k}, but the models in {model_dir} have k = {k} "
            "(fit the GLE and train on the same modes.k)"
        )
    initial = initial_windows(
        z[:, :, 1 : k + 1], params.train.t_train, m, cfg.trajectories, cfg.seed
    )
    std = trained.standardisation
    gen = generate_modes(
        trained.model, std.sigma_z, std.sigma_dz, initial, cfg.frames, cfg.seed, progress
    )
    check_generated(gen, f"{model_dir / 'model.pt'}")
    com = gle.generate_com(gen, brownian_rng(cfg.seed))
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
