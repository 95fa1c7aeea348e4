"""Optuna objects of a study (:class:`mlgle.config.StudySpec`): sampler, pruner, suggestions."""

from __future__ import annotations

from typing import Any

import optuna

from mlgle.config import Dimension, StudySpec


def suggest(dimension: Dimension, trial: optuna.Trial) -> Any:
    """The trial's value on one search-space axis."""
    if dimension.type == "categorical":
        return trial.suggest_categorical(dimension.name, list(dimension.choices))
    if dimension.type == "int":
        step = 1 if dimension.step is None else int(dimension.step)
        return trial.suggest_int(
            dimension.name, dimension.low, dimension.high, step=step, log=dimension.log
        )
    return trial.suggest_float(
        dimension.name, dimension.low, dimension.high, step=dimension.step, log=dimension.log
    )


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    """GridSampler over the full grid, or TPE / random, seeded with ``seed``."""
    if spec.sampler == "grid":
        return QueuedGridSampler(spec.grid(), seed=seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    options = dict(spec.pruner)
    kind = options.pop("type")
    if kind == "median":
        return optuna.pruners.MedianPruner(**options)
    if kind == "threshold":
        return optuna.pruners.ThresholdPruner(**options)
    return optuna.pruners.NopPruner()


class QueuedGridSampler(optuna.samplers.GridSampler):
    """GridSampler for studies whose grid points are queued once with ``enqueue_trial``.

    Workers only pop queued trials, so the sampler never has to pick a point; its ``after_trial``
    does not call ``study.stop()`` (invalid outside ``optimize`` and needless: an empty queue ends
    a worker). Used on its own with ``study.optimize`` it is Optuna's GridSampler.
    """

    def after_trial(self, study, trial, state, values) -> None:
        return None
