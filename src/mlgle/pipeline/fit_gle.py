"""`mlgle fit-gle`: α, β of the GLE (Eqs. 26-27) on the first T_fit frames, D_GLE with a CI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlgle.config import Params
from mlgle.errors import ConfigError
from mlgle.store import gle_json, read_modes, write_json

if TYPE_CHECKING:
    import numpy as np

    from mlgle.gle import GLEModel


def fit_gle(params: Params, modes_store: Path, out: Path) -> dict:
    """GLE fit on the first T_fit frames (Eqs. 26-27), with a bootstrap CI of D_GLE over chains.

    Writes ``out`` (JSON): α, β, D_GLE, dt, points, k (:func:`mlgle.store.read_gle` reads them
    back), the temperature, the CI, T_fit and the units.
    """
    from mlgle.gle import GLEFit, bootstrap_diffusion

    z, meta = read_modes(modes_store)
    t_fit, k = params.gle.t_fit, params.slow_modes(z.shape[2] - 1)
    if t_fit > meta.frames:
        raise ConfigError(
            f"{params.source}: gle.t_fit = {t_fit} exceeds the {meta.frames} frames of "
            f"{modes_store}"
        )
    com, slow = z[:t_fit, :, 0], z[:t_fit, :, 1 : k + 1]
    points = params.gle_points()
    model = GLEFit(points=points, k=k).fit(com, slow, meta.dt)
    _check_not_degenerate(params, model, com, modes_store)
    lo, hi = bootstrap_diffusion(com, slow, meta.dt, points, params.gle.bootstrap, params.gle.seed)
    result = {
        "temperature": meta.temperature,
        **gle_json(model),
        "D_gle_ci95": [lo, hi],
        "t_fit": t_fit,
        "units": f"{meta.units}: length^2 / time",
    }
    write_json(out, result)
    return result


_DEGENERATE = 1e-6
"""Share of the C.o.M MSD at the longest lag below which the diffusive term α² t counts as 0."""


def _check_not_degenerate(
    params: Params, model: GLEModel, com: np.ndarray, modes_store: Path
) -> None:
    """ConfigError if α ≈ 0: the lags are too short to see the C.o.M diffuse (D_GLE = 0)."""
    from mlgle.gle import com_msd_1d

    lag = max(model.points)
    msd = float(com_msd_1d(com, [lag])[0])
    if model.alpha**2 * lag * model.dt > _DEGENERATE * msd:
        return
    lags = list(model.points)
    where = (
        f"gle.points = {lags}"
        if params.gle.points
        else f"gle.points (unset: {lags} from train.history = {params.train.history})"
    )
    raise ConfigError(
        f"{params.source}: degenerate GLE fit on {modes_store}: α = 0 (D_GLE = 0) at the lags "
        f"of {where}: the slow modes alone explain the C.o.M MSD there; set gle.points to "
        f"longer lags (< gle.t_fit = {params.gle.t_fit}) or raise train.history"
    )
