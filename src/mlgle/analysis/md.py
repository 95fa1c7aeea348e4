"""Reference statistics of an MD modes store: C.o.M MSD and its local slope, D_MD (Eq. 35),
mode NACFs with exponential and Kohlrausch fits (Eq. 33, Fig. 6), chain size."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlgle import stats


@dataclass(frozen=True)
class MDSummary:
    """What the MD reference shows at one temperature. Times in frames unless named ``*_time``."""

    temperature: float
    dt: float
    lags: np.ndarray  # (L,) log-spaced lags in frames
    msd: np.ndarray  # (frames,) 3D C.o.M MSD, chain-averaged
    slope: np.ndarray  # (L,) d log MSD / d log t at ``lags``
    nu_min: float
    d_md: stats.DiffusionEstimate
    nacf: dict[int, np.ndarray]  # mode -> (max_lag + 1,)
    fits: dict[int, tuple[stats.ExponentialFit, stats.KohlrauschFit]]
    extras: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "temperature": self.temperature,
            "dt": self.dt,
            "D_md": self.d_md.value,
            "D_md_ci95": list(self.d_md.ci95),
            "nu_min": self.nu_min,
            "nacf_fits": {
                str(p): {
                    "exp_tau": e.tau,
                    "exp_rmse": e.rmse,
                    "kww_tau": k.tau,
                    "kww_beta": k.beta,
                    "kww_amplitude": k.amplitude,
                    "kww_rmse": k.rmse,
                }
                for p, (e, k) in self.fits.items()
            },
            **self.extras,
        }


@dataclass(frozen=True)
class NACFPanel:
    """One temperature's MD mode NACFs with their fits, as Fig. 6 draws them."""

    temperature: float
    dt: float
    nacf: dict[int, np.ndarray]  # mode -> (L,)
    fits: dict[int, tuple[stats.ExponentialFit, stats.KohlrauschFit]]


def load_nacf_panel(report_dir: Path) -> NACFPanel:
    """Read ``analyze-md`` output (summary.json, nacf.csv) back into a :class:`NACFPanel`."""
    import polars as pl

    summary = json.loads((report_dir / "summary.json").read_text())
    table = pl.read_csv(report_dir / "nacf.csv")
    fits = {
        int(p): (
            stats.ExponentialFit(tau=f["exp_tau"], rmse=f["exp_rmse"]),
            stats.KohlrauschFit(
                amplitude=f["kww_amplitude"],
                tau=f["kww_tau"],
                beta=f["kww_beta"],
                rmse=f["kww_rmse"],
            ),
        )
        for p, f in summary["nacf_fits"].items()
    }
    nacf = {p: table[f"mode_{p}"].to_numpy() for p in fits}
    return NACFPanel(summary["temperature"], summary["dt"], nacf, fits)


def summarize_md(
    modes: np.ndarray,
    dt: float,
    temperature: float,
    d_window: tuple[int, int],
    nacf_modes: tuple[int, ...],
    fit_lags: int,
    nacf_max_lag: int,
) -> MDSummary:
    """modes: (frames, chains, k + 1, 3) with mode 0 the C.o.M.

    ν_min is the smallest local exponent of the C.o.M MSD between 1 frame and t1 = d_window[0],
    on a log grid (the transient sub-diffusive regime). NACF fits use the first ``fit_lags`` lags,
    like the paper's fits on T_train points.
    """
    frames = modes.shape[0]
    t1, t2 = d_window
    if t2 >= frames:
        raise ValueError(
            f"evaluate.d_window = [{t1}, {t2}] needs more than {t2} frames; the store has {frames}"
        )
    per_chain = stats.msd_per_trajectory(modes[:, :, 0])
    msd = per_chain.mean(axis=1)
    lags = stats.log_lags(frames)
    slope = stats.local_slope(msd, lags=lags)
    transient = (lags >= 1) & (lags <= t1)
    d_md = stats.diffusion_coefficient(per_chain, dt, t1, t2)
    nacf: dict[int, np.ndarray] = {}
    fits = {}
    for p in (p for p in nacf_modes if p < modes.shape[2]):
        full = stats.acf(modes[:, :, p])
        nacf[p] = full[: nacf_max_lag + 1]
        fits[p] = (
            stats.fit_exponential(full, dt, max_lag=fit_lags),
            stats.fit_kohlrausch(full, dt, max_lag=fit_lags),
        )
    return MDSummary(
        temperature=temperature,
        dt=dt,
        lags=lags,
        msd=msd,
        slope=slope,
        nu_min=float(slope[transient].min()),
        d_md=d_md,
        nacf=nacf,
        fits=fits,
    )


def chain_size(positions: np.ndarray, every: int) -> dict[str, float]:
    """Mean squared radius of gyration and mean bond length over every ``every``-th frame.

    positions: (frames, chains, beads, 3).
    """
    x = np.asarray(positions[::every], dtype=np.float64)
    centred = x - x.mean(axis=2, keepdims=True)
    rg2 = float((centred**2).sum(axis=-1).mean())
    bonds = np.linalg.norm(np.diff(x, axis=2), axis=-1)
    return {"rg2": rg2, "bond_length": float(bonds.mean()), "bond_length_max": float(bonds.max())}
