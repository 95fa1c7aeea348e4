"""Shared by the reliability tests: run ``mlgle`` in-process and check its stderr, and list what
a failed run may have left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.cli import main
from mlgle.modes import normal_modes
from mlgle.store import TrajectoryMeta, write_modes, write_trajectory
from mlgle.synthetic import rouse_chains

LEFTOVERS = (".tmp", ".lock", ".old-", ".stale-")


def run(argv: list[str], capsys) -> tuple[int, list[str]]:
    """``mlgle argv`` -> (exit code, stderr lines); no traceback may be printed."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err.splitlines()


def error_line(argv: list[str], capsys, stage: str) -> str:
    """Run ``argv``, expecting exit code 2 and exactly one ``mlgle <stage>: error:`` line."""
    code, lines = run(argv, capsys)
    assert code == 2, lines
    (line,) = lines
    assert line.startswith(f"mlgle {stage}: error: "), line
    return line


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones too) -> its bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def leftovers(root: Path) -> list[str]:
    """Temporary, lock, replaced or set-aside files under ``root``."""
    return [str(p) for p in root.rglob("*") if any(m in p.name for m in LEFTOVERS)]


def rouse_positions(chains: int = 16, beads: int = 6, frames: int = 600) -> np.ndarray:
    return rouse_chains(chains, beads, frames, 1.0, spring=3.0, seed=11, kT=1.0, friction=1.0)


def trajectory_store(path: Path, frames: int = 600) -> Path:
    """A trajectory store of exact Rouse chains (16 x 6, Δt = 1) at ``path``."""
    positions = rouse_positions(frames=frames)
    meta = TrajectoryMeta(1.0, 1.0, 16, 6, frames, source="rouse", seed=11)
    return write_trajectory(path, positions, meta)


def modes_store(path: Path, frames: int = 600, k: int = 4) -> Path:
    """A modes store p = 0..k of the chains of :func:`trajectory_store`."""
    positions = rouse_positions(frames=frames)
    meta = TrajectoryMeta(1.0, 1.0, 16, 6, frames, source="rouse", seed=11)
    return write_modes(path, normal_modes(positions, k), meta)
