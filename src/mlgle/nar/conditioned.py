"""One NAR model for several state points: the k mode networks conditioned on static features.

The paper trains one set of mode networks per temperature and names, as future work (Sec. 5),
"training on simulation data at different temperatures, that would act as conditioning static
features". Here a feature vector f (the temperature; chain length or density would be further
columns) enters every mode network of Secs. 3.1-3.4, normalised as c = (f - centre) / scale with
centre and half-range of the training features (scale 1 for a feature that does not vary).

Conditioning (``conditioning``):

- ``"film"`` (default): every hidden and latent layer's pre-activation a = W x̂ + b is modulated,
  a' = (1 + c W_γ) ⊙ a + c W_β (FiLM). Temperature mostly changes relaxation rates, i.e. the
  GAIN of the map from the window to the mean increment and the noise scale (for an AR(1) mode
  the standardised mean increment is -√((1-a)/2) ẑ_{t-1}); FiLM represents a feature-dependent
  gain directly, at 2·(hidden + latent) extra weights per feature and mode.
- ``"concat"``: c is appended to the flattened window, [x̂ ; c] -> first layer (an additive,
  feature-dependent bias of the first layer only; gains can change only through the ReLU
  gating). Appending c to the latent instead would shift the outputs without touching their
  dependence on the history, so it could not change a relaxation rate; it is not offered.

Conditioning weights start at zero: at c = 0 the model IS the per-temperature
:class:`~mlgle.nar.model.ModeNetworks` with the same seeds, and trained on one temperature (c ≡ 0,
zero gradient for the conditioning weights, so Adam leaves them at zero) it trains exactly like it.

Standardisation across features (``scales``, Sec. 4.2):

- ``"interpolate"`` (default): each training dataset keeps its own scalar σ_z, σ_Δz per mode, so
  the network always sees unit-variance windows and increments; at a new feature value log σ is
  interpolated piecewise-linearly in 1/f (Arrhenius form for f = T; exact at training values).
  The ratio σ_Δz/σ_z of Eq. 25 is what carries the change of time scale into generation.
- ``"pooled"``: one σ per mode for all datasets (RMS over all training spans); the network
  itself learns how amplitudes and increments change with f (nothing to interpolate).

Inputs of :class:`ConditionedModeNetworks` are the flattened rotated standardised window followed
by the raw features, ``(modes, batch, 3m + features)``, so :func:`mlgle.nar.train.fit_networks`
runs the unchanged training loop. At a fixed feature value the conditioning folds into the
weights (:meth:`ConditionedModeNetworks.at` returns a plain ModeNetworks), so generation is
:func:`mlgle.nar.generate.generate_modes` itself, at the per-temperature model's speed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlgle.config import CONDITIONINGS, SCALES, TrainConfig
from mlgle.nar.bundle import load_fitted, save_fitted
from mlgle.nar.generate import generate_modes
from mlgle.nar.model import GaussianParams, ModeNetworks
from mlgle.nar.train import EpochReport, evaluate_nll, fit_networks
from mlgle.nar.windows import Standardisation, WindowDataset, split_modes
from mlgle.stats import interpolate_log

__all__ = [
    "ConditionedModeNetworks",
    "ConditionedModes",
    "ConditionedWindows",
    "ScaleTable",
    "fit_conditioned",
]

_MODEL_FORMAT = "mlgle.nar.conditioned.ConditionedModes/1"


def _as_features(features: Any, name: str, rows: int | None = None) -> np.ndarray:
    """Features as float64 ``(rows, n_features)``; a 1-D input is one feature per row."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[0] < 1 or f.shape[1] < 1 or not np.isfinite(f).all():
        raise ValueError(
            f"{name}: expected finite features of shape (datasets,) or (datasets, n_features), "
            f"got shape {np.shape(features)}"
        )
    if rows is not None and f.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows (one per dataset), got {f.shape[0]}")
    return f


@dataclass(frozen=True, eq=False)
class ScaleTable:
    """σ_z, σ_Δz of every training dataset and the rule giving them at any feature value.

    ``features`` (d, n_features); ``sigma_z``, ``sigma_dz`` (d, k) the per-dataset training
    scales (Sec. 4.2); ``pooled``: one set of scales for all (the RMS over all training spans).
    """

    features: np.ndarray
    sigma_z: np.ndarray
    sigma_dz: np.ndarray
    pooled: bool
    pooled_sigma_z: np.ndarray = field(default_factory=lambda: np.empty(0))
    pooled_sigma_dz: np.ndarray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def from_spans(
        cls, spans: Sequence[np.ndarray], features: np.ndarray, pooled: bool
    ) -> ScaleTable:
        """Per-span scales of training spans ``(frames, chains, k, 3)``; the pooled ones weight
        each span by its number of values (the RMS over all spans together)."""
        per = [Standardisation.from_training(span) for span in spans]
        z_count = np.array([span.shape[0] * span.shape[1] for span in spans], dtype=np.float64)
        dz_count = np.array([(span.shape[0] - 1) * span.shape[1] for span in spans], np.float64)
        sigma_z = np.stack([s.sigma_z for s in per])
        sigma_dz = np.stack([s.sigma_dz for s in per])
        return cls(
            features=np.asarray(features, dtype=np.float64),
            sigma_z=sigma_z,
            sigma_dz=sigma_dz,
            pooled=pooled,
            pooled_sigma_z=np.sqrt(z_count @ sigma_z**2 / z_count.sum()),
            pooled_sigma_dz=np.sqrt(dz_count @ sigma_dz**2 / dz_count.sum()),
        )

    def training(self, index: int) -> Standardisation:
        """The standardisation the network was trained with on dataset ``index``."""
        if self.pooled:
            return Standardisation(self.pooled_sigma_z, self.pooled_sigma_dz)
        return Standardisation(self.sigma_z[index], self.sigma_dz[index])

    def at(self, feature: Any) -> Standardisation:
        """σ_z, σ_Δz at ``feature`` (n_features,): pooled, or log σ interpolated in 1/f."""
        if self.pooled:
            return self.training(0)
        f = _as_features(np.atleast_1d(feature)[None, :], "feature")[0]
        if self.features.shape[1] != 1 or f.shape[0] != 1:
            raise ValueError(
                "feature: scales='interpolate' works along one feature (e.g. the temperature); "
                f"the table has {self.features.shape[1]}, got {f.shape[0]}; use scales='pooled'"
            )
        nodes = self.features[:, 0]
        both = np.stack([self.sigma_z, self.sigma_dz], axis=1)  # (d, 2, k)
        sigma_z, sigma_dz = interpolate_log(nodes, both, float(f[0]), "feature")
        return Standardisation(sigma_z, sigma_dz)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON, ``torch.save(weights_only=True)``)."""
        return {
            "features": self.features.tolist(),
            "sigma_z": self.sigma_z.tolist(),
            "sigma_dz": self.sigma_dz.tolist(),
            "pooled": bool(self.pooled),
            "pooled_sigma_z": self.pooled_sigma_z.tolist(),
            "pooled_sigma_dz": self.pooled_sigma_dz.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScaleTable:
        return cls(**{k: v if k == "pooled" else np.asarray(v) for k, v in data.items()})


class ConditionedModeNetworks(ModeNetworks):
    """:class:`~mlgle.nar.model.ModeNetworks` whose k MLPs also read static features.

    ``features``: number of feature columns; ``centre``, ``scale`` (features,) normalise them,
    c = (f - centre) / scale. ``conditioning`` "film": per layer i (hidden and latent),
    ``film[i]`` (modes, features, 2·width_i) gives γ | β; "concat": ``concat_weight``
    (modes, features, hidden[0]) adds c W_c to the first layer. Both start at zero, so the base
    weights equal ``ModeNetworks(modes, history, ..., seeds)`` and at c = 0 so does the output.
    """

    def __init__(
        self,
        modes: int,
        history: int,
        features: int = 1,
        conditioning: str = "film",
        centre: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        hidden: Sequence[int] = (256, 256),
        latent: int = 12,
        activation: str = "relu",
        dropout: float = 0.0,
        seeds: Sequence[int] | None = None,
    ) -> None:
        super().__init__(modes, history, hidden, latent, activation, dropout, seeds)
        if features < 1:
            raise ValueError(f"ConditionedModeNetworks: features must be >= 1, got {features}")
        if conditioning not in CONDITIONINGS:
            raise ValueError(
                f"ConditionedModeNetworks: conditioning must be one of {list(CONDITIONINGS)}, "
                f"got {conditioning!r}"
            )
        centre = [0.0] * features if centre is None else [float(v) for v in centre]
        scale = [1.0] * features if scale is None else [float(v) for v in scale]
        if len(centre) != features or len(scale) != features or min(scale) <= 0:
            raise ValueError(
                f"ConditionedModeNetworks: centre and scale need {features} entries, scale > 0; "
                f"got {centre}, {scale}"
            )
        self.features = features
        self.conditioning = conditioning
        self.centre = centre
        self.scale = scale
        widths = [*self.hidden, latent]
        if conditioning == "film":
            self.film = nn.ParameterList(
                nn.Parameter(torch.zeros(modes, features, 2 * w)) for w in widths
            )
        else:
            self.concat_weight = nn.Parameter(torch.zeros(modes, features, widths[0]))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready)."""
        return {
            **super().config(),
            "features": self.features,
            "conditioning": self.conditioning,
            "centre": list(self.centre),
            "scale": list(self.scale),
        }

    def forward(self, x: Tensor) -> GaussianParams:
        """x (modes, batch, 3·history + features): window then raw features -> GaussianParams."""
        width = 3 * self.history
        if x.ndim != 3 or x.shape[0] != self.modes or x.shape[2] != width + self.features:
            raise ValueError(
                f"ConditionedModeNetworks.forward: x must have shape (modes={self.modes}, batch, "
                f"3*history + features = {width + self.features}), got {tuple(x.shape)}"
            )
        return self.conditioned(x[..., :width], x[0, :, width:])

    def conditioned(self, x: Tensor, features: Tensor) -> GaussianParams:
        """x (modes, batch, 3·history) rotated window, features (batch | 1, features) raw."""
        if x.dtype != self.head_weight.dtype or features.dtype != x.dtype:
            raise ValueError(
                f"ConditionedModeNetworks: x and features must have dtype "
                f"{self.head_weight.dtype}, got {x.dtype} and {features.dtype}"
            )
        c = self._normalised(features)
        h = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            a = torch.baddbmm(bias, h, weight)
            if self.conditioning == "film":
                gamma, beta = torch.matmul(c, self.film[i]).chunk(2, dim=-1)
                a = a * (1.0 + gamma) + beta
            elif i == 0:
                a = a + torch.matmul(c, self.concat_weight)
            h = self._act(a)
            if self.dropout > 0.0 and i < len(self.hidden):
                h = F.dropout(h, self.dropout, self.training)
        out = torch.baddbmm(self.head_bias, h, self.head_weight)
        return GaussianParams(out[..., 0:3], out[..., 3:6], out[..., 6:9])

    def _normalised(self, features: Tensor) -> Tensor:
        centre = torch.tensor(self.centre, dtype=features.dtype, device=features.device)
        scale = torch.tensor(self.scale, dtype=features.dtype, device=features.device)
        return (features - centre) / scale

    def at(self, features: Any) -> ModeNetworks:
        """The networks at fixed ``features`` (n_features,) as a plain ModeNetworks.

        At fixed c the conditioning folds into the weights: FiLM (1 + γ) ⊙ (W x + b) + β =
        (W diag(1 + γ)) x + ((1 + γ) ⊙ b + β); concat adds c W_c to the first bias. The result
        equals :meth:`conditioned` to rounding (exactly where c = 0), in this model's dtype, in
        eval mode, and runs on every fast path written for ModeNetworks (generation).
        """
        parameter = self.head_weight
        f = torch.as_tensor(np.atleast_1d(np.asarray(features, dtype=np.float64)))
        if f.shape != (self.features,) or not torch.isfinite(f).all():
            raise ValueError(f"features: expected {self.features} finite values, got {features!r}")
        c = self._normalised(f.to(parameter.dtype).view(1, -1))
        plain = ModeNetworks(**ModeNetworks.config(self))
        plain = plain.to(device=parameter.device, dtype=parameter.dtype)
        state = {name: value.detach().clone() for name, value in self.state_dict().items()}
        with torch.no_grad():
            for i in range(len(self.weights)):
                if self.conditioning == "film":
                    gamma, beta = torch.matmul(c, self.film[i]).chunk(2, dim=-1)  # (modes, 1, w)
                    state[f"weights.{i}"] = self.weights[i] * (1.0 + gamma)
                    state[f"biases.{i}"] = self.biases[i] * (1.0 + gamma) + beta
                elif i == 0:
                    state["biases.0"] = self.biases[0] + torch.matmul(c, self.concat_weight)
        plain.load_state_dict({name: state[name] for name in plain.state_dict()})
        return plain.eval()


class ConditionedWindows:
    """The windows of several datasets as one dataset, each sample carrying its features.

    ``parts``: one :class:`~mlgle.nar.windows.WindowDataset` per dataset (each standardised with
    its own scales); ``features`` (datasets, n_features). Sample indices run over the parts in
    order; ``batch`` returns x̂ ``(k, batch, 3m + n_features)`` and the rotated target
    ``(k, batch, 3)`` in the order of ``indices``.
    """

    def __init__(self, parts: Sequence[WindowDataset], features: np.ndarray) -> None:
        if not parts or len({(p.modes, p.history) for p in parts}) != 1:
            raise ValueError("parts: expected datasets with the same number of modes and history")
        self.parts = list(parts)
        self.features = _as_features(features, "features", len(parts))
        self.modes, self.history, self.dtype = parts[0].modes, parts[0].history, parts[0].dtype
        self._offsets = np.cumsum([0, *(len(p) for p in parts)])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def rotated_nbytes(self) -> int:
        """Bytes :meth:`precompute` keeps, the parts' together."""
        return sum(part.rotated_nbytes for part in self.parts)

    def precompute(self) -> None:
        """Every part's rotated windows, kept (:meth:`WindowDataset.precompute`)."""
        for part in self.parts:
            part.precompute()

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        indices = torch.as_tensor(indices, dtype=torch.long)
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= len(self)):
            raise IndexError(f"indices: expected sample indices in [0, {len(self)})")
        width = 3 * self.history
        which = np.searchsorted(self._offsets[1:], indices.numpy(), side="right")
        x = torch.empty(
            (self.modes, indices.numel(), width + self.features.shape[1]), dtype=self.dtype
        )
        y = torch.empty((self.modes, indices.numel(), 3), dtype=self.dtype)
        for d in np.unique(which):
            rows = torch.from_numpy(np.flatnonzero(which == d))
            x_d, y_d = self.parts[d].batch(indices[rows] - int(self._offsets[d]))
            x[:, rows, :width] = x_d
            x[:, rows, width:] = torch.as_tensor(self.features[d], dtype=self.dtype)
            y[:, rows] = y_d
        return x, y


@dataclass
class ConditionedModes:
    """A fitted conditioned model with everything needed to generate at any feature value.

    ``train_nll``, ``val_nll`` ``(epochs, k)`` (means over all datasets' windows); ``best_epoch``
    ``(k,)``; ``config``: the TrainConfig as a dict.
    """

    model: ConditionedModeNetworks
    scales: ScaleTable
    history: int
    train_nll: np.ndarray
    val_nll: np.ndarray
    best_epoch: np.ndarray
    config: dict[str, Any] = field(default_factory=dict)

    def standardisation(self, feature: Any) -> Standardisation:
        """σ_z, σ_Δz at ``feature`` (see :class:`ScaleTable`)."""
        return self.scales.at(feature)

    def nll(self, modes: np.ndarray, feature: Any) -> np.ndarray:
        """Mean NLL per mode ``(k,)`` (Eq. 21) of every window of ``modes`` ``(frames, chains, k,
        3)`` (physical units) at ``feature``, standardised with the scales at ``feature``."""
        feature = np.atleast_1d(np.asarray(feature, dtype=np.float64))
        dtype = next(self.model.parameters()).dtype
        part = WindowDataset(modes, self.standardisation(feature), self.history, dtype)
        return evaluate_nll(self.model, ConditionedWindows([part], feature[None, :]))

    def generate(
        self,
        feature: Any,
        initial: np.ndarray,
        frames: int,
        seed: int,
        progress: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> np.ndarray:
        """Alg. 1 at ``feature``: initial (m, n, k, 3) physical units -> (frames, n, k, 3)."""
        std = self.standardisation(feature)
        network = self.model.at(feature).to(dtype)
        return generate_modes(
            network, std.sigma_z, std.sigma_dz, initial, frames, seed, progress, dtype
        )

    def save(self, path: str | Path) -> None:
        """One torch file (tensors and plain data only), written atomically."""
        save_fitted(path, _MODEL_FORMAT, self, scales=self.scales.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ConditionedModes:
        """Read a file written by :meth:`save` (``torch.load(weights_only=True)``)."""
        payload, fitted = load_fitted(
            path,
            _MODEL_FORMAT,
            "ConditionedModes",
            lambda p: ConditionedModeNetworks(**p["model_config"]),
        )
        return cls(scales=ScaleTable.from_dict(payload["scales"]), **fitted)


def _normalisation(features: np.ndarray) -> tuple[list[float], list[float]]:
    """Centre (mid-range) and half-range of each feature column; 1 where a feature is constant."""
    lo, hi = features.min(axis=0), features.max(axis=0)
    half = (hi - lo) / 2.0
    return ((lo + hi) / 2.0).tolist(), np.where(half > 0, half, 1.0).tolist()


def fit_conditioned(
    datasets: Sequence[np.ndarray],
    features: Any,
    config: TrainConfig,
    conditioning: str = "film",
    scales: str = "interpolate",
    callback: Callable[[EpochReport], None] | None = None,
    checkpoint: str | Path | None = None,
    mode_seeds: Sequence[int] | None = None,
    progress: bool = True,
) -> ConditionedModes:
    """Train one conditioned model on several datasets ``(frames_d, chains_d, k, 3)`` (physical
    units), dataset d at ``features[d]`` ((datasets,) or (datasets, n_features)).

    Each dataset is split like :func:`~mlgle.nar.train.fit_modes` (frames [0, t_train) train, the
    next t_val validate) and standardised by ``scales``; one epoch visits every training window
    of every dataset once, in one shuffled order; the validation NLL per mode (best epoch, early
    stopping) averages over all datasets' validation windows. Mode j starts from seed
    ``mode_seeds[j]`` (default ``config.seed + j``, as fit_modes). Checkpoint and resume as in
    :func:`~mlgle.nar.train.fit_networks`.
    """
    if not datasets:
        raise ValueError("datasets: expected at least one (frames, chains, k, 3) array")
    f = _as_features(features, "features", len(datasets))
    if conditioning not in CONDITIONINGS:
        raise ValueError(
            f"conditioning: expected one of {list(CONDITIONINGS)}, got {conditioning!r}"
        )
    if scales not in SCALES:
        raise ValueError(f"scales: expected one of {list(SCALES)}, got {scales!r}")
    config.check("train config")
    if config.architecture != "mlp":
        raise ValueError(
            f"config.architecture: the conditioned model is built on the MLP (FiLM layers), "
            f"got {config.architecture!r}; set train.architecture: mlp"
        )
    shapes = {np.shape(d)[2:] for d in datasets}
    if len(shapes) != 1 or any(np.ndim(d) != 4 for d in datasets):
        raise ValueError(
            f"datasets: expected arrays (frames, chains, k, 3) with one k, got shapes "
            f"{[np.shape(d) for d in datasets]}"
        )
    k = np.shape(datasets[0])[2]
    spans = [split_modes(d, config.t_train, config.t_val) for d in datasets]
    table = ScaleTable.from_spans([s[0] for s in spans], f, pooled=scales == "pooled")
    seeds = [config.seed + j for j in range(k)] if mode_seeds is None else list(mode_seeds)
    if len(seeds) != k:
        raise ValueError(f"mode_seeds: expected {k} seeds (one per mode), got {len(seeds)}")
    centre, scale = _normalisation(f)
    fingerprint = {
        "config": {**dataclasses.asdict(config), "conditioning": conditioning},
        "seeds": seeds,
        "standardisation": table.to_dict(),
    }

    def build() -> tuple[ConditionedModeNetworks, ConditionedWindows, ConditionedWindows | None]:
        model = ConditionedModeNetworks(
            k,
            config.history,
            features=f.shape[1],
            conditioning=conditioning,
            centre=centre,
            scale=scale,
            hidden=config.hidden,
            latent=config.latent,
            activation=config.activation,
            dropout=config.dropout,
            seeds=seeds,
        )
        dtype = next(model.parameters()).dtype

        def windows(which: int) -> ConditionedWindows:
            return ConditionedWindows(
                [
                    WindowDataset(span[which], table.training(d), config.history, dtype)
                    for d, span in enumerate(spans)
                ],
                f,
            )

        return model, windows(0), windows(1) if config.t_val else None

    fitted = fit_networks(build, config, fingerprint, callback, checkpoint, progress)
    return ConditionedModes(
        model=fitted.model,
        scales=table,
        history=config.history,
        train_nll=fitted.train_nll,
        val_nll=fitted.val_nll,
        best_epoch=fitted.best_epoch,
        config={**dataclasses.asdict(config), "conditioning": conditioning, "scales": scales},
    )
