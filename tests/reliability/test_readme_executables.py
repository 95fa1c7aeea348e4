"""Every program the README's ```bash blocks call is installed and answers ``--help`` (issue 15,
item 9): the first word of each command (after ;, &&, ||, |), shell builtins and variable
assignments skipped; ``make`` commands name Makefile targets, which must exist."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILTINS = {"source", ".", "cd", "export", "set", "unset", "alias", "echo", "exit", "eval"}
OPERATORS = {";", "&&", "||", "|", "&", ";;"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def readme_commands() -> list[list[str]]:
    """The commands of the README's ```bash blocks as word lists, continuation lines joined."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words: list[str] = []
            for token in [*lexer, ";"]:
                if token in OPERATORS:
                    if words:
                        commands.append(words)
                    words = []
                else:
                    words.append(token)
    return commands


def programs() -> tuple[set[str], set[str]]:
    """(programs called, make targets named)."""
    called, targets = set(), set()
    for words in readme_commands():
        while words and ASSIGNMENT.match(words[0]):  # P=... cmd
            words = words[1:]
        if not words or words[0] in BUILTINS:
            continue
        if words[0] == "make":
            targets.update(w for w in words[1:] if not w.startswith("-") and "=" not in w)
        called.add(words[0])
    return called, targets


def test_the_readme_calls_the_programs_it_documents():
    called, targets = programs()
    assert {"make", "mlgle", "dvc", "mlflow", "optuna-dashboard"} <= called
    assert {"repro", "test"} <= targets


def test_every_make_target_the_readme_names_exists():
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile, re.M))
    assert programs()[1] <= defined


@pytest.mark.parametrize("program", sorted(programs()[0]))
def test_every_program_is_installed_and_answers_help(program):
    """Looked up in the environment's bin directory (what ``make install`` fills), then PATH."""
    local = Path(sys.executable).parent / program
    path = str(local) if local.is_file() else shutil.which(program)
    assert path is not None, f"README calls '{program}', which is not installed"
    result = subprocess.run(
        [path, "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{program} --help: exit {result.returncode}: {result.stderr}"
    assert result.stdout.strip()
