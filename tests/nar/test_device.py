"""Tests of the device setting (train.device, generate.device): auto | cpu | cuda.

On a machine without CUDA the CPU path runs and asking for CUDA is one clear line; the test
marked ``cuda`` runs where torch sees a GPU and compares training and generation with the CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from nar_fixtures import stationary_ar1

from mlgle.config import TrainConfig
from mlgle.errors import ConfigError
from mlgle.nar.device import resolve_device
from mlgle.nar.generate import generate_modes, initial_windows
from mlgle.nar.train import fit_modes

CUDA = torch.cuda.is_available()


def test_auto_is_cuda_exactly_when_torch_sees_a_gpu():
    assert resolve_device("auto", "train.device").type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu", "train.device") == torch.device("cpu")


def test_unknown_or_unavailable_devices_name_the_key():
    with pytest.raises(ConfigError, match=r"generate\.device: expected one of auto, cpu, cuda"):
        resolve_device("gpu", "generate.device")
    if not CUDA:
        with pytest.raises(ConfigError, match=r"train\.device: cuda was asked .* auto or cpu"):
            resolve_device("cuda", "train.device")


def test_params_refuse_an_unknown_device():
    with pytest.raises(ConfigError, match=r"'train\.device' must be one of"):
        TrainConfig(device="tpu").check("params.yaml")


def _tiny(device: str) -> TrainConfig:
    return TrainConfig(history=4, t_train=120, t_val=60, hidden=(8,), latent=2, epochs=2,
                       patience=0, threads=1, batch_size=32, device=device)  # fmt: skip


def test_cpu_and_auto_train_the_same_weights_on_the_cpu():
    if CUDA:
        pytest.skip("auto is cuda here: the cuda test compares the devices")
    modes = stationary_ar1([0.9, 0.6], [1.0, 0.5], 200, 6, seed=3)
    a = fit_modes(modes, _tiny("cpu"), progress=False).model.state_dict()
    b = fit_modes(modes, _tiny("auto"), progress=False).model.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="torch sees no CUDA device")
def test_cuda_training_and_generation_match_the_cpu():
    """A tiny model trained on the GPU has the CPU's weights to float32 round-off (the data and
    initial weights are the same), comes back on the CPU, and generates on the GPU the CPU's
    trajectory (the noise is drawn on the CPU for both) to a float32 tolerance."""
    modes = stationary_ar1([0.9, 0.6], [1.0, 0.5], 200, 6, seed=3)
    cpu = fit_modes(modes, _tiny("cpu"), progress=False)
    gpu = fit_modes(modes, dataclasses.replace(_tiny("cpu"), device="cuda"), progress=False)
    assert next(gpu.model.parameters()).device.type == "cpu"
    for name, value in cpu.model.state_dict().items():
        np.testing.assert_allclose(gpu.model.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    initial = initial_windows(modes, 120, 4, 6, seed=1)
    std = cpu.standardisation
    args = (std.sigma_z, std.sigma_dz, initial, 4 + 200, 5)
    on_cpu = generate_modes(cpu.model, *args, progress=False)
    on_gpu = generate_modes(cpu.model.to("cuda"), *args, progress=False)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=1e-4 * np.abs(on_cpu).max())
