"""Helpers for tests that drive git and DVC in temporary repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tool_env() -> dict[str, str]:
    """Environment for git/dvc subprocesses: this interpreter's bin first on PATH (DVC spawns
    ``python``/``dvc`` by name), no analytics or update checks, a fixed git identity."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        DVC_NO_UPDATE_CHECK="1",
        GIT_AUTHOR_NAME="mlgle tests",
        GIT_AUTHOR_EMAIL="tests@mlgle.invalid",
        GIT_COMMITTER_NAME="mlgle tests",
        GIT_COMMITTER_EMAIL="tests@mlgle.invalid",
    )
    return env


def sh(cwd: Path, *argv: str, timeout: float = 120) -> str:
    """Run ``argv`` in ``cwd`` (``dvc`` as ``python -m dvc``); its stdout, or fail with output."""
    cmd = [sys.executable, "-m", "dvc", *argv[1:]] if argv[0] == "dvc" else list(argv)
    proc = subprocess.run(
        cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def init_repo(path: Path) -> Path:
    """``git init`` + ``dvc init`` at ``path`` (analytics off)."""
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "git", "init", "-q")
    sh(path, "dvc", "init", "-q")
    sh(path, "dvc", "config", "core.analytics", "false")
    return path
