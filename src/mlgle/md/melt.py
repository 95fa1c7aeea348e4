"""The reference polymer melt (paper Sec. 4.1-4.2): Kremer-Grest chains in LAMMPS under MPI.

:func:`simulate` builds random-walk chains in Python, then runs LAMMPS (``<venv>/bin/mpirun -np R
<venv>/bin/lmp``) in segments: segment 0 pushes off and equilibrates, segments 1..K each run
``restart_every`` production steps from the previous segment's restart file, dumping unwrapped
frames every ``steps_per_frame`` steps. A segment counts as done when both its frames and its
restart file exist (written under temporary names, renamed when LAMMPS succeeded), so a killed
run started again resumes after the last complete segment and, because an uninterrupted run goes
through the same restart files, gives bit-identical frames (same number of ranks).
The frames go to a trajectory store: positions (frames, chains, beads, 3) float32, unwrapped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mlgle.config import MDConfig
from mlgle.errors import ConfigError, MDError
from mlgle.md import lammps_input
from mlgle.md.readers.dcd import read_dcd
from mlgle.store import TrajectoryMeta, write_json, write_trajectory

LOG_TAIL = 30
MANIFEST = "manifest.json"
GATHERED = "positions.npy"
DIAGNOSTICS = "msd_chunk_{:04d}.txt"
_THERMO = re.compile(r"^\s*(\d+)(\s+[-+0-9.eE]+|\s+[-+]?(?:nan|inf)){4}\s*$", re.IGNORECASE)
_PURPOSE = {"build": 0, "velocity": 1, "thermostat": 2}


@functools.cache
def lammps_version() -> str:
    """Version of the LAMMPS that :func:`simulate` runs, e.g. 'LAMMPS 22 Jul 2025 - Update 4'."""
    result = subprocess.run(
        [str(_executable("lmp")), "-h"], capture_output=True, text=True, check=False
    )
    match = re.search(r"Simulator - (.+)", result.stdout)
    if result.returncode or match is None:
        raise MDError(f"cannot read the LAMMPS version from '{_executable('lmp')} -h'")
    return f"LAMMPS {match.group(1).strip()}"


def simulate(
    config: MDConfig,
    temperature: float,
    out: Path,
    work_dir: Path | None = None,
    progress: bool = True,
    extra_diagnostics: bool = False,
    keep_work: bool = False,
) -> Path:
    """Run the melt at ``temperature`` and write the trajectory store ``out``; return ``out``.

    Stored: positions (config.frames, chains, beads, 3) float32, unwrapped, frame 0 the start of
    production, frame interval ``config.frame_dt``; atom id c * beads + n + 1 is chain c, bead n.
    Work files (data, scripts, logs, DCD frames, restarts) live in ``work_dir`` (default
    ``<out>.work``) and are deleted once the store is written unless ``keep_work``.
    ``extra_diagnostics`` also writes LAMMPS' ``compute msd/chunk`` over chains, every frame, to
    ``work_dir/msd_chunk_<segment>.txt`` (for tests; implies keeping the work directory).
    Raises :class:`MDError` (one line: LAMMPS' ERROR line and the log path) if LAMMPS fails.
    """
    config.check("simulate(config)")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(
            f"simulate: temperature must be > 0 and finite (--temperature), got {temperature}"
        )
    out = Path(out)
    work = Path(work_dir) if work_dir is not None else out.with_name(f"{out.name}.work")
    plan = _segments(config)
    _prepare(work, config, temperature, extra_diagnostics)
    first = next((k for k in range(len(plan)) if not _done(work, k)), len(plan))
    todo = range(first, len(plan))  # resume after the last segment of the complete prefix
    with tqdm(
        total=sum(plan[k] for k in todo),
        unit="step",
        unit_scale=True,
        desc=f"MD T={temperature:g}",
        disable=not progress,
    ) as bar:
        for k in todo:
            _run_segment(work, config, temperature, k, plan[k], extra_diagnostics, bar.update)
    positions = _gather(work, config, plan)
    meta = TrajectoryMeta(
        temperature=float(temperature),
        dt=config.frame_dt,
        chains=config.chains,
        beads=config.beads,
        frames=config.frames,
        units="lj",
        source="lammps",
        engine_version=lammps_version(),
        seed=config.seed,
        params=dataclasses.asdict(config),
    )
    write_trajectory(out, positions, meta)
    del positions
    (work / GATHERED).unlink()
    if not (keep_work or extra_diagnostics):
        shutil.rmtree(work)
    return out


def _segments(config: MDConfig) -> list[int]:
    """Steps run by each segment: [push-off + equilibration, production chunks...]."""
    full, rest = divmod(config.production_steps, config.restart_every)
    chunks = [config.restart_every] * full + ([rest] if rest else [])
    return [lammps_input.PUSHOFF_STEPS + config.equilibration_steps, *chunks]


def _seed(config: MDConfig, temperature: float, segment: int, purpose: str) -> int:
    """A LAMMPS seed in [1, 9e8] (Marsaglia's range) from (seed, temperature, segment, purpose)."""
    words = np.frombuffer(np.float64(temperature).tobytes(), dtype=np.uint32)
    sequence = np.random.SeedSequence(
        config.seed, spawn_key=(*map(int, words), segment, _PURPOSE[purpose])
    )
    return int(sequence.generate_state(1, np.uint32)[0]) % 900_000_000 + 1


def _seeds(config: MDConfig, temperature: float, segment: int) -> lammps_input.Seeds:
    return lammps_input.Seeds(
        velocity=_seed(config, temperature, segment, "velocity"),
        thermostat=_seed(config, temperature, segment, "thermostat"),
    )


def _files(work: Path, segment: int) -> dict[str, Path]:
    stem = work / f"seg_{segment:04d}"
    return {
        "script": stem.with_suffix(".in"),
        "log": stem.with_suffix(".log"),
        "frames": stem.with_suffix(".dcd"),
        "restart": stem.with_suffix(".restart"),
    }


def _tmp(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp")


def _name(path: Path) -> Path:
    """Scripts run with the work directory as current directory and name files relative to it."""
    return Path(path.name)


def _done(work: Path, segment: int) -> bool:
    files = _files(work, segment)
    return files["restart"].is_file() and (segment == 0 or files["frames"].is_file())


def _prepare(work: Path, config: MDConfig, temperature: float, diagnostics: bool) -> None:
    """Create ``work`` with the initial data file; discard work files of another set-up."""
    # Restart files do not depend on the number of ranks: a run may resume with other ranks
    # (a valid continuation, though not bit-identical to an uninterrupted run).
    manifest = {
        "config": {**dataclasses.asdict(config), "temperatures": None, "ranks": None},
        "temperature": float(temperature),
        "engine_version": lammps_version(),
        "extra_diagnostics": diagnostics,
    }
    path = work / MANIFEST
    if path.is_file() and json.loads(path.read_text()) != json.loads(json.dumps(manifest)):
        warnings.warn(
            f"{path}: work files from another set-up (config, temperature or LAMMPS version); "
            "discarding them and starting this run from scratch",
            stacklevel=3,
        )
        for pattern in ("seg_*", "msd_chunk_*"):
            for old in work.glob(pattern):
                old.unlink()
    work.mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)
    positions, length = lammps_input.random_walk_melt(
        config.chains,
        config.beads,
        config.density,
        np.random.default_rng(_seed(config, temperature, 0, "build")),
    )
    title = f"mlgle Kremer-Grest melt, {config.chains} x {config.beads}, T = {temperature}"
    (work / "init.data").write_text(lammps_input.data_file(positions, length, title))


def _run_segment(
    work: Path,
    config: MDConfig,
    temperature: float,
    segment: int,
    steps: int,
    diagnostics: bool,
    advance: Callable[[int], object],
) -> None:
    """Run one segment in LAMMPS; rename its outputs into place only if it succeeded."""
    files = _files(work, segment)
    seeds = _seeds(config, temperature, segment)
    if segment == 0:
        script = lammps_input.equilibration_script(
            config, temperature, Path("init.data"), _name(_tmp(files["restart"])), seeds
        )
        start = 0
    else:
        previous = _files(work, segment - 1)["restart"]
        start = (segment - 1) * config.restart_every
        script = lammps_input.production_script(
            config,
            temperature,
            _name(previous),
            _name(_tmp(files["frames"])),
            _name(_tmp(files["restart"])),
            steps,
            seeds,
            diagnostics=Path(DIAGNOSTICS.format(segment)) if diagnostics else None,
        )
    files["script"].write_text(script)
    _lammps(config.ranks, files["script"], files["log"], start, advance)
    if segment:
        expected = steps // config.steps_per_frame + 1
        got = read_dcd(_tmp(files["frames"]), config.chains, config.beads).positions.shape[0]
        if got != expected:
            raise MDError(f"{_tmp(files['frames'])}: {got} frames, expected {expected}")
        os.replace(_tmp(files["frames"]), files["frames"])
    os.replace(_tmp(files["restart"]), files["restart"])


def _executable(name: str) -> Path:
    path = Path(sys.prefix) / "bin" / name
    if not path.is_file():
        raise MDError(f"{path}: not found (install the project with lammps[mpi] and mpi4py)")
    return path


def _lammps(
    ranks: int, script: Path, log: Path, start: int, advance: Callable[[int], object]
) -> None:
    """Run ``mpirun -np ranks lmp -in script``; report steps done through ``advance``.

    The step is parsed from the thermo lines LAMMPS streams on its screen output.
    """
    command = [
        str(_executable("mpirun")),
        "-np",
        str(ranks),
        str(_executable("lmp")),
        "-in",
        script.name,
        "-log",
        log.name,
        "-nocite",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    screen: deque[str] = deque(maxlen=LOG_TAIL)
    reached = start
    with subprocess.Popen(
        command,
        cwd=script.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                screen.append(line.rstrip("\n"))
                match = _THERMO.match(line)
                if match and int(match.group(1)) > reached:
                    advance(int(match.group(1)) - reached)
                    reached = int(match.group(1))
        except BaseException:
            _stop(proc)
            raise
    if proc.returncode:
        raise MDError(_failure(command, proc.returncode, log, screen))


def _stop(proc: subprocess.Popen) -> None:
    """Stop mpirun: SIGTERM first so that it takes its ranks down, then SIGKILL."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _failure(command: list[str], code: int, log: Path, screen: deque[str]) -> str:
    """One line: LAMMPS' last ERROR line (else its last output line) and the log to read.

    Without a log file (LAMMPS died before opening it) the screen tail is written there.
    """
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    if not lines:
        log.write_text("".join(f"{line}\n" for line in [" ".join(command), *screen]))
    errors = [line for line in [*lines, *screen] if "ERROR" in line]
    shown = (errors or [line for line in [*lines, *screen] if line.strip()] or ["no output"])[-1]
    return f"LAMMPS failed (exit code {code}): {shown.strip()}; see {log}"


def _gather(work: Path, config: MDConfig, plan: list[int]) -> np.ndarray:
    """Concatenate the segments' frames into (frames, chains, beads, 3) float32.

    Segment k's first frame repeats segment k-1's last one (same state, restored from the restart
    file): it is checked and kept once.
    """
    shape = (config.frames, config.chains, config.beads, 3)
    positions = np.lib.format.open_memmap(work / GATHERED, mode="w+", dtype=np.float32, shape=shape)
    filled = 0
    for segment in range(1, len(plan)):
        path = _files(work, segment)["frames"]
        frames = read_dcd(path, config.chains, config.beads).positions
        if filled:
            _check_continuity(positions[filled - 1], frames[0], path)
            frames = frames[1:]
        positions[filled : filled + len(frames)] = frames
        filled += len(frames)
    if filled != config.frames:
        raise MDError(f"{work}: gathered {filled} frames, expected {config.frames}")
    return positions


def _check_continuity(last: np.ndarray, first: np.ndarray, path: Path) -> None:
    """The restart round trip may re-wrap an atom: allow a few float32 ulps, nothing more."""
    scale = float(np.abs(last).max()) + 1.0
    gap = float(np.abs(last - first).max())
    if gap > 8 * np.spacing(np.float32(scale)):
        raise MDError(
            f"{path}: first frame differs from the previous segment's last frame by {gap:.3g} "
            "(segments from different runs?)"
        )
