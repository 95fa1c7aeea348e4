"""Sliding windows of mode trajectories for NAR training (Secs. 3.1-3.2, 4.2).

Modes arrive in physical units as ``(frames, chains, k, 3)``. Each mode j is standardised by a
SCALAR σ_z,j (RMS over components, chains and training frames; the mean is zero by symmetry) and
its increments by a scalar σ_Δz,j, so that rotations commute with standardisation. A window for
the target time t holds z_{t-m}, ..., z_{t-1} in time order; the target is Δz_t = z_t - z_{t-1}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mlgle.nar.frames import rotation_frames, to_frame


def _check_modes(modes: np.ndarray, name: str = "modes") -> np.ndarray:
    """Return ``modes`` as an array after checking the ``(frames, chains, k, 3)`` layout."""
    modes = np.asarray(modes)
    if modes.ndim != 4 or modes.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (frames, chains, k, 3), got {modes.shape}")
    if not np.issubdtype(modes.dtype, np.floating):
        raise ValueError(f"{name}: expected a floating-point array, got dtype {modes.dtype}")
    return modes


@dataclass(frozen=True, eq=False)
class Standardisation:
    """Scalar per-mode scales of Sec. 4.2: ẑ = z / σ_z, Δẑ = Δz / σ_Δz.

    ``sigma_z`` and ``sigma_dz`` are read-only float64 arrays of shape ``(k,)``.
    """

    sigma_z: np.ndarray
    sigma_dz: np.ndarray

    def __post_init__(self) -> None:
        for name in ("sigma_z", "sigma_dz"):
            value = np.array(getattr(self, name), dtype=np.float64)
            if value.ndim != 1 or not np.all(np.isfinite(value)) or not np.all(value > 0):
                raise ValueError(
                    f"Standardisation.{name}: expected a 1-D array of finite positive scales, "
                    f"got {value!r}"
                )
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        if self.sigma_z.shape != self.sigma_dz.shape:
            raise ValueError(
                f"Standardisation: sigma_z {self.sigma_z.shape} and sigma_dz "
                f"{self.sigma_dz.shape} must have the same shape (k,)"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Standardisation):
            return NotImplemented
        return np.array_equal(self.sigma_z, other.sigma_z) and np.array_equal(
            self.sigma_dz, other.sigma_dz
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def modes(self) -> int:
        """Number of modes k."""
        return self.sigma_z.shape[0]

    @property
    def ratio(self) -> np.ndarray:
        """Eq. 25: σ_Δz / σ_z per mode, ``(k,)``: the integration factor of Eq. 25."""
        return self.sigma_dz / self.sigma_z

    @classmethod
    def from_training(cls, modes: np.ndarray) -> Standardisation:
        """Scales from the training span ``modes`` ``(frames, chains, k, 3)`` only (Sec. 4.2).

        σ_z,j² = mean of z_j² over frames, chains and components; σ_Δz,j² likewise for
        Δz_t = z_{t+1} - z_t over consecutive training frames. Zero scales are errors.
        """
        modes = _check_modes(modes)
        if modes.shape[0] < 2:
            raise ValueError(
                f"modes: the training span needs at least 2 frames for σ_Δz, got {modes.shape[0]}"
            )
        z = modes.astype(np.float64, copy=False)
        sigma_z = np.sqrt(np.mean(z**2, axis=(0, 1, 3)))
        sigma_dz = np.sqrt(np.mean(np.diff(z, axis=0) ** 2, axis=(0, 1, 3)))
        for name, value in (("σ_z", sigma_z), ("σ_Δz", sigma_dz)):
            bad = np.flatnonzero(~(value > 0) | ~np.isfinite(value))
            if bad.size:
                raise ValueError(
                    f"modes: {name} is zero or not finite for mode index(es) {bad.tolist()} "
                    "of the training span; constant or non-finite data cannot be standardised"
                )
        return cls(sigma_z, sigma_dz)

    def standardise(self, z: np.ndarray) -> np.ndarray:
        """ẑ = z / σ_z for ``z`` ``(..., k, 3)``."""
        return np.asarray(z) / self.sigma_z[:, None]

    def destandardise(self, z_hat: np.ndarray) -> np.ndarray:
        """z = σ_z ẑ for ``z_hat`` ``(..., k, 3)``."""
        return np.asarray(z_hat) * self.sigma_z[:, None]

    def standardise_increment(self, dz: np.ndarray) -> np.ndarray:
        """Δẑ = Δz / σ_Δz for ``dz`` ``(..., k, 3)``."""
        return np.asarray(dz) / self.sigma_dz[:, None]

    def destandardise_increment(self, dz_hat: np.ndarray) -> np.ndarray:
        """Δz = σ_Δz Δẑ for ``dz_hat`` ``(..., k, 3)``."""
        return np.asarray(dz_hat) * self.sigma_dz[:, None]

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for JSON or ``torch.save(weights_only=True)``."""
        return {"sigma_z": self.sigma_z.tolist(), "sigma_dz": self.sigma_dz.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standardisation:
        """Inverse of :meth:`to_dict`; missing keys are errors naming the key."""
        try:
            return cls(np.asarray(data["sigma_z"]), np.asarray(data["sigma_dz"]))
        except KeyError as exc:
            raise ValueError(f"Standardisation.from_dict: missing key {exc.args[0]!r}") from exc


def sliding_windows(z: np.ndarray, history: int) -> tuple[np.ndarray, np.ndarray]:
    """All lag-1 windows of length m = ``history`` and their target increments (Sec. 4.2).

    ``z`` ``(frames, chains, k, 3)`` -> ``windows`` ``(frames - m, chains, k, m, 3)``, a read-only
    strided view of ``z`` (no copy), whose entry i holds z_{i..i+m-1} for target time t = i + m;
    ``targets`` ``(frames - m, chains, k, 3)`` with targets[i] = z_{i+m} - z_{i+m-1}.
    """
    z = _check_modes(z, "z")
    if history < 1:
        raise ValueError(f"history: expected m >= 1, got {history}")
    if z.shape[0] <= history:
        raise ValueError(
            f"z: {z.shape[0]} frames leave no window of history m = {history} with a target "
            f"(need at least {history + 1} frames)"
        )
    view = np.lib.stride_tricks.sliding_window_view(z, history, axis=0)
    windows = view[:-1].swapaxes(-1, -2)
    targets = z[history:] - z[history - 1 : -1]
    return windows, targets


def split_modes(modes: np.ndarray, t_train: int, t_val: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint spans (views) of ``modes`` ``(frames, chains, k, 3)``: frames [0, t_train) for
    training and [t_train, t_train + t_val) for validation (Sec. 4.2)."""
    modes = _check_modes(modes)
    if t_train < 1:
        raise ValueError(f"t_train: expected a positive number of frames, got {t_train}")
    if t_val < 0:
        raise ValueError(f"t_val: expected a non-negative number of frames, got {t_val}")
    frames = modes.shape[0]
    if frames < t_train + t_val:
        raise ValueError(
            f"modes: {frames} frames are too few for t_train ({t_train}) + t_val ({t_val}) = "
            f"{t_train + t_val} frames"
        )
    return modes[:t_train], modes[t_train : t_train + t_val]


class WindowDataset:
    """Rotated, standardised windows of one span, gathered for all k modes at once.

    Sample s indexes the (time, chain) pair (s // chains, s % chains); its window holds the
    span's frames [t, t + m) and its target is the increment from frame t + m - 1 to t + m, so
    every window lies inside the span.
    """

    def __init__(
        self,
        modes: np.ndarray,
        standardisation: Standardisation,
        history: int,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """``modes`` ``(frames, chains, k, 3)`` in physical units, one span (train or val)."""
        modes = _check_modes(modes)
        if modes.shape[2] != standardisation.modes:
            raise ValueError(
                f"modes: {modes.shape[2]} modes but the standardisation has {standardisation.modes}"
            )
        if history < 3:
            raise ValueError(f"history: the rotation frame needs m >= 3, got {history}")
        frames, chains = modes.shape[:2]
        if frames <= history:
            raise ValueError(
                f"modes: a span of {frames} frames has no window of history m = {history} "
                f"(need at least {history + 1} frames)"
            )
        z = modes.astype(np.float64, copy=False)
        z_hat = standardisation.standardise(z)
        dz_hat = standardisation.standardise_increment(np.diff(z, axis=0))
        # (k, chains, frames, 3): a gather then yields (k, batch, m, 3) contiguous.
        self._z = torch.as_tensor(z_hat.transpose(2, 1, 0, 3), dtype=dtype).contiguous()
        self._dz = torch.as_tensor(dz_hat.transpose(2, 1, 0, 3), dtype=dtype).contiguous()
        self._offsets = torch.arange(3 * history)  # a window's values, time-major
        self.history = history
        self.modes = modes.shape[2]
        self.chains = chains
        self.frames = frames
        self.dtype = dtype
        self._rotated: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        """Number of samples, (frames - m) * chains."""
        return (self.frames - self.history) * self.chains

    @property
    def rotated_nbytes(self) -> int:
        """Bytes :meth:`precompute` keeps: every sample's x̂ and target, (k, samples, 3m + 3)."""
        return self.modes * len(self) * (3 * self.history + 3) * self._z.element_size()

    def precompute(self, chunk: int = 8192) -> None:
        """Rotate every window once and keep x̂ ``(k, samples, 3m)`` and the rotated target
        ``(k, samples, 3)`` (:attr:`rotated_nbytes`), so that :meth:`batch` is one gather.

        The values are those :meth:`batch` computes on the fly, bit for bit (each window's frame
        and rotation depend on that window only); training reads every window once per epoch,
        so this pays off from the second epoch on.
        """
        if self._rotated is not None:
            return
        x = torch.empty((self.modes, len(self), 3 * self.history), dtype=self.dtype)
        y = torch.empty((self.modes, len(self), 3), dtype=self.dtype)
        for start in range(0, len(self), chunk):
            stop = min(start + chunk, len(self))
            x[:, start:stop], y[:, start:stop] = self.batch(torch.arange(start, stop))
        self._rotated = (x, y)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for the samples ``indices`` ``(batch,)`` (Eqs. 18-19).

        Returns x̂ ``(k, batch, 3m)``, the window rotated into its own frame and flattened
        time-major, and the rotated standardised increment ``(k, batch, 3)``.
        """
        indices = torch.as_tensor(indices, dtype=torch.long)
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= len(self)):
            raise IndexError(f"indices: expected sample indices in [0, {len(self)})")
        if self._rotated is not None:
            x_all, y_all = self._rotated
            return x_all.index_select(1, indices), y_all.index_select(1, indices)
        start = indices // self.chains
        chain = indices % self.chains
        # One index_select over the flattened (chains, frames, 3) axes gathers every window's 3m
        # contiguous values: the same copy as advanced indexing, ~5x faster.
        first = (chain * self.frames + start) * 3
        flat = (first[:, None] + self._offsets).reshape(-1)
        window = self._z.view(self.modes, -1).index_select(1, flat)
        window = window.view(self.modes, -1, self.history, 3)  # (k, batch, m, 3)
        target = self._dz[:, chain, start + self.history - 1]  # (k, batch, 3)
        rotation = rotation_frames(window)
        x_hat = to_frame(window, rotation).reshape(self.modes, -1, 3 * self.history)
        target_hat = to_frame(target[:, :, None, :], rotation)[:, :, 0, :]
        return x_hat, target_hat
