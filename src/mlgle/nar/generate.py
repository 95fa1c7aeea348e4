"""Auto-regressive generation of normal-mode trajectories (Alg. 1, Sec. 3.4, Eqs. 23-25).

Every step, for all k modes and n trajectories at once: the last m standardised values form the
window, R = rotation_frames(window), the network reads the rotated window, an increment is
sampled in the frame (Eq. 23), rotated back (Eq. 24) and integrated in standardised units
(Eq. 25): z_t = z_{t-1} + (σ_Δz / σ_z) Rᵀ Δẑ_t (Δt is absorbed: z is sampled once per frame).

``generate_modes`` is the fast path (one batched network call per step, a ring buffer of the
standardised window, the noise drawn in blocks). ``generate_modes_reference`` is Alg. 1 as printed:
a Python loop over modes with one single-mode network each and a ``MultivariateNormal`` built
from Σ = L D Lᵀ every step. Both draw ε from the same seeded stream, so the same seed gives the
same trajectory to rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torch.distributions import MultivariateNormal
from tqdm.auto import tqdm

from mlgle.errors import GenerationError
from mlgle.nar.frames import rotation_frames
from mlgle.nar.model import FrozenNetworks, ModeNetworks, sample_increment
from mlgle.stats import is_int

__all__ = [
    "FrameSink",
    "check_generated",
    "generate_modes",
    "generate_modes_reference",
    "initial_windows",
    "stream_modes",
]

NoiseSource = Callable[[int], Tensor]
"""Generated step index s = 0, 1, ... (asked in order) -> standard normal ε, (modes, n, 3)."""
FrameSink = Callable[[int, np.ndarray], None]
"""(first frame, block (b, n, k, 3)) in frame order: where :func:`stream_modes` puts its output."""

_NOISE_BLOCK_STEPS = 128  # steps of ε drawn per call to torch.randn
_NOISE_BLOCK_ELEMENTS = 1 << 22  # ... unless that would exceed this many numbers
_RING_STEPS = 128  # generated steps held in the ring buffer between flushes (at least m)


class _BlockNoise:
    """Seeded standard normal ε of shape (modes, n, 3) per step, drawn a block of steps at once.

    The block length depends only on the shape, and every block is drawn on the CPU (then moved
    to ``device``), so the stream is a pure function of the seed, shape and dtype: the same on
    any device. Steps must be asked in increasing order.
    """

    def __init__(
        self, seed: int, shape: tuple[int, int, int], dtype: torch.dtype, device: torch.device
    ) -> None:
        self._generator = torch.Generator().manual_seed(seed)
        per_step = shape[0] * shape[1] * shape[2]
        self.block = max(1, min(_NOISE_BLOCK_STEPS, _NOISE_BLOCK_ELEMENTS // per_step))
        self._shape = (self.block, *shape)
        self._dtype = dtype
        self._device = device
        self._index = -1
        self._values: Tensor | None = None

    def __call__(self, step: int) -> Tensor:
        index, row = divmod(step, self.block)
        if index != self._index:
            if index != self._index + 1:
                raise RuntimeError(f"noise: steps must be asked in order, got step {step}")
            self._values = torch.randn(
                self._shape, generator=self._generator, dtype=self._dtype
            ).to(self._device)
            self._index = index
        return self._values[row]


def _check_inputs(
    model: ModeNetworks,
    sigma_z: np.ndarray,
    sigma_dz: np.ndarray,
    initial: np.ndarray,
    frames: int,
    dtype: torch.dtype,
) -> None:
    """Shape, value and dtype checks shared by both generators (clear errors naming arguments)."""
    k, m = model.modes, model.history
    initial_shape = np.shape(initial)
    if (
        len(initial_shape) != 4
        or initial_shape[0] != m
        or initial_shape[2] != k
        or initial_shape[3] != 3
        or initial_shape[1] < 1
    ):
        raise ValueError(
            f"initial: expected shape (history m={m}, n>=1, modes k={k}, 3) for this model, "
            f"got {initial_shape}"
        )
    if not np.all(np.isfinite(initial)):
        raise ValueError("initial: contains non-finite values")
    for name, sigma in (("sigma_z", sigma_z), ("sigma_dz", sigma_dz)):
        if np.shape(sigma) != (k,):
            raise ValueError(f"{name}: expected shape (modes k={k},), got {np.shape(sigma)}")
        if not np.all(np.isfinite(sigma)) or not np.all(np.asarray(sigma) > 0):
            raise ValueError(f"{name}: expected finite positive scales, got {sigma!r}")
    if not is_int(frames) or frames < m:
        raise ValueError(f"frames: expected an integer >= history m={m}, got {frames!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    parameter = next(model.parameters())
    if parameter.dtype != dtype:
        raise ValueError(
            f"model: parameters are {parameter.dtype} but dtype={dtype} was asked; "
            f"convert with model.to({dtype})"
        )


def _device(model: ModeNetworks) -> torch.device:
    return next(model.parameters()).device


def _output(initial: np.ndarray, frames: int, dtype: torch.dtype) -> np.ndarray:
    """Preallocated result (frames >= m, n, k, 3) in ``dtype`` whose first m rows are the initial
    window."""
    m, n, k, _ = np.shape(initial)
    out = np.empty((frames, n, k, 3), dtype=torch.empty((), dtype=dtype).numpy().dtype)
    out[:m] = initial
    return out


def generate_modes(
    model: ModeNetworks,
    sigma_z: np.ndarray,
    sigma_dz: np.ndarray,
    initial: np.ndarray,
    frames: int,
    seed: int,
    progress: bool = True,
    dtype: torch.dtype = torch.float32,
    backend: str = "auto",
) -> np.ndarray:
    """Alg. 1: generate k normal modes of n trajectories with the NAR model.

    model: trained ModeNetworks (k modes, history m) with parameters in ``dtype``; it runs in
    eval mode under ``torch.inference_mode`` and gets its train/eval mode back afterwards.
    sigma_z, sigma_dz: (k,) scalar standardisations of the modes and their increments.
    initial: (m, n, k, 3) last m MD frames of n trajectories, physical units.
    backend: the network's matmul backend, see :class:`~mlgle.nar.model.FrozenNetworks` ("auto":
    the faster on this machine; the backends differ by float round-off).
    Returns (frames, n, k, 3) in physical units and ``dtype`` (float32 by default): rows [0, m)
    are the initial window, then frames - m generated steps. Deterministic given ``seed`` and
    the backend. The whole result is held in memory; :func:`stream_modes` hands it out in frame
    blocks.
    """
    _check_inputs(model, sigma_z, sigma_dz, initial, frames, dtype)
    _, n, k, _ = np.shape(initial)
    out = np.empty((frames, n, k, 3), dtype=torch.empty((), dtype=dtype).numpy().dtype)

    def keep(first: int, block: np.ndarray) -> None:
        out[first : first + block.shape[0]] = block

    stream_modes(model, sigma_z, sigma_dz, initial, frames, seed, keep, progress, dtype, backend)
    return out


def stream_modes(
    model: ModeNetworks,
    sigma_z: np.ndarray,
    sigma_dz: np.ndarray,
    initial: np.ndarray,
    frames: int,
    seed: int,
    sink: FrameSink,
    progress: bool = True,
    dtype: torch.dtype = torch.float32,
    backend: str = "auto",
) -> str:
    """:func:`generate_modes` at constant memory: its result is passed to ``sink(first, block)``
    in consecutive frame blocks (b, n, k, 3), the initial window first, each block as soon as it
    is generated (at most max(m, 128) frames), so only the ring buffer and one block are held.
    The blocks concatenate to exactly :func:`generate_modes`'s array for the same arguments.
    Returns the matmul backend that ran ("onednn" or "torch").
    """
    _check_inputs(model, sigma_z, sigma_dz, initial, frames, dtype)
    noise = _BlockNoise(seed, (model.modes, np.shape(initial)[1], 3), dtype, _device(model))
    return _generate_fast(
        model, sigma_z, sigma_dz, initial, frames, noise, sink, progress, dtype, backend
    )


def _generate_fast(
    model: ModeNetworks,
    sigma_z: np.ndarray,
    sigma_dz: np.ndarray,
    initial: np.ndarray,
    frames: int,
    noise: NoiseSource,
    sink: FrameSink,
    progress: bool,
    dtype: torch.dtype,
    backend: str = "auto",
) -> str:
    """The batched loop of ``generate_modes`` with ε from ``noise`` (inputs already checked),
    frame blocks to ``sink``; returns the network's matmul backend.

    The standardised trajectory lives in a ring buffer laid out (m + chunk, 3, k, n): time, then
    component, then the k·n mode-trajectory pairs contiguous, so the window is the slice
    [pos - m, pos) and its rotation (Eq. 18) is nine broadcast multiply-adds over whole rows
    (``_rotate``) instead of k·n tiny matrix products; the rotated window, stored (m, 3, k, n),
    is the network input (k, n, 3m) as a transposed view, and the network is a
    :class:`FrozenNetworks` on ``backend``. Every ``chunk`` steps the
    new values are de-standardised into a block for ``sink`` and the last m values move to the
    front.
    """
    m, n, k, _ = np.shape(initial)
    device = _device(model)
    sink(0, _output(initial, m, dtype))
    sigma = np.asarray(sigma_z, dtype=np.float64)
    scale = torch.tensor(sigma, dtype=dtype).view(1, 1, k, 1)
    ratio = torch.tensor(sigma_dz / sigma, dtype=dtype, device=device).view(k, 1)
    chunk = max(m, _RING_STEPS)
    ring = torch.empty((m + chunk, 3, k, n), dtype=dtype, device=device)
    start = np.asarray(initial, dtype=np.float64) / sigma[:, None]  # (m, n, k, 3)
    ring[:m] = torch.tensor(start, device=device).permute(0, 3, 2, 1)
    rotated = torch.empty((m, 3, k, n), dtype=dtype, device=device)
    x = rotated.view(3 * m, k, n).permute(1, 2, 0)  # (k, n, 3m), x[j, c, 3t + a]
    frame_t = torch.empty((3, 3, k, n), dtype=dtype, device=device)
    last3 = torch.empty((k, n, 3, 3), dtype=dtype, device=device)  # z_{t-3..t-1}, contiguous
    network = FrozenNetworks(model, n, backend)

    def flush(first: int, last: int) -> None:  # generated steps [first, last) -> sink
        block = ring[m : m + last - first].permute(0, 3, 2, 1)
        sink(m + first, (block.cpu() * scale).numpy())

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            pos, flushed = m, 0
            for step in tqdm(range(frames - m), disable=not progress, desc="generate", unit="step"):
                if pos == m + chunk:
                    flush(flushed, step)
                    ring[:m] = ring[chunk:]
                    pos, flushed = m, step
                last = last3.copy_(ring[pos - 3 : pos].permute(2, 3, 0, 1))  # (k, n, 3, 3)
                frame = rotation_frames(last)
                frame_t.copy_(frame.permute(2, 3, 0, 1))
                _rotate(ring[pos - m : pos], frame_t, rotated)  # Eq. 18
                dz_hat = sample_increment(network(x), noise(step))  # Eq. 23
                dz = (dz_hat.unsqueeze(-1) * frame).sum(-2)  # Rᵀ Δẑ, Eq. 24: (k, n, 3)
                torch.addcmul(ring[pos - 1], ratio, dz.permute(2, 0, 1), out=ring[pos])  # Eq. 25
                pos += 1
            flush(flushed, frames - m)
    finally:
        model.train(was_training)
    return network.backend


def _rotate(window: Tensor, frame_t: Tensor, out: Tensor) -> None:
    """ŷ = R y (Eq. 18) in the ring layout: window (m, 3, k, n), frame_t[a, b] = R_ab (3, 3, k, n)
    -> out (m, 3, k, n), out[:, a] = Σ_b R_ab window[:, b]."""
    for a in range(3):
        row = out[:, a]
        torch.mul(window[:, 0], frame_t[a, 0], out=row)
        row.addcmul_(window[:, 1], frame_t[a, 1])
        row.addcmul_(window[:, 2], frame_t[a, 2])


def generate_modes_reference(
    model: ModeNetworks,
    sigma_z: np.ndarray,
    sigma_dz: np.ndarray,
    initial: np.ndarray,
    frames: int,
    seed: int,
    progress: bool = True,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """Alg. 1 written out: loop over steps and modes, one network and one distribution each.

    Same arguments, result and noise stream as :func:`generate_modes` (same seed -> same
    trajectory to rounding), but mode j runs its own single-mode network, Σ = L D Lᵀ is built
    explicitly and sampled through ``MultivariateNormal`` (Cholesky factor of Σ) every step.
    Slow on purpose: the independent implementation for tests and the benchmark baseline.
    """
    _check_inputs(model, sigma_z, sigma_dz, initial, frames, dtype)
    noise = _BlockNoise(seed, (model.modes, np.shape(initial)[1], 3), dtype, _device(model))
    return _generate_reference(model, sigma_z, sigma_dz, initial, frames, noise, progress, dtype)


def _single_mode_networks(model: ModeNetworks) -> list[ModeNetworks]:
    """The k per-mode MLPs of ``model`` as separate 1-mode networks (parameters copied)."""
    config = {**model.config(), "modes": 1, "seeds": [0]}
    state = model.state_dict()
    networks = []
    for j in range(model.modes):
        network = type(model)(**config).to(
            dtype=next(model.parameters()).dtype, device=_device(model)
        )
        network.load_state_dict({name: value[j : j + 1] for name, value in state.items()})
        networks.append(network.eval())
    return networks


def _generate_reference(
    model: ModeNetworks,
    sigma_z: np.ndarray,
    sigma_dz: np.ndarray,
    initial: np.ndarray,
    frames: int,
    noise: NoiseSource,
    progress: bool,
    dtype: torch.dtype,
) -> np.ndarray:
    """The per-mode loop of ``generate_modes_reference`` with ε from ``noise``."""
    m, n, k, _ = np.shape(initial)
    device = _device(model)
    networks = _single_mode_networks(model)
    z = torch.empty((frames, n, k, 3), dtype=dtype, device=device)
    z[:m] = torch.as_tensor(np.asarray(initial, dtype=np.float64) / np.reshape(sigma_z, (k, 1)))
    eye = torch.eye(3, dtype=dtype, device=device)
    rows, cols = torch.tril_indices(3, 3, offset=-1)
    with torch.no_grad():
        for t in tqdm(
            range(m, frames), disable=not progress, desc="generate (reference)", unit="step"
        ):
            eps = noise(t - m)
            for j in range(k):
                window = z[t - m : t, :, j].transpose(0, 1)  # (n, m, 3), time order
                frame = rotation_frames(window)  # rows e1, e2, e3
                rotated = torch.einsum("nab,ntb->nta", frame, window)  # Eq. 18
                params = networks[j](rotated.reshape(1, n, 3 * m))
                lower = eye.repeat(n, 1, 1)
                lower[:, rows, cols] = params.lower[0]
                cov = lower @ torch.diag_embed(params.log_d[0].exp()) @ lower.transpose(1, 2)
                normal = MultivariateNormal(params.mean[0], covariance_matrix=cov)
                dz_hat = normal.loc + (normal.scale_tril @ eps[j].unsqueeze(-1)).squeeze(-1)
                dz = torch.einsum("nab,na->nb", frame, dz_hat)  # Rᵀ Δẑ, Eq. 24
                z[t, :, j] = z[t - 1, :, j] + float(sigma_dz[j] / sigma_z[j]) * dz  # Eq. 25
    out = _output(initial, frames, dtype)
    out[m:] = (z[m:].double() * torch.as_tensor(np.reshape(sigma_z, (k, 1)))).cpu().numpy()
    return out


def initial_windows(modes: np.ndarray, start: int, history: int, n: int, seed: int) -> np.ndarray:
    """n initial windows of length m = ``history`` from the MD modes after training (Sec. 4.4).

    modes: (frames, chains, k, 3). Window i is ``modes[s_i : s_i + m, c_i]`` with s_i >= start
    (e.g. t_train): chains are taken in a seeded random order, cycling when n > chains, and the
    several windows of one chain are placed at random without overlap (start times at least m
    apart). Returns an exact copy of those slices, (m, n, k, 3), in the dtype of ``modes``.
    """
    modes = np.asarray(modes)
    if modes.ndim != 4 or modes.shape[-1] != 3 or modes.shape[1] < 1:
        raise ValueError(f"modes: expected shape (frames, chains>=1, k, 3), got {modes.shape}")
    for name, value, low in (("start", start, 0), ("history", history, 1), ("n", n, 1)):
        if not is_int(value) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    frames, chains = modes.shape[:2]
    per_chain = -(-n // chains)  # windows on the busiest chain
    room = frames - start  # frames available after start
    if per_chain * history > room:
        raise ValueError(
            f"modes: {n} windows of history {history} over {chains} chains need "
            f"{per_chain * history} frames after start={start} on one chain, but only "
            f"{max(room, 0)} of {frames} frames follow it"
        )
    rng = np.random.default_rng(seed)
    used = min(n, chains)
    chain_of_slot = rng.permutation(chains)[:used]
    counts = np.bincount(np.arange(n) % used, minlength=used)
    # Non-overlapping placement per chain: sorted offsets in the slack plus rank * m.
    offsets = np.sort(rng.integers(0, room - counts * history + 1, size=(per_chain, used)), 0)
    starts = start + offsets + np.arange(per_chain)[:, None] * history
    index = np.arange(n)
    s = starts[index // used, index % used]
    c = chain_of_slot[index % used]
    return modes[s[None, :] + np.arange(history)[:, None], c[None, :]]


def check_generated(
    modes: np.ndarray, source: str, first: int = 0, frames: int | None = None
) -> None:
    """Raise :class:`GenerationError` if generated modes (b, n, k, 3) hold a non-finite value,
    naming ``source`` (the model), the first such frame and its mode (1-based, as p in Eq. 15).
    For a block of a longer run, ``first`` is its first frame and ``frames`` the run's length."""
    bad = ~np.isfinite(modes).all(axis=(1, 3))  # (b, k)
    if bad.any():
        frame, mode = (int(i) for i in np.argwhere(bad)[0])
        raise GenerationError(
            f"{source}: generated mode {mode + 1} is not finite from frame {first + frame} of "
            f"{modes.shape[0] if frames is None else frames} (the model diverged: retrain with "
            "more epochs or a lower train.lr, or check the modes it was trained on)"
        )
