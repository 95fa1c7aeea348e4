"""`mlgle train`: the NAR mode models (Secs. 3.1-3.4, 4.4), MLflow-tracked, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.config import Params
from mlgle.errors import ConfigError
from mlgle.store import read_modes


def train(params: Params, modes_store: Path, out: Path, progress: bool, tracking: bool) -> Path:
    """NAR models for modes 1..k on [0, T_train), validated on the next T_val frames (Sec. 4.4).

    Writes ``out/model.pt``, ``out/nll.csv`` (Fig. 7 curves) and ``out/summary.json``.
    A checkpoint beside ``out`` lets a killed run resume; it is removed on success.
    """
    from mlgle.nar.bundle import write_model_dir
    from mlgle.nar.train import fit_modes

    z, meta = read_modes(modes_store)
    k = params.slow_modes(z.shape[2] - 1)
    cfg = params.train
    needed = cfg.t_train + cfg.t_val
    if needed > meta.frames:
        raise ConfigError(
            f"{params.source}: train.t_train + train.t_val = {needed} frames, but {modes_store} "
            f"has {meta.frames}"
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
            result = write_model_dir(out, trained, mode_ids, {"temperature": meta.temperature})
            run.log_artifact(result / "model.pt")
            run.log_artifact(result / "nll.csv")
    else:
        result = write_model_dir(out, fit(), mode_ids, {"temperature": meta.temperature})
    checkpoint.unlink(missing_ok=True)
    return result
