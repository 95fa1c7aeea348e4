"""Shared by every figure: the seaborn theme, the Agg backend, units and the atomic PNG writer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import seaborn as sns

from mlgle.store import write_file

sns.set_theme(context="paper", style="ticks", palette="colorblind")
UNITS = "reduced LJ units"


def save(fig: plt.Figure, path: str | Path) -> Path:
    """Write a figure atomically (see :func:`mlgle.store.write_file`) and close it."""
    path = Path(path)
    try:
        write_file(
            path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:], dpi=130, bbox_inches="tight")
        )
    finally:
        plt.close(fig)
    return path
