"""dvc.yaml's deps are truthful: every module a stage's command runs is among its deps.

For each stage, the command is parsed by ``mlgle``'s own parser; its handler in ``mlgle.cli``
names the pipeline module it imports. The import closure (module-level and function-level
imports, not ``if TYPE_CHECKING:`` blocks, package ``__init__`` modules included) is walked with
``ast`` inside ``src/mlgle``; each module's file must be a dep of the stage or lie under one.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest

from mlgle.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    """``mlgle.a.b`` -> src/mlgle/a/b.py or src/mlgle/a/b/__init__.py (None if not ours)."""
    if name != "mlgle" and not name.startswith("mlgle."):
        return None
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(nodes: list[ast.stmt]) -> set[str]:
    """Every mlgle module imported anywhere in ``nodes`` (``from X import Y``: X, and X.Y if Y is
    a module), except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in found if module_file(name) is not None}


def closure(start: set[str]) -> set[str]:
    """The mlgle modules ``start`` runs: their imports, recursively, and parent packages.
    ``mlgle.cli`` is not walked again: :func:`handler_modules` already took the part of it that
    a stage runs (its module level and one handler)."""
    seen: set[str] = {"mlgle.cli"}
    todo = list(start - seen)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        tree = ast.parse(module_file(name).read_text())
        todo.extend(imported_modules(tree.body) - seen)
    return seen


def handler_modules(argv: list[str]) -> set[str]:
    """The modules the ``mlgle`` command ``argv`` runs: mlgle.cli's module-level imports and
    the imports inside the handler function the parser dispatches to."""
    func = build_parser().parse_args(argv).func
    tree = ast.parse(module_file("mlgle.cli").read_text())
    top = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
    body = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func.__name__)
    return imported_modules(top) | imported_modules([body])


def uncovered(modules: set[str], deps: list[str]) -> list[str]:
    """Files of ``modules`` that are neither a dep nor inside a dep directory (repo-relative)."""
    roots = [(ROOT / d).resolve() for d in deps]
    missing = []
    for name in sorted(modules):
        path = module_file(name).resolve()
        if not any(path == r or r in path.parents for r in roots):
            missing.append(str(path.relative_to(ROOT)))
    return missing


def _stages() -> list[tuple[str, list[str], list[str]]]:
    """(stage name, mlgle argv, deps) of every resolved stage of dvc.yaml, via DVC itself."""
    from dvc.repo import Repo

    out = []
    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            argv = shlex.split(stage.cmd)
            assert argv[0] == "mlgle", f"{stage.addressing}: command must be an mlgle stage"
            deps = [str(Path(d.def_path)) for d in stage.deps]
            out.append((stage.addressing, argv[1:], deps))
    return out


STAGES = _stages()


@pytest.mark.parametrize(("name", "argv", "deps"), STAGES, ids=[s[0] for s in STAGES])
def test_every_module_a_stage_runs_is_a_dep(name, argv, deps):
    modules = closure(handler_modules(argv))
    assert {"mlgle.cli", "mlgle.config", "mlgle.errors"} <= modules
    assert uncovered(modules, deps) == [], f"{name}: add these to its deps in dvc.yaml"


def test_removing_one_dep_is_caught():
    name, argv, deps = next(s for s in STAGES if s[0].startswith("evaluate@"))
    modules = closure(handler_modules(argv))
    for dep in (d for d in deps if d.startswith("src/")):
        fewer = [d for d in deps if d != dep]
        assert uncovered(modules, fewer), f"{name}: removing {dep} went unnoticed"


def test_closure_follows_function_level_imports_and_skips_type_checking():
    modules = closure(handler_modules(["evaluate", "--modes", "m", "--generated", "g",
                                       "--gle", "x.json", "--out", "o"]))  # fmt: skip
    assert "mlgle.pipeline.evaluate" in modules  # imported inside the handler
    assert "mlgle.analysis.evaluation" in modules  # imported inside the stage function
    assert "mlgle.nar.train" not in modules  # evaluate never trains
    train = closure(handler_modules(["train", "--modes", "m", "--out", "o"]))
    assert "mlgle.nar.gru" in train and "mlgle.figures.paper" not in train
