"""Reader for the DCD files LAMMPS' ``dump dcd`` writes (CHARMM layout, little-endian, float32).

Layout: three Fortran records of header (84 bytes 'CORD' block, title block, atom count), then per
frame an optional unit-cell record (6 float64) and three records of ``natoms`` float32 (x, y, z).
Every record is framed by its byte length as int32 before and after; the reader checks all of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class DCDError(ValueError):
    """A DCD file is truncated or not in the expected layout; the message names the file."""


def _record(raw: np.ndarray, offset: int, path: Path, what: str) -> tuple[np.ndarray, int]:
    if offset + 4 > raw.size:
        raise DCDError(f"{path}: truncated before the {what} record (byte {offset})")
    length = int(raw[offset : offset + 4].view("<i4")[0])
    end = offset + 4 + length
    if length < 0 or end + 4 > raw.size:
        raise DCDError(f"{path}: {what} record of {length} bytes runs past the end of the file")
    if int(raw[end : end + 4].view("<i4")[0]) != length:
        raise DCDError(f"{path}: {what} record markers disagree (byte {offset})")
    return raw[offset + 4 : end], end + 4


def read_dcd(path: str | Path) -> np.ndarray:
    """All frames of a DCD file as float32 (frames, atoms, 3), in the file's atom order."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    header, offset = _record(raw, 0, path, "header")
    if header.size != 84 or header[:4].tobytes() != b"CORD":
        raise DCDError(f"{path}: not a DCD file (no 'CORD' header)")
    has_cell = bool(header[4:].view("<i4")[10])
    _, offset = _record(raw, offset, path, "title")
    count, offset = _record(raw, offset, path, "atom count")
    if count.size != 4:
        raise DCDError(f"{path}: atom count record has {count.size} bytes, expected 4")
    atoms = int(count.view("<i4")[0])
    coordinate = 4 * atoms + 8
    frame = coordinate * 3 + (56 if has_cell else 0)
    body = raw.size - offset
    if atoms <= 0 or body % frame:
        raise DCDError(
            f"{path}: {body} bytes of frames is not a whole number of {frame}-byte frames "
            f"({atoms} atoms): truncated?"
        )
    frames = raw[offset:].reshape(body // frame, frame)
    if has_cell:
        _check_markers(frames[:, :56], 48, path, "unit cell")
        frames = frames[:, 56:]
    blocks = frames.reshape(-1, 3, coordinate)
    _check_markers(blocks.reshape(-1, coordinate), 4 * atoms, path, "coordinate")
    xyz = np.ascontiguousarray(blocks[:, :, 4:-4]).view("<f4")  # (frames, 3, atoms)
    return np.ascontiguousarray(xyz.transpose(0, 2, 1)).astype(np.float32, copy=False)


def _check_markers(records: np.ndarray, length: int, path: Path, what: str) -> None:
    """records: (n, length + 8) bytes; both int32 markers must equal ``length``."""
    head = np.ascontiguousarray(records[:, :4]).view("<i4")
    tail = np.ascontiguousarray(records[:, -4:]).view("<i4")
    if not ((head == length).all() and (tail == length).all()):
        raise DCDError(f"{path}: {what} record markers are not {length} bytes in every frame")
