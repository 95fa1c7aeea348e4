"""D error against the MD budget (beyond the paper): how well each estimator does from a
training window of T_train frames, over independent windows of one MD run.

For each T_train the run is cut into non-overlapping segments [s·T_train, (s + 1)·T_train); on
each, D_short (Eq. 35 on the segment alone, see
:func:`mlgle.analysis.evaluation.short_window_diffusion`) and D_GLE (Eq. 27 with T_fit = T_train,
see :class:`mlgle.gle.GLEFit`) are computed. Where the model-free estimate catches up with the
models is the honest answer to "when is ML-GLE worth it".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlgle.analysis.evaluation import short_window_diffusion
from mlgle.gle import GLEFit


def segment_estimates(
    modes: np.ndarray,
    dt: float,
    t_train: int,
    segments: int,
    points: Sequence[int],
    short_window: tuple[float, float],
) -> list[dict[str, float]]:
    """D_short and D_GLE on up to ``segments`` independent windows of ``t_train`` frames.

    modes: (frames, chains, k + 1, 3) with mode 0 the C.o.M. Returns one dict per segment:
    segment, first frame, D_short, D_gle. ValueError if not one segment fits or a regression
    lag is not < t_train.
    """
    frames = modes.shape[0]
    count = min(segments, frames // t_train)
    if count < 1 or max(points) >= t_train:
        raise ValueError(
            f"t_train = {t_train}: needs at least one segment in {frames} frames and the GLE "
            f"lags {list(points)} < t_train"
        )
    fit = GLEFit(points=points)
    rows = []
    for s in range(count):
        seg = np.asarray(modes[s * t_train : (s + 1) * t_train], dtype=np.float64)
        d_short = short_window_diffusion(seg[:, :, 0], dt, t_train, short_window).value
        d_gle = fit.fit(seg[:, :, 0], seg[:, :, 1:], dt).diffusion
        rows.append({"segment": s, "start": s * t_train, "D_short": d_short, "D_gle": d_gle})
    return rows
