"""Trajectory and modes stores: round trips, validation, and no half-written store on failure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlgle.store import (
    StoreError,
    TrajectoryMeta,
    atomic_dir,
    open_modes,
    open_trajectory,
    temperature_tag,
    write_modes,
    write_trajectory,
)


def meta(frames=5, chains=2, beads=4) -> TrajectoryMeta:
    return TrajectoryMeta(temperature=1.25, dt=1.0, chains=chains, beads=beads, frames=frames)


def test_round_trip_is_memory_mapped_float32(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 2, 4, 3))
    write_trajectory(tmp_path / "T1.25", x, meta())
    positions, m = open_trajectory(tmp_path / "T1.25")
    assert isinstance(positions, np.memmap)
    assert positions.dtype == np.float32
    np.testing.assert_array_equal(positions, x.astype(np.float32))
    assert m == meta()


def test_modes_round_trip(tmp_path):
    z = np.random.default_rng(1).normal(size=(5, 2, 3, 3))
    write_modes(tmp_path / "m", z, meta())
    modes, m = open_modes(tmp_path / "m")
    np.testing.assert_array_equal(modes, z.astype(np.float32))
    assert m.frames == 5


def test_temperature_tag_matches_dvc_rendering():
    assert [temperature_tag(t) for t in (1.0, 1.25, 1.5, 2)] == ["T1.0", "T1.25", "T1.5", "T2.0"]


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((5, 2, 4)), "expected shape (frames, chains, beads, 3)"),
        (np.zeros((5, 2, 4, 2)), "expected shape (frames, chains, beads, 3)"),
        (np.full((5, 2, 4, 3), np.nan), "non-finite coordinate at frame 0"),
    ],
)
def test_bad_positions_are_named(tmp_path, array, fragment):
    with pytest.raises(StoreError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        write_trajectory(tmp_path / "s", array, meta())
    assert not (tmp_path / "s").exists()


def test_nan_names_the_frame(tmp_path):
    x = np.zeros((5, 2, 4, 3))
    x[3, 1, 2, 0] = np.inf
    with pytest.raises(StoreError, match="frame 3"):
        write_trajectory(tmp_path / "s", x, meta())


def test_shape_must_match_meta(tmp_path):
    with pytest.raises(StoreError, match=r"shape \(4, 2, 4, 3\) != meta \(5, 2, 4, 3\)"):
        write_trajectory(tmp_path / "s", np.zeros((4, 2, 4, 3)), meta())


def test_failed_write_keeps_the_old_store(tmp_path):
    target = tmp_path / "store"
    write_trajectory(target, np.ones((5, 2, 4, 3)), meta())
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "positions.npy").write_bytes(b"partial")
        raise RuntimeError("killed mid-write")
    positions, _ = open_trajectory(target)
    assert positions.sum() == 5 * 2 * 4 * 3
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_missing_and_inconsistent_files_are_named(tmp_path):
    with pytest.raises(StoreError, match=r"meta\.json: store metadata not found"):
        open_trajectory(tmp_path)
    write_trajectory(tmp_path / "s", np.zeros((5, 2, 4, 3)), meta())
    data = json.loads((tmp_path / "s" / "meta.json").read_text())
    data["frames"] = 6
    (tmp_path / "s" / "meta.json").write_text(json.dumps(data))
    with pytest.raises(StoreError, match=r"positions.npy: shape \(5, 2, 4, 3\) does not match"):
        open_trajectory(tmp_path / "s")
    del data["dt"]
    (tmp_path / "s" / "meta.json").write_text(json.dumps(data))
    with pytest.raises(StoreError, match="field 'dt' is missing"):
        open_trajectory(tmp_path / "s")
