"""Linear AR baseline for the NAR model: what does the neural network buy? (Secs. 3.1-3.4).

The network F_θ of Eq. 22 is replaced, for each mode j, by a linear Gaussian AR(m) acting
identically on the x, y and z components of the window y_t^m = (z_{t-1}, ..., z_{t-m}):

    Δz_t = Σ_{i=1}^{m} a_{j,i} z_{t-i} + s_j ε_t,    ε_t ~ N(0, I_3),

i.e. μ_t = Σ_i a_{j,i} z_{t-i}, L_t = I and D_t = s_j² I in Eqs. 22-23. The same scalar
coefficients act on every component, so the conditional law commutes with every orthogonal R
(Eq. 17) without the rotation frames of Eqs. 18-19 and 24. There is no intercept: modes have
zero mean by symmetry, and a constant drift c_j would have to be a 3-vector, which is only
rotation-invariant when it is zero (a scalar c_j added to all three components would single out
the direction (1, 1, 1)). Everything is in physical units: the model is linear, so the scalar
standardisation of Sec. 4.2 changes neither a_j nor the trajectories and the factor
σ_Δz / σ_z of Eq. 25 is 1 here; the integration is z_t = z_{t-1} + Δz_t.

``fit_linear_ar`` solves ordinary least squares for a_j on the windows the network trains on
(every target Δz_t whose m previous frames lie in [0, t_train), all chains and components
pooled); ``generate_linear`` runs the fitted recursion laid out exactly like ``generate_modes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from mlgle.stats import is_int

__all__ = ["LinearAR", "fit_linear_ar", "generate_linear"]

_CHUNK = 256  # generated steps held in the ring buffer between flushes (raised to m if smaller)

NoiseDraw = Callable[[int], np.ndarray]
"""count -> the standard normal ε of the next ``count`` generated steps, (count, n, k, 3)."""


@dataclass(frozen=True, eq=False)
class LinearAR:
    """Per-mode rotation-invariant linear Gaussian AR(m) in increment form (module docstring).

    coefficients: (k, m) float64, row j = (a_{j,1}, ..., a_{j,m}) ordered from lag 1 (z_{t-1})
    to lag m (z_{t-m}); noise_std: (k,) float64, s_j >= 0, the standard deviation of each
    component of Δz_t given the window. Both are stored as read-only copies.
    """

    coefficients: np.ndarray
    noise_std: np.ndarray

    def __post_init__(self) -> None:
        coefficients = np.array(self.coefficients, dtype=np.float64)
        if coefficients.ndim != 2 or 0 in coefficients.shape:
            raise ValueError(
                f"LinearAR.coefficients: expected shape (k>=1, history m>=1), "
                f"got {coefficients.shape}"
            )
        if not np.all(np.isfinite(coefficients)):
            raise ValueError("LinearAR.coefficients: contains non-finite values")
        noise_std = np.array(self.noise_std, dtype=np.float64)
        if noise_std.shape != coefficients.shape[:1]:
            raise ValueError(
                f"LinearAR.noise_std: expected shape (k={coefficients.shape[0]},), "
                f"got {noise_std.shape}"
            )
        if not np.all(np.isfinite(noise_std)) or not np.all(noise_std >= 0):
            raise ValueError(f"LinearAR.noise_std: expected finite values >= 0, got {noise_std!r}")
        for name, value in (("coefficients", coefficients), ("noise_std", noise_std)):
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LinearAR):
            return NotImplemented
        return np.array_equal(self.coefficients, other.coefficients) and np.array_equal(
            self.noise_std, other.noise_std
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def modes(self) -> int:
        """Number of modes k."""
        return self.coefficients.shape[0]

    @property
    def history(self) -> int:
        """Window length m (the AR order)."""
        return self.coefficients.shape[1]

    @property
    def spectral_radius(self) -> np.ndarray:
        """(k,) largest |root| of z_t = (1 + a_1) z_{t-1} + Σ_{i>=2} a_i z_{t-i}: the recursion
        of ``generate_linear`` is stationary iff it is < 1 (eigenvalues of the companion matrix).
        """
        k, m = self.coefficients.shape
        radius = np.empty(k)
        for j in range(k):
            companion = np.eye(m, k=-1)
            companion[0] = self.coefficients[j]
            companion[0, 0] += 1.0
            radius[j] = np.max(np.abs(np.linalg.eigvals(companion)))
        return radius

    def predict_increment(self, window: np.ndarray) -> np.ndarray:
        """Conditional mean of Δz_t, the μ_t that replaces F_θ(ŷ_t^m) of Eq. 22.

        window: (..., k, m, 3) holding z_{t-m}, ..., z_{t-1} in time order (oldest first, as
        ``sliding_windows`` lays them out). Returns (..., k, 3) float64, Σ_i a_{j,i} z_{t-i};
        the conditional covariance is s_j² I_3 (``noise_std``).
        """
        window = np.asarray(window)
        k, m = self.coefficients.shape
        if window.ndim < 3 or window.shape[-3:] != (k, m, 3):
            raise ValueError(
                f"window: expected shape (..., modes k={k}, history m={m}, 3), got {window.shape}"
            )
        return np.einsum("...jic,ji->...jc", window, self.coefficients[:, ::-1], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able lists: coefficients (k lists of m, lag 1 first), noise_std, history."""
        return {
            "coefficients": self.coefficients.tolist(),
            "noise_std": self.noise_std.tolist(),
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearAR:
        """Inverse of :meth:`to_dict`; a missing key or a ``history`` that disagrees with the
        coefficients is an error naming it."""
        try:
            model = cls(np.asarray(data["coefficients"]), np.asarray(data["noise_std"]))
        except KeyError as exc:
            raise ValueError(f"LinearAR.from_dict: missing key {exc.args[0]!r}") from exc
        if "history" in data and data["history"] != model.history:
            raise ValueError(
                f"LinearAR.from_dict: history {data['history']!r} disagrees with the "
                f"coefficients of shape {model.coefficients.shape}"
            )
        return model


def fit_linear_ar(modes: np.ndarray, history: int, t_train: int) -> LinearAR:
    """Ordinary least squares fit of the linear AR(m) of every mode on frames [0, t_train).

    modes: (frames, chains, k, 3) in physical units; history: m >= 1; t_train: m < t_train <=
    frames. The samples are the network's windows (``sliding_windows(modes[:t_train], m)``):
    each target Δz_t = z_t - z_{t-1}, t in [m, t_train), regressed on (z_{t-1}, ..., z_{t-m}),
    pooling times, chains and the 3 components, N = (t_train - m) · chains · 3 rows per mode
    (``scipy.linalg.lstsq``). s_j² = RSS_j / (N - m), the residual variance with the fitted
    degrees of freedom removed. Only the training span is read (and checked to be finite).
    """
    modes = np.asarray(modes)
    if modes.ndim != 4 or modes.shape[-1] != 3 or 0 in modes.shape:
        raise ValueError(
            f"modes: expected shape (frames, chains>=1, k>=1, 3), got {modes.shape}"
        )
    if not np.issubdtype(modes.dtype, np.floating):
        raise ValueError(f"modes: expected a floating-point array, got dtype {modes.dtype}")
    if not is_int(history) or history < 1:
        raise ValueError(f"history: expected an integer m >= 1, got {history!r}")
    frames, chains, k, _ = modes.shape
    if not is_int(t_train) or not history < t_train <= frames:
        raise ValueError(
            f"t_train: expected an integer with history m={history} < t_train <= frames="
            f"{frames} (at least one target after the first window), got {t_train!r}"
        )
    span = modes[:t_train]
    if not np.all(np.isfinite(span)):
        frame = int(np.argwhere(~np.isfinite(span))[0][0])
        raise ValueError(f"modes: non-finite value at frame {frame} of the training span")
    samples = (t_train - history) * chains * 3
    if samples <= history:
        raise ValueError(
            f"modes: {samples} training samples ((t_train - m) x chains x 3) are too few for "
            f"history m={history}; need more than m"
        )
    coefficients = np.empty((k, history))
    noise_std = np.empty(k)
    for j in range(k):
        # (chains·3, t_train) series -> rows z_{t-m}, ..., z_{t-1}, z_t for t in [m, t_train).
        series = np.ascontiguousarray(span[:, :, j].transpose(1, 2, 0), dtype=np.float64)
        rows = np.lib.stride_tricks.sliding_window_view(series, history + 1, axis=-1)
        rows = rows.reshape(samples, history + 1)
        design = rows[:, history - 1 :: -1]  # columns z_{t-1}, ..., z_{t-m}: lag 1 first
        target = rows[:, history] - rows[:, history - 1]
        solution, _, rank, _ = scipy.linalg.lstsq(design, target, lapack_driver="gelsy")
        if rank < history:
            raise ValueError(
                f"modes: the windows of mode index {j} are rank-deficient (rank {rank} < "
                f"history m={history}); constant or degenerate data cannot be fitted"
            )
        residual = target - design @ solution
        coefficients[j] = solution
        noise_std[j] = np.sqrt(residual @ residual / (samples - history))
    return LinearAR(coefficients, noise_std)


def _check_generate(model: LinearAR, initial: np.ndarray, frames: int) -> np.ndarray:
    if not isinstance(model, LinearAR):
        raise ValueError(f"model: expected a LinearAR, got {type(model).__name__}")
    k, m = model.modes, model.history
    initial = np.asarray(initial)
    shape = initial.shape
    if len(shape) != 4 or shape[0] != m or shape[1] < 1 or shape[2] != k or shape[3] != 3:
        raise ValueError(
            f"initial: expected shape (history m={m}, n>=1, modes k={k}, 3) for this model, "
            f"got {shape}"
        )
    if not np.issubdtype(initial.dtype, np.number) or np.iscomplexobj(initial):
        raise ValueError(f"initial: expected a real array, got dtype {initial.dtype}")
    if not np.all(np.isfinite(initial)):
        raise ValueError("initial: contains non-finite values")
    if not is_int(frames) or frames < m:
        raise ValueError(f"frames: expected an integer >= history m={m}, got {frames!r}")
    return initial.astype(np.float64, copy=False)


def generate_linear(model: LinearAR, initial: np.ndarray, frames: int, seed: int) -> np.ndarray:
    """Alg. 1 with the linear AR in place of the network: k modes of n trajectories.

    initial: (m, n, k, 3) last m frames of n trajectories, physical units (e.g. from
    ``initial_windows``). Returns (frames, n, k, 3) float64 laid out like ``generate_modes``:
    rows [0, m) are ``initial``, then frames - m generated steps z_t = z_{t-1} + Δz_t (Eq. 25
    with σ_Δz/σ_z = 1), Δz_t = Σ_i a_i z_{t-i} + s ε_t (Eqs. 22-23). ε of generated step s is
    row s of ``np.random.default_rng(seed).standard_normal((frames - m, n, k, 3))`` (drawn in
    blocks), so the output is a pure function of the inputs and the seed.
    """
    initial = _check_generate(model, initial, frames)
    rng = np.random.default_rng(seed)
    n = initial.shape[1]
    shape = (n, model.modes, 3)
    return _integrate(model, initial, frames, lambda count: rng.standard_normal((count, *shape)))


def _integrate(model: LinearAR, initial: np.ndarray, frames: int, draw: NoiseDraw) -> np.ndarray:
    """The loop of ``generate_linear`` with ε from ``draw`` (inputs already checked).

    A ring buffer (k, m + chunk, 3n), time in the middle and the n trajectories' components
    contiguous, makes the window the slice [pos - m, pos) and the mean of every Δz_t one
    batched (k, 1, m) @ (k, m, 3n) matmul per step. Every ``chunk`` steps the new frames go to
    the output and the last m move to the front.
    """
    m, n, k, _ = initial.shape
    out = np.empty((frames, n, k, 3))
    out[:m] = initial
    steps = frames - m
    chunk = max(m, _CHUNK)
    ring = np.empty((k, m + chunk, 3 * n))
    ring[:, :m] = initial.transpose(2, 0, 1, 3).reshape(k, m, 3 * n)
    weights = np.ascontiguousarray(model.coefficients[:, None, ::-1])  # (k, 1, m), oldest first
    std = model.noise_std[:, None]
    mean = np.empty((k, 1, 3 * n))
    for first in range(0, steps, chunk):
        count = min(chunk, steps - first)
        eps = np.asarray(draw(count), dtype=np.float64)
        if eps.shape != (count, n, k, 3):
            raise RuntimeError(f"noise: expected shape {(count, n, k, 3)}, got {eps.shape}")
        noise = eps.transpose(0, 2, 1, 3).reshape(count, k, 3 * n) * std  # s ε, (count, k, 3n)
        for s in range(count):
            pos = m + s
            np.matmul(weights, ring[:, pos - m : pos], out=mean)  # μ_t: replaces F_θ (Eq. 22)
            np.add(ring[:, pos - 1], noise[s], out=ring[:, pos])  # z_{t-1} + s ε (Eq. 23)
            ring[:, pos] += mean[:, 0]  # + μ_t: z_t = z_{t-1} + Δz_t (Eq. 25)
        block = ring[:, m : m + count].reshape(k, count, n, 3)
        out[m + first : m + first + count] = block.transpose(1, 2, 0, 3)
        ring[:, :m] = ring[:, count : count + m].copy()
    return out
