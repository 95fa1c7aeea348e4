"""The DVC remote: a tiny pipeline's outputs survive push, losing cache and outputs, and pull;
the project's default remote lies outside its work tree.

Relative URLs in ``.dvc/config`` resolve against the directory of that file (``.dvc/``), so the
project's ``url = ../../mlgle-dvc-remote`` is ``<checkout>/../mlgle-dvc-remote``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dvc_helpers import init_repo, sh

ROOT = Path(__file__).resolve().parents[2]

STAGE_SCRIPT = """\
import pathlib
import random

out = pathlib.Path("out")
(out / "parts").mkdir(parents=True, exist_ok=True)
rng = random.Random(7)
(out / "blob.bin").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
for i in range(3):
    (out / "parts" / f"part{i}.txt").write_text(f"part {i}\\n" * (i + 1))
"""

DVC_YAML = """\
stages:
  make:
    cmd: python make.py
    deps: [make.py]
    outs: [out]
"""


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path) -> its bytes."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.mark.slow
def test_push_remove_cache_and_outputs_pull_restores_identical_files(tmp_path):
    repo = init_repo(tmp_path / "repo")
    (repo / "make.py").write_text(STAGE_SCRIPT)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    remote = tmp_path / "remote"
    sh(repo, "dvc", "remote", "add", "-d", "local", str(remote))
    sh(repo, "dvc", "repro")
    produced = tree_bytes(repo / "out")
    assert set(produced) == {"blob.bin", "parts/part0.txt", "parts/part1.txt", "parts/part2.txt"}
    assert not remote.exists() or not any(remote.rglob("*"))

    sh(repo, "dvc", "push")
    assert len([p for p in remote.rglob("*") if p.is_file()]) >= len(produced) + 1  # + .dir
    sh(repo, "dvc", "status", "--cloud")  # remote in sync with the lock file

    sh(repo, "rm", "-rf", ".dvc/cache", "out")
    assert not (repo / "out").exists() and not (repo / ".dvc" / "cache").exists()
    sh(repo, "dvc", "pull")
    assert tree_bytes(repo / "out") == produced
    assert "make" not in sh(repo, "dvc", "status")  # the stage is up to date, not re-run


def test_project_default_remote_is_outside_the_work_tree():
    from dvc.config import Config

    config = Config(dvc_dir=ROOT / ".dvc", validate=True).load_one("repo")
    name = config["core"]["remote"]
    url = Path(config["remote"][name]["url"])  # resolved against .dvc/
    assert url.is_absolute(), url
    assert not url.resolve().is_relative_to(ROOT.resolve()), url
    assert url.resolve().parent == ROOT.resolve().parent, url  # beside the checkout
