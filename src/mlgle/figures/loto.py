"""D(T) of the leave-one-temperature-out study (``mlgle loto report``): MD, per-temperature and
conditioned ML-GLE with 95 % CIs (Eq. 35)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

VARIANT_LABELS = {"interpolate": "interpolated", "refit": "refit"}


def draw_d_vs_t(loto: Sequence[Mapping], per_temperature: Mapping[float, Mapping]):
    """D(T): MD and per-temperature ML-GLE at every temperature, conditioned ML-GLE (both GLE
    variants) at the left-out ones, all with 95 % CIs over chains (Eq. 35); reduced LJ units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = np.array(sorted(per_temperature))
    step = np.diff(temps).min() if temps.size > 1 else 0.25
    fig, ax = plt.subplots(figsize=(5.2, 3.6))

    def series(xs, values, cis, dx, label, **style):
        values, cis = np.asarray(values), np.asarray(cis)
        err = np.stack([values - cis[:, 0], cis[:, 1] - values])
        ax.errorbar(np.asarray(xs) + dx * step, values, yerr=err, capsize=3, label=label, **style)

    rows = [per_temperature[t] for t in temps]
    for key, dx, label, style in (
        ("D_md", -0.09, "MD (long run)", {"fmt": "o", "color": "0.15"}),
        ("D_mlgle", -0.03, "ML-GLE, per-temperature model", {"fmt": "s", "color": "tab:blue"}),
    ):
        series(temps, [r[key] for r in rows], [r[f"{key}_ci95"] for r in rows], dx, label, **style)
    held = sorted(loto, key=lambda s: s["temperature"])
    xs = [s["temperature"] for s in held]
    for name, dx, style in (
        ("interpolate", 0.03, {"fmt": "D", "color": "tab:red"}),
        ("refit", 0.09, {"fmt": "D", "color": "tab:red", "mfc": "white"}),
    ):
        variant = [s["variants"][name] for s in held]
        label = f"ML-GLE, conditioned, T unseen (α, β {VARIANT_LABELS[name]})"
        d = [v["D_mlgle"] for v in variant]
        series(xs, d, [v["D_mlgle_ci95"] for v in variant], dx, label, **style)
    ax.set_xlabel("T [ε/k_B]")
    ax.set_ylabel("D [σ²/τ]")
    ax.set_title("C.o.M diffusion, leave-one-temperature-out (reduced LJ units)", fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    return fig
