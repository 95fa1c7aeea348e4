"""`mlgle generate`: long mode and C.o.M trajectories (Alg. 1, Eq. 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.config import Params
from mlgle.errors import StoreError
from mlgle.store import (
    atomic_dir,
    open_modes,
    read_gle,
    write_json,
)


def generate(
    params: Params, model_dir: Path, modes_store: Path, gle_json: Path, out: Path, progress: bool
) -> Path:
    """Long trajectories (Alg. 1, see mlgle.nar.generate) from MD windows after T_train; C.o.M by
    Eq. 13.

    Writes ``out/modes.npy`` (frames, n, k, 3) float32 modes 1..k, ``out/com.npy`` (frames, n, 3)
    starting at 0, and ``out/meta.json``. Both arrays are written in frame blocks as they are
    generated (mlgle.blockio), so memory does not grow with the frames.
    """
    import torch

    from mlgle.blockio import NpyFrameWriter
    from mlgle.gle import brownian_rng
    from mlgle.nar.device import resolve_device
    from mlgle.nar.generate import check_generated, initial_windows, stream_modes
    from mlgle.nar.train import TrainedModes

    cfg = params.generate
    device = resolve_device(cfg.device, "generate.device")
    torch.set_num_threads(params.train.threads)
    trained = TrainedModes.load(model_dir / "model.pt")
    z, meta = open_modes(modes_store)
    k, m = trained.model.modes, trained.history
    gle = read_gle(gle_json)
    if gle.k != k:
        raise StoreError(
            f"{gle_json}: field 'k' = {gle.k}, but the models in {model_dir} have k = {k} "
            "(fit the GLE and train on the same modes.k)"
        )
    initial = initial_windows(
        z[:, :, 1 : k + 1], params.train.t_train, m, cfg.trajectories, cfg.seed
    ).astype(np.float64)
    std = trained.standardisation
    n, source = cfg.trajectories, f"{model_dir / 'model.pt'}"
    with atomic_dir(out) as tmp:
        modes_file = NpyFrameWriter(tmp / "modes.npy", (cfg.frames, n, k, 3), np.float32)
        com_file = NpyFrameWriter(tmp / "com.npy", (cfg.frames, n, 3), np.float32)
        com = gle.com_stream(brownian_rng(cfg.seed), n)

        def write(first: int, block: np.ndarray) -> None:  # frames [first, first + b)
            check_generated(block, source, first, cfg.frames)
            modes_file.write(first, block)
            com_file.write(first, com(block).astype(np.float32))

        with modes_file, com_file:
            backend = stream_modes(
                trained.model.to(device), std.sigma_z, std.sigma_dz, initial, cfg.frames,
                cfg.seed, write, progress, backend=cfg.backend,
            )  # fmt: skip
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
                "device": str(device),
                "matmul_backend": backend,
                "initial_windows_from_frame": params.train.t_train,
            },
        )
    return out
