"""`mlgle modes`: normal modes p = 0..k (Eq. 15) of a trajectory store, block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.config import Params
from mlgle.store import (
    open_trajectory,
    write_modes,
)

# Frames converted per block: bounds memory for long trajectories.
_MODES_BLOCK = 2048


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
