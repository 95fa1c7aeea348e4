"""`mlgle reconstruct`: generated modes -> bead positions (Eq. 14) as XYZ."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgle.store import (
    write_text,
)


def reconstruct(generated: Path, beads: int, out: Path, every: int, chains: int) -> Path:
    """Generated modes -> bead positions with k modes (Eq. 14, Fig. 3) as an XYZ file.

    The C.o.M (mode 0) comes from ``com.npy``; ``every`` keeps one frame in that many and
    ``chains`` limits the chains written. OVITO and VMD read the result.
    """
    from mlgle.modes import positions_from_modes

    gen = np.load(generated / "modes.npy", mmap_mode="r")[::every, :chains]
    com = np.load(generated / "com.npy", mmap_mode="r")[::every, :chains]
    modes = np.concatenate([com[:, :, None], gen], axis=2).astype(np.float64)
    positions = positions_from_modes(modes, beads)
    frames, n = positions.shape[:2]
    lines: list[str] = []
    for f in range(frames):
        lines.append(f"{n * beads}")
        lines.append(f"frame {f * every} reconstructed from {modes.shape[2]} modes (Eq. 14)")
        atoms = positions[f].reshape(-1, 3)
        lines.extend(f"C {x:.5f} {y:.5f} {z:.5f}" for x, y, z in atoms)
    write_text(out, "\n".join(lines) + "\n")
    return out
