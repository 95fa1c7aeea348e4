"""One file format for every fitted model family (TrainedModes, ConditionedModes) and the model
directory the training stages write: ``model.pt``, ``nll.csv`` (Fig. 7 curves), ``summary.json``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlgle.errors import CheckpointError
from mlgle.store import atomic_dir, write_file, write_json


def save_torch(payload: dict[str, Any], path: Path) -> None:
    """torch.save ``payload`` atomically (see :func:`mlgle.store.write_file`).

    Saved through an open file, not the temporary path: torch names the zip records after the
    file it is given, and the random temporary name would make every save's bytes (and DVC's
    hash of the model) differ.
    """

    def write(tmp: Path) -> None:
        with tmp.open("wb") as file:
            torch.save(payload, file)

    write_file(path, write)


def read_torch(path: Path) -> dict[str, Any]:
    """A torch file of :func:`save_torch` as a dict (``weights_only``); else CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (expected a model or checkpoint of mlgle train)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"{path}: cannot read torch file ({exc})") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict payload, got {type(payload).__name__}")
    return payload


def save_fitted(path: str | Path, format: str, fitted: Any, **extra: Any) -> None:
    """Save a fitted model bundle atomically: ``fitted`` carries ``model`` (with ``config()``),
    ``history``, ``train_nll``, ``val_nll`` ``(epochs, k)``, ``best_epoch`` ``(k,)`` and
    ``config``; ``extra`` adds plain entries (the standardisation, the architecture, ...)."""
    payload = {
        "format": format,
        "model_config": fitted.model.config(),
        "state_dict": fitted.model.state_dict(),
        **extra,
        "history": int(fitted.history),
        "train_nll": torch.as_tensor(fitted.train_nll, dtype=torch.float64),
        "val_nll": torch.as_tensor(fitted.val_nll, dtype=torch.float64),
        "best_epoch": torch.as_tensor(fitted.best_epoch, dtype=torch.int64),
        "config": dict(fitted.config),
    }
    save_torch(payload, Path(path))


def load_fitted(
    path: str | Path, format: str, kind: str, build: Callable[[dict[str, Any]], nn.Module]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a bundle of :func:`save_fitted` whose format must be ``format`` (else a
    CheckpointError naming ``kind``); ``build(payload)`` makes the empty model. Returns the raw
    payload and the shared fields (model in eval mode with its weights, history, curves, config).
    """
    path = Path(path)
    payload = read_torch(path)
    if payload.get("format") != format:
        raise CheckpointError(
            f"{path}: not a saved {kind} (format {payload.get('format')!r}, expected {format!r})"
        )
    model = build(payload)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return payload, {
        "model": model,
        "history": int(payload["history"]),
        "train_nll": payload["train_nll"].numpy(),
        "val_nll": payload["val_nll"].numpy(),
        "best_epoch": payload["best_epoch"].numpy(),
        "config": dict(payload["config"]),
    }


def write_model_dir(out: Path, fitted: Any, mode_ids: list[int], info: dict) -> Path:
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
