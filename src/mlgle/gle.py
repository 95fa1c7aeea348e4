"""GLE solution for the chain C.o.M from its slow normal modes (Eqs. 13, 26-27).

Model (Eq. 13, 3D, isotropic): X(t) = X(0) + α B(t) + β Σ_{j=1}^k (z_j(t) - z_j(0)), with B a
standard 3D Brownian motion independent of the modes z_j (physical units). For independent modes
the per-component MSD is (Eq. 26)

    ⟨ΔX²⟩_1D(t) = α² t + β² Σ_j ⟨Δz_j²⟩_1D(t),

and (α², β²) >= 0 are fitted by non-negative least squares at a few lags (Eq. 27). The long-time
C.o.M diffusion coefficient is D_GLE = α²/2 (length²/time), since the mode MSDs are bounded.

``GLEFit(points, k).fit(com, modes, dt)`` is the estimator; it returns a frozen ``GLEModel``.
Shapes: com (frames, chains, 3), modes (frames, chains, K, 3) holding p = 1..K (not the C.o.M).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from mlgle.stats import check_dt, interpolate_log, msd, msd_per_trajectory


def _check_array(x: np.ndarray, name: str, shape: str, ndim: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != ndim or x.shape[-1] != 3 or 0 in x.shape:
        raise ValueError(f"{name}: expected shape {shape} with last axis 3, got {x.shape}")
    finite = np.isfinite(x)
    if not finite.all():
        frame = int(np.argwhere(~finite)[0][0])
        raise ValueError(f"{name}: non-finite value at frame {frame} (shape {x.shape})")
    return x


def _check_pair(com: np.ndarray, modes: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated com (frames, chains, 3) and the first k modes (frames, chains, k, 3)."""
    com = _check_array(com, "com", "(frames, chains, 3)", 3)
    modes = _check_array(modes, "modes", "(frames, chains, k, 3)", 4)
    if modes.shape[:2] != com.shape[:2]:
        raise ValueError(
            f"modes: (frames, chains) = {modes.shape[:2]} does not match com {com.shape[:2]}"
        )
    return com, modes[:, :, : _check_k(k, modes.shape[2])]


def _check_k(k: int | None, available: int) -> int:
    if k is None:
        return available
    if not isinstance(k, int | np.integer) or not 1 <= k <= available:
        raise ValueError(f"k: expected an integer 1 <= k <= {available} (modes given), got {k}")
    return int(k)


def _check_points(points: Sequence[int], frames: int | None = None) -> tuple[int, ...]:
    lags = tuple(points)
    if len(set(lags)) < 2 or not all(isinstance(p, int | np.integer) and p >= 1 for p in lags):
        raise ValueError(f"points: expected at least two distinct integer lags >= 1, got {lags}")
    if frames is not None and max(lags) >= frames:
        raise ValueError(
            f"points: lag {max(lags)} needs more frames than the {frames} given (lag < frames)"
        )
    return tuple(int(p) for p in lags)


def _msd_1d_per_chain(
    com: np.ndarray, modes: np.ndarray, lags: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-chain 1D MSDs at ``lags``: C.o.M (lags, chains) and Σ_j over modes (lags, chains).

    The 3D MSD summed over components is divided by 3 (isotropy); Σ_j of the mode MSDs is the MSD
    of the modes flattened to 3k components, so one FFT pass serves all modes.
    """
    frames, chains = com.shape[:2]
    y = msd_per_trajectory(com)[list(lags)] / 3.0
    s = msd_per_trajectory(modes.reshape(frames, chains, -1))[list(lags)] / 3.0
    return y, s


def solve_eq27(t: np.ndarray, y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """Eq. 27: NNLS of y ≈ α² t + β² s at the regression lags; returns (α, β) >= 0.

    t: (lags,) times; y: (lags,) 1D C.o.M MSD; s: (lags,) Σ_j 1D mode MSD (Eq. 26's terms).
    """
    (alpha2, beta2), _ = scipy.optimize.nnls(np.column_stack([t, s]), y)
    return float(np.sqrt(alpha2)), float(np.sqrt(beta2))


@dataclass(frozen=True)
class GLEModel:
    """Fitted GLE (Eq. 13): α, β >= 0, frame interval ``dt``, regression lags, number of modes k."""

    alpha: float
    beta: float
    dt: float
    points: tuple[int, ...]
    k: int

    @property
    def diffusion(self) -> float:
        """D_GLE = α²/2 (length²/time): the asymptotic C.o.M diffusion coefficient."""
        return self.alpha**2 / 2.0

    def msd_model(self, mode_msd_1d: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Eq. 26: α² t + β² Σ_j MSD_j(t), per component.

        mode_msd_1d: (lags, k) 1D MSD of each mode; t: (lags,) times -> (lags,).
        """
        mode_msd_1d = np.asarray(mode_msd_1d, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        if mode_msd_1d.ndim != 2 or mode_msd_1d.shape != (t.shape[0], self.k) or t.ndim != 1:
            raise ValueError(
                f"mode_msd_1d: expected shape (lags, k) = ({t.shape[0]}, {self.k}) matching "
                f"t {t.shape}, got {mode_msd_1d.shape}"
            )
        return self.alpha**2 * t + self.beta**2 * mode_msd_1d.sum(axis=1)

    def generate_com(
        self, modes: np.ndarray, rng: np.random.Generator, x0: np.ndarray | None = None
    ) -> np.ndarray:
        """Eq. 13: C.o.M trajectories X(t) = X(0) + α B(t) + β Σ_{j<=k} (z_j(t) - z_j(0)).

        modes: (frames, n, K, 3) physical units, K >= k (the first k are used); x0: (n, 3) or None
        (origin). B is a 3D standard Brownian motion on the frame grid: B(0) = 0, increments
        N(0, dt) per component. Returns (frames, n, 3) float64.
        """
        modes = _check_array(modes, "modes", "(frames, n, k, 3)", 4)
        if modes.shape[2] < self.k:
            raise ValueError(f"modes: the model needs k = {self.k} modes, got shape {modes.shape}")
        return self.com_stream(rng, modes.shape[1], x0)(modes)

    def com_stream(
        self, rng: np.random.Generator, n: int, x0: np.ndarray | None = None
    ) -> ComStream:
        """:meth:`generate_com` frame block by frame block, for n trajectories (see ComStream)."""
        return ComStream(self, rng, n, x0)


class ComStream:
    """Eq. 13 over consecutive frame blocks: ``stream(block)`` takes modes (b, n, K, 3) of the
    next b frames and returns their C.o.M (b, n, 3) float64. The blocks give, bitwise, what
    :meth:`GLEModel.generate_com` gives for the whole array with the same ``rng``: the Brownian
    increments are drawn from ``rng`` in frame order and summed with the carry in front.
    """

    def __init__(
        self, gle: GLEModel, rng: np.random.Generator, n: int, x0: np.ndarray | None = None
    ) -> None:
        self._gle, self._rng, self._n = gle, rng, n
        self._start = np.zeros((n, 3)) if x0 is None else np.asarray(x0, dtype=np.float64)
        if self._start.shape != (n, 3):
            raise ValueError(f"x0: expected shape (n, 3) = ({n}, 3), got {self._start.shape}")
        self._z0: np.ndarray | None = None  # Σ_j z_j(0), (n, 3)
        self._brownian = np.zeros((1, n, 3))  # B at the last frame seen (the carry)

    def __call__(self, modes: np.ndarray) -> np.ndarray:
        gle = self._gle
        if modes.ndim != 4 or modes.shape[1] != self._n or modes.shape[2] < gle.k or not len(modes):
            raise ValueError(
                f"modes: expected a block (frames>=1, n={self._n}, K>={gle.k}, 3), got "
                f"{modes.shape}"
            )
        z = modes[:, :, : gle.k].sum(axis=2, dtype=np.float64)
        first = self._z0 is None
        if first:
            self._z0 = z[0].copy()
        steps = self._rng.normal(0.0, np.sqrt(gle.dt), size=(len(z) - first, self._n, 3))
        brownian = np.cumsum(np.concatenate([self._brownian, steps]), axis=0)
        if not first:
            brownian = brownian[1:]
        self._brownian = brownian[-1:].copy()
        return self._start + gle.alpha * brownian + gle.beta * (z - self._z0)


@dataclass(frozen=True)
class GLEFit:
    """Estimator for Eq. 27: NNLS of the 1D C.o.M MSD on (t, Σ_j MSD_j) at lags ``points``.

    points: regression lags in frames (the paper uses {1, m/2, m}); k: use only the first k of the
    given modes (None: all), for the ablation of Fig. 10.
    """

    points: Sequence[int] = (1, 32, 64)
    k: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", _check_points(self.points))
        if self.k is not None and (not isinstance(self.k, int | np.integer) or self.k < 1):
            raise ValueError(f"k: expected None or an integer >= 1, got {self.k}")

    def fit(self, com: np.ndarray, modes: np.ndarray, dt: float) -> GLEModel:
        """com (frames, chains, 3), modes (frames, chains, K, 3) p = 1..K, frame interval dt.

        The MSDs use all given frames: pass the first T_fit frames to fit on T_fit (Sec. 4.5).
        """
        dt = check_dt(dt)
        com, modes = _check_pair(com, modes, self.k)
        lags = _check_points(self.points, com.shape[0])
        y, s = _msd_1d_per_chain(com, modes, lags)
        alpha, beta = solve_eq27(np.asarray(lags) * dt, y.mean(axis=1), s.mean(axis=1))
        return GLEModel(alpha=alpha, beta=beta, dt=dt, points=lags, k=modes.shape[2])


def bootstrap_diffusion(
    com: np.ndarray,
    modes: np.ndarray,
    dt: float,
    points: Sequence[int] = (1, 32, 64),
    n_boot: int = 1000,
    seed: int = 0,
    k: int | None = None,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile confidence interval (default 95 %) of D_GLE by resampling chains.

    Per-chain MSDs are computed once; each bootstrap replicate averages a resampled set of chains
    and solves Eq. 27 again. com (frames, chains, 3), modes (frames, chains, K, 3).
    """
    dt = check_dt(dt)
    com, modes = _check_pair(com, modes, k)
    lags = _check_points(points, com.shape[0])
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot: expected an integer >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level: expected 0 < level < 1, got {level}")
    y, s = _msd_1d_per_chain(com, modes, lags)
    chains = com.shape[1]
    draw = np.random.default_rng(seed).integers(0, chains, size=(n_boot, chains))
    y_boot, s_boot = y[:, draw].mean(axis=2), s[:, draw].mean(axis=2)
    t = np.asarray(lags) * dt
    d = np.array([solve_eq27(t, y_boot[:, b], s_boot[:, b])[0] ** 2 / 2 for b in range(n_boot)])
    lo, hi = np.percentile(d, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def com_msd_1d(com: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """1D C.o.M MSD ⟨ΔX²⟩ at ``lags``: com (frames, chains, 3) -> (lags,) (Eq. 26's left side)."""
    return msd(com)[list(lags)] / 3.0


def mode_msd_1d(modes: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """Σ_j 1D mode MSD ⟨Δz_j²⟩ at ``lags``: modes (frames, n, k, 3) -> (lags,) (Eq. 26)."""
    frames, n = modes.shape[:2]
    return msd(modes.reshape(frames, n, -1))[list(lags)] / 3.0


def interpolate_gle(fits: Mapping[float, GLEModel], temperature: float) -> GLEModel:
    """α(T*), β(T*) at an unseen temperature: log α² and log β² linear in 1/T between the
    per-temperature fits of Eq. 27 (same dt, points, k). Exact at a training temperature; a zero
    β² interpolates linearly in β². Outside the training range: ValueError."""
    models = list(fits.values())
    if len({(m.dt, m.points, m.k) for m in models}) != 1:
        raise ValueError("fits: the GLE fits differ in dt, points or k; cannot interpolate")
    squares = np.array([[m.alpha**2, m.beta**2] for m in models])
    alpha2, beta2 = interpolate_log(np.array(list(fits)), squares, temperature, "temperature")
    first = models[0]
    return GLEModel(float(np.sqrt(alpha2)), float(np.sqrt(beta2)), first.dt, first.points, first.k)


def refit_gle(
    com_msd: Mapping[float, np.ndarray],
    modes_msd: np.ndarray,
    temperature: float,
    points: Sequence[int],
    dt: float,
    k: int,
) -> GLEModel:
    """Eq. 27 at an unseen T*: NNLS of y(T*) ≈ α² t + β² s(T*) at the lags ``points``.

    com_msd: training temperature -> 1D C.o.M MSD at the lags (lags,), interpolated in log along
    1/T to y(T*); modes_msd: s(T*) = Σ_j 1D MSD of the generated modes at the lags (lags,).
    """
    nodes = np.array(list(com_msd))
    y = interpolate_log(nodes, np.stack(list(com_msd.values())), temperature, "temperature")
    s = np.asarray(modes_msd, dtype=np.float64)
    if y.shape != s.shape or s.shape != (len(points),):
        raise ValueError(f"modes_msd: expected shape ({len(points)},) at the lags, got {s.shape}")
    alpha, beta = solve_eq27(np.asarray(points, dtype=np.float64) * dt, y, s)
    return GLEModel(alpha, beta, float(dt), tuple(int(p) for p in points), k)


def brownian_rng(seed: int) -> np.random.Generator:
    """The generator of the Brownian path B(t) of Eq. 13 for a generation seeded ``seed``: one
    rule (``seed + 1``, independent of the mode noise drawn from ``seed``) for every stage."""
    return np.random.default_rng(seed + 1)
