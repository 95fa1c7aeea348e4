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
from mlgle.gle import GLEModel

# Samples kept per mode for the PDFs and probability plots.
PDF_SAMPLES = 20_000


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


def mode_correlation(modes: np.ndarray) -> np.ndarray:
    """Equal-time correlation matrix of modes, averaged over frames, chains and components.

    modes: (frames, chains, K, 3) -> (K, K), unit diagonal. No mean is subtracted (zero by
    symmetry), matching the NACF convention.
    """
    x = np.asarray(modes, dtype=np.float64)
    cov = np.einsum("tcid,tcjd->ij", x, x) / (x.shape[0] * x.shape[1] * 3)
    scale = np.sqrt(np.diag(cov))
    return cov / np.outer(scale, scale)


def _increments(com: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """com: (frames, n, 3) -> (S,) random one-frame increment components, physical units."""
    flat = np.diff(com, axis=0).reshape(-1)
    return flat[rng.choice(flat.size, size=min(PDF_SAMPLES, flat.size), replace=False)]


def _samples(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """values: (frames, chains, P, 3) -> (P, S) random components, standardised per mode."""
    flat = np.moveaxis(values, 2, 0).reshape(values.shape[2], -1)
    flat = flat / np.sqrt((flat**2).mean(axis=1, keepdims=True))
    take = rng.choice(flat.shape[1], size=min(PDF_SAMPLES, flat.shape[1]), replace=False)
    return flat[:, take]


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
    the NACF band share.
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
    slow_md = md_modes[:, :, 1 : k + 1]
    com_md = md_modes[:, :, 0]
    com_gle = gle.generate_com(slow_md, rng, x0=com_md[0])

    msd_md_chain = stats.msd_per_trajectory(com_md)
    msd_gle_chain = stats.msd_per_trajectory(com_gle)
    msd_gen_chain = stats.msd_per_trajectory(gen_com)
    d_md = stats.diffusion_coefficient(msd_md_chain, dt, t1, t2)
    d_gle_md_modes = stats.diffusion_coefficient(msd_gle_chain, dt, t1, t2)
    d_mlgle = stats.diffusion_coefficient(msd_gen_chain, dt, t1, t2)

    lags = stats.log_lags(frames)
    gen_lags = stats.log_lags(gen_modes.shape[0])
    msd_md = msd_md_chain.mean(axis=1)
    slope = stats.local_slope(msd_md, lags=lags)

    nacf_md, nacf_gen, band, inside = stats.nacf_band_inside(slow_md, gen_modes, max_lag, level)
    last = min(frames, gen_modes.shape[0]) - 1

    dz_md_all = np.diff(slow_md, axis=0)
    dz_gen_all = np.diff(gen_modes, axis=0)
    data = EvaluationData(
        temperature=temperature,
        dt=dt,
        modes=np.arange(1, k + 1),
        nacf_md=nacf_md,
        nacf_gen=nacf_gen,
        band=band,
        msd_lags=lags,
        msd_md=msd_md[lags],
        msd_gle=msd_gle_chain.mean(axis=1)[lags],
        msd_mlgle=msd_gen_chain.mean(axis=1)[gen_lags],
        msd_mlgle_lags=gen_lags,
        disp_md=com_md[last] - com_md[0],
        disp_gle=com_gle[last] - com_gle[0],
        disp_mlgle=gen_com[last] - gen_com[0],
        z_md=_samples(slow_md, rng),
        z_gen=_samples(gen_modes, rng),
        dz_md=_samples(dz_md_all, rng),
        dz_gen=_samples(dz_gen_all, rng),
        corr_md=mode_correlation(slow_md),
        dx_md=_increments(com_md, rng),
        dx_mlgle=_increments(gen_com, rng),
    )
    scale_dz_md = np.sqrt((dz_md_all**2).mean(axis=(0, 1, 3)))
    scale_dz_gen = np.sqrt((dz_gen_all**2).mean(axis=(0, 1, 3)))
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
        "dz_rms_ratio_per_mode": [float(v) for v in scale_dz_gen / scale_dz_md],
        "ks_z_per_mode": pdf_distance(data.z_md, data.z_gen),
        "ks_dz_per_mode": pdf_distance(data.dz_md, data.dz_gen),
        "msd_log_error": msd_log_error(msd_md, msd_gen_chain.mean(axis=1)),
        "units": "reduced LJ: D in sigma^2/tau, lags in frames of dt",
    }
    return data, summary


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
