"""Where the NAR networks run: ``train.device`` / ``generate.device`` = auto | cpu | cuda.

``auto`` takes the first CUDA device when torch sees one and the CPU otherwise. The CPU path is
the one the tests and the default study run; on a GPU only the placement changes (the noise of
Alg. 1 is still drawn on the CPU, so the same seed gives the same trajectory on either device to
float round-off, and model files are always written from the CPU).
"""

from __future__ import annotations

import torch

from mlgle.config import DEVICES
from mlgle.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(name: str, key: str) -> torch.device:
    """The torch device for a setting ``name`` of params key ``key`` (e.g. "train.device");
    ConfigError naming the key if it is unknown or asks for CUDA where torch has none."""
    if name not in DEVICES:
        raise ConfigError(f"{key}: expected one of {', '.join(DEVICES)}, got {name!r}")
    cuda = torch.cuda.is_available()
    if name == "cuda" and not cuda:
        built = torch.version.cuda or "none"
        raise ConfigError(
            f"{key}: cuda was asked but torch {torch.__version__} sees no CUDA device (its CUDA "
            f"build: {built}); set {key} to auto or cpu"
        )
    return torch.device("cuda" if name == "cuda" or (name == "auto" and cuda) else "cpu")
