"""Leave-one-temperature-out (LOTO) study: D at a temperature the NAR model never saw (Sec. 5).

One :mod:`mlgle.nar.conditioned` model is trained on every reference temperature but one, modes
are generated at the left-out temperature T* and evaluated exactly as the per-temperature
models are (:func:`mlgle.analysis.evaluation.evaluate`: D_MD, D_ML-GLE (Eq. 35), NACF band share
(Eq. 34)). The C.o.M needs α(T*), β(T*) (Eq. 13), obtained two ways and both evaluated:

- ``interpolate``: the per-temperature fits of Eq. 27 (GLEFit on the first T_fit frames, as
  ``mlgle fit-gle``) at the training temperatures, log α² and log β² interpolated linearly in
  1/T (Arrhenius form; exact at the training temperatures);
- ``refit``: Eq. 27 solved at T* with the right-hand side's mode MSDs Σ_j ⟨Δz_j²⟩(t) taken from
  the GENERATED modes at T* and the left-hand side, the short-time C.o.M MSD at the regression
  lags, interpolated (log, linear in 1/T) from the training temperatures' first T_fit frames.

Both C.o.M variants share one Brownian path B(t), so their difference is α, β alone. Stages
(``mlgle loto train|generate|evaluate|report``) write only the paths given; the settings come
from the ``conditioned:`` section of params.yaml (:class:`mlgle.config.ConditionedConfig`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlgle.config import ConditionedConfig, Params
from mlgle.errors import ConfigError
from mlgle.store import open_modes, temperature_tag


def left_out_temperatures(params: Params, settings: ConditionedConfig) -> tuple[float, ...]:
    """``settings.leave_out``, or all interior temperatures of md.temperatures, checked."""
    chosen = settings.leave_out or tuple(sorted(params.md.temperatures)[1:-1])
    if not chosen:
        raise ConfigError(
            f"{params.source}: md.temperatures {list(params.md.temperatures)} has no interior "
            "temperature to leave out (need at least three)"
        )
    for t in chosen:
        check_left_out(params, t)
    return tuple(chosen)


def check_left_out(params: Params, temperature: float) -> tuple[float, ...]:
    """The training temperatures for leaving ``temperature`` out; it must be an interior one of
    md.temperatures (only interpolation in T is supported)."""
    temps = sorted(params.md.temperatures)
    if temperature not in temps or not temps[0] < temperature < temps[-1]:
        raise ConfigError(
            f"{params.source}: left-out temperature {temperature:g} must be an interior value of "
            f"md.temperatures {temps}"
        )
    return tuple(t for t in temps if t != temperature)


def modes_store(modes_dir: Path, temperature: float) -> tuple[np.ndarray, Any]:
    """Memory-mapped modes (frames, chains, K + 1, 3) and meta of one temperature's store."""
    path = Path(modes_dir) / temperature_tag(temperature)
    mapped, meta = open_modes(path)
    if not np.isclose(meta.temperature, temperature):
        raise ConfigError(f"{path}: store holds T = {meta.temperature:g}, expected {temperature:g}")
    return mapped, meta
