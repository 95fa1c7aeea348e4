"""A recurrent alternative to the per-mode MLP: a GRU reads the rotated window step by step.

The paper's conclusion (Sec. 5) suggests sequence models over the history window in place of the
MLP F_θj of Eq. 22. :class:`GRUModeNetworks` keeps everything around the network as it is (the
rotated standardised window of Eq. 17, the LDLᵀ Gaussian head of Eqs. 21-22, one model per mode,
all modes batched): a GRU of width ``hidden[0]`` reads the window's m rotated 3-vectors from the
oldest to the newest, its final state passes through the dense layers ``hidden[1:]`` and the
latent layer (each activated) to the same 9-wide head as :class:`~mlgle.nar.model.ModeNetworks`.

The k GRUs are stacked like the MLPs (weights (modes, in, 3·width), one ``baddbmm`` per time step
for all modes), with torch's GRU equations and gate order (r, z, n), so mode j equals a
``torch.nn.GRU(3, width)`` holding ``weight_ih[j].T``, ``weight_hh[j].T`` and the biases (tested).
At m = 64 a GRU of width 64 has about as many weights as a one-layer MLP of width 64 reading the
3m = 192 inputs (3·64² vs 192·64), which makes ``hidden: [64]`` an equal-size comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlgle.nar.model import ACTIVATIONS, GaussianParams, ModeNetworks, check_arguments


class GRUModeNetworks(nn.Module):
    """k per-mode GRU networks with stacked weights and the LDLᵀ head (Secs. 3.1-3.4, Sec. 5).

    Same constructor and call as :class:`~mlgle.nar.model.ModeNetworks`; ``hidden[0]`` is the GRU
    width H, ``hidden[1:]`` dense layers after it. Parameters: ``weight_ih`` (modes, 3, 3H),
    ``weight_hh`` (modes, H, 3H), ``bias_ih``, ``bias_hh`` (modes, 1, 3H), then ``weights[i]``,
    ``biases[i]``, ``head_weight``, ``head_bias`` as in ModeNetworks. Mode j is initialised from
    ``torch.Generator().manual_seed(seeds[j])``: the GRU uniformly in ±1/√H (torch's GRU
    default), then the dense layers and head as nn.Linear would be.
    """

    architecture = "gru"

    def __init__(
        self,
        modes: int,
        history: int,
        hidden: Sequence[int] = (64,),
        latent: int = 12,
        activation: str = "relu",
        dropout: float = 0.0,
        seeds: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        seeds = check_arguments(
            "GRUModeNetworks", modes, history, hidden, latent, activation, dropout, seeds
        )
        self.modes, self.history, self.latent = modes, history, latent
        self.hidden = [int(h) for h in hidden]
        self.activation, self.dropout, self.seeds = activation, float(dropout), seeds
        self._act = ACTIVATIONS[activation]
        width = self.hidden[0]
        recurrent, dense = [], []
        for seed in seeds:
            generator = torch.Generator().manual_seed(seed)
            bound = 1.0 / math.sqrt(width)
            shapes = ((3, 3 * width), (width, 3 * width), (1, 3 * width), (1, 3 * width))
            recurrent.append(
                [torch.empty(s).uniform_(-bound, bound, generator=generator) for s in shapes]
            )
            dense.append(ModeNetworks._init_mode([width, *self.hidden[1:], latent], generator))
        w_ih, w_hh, b_ih, b_hh = (torch.stack(p) for p in zip(*recurrent, strict=True))
        self.weight_ih, self.weight_hh = nn.Parameter(w_ih), nn.Parameter(w_hh)
        self.bias_ih, self.bias_hh = nn.Parameter(b_ih), nn.Parameter(b_hh)
        ModeNetworks._stack(self, dense)

    # The same constructor arguments, input checks and layer stacking as ModeNetworks.
    config = ModeNetworks.config
    _check_window = ModeNetworks._check_window

    def final_state(self, x: Tensor) -> Tensor:
        """The GRU state after the whole window: x (modes, batch, 3·history) -> (modes, batch, H).

        h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} with r, z = σ(·), n = tanh(W_in y_t + b_in + r ⊙ (W_hn
        h_{t−1} + b_hn)) (torch's convention), from h_0 = 0 over the m steps, oldest first.
        """
        modes, batch = x.shape[:2]
        width = self.hidden[0]
        steps = x.reshape(modes, batch * self.history, 3)
        inputs = torch.baddbmm(self.bias_ih, steps, self.weight_ih)
        # One view per time step via unbind, whose backward is one stack (indexing step t would
        # allocate a full-size zero gradient per step).
        per_step = inputs.view(modes, batch, self.history, 3 * width).unbind(2)
        h = x.new_zeros(modes, batch, width)
        for step in per_step:
            gates = torch.baddbmm(self.bias_hh, h, self.weight_hh)
            i_r, i_z, i_n = step.chunk(3, dim=-1)
            h_r, h_z, h_n = gates.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = n + z * (h - n)
        return h

    def forward(self, x: Tensor, out: Sequence[Tensor] | None = None) -> GaussianParams:
        """x (modes, batch, 3·history), the flattened rotated window -> GaussianParams (Eq. 22).
        ``out`` is accepted for ModeNetworks' signature and must be None (no buffers here)."""
        self._check_window(x)
        if out is not None:
            raise ValueError("GRUModeNetworks.forward: out buffers are not supported")
        h = self.final_state(x)
        for weight, bias in zip(self.weights, self.biases, strict=True):
            if self.dropout > 0.0:  # on the GRU state and every hidden layer, not the latent
                h = F.dropout(h, self.dropout, self.training)
            h = self._act(torch.baddbmm(bias, h, weight))
        head = torch.baddbmm(self.head_bias, h, self.head_weight)
        return GaussianParams(head[..., 0:3], head[..., 3:6], head[..., 6:9])
