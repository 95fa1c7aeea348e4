"""``--out`` never destroys what it should not (issue 15, item 2): an --out that is an input, holds
one, is the working directory, or is an existing path mlgle did not write is refused before the
stage runs, with one line naming it, and everything stays as it was."""

from __future__ import annotations

import json

import pytest
from reliability_helpers import error_line, leftovers, run, snapshot, trajectory_store

from mlgle.errors import StoreError
from mlgle.store import OUTPUT_MARKER, atomic_dir, check_output, open_modes


@pytest.fixture
def work(tmp_path, tiny_params):
    """tmp_path with params.yaml and a trajectory store ``traj``."""
    tiny_params(tmp_path)
    trajectory_store(tmp_path / "traj")
    return tmp_path


def test_import_onto_its_own_input_is_refused(tmp_path, capsys):
    victim = tmp_path / "victim.dump"
    victim.write_text("ITEM: TIMESTEP\n0\n")
    before = snapshot(tmp_path)
    argv = ["import", victim, "--out", victim, "--dt", 1, "--temperature", 1]
    line = error_line(argv, capsys, "import")
    assert f"--out {victim}: is also the input file {victim}" in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("stage", ["modes", "fit-gle"])
def test_out_equal_to_the_input_store_is_refused(work, stage, capsys):
    params = work / "params.yaml"
    before = snapshot(work)
    if stage == "modes":
        argv = ["modes", "--params", params, "--trajectory", work / "traj", "--out", work / "traj"]
    else:
        argv = ["fit-gle", "--params", params, "--modes", work / "traj", "--out", work / "traj"]
    assert "is also the input --" in error_line(argv, capsys, stage)
    assert snapshot(work) == before


def test_out_containing_an_input_is_refused(work, capsys):
    before = snapshot(work)
    argv = ["modes", "--params", work / "params.yaml", "--trajectory", work / "traj",
            "--out", work]  # fmt: skip
    line = error_line(argv, capsys, "modes")
    assert f"--out {work}: contains the input --" in line
    assert snapshot(work) == before


def test_out_dot_is_refused(work, monkeypatch, capsys):
    monkeypatch.chdir(work)
    before = snapshot(work)
    argv = ["modes", "--trajectory", "traj", "--out", "."]
    assert "--out .: is the working directory" in error_line(argv, capsys, "modes")
    assert snapshot(work) == before


def test_params_file_as_out_is_refused(work, capsys):
    params = work / "params.yaml"
    before = snapshot(work)
    argv = ["fit-gle", "--params", params, "--modes", work / "traj", "--out", params]
    assert f"is also the input --params {params}" in error_line(argv, capsys, "fit-gle")
    assert snapshot(work) == before


def test_an_unrelated_directory_is_kept(work, capsys):
    keep = work / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    before = snapshot(work)
    argv = ["modes", "--params", work / "params.yaml", "--trajectory", work / "traj",
            "--out", keep]  # fmt: skip
    line = error_line(argv, capsys, "modes")
    assert f"{keep}: exists and was not written by mlgle" in line and OUTPUT_MARKER in line
    assert snapshot(work) == before and not leftovers(work)


def test_a_file_where_a_directory_belongs_and_the_reverse(work, capsys):
    params = work / "params.yaml"
    (work / "file.txt").write_text("mine")
    (work / "dir").mkdir()
    before = snapshot(work)
    argv = ["modes", "--params", params, "--trajectory", work / "traj", "--out", work / "file.txt"]
    assert "file.txt: is a file, expected a directory" in error_line(argv, capsys, "modes")
    argv = ["fit-gle", "--params", params, "--modes", work / "traj", "--out", work / "dir"]
    assert "dir: is a directory, expected a file" in error_line(argv, capsys, "fit-gle")
    argv = ["modes", "--params", params, "--trajectory", work / "traj",
            "--out", work / "file.txt" / "sub"]  # fmt: skip
    assert "file.txt: cannot create" in error_line(argv, capsys, "modes")
    assert snapshot(work) == before


def test_a_store_of_another_kind_is_not_replaced(work, capsys):
    """``mlgle modes --out <a trajectory store>`` would lose the trajectory."""
    trajectory_store(work / "traj2")
    before = snapshot(work)
    argv = ["modes", "--params", work / "params.yaml", "--trajectory", work / "traj2",
            "--out", work / "traj"]  # fmt: skip
    line = error_line(argv, capsys, "modes")
    assert f"{work / 'traj'}: holds a trajectory store, not a modes store" in line
    assert snapshot(work) == before and not leftovers(work)


def test_rerunning_into_its_own_output_or_an_empty_directory_works(work, capsys):
    out = work / "modes"
    out.mkdir()  # empty: may be replaced
    argv = ["modes", "--params", work / "params.yaml", "--trajectory", work / "traj", "--out", out]
    for _ in range(2):
        code, _lines = run(argv, capsys)
        assert code == 0
        assert json.loads((out / OUTPUT_MARKER).read_text()) == {
            "writer": "mlgle",
            "kind": "modes store",
        }
        assert open_modes(out)[0].shape == (600, 16, 5, 3)
    assert not leftovers(work)


def test_atomic_dir_rechecks_before_replacing(tmp_path):
    """A directory that appears while the stage runs is not replaced either."""
    target = tmp_path / "out"
    with pytest.raises(StoreError, match="not written by mlgle"), atomic_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"new")
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    check_output(tmp_path / "absent")  # nothing there: fine
