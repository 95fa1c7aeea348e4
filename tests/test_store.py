"""Trajectory and modes stores: round trips, validation, and no half-written store on failure;
the stage outputs read back (GLE JSON, generated ensembles)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mlgle.errors import StoreError
from mlgle.gle import GLEModel
from mlgle.store import (
    TrajectoryMeta,
    atomic_dir,
    gle_from_json,
    gle_json,
    open_generated,
    open_modes,
    open_trajectory,
    read_gle,
    read_json,
    read_modes,
    temperature_tag,
    write_file,
    write_json,
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


def test_read_modes_is_float64_in_memory(tmp_path):
    z = np.random.default_rng(2).normal(size=(5, 2, 3, 3))
    write_modes(tmp_path / "m", z, meta())
    modes, m = read_modes(tmp_path / "m")
    assert modes.dtype == np.float64 and not isinstance(modes, np.memmap)
    np.testing.assert_array_equal(modes, z.astype(np.float32).astype(np.float64))
    assert m == meta()


def test_write_file_is_atomic_and_follows_the_umask(tmp_path):
    def fail(tmp):
        tmp.write_text("partial")
        raise RuntimeError("killed mid-write")

    target = tmp_path / "sub" / "table.csv"
    with pytest.raises(RuntimeError):
        write_file(target, fail)
    assert list((tmp_path / "sub").iterdir()) == []  # no target, no temporary file
    old = os.umask(0o027)
    try:
        assert write_file(target, lambda tmp: tmp.write_text("a,b\n")) == target
    finally:
        os.umask(old)
    assert target.read_text() == "a,b\n" and target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_gle_json_round_trip_and_missing_fields(tmp_path):
    model = GLEModel(alpha=0.3, beta=1.2, dt=0.5, points=(1, 4, 8), k=4)
    data = gle_json(model)
    assert data["D_gle"] == pytest.approx(model.diffusion)
    assert gle_from_json(json.loads(json.dumps(data))) == model
    write_json(tmp_path / "gle.json", {"temperature": 1.0, **data})
    assert read_gle(tmp_path / "gle.json") == model
    del data["points"]
    with pytest.raises(StoreError, match=r"fit\.json: field 'points' is missing"):
        gle_from_json(data, "fit.json")


def test_read_json_names_the_file_and_its_writer(tmp_path):
    with pytest.raises(StoreError, match=r"nope\.json: not found \(written by mlgle fit-gle\)"):
        read_json(tmp_path / "nope.json", "mlgle fit-gle")
    with pytest.raises(StoreError, match="is a directory"):
        read_gle(tmp_path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StoreError, match=r"bad\.json: not valid JSON"):
        read_gle(tmp_path / "bad.json")


def test_open_generated_reads_modes_com_and_meta(tmp_path):
    rng = np.random.default_rng(3)
    gen, com = rng.normal(size=(6, 2, 3, 3)), rng.normal(size=(6, 2, 3))
    np.save(tmp_path / "modes.npy", gen.astype(np.float32))
    np.save(tmp_path / "com_refit.npy", com.astype(np.float32))
    write_json(tmp_path / "meta.json", {"frames": 6})
    with pytest.raises(StoreError, match=r"com\.npy: not found"):
        open_generated(tmp_path)
    modes, c, info = open_generated(tmp_path, com="com_refit.npy")
    assert modes.dtype == c.dtype == np.float32 and info == {"frames": 6}
    assert isinstance(modes, np.memmap) and isinstance(c, np.memmap)  # read as written
    np.testing.assert_array_equal(modes, gen.astype(np.float32))
    np.testing.assert_array_equal(c, com.astype(np.float32))
    with pytest.raises(StoreError, match=r"meta\.json: not found"):
        open_generated(tmp_path / "missing")
    (tmp_path / "modes.npy").write_bytes(b"not an array")
    with pytest.raises(StoreError, match=r"modes\.npy: not a readable \.npy array"):
        open_generated(tmp_path, com="com_refit.npy")


def test_leftovers_of_dead_runs_are_removed_and_nothing_else(tmp_path):
    """What a SIGKILLed run left beside an output goes at the next write; a live run's temporary
    output and files of the same prefix that mlgle did not name stay."""
    import subprocess
    import sys

    from mlgle.store import remove_dead_leftovers, write_text

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    target = tmp_path / "out.json"
    (tmp_path / f".out.json.pid{dead}.abc.tmp").write_text("half")
    (tmp_path / f".out.json.pid{dead}.dir.tmp").mkdir()
    (tmp_path / f".out.json.old-pid{dead}").write_text("previous")
    live = tmp_path / f".out.json.pid{os.getpid()}.xyz.tmp"
    live.write_text("another run of this process")
    keep = [tmp_path / ".out.json.notes.tmp", tmp_path / ".out.jsonpid1.tmp", tmp_path / "x.tmp"]
    for path in keep:
        path.write_text("not ours")
    write_text(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, live.name, f".out.json.old-pid{dead}", *(p.name for p in keep)]
    )
    assert remove_dead_leftovers(target, ".old") == [tmp_path / f".out.json.old-pid{dead}"]
    assert live.exists() and all(p.read_text() == "not ours" for p in keep)
