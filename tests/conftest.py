"""Fixtures shared by several test modules: one torch thread, tiny complete params files, and
modes stores of exact Rouse chains at several temperatures."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from mlgle.modes import normal_modes
from mlgle.store import TrajectoryMeta, temperature_tag, write_modes
from mlgle.synthetic import rouse_chains

ROOT = Path(__file__).resolve().parents[1]

# Sizes of a tiny pipeline (seconds per stage on two cores), overlaid on the repository's
# params.yaml section by section; a test overlays its own keys on top with ``tiny_params``.
TINY_PARAMS: dict[str, dict[str, Any]] = {
    "md": {
        "temperatures": [1.0],
        "chains": 10,
        "beads": 8,
        "equilibration_steps": 2000,
        "production_steps": 8000,
        "steps_per_frame": 10,
        "restart_every": 4000,
        "ranks": 1,
    },
    "modes": {"k": 4},
    "gle": {"t_fit": 200, "bootstrap": 20},
    "train": {
        "history": 8,
        "t_train": 200,
        "t_val": 100,
        "hidden": [16, 16],
        "latent": 4,
        "epochs": 2,
        "batch_size": 64,
        "threads": 1,
    },
    "generate": {"trajectories": 12, "frames": 500},
    "evaluate": {"d_window": [100, 300], "nacf_max_lag": 50, "nacf_modes": [1, 2]},
}


def repository_params() -> dict[str, Any]:
    """The repository's params.yaml as plain data (every section)."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def write_tiny_params(
    directory: Path,
    name: str = "params.yaml",
    drop: Iterable[str] = (),
    **sections: Mapping[str, Any],
) -> Path:
    """Write ``directory/name``: a complete params file (every section of the repository's
    params.yaml) with the :data:`TINY_PARAMS` sizes, then ``sections`` overlaid key by key
    (``train={"epochs": 3}`` changes one key; ``sweep={"studies": {...}}`` replaces the studies),
    tracking into ``directory/mlflow.db``, ``budget.temperature`` (unless given) the middle of
    md.temperatures; the sections named in ``drop`` are left out."""
    directory = Path(directory)
    data = repository_params()
    uri = f"sqlite:///{directory.resolve() / 'mlflow.db'}"
    data["tracking"] = {"uri": uri, "experiment": "tests"}
    for overlay in (TINY_PARAMS, sections):
        for section, values in overlay.items():
            data[section] = {**data.get(section, {}), **values}
    temps = data["md"].get("temperatures")
    budget = data.get("budget", {})
    if (
        "temperature" in budget
        and "temperature" not in sections.get("budget", {})
        and isinstance(temps, list)
        and temps
    ):  # budget.temperature must be one of md.temperatures
        budget["temperature"] = sorted(temps)[len(temps) // 2]
    for section in drop:
        del data[section]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_params() -> Callable[..., Path]:
    """:func:`write_tiny_params`: ``tiny_params(directory, **sections) -> path``."""
    return write_tiny_params


# Friction and temperature of the Rouse chains at T (per bead, thermal energy kT).
ROUSE_LAWS: dict[str, Callable[[float], dict[str, float]]] = {
    # ζ = 1/T at kT = 1: D = kT / (N ζ) = T / N exactly.
    "inverse_friction": lambda t: {"kT": 1.0, "friction": 1.0 / t},
    # kT = T and ζ = exp(1/T): D = T exp(-1/T) / N grows with T (Arrhenius-like).
    "arrhenius": lambda t: {"kT": t, "friction": float(np.exp(1.0 / t))},
}


@pytest.fixture(scope="session")
def rouse_stores(tmp_path_factory) -> Callable[..., Path]:
    """Factory of modes stores ``<dir>/T<T>/`` of exact discrete-Rouse chains (Δt = 1), one per
    temperature, modes p = 0..k from :func:`mlgle.modes.normal_modes`:

    ``rouse_stores(temperatures, chains, beads, frames, law="inverse_friction", spring=3.0,
    seed=11, k=4) -> dir``; temperature i is sampled with seed ``seed + i`` and the friction and
    kT of ``ROUSE_LAWS[law]``. Identical requests share one directory for the session.
    """
    built: dict[tuple, Path] = {}

    def build(
        temperatures: Sequence[float],
        chains: int,
        beads: int,
        frames: int,
        law: str = "inverse_friction",
        spring: float = 3.0,
        seed: int = 11,
        k: int = 4,
    ) -> Path:
        key = (tuple(float(t) for t in temperatures), chains, beads, frames, law, spring, seed, k)
        if key not in built:
            root = tmp_path_factory.mktemp("rouse")
            for i, temperature in enumerate(key[0]):
                positions = rouse_chains(
                    chains, beads, frames, 1.0, spring=spring, seed=seed + i,
                    **ROUSE_LAWS[law](temperature),
                )  # fmt: skip
                meta = TrajectoryMeta(
                    temperature, 1.0, chains, beads, frames, source="rouse", seed=seed + i
                )
                write_modes(root / temperature_tag(temperature), normal_modes(positions, k), meta)
            built[key] = root
        return built[key]

    return build


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: the per-step tensors are small, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _evaluation_summary(t: float, d_md: float, d_ml: float, band: float, d_gle: float = 0.003):
    """The fields of an ``mlgle evaluate`` summary.json that the tables and figures read."""
    return {
        "temperature": t, "D_md": d_md, "D_md_ci95": [0.9 * d_md, 1.1 * d_md],
        "D_mlgle": d_ml, "D_mlgle_ci95": [0.95 * d_ml, 1.05 * d_ml], "D_gle": d_gle,
        "nacf_band_fraction": band,
    }  # fmt: skip


@pytest.fixture(scope="session")
def evaluation_summary() -> Callable[..., dict[str, Any]]:
    """``evaluation_summary(T, D_md, D_mlgle, nacf_band_fraction, D_gle=0.003) -> dict``: an
    evaluation summary with 95 % CIs of ±10 % (D_md) and ±5 % (D_mlgle)."""
    return _evaluation_summary


@pytest.fixture
def loto_summary() -> dict[str, Any]:
    """An ``mlgle loto evaluate`` summary at T* = 1.25 (trained on 1.0 and 1.5), both variants."""
    return {
        **_evaluation_summary(1.25, 0.004, 0.0046, 0.8),
        "trained_on": [1.0, 1.5],
        "variants": {
            "interpolate": {"D_mlgle": 0.0046, "D_mlgle_ci95": [0.0044, 0.0048], "D_gle": 0.0041},
            "refit": {"D_mlgle": 0.0038, "D_mlgle_ci95": [0.0036, 0.004], "D_gle": 0.0035},
        },
    }
