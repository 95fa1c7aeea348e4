"""One row per trial (and the training curves) from a study, for the tables and figures."""

from __future__ import annotations

import numpy as np
import optuna
import polars as pl

from mlgle.config import StudySpec

_CURVES = ("train_nll_curve", "val_nll_curve")


def _valued(trial: optuna.trial.FrozenTrial, spec: StudySpec) -> bool:
    state = optuna.trial.TrialState
    return trial.state == state.COMPLETE or (
        trial.state == state.PRUNED and spec.metric == "best_val_nll"
    )


def trials_table(study: optuna.Study, spec: StudySpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per trial: number, state, params, metric, scalar user attrs and the study's
    constants (D_MD per temperature, ...); long-format curves).

    Curves (training studies): number, params, epoch, mode, train_nll, val_nll.
    """
    rows, curves = [], []
    names = [d.name for d in spec.space]
    constants = study.user_attrs.get("constants", {})
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        values = t.system_attrs.get("fixed_params", {}) | t.params
        duration = t.duration.total_seconds() if t.duration is not None else None
        row = {
            "number": t.number,
            "state": t.state.name,
            **{n: values.get(n) for n in names},
            # Optuna gives a PRUNED trial its last intermediate value (a validation NLL):
            # only a study whose metric is that NLL may show it as the metric.
            spec.metric: t.value if _valued(t, spec) else None,
            "duration_s": duration,
        }
        row |= {
            k: v
            for k, v in t.user_attrs.items()
            if k not in row and (v is None or isinstance(v, str | int | float | bool))
        }
        row |= {k: v for k, v in constants.items() if k not in row}
        rows.append(row)
        if all(c in t.user_attrs for c in _CURVES):
            train, val = (np.asarray(t.user_attrs[c], dtype=np.float64) for c in _CURVES)
            epochs, k = val.shape
            curves.append(
                pl.DataFrame(
                    {
                        "number": np.full(epochs * k, t.number),
                        **{n: [values.get(n)] * (epochs * k) for n in names},
                        "epoch": np.repeat(np.arange(epochs), k),
                        "mode": np.tile(np.arange(1, k + 1), epochs),
                        "train_nll": train.reshape(-1),
                        "val_nll": val.reshape(-1),
                    }
                )
            )
    table = (
        pl.DataFrame(rows, infer_schema_length=None)
        if rows
        else pl.DataFrame({"number": [], "state": []})
    )
    return table, (pl.concat(curves, how="diagonal_relaxed") if curves else pl.DataFrame())
