"""Local reference frames of a mode window (Sec. 3.2, Eqs. 17-19 and 24).

A window holds the last m values of one 3D mode in time order, ``window[..., -1, :] = z_{t-1}``.
Its frame R has rows e1, e2, e3 (Gram-Schmidt on z_{t-1}, z_{t-2}; handedness from z_{t-3}):

- e1 = z_{t-1} / |z_{t-1}|;
- e2 = the part of z_{t-2} orthogonal to e1, normalised (a second Gram-Schmidt pass keeps it
  orthogonal to e1 to rounding even when z_{t-2} is nearly parallel to z_{t-1});
- e3 = e1 x e2, negated when z_{t-3}·e3 < 0, so R is a rotation or a reflection and R⁻¹ = Rᵀ.

Because R(Q·window) = R(window) Qᵀ for every orthogonal Q (reflections included), the rotated
window R·window is invariant (Eq. 17) and the model's predictions are equivariant.

Degenerate windows never give NaN. With ``tol`` (default √(machine ε) of the dtype; windows are
standardised, so absolute thresholds are in units of σ_z):

- |z_{t-1}| <= tol: e1 falls back to the x axis (1, 0, 0);
- z_{t-2} collinear with e1 (its orthogonal part <= tol·max(|z_{t-2}|, tol), z_{t-2} = 0
  included): e2 is built from the coordinate axis least aligned with e1;
- z_{t-3}·e3 = 0 (z_{t-3} in the e1-e2 plane, or zero): e3 keeps the right-handed sign.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["from_frame", "rotation_frames", "to_frame"]


def _unit(v: Tensor, norm: Tensor) -> Tensor:
    """v / norm where norm > 0 (zero elsewhere; callers replace those rows)."""
    return v / torch.where(norm > 0, norm, torch.ones_like(norm))


def _reject(v: Tensor, e: Tensor) -> Tensor:
    """Part of v orthogonal to the unit vector e, both (..., 3)."""
    return v - (v * e).sum(-1, keepdim=True) * e


def rotation_frames(window: Tensor, tol: float | None = None) -> Tensor:
    """Eq. 17: frames of windows (Sec. 3.2), (..., m, 3), m >= 3 -> R (..., 3, 3), rows e1, e2, e3.

    ``tol`` sets the degeneracy thresholds described in the module docstring.
    """
    if window.ndim < 2 or window.shape[-1] != 3 or window.shape[-2] < 3:
        raise ValueError(
            f"rotation_frames: window must have shape (..., m, 3) with m >= 3, "
            f"got {tuple(window.shape)}"
        )
    if not window.is_floating_point():
        raise ValueError(f"rotation_frames: window must be floating point, got {window.dtype}")
    if tol is None:
        tol = torch.finfo(window.dtype).eps ** 0.5
    z1, z2, z3 = window[..., -1, :], window[..., -2, :], window[..., -3, :]
    eye = torch.eye(3, dtype=window.dtype, device=window.device)

    n1 = torch.linalg.vector_norm(z1, dim=-1, keepdim=True)
    e1 = torch.where(n1 > tol, _unit(z1, n1), eye[0])

    u2 = _reject(z2, e1)
    n2 = torch.linalg.vector_norm(u2, dim=-1, keepdim=True)
    floor = tol * torch.linalg.vector_norm(z2, dim=-1, keepdim=True).clamp(min=tol)
    fallback = eye[e1.abs().argmin(dim=-1)]  # coordinate axis least aligned with e1
    # Rejecting again is the second Gram-Schmidt pass (orthogonal to e1 to rounding) for u2, and
    # the first for the fallback axis.
    u2 = _reject(torch.where(n2 > floor, u2, fallback), e1)
    e2 = _unit(u2, torch.linalg.vector_norm(u2, dim=-1, keepdim=True))

    e3 = torch.linalg.cross(e1, e2, dim=-1)
    flip = (z3 * e3).sum(-1, keepdim=True) < 0
    e3 = torch.where(flip, -e3, e3)
    return torch.stack((e1, e2, e3), dim=-2)


def _check_pair(name: str, vectors: Tensor, R: Tensor) -> None:
    if vectors.ndim < 2 or vectors.shape[-1] != 3:
        raise ValueError(f"{name}: vectors must have shape (..., n, 3), got {tuple(vectors.shape)}")
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: R must have shape (..., 3, 3), got {tuple(R.shape)}")


def to_frame(vectors: Tensor, R: Tensor) -> Tensor:
    """Eq. 18: components in the frame, v̂ = R v: (..., n, 3), R (..., 3, 3) -> (..., n, 3)."""
    _check_pair("to_frame", vectors, R)
    # Rᵀ made contiguous first: the same products, but matmul then skips a slow strided path.
    return vectors @ R.transpose(-1, -2).contiguous()


def from_frame(vectors: Tensor, R: Tensor) -> Tensor:
    """Eq. 24: back to the original axes, v = Rᵀ v̂: (..., n, 3), R (..., 3, 3) -> (..., n, 3)."""
    _check_pair("from_frame", vectors, R)
    return vectors @ R
