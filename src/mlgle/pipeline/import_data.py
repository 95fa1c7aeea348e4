"""`mlgle import`: an external trajectory (dump, DCD, NetCDF, meltBR) into a store (Sec. 4.2)."""

from __future__ import annotations

from pathlib import Path


def import_data(
    paths: list[Path],
    out: Path,
    fmt: str,
    dt: float,
    temperature: float,
    chains: int | None,
    beads: int | None,
    units: str,
) -> Path:
    """External trajectory (LAMMPS dump, DCD, NetCDF, meltBR) -> store."""
    from mlgle.md.readers.importer import import_trajectory

    return import_trajectory(
        paths,
        out,
        format=fmt,
        chains=chains,
        beads=beads,
        dt=dt,
        temperature=temperature,
        units=units,
    )
