"""`mlgle budget mlgle`: one ML-GLE point of the budget study, through the default study's code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mlgle.config import Params
from mlgle.pipeline.evaluate import evaluate
from mlgle.pipeline.fit_gle import fit_gle
from mlgle.pipeline.generate import generate
from mlgle.pipeline.train import train
from mlgle.store import atomic_dir


def budget_params(params: Params, t_train: int) -> Params:
    """params with T_train = T_fit = ``t_train`` (validation and generation start after it)."""
    return dataclasses.replace(
        params,
        train=dataclasses.replace(params.train, t_train=t_train),
        gle=dataclasses.replace(params.gle, t_fit=t_train),
    )


def mlgle_point(
    params: Params, modes_store: Path, t_train: int, out: Path, tracking: bool = True
) -> Path:
    """Train, fit the GLE, generate and evaluate with T_train = T_fit = ``t_train`` on the first
    frames of ``modes_store``, exactly as the per-temperature stages do. Writes ``out/`` with
    ``model/``, ``gle.json``, ``generated/`` and ``evaluation/`` (its summary.json holds D_MD,
    D_short, D_GLE and D_ML-GLE), all MLflow-tracked as the stages are."""
    point = budget_params(params, t_train)
    point.check()
    with atomic_dir(out) as tmp:
        train(point, modes_store, tmp / "model", progress=False, tracking=tracking)
        fit_gle(point, modes_store, tmp / "gle.json")
        generate(point, tmp / "model", modes_store, tmp / "gle.json", tmp / "generated", False)
        evaluate(point, modes_store, tmp / "generated", tmp / "gle.json", tmp / "evaluation",
                 tracking)  # fmt: skip
    return out
