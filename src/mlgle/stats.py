"""Pure statistics of trajectories, vectorised over trajectories and dimensions.

FFT MSD (Eq. 36) and ACF take arrays (frames, n, d): ``frames`` time points of ``n`` independent
trajectories of dimension ``d``. Averages over time origins come first, then over trajectories,
never over concatenated trajectories. On top of them: the Mélard-Roy ACF band (Eq. 34), the
diffusion coefficient over a lag window (Eq. 35), the local MSD slope, and exponential /
Kohlrausch fits of an ACF (Eq. 33).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.optimize
import scipy.special
import scipy.stats

# Trajectories x d x FFT length per FFT block: the block's series, spectrum and products take
# ~ 16 * _BLOCK_VALUES bytes (64 MiB), and short series still go in few, large transforms.
_BLOCK_VALUES = 1 << 22
# Threads of each scipy.fft transform; None: scipy's default (1, or a ``scipy.fft.set_workers``
# context around the call).
_WORKERS: int | None = None


def _as_trajectories(x: np.ndarray, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"{name}: expected shape (frames, n, d), got {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{name}: needs at least one frame, got shape {x.shape}")
    if not np.isfinite(x).all():
        frame = int(np.argwhere(~np.isfinite(x))[0][0])
        raise ValueError(f"{name}: non-finite value at frame {frame}")
    return x


def _fft_size(frames: int) -> int:
    """Real-FFT length >= 2 frames (zero padding: the circular correlation does not wrap)."""
    return scipy.fft.next_fast_len(2 * frames, real=True)


def _blocks(x: np.ndarray, center: bool):
    """(start, stop, series, power, size) per block of trajectories of x (frames, n, d).

    series: (b, d, frames) float64 copy of x[:, start:stop], time axis contiguous, centred on
    its time mean when ``center``; power: (b, size // 2 + 1) complex view whose real part is
    Σ_d |rfft(series, size)|² and imaginary part 0, ready for :func:`scipy.fft.irfft` (the
    circular correlation of the series zero-padded to ``size`` >= 2 frames: no wrap-around).
    """
    frames, n, d = x.shape
    size = _fft_size(frames)
    block = max(1, _BLOCK_VALUES // (d * size))
    for start in range(0, n, block):
        stop = min(n, start + block)
        series = np.empty((stop - start, d, frames))
        np.copyto(series, x[:, start:stop].transpose(1, 2, 0))
        if center:
            series -= series.mean(axis=-1, keepdims=True)
        spectrum = scipy.fft.rfft(series, n=size, axis=-1, workers=_WORKERS)
        parts = spectrum.view(np.float64)  # (b, d, 2 * (size // 2 + 1)): re, im, re, im, ...
        np.square(parts, out=parts)
        acc = parts[:, 0, 0::2]
        acc += parts[:, 0, 1::2]
        for k in range(1, d):
            acc += parts[:, k, 0::2]
            acc += parts[:, k, 1::2]
        parts[:, 0, 1::2] = 0.0
        yield start, stop, series, spectrum[:, 0], size


def _correlation(power: np.ndarray, size: int, frames: int) -> np.ndarray:
    """Σ_i x_i · x_{i+m} for m = 0..frames-1 from a power spectrum (..., size // 2 + 1)."""
    return scipy.fft.irfft(power, n=size, axis=-1, workers=_WORKERS, overwrite_x=True)[..., :frames]


def lagged_products(x: np.ndarray) -> np.ndarray:
    """Σ_d Σ_i x_i · x_{i+m} / (frames - m) per lag m and trajectory, by FFT (Wiener-Khinchin).

    x: (frames, n, d) -> (frames, n) float64.
    """
    x = _as_trajectories(x)
    frames, n, _ = x.shape
    out = np.empty((frames, n))
    origins = (frames - np.arange(frames)).astype(np.float64)
    for start, stop, _, power, size in _blocks(x, center=False):
        products = _correlation(power, size, frames)
        products /= origins
        out[:, start:stop] = products.T
    return out


def msd_per_trajectory(x: np.ndarray) -> np.ndarray:
    """Eq. 36: time-averaged MSD of each trajectory, summed over d, in O(frames log frames).

    x: (frames, n, d) -> (frames, n); row 0 is exactly 0.
    """
    x = _as_trajectories(x)
    frames, n, _ = x.shape
    out = np.empty((frames, n))
    origins = (frames - np.arange(1, frames)).astype(np.float64)
    half = frames // 2
    late = np.arange(frames - half - 2, -1, -1)  # frames - m - 1 for m = half + 1 .. frames - 1
    # The MSD does not change under a shift of each series; centring on the time mean shrinks
    # Σx², and with it the round-off of the difference of the two terms below.
    for start, stop, series, power, size in _blocks(x, center=True):
        squares = np.einsum("bdt,bdt->bt", series, series)  # |x_i|² (b, frames)
        del series
        products = _correlation(power, size, frames)  # Σ_i x_i · x_{i+m}
        # S1(m) = Σ_{i=0}^{frames-m-1} (|x_{i+m}|² + |x_i|²) = head(frames-m) + tail(frames-m)
        # with head(k) (tail(k)) the sum of the first (last) k squares, or equivalently
        # 2 Σ|x|² - head(m) - tail(m); each lag takes the form with the fewer summed terms.
        head = np.cumsum(squares, axis=1)
        tail = np.cumsum(squares[:, ::-1], axis=1)
        total2 = 2.0 * squares.sum(axis=1, keepdims=True)
        result = np.empty((stop - start, frames))
        result[:, 0] = 0.0
        early = result[:, 1 : half + 1]  # m = 1 .. half
        np.subtract(total2, head[:, :half], out=early)
        early -= tail[:, :half]
        result[:, half + 1 :] = head[:, late] + tail[:, late]
        lagged = result[:, 1:]
        products *= 2.0
        lagged -= products[:, 1:]
        lagged /= origins
        np.maximum(lagged, 0.0, out=lagged)
        out[:, start:stop] = result.T
    return out


def msd(x: np.ndarray) -> np.ndarray:
    """Mean squared displacement (Eq. 36): time-averaged, summed over d, averaged over n.

    x: (frames, n, d) -> (frames,); msd[0] == 0.
    """
    return msd_per_trajectory(x).mean(axis=1)


def acf(x: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation ⟨x_0 · x_m⟩ / ⟨x_0 · x_0⟩, averaged over origins and n.

    No per-trajectory mean is subtracted (normal modes have zero mean by symmetry). The n power
    spectra are summed before the one inverse transform (the average over n commutes with it).
    x: (frames, n, d) -> (frames,); acf[0] == 1.
    """
    x = _as_trajectories(x)
    frames, n, _ = x.shape
    size = _fft_size(frames)
    total = np.zeros(size // 2 + 1, dtype=np.complex128)
    for _, _, _, power, _ in _blocks(x, center=False):
        total.real += power.real.sum(axis=0)
    c = _correlation(total, size, frames) / max(n, 1)
    c /= frames - np.arange(frames)
    if c[0] <= 0:
        raise ValueError("x: zero variance, the autocorrelation is undefined")
    return c / c[0]


def _as_series(a: np.ndarray, name: str, min_frames: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected shape (frames,), got {a.shape}")
    if a.shape[0] < min_frames:
        raise ValueError(f"{name}: needs at least {min_frames} frames, got shape {a.shape}")
    if not np.isfinite(a).all():
        frame = int(np.argwhere(~np.isfinite(a))[0][0])
        raise ValueError(f"{name}: non-finite value at frame {frame}")
    return a


def is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_dt(dt: float) -> float:
    if (
        isinstance(dt, bool)
        or not isinstance(dt, int | float | np.number)
        or not (np.isfinite(dt) and dt > 0)
    ):
        raise ValueError(f"dt: expected a positive finite time step, got {dt!r}")
    return float(dt)


def melard_roy_band(acf: np.ndarray, n_samples: int, level: float = 0.99) -> np.ndarray:
    """Eq. 34: half-width of the ACF confidence band around 0 at each lag.

    band_k = z_{(1+level)/2} · sqrt((1 + 2 Σ_{i=1}^{k-1} ρ_i²) / n): the Bartlett standard error of
    the sample ACF at lag k under the null that the process is MA(k-1) (ρ_j = 0 for j >= k).
    acf: (frames,) ρ_0..ρ_{frames-1} (ρ_0 unused); n_samples: the series length n behind it.
    Returns (frames,); lag 0 has width 0, lag 1 has width z / sqrt(n).
    """
    rho = _as_series(acf, "acf", min_frames=1)
    if not is_int(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples: expected a positive integer, got {n_samples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected 0 < level < 1, got {level!r}")
    # Σ_{i=1}^{k-1} ρ_i² for k = 1..frames-1 (an empty sum at k = 1).
    partial = np.concatenate([[0.0], np.cumsum(rho[1:-1] ** 2)])
    z = scipy.stats.norm.ppf(0.5 * (1.0 + level))
    width = np.zeros_like(rho)
    width[1:] = z * np.sqrt((1.0 + 2.0 * partial) / n_samples)
    return width


def nacf_band_inside(
    md_modes: np.ndarray,
    gen_modes: np.ndarray,
    max_lag: int,
    level: float,
    md_series: Callable[[np.ndarray, int], np.ndarray] | None = None,
    gen_series: Callable[[np.ndarray, int], np.ndarray] | None = None,
    modes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generated NACFs against the MD band (Eq. 34), per mode.

    md_modes: (frames, chains, k, 3), gen_modes: (frames', n, k, 3). Returns the MD NACFs and the
    generated NACFs (k, L) on lags 0..L-1, L = min(max_lag + 1, frames, frames'), the band
    half-width (k, L) with n = frames x chains x 3 samples, and ``inside`` (k, L - 1): whether
    |NACF_gen - NACF_MD| <= band at lags 1..L-1 (its mean per mode is the band share).
    ``md_series(md_modes, j)`` / ``gen_series(gen_modes, j)`` give mode j's (frames, n, 3)
    series (default ``x[:, :, j]``; e.g. a blockwise reader for memory-mapped ensembles) for j in
    range(``modes``) (default k of md_modes).
    """

    def plain(x: np.ndarray, j: int) -> np.ndarray:
        return x[:, :, j]

    md_series, gen_series = md_series or plain, gen_series or plain
    frames, chains = md_modes.shape[:2]
    k = md_modes.shape[2] if modes is None else modes
    length = min(max_lag + 1, frames, gen_modes.shape[0])
    nacf_md = np.stack([acf(md_series(md_modes, j))[:length] for j in range(k)])
    nacf_gen = np.stack([acf(gen_series(gen_modes, j))[:length] for j in range(k)])
    band = np.stack([melard_roy_band(c, frames * chains * 3, level) for c in nacf_md])
    return nacf_md, nacf_gen, band, np.abs(nacf_gen - nacf_md)[:, 1:] <= band[:, 1:]


@dataclass(frozen=True)
class DiffusionEstimate:
    """D of the chain-averaged MSD (Eq. 35) with a Student-t 95 % CI over n per-chain D values."""

    value: float
    ci95: tuple[float, float]
    stderr: float
    n: int


def diffusion_coefficient(
    msd3d: np.ndarray, dt: float, t1: int, t2: int
) -> float | DiffusionEstimate:
    """Eq. 35: diffusion coefficient from a 3D MSD over the lag window [t1, t2] in frames.

    D = mean_{t=t1..t2} MSD_3D(t) / (6 t dt), t2 - t1 + 1 terms (the paper writes the prefactor
    as 1/(t2 - t1)). msd3d: (frames,) -> float; per-chain (frames, n), n >= 2 ->
    DiffusionEstimate whose value is D of the chain-averaged MSD and whose stderr and 95 %
    interval (Student t, n - 1 degrees of freedom) come from the n per-chain D values.
    """
    m = np.asarray(msd3d, dtype=np.float64)
    if m.ndim not in (1, 2):
        raise ValueError(f"msd3d: expected shape (frames,) or (frames, n), got {m.shape}")
    dt = check_dt(dt)
    for name, t in (("t1", t1), ("t2", t2)):
        if not is_int(t):
            raise ValueError(f"{name}: expected an integer lag in frames, got {t!r}")
    if not 1 <= t1 < t2 <= m.shape[0] - 1:
        raise ValueError(
            f"window [t1, t2] = [{t1}, {t2}]: expected 1 <= t1 < t2 <= {m.shape[0] - 1}, "
            f"the last lag of msd3d with shape {m.shape}"
        )
    window = m[t1 : t2 + 1]
    if not np.isfinite(window).all():
        frame = t1 + int(np.argwhere(~np.isfinite(window))[0][0])
        raise ValueError(f"msd3d: non-finite value at frame {frame}")
    times = dt * np.arange(t1, t2 + 1, dtype=np.float64)
    if m.ndim == 1:
        return float(np.mean(window / (6.0 * times)))
    n = m.shape[1]
    if n < 2:
        raise ValueError(f"msd3d: a CI over chains needs n >= 2 columns, got shape {m.shape}")
    per_chain = (window / (6.0 * times[:, None])).mean(axis=0)
    value = float(per_chain.mean())  # Eq. 35 is linear: equals D of the chain-averaged MSD.
    stderr = float(per_chain.std(ddof=1) / np.sqrt(n))
    half = float(scipy.stats.t.ppf(0.975, df=n - 1)) * stderr
    return DiffusionEstimate(value=value, ci95=(value - half, value + half), stderr=stderr, n=n)


def log_lags(frames: int, lo: int = 1, count: int = 60) -> np.ndarray:
    """Unique integer lags spaced evenly in log between ``lo`` and ``frames - 1``: (L,)."""
    return np.unique(np.geomspace(lo, frames - 1, count).astype(int))


def com_diffusion(com: np.ndarray, dt: float, window: tuple[int, int]) -> DiffusionEstimate:
    """Eq. 35 on C.o.M trajectories: com (frames, chains, 3) -> D over lags [t1, t2] with its
    Student-t 95 % CI over chains (see :func:`diffusion_coefficient`)."""
    t1, t2 = window
    return diffusion_coefficient(msd_per_trajectory(com), dt, t1, t2)


def mare(predicted: Sequence[float], reference: Sequence[float]) -> float:
    """Mean absolute relative error of ``predicted`` against ``reference`` (Table 1's MAREs)."""
    p, r = np.asarray(predicted, dtype=float), np.asarray(reference, dtype=float)
    return float(np.mean(np.abs(p - r) / np.abs(r)))


def local_slope(msd: np.ndarray, dt: float = 1.0, lags: np.ndarray | None = None) -> np.ndarray:
    """Local exponent d log MSD / d log t by centred differences in log-log.

    msd: (frames, ...) with frames >= 3 and positive values at the lags used. Without ``lags``:
    every lag >= 1, returns (frames - 1, ...), index j is lag j + 1; with ``lags`` (L,) increasing
    integers >= 1 (e.g. :func:`log_lags`): the same estimator on that grid, returns (L, ...).
    Interior points use np.gradient's second-order centred differences on the non-uniform log t
    grid, the ends one-sided first-order differences; all are exact for a pure power law. The
    result does not depend on dt (a shift of log t).
    """
    m = np.asarray(msd, dtype=np.float64)
    if m.ndim < 1 or m.shape[0] < 3:
        raise ValueError(f"msd: expected shape (frames, ...) with frames >= 3, got {m.shape}")
    dt = check_dt(dt)
    grid = np.arange(1, m.shape[0]) if lags is None else np.asarray(lags)
    if grid.ndim != 1 or grid.size < 2 or grid[0] < 1 or grid[-1] >= m.shape[0]:
        raise ValueError(f"lags: expected increasing lags in [1, {m.shape[0] - 1}], got {grid}")
    values = m[grid]
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        lag = int(grid[np.argwhere(bad)[0][0]])
        raise ValueError(f"msd: expected positive finite values at lags >= 1, bad at lag {lag}")
    return np.gradient(np.log(values), np.log(dt * grid.astype(np.float64)), axis=0)


def _fit_data(
    acf: np.ndarray, dt: float, max_lag: int | None, n_params: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(t, y, tau0): fitted times k·dt and values for k = 0..max_lag, and a 1/e-time guess."""
    y = _as_series(acf, "acf", min_frames=n_params + 1)
    dt = check_dt(dt)
    if max_lag is None:
        max_lag = y.shape[0] - 1
    if not is_int(max_lag) or not n_params <= max_lag <= y.shape[0] - 1:
        raise ValueError(
            f"max_lag: expected an integer in [{n_params}, {y.shape[0] - 1}], got {max_lag!r}"
        )
    y = y[: max_lag + 1]
    t = dt * np.arange(max_lag + 1, dtype=np.float64)
    below = np.flatnonzero(y < np.exp(-1.0) * y[0])
    tau0 = float(max(t[below[0]] if below.size else t[-1], dt))
    return t, y, tau0


# Tight tolerances: the fits are cheap and exact data should come back to ~1e-10.
_LSQ = {"xtol": 1e-14, "ftol": 1e-14, "gtol": 1e-14, "max_nfev": 10_000}


@dataclass(frozen=True)
class ExponentialFit:
    """exp(-t/τ) fitted to an ACF; rmse over the fitted lags."""

    tau: float
    rmse: float

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """Evaluate exp(-t/τ) at times t (same units as dt·lag)."""
        return np.exp(-np.asarray(t, dtype=np.float64) / self.tau)


@dataclass(frozen=True)
class KohlrauschFit:
    """Stretched exponential C·exp(-(t/τ)^β) (Eq. 33, β the paper's a) fitted to an ACF."""

    amplitude: float
    tau: float
    beta: float
    rmse: float

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """Evaluate C·exp(-(t/τ)^β) at times t >= 0 (same units as dt·lag)."""
        return _kohlrausch(np.asarray(t, dtype=np.float64), self.amplitude, self.tau, self.beta)


def _kohlrausch(t: np.ndarray, amplitude: float, tau: float, beta: float) -> np.ndarray:
    return amplitude * np.exp(-((t / tau) ** beta))


def _kohlrausch_jac(t: np.ndarray, amplitude: float, tau: float, beta: float) -> np.ndarray:
    u = (t / tau) ** beta
    e = np.exp(-u)
    # d/dβ of u is u·log(t/τ), which is 0 at t = 0 (xlogy keeps it finite there).
    return np.stack(
        [e, amplitude * e * u * beta / tau, -amplitude * e * scipy.special.xlogy(u, t / tau)],
        axis=1,
    )


def fit_exponential(acf: np.ndarray, dt: float = 1.0, max_lag: int | None = None) -> ExponentialFit:
    """Least-squares fit of exp(-t/τ), τ > 0, to acf at lags 0..max_lag (Sec. 4.3, Fig. 6).

    acf: (frames,), lag k at time k·dt; max_lag defaults to frames - 1.
    """
    t, y, tau0 = _fit_data(acf, dt, max_lag, n_params=1)
    (tau,), _ = scipy.optimize.curve_fit(
        lambda t, tau: np.exp(-t / tau),
        t,
        y,
        p0=[tau0],
        jac=lambda t, tau: (np.exp(-t / tau) * t / tau**2)[:, None],
        bounds=([0.0], [np.inf]),
        **_LSQ,
    )
    rmse = float(np.sqrt(np.mean((np.exp(-t / tau) - y) ** 2)))
    return ExponentialFit(tau=float(tau), rmse=rmse)


def fit_kohlrausch(acf: np.ndarray, dt: float = 1.0, max_lag: int | None = None) -> KohlrauschFit:
    """Eq. 33: least-squares fit of C·exp(-(t/τ)^β), C > 0, τ > 0, 0 < β <= 2, to lags 0..max_lag.

    acf: (frames,), lag k at time k·dt; max_lag defaults to frames - 1.
    """
    t, y, tau0 = _fit_data(acf, dt, max_lag, n_params=3)
    (amplitude, tau, beta), _ = scipy.optimize.curve_fit(
        _kohlrausch,
        t,
        y,
        p0=[max(y[0], 1e-12), tau0, 1.0],
        jac=_kohlrausch_jac,
        bounds=([0.0, 0.0, 0.0], [np.inf, np.inf, 2.0]),
        **_LSQ,
    )
    rmse = float(np.sqrt(np.mean((_kohlrausch(t, amplitude, tau, beta) - y) ** 2)))
    return KohlrauschFit(amplitude=float(amplitude), tau=float(tau), beta=float(beta), rmse=rmse)


def interpolate_log(nodes: np.ndarray, values: np.ndarray, at: float, name: str) -> np.ndarray:
    """log(values) piecewise-linear in 1/x between the sorted nodes, evaluated at x = ``at``.

    nodes: (d,) positive feature values; values: (d, ...) positive; returns (...). Exact at a
    node (the stored value is returned), zero entries interpolate linearly in 1/x instead of in
    the log (an NNLS coefficient may be 0). Outside [min, max] of the nodes: ValueError.
    """
    nodes = np.asarray(nodes, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if nodes.ndim != 1 or values.shape[:1] != nodes.shape or np.any(nodes <= 0):
        raise ValueError(f"{name}: expected positive nodes (d,) and values (d, ...)")
    if np.any(values < 0):
        raise ValueError(f"{name}: expected non-negative values to interpolate")
    hit = np.flatnonzero(nodes == at)
    if hit.size:
        return values[hit[0]].copy()
    if not nodes.min() < at < nodes.max():
        raise ValueError(
            f"{name}: {at:g} lies outside the training values [{nodes.min():g}, "
            f"{nodes.max():g}]; only interpolation is supported"
        )
    order = np.argsort(1.0 / nodes)
    x, y = 1.0 / nodes[order], values[order]
    upper = int(np.searchsorted(x, 1.0 / at))
    w = (1.0 / at - x[upper - 1]) / (x[upper] - x[upper - 1])
    lo, hi = y[upper - 1], y[upper]
    positive = (lo > 0) & (hi > 0)
    with np.errstate(divide="ignore"):
        logs = np.exp((1 - w) * np.log(lo) + w * np.log(hi))
    return np.where(positive, logs, (1 - w) * lo + w * hi)
