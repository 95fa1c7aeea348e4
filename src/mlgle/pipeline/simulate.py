"""`mlgle simulate`: the reference Kremer-Grest melt at one temperature (Sec. 4.1)."""

from __future__ import annotations

from pathlib import Path

from mlgle.config import Params


def simulate(
    params: Params, temperature: float, out: Path, work_dir: Path | None, progress: bool
) -> Path:
    """Reference melt at one temperature -> trajectory store (Sec. 4.1)."""
    from mlgle.md.melt import simulate as run_melt

    return run_melt(params.md, temperature, out, work_dir=work_dir, progress=progress)
