"""GRUModeNetworks: torch's own GRU as the reference, batching, and the whole train/generate path
with train.architecture = gru."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from nar_fixtures import stationary_ar1

from mlgle.config import TrainConfig
from mlgle.errors import ConfigError
from mlgle.nar.conditioned import fit_conditioned
from mlgle.nar.generate import generate_modes
from mlgle.nar.gru import GRUModeNetworks
from mlgle.nar.train import TrainedModes, fit_modes


def test_final_state_equals_torch_gru_of_each_mode():
    """Mode j is torch.nn.GRU(3, H) with the transposed stacked weights (float64)."""
    net = GRUModeNetworks(3, history=7, hidden=(5, 4), latent=3, seeds=[4, 5, 6]).double()
    x = torch.randn(3, 11, 21, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    state = net.final_state(x)
    for j in range(3):
        gru = torch.nn.GRU(3, 5, batch_first=True).double()
        with torch.no_grad():
            gru.weight_ih_l0.copy_(net.weight_ih[j].T)
            gru.weight_hh_l0.copy_(net.weight_hh[j].T)
            gru.bias_ih_l0.copy_(net.bias_ih[j, 0])
            gru.bias_hh_l0.copy_(net.bias_hh[j, 0])
            _, h = gru(x[j].view(11, 7, 3))  # (batch, time, 3), oldest frame first
        torch.testing.assert_close(state[j], h[0], rtol=1e-12, atol=1e-12)


def test_batched_modes_equal_one_mode_models_and_order_matters():
    seeds = [10, 11, 12]
    net = GRUModeNetworks(3, history=6, hidden=(8,), latent=4, seeds=seeds)
    x = torch.randn(3, 9, 18, generator=torch.Generator().manual_seed(1))
    out = net(x)
    for j, seed in enumerate(seeds):
        single = GRUModeNetworks(1, history=6, hidden=(8,), latent=4, seeds=[seed])
        ref = single(x[j : j + 1])
        for a, b in zip(out, ref, strict=True):
            # float32 kernels may block a batch of 3 modes differently from a batch of 1 (CPU
            # dependent): equal to a few float32 ulps of the largest output, not bitwise
            eps = torch.finfo(torch.float32).eps
            tol = 8 * eps * float(b.detach().abs().max())
            torch.testing.assert_close(a[j : j + 1], b, rtol=0, atol=tol)
    # A recurrent reader sees the order of the frames: reversing the window changes the output.
    reversed_x = x.view(3, 9, 6, 3).flip(2).reshape(3, 9, 18)
    assert not torch.allclose(net(reversed_x).mean, out.mean)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="GRUModeNetworks: history must be >= 3"):
        GRUModeNetworks(2, history=2)
    with pytest.raises(ValueError, match="GRUModeNetworks: seeds must hold 2 entries"):
        GRUModeNetworks(2, history=4, seeds=[1])
    net = GRUModeNetworks(2, history=4, hidden=(4,))
    with pytest.raises(ValueError, match=r"x must have shape \(modes=2, batch, 3\*history=12\)"):
        net(torch.zeros(2, 5, 9))
    with pytest.raises(ValueError, match="out buffers are not supported"):
        net(torch.zeros(2, 5, 12), out=[torch.zeros(1)])
    config = dataclasses.replace(TrainConfig(), architecture="lstm")
    with pytest.raises(ConfigError, match=r"train\.architecture"):
        config.check("params.yaml")


def test_gru_architecture_trains_saves_loads_and_generates(tmp_path):
    modes = stationary_ar1([0.6, 0.9], [1.0, 1.0], 400, 12, seed=3)
    config = TrainConfig(
        history=4, t_train=250, t_val=120, architecture="gru", hidden=(8,), latent=4,
        batch_size=64, lr=3e-3, epochs=6, patience=0, threads=1, seed=5,
    )  # fmt: skip
    fitted = fit_modes(modes, config, progress=False)
    assert isinstance(fitted.model, GRUModeNetworks)
    assert np.all(fitted.val_nll[-1] < fitted.val_nll[0])  # it learns
    fitted.save(tmp_path / "model.pt")
    loaded = TrainedModes.load(tmp_path / "model.pt")
    assert isinstance(loaded.model, GRUModeNetworks) and loaded.model.hidden == [8]
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loaded.model(x).mean, fitted.model.eval()(x).mean)

    initial = modes[250:254, :5]
    std = loaded.standardisation
    runs = [
        generate_modes(loaded.model, std.sigma_z, std.sigma_dz, initial, 60, 9, progress=False)
        for _ in range(2)
    ]
    assert runs[0].shape == (60, 5, 2, 3) and np.isfinite(runs[0]).all()
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_allclose(runs[0][:4], initial, rtol=1e-6)


def test_the_conditioned_model_refuses_the_gru():
    config = TrainConfig(history=4, t_train=50, t_val=20, architecture="gru", hidden=(4,))
    with pytest.raises(ValueError, match=r"config\.architecture: the conditioned model"):
        fit_conditioned([stationary_ar1([0.8], [1.0], 80, 2, 0)], [1.0], config)
