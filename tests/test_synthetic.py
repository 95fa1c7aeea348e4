"""Exact discrete Rouse sampler: the constants of mlgle.synthetic checked three independent ways.

1. Deterministically against the bead-level model: the cosine vectors diagonalise the spring
   matrix with the stated rates, and the mode variances add up to the Boltzmann covariance.
2. Statistically against the sampled chains: mode variances, lag-1 autocorrelations, C.o.M MSD,
   bond length. Chains are independent, so the standard error (SE) of a chain-averaged quantity is
   the chain-to-chain standard deviation / sqrt(chains); every check allows 5 SE (a false failure
   has probability < 1e-6 per check under Gaussian errors) and the SE is asserted small.
3. Against an Euler-Maruyama integration of the bead Langevin equation over one frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlgle.modes import normal_modes
from mlgle.stats import msd_per_trajectory
from mlgle.synthetic import (
    rouse_chains,
    rouse_diffusion,
    rouse_mode_variance,
    rouse_relaxation_time,
)

KT, FRICTION, SPRING = 1.3, 0.8, 2.5


def _laplacian(beads: int) -> np.ndarray:
    """Free-end chain Laplacian: U = (k_s/2) xᵀ L x for bonds between neighbours."""
    bonds = np.diff(np.eye(beads), axis=0)  # (beads - 1, beads): x_{n+1} - x_n
    return bonds.T @ bonds


def _cosines(beads: int) -> np.ndarray:
    p, n = np.meshgrid(np.arange(beads), np.arange(beads), indexing="ij")
    return np.cos(p * np.pi * (n + 0.5) / beads)


def _within(estimate: np.ndarray, se: np.ndarray, theory: np.ndarray, n_se: float = 5.0) -> None:
    np.testing.assert_array_less(np.abs(estimate - theory), n_se * se)


@pytest.mark.parametrize("beads", [2, 7, 20])
def test_theory_diagonalises_the_bead_model(beads: int) -> None:
    lap = _laplacian(beads)
    c = _cosines(beads)[1:]
    p = np.arange(1, beads)
    rates = 1.0 / rouse_relaxation_time(p, beads, FRICTION, SPRING)
    # ζ dx/dt = -k_s L x: each cosine vector decays with rate 1/τ_p.
    np.testing.assert_allclose(-(SPRING / FRICTION) * c @ lap, -rates[:, None] * c, atol=1e-12)
    # x_n - X_0 = 2 Σ_p X_p c_p(n): Cov = 4 Σ_p σ_p² c_p c_pᵀ must equal (kT / k_s) L⁺.
    variance = rouse_mode_variance(p, beads, KT, SPRING)
    covariance = 4 * np.einsum("p,pn,pm->nm", variance, c, c)
    np.testing.assert_allclose(covariance, KT / SPRING * np.linalg.pinv(lap), atol=1e-12)
    # Fluctuation-dissipation per mode: 2 σ_p² / τ_p is the mode noise strength kT / (N ζ).
    np.testing.assert_allclose(2 * variance * rates, KT / (beads * FRICTION), rtol=1e-12)


@pytest.fixture(scope="module")
def chains() -> tuple[np.ndarray, float, int]:
    dt, beads = 0.4, 8
    positions = rouse_chains(100, beads, 2000, dt, KT, FRICTION, SPRING, seed=5)
    return positions, dt, beads


def test_mode_variances_and_relaxation_times(chains: tuple[np.ndarray, float, int]) -> None:
    positions, dt, beads = chains
    modes = normal_modes(positions)[:, :, 1:]  # (frames, chains, p = 1..N-1, 3)
    p = np.arange(1, beads)
    # Per-chain variance (zero mean by symmetry) and lag-1 autocorrelation of each mode.
    var_c = np.mean(modes**2, axis=(0, 3))  # (chains, modes)
    lag1_c = np.sum(modes[1:] * modes[:-1], axis=(0, 3)) / np.sum(modes[:-1] ** 2, axis=(0, 3))
    for per_chain, theory in (
        (var_c, rouse_mode_variance(p, beads, KT, SPRING)),
        (lag1_c, np.exp(-dt / rouse_relaxation_time(p, beads, FRICTION, SPRING))),
    ):
        se = per_chain.std(axis=0, ddof=1) / np.sqrt(per_chain.shape[0])
        _within(per_chain.mean(axis=0), se, theory)
    # The checks resolve the constants: variance to ~1 % and the slow mode decay to ~0.01.
    se_var = var_c.std(axis=0) / np.sqrt(var_c.shape[0])
    assert np.all(se_var < 0.02 * rouse_mode_variance(p, beads, KT, SPRING))
    assert lag1_c[:, 0].std() / np.sqrt(lag1_c.shape[0]) < 0.01


def test_center_of_mass_diffuses_with_rouse_coefficient(
    chains: tuple[np.ndarray, float, int],
) -> None:
    positions, dt, beads = chains
    lags = np.array([1, 10, 100])
    msd_c = msd_per_trajectory(positions.mean(axis=2))[lags]  # (lags, chains)
    se = msd_c.std(axis=1, ddof=1) / np.sqrt(msd_c.shape[1])
    theory = 6 * rouse_diffusion(beads, KT, FRICTION) * lags * dt
    np.testing.assert_allclose(rouse_diffusion(beads, KT, FRICTION), KT / (beads * FRICTION))
    _within(msd_c.mean(axis=1), se, theory)
    assert np.all(se < 0.05 * theory)


def test_bond_length_is_equipartition(chains: tuple[np.ndarray, float, int]) -> None:
    positions, _, _ = chains
    b2_c = np.mean(np.sum(np.diff(positions, axis=2) ** 2, axis=-1), axis=(0, 2))  # (chains,)
    se = b2_c.std(ddof=1) / np.sqrt(b2_c.size)
    _within(b2_c.mean(), se, 3 * KT / SPRING)
    assert se < 0.01 * 3 * KT / SPRING


def test_one_frame_matches_euler_maruyama_of_beads() -> None:
    """Propagate stationary chains one frame with the bead Langevin equation (small steps).

    Sizes: 4000 chains x 3 components = 12000 samples per mode: the regression slope on the start
    has SE ~ 0.01 and the residual variance a relative SE ~ 1.3 %; the Euler-Maruyama bias is
    ~ λ h / 2 < 0.6 % for the fastest mode at h = dt / 300.
    """
    n_chains, beads, dt, substeps = 4000, 6, 0.3, 300
    start = rouse_chains(n_chains, beads, 1, dt, KT, FRICTION, SPRING, seed=11)[0]
    rng = np.random.default_rng(12)
    h = dt / substeps
    x = start.copy()
    for _ in range(substeps):
        bond = np.diff(x, axis=1)
        force = np.zeros_like(x)
        force[:, :-1] += SPRING * bond
        force[:, 1:] -= SPRING * bond
        x += force * h / FRICTION + np.sqrt(2 * KT * h / FRICTION) * rng.standard_normal(x.shape)
    project = _cosines(beads) / beads
    z0 = np.einsum("pn,cnd->pcd", project, start).reshape(beads, -1)  # (modes, samples)
    z1 = np.einsum("pn,cnd->pcd", project, x).reshape(beads, -1)
    p = np.arange(1, beads)
    tau = rouse_relaxation_time(p, beads, FRICTION, SPRING)
    variance = rouse_mode_variance(p, beads, KT, SPRING)
    samples = z0.shape[1]
    slope = np.sum(z0[1:] * z1[1:], axis=1) / np.sum(z0[1:] ** 2, axis=1)
    residual = np.mean((z1[1:] - slope[:, None] * z0[1:]) ** 2, axis=1)
    _within(slope, np.sqrt(residual / np.sum(z0[1:] ** 2, axis=1)), np.exp(-dt / tau))
    expected = variance * -np.expm1(-2 * dt / tau)
    em_bias = expected * h / (2 * tau)  # Euler-Maruyama stationary variance: σ² (1 + λh/2)
    np.testing.assert_array_less(
        np.abs(residual - expected), 5 * expected * np.sqrt(2 / samples) + em_bias
    )
    com_step = np.var(z1[0] - z0[0])
    two_d_dt = 2 * rouse_diffusion(beads, KT, FRICTION) * dt
    _within(com_step, two_d_dt * np.sqrt(2 / samples), two_d_dt)


def test_seed_and_box() -> None:
    a = rouse_chains(3, 4, 5, 0.1, seed=1, box=10.0)
    np.testing.assert_array_equal(a, rouse_chains(3, 4, 5, 0.1, seed=1, box=10.0))
    assert not np.allclose(a, rouse_chains(3, 4, 5, 0.1, seed=2, box=10.0))
    com0 = a[0].mean(axis=1)
    assert np.all((com0 >= 0) & (com0 < 10.0))
    np.testing.assert_allclose(rouse_chains(3, 4, 5, 0.1, seed=1)[0].mean(axis=1), 0, atol=1e-12)
    single = rouse_chains(2, 1, 6, 0.1)
    assert single.shape == (6, 2, 1, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chains": 0}, "chains"),
        ({"beads": 2.5}, "beads"),
        ({"frames": -1}, "frames"),
        ({"dt": 0.0}, "dt"),
        ({"kT": -1.0}, "kT"),
        ({"friction": np.nan}, "friction"),
        ({"spring": 0.0}, "spring"),
        ({"box": -1.0}, "box"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    args = {"chains": 2, "beads": 3, "frames": 4, "dt": 0.1} | kwargs
    with pytest.raises(ValueError, match=f"^{message}:"):
        rouse_chains(**args)


def test_theory_rejects_bad_modes() -> None:
    for p in (0, 5, 1.5):
        with pytest.raises(ValueError, match="p: expected integer mode numbers"):
            rouse_mode_variance(p, beads=5)
    with pytest.raises(ValueError, match="beads"):
        rouse_relaxation_time(1, beads=1)
