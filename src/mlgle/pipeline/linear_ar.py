"""`mlgle linear-ar`: the linear baseline. The NAR network replaced by a rotation-invariant
linear Gaussian AR(m) per mode (:mod:`mlgle.nar.linear`), fitted on the same training windows,
generated from the same initial windows and coupled to the C.o.M by the same GLE (Eq. 13), then
evaluated exactly as ``mlgle evaluate`` evaluates ML-GLE. What the network buys is the
difference."""

from __future__ import annotations

from pathlib import Path

from mlgle.config import Params
from mlgle.errors import StoreError
from mlgle.store import atomic_dir, read_gle, read_modes, write_json


def linear_ar(params: Params, modes_store: Path, gle_json: Path, out: Path, tracking: bool) -> dict:
    """Fit, generate and evaluate the linear AR baseline at one temperature.

    Writes ``out/summary.json`` (the evaluation summary: D_linear with its CI is its
    ``D_mlgle``, also stored as ``D_linear``), ``out/model.json`` (the AR coefficients) and
    ``out/evaluation.npz``. Uses train.history, train.t_train and the generate section.
    """
    from mlgle.gle import brownian_rng
    from mlgle.nar.generate import check_generated, initial_windows
    from mlgle.nar.linear import fit_linear_ar, generate_linear
    from mlgle.pipeline.evaluate import compare_with_md

    z, meta = read_modes(modes_store)
    k = params.slow_modes(z.shape[2] - 1)
    gle = read_gle(gle_json)
    if gle.k != k:
        raise StoreError(f"{gle_json}: field 'k' = {gle.k}, but modes.k gives {k} modes")
    cfg, gen_cfg = params.train, params.generate
    slow = z[:, :, 1 : k + 1]
    model = fit_linear_ar(slow, cfg.history, cfg.t_train)
    initial = initial_windows(slow, cfg.t_train, cfg.history, gen_cfg.trajectories, gen_cfg.seed)
    gen = generate_linear(model, initial, gen_cfg.frames, gen_cfg.seed)
    check_generated(gen, f"linear AR(m) fitted on {modes_store}")
    com = gle.generate_com(gen, brownian_rng(gen_cfg.seed))
    data, summary = compare_with_md(params, z, meta, gen, com, gle)
    summary |= {"D_linear": summary["D_mlgle"], "D_linear_ci95": summary["D_mlgle_ci95"]}
    with atomic_dir(out) as tmp:
        data.save(tmp / "evaluation.npz")
        write_json(tmp / "summary.json", summary)
        write_json(tmp / "model.json", {"temperature": meta.temperature, **model.to_dict()})
    if tracking:
        from mlgle.tracking import Tracker

        with Tracker(params.tracking).run(
            f"linear-ar T={meta.temperature:g}", params, stage="linear-ar",
            temperature=meta.temperature,
        ) as run:  # fmt: skip
            run.log_metrics(
                {
                    "D_linear": summary["D_linear"],
                    "err_linear": summary["D_linear"] / summary["D_md"] - 1,
                    "nacf_band_fraction": summary["nacf_band_fraction"],
                    "msd_log_error": summary["msd_log_error"],
                }
            )
            run.log_artifact(out / "summary.json")
    return summary
