"""The paper's public meltBR tensors (Sec. 4.2): normal modes in the DCT/(2N) convention."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.errors import ReaderError
from mlgle.md.readers.common import (
    check_finite,
)


def read_meltbr(path: str | Path) -> np.ndarray:
    """Read a meltBR tensor (``torch.load``): modes (frames, chains, modes, 3) float32.

    Modes follow Eq. (14), X_p = dct(type=2)/(2N) along beads; mode 0 is the C.o.M. The file
    holds the tensor itself or a dict with exactly one tensor among its values.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime)
        raise ReaderError(f"{path}: not readable by torch.load ({exc})") from exc
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if len(tensors) != 1:
            raise ReaderError(
                f"{path}: expected a dict holding one tensor, found keys {list(obj)} "
                f"({len(tensors)} tensors)"
            )
        obj = next(iter(tensors.values()))
    if not isinstance(obj, torch.Tensor):
        raise ReaderError(f"{path}: expected a tensor or a dict of one tensor, got {type(obj)}")
    modes = obj.detach().to(torch.float32).numpy()
    if modes.ndim != 4 or modes.shape[-1] != 3 or modes.shape[0] == 0:
        raise ReaderError(
            f"{path}: tensor shape {tuple(modes.shape)} is not (frames, chains, modes, 3)"
        )
    check_finite(path, modes.reshape(modes.shape[0], -1, 3), ("x", "y", "z"), 0)
    return modes
