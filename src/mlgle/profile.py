"""A params profile (``params/paper.yaml``) as one DVC experiment: ``python -m mlgle.profile``.

``mlgle --params params.yaml --params PROFILE`` overlays the profile key by key, a ``studies``
mapping as a whole (:func:`mlgle.config.load_params`). ``dvc repro`` reads ``params.yaml`` alone,
so to run a profile as a tracked DVC experiment its keys become ``dvc exp run -S`` overrides
(Hydra's grammar) that rewrite the experiment's ``params.yaml`` to the same overlay: one
override per leaf, and for ``studies`` a delete followed by a forced add, so the profile's
studies replace the base's instead of merging into them.

Usage: ``python -m mlgle.profile PROFILE [dvc exp run arguments...]``, e.g.
``python -m mlgle.profile params/paper.yaml --name paper`` or ``... --queue``; ``--print`` lists
the overrides instead of running DVC.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlgle.errors import ConfigError

__all__ = ["hydra_value", "overrides"]

_REPLACED_WHOLE = "studies"  # the mapping that load_params replaces instead of merging


def hydra_value(value: Any) -> str:
    """``value`` (YAML scalar, list or mapping) written in Hydra's override grammar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # Hydra reads a backslash as an escape only before a quote (or the closing quote).
        quoted = re.sub(r"(\\*)'", lambda m: 2 * m[1] + "\\'", value)
        return "'" + re.sub(r"(\\+)$", lambda m: 2 * m[1], quoted) + "'"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{key}:{hydra_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(hydra_value(item) for item in value) + "]"
    raise TypeError(f"no Hydra form for {type(value).__name__} value {value!r}")


def overrides(profile: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``dvc exp run -S`` arguments that turn ``params.yaml`` into its overlay by ``profile``."""
    args: list[str] = []
    for key, value in profile.items():
        dotted = f"{prefix}{key}"
        if key == _REPLACED_WHOLE and isinstance(value, Mapping):
            args += [f"~{dotted}", f"++{dotted}={hydra_value(value)}"]
        elif isinstance(value, Mapping) and value:
            args += overrides(value, prefix=f"{dotted}.")
        else:
            args.append(f"++{dotted}={hydra_value(value)}")
    return args


def read_profile(path: Path) -> Mapping[str, Any]:
    """The profile's mapping of sections; :class:`ConfigError` naming the file otherwise."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read params profile ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping) or not data:
        kind = type(data).__name__
        raise ConfigError(f"{path}: expected a non-empty mapping of params sections, got {kind}")
    return data


def main(argv: list[str] | None = None) -> int:
    """Run (or with ``--print`` list) ``dvc exp run`` with the profile's overrides."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print("usage: python -m mlgle.profile PROFILE [--print | dvc exp run args...]")
        return 2
    try:
        args = overrides(read_profile(Path(argv[0])))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if argv[1:] == ["--print"]:
        print("\n".join(args))
        return 0
    command = [sys.executable, "-m", "dvc", "exp", "run", *argv[1:]]
    for arg in args:
        command += ["-S", arg]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
