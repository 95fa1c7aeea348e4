"""Frame-block I/O of ``.npy`` arrays laid out (frames, ...), at a memory cost of one block.

Generation writes its (frames, n, k, 3) ensemble block by block as it is produced
(:class:`NpyFrameWriter`); evaluation reads it back in frame blocks (:func:`frame_blocks`, with
the one-frame increments :func:`increment_blocks`) and one mode or a few chains at a time
(:func:`mode_series`, :func:`frame_slice`). A memory-mapped array read through one long-lived
mapping keeps every page it touched resident (they count in the resident set until unmapped), so
each block is mapped alone and unmapped after its copy is taken: the resident set stays one
block, whatever the file's size. Plain in-memory arrays go through the same functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "NpyFrameWriter",
    "frame_blocks",
    "frame_slice",
    "increment_blocks",
    "mode_series",
]

BLOCK_BYTES = 32 << 20  # bytes per frame block read (at least one frame)


class NpyFrameWriter:
    """Write a ``.npy`` array of ``shape`` (frames, ...) and ``dtype`` frame block by frame block.

    Blocks must arrive in order (``write(first, block)`` with ``first`` the frames written so far)
    and together hold exactly ``shape[0]`` frames, or closing raises ``ValueError``. The file is
    an ordinary C-order ``.npy`` file that ``np.load`` reads; only the current block is in memory.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.frames = 0
        self._file = open(self.path, "wb")  # closed by close() / __exit__
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        np.lib.format.write_array_header_1_0(self._file, header)

    def write(self, first: int, block: np.ndarray) -> None:
        """Append ``block`` (b, *shape[1:]) holding frames [first, first + b), cast to ``dtype``."""
        if first != self.frames:
            raise ValueError(f"{self.path}: block starts at frame {first}, expected {self.frames}")
        if block.shape[1:] != self.shape[1:] or self.frames + block.shape[0] > self.shape[0]:
            raise ValueError(
                f"{self.path}: block of shape {block.shape} does not fit frames "
                f"[{first}, {first + block.shape[0]}) of an array {self.shape}"
            )
        np.ascontiguousarray(block, dtype=self.dtype).tofile(self._file)
        self.frames += block.shape[0]

    def close(self) -> None:
        self._file.close()
        if self.frames != self.shape[0]:
            raise ValueError(f"{self.path}: {self.frames} of {self.shape[0]} frames were written")

    def __enter__(self) -> NpyFrameWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._file.close()  # the caller's error wins; the partial file is the caller's


def _block_frames(array: np.ndarray, block_bytes: int) -> int:
    frame_bytes = max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize)
    return max(1, block_bytes // frame_bytes)


def _whole_mapping(array: np.ndarray) -> bool:
    """Whether ``array`` is a whole C-order memory-mapped file from its offset to its end (a
    slice of one shares the parent's ``offset`` attribute, so it is read by slicing instead)."""
    if not isinstance(array, np.memmap) or array.filename is None or not array.flags.c_contiguous:
        return False
    try:
        return os.path.getsize(array.filename) == array.offset + array.nbytes
    except OSError:
        return False


def frame_blocks(
    array: np.ndarray, block_bytes: int | None = None, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(first, block) over frames [start, stop) of ``array`` (frames, ...), in order.

    Each block is a copy of ``array[first : first + b]`` in the array's dtype, b frames of at most
    ``block_bytes`` (default :data:`BLOCK_BYTES`, read at each call; at least one frame). For a
    C-contiguous ``np.memmap`` (``np.load(..., mmap_mode="r")``) each block is mapped on its own
    and unmapped once copied, so the pages of earlier blocks do not stay resident.
    """
    stop = array.shape[0] if stop is None else stop
    if not 0 <= start <= stop <= array.shape[0]:
        raise ValueError(f"frames [{start}, {stop}) outside an array of {array.shape[0]} frames")
    step = _block_frames(array, BLOCK_BYTES if block_bytes is None else block_bytes)
    frame_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
    mapped = _whole_mapping(array)
    for first in range(start, stop, step):
        last = min(stop, first + step)
        if mapped:
            view = np.memmap(
                array.filename,
                dtype=array.dtype,
                mode="r",
                offset=array.offset + first * frame_bytes,
                shape=(last - first, *array.shape[1:]),
            )
            block = np.array(view)
            del view  # unmaps the block's pages
        else:
            block = np.array(array[first:last])
        yield first, block


def frame_slice(
    array: np.ndarray,
    index: tuple[int | slice, ...],
    dtype: np.dtype | type | None = None,
    block_bytes: int | None = None,
) -> np.ndarray:
    """``array[:, *index]`` as a C-order copy in ``dtype`` (default the array's), read in frame
    blocks (see :func:`frame_blocks`): one mode, ``index = (slice(None), j)`` of (frames, n, K, 3),
    or a block of chains, ``index = (slice(c0, c1),)`` of (frames, n, 3)."""
    key = (slice(None), *index)
    shape = array[:1][key].shape[1:]
    out = np.empty((array.shape[0], *shape), dtype=array.dtype if dtype is None else dtype)
    for first, block in frame_blocks(array, block_bytes):
        out[first : first + block.shape[0]] = block[key]
    return out


def mode_series(modes: np.ndarray, mode: int, block_bytes: int | None = None) -> np.ndarray:
    """One mode's trajectories ``modes[:, :, mode]`` as a C-order copy (frames, n, 3) in the
    array's dtype, read in frame blocks. modes: (frames, n, K, 3)."""
    return frame_slice(modes, (slice(None), mode), block_bytes=block_bytes)


def increment_blocks(
    array: np.ndarray, index: tuple[int | slice, ...] = ()
) -> Iterator[tuple[int, np.ndarray, int, np.ndarray]]:
    """(first, x, d_first, d) over the frame blocks of ``array[:, *index]`` (frames, ...): x the
    block in float64 (frames first .. first + len(x) - 1) and d its one-frame increments
    x(t + 1) − x(t) for t = d_first .. d_first + len(d) − 1, the increment across a block edge
    included (a one-frame carry), so the d of all blocks are ``np.diff`` of the whole array."""
    key = (slice(None), *index)
    previous = None
    for first, block in frame_blocks(array):
        x = block[key].astype(np.float64)
        if previous is None:
            yield first, x, first, np.diff(x, axis=0)
        else:
            yield first, x, first - 1, np.diff(np.concatenate([previous, x]), axis=0)
        previous = x[-1:]
