"""Two runs into one --out (issue 15, item 5): the second fails fast naming the holder's PID; the
lock dies with its process, so a killed run's lock file does not block the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from reliability_helpers import error_line, leftovers, modes_store, run

from mlgle.errors import StoreError
from mlgle.store import output_lock

HOLD = """
import sys, time
from mlgle.store import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder():
    """Start a process holding the output lock of a path; yields a starter, kills it after."""
    procs: list[subprocess.Popen] = []

    def start(out) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_run_fails_fast_naming_the_holder(tmp_path, tiny_params, holder, capsys):
    params = tiny_params(tmp_path)
    modes_store(tmp_path / "modes")
    out = tmp_path / "gle.json"
    proc = holder(out)
    argv = ["fit-gle", "--params", params, "--modes", tmp_path / "modes", "--out", out]
    line = error_line(argv, capsys, "fit-gle")
    assert f"another mlgle run (PID {proc.pid}) is writing it" in line
    assert str(tmp_path / ".gle.json.lock") in line and not out.exists()
    # killed (SIGKILL: no clean-up), its lock file stays behind and must not block
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / ".gle.json.lock").exists()
    code, _ = run(argv, capsys)
    assert code == 0 and out.is_file() and not leftovers(tmp_path)


def test_the_lock_is_released_after_success_or_failure(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(RuntimeError), output_lock(out) as path:
        assert path == tmp_path / "new" / "deeper" / ".out.lock"
        assert path.read_text() == f"{os.getpid()}\n"
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []  # lock file and the directories it created removed
    with output_lock(out), pytest.raises(StoreError, match=f"PID {os.getpid()}"):
        with output_lock(tmp_path / "new" / "deeper" / "." / "out"):
            pass
    with output_lock(out):
        pass
