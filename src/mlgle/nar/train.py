"""Fit the k per-mode NAR networks at once (Secs. 3.1-3.3, 4.2, 4.4, Appendix C).

All modes train together in one batched network, :class:`~mlgle.nar.model.ModeNetworks` (the
paper's MLP) or :class:`~mlgle.nar.gru.GRUModeNetworks` (``train.architecture``): one shuffled
order of the training samples per epoch, shared by the modes; the loss is the sum over modes of
each mode's batch-mean Gaussian NLL (Eq. 21), so every mode receives exactly its own gradient and,
Adam being element-wise, k-mode training equals k separate one-mode trainings with the same seeds.
Validation runs in eval mode (dropout off); the best epoch is chosen per mode on the validation NLL
(Sec. 4.4, Fig. 7) and each mode ends with its own best weights. Progress is reported through a
callback; optional atomic checkpoints after every epoch make a killed run resumable bit for bit.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mlgle.config import TrainConfig
from mlgle.errors import CheckpointError
from mlgle.nar.bundle import load_fitted, read_torch, save_fitted, save_torch
from mlgle.nar.device import resolve_device
from mlgle.nar.gru import GRUModeNetworks
from mlgle.nar.model import ModeNetworks, gaussian_nll
from mlgle.nar.windows import Standardisation, WindowDataset, split_modes

EVAL_BATCH = 4096
"""Samples per validation chunk (bounds memory; the result does not depend on it)."""

PRECOMPUTE_BYTES = 1 << 30
"""The rotated windows of training and validation are computed once and kept when together they
take at most this many bytes (the default study's 12 modes, m = 64: 0.6 GiB), else rotated per
batch; the values are the same either way, bit for bit (``WindowDataset.precompute``)."""

_CHECKPOINT_FORMAT = "mlgle.nar.train.checkpoint/1"
_MODEL_FORMAT = "mlgle.nar.train.TrainedModes/1"
# train.architecture -> the mode-network class (same constructor, call and head).
NETWORKS: dict[str, type[ModeNetworks] | type[GRUModeNetworks]] = {
    "mlp": ModeNetworks,
    "gru": GRUModeNetworks,
}
_RESUMABLE_CHANGES = frozenset({"epochs", "threads", "device"})


@dataclass(frozen=True)
class EpochReport:
    """What the callback receives after each epoch.

    ``epoch`` is the 0-based index of the finished epoch (the row of the curves);
    ``train_nll``, ``val_nll`` ``(k,)`` are mean NLLs per mode (training with dropout, validation
    in eval mode; NaN without validation data); ``best_epoch`` ``(k,)`` the epoch of each mode's
    lowest validation NLL so far; ``seconds`` the wall time of the epoch.
    """

    epoch: int
    train_nll: np.ndarray
    val_nll: np.ndarray
    best_epoch: np.ndarray
    seconds: float


@dataclass
class TrainedModes:
    """Fitted NAR networks with each mode's best weights and everything needed to generate.

    ``train_nll``, ``val_nll`` ``(epochs, k)``: curves of the epochs run; ``best_epoch`` ``(k,)``;
    ``config``: the :class:`~mlgle.config.TrainConfig` as a dict.
    """

    model: ModeNetworks | GRUModeNetworks
    standardisation: Standardisation
    history: int
    train_nll: np.ndarray
    val_nll: np.ndarray
    best_epoch: np.ndarray
    config: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """Write one torch file (tensors and plain data only), atomically."""
        save_fitted(
            path,
            _MODEL_FORMAT,
            self,
            architecture=self.model.architecture,
            standardisation=self.standardisation.to_dict(),
        )

    @classmethod
    def load(cls, path: str | Path) -> TrainedModes:
        """Read a file written by :meth:`save` with ``torch.load(weights_only=True)``."""
        payload, fitted = load_fitted(
            path,
            _MODEL_FORMAT,
            "TrainedModes",
            lambda p: NETWORKS[p.get("architecture", "mlp")](**p["model_config"]),
        )
        return cls(standardisation=Standardisation.from_dict(payload["standardisation"]), **fitted)


@dataclass
class _Progress:
    """Mutable training state that a checkpoint carries besides model and optimiser."""

    epoch: int
    train_nll: list[np.ndarray]
    val_nll: list[np.ndarray]
    best_val: np.ndarray
    best_epoch: np.ndarray
    best_state: dict[str, torch.Tensor]
    stopped: bool = False

    @classmethod
    def fresh(cls, model: ModeNetworks) -> _Progress:
        k = model.modes
        best = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}
        for name, tensor in best.items():
            if tensor.ndim == 0 or tensor.shape[0] != k:
                raise ValueError(
                    f"ModeNetworks.state_dict()['{name}'] has shape {tuple(tensor.shape)}; "
                    f"per-mode best weights need a leading dimension of {k} modes"
                )
        return cls(0, [], [], np.full(k, np.inf), np.full(k, -1, dtype=np.int64), best)

    def curves(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation curves, ``(epochs, k)`` each."""
        if not self.train_nll:
            return np.empty((0, k)), np.empty((0, k))
        return np.stack(self.train_nll), np.stack(self.val_nll)

    def record(
        self,
        epoch: int,
        train_nll: np.ndarray,
        val_nll: np.ndarray,
        model: ModeNetworks,
        validated: bool,
    ) -> None:
        """Append the epoch's curves; copy the weights of every mode that improved.

        A mode improves when its validation NLL is below its best so far (a NaN never does).
        Without validation data every mode counts as improved, so its last weights are kept.
        """
        self.train_nll.append(train_nll)
        self.val_nll.append(val_nll)
        improved = val_nll < self.best_val if validated else np.ones(model.modes, dtype=bool)
        self.best_val = np.where(improved, val_nll, self.best_val)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        mask = torch.from_numpy(improved)
        with torch.no_grad():
            for name, tensor in model.state_dict().items():  # best weights kept on the CPU
                self.best_state[name][mask] = tensor.cpu()[mask]
        self.epoch = epoch + 1


def fit_modes(
    modes: np.ndarray,
    config: TrainConfig,
    callback: Callable[[EpochReport], None] | None = None,
    checkpoint: str | Path | None = None,
    mode_seeds: Sequence[int] | None = None,
    progress: bool = True,
) -> TrainedModes:
    """Train the k mode networks on ``modes`` ``(frames, chains, k, 3)`` in physical units.

    Frames [0, t_train) train, the next t_val frames validate (disjoint windows, Sec. 4.2); σ_z,
    σ_Δz come from the training span only. Mode j's network is initialised from
    ``mode_seeds[j]`` (default ``config.seed + j``). Each epoch visits every training sample
    once, in an order drawn from ``config.seed`` and the epoch, in minibatches of
    ``config.batch_size``; ``callback`` gets an :class:`EpochReport` after each epoch, after the
    checkpoint (if any) has been written. Early stopping after ``config.patience`` epochs
    without any mode improving (0: off). With ``checkpoint``, an existing file is resumed from
    (one of other data, seeds or settings is set aside, see :func:`fit_networks`) and the state
    is saved atomically after every epoch. Deterministic on CPU for a given seed.
    """
    k = _check_inputs(modes, config)
    train_span, val_span = split_modes(modes, config.t_train, config.t_val)
    standardisation = Standardisation.from_training(train_span)
    seeds = [config.seed + j for j in range(k)] if mode_seeds is None else list(mode_seeds)
    if len(seeds) != k:
        raise ValueError(f"mode_seeds: expected {k} seeds (one per mode), got {len(seeds)}")
    fingerprint = {
        "config": dataclasses.asdict(config),
        "seeds": seeds,
        "standardisation": standardisation.to_dict(),
    }

    def build() -> tuple[nn.Module, WindowDataset, WindowDataset | None]:
        model = NETWORKS[config.architecture](
            k,
            config.history,
            hidden=config.hidden,
            latent=config.latent,
            activation=config.activation,
            dropout=config.dropout,
            seeds=seeds,
        )
        dtype = next(model.parameters()).dtype
        train_data = WindowDataset(train_span, standardisation, config.history, dtype)
        val_data = (
            WindowDataset(val_span, standardisation, config.history, dtype)
            if config.t_val
            else None
        )
        return model, train_data, val_data

    fitted = fit_networks(build, config, fingerprint, callback, checkpoint, progress)
    return TrainedModes(
        model=fitted.model,
        standardisation=standardisation,
        history=config.history,
        train_nll=fitted.train_nll,
        val_nll=fitted.val_nll,
        best_epoch=fitted.best_epoch,
        config=dataclasses.asdict(config),
    )


@dataclass(frozen=True)
class FittedNetworks:
    """What :func:`fit_networks` returns: the model holding each mode's best weights (eval mode)
    and the curves ``train_nll``, ``val_nll`` ``(epochs, k)`` and ``best_epoch`` ``(k,)``."""

    model: nn.Module
    train_nll: np.ndarray
    val_nll: np.ndarray
    best_epoch: np.ndarray


def fit_networks(
    build: Callable[[], tuple[nn.Module, Any, Any]],
    config: TrainConfig,
    fingerprint: dict[str, Any],
    callback: Callable[[EpochReport], None] | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
) -> FittedNetworks:
    """The training loop of :func:`fit_modes` for any batched per-mode model and datasets.

    ``build()`` -> (model, train_data, val_data or None) runs under ``config.threads`` threads in
    a forked global RNG seeded with ``config.seed``. The model maps ``data.batch(i)[0]`` to
    :class:`~mlgle.nar.model.GaussianParams` and has ``modes`` and every state tensor with a
    leading ``modes`` dimension; a dataset has ``len``, ``modes`` and ``batch(indices)`` ->
    (inputs, rotated target (k, batch, 3)), like :class:`~mlgle.nar.windows.WindowDataset`.
    Optimiser, per-mode best epoch, early stopping, callback and checkpoint/resume are those of
    :func:`fit_modes`; a checkpoint whose ``fingerprint`` differs (except epochs and threads) or
    that cannot be read is set aside (``<checkpoint>.stale-<time>``, one line on stderr) and
    training starts afresh.
    """
    checkpoint = None if checkpoint is None else Path(checkpoint)
    device = resolve_device(config.device, "train.device")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model, train_data, val_data = build()
            _precompute([d for d in (train_data, val_data) if d is not None])
            model.to(device)
            optimiser = adam(model, config.lr)
            state = _Progress.fresh(model)
            if checkpoint is not None and checkpoint.exists():
                state = _resume(checkpoint, fingerprint, model, optimiser) or state
            _run_epochs(
                model,
                optimiser,
                train_data,
                val_data,
                config,
                state,
                checkpoint,
                fingerprint,
                callback,
                progress,
            )
            model.load_state_dict(state.best_state)
            model.eval().cpu()  # files and generation start from the CPU
    finally:
        torch.set_num_threads(threads)
    train_nll, val_nll = state.curves(model.modes)
    return FittedNetworks(model, train_nll, val_nll, state.best_epoch.copy())


def adam(model: nn.Module, lr: float) -> torch.optim.Adam:
    """The optimiser of every NAR training (Sec. 4.4): Adam with torch's defaults.

    ``foreach=True`` updates all parameter tensors with multi-tensor kernels; it is bitwise the
    same update as the single-tensor loop torch picks by default on the CPU (tested) and about
    3x faster for the default network, where the loop's dozen full passes over the 1.4 M
    parameters took a third of a training step. (``fused=True`` is faster still but rounds
    differently, and training amplifies that to visible weight differences: not used.)
    """
    return torch.optim.Adam(model.parameters(), lr=lr, foreach=True)


def evaluate_nll(
    model: ModeNetworks, data: WindowDataset, batch_size: int = EVAL_BATCH
) -> np.ndarray:
    """Mean NLL per mode ``(k,)`` over all samples of ``data``, in eval mode without gradients.

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros(data.modes, dtype=torch.float64)
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x, y = data.batch(torch.arange(start, min(start + batch_size, len(data))))
            nll = gaussian_nll(model(x.to(device)), y.to(device))
            total += nll.sum(dim=1, dtype=torch.float64).cpu()
    model.train(was_training)
    return (total / len(data)).numpy()


def epoch_order(seed: int, epoch: int, samples: int) -> torch.Tensor:
    """The shuffled sample order of one epoch, ``(samples,)``: a function of (seed, epoch) only,
    so a resumed run visits the same minibatches as an uninterrupted one."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator().manual_seed(int(state))
    return torch.randperm(samples, generator=generator)


def _check_inputs(modes: np.ndarray, config: TrainConfig) -> int:
    """Check the window/span sizes against the config; return the number of modes k."""
    shape = np.shape(modes)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"modes: expected shape (frames, chains, k, 3), got {shape}")
    config.check("train config")  # the same checks as params.yaml's train section
    return shape[2]


def _precompute(datasets: Sequence[Any]) -> None:
    """Keep the rotated windows of ``datasets`` (those with ``precompute``) when they fit in
    PRECOMPUTE_BYTES together."""
    if not all(hasattr(d, "precompute") for d in datasets):
        return
    if sum(d.rotated_nbytes for d in datasets) <= PRECOMPUTE_BYTES:
        for data in datasets:
            data.precompute()


def _run_epochs(
    model: ModeNetworks,
    optimiser: torch.optim.Optimizer,
    train_data: WindowDataset,
    val_data: WindowDataset | None,
    config: TrainConfig,
    state: _Progress,
    checkpoint: Path | None,
    fingerprint: dict[str, Any],
    callback: Callable[[EpochReport], None] | None,
    progress: bool,
) -> None:
    """Run epochs state.epoch .. config.epochs - 1 (or until early stopping)."""
    bar = tqdm(
        total=config.epochs, initial=state.epoch, disable=not progress, desc="NAR", unit="epoch"
    )
    try:
        for epoch in range(state.epoch, config.epochs):
            if state.stopped:
                break
            start = time.perf_counter()
            order = epoch_order(config.seed, epoch, len(train_data))
            train_nll = _train_epoch(model, optimiser, train_data, order, config.batch_size)
            val_nll = (
                evaluate_nll(model, val_data)
                if val_data is not None
                else np.full(model.modes, np.nan)
            )
            state.record(epoch, train_nll, val_nll, model, validated=val_data is not None)
            state.stopped = bool(
                config.patience
                and val_data is not None
                and epoch - state.best_epoch.max() >= config.patience
            )
            if checkpoint is not None:
                _save_checkpoint(checkpoint, fingerprint, model, optimiser, state)
            bar.update()
            bar.set_postfix(val_nll=f"{np.mean(val_nll):.4f}")
            if callback is not None:
                callback(
                    EpochReport(
                        epoch=epoch,
                        train_nll=train_nll.copy(),
                        val_nll=val_nll.copy(),
                        best_epoch=state.best_epoch.copy(),
                        seconds=time.perf_counter() - start,
                    )
                )
    finally:
        bar.close()


def _train_epoch(
    model: ModeNetworks,
    optimiser: torch.optim.Optimizer,
    data: WindowDataset,
    order: torch.Tensor,
    batch_size: int,
) -> np.ndarray:
    """One pass over ``order``; returns the sample-mean training NLL per mode ``(k,)``."""
    model.train()
    total = torch.zeros(data.modes, dtype=torch.float64)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        x, y = data.batch(order[start : start + batch_size])
        nll = gaussian_nll(model(x.to(device)), y.to(device))  # (k, batch)
        optimiser.zero_grad(set_to_none=True)
        nll.mean(dim=1).sum().backward()
        optimiser.step()
        total += nll.detach().sum(dim=1, dtype=torch.float64).cpu()
    return (total / len(order)).numpy()


def _save_checkpoint(
    path: Path,
    fingerprint: dict[str, Any],
    model: ModeNetworks,
    optimiser: torch.optim.Optimizer,
    state: _Progress,
) -> None:
    train_nll, val_nll = state.curves(model.modes)
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "epoch": state.epoch,
        "stopped": state.stopped,
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "best_state": state.best_state,
        "best_val": torch.from_numpy(state.best_val),
        "best_epoch": torch.from_numpy(state.best_epoch),
        "train_nll": torch.from_numpy(train_nll),
        "val_nll": torch.from_numpy(val_nll),
        "rng": torch.get_rng_state(),
    }
    save_torch(payload, path)


def _resume(
    path: Path,
    fingerprint: dict[str, Any],
    model: ModeNetworks,
    optimiser: torch.optim.Optimizer,
) -> _Progress | None:
    """Load model, optimiser, curves, best weights and the global RNG state from ``path``; None
    (the file set aside, see :func:`_set_aside`) if it is unreadable or of another run."""
    try:
        payload = read_torch(path)
        if payload.get("format") != _CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: not a training checkpoint (format {payload.get('format')!r}, expected "
                f"{_CHECKPOINT_FORMAT!r})"
            )
        _check_fingerprint(path, payload["fingerprint"], fingerprint)
    except (CheckpointError, KeyError, TypeError) as exc:
        _set_aside(path, exc)
        return None
    model.load_state_dict(payload["model"])
    optimiser.load_state_dict(payload["optimiser"])
    torch.set_rng_state(payload["rng"])
    return _Progress(
        epoch=int(payload["epoch"]),
        train_nll=list(payload["train_nll"].numpy()),
        val_nll=list(payload["val_nll"].numpy()),
        best_val=payload["best_val"].numpy().copy(),
        best_epoch=payload["best_epoch"].numpy().copy(),
        best_state=payload["best_state"],
        stopped=bool(payload["stopped"]),
    )


def _set_aside(path: Path, reason: Exception) -> Path:
    """Rename a checkpoint that cannot be resumed to ``<name>.stale-<time>``; one stderr line."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.stale-{stamp}")
    n = 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.stale-{stamp}-{n}"), n + 1
    os.replace(path, aside)
    why = str(reason) if isinstance(reason, CheckpointError) else f"{path}: malformed ({reason!r})"
    lines = why.splitlines() or [""]
    why = lines[0] + (" ...)" if len(lines) > 1 else "")
    print(f"mlgle: notice: {why}; set it aside as {aside}, training from scratch", file=sys.stderr)
    return aside


def _check_fingerprint(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise if ``saved`` is of other data, seeds or settings (epochs and threads may differ)."""
    for key in ("seeds", "standardisation"):
        if saved[key] != current[key]:
            raise CheckpointError(f"{path}: the checkpoint was written for other {key}")
    changed = sorted(
        name
        for name in set(saved["config"]) | set(current["config"])
        if name not in _RESUMABLE_CHANGES
        and _plain(saved["config"].get(name)) != _plain(current["config"].get(name))
    )
    if changed:
        raise CheckpointError(
            f"{path}: the checkpoint was written with other train settings ({', '.join(changed)})"
        )


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (a config round-trip may turn one into the other)."""
    return list(value) if isinstance(value, tuple | list) else value
