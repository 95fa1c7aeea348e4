"""A study's MD references: D_MD (Eq. 35) per temperature, the m heuristic, the fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlgle import stats
from mlgle.config import Params, StudySpec
from mlgle.errors import SweepError
from mlgle.store import open_modes, read_meta, temperature_tag

_HEURISTIC_DROP = 0.8


@dataclass(frozen=True)
class Reference:
    """One temperature's modes store and D_MD (Eq. 35) with its Student-t 95 % CI over chains."""

    temperature: float
    store: str
    dt: float
    frames: int
    modes: int
    d_md: float
    d_md_ci95: tuple[float, float]

    @property
    def tag(self) -> str:
        return temperature_tag(self.temperature)


def training_temperature(params: Params, spec: StudySpec) -> float:
    """The study's ``temperature`` or the middle of ``md.temperatures`` (sorted)."""
    temps = sorted(params.md.temperatures)
    if spec.temperature is None:
        return temps[len(temps) // 2]
    if spec.temperature not in temps:
        raise SweepError(
            f"sweep.studies.{spec.name}.temperature: {spec.temperature} is not in "
            f"md.temperatures {temps}"
        )
    return spec.temperature


def md_references(
    params: Params, modes_dir: Path, temperatures: Sequence[float]
) -> tuple[Reference, ...]:
    """D_MD of each ``modes_dir/T<T>`` store from its full C.o.M run over evaluate.d_window."""
    t1, t2 = params.evaluate.d_window
    out = []
    for temperature in temperatures:
        store = Path(modes_dir) / temperature_tag(temperature)
        if not store.is_dir():
            raise SweepError(
                f"{store}: modes store for T = {temperature} not found "
                "(run `dvc repro modes` or pass --modes)"
            )
        mapped, meta = open_modes(store)
        if t2 > meta.frames - 1:
            raise SweepError(
                f"evaluate.d_window [{t1}, {t2}] needs more than the "
                f"{meta.frames} frames of {store}"
            )
        com = np.asarray(mapped[:, :, 0], dtype=np.float64)
        d = stats.com_diffusion(com, meta.dt, (t1, t2))
        out.append(
            Reference(
                float(temperature),
                str(store),
                float(meta.dt),
                int(meta.frames),
                int(mapped.shape[2]) - 1,
                d.value,
                tuple(d.ci95),
            )
        )
    return tuple(out)


def nacf_drop_lag(mode: np.ndarray, level: float = _HEURISTIC_DROP) -> int | None:
    """First lag (frames) where the NACF of one mode falls below ``level`` (the paper's m rule).

    mode: (frames, chains, 3), e.g. mode 1 of the MD run. None if it never does.
    """
    below = np.flatnonzero(stats.acf(np.asarray(mode, dtype=np.float64)) < level)
    return int(below[0]) if below.size else None


def fingerprint(params: Params, spec: StudySpec, refs: Sequence[Reference]) -> str:
    """Hash of everything the trials depend on, so a changed input starts a fresh study."""
    payload = {
        "study": spec.raw,
        "seed": params.sweep.seed,
        "gle": dataclasses.asdict(params.gle),
        "gle_points": params.gle_points(),
        "d_window": params.evaluate.d_window,
        "stores": [read_meta(r.store).to_json() for r in refs],
    }
    if spec.objective == "train":
        payload |= {"train": dataclasses.asdict(params.train), "generate": params.generate.seed}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]
