"""Synthetic mode data and a tiny training config shared by the NAR tests."""

from __future__ import annotations

import numpy as np

from mlgle.config import TrainConfig

TINY = TrainConfig(
    history=4,
    t_train=40,
    t_val=20,
    hidden=(16, 16),
    latent=4,
    batch_size=32,
    lr=3e-3,
    epochs=3,
    patience=0,
    threads=1,
    seed=11,
)


def stationary_ar1(a, sigma, frames: int, chains: int, seed: int) -> np.ndarray:
    """Stationary isotropic 3D AR(1) per mode, z_t = a z_{t-1} + √(1-a²) σ ξ: (frames, chains,
    k, 3) with ACF a^t and variance σ² per component (a, sigma: (k,))."""
    a, sigma = np.asarray(a, dtype=float), np.asarray(sigma, dtype=float)
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(frames, chains, a.size, 3)) * (np.sqrt(1 - a**2) * sigma)[:, None]
    z = np.empty_like(noise)
    z[0] = rng.normal(size=(chains, a.size, 3)) * sigma[:, None]
    for t in range(1, frames):  # inherently sequential
        z[t] = a[:, None] * z[t - 1] + noise[t]
    return z
