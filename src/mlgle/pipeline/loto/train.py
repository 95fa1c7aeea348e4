"""`mlgle loto train`: one conditioned model on every temperature but T*."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from mlgle.config import ConditionedConfig, Params
from mlgle.errors import ConfigError
from mlgle.pipeline.loto import check_left_out, modes_store


def train(
    params: Params,
    settings: ConditionedConfig,
    modes_dir: Path,
    left_out: float,
    out: Path,
    progress: bool = True,
    tracking: bool = True,
) -> Path:
    """One conditioned model on all md.temperatures but ``left_out`` (frames [0, t_train) train,
    the next t_val validate, as ``mlgle train``). Writes ``out/model.pt``, ``out/nll.csv`` and
    ``out/summary.json``; a checkpoint beside ``out`` makes a killed run resumable."""
    from mlgle.nar.bundle import write_model_dir
    from mlgle.nar.conditioned import fit_conditioned

    temps = check_left_out(params, left_out)
    config = settings.train_config(params.train)
    needed = config.t_train + config.t_val
    datasets = []
    for t in temps:
        mapped, meta = modes_store(modes_dir, t)
        if needed > meta.frames:
            raise ConfigError(f"{params.source}: t_train + t_val = {needed} > {meta.frames} frames")
        datasets.append(
            np.asarray(
                mapped[:needed, :, 1 : params.slow_modes(mapped.shape[2] - 1) + 1], np.float64
            )
        )
    k = datasets[0].shape[2]
    checkpoint = out.with_name(f".{out.name}.checkpoint.pt")
    mode_ids = list(range(1, k + 1))
    start = time.perf_counter()

    def fit(callback=None):
        return fit_conditioned(
            datasets,
            list(temps),
            config,
            settings.conditioning,
            settings.scales,
            callback=callback,
            checkpoint=checkpoint,
            progress=progress,
        )

    info = {"left_out": left_out, "trained_on": list(temps), **dataclasses.asdict(settings)}
    if tracking:
        from mlgle.tracking import EpochLogger, Tracker

        with Tracker(params.tracking).run(
            f"loto train T={left_out:g}", params, stage="loto-train", temperature=left_out
        ) as run:
            run.log_params({"conditioned": dataclasses.asdict(settings)})
            logger = EpochLogger(run, mode_ids)
            fitted = fit(logger)
            logger.close(fitted.best_epoch, fitted.val_nll[fitted.best_epoch, np.arange(k)])
            write_model_dir(out, fitted, mode_ids, {**info, "seconds": time.perf_counter() - start})
            run.log_artifact(out / "nll.csv")
            run.log_artifact(out / "summary.json")
    else:
        fitted = fit()
        write_model_dir(out, fitted, mode_ids, {**info, "seconds": time.perf_counter() - start})
    checkpoint.unlink(missing_ok=True)
    return out
