"""The k per-mode NAR networks as one batched module, and their Gaussian head (Secs. 3.1-3.4).

Each mode j has its own MLP F_θj (Eq. 22): the flattened rotated standardised window
x = ŷ.reshape(3m) -> hidden layers -> latent (all activated) -> a linear head giving the mean μ
(3), the below-diagonal entries (l21, l31, l32) of the unit lower-triangular L (3) and log d, the
log of the diagonal of D (3), with Σ = L D Lᵀ. The k MLPs are stored as stacked weights
(modes, in, out) and biases (modes, 1, out), so one ``baddbmm`` per layer runs all modes.

The loss is the exact Gaussian NLL (Eq. 21, with its ½ and constant): its log-determinant term is
Σ log d = Tr(log D), not Σ d.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "FrozenNetworks",
    "GaussianParams",
    "ModeNetworks",
    "backend_timings",
    "check_arguments",
    "covariance",
    "gaussian_nll",
    "onednn_available",
    "onednn_eligible",
    "sample_increment",
]

# Applied to each layer's freshly allocated output, in place where torch has an in-place kernel
# (saves one large allocation per layer in the generation loop; autograd-safe for these ops).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu_,
    "gelu": F.gelu,
    "tanh": torch.tanh_,
    "silu": partial(F.silu, inplace=True),
    "elu": partial(F.elu, inplace=True),
}

_HALF_LOG_2PI_3D = 1.5 * math.log(2.0 * math.pi)


class GaussianParams(NamedTuple):
    """Conditional Gaussian of the rotated standardised increment (Eqs. 16, 21-22).

    ``mean``, ``lower`` = (l21, l31, l32) of the unit lower-triangular L, and ``log_d`` = log of
    the diagonal of D, each (modes, batch, 3); Σ = L D Lᵀ.
    """

    mean: Tensor
    lower: Tensor
    log_d: Tensor


def _linear_init(fan_in: int, fan_out: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``nn.Linear``'s default init drawn from ``generator``: weight (in, out), bias (1, out)."""
    weight = torch.empty(fan_out, fan_in)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(fan_in)
    bias = torch.empty(fan_out).uniform_(-bound, bound, generator=generator)
    return weight.T, bias.unsqueeze(0)


def check_arguments(
    name: str,
    modes: int,
    history: int,
    hidden: Sequence[int],
    latent: int,
    activation: str,
    dropout: float,
    seeds: Sequence[int] | None,
) -> list[int]:
    """Checks the constructor arguments every mode-network architecture shares; returns the
    per-mode seeds (default 0..modes-1). Errors name ``name`` and the argument."""
    if modes < 1:
        raise ValueError(f"{name}: modes must be >= 1, got {modes}")
    if history < 3:
        raise ValueError(f"{name}: history must be >= 3 (frames need 3), got {history}")
    if not hidden or any(h < 1 for h in hidden):
        raise ValueError(f"{name}: hidden must list positive widths, got {hidden}")
    if latent < 1:
        raise ValueError(f"{name}: latent must be >= 1, got {latent}")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{name}: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
    seeds = list(range(modes)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != modes:
        raise ValueError(f"{name}: seeds must hold {modes} entries, got {len(seeds)}")
    return seeds


class ModeNetworks(nn.Module):
    """k independent per-mode MLPs held as one module with stacked weights (Secs. 3.1, 4.4).

    Layers 3m -> hidden[0] -> ... -> hidden[-1] -> latent, each followed by the activation;
    dropout (rate ``dropout``, active in train mode only) on the output of every hidden layer;
    then the head latent -> 9 = [mean (3) | lower (3) | log_d (3)]. Mode j is initialised from
    ``torch.Generator().manual_seed(seeds[j])`` in the order nn.Linear layers would be built
    (each layer's weight then bias, head as mean Linear(latent, 3) then LDLᵀ Linear(latent, 6)),
    so it equals a one-mode model with ``seeds=[seeds[j]]``. Parameters: ``weights[i]``
    (modes, in, out), ``biases[i]`` (modes, 1, out), ``head_weight`` (modes, latent, 9),
    ``head_bias`` (modes, 1, 9). Default dtype float32 (``.double()`` works).
    """

    architecture = "mlp"

    def __init__(
        self,
        modes: int,
        history: int,
        hidden: Sequence[int] = (256, 256),
        latent: int = 12,
        activation: str = "relu",
        dropout: float = 0.0,
        seeds: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        seeds = check_arguments(
            "ModeNetworks", modes, history, hidden, latent, activation, dropout, seeds
        )

        self.modes = modes
        self.history = history
        self.hidden = [int(h) for h in hidden]
        self.latent = latent
        self.activation = activation
        self.dropout = float(dropout)
        self.seeds = seeds
        self._act = ACTIVATIONS[activation]

        widths = [3 * history, *self.hidden, latent]
        self._stack([self._init_mode(widths, torch.Generator().manual_seed(s)) for s in seeds])

    def _stack(self, per_mode: list[list[tuple[Tensor, Tensor]]]) -> None:
        """Set ``weights``, ``biases``, ``head_weight``, ``head_bias`` from each mode's layers
        (weight (in, out), bias (1, out)), stacked along a leading modes axis."""
        layers = list(zip(*per_mode, strict=True))  # per layer: tuple over modes of (w, b)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([w for w, _ in layer])) for layer in layers[:-1]
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([b for _, b in layer])) for layer in layers[:-1]
        )
        self.head_weight = nn.Parameter(torch.stack([w for w, _ in layers[-1]]))
        self.head_bias = nn.Parameter(torch.stack([b for _, b in layers[-1]]))

    @staticmethod
    def _init_mode(widths: list[int], generator: torch.Generator) -> list[tuple[Tensor, Tensor]]:
        """One mode's (weight (in, out), bias (1, out)) per layer, the head last as (latent, 9)."""
        layers = [_linear_init(a, b, generator) for a, b in itertools.pairwise(widths)]
        mean_w, mean_b = _linear_init(widths[-1], 3, generator)
        ldl_w, ldl_b = _linear_init(widths[-1], 6, generator)
        layers.append((torch.cat((mean_w, ldl_w), dim=1), torch.cat((mean_b, ldl_b), dim=1)))
        return layers

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready), so ``ModeNetworks(**net.config())`` rebuilds it."""
        return {
            "modes": self.modes,
            "history": self.history,
            "hidden": list(self.hidden),
            "latent": self.latent,
            "activation": self.activation,
            "dropout": self.dropout,
            "seeds": list(self.seeds),
        }

    def _check_window(self, x: Tensor) -> None:
        """x must be (modes, batch, 3·history) in the parameters' dtype; errors name the class."""
        name = type(self).__name__
        if x.ndim != 3 or x.shape[0] != self.modes or x.shape[2] != 3 * self.history:
            raise ValueError(
                f"{name}.forward: x must have shape (modes={self.modes}, batch, "
                f"3*history={3 * self.history}), got {tuple(x.shape)}"
            )
        if x.dtype != self.head_weight.dtype:
            raise ValueError(
                f"{name}.forward: x must have dtype {self.head_weight.dtype}, got {x.dtype}"
            )

    def layer_outputs(self, batch: int) -> list[Tensor]:
        """Empty outputs of every layer, head last, (modes, batch, width), for ``forward(out=)``."""
        return [self.head_weight.new_empty(shape) for shape in self._output_shapes(batch)]

    def _output_shapes(self, batch: int) -> list[tuple[int, int, int]]:
        widths = [*self.hidden, self.latent, self.head_weight.shape[-1]]
        return [(self.modes, batch, w) for w in widths]

    def forward(self, x: Tensor, out: Sequence[Tensor] | None = None) -> GaussianParams:
        """Eq. 22: x (modes, batch, 3·history), the flattened rotated window -> GaussianParams.

        ``out``: the buffers of :meth:`layer_outputs` (no autograd), which the layers overwrite
        instead of allocating fresh multi-MB outputs (their page faults cost the generation loop
        about a fifth of the network time); the returned tensors are views of the head's buffer.
        """
        self._check_window(x)
        layers = len(self.weights)
        if out is not None and [tuple(b.shape) for b in out] != self._output_shapes(x.shape[1]):
            raise ValueError(
                "ModeNetworks.forward: out must be layer_outputs(batch) for this model and "
                f"batch {x.shape[1]}, got shapes {[tuple(b.shape) for b in out]}"
            )
        buffers = [None] * (layers + 1) if out is None else list(out)
        h = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = self._act(torch.baddbmm(bias, h, weight, out=buffers[i]))
            if self.dropout > 0.0 and i < len(self.hidden):  # not on the latent
                h = F.dropout(h, self.dropout, self.training)
        head = torch.baddbmm(self.head_bias, h, self.head_weight, out=buffers[layers])
        return GaussianParams(head[..., 0:3], head[..., 3:6], head[..., 6:9])


def onednn_available() -> bool:
    """Whether torch has the oneDNN (mkldnn) linear op :class:`FrozenNetworks` uses."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def onednn_eligible(model: nn.Module) -> bool:
    """Whether :class:`FrozenNetworks` can run ``model`` on oneDNN: an MLP with float32 CPU
    weights and a torch with the oneDNN linear op."""
    weight = model.head_weight
    return (
        isinstance(model, ModeNetworks)
        and weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and onednn_available()
    )


PROBE_CALLS = 5
"""Timed calls per backend in :func:`backend_timings` (after two warm-up calls each)."""

_TIMINGS: dict[tuple[Any, ...], dict[str, float]] = {}


def backend_timings(model: ModeNetworks, batch: int) -> dict[str, float]:
    """Seconds per call of :class:`FrozenNetworks` with each backend, for ``model``'s shape, this
    ``batch`` and the current torch thread count: the median of PROBE_CALLS calls on random
    windows ``(modes, batch, 3m)`` (the input of Eq. 22), the backends alternating. Measured once
    per process and shape, then cached (a few calls each: ~0.1 s for the default network, ~0.3 s
    for the paper's). ``model`` must be :func:`onednn_eligible`; its weights are read, not
    changed.
    """
    if not onednn_eligible(model):
        raise ValueError("backend_timings: needs an onednn_eligible model (MLP, float32, CPU)")
    key = (
        model.modes,
        model.history,
        tuple(model.hidden),
        model.latent,
        model.activation,
        batch,
        torch.get_num_threads(),
    )
    if key not in _TIMINGS:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(model.modes, batch, 3 * model.history, generator=generator)
        candidates = {name: FrozenNetworks(model, batch, name) for name in ("onednn", "torch")}
        seconds: dict[str, list[float]] = {name: [] for name in candidates}
        for network in candidates.values():
            for _ in range(2):  # warm-up: kernel selection, first-touch pages
                network(x)
        for _ in range(PROBE_CALLS):
            for name, network in candidates.items():
                start = time.perf_counter()
                network(x)
                seconds[name].append(time.perf_counter() - start)
        _TIMINGS[key] = {name: statistics.median(s) for name, s in seconds.items()}
    return dict(_TIMINGS[key])


class FrozenNetworks:
    """Inference-only copy of a :class:`ModeNetworks` for one batch size (the loop of Alg. 1).

    Backend "onednn" (float32 on CPU): every mode and layer is one oneDNN matmul
    (``torch.ops.mkldnn._linear_pointwise``) with its weight prepacked for the batch and the bias
    (and a ReLU) fused; it copies the weights when built, so later changes to the model are not
    seen. Backend "torch": the model's own batched forward (``baddbmm``, MKL on the CPU) with
    preallocated layer outputs (any dtype and device); the only backend for another architecture
    (e.g. :class:`~mlgle.nar.gru.GRUModeNetworks`). Which is faster depends on the CPU and the
    shape (on an AVX-512 Xeon oneDNN ran the paper's network 1.8x faster; on an AVX2 EPYC MKL
    ran the default one 1.4x faster), so "auto" takes the one :func:`backend_timings` measures
    faster on this machine for this network shape, batch and thread count. The two round
    differently, so generated trajectories depend on the choice to float round-off; pin it with
    ``backend`` for bitwise repeats across machines. Dropout is off either way, as in eval mode,
    and the returned tensors may be overwritten by the next call.
    """

    def __init__(self, model: nn.Module, batch: int, backend: str = "auto") -> None:
        if backend not in ("auto", "onednn", "torch"):
            raise ValueError(
                f"FrozenNetworks: backend must be auto, onednn or torch, got {backend!r}"
            )
        weight = model.head_weight
        eligible = onednn_eligible(model)
        if backend == "onednn" and not eligible:
            raise ValueError(
                "FrozenNetworks: backend 'onednn' needs ModeNetworks (MLP) with float32 CPU "
                f"weights and torch with oneDNN, got {type(model).__name__} with {weight.dtype} "
                f"on {weight.device}"
            )
        if backend == "auto":
            timings = backend_timings(model, batch) if eligible else {"torch": 0.0}
            backend = min(timings, key=timings.__getitem__)
        self.modes, self.history, self.batch, self.dtype = (
            model.modes,
            model.history,
            batch,
            weight.dtype,
        )
        self._onednn = backend == "onednn"
        if not self._onednn:
            self._model = model
            self._buffers = model.layer_outputs(batch) if isinstance(model, ModeNetworks) else None
            return
        self._act = None if model.activation == "relu" else model._act
        self._attr = "relu" if model.activation == "relu" else "none"
        with torch.no_grad():
            weights = [*model.weights, model.head_weight]  # (modes, in, out) each
            biases = [*model.biases, model.head_bias]  # (modes, 1, out)
            self._layers = [
                [
                    (
                        torch.ops.mkldnn._reorder_linear_weight(w[j].T.contiguous(), batch),
                        b[j, 0].contiguous(),
                    )
                    for w, b in zip(weights, biases, strict=True)
                ]
                for j in range(model.modes)
            ]

    @property
    def backend(self) -> str:
        """The backend in use: "onednn" or "torch"."""
        return "onednn" if self._onednn else "torch"

    def __call__(self, x: Tensor) -> GaussianParams:
        """x (modes, batch, 3·history), the flattened rotated window -> GaussianParams (Eq. 22)."""
        if tuple(x.shape) != (self.modes, self.batch, 3 * self.history) or x.dtype != self.dtype:
            raise ValueError(
                f"FrozenNetworks: x must have shape (modes={self.modes}, batch={self.batch}, "
                f"3*history={3 * self.history}) and dtype {self.dtype}, got {tuple(x.shape)} "
                f"{x.dtype}"
            )
        if not self._onednn:
            with torch.no_grad():
                was_training = self._model.training
                self._model.eval()
                try:
                    return self._model(x, out=self._buffers)
                finally:
                    self._model.train(was_training)
        heads = []
        # Without grad mode off, oneDNN took ~40x longer on the 256 -> 12 layer (torch 2.13, AVX2).
        with torch.no_grad():
            for j, layers in enumerate(self._layers):
                h = x[j].contiguous()
                for i, (weight, bias) in enumerate(layers):
                    last = i == len(layers) - 1
                    attr = "none" if last else self._attr
                    h = torch.ops.mkldnn._linear_pointwise(h, weight, bias, attr, [], "")
                    if not last and self._act is not None:
                        h = self._act(h)
                heads.append(h)
            out = torch.stack(heads)
        return GaussianParams(out[..., 0:3], out[..., 3:6], out[..., 6:9])


def _check_params(name: str, params: GaussianParams, other: Tensor, what: str) -> None:
    shape = params.mean.shape
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(
            f"{name}: params.mean must have shape (modes, batch, 3), got {tuple(shape)}"
        )
    if params.lower.shape != shape or params.log_d.shape != shape:
        raise ValueError(
            f"{name}: params.lower and params.log_d must have shape {tuple(shape)}, got "
            f"{tuple(params.lower.shape)} and {tuple(params.log_d.shape)}"
        )
    if other.shape != shape:
        raise ValueError(
            f"{name}: {what} must have shape (modes, batch, 3) = {tuple(shape)}, "
            f"got {tuple(other.shape)}"
        )


def gaussian_nll(params: GaussianParams, target: Tensor) -> Tensor:
    """Eq. 21: −log N(target | μ, L D Lᵀ): target (modes, batch, 3) -> (modes, batch).

    = ½[Σ log d + wᵀ D⁻¹ w] + (3/2) log 2π with L w = target − μ solved by forward substitution
    (no inverse); D⁻¹ enters as exp(−log d), so it is finite and differentiable for tiny d.
    """
    _check_params("gaussian_nll", params, target, "target")
    r1, r2, r3 = (target - params.mean).unbind(-1)
    l21, l31, l32 = params.lower.unbind(-1)
    w1 = r1
    w2 = r2 - l21 * w1
    w3 = r3 - l31 * w1 - l32 * w2
    w = torch.stack((w1, w2, w3), dim=-1)
    quad = (w.square() * torch.exp(-params.log_d)).sum(-1)
    return 0.5 * (params.log_d.sum(-1) + quad) + _HALF_LOG_2PI_3D


def sample_increment(params: GaussianParams, eps: Tensor) -> Tensor:
    """Eq. 23: reparametrised draw μ + L D^½ ε: ε (modes, batch, 3) -> (modes, batch, 3)."""
    _check_params("sample_increment", params, eps, "eps")
    s1, s2, s3 = (torch.exp(0.5 * params.log_d) * eps).unbind(-1)
    l21, l31, l32 = params.lower.unbind(-1)
    return params.mean + torch.stack((s1, l21 * s1 + s2, l31 * s1 + l32 * s2 + s3), dim=-1)


def covariance(params: GaussianParams) -> Tensor:
    """Σ = L D Lᵀ (Eqs. 21-22): GaussianParams -> (modes, batch, 3, 3)."""
    _check_params("covariance", params, params.mean, "mean")
    lower = torch.diag_embed(torch.ones_like(params.mean))
    rows, cols = torch.tril_indices(3, 3, offset=-1)  # (1,0), (2,0), (2,1) = l21, l31, l32
    lower[..., rows, cols] = params.lower
    return (lower * torch.exp(params.log_d).unsqueeze(-2)) @ lower.transpose(-1, -2)
