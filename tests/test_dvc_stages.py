"""dvc.yaml as DVC itself resolves it: every stage command parses with mlgle's own command line,
every parameter it declares exists in params.yaml, every data dependency is some stage's output
and every stage writes only where its declared outs are."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from mlgle.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("data/", "experiments/", "reports/")


@pytest.fixture(scope="module")
def stages() -> list:
    with Repo(str(ROOT)) as repo:
        return list(repo.index.stages)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _outs(stage) -> list[str]:
    return [str(o.def_path) for o in stage.outs]


def test_the_study_has_every_stage_family(stages):
    families = {s.addressing.split("@")[0] for s in stages}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    left_out = {f"loto-train@{t}" for t in params["conditioned"]["leave_out"]}
    assert {"simulate", "train", "generate", "evaluate", "report", "loto-report"} <= families
    assert left_out <= {s.addressing for s in stages}


def test_every_command_parses_with_the_mlgle_command_line(stages):
    parser = build_parser()
    for stage in stages:
        argv = shlex.split(stage.cmd)
        assert argv[0] == "mlgle", f"{stage.addressing}: command must run mlgle, got {argv[0]}"
        try:
            parser.parse_args(argv[1:])
        except SystemExit as exc:  # argparse reports the bad flag on stderr
            pytest.fail(f"{stage.addressing}: mlgle rejects {stage.cmd!r} ({exc})")


def test_declared_parameters_exist_in_params_yaml(stages):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for stage in stages:
        for dep in stage.deps:
            for key in getattr(dep, "params", None) or []:
                node = params
                for part in key.split("."):
                    assert isinstance(node, dict) and part in node, (
                        f"{stage.addressing}: parameter {key!r} is not in params.yaml"
                    )
                    node = node[part]


def test_data_dependencies_are_produced_and_code_dependencies_exist(stages):
    outs = [o for s in stages for o in _outs(s)]
    for stage in stages:
        for dep in stage.deps:
            path = str(dep.def_path)
            if path == "params.yaml":
                continue
            if path.startswith(GENERATED):
                assert any(_under(o, path) or _under(path, o) for o in outs), (
                    f"{stage.addressing}: dependency {path} is no stage's output"
                )
            else:
                assert (ROOT / path).exists(), f"{stage.addressing}: {path} does not exist"


def test_each_stage_writes_inside_its_declared_outs(stages):
    parser = build_parser()
    for stage in stages:
        args = parser.parse_args(shlex.split(stage.cmd)[1:])
        written = [str(p) for p in (getattr(args, "out", None), getattr(args, "storage", None))]
        outs = _outs(stage)
        for path in written:
            if path == "None":
                continue
            assert any(_under(o, path) or _under(path, o) for o in outs), (
                f"{stage.addressing}: writes {path}, which no declared out covers ({outs})"
            )
