"""`mlgle import`: external files of one run -> a trajectory or modes store."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from mlgle.errors import ConfigError, ReaderError
from mlgle.md.readers.common import (
    EXTENSIONS,
    FORMATS,
    SOURCES,
    Trajectory,
)
from mlgle.md.readers.dcd import read_dcd
from mlgle.md.readers.dump import read_lammps_dump
from mlgle.md.readers.meltbr import read_meltbr
from mlgle.md.readers.netcdf import read_lammps_netcdf
from mlgle.store import TrajectoryMeta, write_modes, write_trajectory


def import_trajectory(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    format: str = "auto",
    chains: int | None = None,
    beads: int | None = None,
    dt: float,
    temperature: float,
    units: str = "lj",
) -> Path:
    """Read one run (files in time order) and write it as a store at ``out``.

    Positions go to a trajectory store (``write_trajectory``), meltBR modes to a modes store
    (``write_modes``). ``format``: 'auto' (from the extension: .dump/.lammpstrj/.txt, .dcd, .nc,
    .pt/.pth) or one of FORMATS. A first frame repeating the previous file's last time is
    dropped; frame times must then be evenly spaced. ``dt`` is the frame interval Δt in the data's
    time units (``units``); the spacing in the file's own units (MD steps for dump/DCD) is kept in
    meta.params. For meltBR, ``beads`` is the chain length N of the original melt, needed to
    invert Eq. (14); it defaults to the number of modes in the tensor (all modes kept).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ReaderError("import_trajectory: no input file given")
    if not (np.isfinite(dt) and dt > 0):
        raise ConfigError(f"--dt: the frame interval must be a positive number, got {dt}")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(
            f"--temperature: must be a positive, finite temperature (in {units} units), "
            f"got {temperature}"
        )
    fmt = _resolve_format(paths, format)
    params = {"files": [str(p) for p in paths], "format": fmt}
    if fmt == "meltbr":
        tensors = [_meltbr_part(p, chains) for p in paths]
        _check_parts_agree([m.shape[1:] for m in tensors], paths)
        modes = np.concatenate(tensors, axis=0)
        n_beads = modes.shape[2] if beads is None else beads
        if n_beads < modes.shape[2]:
            raise ReaderError(
                f"{paths[0]}: beads={n_beads} is fewer than the {modes.shape[2]} modes in the file"
            )
        meta = _meta(modes.shape, n_beads, dt, temperature, units, fmt, params)
        return write_modes(out, modes, meta)
    parts = [_read_positions(p, fmt, chains, beads) for p in paths]
    positions, times = _concatenate(parts)
    spacing = _even_spacing(parts, times)
    params |= {
        "time_unit": parts[0].time_unit,
        "first_time": float(times[0]),
        "frame_spacing": spacing,
    }
    meta = _meta(positions.shape, positions.shape[2], dt, temperature, units, fmt, params)
    return write_trajectory(out, positions, meta)


def _meta(
    shape: tuple[int, ...],
    beads: int,
    dt: float,
    temperature: float,
    units: str,
    fmt: str,
    params: dict[str, Any],
) -> TrajectoryMeta:
    """Store metadata; shape: (frames, chains, beads or modes, 3)."""
    return TrajectoryMeta(
        temperature=float(temperature),
        dt=float(dt),
        chains=int(shape[1]),
        beads=int(beads),
        frames=int(shape[0]),
        units=units,
        source=SOURCES[fmt],
        params=params,
    )


def _resolve_format(paths: Sequence[Path], fmt: str) -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise ReaderError(f"import_trajectory: format '{fmt}' is not one of {FORMATS}")
        return fmt
    for p in paths:
        if p.suffix.lower() not in EXTENSIONS:
            raise ReaderError(
                f"{p}: unknown extension '{p.suffix}': expected one of {sorted(EXTENSIONS)} "
                "or pass --format"
            )
    found = sorted({EXTENSIONS[p.suffix.lower()] for p in paths})
    if len(found) != 1:
        raise ReaderError(f"import_trajectory: files of different formats {found}")
    return found[0]


def _read_positions(path: Path, fmt: str, chains: int | None, beads: int | None) -> Trajectory:
    if fmt == "dump":
        return read_lammps_dump(path, chains, beads)
    if fmt == "netcdf":
        return read_lammps_netcdf(path, chains, beads)
    if chains is None or beads is None:
        raise ReaderError(f"{path}: DCD has no molecule ids: chains and beads must be given")
    return read_dcd(path, chains, beads)


def _meltbr_part(path: Path, chains: int | None) -> np.ndarray:
    modes = read_meltbr(path)
    if chains is not None and modes.shape[1] != chains:
        raise ReaderError(f"{path}: {modes.shape[1]} chains in the tensor, chains={chains} given")
    return modes


def _check_parts_agree(shapes: Sequence[tuple[int, ...]], paths: Sequence[Path]) -> None:
    for shape, path in zip(shapes[1:], paths[1:], strict=True):
        if shape != shapes[0]:
            raise ReaderError(f"{path}: shape {shape} differs from {paths[0]}: {shapes[0]}")


def _concatenate(parts: Sequence[Trajectory]) -> tuple[np.ndarray, np.ndarray]:
    """Join the files in order, dropping a first frame that repeats the previous last time."""
    _check_parts_agree([p.positions.shape[1:] for p in parts], [p.path for p in parts])
    keep = [slice(None)]
    for prev, part in pairwise(parts):
        start, end = part.times[0], prev.times[-1]
        tol = prev.time_tolerance + part.time_tolerance
        if start < end - tol:
            raise ReaderError(
                f"{part.path}: frame 0: time {start:g} precedes the last time {end:g} of "
                f"{prev.path}: files out of order or overlapping"
            )
        keep.append(slice(1 if start <= end + tol else 0, None))
    positions = np.concatenate([p.positions[s] for p, s in zip(parts, keep, strict=True)])
    times = np.concatenate([p.times[s] for p, s in zip(parts, keep, strict=True)])
    return positions, times


def _even_spacing(parts: Sequence[Trajectory], times: np.ndarray) -> float:
    """The common frame spacing of ``times``; raises naming the first uneven frame."""
    if times.size < 2:
        return 0.0
    gaps = np.diff(times)
    tol = 2 * max(p.time_tolerance for p in parts)
    uneven = (np.abs(gaps - gaps[0]) > tol) | (gaps <= 0)
    if uneven.any():
        k = int(np.argmax(uneven))
        names = ", ".join(str(p.path) for p in parts)
        raise ReaderError(
            f"{names}: frame {k + 1} (of the joined run): frame times are not evenly spaced: "
            f"{times[k]:g} -> {times[k + 1]:g} is {gaps[k]:g}, frame 0 -> 1 is {gaps[0]:g}"
        )
    return float(gaps[0])
