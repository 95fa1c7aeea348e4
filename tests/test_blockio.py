"""Tests of mlgle.blockio: frame-block writing and reading of .npy arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mlgle.blockio
from mlgle.blockio import NpyFrameWriter, frame_blocks, frame_slice, increment_blocks, mode_series


@pytest.fixture
def array() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((37, 5, 4, 3)).astype(np.float32)


def _write(path: Path, array: np.ndarray, step: int) -> None:
    with NpyFrameWriter(path, array.shape, array.dtype) as writer:
        for first in range(0, len(array), step):
            writer.write(first, array[first : first + step])


@pytest.mark.parametrize("step", [1, 8, 37])
def test_writer_gives_the_npy_file_of_the_whole_array(tmp_path, array, step):
    _write(tmp_path / "a.npy", array, step)
    loaded = np.load(tmp_path / "a.npy")
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)
    np.save(tmp_path / "b.npy", array)  # byte for byte numpy's own file
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_writer_refuses_gaps_overruns_and_short_files(tmp_path, array):
    with pytest.raises(ValueError, match="starts at frame 8, expected 0"):
        NpyFrameWriter(tmp_path / "a.npy", array.shape, array.dtype).write(8, array[8:])
    writer = NpyFrameWriter(tmp_path / "b.npy", array.shape, array.dtype)
    writer.write(0, array)
    with pytest.raises(ValueError, match="does not fit"):
        writer.write(37, array[:1])
    writer = NpyFrameWriter(tmp_path / "c.npy", array.shape, array.dtype)
    writer.write(0, array[:10])
    with pytest.raises(ValueError, match="10 of 37 frames"):
        writer.close()


@pytest.mark.parametrize("block_bytes", [1, 5 * 4 * 3 * 4 * 3, 1 << 30])
def test_frame_blocks_of_a_memmap_are_copies_in_order(tmp_path, array, block_bytes):
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    blocks = list(frame_blocks(mapped, block_bytes))
    assert [first for first, _ in blocks] == list(np.cumsum([0, *[len(b) for _, b in blocks[:-1]]]))
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), array)
    # Each block is its own memory, not a view of the long-lived mapping.
    assert not any(np.shares_memory(b, mapped) for _, b in blocks)


def test_frame_blocks_of_slices_and_plain_arrays(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    # A slice of a memmap keeps its parent's offset attribute: it must still read its own frames.
    cases = ((mapped[5:], array[5:]), (mapped[:, 1:3], array[:, 1:3]), (array, array))
    for view, expected in cases:
        got = np.concatenate([b for _, b in frame_blocks(view, block_bytes=200)])
        np.testing.assert_array_equal(got, expected)
    got = np.concatenate([b for _, b in frame_blocks(mapped, 200, start=3, stop=30)])
    np.testing.assert_array_equal(got, array[3:30])
    with pytest.raises(ValueError, match="outside"):
        next(frame_blocks(mapped, start=5, stop=40))


def test_mode_series_is_one_mode_in_c_order(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    series = mode_series(np.load(tmp_path / "a.npy", mmap_mode="r"), 2, block_bytes=100)
    assert series.flags.c_contiguous and series.dtype == np.float32
    np.testing.assert_array_equal(series, array[:, :, 2])


def test_frame_slice_is_a_block_of_chains_in_the_asked_dtype(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    got = frame_slice(mapped, (slice(1, 4),), dtype=np.float64, block_bytes=300)
    assert got.shape == (37, 3, 4, 3) and got.dtype == np.float64 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, array[:, 1:4].astype(np.float64))


def test_the_default_block_size_is_read_at_each_call(tmp_path, array, monkeypatch):
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert len(list(frame_blocks(mapped))) == 1
    monkeypatch.setattr(mlgle.blockio, "BLOCK_BYTES", array[0].nbytes * 4)  # 4 frames a block
    assert [len(b) for _, b in frame_blocks(mapped)] == [4] * 9 + [1]


@pytest.mark.parametrize("block_bytes", [1, 700, 1 << 30])
def test_increment_blocks_are_the_diff_of_the_whole_array(
    tmp_path, array, monkeypatch, block_bytes
):
    np.save(tmp_path / "a.npy", array)
    monkeypatch.setattr(mlgle.blockio, "BLOCK_BYTES", block_bytes)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    parts = list(increment_blocks(mapped, (slice(None), slice(1, 3))))
    whole = array[:, :, 1:3].astype(np.float64)
    np.testing.assert_array_equal(np.concatenate([x for _, x, _, _ in parts]), whole)
    # d_first is the first frame of a block, less one after the first block (the carried frame).
    assert [d_first for _, _, d_first, _ in parts] == [0] + [first - 1 for first, *_ in parts[1:]]
    np.testing.assert_array_equal(np.concatenate([d for *_, d in parts]), np.diff(whole, axis=0))
    assert sum(len(d) for *_, d in parts) == len(array) - 1
