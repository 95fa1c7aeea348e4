"""Rouse normal modes of bead chains (Eqs. 14-15) and their inverse.

Convention (DESIGN.md): for a chain of N beads x_0 .. x_{N-1},

    X_p = (1/N) Σ_{n=0}^{N-1} x_n cos(pπ(n+½)/N),      p = 0 .. N-1,
    x_n = X_0 + 2 Σ_{p=1}^{N-1} X_p cos(pπ(n+½)/N)       (Eq. 14),

so X_0 is the centre of mass. X_p equals ``scipy.fft.dct(x, type=2) / (2N)`` along the bead axis
and the inverse is ``scipy.fft.idct`` (type 2, i.e. a DCT-III). The paper's Eq. 15 writes the same
transform with another index placement and normalisation; this module is the single convention of
the project. Arrays are (..., beads, 3) with any leading axes, in particular the contract shapes
(frames, chains, beads, 3) <-> (frames, chains, modes, 3). Input of any float dtype is computed and
returned as float64.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

_BEAD_AXIS = -2


def _check_chains(x: np.ndarray, name: str, axis_name: str) -> np.ndarray:
    """float64 view/copy of ``x`` after checking shape (..., n, 3), n >= 1, and finiteness."""
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-1] != 3 or x.shape[_BEAD_AXIS] < 1:
        raise ValueError(
            f"{name}: expected shape (frames, chains, {axis_name}, 3) (any leading axes, last "
            f"axis 3, at least one {axis_name[:-1]}), got {x.shape}"
        )
    x = x.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{name}: non-finite value at index {index} of shape {x.shape}")
    return x


def normal_modes(positions: np.ndarray, k: int | None = None) -> np.ndarray:
    """Eq. 15: Rouse normal modes X_p; index 0 is the C.o.M.

    positions: (frames, chains, beads, 3) (any leading axes) -> (frames, chains, beads, 3) float64,
    or (frames, chains, k + 1, 3) with only p = 0 .. k when ``k`` is given (0 <= k < beads).
    """
    x = _check_chains(positions, "positions", "beads")
    beads = x.shape[_BEAD_AXIS]
    if k is not None and not 0 <= k < beads:
        raise ValueError(f"k: expected 0 <= k < beads ({beads}), got {k}")
    modes = scipy.fft.dct(x, type=2, axis=_BEAD_AXIS) / (2 * beads)
    return modes if k is None else modes[..., : k + 1, :]


def positions_from_modes(modes: np.ndarray, beads: int) -> np.ndarray:
    """Eq. 14: bead positions x_n = X_0 + 2 Σ_{p=1}^{K-1} X_p cos(pπ(n+½)/N).

    modes: (frames, chains, K, 3) holding p = 0 .. K-1 with K <= beads -> (frames, chains, beads, 3)
    float64. With K < beads the missing fast modes are taken as zero: a smoothed chain (Fig. 3);
    with K == beads the inversion of ``normal_modes`` is exact.
    """
    z = _check_chains(modes, "modes", "modes")
    n_modes = z.shape[_BEAD_AXIS]
    if not isinstance(beads, int | np.integer) or not n_modes <= beads:
        raise ValueError(
            f"beads: expected an integer >= the number of modes ({n_modes}) in modes of shape "
            f"{z.shape}, got {beads}"
        )
    if n_modes < beads:
        pad = [(0, 0)] * z.ndim
        pad[_BEAD_AXIS] = (0, beads - n_modes)
        z = np.pad(z, pad)
    return scipy.fft.idct(z * (2 * beads), type=2, axis=_BEAD_AXIS, overwrite_x=True)


def center_of_mass(positions: np.ndarray) -> np.ndarray:
    """Centre of mass of each chain, equal bead masses.

    positions: (frames, chains, beads, 3) -> (frames, chains, 3) float64.
    """
    return _check_chains(positions, "positions", "beads").mean(axis=_BEAD_AXIS)
