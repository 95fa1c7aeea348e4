"""The on-disk stores: a directory of ``.npy`` arrays plus ``meta.json``.

A trajectory store (``data/md/T<T>/``) holds ``positions.npy``: unwrapped bead positions,
(frames, chains, beads, 3) float32, memory-mappable. A modes store (``data/modes/T<T>/``) holds
``modes.npy``: normal modes p = 0..k, (frames, chains, k + 1, 3) float32, mode 0 the C.o.M.

Stores are written into a temporary sibling directory and renamed into place, so a crash never
leaves a half-written store and an existing store is replaced only once the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

POSITIONS = "positions.npy"
MODES = "modes.npy"
META = "meta.json"


class StoreError(ValueError):
    """A store on disk is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class TrajectoryMeta:
    """What a trajectory store describes. Times in ``units``; ``dt`` is the frame interval Δt."""

    temperature: float
    dt: float
    chains: int
    beads: int
    frames: int
    units: str = "lj"
    source: str = "lammps"
    engine_version: str = ""
    seed: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path) -> TrajectoryMeta:
        required = ("temperature", "dt", "chains", "beads", "frames")
        for key in required:
            if key not in data:
                raise StoreError(f"{path}: field '{key}' is missing")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def temperature_tag(temperature: float) -> str:
    """Directory name of a temperature, as DVC's ``${item}`` renders it: 1.0 -> 'T1.0'."""
    return f"T{float(temperature)!r}"


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically (temporary file in the same directory, then rename), mode 0644."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (see :func:`write_text`)."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_trajectory(target: str | Path, positions: np.ndarray, meta: TrajectoryMeta) -> Path:
    """Write a trajectory store. positions: (frames, chains, beads, 3), finite."""
    target = Path(target)
    positions = check_positions(positions, name=str(target / POSITIONS))
    expected = (meta.frames, meta.chains, meta.beads, 3)
    if positions.shape != expected:
        raise StoreError(f"{target / POSITIONS}: shape {positions.shape} != meta {expected}")
    with atomic_dir(target) as tmp:
        np.save(tmp / POSITIONS, positions.astype(np.float32, copy=False))
        write_json(tmp / META, meta.to_json())
    return target


def read_meta(store: str | Path) -> TrajectoryMeta:
    path = Path(store) / META
    if not path.is_file():
        raise StoreError(f"{path}: store metadata not found (is '{store}' a trajectory store?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path}: not valid JSON ({exc})") from exc
    return TrajectoryMeta.from_json(data, path)


def open_trajectory(store: str | Path) -> tuple[np.ndarray, TrajectoryMeta]:
    """Memory-map a trajectory store: positions (frames, chains, beads, 3) float32 and its meta."""
    store = Path(store)
    meta = read_meta(store)
    positions = _open_array(store / POSITIONS, (meta.frames, meta.chains, meta.beads, 3))
    return positions, meta


def write_modes(target: str | Path, modes: np.ndarray, meta: TrajectoryMeta) -> Path:
    """Write a modes store. modes: (frames, chains, k + 1, 3), mode 0 the C.o.M."""
    target = Path(target)
    if modes.ndim != 4 or modes.shape[-1] != 3:
        raise StoreError(
            f"{target / MODES}: expected (frames, chains, modes, 3), got {modes.shape}"
        )
    with atomic_dir(target) as tmp:
        np.save(tmp / MODES, modes.astype(np.float32, copy=False))
        write_json(tmp / META, {**meta.to_json(), "modes": int(modes.shape[2])})
    return target


def open_modes(store: str | Path) -> tuple[np.ndarray, TrajectoryMeta]:
    """Memory-map a modes store: modes (frames, chains, k + 1, 3) float32, and its meta."""
    store = Path(store)
    meta = read_meta(store)
    count = json.loads((store / META).read_text()).get("modes")
    if count is None:
        raise StoreError(f"{store / META}: field 'modes' is missing (not a modes store?)")
    return _open_array(store / MODES, (meta.frames, meta.chains, int(count), 3)), meta


def _open_array(path: Path, expected: tuple[int, ...]) -> np.ndarray:
    if not path.is_file():
        raise StoreError(f"{path}: array file not found")
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise StoreError(f"{path}: not a readable .npy array ({exc})") from exc
    if array.shape != expected:
        raise StoreError(f"{path}: shape {array.shape} does not match meta.json {expected}")
    return array


def check_positions(positions: np.ndarray, name: str = "positions") -> np.ndarray:
    """Validate bead positions: rank 4, last axis 3, all finite. Returns the array unchanged."""
    positions = np.asarray(positions)
    if positions.ndim != 4 or positions.shape[-1] != 3:
        raise StoreError(
            f"{name}: expected shape (frames, chains, beads, 3), got {positions.shape}"
        )
    finite = np.isfinite(positions)
    if not finite.all():
        frame = int(np.argwhere(~finite)[0][0])
        raise StoreError(f"{name}: non-finite coordinate at frame {frame}")
    return positions
