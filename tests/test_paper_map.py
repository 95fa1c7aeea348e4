"""The paper map in mlgle's docstring: every symbol it names imports, its docstring starts with
its label, and no other docstring claims to define a label (one definition per equation)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import mlgle

SRC = Path(mlgle.__file__).parent
LABEL = re.compile(r"^(Eq\. \d+|Alg\. \d+|Fig\. \d+|Table \d+):")


def resolve(ref: str):
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(ref)


def test_every_mapped_symbol_imports_and_its_docstring_starts_with_its_label():
    rows = mlgle.paper_map()
    assert {"Eq. 13", "Eq. 15", "Eq. 21", "Eq. 27", "Eq. 34", "Eq. 35", "Alg. 1", "Table 1"} <= set(
        rows
    )
    for label, ref in rows.items():
        doc = inspect.getdoc(resolve(ref)) or ""
        assert doc.startswith(f"{label}:"), f"{ref}: docstring must start with '{label}:'"


def test_no_other_docstring_defines_a_label():
    mapped = {ref.rsplit(".", 1)[-1]: label for label, ref in mlgle.paper_map().items()}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
                continue
            match = LABEL.match(ast.get_docstring(node) or "")
            if match:
                assert mapped.get(node.name) == match.group(1), (
                    f"{path.relative_to(SRC)}:{node.lineno} {node.name} starts with "
                    f"'{match.group(1)}:' but the paper map names another symbol"
                )
