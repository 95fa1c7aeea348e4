"""Shared by the trajectory readers: the formats, the Trajectory record, chain order and checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlgle.errors import ReaderError

FORMATS = ("dump", "dcd", "netcdf", "meltbr")
EXTENSIONS = {
    ".dump": "dump",
    ".lammpstrj": "dump",
    ".txt": "dump",
    ".dcd": "dcd",
    ".nc": "netcdf",
    ".pt": "meltbr",
    ".pth": "meltbr",
}
SOURCES = {
    "dump": "lammps-dump",
    "dcd": "lammps-dcd",
    "netcdf": "lammps-netcdf",
    "meltbr": "meltbr",
}

WRAPPED_HINT = (
    "re-run LAMMPS with unwrapped coordinates (`dump ID all custom N FILE id mol xu yu zu`) "
    "or add the image flags (`... id mol x y z ix iy iz`)"
)


@dataclass(frozen=True)
class Trajectory:
    """Unwrapped positions read from one file.

    positions: (frames, chains, beads, 3) float32. times: (frames,) float64 frame times as the
    file stores them, in ``time_unit`` ('step' for dump/DCD timesteps; NetCDF ``time`` units).
    A gap between two frames is exact up to ``time_tolerance``.
    """

    positions: np.ndarray
    times: np.ndarray
    time_unit: str
    path: Path
    source: str
    time_tolerance: float = 0.0  # absolute precision of ``times`` (float32 NetCDF storage)

    @property
    def frames(self) -> int:
        return int(self.positions.shape[0])


def check_finite(path: Path, values: np.ndarray, names: Sequence[str], frame0: int) -> None:
    """values: (frames, atoms, columns); the first non-finite entry names frame and column."""
    finite = np.isfinite(values)
    if not finite.all():
        k, atom, col = (int(i) for i in np.argwhere(~finite)[0])
        raise ReaderError(
            f"{path}: frame {frame0 + k}: non-finite value in column '{names[col]}' "
            f"(atom line {atom} of the frame)"
        )


def unwrap(mode: str, raw: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    """raw: (frames, atoms, 3 or 6) coordinates [+ image flags]; box (frames, 3, 2) lo, hi."""
    xyz = raw[..., :3]
    if mode == "unwrapped" or box is None:
        return xyz
    lo = box[:, None, :, 0]
    length = box[:, None, :, 1] - lo
    if mode.startswith("scaled"):
        xyz = lo + xyz * length
    return xyz + raw[..., 3:6] * length if mode.endswith("image") else xyz


def chain_order(
    path: Path,
    ids: np.ndarray,
    mols: np.ndarray,
    frame0: int,
    ref: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per-frame permutation (frames, atoms) sorting atoms by (mol, id).

    Every frame must hold the same atoms as the reference (sorted ids and mols of frame 0).
    """
    order = np.lexsort((ids, mols), axis=-1)
    sid = np.take_along_axis(ids, order, axis=-1)
    smol = np.take_along_axis(mols, order, axis=-1)
    if ref is None:
        ref = (sid[0], smol[0])
        dup = np.flatnonzero(np.diff(ref[0][np.argsort(ref[0])]) == 0)
        if dup.size:
            raise ReaderError(f"{path}: frame {frame0}: duplicate atom id {ref[0][dup[0]]:.0f}")
    differ = ((sid != ref[0]) | (smol != ref[1])).any(axis=1)
    if differ.any():
        raise ReaderError(
            f"{path}: frame {frame0 + int(np.argmax(differ))}: atom ids or molecule ids differ "
            "from frame 0"
        )
    return order, ref


def chain_shape(
    path: Path, mols: np.ndarray, chains: int | None, beads: int | None
) -> tuple[int, int]:
    """(chains, beads) from the sorted molecule ids of frame 0, checked against given values."""
    names, counts = np.unique(mols, return_counts=True)
    if (counts != counts[0]).any():
        k = int(np.argmax(counts != counts[0]))
        raise ReaderError(
            f"{path}: frame 0: molecules differ in length (field 'mol'): molecule "
            f"{names[0]:.0f} has {counts[0]} atoms, molecule {names[k]:.0f} has {counts[k]}"
        )
    found = (int(names.size), int(counts[0]))
    for name, given, got in (("chains", chains, found[0]), ("beads", beads, found[1])):
        if given is not None and given != got:
            raise ReaderError(
                f"{path}: frame 0: the 'mol' column gives {found[0]} molecules of {found[1]} "
                f"atoms, but {name}={given} was given"
            )
    return found
