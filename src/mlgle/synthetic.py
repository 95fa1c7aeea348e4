"""Exact sampling of the discrete Rouse model: phantom bead-spring chains with known answers.

Model. N beads per chain, spring energy U = (k_s/2) Σ_{n=0}^{N-2} (x_{n+1} - x_n)², bead friction
ζ, overdamped Langevin dynamics per Cartesian component

    ζ dx/dt = -k_s L x + f(t),   ⟨f_n(t) f_m(t')⟩ = 2 ζ kT δ_nm δ(t - t'),

with L the free-end (path-graph) Laplacian, L = tridiag(-1, 2, -1) with L_00 = L_{N-1,N-1} = 1.

Derivation of the constants. The cosine vectors c_p(n) = cos(pπ(n+½)/N) are the eigenvectors of L,
L c_p = μ_p c_p with μ_p = 4 sin²(pπ/(2N)) (insert c_p and use cos(a+b) + cos(a-b) = 2 cos a cos b;
the half-integer phase makes the free-end rows hold too), and Σ_n c_p(n) c_q(n) = (N/2) δ_pq for
p >= 1 (N for p = q = 0). Projecting with X_p = (1/N) Σ_n x_n c_p(n) (the convention of
``mlgle.modes``) and using the symmetry of L:

    dX_p/dt = -(k_s μ_p / ζ) X_p + g_p(t),   g_p = (1/(N ζ)) Σ_n c_p(n) f_n,
    ⟨g_p(t) g_q(t')⟩ = (2 ζ kT / (N² ζ²)) Σ_n c_p(n) c_q(n) δ(t - t') = (kT / (N ζ)) δ_pq δ(t - t')

for p, q >= 1. Hence the modes are independent Ornstein-Uhlenbeck processes with

    relaxation rate   λ_p = k_s μ_p / ζ = (4 k_s / ζ) sin²(pπ/(2N)),   τ_p = 1/λ_p,
    stationary var    σ_p² = (kT / (2 N ζ)) / λ_p = kT / (2 N k_s · 4 sin²(pπ/(2N)))

per Cartesian component. For p = 0, ⟨g_0 g_0⟩ = 2 kT/(N ζ): the C.o.M is Brownian with
D = kT / (N ζ). Checks: Σ_p 4 σ_p² c_p c_pᵀ = (kT/k_s) L⁺ (the Boltzmann covariance of the internal
coordinates), and every bond is an independent harmonic degree of freedom, ⟨b²⟩ = 3 kT / k_s.

Sampling. Each OU mode is advanced exactly, X(t+Δt) = e^{-λΔt} X(t) + σ sqrt(1 - e^{-2λΔt}) ξ,
from the stationary distribution; the C.o.M increments are N(0, 2 D Δt) per component. The
recursion runs in C through ``scipy.signal.lfilter`` (one call per mode, vectorised over frames,
chains and components) and the modes are mapped to beads with ``mlgle.modes.positions_from_modes``.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from mlgle.modes import positions_from_modes


def _positive(name: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite value > 0, got {value}")


def _mode_numbers(p: np.ndarray | int, beads: int) -> np.ndarray:
    if not isinstance(beads, int | np.integer) or beads < 2:
        raise ValueError(f"beads: expected an integer >= 2 for internal modes, got {beads}")
    p = np.asarray(p)
    if not np.issubdtype(p.dtype, np.integer) or np.any(p < 1) or np.any(p >= beads):
        raise ValueError(f"p: expected integer mode numbers 1 <= p < beads ({beads}), got {p}")
    return p


def _spring_eigenvalue(p: np.ndarray, beads: int) -> np.ndarray:
    """μ_p = 4 sin²(pπ/(2N)), eigenvalue of the free-end chain Laplacian."""
    return 4.0 * np.sin(p * np.pi / (2 * beads)) ** 2


def rouse_mode_variance(
    p: np.ndarray | int, beads: int, kT: float = 1.0, spring: float = 3.0
) -> np.ndarray:
    """Stationary variance per Cartesian component of X_p: kT / (2 N k_s 4 sin²(pπ/(2N))).

    p: integer mode numbers 1 <= p < beads, any shape -> float64 array of the same shape.
    """
    p = _mode_numbers(p, beads)
    _positive("kT", kT)
    _positive("spring", spring)
    return kT / (2 * beads * spring * _spring_eigenvalue(p, beads))


def rouse_relaxation_time(
    p: np.ndarray | int, beads: int, friction: float = 1.0, spring: float = 3.0
) -> np.ndarray:
    """Relaxation time τ_p = ζ / (4 k_s sin²(pπ/(2N))) of mode p; its ACF is exp(-t/τ_p).

    p: integer mode numbers 1 <= p < beads, any shape -> float64 array of the same shape.
    """
    p = _mode_numbers(p, beads)
    _positive("friction", friction)
    _positive("spring", spring)
    return friction / (spring * _spring_eigenvalue(p, beads))


def rouse_diffusion(beads: int, kT: float = 1.0, friction: float = 1.0) -> float:
    """C.o.M diffusion coefficient D = kT / (N ζ) (3D MSD = 6 D t)."""
    if not isinstance(beads, int | np.integer) or beads < 1:
        raise ValueError(f"beads: expected an integer >= 1, got {beads}")
    _positive("kT", kT)
    _positive("friction", friction)
    return kT / (beads * friction)


def rouse_chains(
    chains: int,
    beads: int,
    frames: int,
    dt: float,
    kT: float = 1.0,
    friction: float = 1.0,
    spring: float = 3.0,
    seed: int = 0,
    box: float = 0.0,
) -> np.ndarray:
    """Stationary discrete-Rouse trajectories sampled exactly every ``dt``.

    Returns positions (frames, chains, beads, 3) float64; chain C.o.M start uniformly in
    [0, box)³ (all at the origin for box = 0), internal modes from their stationary distribution.
    """
    for name, value in (("chains", chains), ("beads", beads), ("frames", frames)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value}")
    for name, value in (("dt", dt), ("kT", kT), ("friction", friction), ("spring", spring)):
        _positive(name, value)
    if not np.isfinite(box) or box < 0:
        raise ValueError(f"box: expected a finite value >= 0, got {box}")
    rng = np.random.default_rng(seed)
    modes = np.empty((frames, chains, beads, 3))
    start = rng.uniform(0.0, box, size=(chains, 3))
    steps = rng.standard_normal((frames - 1, chains, 3))
    steps *= np.sqrt(2 * rouse_diffusion(beads, kT, friction) * dt)
    modes[0, :, 0] = start
    modes[1:, :, 0] = start + np.cumsum(steps, axis=0)
    if beads > 1:
        p = np.arange(1, beads)
        variance = rouse_mode_variance(p, beads, kT, spring)
        rate_dt = dt / rouse_relaxation_time(p, beads, friction, spring)
        for i, (var, r) in enumerate(zip(variance, rate_dt, strict=True)):
            drive = rng.standard_normal((frames, chains, 3))
            drive[0] *= np.sqrt(var)  # stationary start
            drive[1:] *= np.sqrt(-var * np.expm1(-2 * r))  # exact OU noise over one frame
            modes[:, :, i + 1] = scipy.signal.lfilter([1.0], [1.0, -np.exp(-r)], drive, axis=0)
    return positions_from_modes(modes, beads)
