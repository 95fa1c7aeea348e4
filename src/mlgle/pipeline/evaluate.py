"""`mlgle evaluate`: generated vs MD at one temperature (Table 1 row, Figs. 9, 13)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlgle.config import Params
from mlgle.store import (
    atomic_dir,
    gle_from_json,
    open_generated,
    open_modes,
    read_json,
    write_json,
)

if TYPE_CHECKING:
    from mlgle.analysis.evaluation import EvaluationData
    from mlgle.gle import GLEModel
    from mlgle.store import TrajectoryMeta


def evaluate(
    params: Params,
    modes_store: Path,
    generated: Path,
    gle_json: Path,
    out: Path,
    tracking: bool,
) -> dict:
    """Generated vs MD at one temperature: ``out/summary.json`` and ``out/evaluation.npz``."""
    from mlgle.blockio import mode_series

    z, meta = open_modes(modes_store)
    gen, com, gen_meta = open_generated(generated)
    fit = read_json(gle_json, "mlgle fit-gle")
    gle = gle_from_json(fit, gle_json)
    ev = params.evaluate
    data, summary = compare_with_md(params, z, meta, gen, com, gle)
    summary["D_gle_ci95"] = fit.get("D_gle_ci95")
    summary |= short_baseline(mode_series(z, 0), meta.dt, params, summary["D_md"])
    write_evaluation(out, data, summary, ev.nacf_modes)
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run(
            f"evaluate T={meta.temperature:g}",
            params,
            stage="evaluate",
            temperature=meta.temperature,
            matmul_backend=gen_meta.get("matmul_backend", "not recorded"),
        ) as run:
            run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
            for p, share, ratio in zip(
                data.modes,
                summary["nacf_band_fraction_per_mode"],
                summary["dz_rms_ratio_per_mode"],
                strict=True,
            ):
                child = run.nested(f"mode {p}", {"mode": int(p)})
                child.log_metrics({"nacf_band_fraction": share, "dz_rms_ratio": ratio})
                child.finish()
            for name in ("summary.json", "fig09_nacf.png", "fig13_mlgle_msd.png"):
                run.log_artifact(out / name)
    return summary


def compare_with_md(
    params: Params,
    z: np.ndarray,
    meta: TrajectoryMeta,
    gen: np.ndarray,
    com: np.ndarray,
    gle: GLEModel,
) -> tuple[EvaluationData, dict]:
    """:func:`mlgle.analysis.evaluation.evaluate` with the ``evaluate`` section's settings: MD
    modes z (frames, chains, k + 1, 3), generated modes (frames', n, k, 3) and C.o.M (frames', n,
    3), the GLE that coupled them. Shared by ML-GLE, the LOTO model and the linear baseline."""
    from mlgle.analysis.evaluation import evaluate as compare

    ev = params.evaluate
    return compare(
        z, gen, com, gle, meta.dt, meta.temperature, ev.d_window, ev.nacf_max_lag,
        ev.band_level, ev.seed,
    )  # fmt: skip


def short_baseline(com: np.ndarray, dt: float, params: Params, d_md: float) -> dict:
    """D_short (the model-free baseline) and the regime evidence at T_train / 2 for an evaluation
    summary: MD C.o.M com (frames, chains, 3), D_MD of the same run."""
    from mlgle.analysis.evaluation import regime_evidence, short_window_diffusion

    t_train = params.train.t_train
    d = short_window_diffusion(com, dt, t_train, params.evaluate.short_window)
    return {
        "D_short": d.value,
        "D_short_ci95": list(d.ci95),
        **regime_evidence(com, dt, t_train, d_md),
    }


def write_evaluation(
    out: Path, data: EvaluationData, summary: dict, nacf_modes: tuple[int, ...]
) -> Path:
    """One temperature's evaluation: evaluation.npz, summary.json and its Figs. 9 and 13."""
    from mlgle.figures import paper as pf

    with atomic_dir(out) as tmp:
        data.save(tmp / "evaluation.npz")
        write_json(tmp / "summary.json", summary)
        pf.fig09_nacf([data], tmp / "fig09_nacf.png", modes=nacf_modes)
        pf.fig13_mlgle_msd(
            [data], tmp / "fig13_mlgle_msd.png", d_md={data.temperature: summary["D_md"]}
        )
    return out
