"""The paper's evaluation figures (Figs. 5, 7, 9, 12-15, 18) drawn from :class:`EvaluationData`.

Each ``figNN_*`` checks its input, draws every temperature given (one column or row each, in the
order given) and writes a PNG atomically with :func:`mlgle.report.figures.save`, returning the
path. The matching ``draw_*`` returns the open Figure instead (tests, MLflow artifacts). A mode
keeps its colour across panels (its position in the requested ``modes``); MD is drawn solid and
dark, generated data dashed. Lags are frames; times are lag·dt in τ, lengths in σ (reduced LJ).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import scipy.stats
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from mlgle.analysis.evaluation import EvaluationData
from mlgle.figures.common import UNITS, save

MD_COLOUR = "0.2"
GLE_COLOUR = sns.color_palette("colorblind")[2]
GEN_COLOUR = sns.color_palette("colorblind")[4]
PAPER_MODES = (1, 2, 5, 10)
NLL_COLUMNS = ("epoch", "mode", "train_nll", "val_nll")
DIFFUSION_KEYS = ("temperature", "D_md", "D_md_ci95", "D_gle", "D_mlgle", "D_mlgle_ci95")
# The baselines, drawn when every row has them: no model (Eq. 35 on the training frames) and the
# linear AR model in place of the network.
OPTIONAL_DIFFUSION = ("D_short", "D_short_ci95", "D_linear", "D_linear_ci95")
SHORT_COLOUR = sns.color_palette("colorblind")[1]
LINEAR_COLOUR = sns.color_palette("colorblind")[0]

# Expected shape of each EvaluationData array; letters are sizes that must agree within one entry.
_SHAPES: dict[str, tuple[str | int, ...]] = {
    "modes": ("P",),
    "nacf_md": ("P", "L"),
    "nacf_gen": ("P", "L"),
    "band": ("P", "L"),
    "msd_lags": ("M",),
    "msd_md": ("M",),
    "msd_gle": ("M",),
    "msd_mlgle_lags": ("M'",),
    "msd_mlgle": ("M'",),
    "disp_md": ("chains", 3),
    "disp_gle": ("chains", 3),
    "disp_mlgle": ("n", 3),
    "z_md": ("P", "S_md"),
    "z_gen": ("P", "S_gen"),
    "dz_md": ("P", "S_dmd"),
    "dz_gen": ("P", "S_dgen"),
    "corr_md": ("P", "P"),
    "dx_md": ("S_xmd",),
    "dx_mlgle": ("S_xgen",),
}


# ---------------------------------------------------------------------------------------------
# Input checks


def _check_data(data: Sequence[EvaluationData], *names: str) -> list[EvaluationData]:
    """Non-empty sequence of EvaluationData with dt > 0 and the named arrays shaped per _SHAPES."""
    if isinstance(data, EvaluationData) or not isinstance(data, Sequence) or len(data) == 0:
        raise ValueError(f"data: expected a non-empty sequence of EvaluationData, got {data!r:.80}")
    for i, d in enumerate(data):
        if not isinstance(d, EvaluationData):
            raise ValueError(f"data[{i}]: expected EvaluationData, got {type(d).__name__}")
        if not d.dt > 0:
            raise ValueError(f"data[{i}] (T = {d.temperature:g}).dt: expected > 0, got {d.dt}")
        sizes: dict[str | int, int] = {}
        for name in ("modes", *names):
            shape = np.shape(getattr(d, name))
            spec = _SHAPES[name]
            ok = len(shape) == len(spec) and 0 not in shape
            for want, got in zip(spec, shape, strict=False):
                ok = ok and sizes.setdefault(want, want if isinstance(want, int) else got) == got
            if not ok:
                known = ", ".join(f"{k} = {v}" for k, v in sizes.items() if isinstance(k, str))
                raise ValueError(
                    f"data[{i}] (T = {d.temperature:g}).{name}: expected non-empty shape "
                    f"({', '.join(map(str, spec))}) with {known}, got {shape}"
                )
    return list(data)


def _pick_modes(d: EvaluationData, modes: Sequence[int]) -> list[tuple[int, int]]:
    """(row index in d's arrays, mode number) of the requested modes that d evaluated."""
    present = [(int(np.flatnonzero(d.modes == p)[0]), int(p)) for p in modes if p in d.modes]
    if not present:
        raise ValueError(
            f"modes: none of {tuple(modes)} evaluated at T = {d.temperature:g} "
            f"(data.modes = {np.asarray(d.modes).tolist()})"
        )
    return present


def _check_modes(modes: Sequence[int]) -> tuple[int, ...]:
    if len(modes) == 0 or any(int(p) != p or p < 1 for p in modes):
        raise ValueError(f"modes: expected a non-empty sequence of mode numbers >= 1, got {modes}")
    return tuple(int(p) for p in modes)


# ---------------------------------------------------------------------------------------------
# Small shared helpers


def _grid(rows: int, cols: int, width: float, height: float, **kw) -> tuple[Figure, np.ndarray]:
    """A (rows, cols) array of axes, each panel width x height inches, constrained layout.

    The Figure is not registered with pyplot, so one abandoned on a bad input is simply freed."""
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False, **kw)


def _title(ax: Axes, d: EvaluationData, what: str = "") -> None:
    ax.set_title(f"T = {d.temperature:g}" + (f", {what}" if what else ""))


def _colours(modes: Sequence[int]) -> dict[int, tuple[float, float, float]]:
    return dict(zip(modes, sns.color_palette("colorblind", len(modes)), strict=True))


def _styles(**labels: str) -> list[Line2D]:
    """Legend handles for line styles, e.g. _styles(MD="-", generated="--")."""
    return [Line2D([], [], color="0.3", ls=ls, label=name) for name, ls in labels.items()]


def _legend_right(ax: Axes, handles: list) -> None:
    """Legend outside the panel, to its right (constrained layout makes room)."""
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=7
    )


def _edges(*samples: np.ndarray, bins: int = 60) -> np.ndarray:
    """Common histogram edges covering every sample."""
    return np.histogram_bin_edges(np.concatenate([np.ravel(s) for s in samples]), bins=bins)


def _pdf(samples: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram density normalised by the total sample count: (len(edges) - 1,)."""
    counts, _ = np.histogram(samples, bins=edges)
    return counts / (np.size(samples) * np.diff(edges))


def _band_share(d: EvaluationData) -> np.ndarray:
    """(P,) share of lags >= 1 where |NACF_gen - NACF_MD| <= the MD 99 % band (Eq. 34)."""
    return (np.abs(d.nacf_gen - d.nacf_md) <= d.band)[:, 1:].mean(axis=1)


def _thin(n: int, keep: int = 400, tail: int = 25) -> np.ndarray:
    """Indices of ~keep evenly spaced order statistics out of n, plus every one in both tails."""
    return np.unique(
        np.r_[np.linspace(0, n - 1, keep).astype(int), 0:tail, n - tail : n].clip(0, n - 1)
    )


# ---------------------------------------------------------------------------------------------
# Fig. 5: mode cross-correlations


def draw_fig05(data: Sequence[EvaluationData]) -> Figure:
    """Fig. 5: heatmaps of corr_md (P, P) per temperature, one colour scale on [-1, 1]."""
    data = _check_data(data, "corr_md")
    fig, axes = _grid(1, len(data), 3.3, 3.1)
    for ax, d in zip(axes[0], data, strict=True):
        k = d.modes.size
        image = ax.imshow(d.corr_md, cmap="vlag", vmin=-1.0, vmax=1.0, interpolation="nearest")
        ticks = np.arange(0, k, max(1, k // 10))
        ax.set_xticks(ticks, d.modes[ticks])
        ax.set_yticks(ticks, d.modes[ticks])
        ax.set_xlabel("mode p")
        _title(ax, d)
    axes[0, 0].set_ylabel("mode q")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="⟨z_p · z_q⟩ / (σ_p σ_q)")
    fig.suptitle(f"Equal-time mode correlations, MD (Fig. 5; {UNITS})")
    return fig


def fig05_mode_correlation(data: Sequence[EvaluationData], path: str | Path) -> Path:
    """Writes Fig. 5 to ``path`` (PNG); see :func:`draw_fig05`."""
    return save(draw_fig05(data), path)


# ---------------------------------------------------------------------------------------------
# Fig. 7: NLL curves


def _check_curves(curves: Mapping[float, pl.DataFrame]) -> None:
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(
            f"curves: expected a non-empty mapping temperature -> DataFrame, got {curves!r:.80}"
        )
    for t, frame in curves.items():
        if not isinstance(frame, pl.DataFrame):
            raise ValueError(
                f"curves[{t}]: expected a polars DataFrame, got {type(frame).__name__}"
            )
        missing = [c for c in NLL_COLUMNS if c not in frame.columns]
        if missing or frame.height == 0:
            raise ValueError(
                f"curves[{t}]: expected a non-empty DataFrame with columns {list(NLL_COLUMNS)}; "
                f"missing {missing}, {frame.height} rows"
            )


def draw_fig07(curves: Mapping[float, pl.DataFrame], modes: Sequence[int] = (1, 2)) -> Figure:
    """Fig. 7: training (solid) and validation (dashed) NLL (Eq. 21) per epoch and mode, one panel
    per temperature; the dot marks each mode's best epoch (validation minimum)."""
    _check_curves(curves)
    modes = _check_modes(modes)
    colours = _colours(modes)
    fig, axes = _grid(1, len(curves), 3.6, 3.0)
    for ax, (t, frame) in zip(axes[0], curves.items(), strict=True):
        shown = [p for p in modes if p in set(frame["mode"].to_list())]
        if not shown:
            raise ValueError(
                f"modes: none of {modes} in curves[{t}] (modes {frame['mode'].unique().to_list()})"
            )
        for p in shown:
            rows = frame.filter(pl.col("mode") == p).sort("epoch")
            epoch, val = rows["epoch"].to_numpy(), rows["val_nll"].to_numpy().astype(float)
            ax.plot(epoch, rows["train_nll"].to_numpy(), "-", color=colours[p], label=f"p = {p}")
            ax.plot(epoch, val, "--", color=colours[p])
            if np.isfinite(val).any():
                best = int(np.nanargmin(val))
                ax.plot(epoch[best], val[best], "o", color=colours[p], ms=5)
        ax.set_title(f"T = {t:g}")
        ax.set_xlabel("epoch")
        handles = ax.get_legend_handles_labels()[0] + _styles(train="-", validation="--")
        handles.append(Line2D([], [], ls="", marker="o", color="0.3", label="best epoch"))
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.22),
            ncol=3,
            frameon=False,
            fontsize=7,
        )
    axes[0, 0].set_ylabel("NLL per increment (Eq. 21)")
    fig.suptitle(f"NAR training curves (Fig. 7; standardised increments, {UNITS})")
    return fig


def fig07_nll_curves(
    curves: Mapping[float, pl.DataFrame], path: str | Path, modes: Sequence[int] = (1, 2)
) -> Path:
    """Writes Fig. 7 to ``path``; curves[T] has columns epoch, mode, train_nll, val_nll."""
    return save(draw_fig07(curves, modes), path)


# ---------------------------------------------------------------------------------------------
# Fig. 9: NACFs and PDFs


def _nacf_panel(ax: Axes, d: EvaluationData, picked, colours) -> list[Line2D]:
    """MD NACF with its 99 % band and generated NACF per picked mode; returns legend handles."""
    t = np.arange(1, d.nacf_md.shape[1]) * d.dt
    share = _band_share(d)
    handles = []
    for j, p in picked:
        md, band, c = d.nacf_md[j, 1:], d.band[j, 1:], colours[p]
        ax.fill_between(t, md - band, md + band, color=c, alpha=0.25, lw=0)
        ax.plot(t, md, "-", color=c)
        ax.plot(t, d.nacf_gen[j, 1:], "--", color=c)
        handles.append(Line2D([], [], color=c, label=f"p = {p}: {100 * share[j]:.0f} % in band"))
    ax.set_xscale("log")
    ax.set_xlabel("t [τ]")
    ax.set_ylabel("NACF")
    return handles


def _pdf_panel(ax: Axes, md: np.ndarray, gen: np.ndarray, picked, colours, xlabel: str) -> None:
    """PDFs (at bin centres) of MD (solid) and generated (dashed) samples (P, S), picked modes."""
    edges = _edges(*(md[j] for j, _ in picked), *(gen[j] for j, _ in picked), bins=40)
    centres = (edges[1:] + edges[:-1]) / 2
    for j, p in picked:
        ax.plot(centres, _pdf(md[j], edges), "-", color=colours[p])
        ax.plot(centres, _pdf(gen[j], edges), "--", color=colours[p])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PDF")


def draw_fig09(data: Sequence[EvaluationData], modes: Sequence[int] = PAPER_MODES) -> Figure:
    """Fig. 9: one row per temperature, NACFs of MD (with the 99 % Mélard-Roy band, Eq. 34) and
    generated modes (left), PDFs of the standardised increments Δz (centre) and of z (right)."""
    data = _check_data(data, "nacf_md", "nacf_gen", "band", "z_md", "z_gen", "dz_md", "dz_gen")
    modes = _check_modes(modes)
    colours = _colours(modes)
    fig, axes = _grid(len(data), 3, 3.3, 2.7)
    for row, d in zip(axes, data, strict=True):
        picked = _pick_modes(d, modes)
        handles = _nacf_panel(row[0], d, picked, colours)
        _pdf_panel(row[1], d.dz_md, d.dz_gen, picked, colours, "Δz / σ_Δz")
        _pdf_panel(row[2], d.z_md, d.z_gen, picked, colours, "z / σ_z")
        for ax, what in zip(row, ("NACF", "Δz PDF", "z PDF"), strict=True):
            _title(ax, d, what)
        band = Line2D([], [], color="0.3", lw=6, alpha=0.25, label="MD 99 % band")
        _legend_right(row[2], [*handles, *_styles(MD="-", generated="--"), band])
    fig.suptitle(f"Mode statistics, MD vs NAR (Fig. 9; {UNITS})")
    return fig


def fig09_nacf(
    data: Sequence[EvaluationData], path: str | Path, modes: Sequence[int] = PAPER_MODES
) -> Path:
    """Writes Fig. 9 to ``path``; the requested modes that were evaluated are shown."""
    return save(draw_fig09(data, modes), path)


# ---------------------------------------------------------------------------------------------
# Figs. 12, 13: C.o.M MSD and displacement PDFs


def _last_time(d: EvaluationData) -> float:
    """Time of the displacements: the last lag common to MD and generated runs (evaluate)."""
    return min(d.msd_lags[-1], d.msd_mlgle_lags[-1]) * d.dt


def _diffusive_guide(ax: Axes, d: EvaluationData, d_md: Mapping[float, float]) -> None:
    """6 D_MD t where it lies above the smallest MD MSD (keeps the y range on the data)."""
    if d.temperature not in d_md:
        raise ValueError(f"d_md: no D_MD for T = {d.temperature:g} (keys {list(d_md)})")
    t = d.msd_lags * d.dt
    guide = 6 * d_md[d.temperature] * t
    late = guide >= d.msd_md.min()
    ax.loglog(t[late], guide[late], ":", color="0.5", label="6 D_MD t")


def _draw_msd_pdf(
    data: Sequence[EvaluationData],
    model: str,
    colour,
    curve: Callable[[EvaluationData], tuple[np.ndarray, np.ndarray, np.ndarray]],
    d_md: Mapping[float, float] | None,
    fig_name: str,
) -> Figure:
    """Top: MSD of MD (solid) and ``model`` (dashed), log-log; bottom: PDF of the displacement
    components X(T) - X(0) pooled over x, y, z. ``curve(d)`` -> (lags, msd, disp)."""
    fig, axes = _grid(2, len(data), 3.4, 2.8)
    for (top, bottom), d in zip(axes.T, data, strict=True):
        lags, msd, disp = curve(d)
        top.loglog(d.msd_lags * d.dt, d.msd_md, "-", color=MD_COLOUR, label="MD")
        top.loglog(lags * d.dt, msd, "--", color=colour, label=model)
        if d_md is not None:
            _diffusive_guide(top, d, d_md)
        top.yaxis.set_minor_formatter(NullFormatter())
        top.set_xlabel("t [τ]")
        _title(top, d)
        edges = _edges(d.disp_md, disp, bins=int(np.clip(np.sqrt(d.disp_md.size), 10, 50)))
        bottom.stairs(_pdf(d.disp_md, edges), edges, color=MD_COLOUR, fill=True, alpha=0.3)
        bottom.stairs(_pdf(disp, edges), edges, color=colour, ls="--", lw=1.5)
        bottom.set_xlabel(f"X(t) − X(0) per component [σ], t = {_last_time(d):g} τ")
    axes[0, 0].set_ylabel("C.o.M MSD [σ²]")
    axes[1, 0].set_ylabel("PDF [1/σ]")
    axes[0, 0].legend(loc="upper left", frameon=False, fontsize=7)
    fig.suptitle(f"C.o.M dynamics, MD vs {model} ({fig_name}; {UNITS})")
    return fig


def draw_fig12(data: Sequence[EvaluationData], d_md: Mapping[float, float] | None = None) -> Figure:
    """Fig. 12: MD vs the GLE (Eq. 13) driven by the MD modes; optional 6 D_MD t guide."""
    data = _check_data(
        data, "msd_lags", "msd_md", "msd_gle", "disp_md", "disp_gle", "msd_mlgle_lags"
    )
    return _draw_msd_pdf(
        data,
        "GLE (MD modes)",
        GLE_COLOUR,
        lambda d: (d.msd_lags, d.msd_gle, d.disp_gle),
        d_md,
        "Fig. 12",
    )


def fig12_gle_msd(
    data: Sequence[EvaluationData], path: str | Path, d_md: Mapping[float, float] | None = None
) -> Path:
    """Writes Fig. 12 to ``path``; ``d_md`` maps temperature -> D_MD for the 6 D t guide."""
    return save(draw_fig12(data, d_md), path)


def draw_fig13(data: Sequence[EvaluationData], d_md: Mapping[float, float] | None = None) -> Figure:
    """Fig. 13: MD vs ML-GLE (NAR-generated modes driving Eq. 13); optional 6 D_MD t guide."""
    data = _check_data(
        data, "msd_lags", "msd_md", "disp_md", "msd_mlgle_lags", "msd_mlgle", "disp_mlgle"
    )
    return _draw_msd_pdf(
        data,
        "ML-GLE",
        GEN_COLOUR,
        lambda d: (d.msd_mlgle_lags, d.msd_mlgle, d.disp_mlgle),
        d_md,
        "Fig. 13",
    )


def fig13_mlgle_msd(
    data: Sequence[EvaluationData], path: str | Path, d_md: Mapping[float, float] | None = None
) -> Path:
    """Writes Fig. 13 to ``path``; ``d_md`` maps temperature -> D_MD for the 6 D t guide."""
    return save(draw_fig13(data, d_md), path)


# ---------------------------------------------------------------------------------------------
# Fig. 14: diffusion coefficients


def _diffusion_table(rows: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """rows -> arrays sorted by temperature; CIs (n, 2). Checks keys and lo <= D <= hi."""
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise ValueError(f"rows: expected a non-empty sequence of mappings, got {rows!r:.80}")
    for i, row in enumerate(rows):
        missing = [k for k in DIFFUSION_KEYS if k not in row]
        if missing:
            raise ValueError(f"rows[{i}]: missing keys {missing}; expected {list(DIFFUSION_KEYS)}")
        for key in ("D_md", "D_mlgle"):
            ci = np.asarray(row[f"{key}_ci95"], dtype=float)
            if ci.shape != (2,) or not ci[0] <= row[key] <= ci[1]:
                raise ValueError(
                    f"rows[{i}].{key}_ci95: expected [lo, hi] with lo <= {key} = {row[key]} <= hi, "
                    f"got {row[f'{key}_ci95']}"
                )
    order = np.argsort([row["temperature"] for row in rows])
    table = {k: np.array([rows[i][k] for i in order], dtype=float) for k in DIFFUSION_KEYS}
    for key in ("D_gle_ci95", *OPTIONAL_DIFFUSION):  # present in every row, or not drawn
        values = [rows[i].get(key) for i in order]
        if all(v is not None for v in values):
            table[key] = np.array(values, dtype=float)
    return table


def draw_fig14(rows: Sequence[Mapping]) -> Figure:
    """Fig. 14: D_MD and D_ML-GLE (Eq. 35) with 95 % CIs and D_GLE = α²/2 against temperature,
    with its bootstrap 95 % CI where every row carries ``D_gle_ci95``, and the baselines
    D_short (no model) and D_linear (linear AR in place of the network) where every row carries
    them. The series are offset slightly in T so the error bars stay readable."""
    tab = _diffusion_table(rows)
    t = tab["temperature"]
    shift = 0.06 * (np.diff(t).min() if t.size > 1 and np.diff(t).min() > 0 else 0.1)
    fig, axes = _grid(1, 1, 5.2, 3.6)
    ax = axes[0, 0]
    for key, dx, colour, label, marker in (
        ("D_md", -2 * shift, MD_COLOUR, "MD (long run)", "o"),
        ("D_short", -shift, SHORT_COLOUR, "no model: Eq. 35 on the training MD", "v"),
        ("D_gle", 0.0, GLE_COLOUR, "GLE fit, α²/2", "s"),
        ("D_linear", shift, LINEAR_COLOUR, "linear AR + GLE", "D"),
        ("D_mlgle", 2 * shift, GEN_COLOUR, "ML-GLE", "o"),
    ):
        if key not in tab:
            continue
        if f"{key}_ci95" not in tab:
            ax.plot(t + dx, tab[key], marker, color=colour, label=label)
            continue
        ci = tab[f"{key}_ci95"]
        err = np.stack([tab[key] - ci[:, 0], ci[:, 1] - tab[key]])
        ax.errorbar(t + dx, tab[key], yerr=err, fmt=marker, color=colour, capsize=3, label=label)
    ax.set_xlabel("T [ε/k_B]")
    ax.set_ylabel("D [σ²/τ]")
    ax.legend(loc="upper left", frameon=False, fontsize=7)
    ax.set_title(f"Diffusion coefficients, 95 % CIs (Fig. 14; {UNITS})", fontsize=9)
    return fig


def fig14_diffusion(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Writes Fig. 14 to ``path``; rows carry temperature, D_md, D_md_ci95, D_gle, D_mlgle,
    D_mlgle_ci95 (the summaries returned by evaluate)."""
    return save(draw_fig14(rows), path)


# ---------------------------------------------------------------------------------------------
# Fig. 15: increment PDFs with Gaussian fits


def _gauss_panel(ax: Axes, samples: np.ndarray, colour, label: str) -> None:
    """Log-y step PDF of pooled samples with the Gaussian of their mean and std."""
    edges = _edges(samples)
    density = _pdf(samples, edges)
    mean, std = samples.mean(), samples.std()  # rounded + 0.0 below: no "-0.00" in the label
    x = np.linspace(edges[0], edges[-1], 400)
    ax.stairs(density, edges, color=colour, fill=True, alpha=0.35, label=label)
    ax.plot(
        x,
        scipy.stats.norm.pdf(x, mean, std),
        "--",
        color="0.1",
        lw=1,
        label=f"N(μ = {round(mean, 2) + 0.0:.2f}, σ = {std:.2f})",
    )
    ax.set_yscale("log")
    ax.set_ylim(0.3 / samples.size / np.diff(edges)[0], 20 * density.max())
    ax.legend(loc="upper right", frameon=False, fontsize=7)


def draw_fig15(data: Sequence[EvaluationData], modes: Sequence[int] | None = None) -> Figure:
    """Fig. 15: (Appendix B) PDF of the standardised increments Δz pooled over ``modes`` (all
    evaluated when None) and components, with fitted Gaussians; MD left, generated right."""
    data = _check_data(data, "dz_md", "dz_gen")
    picks = [_pick_modes(d, _check_modes(d.modes if modes is None else modes)) for d in data]
    fig, axes = _grid(len(data), 2, 3.4, 2.6, sharex="row")
    for (left, right), d, picked in zip(axes, data, picks, strict=True):
        rows = [j for j, _ in picked]
        _gauss_panel(left, d.dz_md[rows].ravel(), MD_COLOUR, "MD")
        _gauss_panel(right, d.dz_gen[rows].ravel(), GEN_COLOUR, "NAR")
        for ax, who in ((left, "MD"), (right, "generated")):
            _title(ax, d, who)
            ax.set_xlabel("Δz / σ_Δz")
        left.set_ylabel("PDF")
    fig.suptitle(f"Increment PDFs and Gaussian fits (Fig. 15; {UNITS})")
    return fig


def fig15_increment_pdfs(
    data: Sequence[EvaluationData], path: str | Path, modes: Sequence[int] | None = None
) -> Path:
    """Writes Fig. 15 to ``path``."""
    return save(draw_fig15(data, modes), path)


def draw_fig16(data: Sequence[EvaluationData]) -> Figure:
    """Fig. 16: (Appendix B) PDF of the one-frame C.o.M increments ΔX (components pooled) with
    fitted Gaussians; MD left, ML-GLE right."""
    data = _check_data(data, "dx_md", "dx_mlgle")
    fig, axes = _grid(len(data), 2, 3.4, 2.6, sharex="row")
    for (left, right), d in zip(axes, data, strict=True):
        _gauss_panel(left, d.dx_md, MD_COLOUR, "MD")
        _gauss_panel(right, d.dx_mlgle, GEN_COLOUR, "ML-GLE")
        for ax, who in ((left, "MD"), (right, "ML-GLE")):
            _title(ax, d, who)
            ax.set_xlabel("ΔX [σ] per Δt")
        left.set_ylabel("PDF")
    fig.suptitle(f"C.o.M increment PDFs and Gaussian fits (Fig. 16; {UNITS})")
    return fig


def fig16_com_increment_pdfs(data: Sequence[EvaluationData], path: str | Path) -> Path:
    """Writes Fig. 16 to ``path``."""
    return save(draw_fig16(data), path)


# ---------------------------------------------------------------------------------------------
# Fig. 18: normal probability plots


def _probplot(ax: Axes, samples: np.ndarray, colour, marker: str, label: str) -> None:
    """Ordered samples vs N(0, 1) quantiles (thinned, tails kept) and the least-squares line."""
    (theory, ordered), (slope, intercept, _) = scipy.stats.probplot(samples, dist="norm")
    keep = _thin(theory.size)
    ax.plot(theory[keep], ordered[keep], marker, color=colour, ms=3, mfc="none", label=label)
    ax.plot(theory[[0, -1]], slope * theory[[0, -1]] + intercept, "-", color=colour, lw=0.8)


def draw_fig18(data: Sequence[EvaluationData], modes: Sequence[int] = PAPER_MODES) -> Figure:
    """Fig. 18: (Appendix D) normal probability plots of z (MD grey circles, generated coloured
    triangles) with their least-squares lines; rows temperatures, columns the requested modes."""
    data = _check_data(data, "z_md", "z_gen")
    modes = _check_modes(modes)
    colours = _colours(modes)
    picks = [{p: j for j, p in _pick_modes(d, modes)} for d in data]
    shown = [p for p in modes if any(p in picked for picked in picks)]
    fig, axes = _grid(len(data), len(shown), 2.6, 2.5, sharex=True)
    for row, d, picked in zip(axes, data, picks, strict=True):
        for ax, p in zip(row, shown, strict=True):
            if p not in picked:
                ax.set_axis_off()
                continue
            _probplot(ax, d.z_md[picked[p]], MD_COLOUR, "o", "MD")
            _probplot(ax, d.z_gen[picked[p]], colours[p], "^", "NAR")
            _title(ax, d, f"p = {p}")
            ax.legend(loc="upper left", frameon=False, fontsize=7)
        row[0].set_ylabel("ordered z / σ_z")
    for ax in axes[-1]:
        ax.set_xlabel("N(0, 1) quantile")
    fig.suptitle(f"Normal probability plots of the modes (Fig. 18; {UNITS})")
    return fig


def fig18_probability_plots(
    data: Sequence[EvaluationData], path: str | Path, modes: Sequence[int] = PAPER_MODES
) -> Path:
    """Writes Fig. 18 to ``path``; one column per requested mode evaluated at any temperature,
    blank where a temperature lacks it."""
    return save(draw_fig18(data, modes), path)
