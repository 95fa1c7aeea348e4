"""The on-disk stores: a directory of ``.npy`` arrays plus ``meta.json``.

A trajectory store (``data/md/T<T>/``) holds ``positions.npy``: unwrapped bead positions,
(frames, chains, beads, 3) float32, memory-mappable. A modes store (``data/modes/T<T>/``) holds
``modes.npy``: normal modes p = 0..k, (frames, chains, k + 1, 3) float32, mode 0 the C.o.M.

Stores are written into a temporary sibling directory and renamed into place, so a crash never
leaves a half-written store and an existing store is replaced only once the new one is complete.
Every directory written so carries a marker file (:data:`OUTPUT_MARKER`, naming its kind); an
existing directory is replaced only if it is empty or carries the marker, so nothing mlgle did
not write is ever deleted. :func:`output_lock` keeps two runs from writing one output at once.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgle.errors import StoreError

if TYPE_CHECKING:
    from mlgle.gle import GLEModel

POSITIONS = "positions.npy"
MODES = "modes.npy"
META = "meta.json"


@dataclass(frozen=True)
class TrajectoryMeta:
    """What a trajectory store describes. Times in ``units``; ``dt`` is the frame interval Δt."""

    temperature: float
    dt: float
    chains: int
    beads: int
    frames: int
    units: str = "lj"
    source: str = "lammps"
    engine_version: str = ""
    seed: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path) -> TrajectoryMeta:
        required = ("temperature", "dt", "chains", "beads", "frames")
        for key in required:
            if key not in data:
                raise StoreError(f"{path}: field '{key}' is missing")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def temperature_tag(temperature: float) -> str:
    """Directory name of a temperature, as DVC's ``${item}`` renders it: 1.0 -> 'T1.0'."""
    return f"T{float(temperature)!r}"


OUTPUT_MARKER = ".mlgle-output"
"""File in every directory :func:`atomic_dir` writes: JSON ``{"writer": "mlgle", "kind": ...}``."""


def check_output(target: str | Path, kind: str | None = None, writes: str = "dir") -> None:
    """Refuse an existing ``target`` that a stage writing ``writes`` may not replace.

    ``writes``: "dir" (replaced whole: allowed if absent, empty or marked by mlgle, and of the
    same ``kind`` when both are known), "file" (not a directory) or "into" (files added into a
    directory: not a file). StoreError naming ``target`` and how to proceed.
    """
    target = Path(target)
    if not (target.exists() or target.is_symlink()):
        return
    how = "remove it or choose another --out"
    if writes == "file":
        if target.is_dir():
            raise StoreError(f"{target}: is a directory, expected a file here ({how})")
        return
    if not target.is_dir():
        raise StoreError(f"{target}: is a file, expected a directory here ({how})")
    if writes == "into":
        return
    marker = target / OUTPUT_MARKER
    if not marker.is_file():
        if any(target.iterdir()):
            raise StoreError(
                f"{target}: exists and was not written by mlgle (no {OUTPUT_MARKER} in it); "
                f"nothing was changed: {how}"
            )
        return
    try:
        found = json.loads(marker.read_text()).get("kind", "")
    except (OSError, ValueError, AttributeError):
        found = ""
    if kind and found and found != kind:
        raise StoreError(f"{target}: holds a {found}, not a {kind}; nothing was changed: {how}")


@contextmanager
def atomic_dir(target: str | Path, kind: str = "") -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds.

    ``target`` must pass :func:`check_output` (before and after the block); the new directory
    gets the :data:`OUTPUT_MARKER` of ``kind`` (e.g. "trajectory store", "" if unnamed).
    """
    target = Path(target)
    if target.name in ("", ".", ".."):
        raise StoreError(f"{target}: not a usable output directory (give a new directory's name)")
    check_output(target, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_leftovers(target, ".tmp")
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        (tmp / OUTPUT_MARKER).write_text(json.dumps({"writer": "mlgle", "kind": kind}) + "\n")
        check_output(target, kind)  # it may have appeared while the block ran
        old = None
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-pid{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        remove_dead_leftovers(target, ".old")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def output_lock(target: str | Path) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``.<name>.lock`` beside ``target`` (holding this PID).

    Another process holding it: StoreError naming its PID. The lock dies with its process, so a
    lock file left by a killed run does not block; it is removed on release, and so are the
    parent directories this call created if they are still empty.
    """
    target = Path(os.path.abspath(target))
    path = target.with_name(f".{target.name}.lock")
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path.parent}: cannot create the output's directory ({exc})") from None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"{target}: another mlgle run (PID {holder}) is writing it (lock {path}); "
                "wait for it to finish or choose another --out"
            ) from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break  # else the holder removed the file between our open and flock: retry
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
        for directory in created:  # deepest first
            try:
                directory.rmdir()
            except OSError:
                break


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.pid{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_dead_leftovers(target: Path, kind: str) -> list[Path]:
    """Remove what a killed (SIGKILL) mlgle run left beside ``target``: its temporary outputs
    (``kind`` ".tmp": ``.<name>.pid<PID>.*.tmp``) or the previous output it had set aside
    (".old": ``.<name>.old-pid<PID>``), only where process PID no longer runs. Returns them."""
    pattern = {
        ".tmp": (f".{glob.escape(target.name)}.pid*.tmp", r"\.pid(\d+)\.[^/]*\.tmp$"),
        ".old": (f".{glob.escape(target.name)}.old-pid*", r"\.old-pid(\d+)$"),
    }[kind]
    removed = []
    for leftover in target.parent.glob(pattern[0]):
        found = re.search(pattern[1], leftover.name[len(target.name) + 1 :])
        if found is None or _alive(int(found.group(1))):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Atomically create ``path`` with ``write(tmp)`` (a temporary file in the same directory,
    renamed into place on success, removed on failure); permissions follow the umask."""
    path = Path(path)
    check_output(path, writes="file")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_leftovers(path, ".tmp")
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically (see :func:`write_file`)."""
    write_file(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (see :func:`write_text`)."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_trajectory(target: str | Path, positions: np.ndarray, meta: TrajectoryMeta) -> Path:
    """Write a trajectory store. positions: (frames, chains, beads, 3), finite."""
    target = Path(target)
    positions = check_positions(positions, name=str(target / POSITIONS))
    expected = (meta.frames, meta.chains, meta.beads, 3)
    if positions.shape != expected:
        raise StoreError(f"{target / POSITIONS}: shape {positions.shape} != meta {expected}")
    with atomic_dir(target, "trajectory store") as tmp:
        np.save(tmp / POSITIONS, positions.astype(np.float32, copy=False))
        write_json(tmp / META, meta.to_json())
    return target


def read_meta(store: str | Path) -> TrajectoryMeta:
    path = Path(store) / META
    if not path.is_file():
        raise StoreError(f"{path}: store metadata not found (is '{store}' a trajectory store?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path}: not valid JSON ({exc})") from exc
    return TrajectoryMeta.from_json(data, path)


def open_trajectory(store: str | Path) -> tuple[np.ndarray, TrajectoryMeta]:
    """Memory-map a trajectory store: positions (frames, chains, beads, 3) float32 and its meta."""
    store = Path(store)
    meta = read_meta(store)
    positions = _open_array(store / POSITIONS, (meta.frames, meta.chains, meta.beads, 3))
    return positions, meta


def write_modes(target: str | Path, modes: np.ndarray, meta: TrajectoryMeta) -> Path:
    """Write a modes store. modes: (frames, chains, k + 1, 3), mode 0 the C.o.M."""
    target = Path(target)
    if modes.ndim != 4 or modes.shape[-1] != 3:
        raise StoreError(
            f"{target / MODES}: expected (frames, chains, modes, 3), got {modes.shape}"
        )
    with atomic_dir(target, "modes store") as tmp:
        np.save(tmp / MODES, modes.astype(np.float32, copy=False))
        write_json(tmp / META, {**meta.to_json(), "modes": int(modes.shape[2])})
    return target


def open_modes(store: str | Path) -> tuple[np.ndarray, TrajectoryMeta]:
    """Memory-map a modes store: modes (frames, chains, k + 1, 3) float32, and its meta."""
    store = Path(store)
    meta = read_meta(store)
    count = json.loads((store / META).read_text()).get("modes")
    if count is None:
        raise StoreError(f"{store / META}: field 'modes' is missing (not a modes store?)")
    return _open_array(store / MODES, (meta.frames, meta.chains, int(count), 3)), meta


def _open_array(path: Path, expected: tuple[int, ...]) -> np.ndarray:
    if not path.is_file():
        raise StoreError(f"{path}: array file not found")
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise StoreError(f"{path}: not a readable .npy array ({exc})") from exc
    if array.shape != expected:
        raise StoreError(f"{path}: shape {array.shape} does not match meta.json {expected}")
    return array


def check_positions(positions: np.ndarray, name: str = "positions") -> np.ndarray:
    """Validate bead positions: rank 4, last axis 3, all finite. Returns the array unchanged."""
    positions = np.asarray(positions)
    if positions.ndim != 4 or positions.shape[-1] != 3:
        raise StoreError(
            f"{name}: expected shape (frames, chains, beads, 3), got {positions.shape}"
        )
    finite = np.isfinite(positions)
    if not finite.all():
        frame = int(np.argwhere(~finite)[0][0])
        raise StoreError(f"{name}: non-finite coordinate at frame {frame}")
    return positions


def gle_json(model: GLEModel) -> dict[str, Any]:
    """The JSON fields of a fitted GLE, read back by :func:`gle_from_json`."""
    return {
        "alpha": model.alpha,
        "beta": model.beta,
        "D_gle": model.diffusion,
        "dt": model.dt,
        "points": list(model.points),
        "k": model.k,
    }


def gle_from_json(data: Mapping[str, Any], where: str | Path = "<gle>") -> GLEModel:
    """GLEModel from :func:`gle_json`'s fields; StoreError naming ``where`` and the field."""
    from mlgle.gle import GLEModel

    try:
        return GLEModel(
            float(data["alpha"]),
            float(data["beta"]),
            float(data["dt"]),
            tuple(int(p) for p in data["points"]),
            int(data["k"]),
        )
    except KeyError as exc:
        raise StoreError(
            f"{where}: field {exc} is missing (expected mlgle fit-gle output)"
        ) from exc


def read_gle(path: str | Path) -> GLEModel:
    """A GLE JSON file of ``mlgle fit-gle`` -> GLEModel; StoreError if missing or malformed."""
    return gle_from_json(read_json(path, "mlgle fit-gle"), path)


def read_json(path: str | Path, writer: str) -> dict[str, Any]:
    """A JSON output of the stage ``writer``; StoreError naming the file if absent or broken."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, expected the JSON file {writer} writes")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{path}: not found (written by {writer})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: not valid JSON ({exc})") from None


def read_modes(store: str | Path) -> tuple[np.ndarray, TrajectoryMeta]:
    """Modes store -> (modes (frames, chains, k + 1, 3) float64 in memory, meta)."""
    mapped, meta = open_modes(store)
    return np.asarray(mapped, dtype=np.float64), meta


GENERATED_MODES = "modes.npy"


def open_generated(
    directory: str | Path, com: str = "com.npy"
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A generated ensemble (``mlgle generate`` / ``mlgle loto generate``): modes (frames, n, k, 3)
    and the C.o.M ``com`` (frames, n, 3), both memory-mapped as written (float32), and its
    meta.json; StoreError if absent or unreadable. Read them in frame blocks (mlgle.blockio)."""
    directory = Path(directory)
    meta = read_json(directory / META, "mlgle generate")
    arrays = []
    for name in (GENERATED_MODES, com):
        path = directory / name
        if not path.is_file():
            raise StoreError(f"{path}: not found (written by mlgle generate)")
        try:
            arrays.append(np.load(path, mmap_mode="r"))
        except ValueError as exc:
            raise StoreError(f"{path}: not a readable .npy array ({exc})") from exc
    return arrays[0], arrays[1], meta
