"""LAMMPS NetCDF dumps (AMBER convention) -> unwrapped positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlgle.errors import ReaderError
from mlgle.md.readers.common import (
    Trajectory,
    chain_order,
    chain_shape,
)


def read_lammps_netcdf(
    path: str | Path, chains: int | None = None, beads: int | None = None
) -> Trajectory:
    """Read a LAMMPS NetCDF dump (AMBER convention) into positions (frames, chains, beads, 3).

    Variables: ``unwrapped_coordinates`` (frame, atom, spatial), or ``coordinates`` with image
    flags ``ix iy iz`` (frame, atom) and ``cell_lengths`` (frame, 3); ``time`` (frame); ``id`` and
    ``mol`` (frame, atom) if present: without ``id`` atoms keep the file order, without ``mol``
    chains and beads are required and atoms are taken chain-major. Unwritten (fill) values, as
    in a file cut short, raise naming the frame.
    """
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        with netCDF4.Dataset(path) as ds:
            data = {name: _nc_values(path, ds, name) for name in _nc_needed(path, ds)}
            time_unit = str(getattr(ds.variables["time"], "units", "time"))
    except OSError as exc:
        raise ReaderError(f"{path}: not a readable NetCDF file ({exc})") from exc
    stored = data.pop("time")
    times = stored.astype(np.float64)
    eps = np.finfo(stored.dtype).eps if stored.dtype.kind == "f" else 0.0
    xyz = _nc_positions(path, data)
    frames, natoms = xyz.shape[:2]
    if frames == 0:
        raise ReaderError(f"{path}: no frame")
    if "mol" not in data and (chains is None or beads is None):
        raise ReaderError(
            f"{path}: variable 'mol' is missing: pass chains and beads (atoms taken chain-major)"
        )
    if chains is not None and beads is not None and chains * beads != natoms:
        raise ReaderError(
            f"{path}: frame 0: {natoms} atoms is not chains x beads = {chains} x {beads}"
        )
    ids = data.get("id", np.broadcast_to(np.arange(natoms, dtype=np.float64), (frames, natoms)))
    mols = data.get("mol", np.zeros((frames, natoms)))
    order, ref = chain_order(path, ids.astype(np.float64), mols.astype(np.float64), 0, None)
    shape = chain_shape(path, ref[1], chains, beads) if "mol" in data else (chains, beads)
    positions = np.take_along_axis(xyz, order[..., None], axis=1).astype(np.float32)
    tolerance = 4 * float(eps) * float(np.abs(times).max())
    return Trajectory(
        positions.reshape(frames, *shape, 3), times, time_unit, path, "lammps-netcdf", tolerance
    )


def _nc_needed(path: Path, ds: Any) -> list[str]:
    names = set(ds.variables)
    if "time" not in names:
        raise ReaderError(f"{path}: variable 'time' (frame) is missing")
    optional = [n for n in ("id", "mol") if n in names]
    if "unwrapped_coordinates" in names:
        return ["time", "unwrapped_coordinates", *optional]
    if "coordinates" in names:
        flags = [n for n in ("ix", "iy", "iz", "cell_lengths") if n not in names]
        if flags:
            raise ReaderError(
                f"{path}: frame 0: wrapped 'coordinates' without {flags}: positions cannot be "
                f"unwrapped; dump 'xu yu zu' (variable 'unwrapped_coordinates') or add 'ix iy iz'"
            )
        return ["time", "coordinates", "ix", "iy", "iz", "cell_lengths", *optional]
    raise ReaderError(
        f"{path}: variable 'unwrapped_coordinates' (or 'coordinates' + 'ix iy iz') is missing; "
        f"variables: {sorted(names)}"
    )


def _nc_values(path: Path, ds: Any, name: str) -> np.ndarray:
    """A variable as an array; fill (unwritten) or non-finite values raise naming the frame."""
    values = ds.variables[name][:]
    unwritten = np.ma.getmaskarray(values)
    array = np.ma.getdata(values)
    bad = unwritten | (~np.isfinite(array) if array.dtype.kind == "f" else False)
    if bad.any():
        k = int(np.argwhere(bad)[0][0])
        what = "unwritten (fill) values: file cut short?" if unwritten.any() else "NaN or inf"
        raise ReaderError(f"{path}: frame {k}: variable '{name}' holds {what}")
    return np.asarray(array)


def _nc_positions(path: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    """Unwrapped (frames, atoms, 3) float64 from the NetCDF variables."""
    if "unwrapped_coordinates" in data:
        xyz = data.pop("unwrapped_coordinates").astype(np.float64)
    else:
        image = np.stack([data.pop(n) for n in ("ix", "iy", "iz")], axis=-1)
        xyz = data.pop("coordinates") + image * data.pop("cell_lengths")[:, None, :]
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ReaderError(f"{path}: coordinates have shape {xyz.shape}, not (frame, atom, 3)")
    return xyz
