"""DCD (``dump dcd``) through MDAnalysis' libdcd, with a truncation check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.errors import ReaderError
from mlgle.md.readers.common import (
    Trajectory,
    check_finite,
)


def read_dcd(path: str | Path, chains: int, beads: int) -> Trajectory:
    """Read a DCD file (``dump dcd`` + ``dump_modify ID unwrap yes``) via MDAnalysis' libdcd.

    DCD has no molecule ids: the chains * beads atoms are taken chain-major in id order. If the
    file stores a box, frames with a bond (consecutive beads) longer than half the box are
    rejected as wrapped. A partial last frame is an error (libdcd alone drops it). Frame times are
    the MD steps istart + i·nsavc of the header. Returns positions (frames, chains, beads, 3).
    """
    from MDAnalysis.lib.formats.libdcd import DCDFile

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        with DCDFile(str(path)) as dcd:
            header = dcd.header
            frames = dcd.readframes(order="fac")
            sizes = (dcd._header_size, dcd._firstframesize, dcd._framesize, dcd.n_frames)
    except (OSError, EOFError, ValueError, RuntimeError) as exc:
        raise ReaderError(f"{path}: not a readable DCD file ({exc})") from exc
    natoms = int(header["natoms"])
    if natoms != chains * beads:
        raise ReaderError(
            f"{path}: frame 0: {natoms} atoms is not chains x beads = {chains} x {beads}"
        )
    xyz = np.asarray(frames.xyz, dtype=np.float32)
    if xyz.shape[0] == 0:
        raise ReaderError(f"{path}: no frame")
    head, first, each, count = sizes  # libdcd drops a partial last frame silently
    if path.stat().st_size != head + first + (count - 1) * each:
        raise ReaderError(f"{path}: frame {count}: truncated last frame (partial frame record)")
    check_finite(path, xyz, ("x", "y", "z"), 0)
    positions = xyz.reshape(xyz.shape[0], chains, beads, 3)
    if header["is_periodic"]:
        _check_unwrapped(path, positions, np.asarray(frames.unitcell)[:, [0, 2, 5]])
    steps = header["istart"] + header["nsavc"] * np.arange(xyz.shape[0], dtype=np.float64)
    return Trajectory(positions, steps, "step", path, "lammps-dcd")


def _check_unwrapped(path: Path, positions: np.ndarray, box: np.ndarray) -> None:
    """Reject frames with a bond component longer than half the box (frames, 3): wrapped data."""
    bonds = np.abs(np.diff(positions, axis=2))
    long = bonds > 0.5 * box[:, None, None, :]
    if long.any():
        k, chain, bead, dim = (int(i) for i in np.argwhere(long)[0])
        raise ReaderError(
            f"{path}: frame {k}: chain {chain}, beads {bead}-{bead + 1}: bond component "
            f"{'xyz'[dim]} = {bonds[k, chain, bead, dim]:.4g} exceeds half the box "
            f"({box[k, dim]:.4g} / 2): coordinates look wrapped; write the DCD with "
            "`dump_modify ID unwrap yes`"
        )
