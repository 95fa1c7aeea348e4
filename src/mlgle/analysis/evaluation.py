"""Generated vs MD statistics at one temperature (Secs. 4.4-4.6): the numbers behind Table 1 and
Figs. 5, 9, 12-16 and 18.

MSD curves are kept on a log grid of lags; NACFs on lags 0..max_lag. The NACF band is the 99 %
Mélard-Roy band (Eq. 34) of the MD estimate, with n = frames x chains x 3 samples (the estimator
averages over chains and components, treated as independent).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from mlgle import stats
from mlgle.blockio import frame_blocks, frame_slice, increment_blocks, mode_series
from mlgle.gle import GLEModel

# Samples kept per mode for the PDFs and probability plots.
PDF_SAMPLES = 20_000
# Chains whose C.o.M MSDs (Eq. 36) are computed together: bounds the float64 working set.
MSD_CHAINS = 64


@dataclass(frozen=True)
class EvaluationData:
    """Arrays of one temperature's evaluation; shapes in the field comments."""

    temperature: float
    dt: float
    modes: np.ndarray  # (P,) evaluated mode numbers p >= 1
    nacf_md: np.ndarray  # (P, L) MD NACF over the full run, lags 0..L-1
    nacf_gen: np.ndarray  # (P, L) NACF of the generated modes
    band: np.ndarray  # (P, L) half-width of the MD Mélard-Roy band (Eq. 34)
    msd_lags: np.ndarray  # (M,) lags in frames (log grid)
    msd_md: np.ndarray  # (M,) C.o.M 3D MSD of MD
    msd_gle: np.ndarray  # (M,) GLE (Eq. 13) driven by the MD modes
    msd_mlgle: np.ndarray  # (M',) ML-GLE (generated modes), lags < generated frames
    msd_mlgle_lags: np.ndarray  # (M',)
    disp_md: np.ndarray  # (chains, 3) X(T) - X(0), T the last common lag
    disp_gle: np.ndarray  # (chains, 3)
    disp_mlgle: np.ndarray  # (n, 3)
    z_md: np.ndarray  # (P, S) standardised mode components, MD
    z_gen: np.ndarray  # (P, S) generated
    dz_md: np.ndarray  # (P, S) standardised increments, MD
    dz_gen: np.ndarray  # (P, S) generated
    corr_md: np.ndarray  # (K, K) equal-time cross-correlation of modes 1..K (Fig. 5)
    dx_md: np.ndarray  # (S,) one-frame C.o.M increment components [σ], MD (Fig. 16)
    dx_mlgle: np.ndarray  # (S,) the same for ML-GLE

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, **asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> EvaluationData:
        with np.load(path) as data:
            values = {f.name: data[f.name] for f in fields(cls)}
        values["temperature"] = float(values["temperature"])
        values["dt"] = float(values["dt"])
        return cls(**values)


def short_window_diffusion(
    com: np.ndarray, dt: float, t_train: int, fractions: tuple[float, float]
) -> stats.DiffusionEstimate:
    """D_short, the model-free baseline: Eq. 35 on the first ``t_train`` frames alone, over lags
    [f1 · T_train, f2 · T_train] (``fractions`` = (f1, f2)), with its CI over chains. What a user
    gets from the short MD without any model. com: (frames, chains, 3)."""
    lo, hi = (max(1, round(f * t_train)) for f in fractions)
    if not 1 <= lo < hi < t_train <= com.shape[0]:
        raise ValueError(
            f"short window: lags [{lo}, {hi}] from fractions {fractions} of T_train = {t_train} "
            f"must satisfy 1 <= t1 < t2 < T_train <= {com.shape[0]} frames"
        )
    return stats.com_diffusion(com[:t_train], dt, (lo, hi))


def regime_evidence(com: np.ndarray, dt: float, t_train: int, d_md: float) -> dict[str, float]:
    """Where the training window ends: at lag h = T_train / 2 of the MD C.o.M MSD (Eq. 36, whole
    run, com (frames, chains, 3)), MSD(h) / (6 h Δt D_MD) (1 once diffusive) and the local slope
    d log MSD / d log t over lags [h / 1.25, 1.25 h] (1 once diffusive, < 1 in the transient)."""
    h = t_train // 2
    msd = stats.msd_per_trajectory(com).mean(axis=1)
    lags = np.array([round(h / 1.25), h, round(1.25 * h)])
    if lags[0] < 1 or lags[-1] >= msd.shape[0]:
        raise ValueError(f"regime evidence: lags {lags.tolist()} outside the {msd.shape[0]} frames")
    return {
        "msd_over_6Dt_at_half_train": float(msd[h] / (6 * h * dt * d_md)),
        "slope_at_half_train": float(stats.local_slope(msd, dt, lags=lags)[1]),
    }


def mode_correlation(modes: np.ndarray, first: int = 0, count: int | None = None) -> np.ndarray:
    """Equal-time correlation matrix of modes, averaged over frames, chains and components.

    modes: (frames, chains, K, 3); the K' = ``count`` modes from index ``first`` (default all)
    -> (K', K'), unit diagonal. No mean is subtracted (zero by symmetry), matching the NACF
    convention. Read in frame blocks (mlgle.blockio).
    """
    last = modes.shape[2] if count is None else first + count
    cov = np.zeros((last - first, last - first))
    for _, block in frame_blocks(modes):
        x = block[:, :, first:last].astype(np.float64)
        cov += np.einsum("tcid,tcjd->ij", x, x)
    cov /= modes.shape[0] * modes.shape[1] * 3
    scale = np.sqrt(np.diag(cov))
    return cov / np.outer(scale, scale)


class _Sampler:
    """The PDF samples of one ensemble (frames, n, K, 3): for modes [first, first + count), the
    values at the places ``take_z`` and the one-frame increments at ``take_dz`` ((frame,
    trajectory, component) index arrays from :func:`_places`, the same for every mode), each
    standardised per mode by its RMS over the whole ensemble; and the increments' RMS per mode.
    One pass over frame blocks with a one-frame carry."""

    def __init__(
        self,
        modes: np.ndarray,
        first: int,
        count: int,
        take_z: tuple[np.ndarray, ...],
        take_dz: tuple[np.ndarray, ...],
    ) -> None:
        frames, n = modes.shape[:2]
        sl = slice(first, first + count)
        z = np.empty((count, take_z[0].size))
        dz = np.empty((count, take_dz[0].size))
        sq_z, sq_dz = np.zeros(count), np.zeros(count)
        for start, x, d_start, d in increment_blocks(modes, (slice(None), sl)):  # (b, n, count, 3)
            sq_z += np.einsum("tcjd,tcjd->j", x, x)
            _pick(z, x, take_z, start)
            sq_dz += np.einsum("tcjd,tcjd->j", d, d)
            _pick(dz, d, take_dz, d_start)
        self.z = z / np.sqrt(sq_z / (frames * n * 3))[:, None]
        self.dz_rms = np.sqrt(sq_dz / ((frames - 1) * n * 3))
        self.dz = dz / self.dz_rms[:, None]


def _places(frames: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """min(PDF_SAMPLES, frames x n x 3) distinct random places (t, c, a) of a (frames, n, 3)
    array, drawn as flat C-order indices."""
    size = frames * n * 3
    flat = rng.choice(size, size=min(PDF_SAMPLES, size), replace=False)
    return np.unravel_index(flat, (frames, n, 3))


def _pick(out: np.ndarray, block: np.ndarray, places: tuple[np.ndarray, ...], start: int) -> None:
    """out[:, i] = block[t_i - start, c_i, :, a_i] for the places (t, c, a) inside the block."""
    t, c, a = places
    inside = (t >= start) & (t < start + block.shape[0])
    out[:, inside] = block[t[inside] - start, c[inside], :, a[inside]].T


def _increments(com: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """com: (frames, n, 3), in memory or memory-mapped -> (S,) random one-frame increment
    components, physical units, read in frame blocks with a one-frame carry."""
    t, c, a = _places(com.shape[0] - 1, com.shape[1], rng)
    out = np.empty(t.size)
    for _, _, start, d in increment_blocks(com):
        inside = (t >= start) & (t < start + d.shape[0])
        out[inside] = d[t[inside] - start, c[inside], a[inside]]
    return out


def com_msd(
    com: np.ndarray, dt: float, window: tuple[int, int], chains: int = MSD_CHAINS
) -> tuple[np.ndarray, stats.DiffusionEstimate]:
    """The chain-averaged C.o.M MSD (Eq. 36, (frames,)) and Eq. 35's D over ``window`` with its
    CI over chains (:func:`mlgle.stats.diffusion_coefficient`), from com (frames, n, 3) in memory
    or memory-mapped. ``chains`` trajectories at a time are read (in frame blocks) and
    transformed; of the per-chain MSDs only lags 0..t2 are kept for all n chains."""
    frames, n = com.shape[:2]
    t2 = window[1]
    if not 0 < t2 < frames:
        raise ValueError(f"D window t2 = {t2} must be a lag of the {frames} frames")
    total = np.zeros(frames)
    head = np.empty((t2 + 1, n))  # per-chain MSDs, lags 0..t2
    for first in range(0, n, chains):
        last = min(n, first + chains)
        series = frame_slice(com, (slice(first, last),), dtype=np.float64)
        msd = stats.msd_per_trajectory(series)  # (frames, last - first)
        del series
        total += msd.sum(axis=1)
        head[:, first:last] = msd[: t2 + 1]
    return total / n, stats.diffusion_coefficient(head, dt, *window)


def evaluate(
    md_modes: np.ndarray,
    gen_modes: np.ndarray,
    gen_com: np.ndarray,
    gle: GLEModel,
    dt: float,
    temperature: float,
    d_window: tuple[int, int],
    max_lag: int,
    level: float,
    seed: int,
) -> tuple[EvaluationData, dict]:
    """Compare generated trajectories with MD at one temperature.

    md_modes: (frames, chains, k + 1, 3) physical units, mode 0 the C.o.M; gen_modes:
    (frames_gen, n, k, 3) modes 1..k; gen_com: (frames_gen, n, 3). Returns the arrays for the
    figures and a summary with D_MD, D_GLE (the fitted α²/2), D_ML-GLE with 95 % CIs, ν_min and
    the NACF band share. The mode and C.o.M arrays may be memory-mapped files of any size: they
    are read in frame blocks, one mode or a block of chains at a time (mlgle.blockio,
    :func:`com_msd`), in float64 arithmetic throughout.
    """
    rng = np.random.default_rng(seed)
    frames = md_modes.shape[0]
    k = gen_modes.shape[2]
    t1, t2 = d_window
    if t2 >= gen_modes.shape[0] or t2 >= frames:
        raise ValueError(
            f"evaluate.d_window t2 = {t2} must be < the MD frames ({frames}) and the generated "
            f"frames ({gen_modes.shape[0]})"
        )
    last = min(frames, gen_modes.shape[0]) - 1
    com_md = mode_series(md_modes, 0)
    com_gle = _md_driven_com(md_modes, gle, rng, com_md[0])
    msd_gle, d_gle_md_modes = com_msd(com_gle, dt, d_window)
    disp_gle = com_gle[last] - com_gle[0]
    del com_gle  # (frames, chains, 3) float64: only its MSD and end-to-end displacement are kept
    msd_md, d_md = com_msd(com_md, dt, d_window)
    msd_gen, d_mlgle = com_msd(gen_com, dt, d_window)  # gen_com: read in blocks, never copied

    lags = stats.log_lags(frames)
    gen_lags = stats.log_lags(gen_modes.shape[0])
    slope = stats.local_slope(msd_md, lags=lags)

    def md_mode(x: np.ndarray, j: int) -> np.ndarray:
        return mode_series(x, j + 1)

    nacf_md, nacf_gen, band, inside = stats.nacf_band_inside(
        md_modes, gen_modes, max_lag, level, md_series=md_mode, gen_series=mode_series, modes=k
    )

    n_md, n_gen = md_modes.shape[1], gen_modes.shape[1]
    take_z_md = _places(frames, n_md, rng)
    take_z_gen = _places(gen_modes.shape[0], n_gen, rng)
    take_dz_md = _places(frames - 1, n_md, rng)
    take_dz_gen = _places(gen_modes.shape[0] - 1, n_gen, rng)
    md_samples = _Sampler(md_modes, 1, k, take_z_md, take_dz_md)
    gen_samples = _Sampler(gen_modes, 0, k, take_z_gen, take_dz_gen)
    data = EvaluationData(
        temperature=temperature,
        dt=dt,
        modes=np.arange(1, k + 1),
        nacf_md=nacf_md,
        nacf_gen=nacf_gen,
        band=band,
        msd_lags=lags,
        msd_md=msd_md[lags],
        msd_gle=msd_gle[lags],
        msd_mlgle=msd_gen[gen_lags],
        msd_mlgle_lags=gen_lags,
        disp_md=com_md[last].astype(np.float64) - com_md[0],
        disp_gle=disp_gle,
        disp_mlgle=gen_com[last].astype(np.float64) - gen_com[0],
        z_md=md_samples.z,
        z_gen=gen_samples.z,
        dz_md=md_samples.dz,
        dz_gen=gen_samples.dz,
        corr_md=mode_correlation(md_modes, 1, k),
        dx_md=_increments(com_md, rng),
        dx_mlgle=_increments(gen_com, rng),
    )
    summary = {
        "temperature": temperature,
        "D_md": d_md.value,
        "D_md_ci95": list(d_md.ci95),
        "D_gle": gle.diffusion,
        "D_gle_md_modes": d_gle_md_modes.value,
        "D_mlgle": d_mlgle.value,
        "D_mlgle_ci95": list(d_mlgle.ci95),
        "nu_min": float(slope[(lags >= 1) & (lags <= t1)].min()),
        "nacf_band_fraction": float(inside.mean()),
        "nacf_band_fraction_per_mode": [float(v) for v in inside.mean(axis=1)],
        "dz_rms_ratio_per_mode": [float(v) for v in gen_samples.dz_rms / md_samples.dz_rms],
        "ks_z_per_mode": pdf_distance(data.z_md, data.z_gen),
        "ks_dz_per_mode": pdf_distance(data.dz_md, data.dz_gen),
        "msd_log_error": msd_log_error(msd_md, msd_gen),
        "units": "reduced LJ: D in sigma^2/tau, lags in frames of dt",
    }
    return data, summary


def _md_driven_com(
    md_modes: np.ndarray, gle: GLEModel, rng: np.random.Generator, x0: np.ndarray
) -> np.ndarray:
    """Eq. 13 driven by the MD modes 1..k of md_modes (frames, chains, k + 1, 3), from x0:
    (frames, chains, 3) float64, frame block by frame block (GLEModel.com_stream)."""
    stream = gle.com_stream(rng, md_modes.shape[1], np.asarray(x0, dtype=np.float64))
    out = np.empty((md_modes.shape[0], md_modes.shape[1], 3))
    for first, block in frame_blocks(md_modes):
        if not np.isfinite(block).all():
            raise ValueError(f"md_modes: non-finite value in frames from {first}")
        out[first : first + len(block)] = stream(block[:, :, 1:].astype(np.float64))
    return out


def pdf_distance(md: np.ndarray, gen: np.ndarray) -> list[float]:
    """Kolmogorov-Smirnov distance per mode between MD and generated samples (P, S) -> (P,):
    the largest gap of the two empirical CDFs (0 identical, 1 disjoint)."""
    import scipy.stats

    return [float(scipy.stats.ks_2samp(a, b).statistic) for a, b in zip(md, gen, strict=True)]


def msd_log_error(msd_md: np.ndarray, msd_gen: np.ndarray) -> float:
    """Mean |log(MSD_gen / MSD_MD)| of the C.o.M over log-spaced lags 1..L-1 that both curves
    cover (L the shorter length): a relative error of the whole MSD curve, transient included.
    msd_md (frames,), msd_gen (frames',) chain-averaged 3D MSDs."""
    lags = stats.log_lags(min(len(msd_md), len(msd_gen)))
    return float(np.mean(np.abs(np.log(msd_gen[lags] / msd_md[lags]))))
