"""`mlgle loto evaluate`: generated vs MD at T*, exactly as ``mlgle evaluate``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from mlgle.config import GLE_VARIANTS, ConditionedConfig, Params
from mlgle.pipeline.loto import check_left_out, modes_store
from mlgle.store import gle_from_json


def evaluate(
    params: Params,
    settings: ConditionedConfig,
    modes_dir: Path,
    generated: Path,
    left_out: float,
    out: Path,
    tracking: bool = True,
) -> dict[str, Any]:
    """Generated vs MD at T*, exactly as ``mlgle evaluate`` (same function and settings), once
    per GLE variant. Writes ``out/summary.json`` (the primary variant's summary plus
    ``variants``), ``out/evaluation.npz`` and Figs. 9 and 13 of the primary variant."""
    from mlgle.pipeline.evaluate import compare_with_md, short_baseline, write_evaluation

    check_left_out(params, left_out)
    mapped, meta = modes_store(modes_dir, left_out)
    z = np.asarray(mapped, dtype=np.float64)
    generated = Path(generated)
    gen = np.load(generated / "modes.npy").astype(np.float64)
    gles = json.loads((generated / "gle.json").read_text())
    trained_on = json.loads((generated / "meta.json").read_text())["trained_on"]
    ev = params.evaluate
    results = {}
    for name in GLE_VARIANTS:
        com = np.load(generated / f"com_{name}.npy").astype(np.float64)
        results[name] = compare_with_md(params, z, meta, gen, com, gle_from_json(gles[name]))
    data, summary = results[settings.gle]
    summary = {
        **summary,
        **short_baseline(z[:, :, 0], meta.dt, params, summary["D_md"]),
        "trained_on": trained_on,
        "conditioning": settings.conditioning,
        "scales": settings.scales,
        "initial": settings.initial,
        "gle": settings.gle,
        "variants": {
            name: {
                "alpha": gles[name]["alpha"],
                "beta": gles[name]["beta"],
                "D_gle": s["D_gle"],
                "D_mlgle": s["D_mlgle"],
                "D_mlgle_ci95": s["D_mlgle_ci95"],
            }
            for name, (_, s) in results.items()
        },
    }
    write_evaluation(out, data, summary, ev.nacf_modes)
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run(
            f"loto evaluate T={left_out:g}", params, stage="loto-evaluate", temperature=left_out
        ) as run:
            run.log_params({"conditioned": dataclasses.asdict(settings)})
            metrics = {k: v for k, v in summary.items() if isinstance(v, float)}
            for name, v in summary["variants"].items():
                metrics[f"D_mlgle_{name}"] = v["D_mlgle"]
                metrics[f"D_gle_{name}"] = v["D_gle"]
                metrics[f"err_{name}"] = v["D_mlgle"] / summary["D_md"] - 1
            run.log_metrics(metrics)
            for name in ("summary.json", "fig09_nacf.png", "fig13_mlgle_msd.png"):
                run.log_artifact(out / name)
    return summary
