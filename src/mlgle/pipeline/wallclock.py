"""Where `make repro`'s time goes: run ``dvc repro``, keep its output, and sum each stage's own
wall-clock (the ``mlgle <stage>: finished in X s`` line every stage prints) per stage and per part
of the study, into reports/repro_wallclock.json.

Run: ``python -m mlgle.pipeline.wallclock --out reports/repro_wallclock.json -- dvc repro``
(``make repro``), or ``--log FILE`` to summarise the output of an earlier run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from mlgle.store import write_json

_STAGE = re.compile(r"^Running stage '([^'@]+)(?:@[^']*)?':")
_FINISHED = re.compile(r"^mlgle [^:]+: finished in ([0-9.]+) s")

PARTS = {"sweep": "sweeps", "budget": "budget study", "loto": "leave one temperature out"}
"""Stage-name prefix -> the part of `make repro` it belongs to; other stages are the default
study (MD, modes, GLE fit, training, generation, evaluation, baselines, report)."""
DEFAULT_PART = "default study"


def part_of(stage: str) -> str:
    """The part of the study a dvc.yaml stage name (without ``@item``) belongs to."""
    return PARTS.get(stage.split("-")[0], DEFAULT_PART)


def stage_seconds(lines: Iterable[str]) -> dict[str, float]:
    """Seconds per dvc.yaml stage (``foreach`` items summed) from ``dvc repro``'s output: each
    ``finished in`` line counts for the stage whose ``Running stage`` line came last."""
    seconds: dict[str, float] = {}
    stage = None
    for line in lines:
        if match := _STAGE.match(line):
            stage = match.group(1)
        elif (match := _FINISHED.match(line)) and stage is not None:
            seconds[stage] = seconds.get(stage, 0.0) + float(match.group(1))
    return seconds


def summary(lines: Iterable[str], total: float | None, how: str) -> dict:
    """repro_wallclock.json: ``seconds`` (the whole run, as measured around it), ``how``, and
    the stages' own seconds per stage and per part (their sum leaves out DVC's hashing and
    checkouts)."""
    stages = stage_seconds(lines)
    parts: dict[str, float] = {}
    for stage, value in stages.items():
        parts[part_of(stage)] = parts.get(part_of(stage), 0.0) + value
    result: dict = {
        "how": how,
        "stages": {name: round(value, 1) for name, value in stages.items()},
        "parts": {name: round(value, 1) for name, value in parts.items()},
    }
    if total is not None:
        result["seconds"] = total
    return result


def run(command: list[str], log: Path) -> tuple[int, float, list[str]]:
    """Run ``command``, echo its combined output line by line and write it to ``log``; returns
    (exit status, wall seconds, lines)."""
    start = time.perf_counter()
    lines: list[str] = []
    log.parent.mkdir(parents=True, exist_ok=True)
    # The command starts first: one that does not exist leaves an earlier log as it was.
    with (
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as process,
        log.open("w") as sink,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sink.write(line)
            lines.append(line.rstrip("\n"))
    return process.returncode, time.perf_counter() - start, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/repro_wallclock.json"))
    parser.add_argument("--how", default="make repro, 2 cores")
    parser.add_argument("--log", type=Path, help="summarise this earlier output instead")
    parser.add_argument(
        "--seconds", type=float, help="with --log: that run's wall-clock, as measured around it"
    )
    parser.add_argument("command", nargs="*", help="the command to run, after --")
    args = parser.parse_args(argv)
    if args.log is not None:
        if args.command:
            parser.error("give either --log or a command, not both")
        if not args.log.is_file():
            message = f"wallclock: {args.log}: no such file (expected dvc repro's output)"
            print(message, file=sys.stderr)
            return 2
        write_json(args.out, summary(args.log.read_text().splitlines(), args.seconds, args.how))
        return 0
    if not args.command:
        parser.error("give the command to run after --, e.g. -- dvc repro")
    try:
        status, seconds, lines = run(args.command, args.out.with_suffix(".log"))
    except FileNotFoundError:
        print(f"wallclock: {args.command[0]}: command not found", file=sys.stderr)
        return 2
    if status == 0:
        write_json(args.out, summary(lines, round(seconds), args.how))
    return status


if __name__ == "__main__":
    sys.exit(main())
