"""External trajectories into the project's stores (DESIGN.md, ``md/readers.py``).

Readers for LAMMPS text dumps (``dump custom``), DCD (``dump dcd``), LAMMPS NetCDF dumps (AMBER
convention) and the paper's public meltBR tensors (Sec. 4.2). Every position reader returns
unwrapped bead positions (frames, chains, beads, 3) float32, beads ordered along each chain; the
meltBR reader returns normal modes (frames, chains, modes, 3) float32 in the DCT/(2N) convention
of Eq. (14) (mode 0 the C.o.M). Malformed input raises ``ReaderError`` naming the file, the frame
and the field. ``import_trajectory`` writes a store only through ``store.write_trajectory`` /
``store.write_modes``, which are atomic, so a failed import never leaves a half-written store.

Atom order: atoms are sorted by (mol, id); each molecule is one chain and its beads follow the
atom ids, as in the data files LAMMPS polymer builders write. DCD has no molecule ids: atoms are
taken chain-major in id order (``chains * beads`` atoms).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from mlgle.store import StoreError, TrajectoryMeta, write_modes, write_trajectory

FORMATS = ("dump", "dcd", "netcdf", "meltbr")
EXTENSIONS = {
    ".dump": "dump",
    ".lammpstrj": "dump",
    ".txt": "dump",
    ".dcd": "dcd",
    ".nc": "netcdf",
    ".pt": "meltbr",
    ".pth": "meltbr",
}
SOURCES = {
    "dump": "lammps-dump",
    "dcd": "lammps-dcd",
    "netcdf": "lammps-netcdf",
    "meltbr": "meltbr",
}

_BLOCK = 1 << 26  # bytes scanned per step when indexing lines
_CHUNK = 1 << 26  # bytes of atom lines parsed per step
_NL = ord("\n")
_WHITESPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)
_WRAPPED_HINT = (
    "re-run LAMMPS with unwrapped coordinates (`dump ID all custom N FILE id mol xu yu zu`) "
    "or add the image flags (`... id mol x y z ix iy iz`)"
)


class ReaderError(StoreError):
    """Malformed external trajectory; the message names the file, the frame and the field."""


@dataclass(frozen=True)
class Trajectory:
    """Unwrapped positions read from one file.

    positions: (frames, chains, beads, 3) float32. times: (frames,) float64 frame times as the
    file stores them, in ``time_unit`` ('step' for dump/DCD timesteps; NetCDF ``time`` units).
    A gap between two frames is exact up to ``time_tolerance``.
    """

    positions: np.ndarray
    times: np.ndarray
    time_unit: str
    path: Path
    source: str
    time_tolerance: float = 0.0  # absolute precision of ``times`` (float32 NetCDF storage)

    @property
    def frames(self) -> int:
        return int(self.positions.shape[0])


# --------------------------------------------------------------------------- LAMMPS text dumps


@dataclass(frozen=True)
class _Lines:
    """Line index of a file: ``ends[i]`` is the offset of line i's newline (or EOF)."""

    buf: np.ndarray
    ends: np.ndarray
    item_candidates: np.ndarray  # indices of lines whose first byte is 'I'

    @property
    def count(self) -> int:
        return int(self.ends.size)

    def starts(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        return np.where(idx > 0, self.ends[np.maximum(idx - 1, 0)] + 1, 0)

    def terminated(self) -> bool:
        return self.ends.size == 0 or int(self.ends[-1]) < self.buf.size


@dataclass(frozen=True)
class _Header:
    """Per-frame header of a dump: first atom line, timesteps, box, ATOMS columns."""

    first_atom: np.ndarray  # (frames,) line index of the first atom line
    natoms: int
    timesteps: np.ndarray  # (frames,) int64
    box: np.ndarray | None  # (frames, 3, 2) lo, hi for orthogonal boxes, else None
    box_item: str
    columns: tuple[str, ...]


def read_lammps_dump(
    path: str | Path, chains: int | None = None, beads: int | None = None
) -> Trajectory:
    """Read a LAMMPS ``dump custom`` text file into unwrapped positions (frames, chains, beads, 3).

    Needs columns ``id`` and ``mol`` plus one of: ``xu yu zu``; ``x y z ix iy iz`` (unwrapped as
    x + ix·L with each frame's BOX BOUNDS); ``xs ys zs ix iy iz``; ``xsu ysu zsu``. Image-flag and
    scaled unwrapping need an orthogonal box. chains and beads are inferred from ``mol`` (all
    molecules of equal length) or checked against the given values. The default ``%g`` float
    format keeps 6 digits: use ``dump_modify ID format float %.9g`` for float32-exact positions.
    Parsing is vectorised (numpy line index, ``np.loadtxt`` on ~64 MB blocks of atom lines).
    """
    path = Path(path)
    lines = _scan_lines(_map_file(path))
    header = _dump_header(path, lines)
    if chains is not None and beads is not None and chains * beads != header.natoms:
        raise ReaderError(
            f"{path}: frame 0: {header.natoms} atoms is not chains x beads = {chains} x {beads}"
        )
    mode, cols = _coordinate_columns(path, header)
    flat = np.empty((header.timesteps.size, header.natoms, 3), dtype=np.float32)
    ref: tuple[np.ndarray, np.ndarray] | None = None
    for k0, k1 in _chunks(lines, header):
        raw = _read_blocks(path, lines, header.first_atom[k0:k1], header.natoms, cols, k0, "atoms")
        _check_finite(path, raw, [header.columns[c] for c in cols], k0)
        xyz = _unwrap(mode, raw[..., 2:], None if header.box is None else header.box[k0:k1])
        order, ref = _chain_order(path, raw[..., 0], raw[..., 1], k0, ref)
        flat[k0:k1] = np.take_along_axis(xyz, order[..., None], axis=1)
    assert ref is not None
    shape = _chain_shape(path, ref[1], chains, beads)
    positions = flat.reshape(flat.shape[0], *shape, 3)
    return Trajectory(positions, header.timesteps.astype(np.float64), "step", path, "lammps-dump")


def _map_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ReaderError(f"{path}: empty file (no frame)")
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    tail = buf[-4096:]
    content = np.flatnonzero(~np.isin(tail, _WHITESPACE))
    if content.size == 0:
        content = np.flatnonzero(~np.isin(buf, _WHITESPACE))
        if content.size == 0:
            raise ReaderError(f"{path}: file holds only whitespace (no frame)")
        last = int(content[-1])
    else:
        last = buf.size - tail.size + int(content[-1])
    # keep the newline that ends the last non-blank line, drop trailing blank lines
    keep = last + 2 if last + 1 < buf.size and buf[last + 1] == _NL else last + 1
    return buf[:keep]


def _scan_lines(buf: np.ndarray) -> _Lines:
    """Index every line ending and the lines starting with 'I', in blocks of ``_BLOCK`` bytes."""
    ends: list[np.ndarray] = []
    cands: list[np.ndarray] = [np.zeros(int(buf[0] == ord("I")), dtype=np.int64)]
    seen = 0
    for lo in range(0, buf.size, _BLOCK):
        nl = np.flatnonzero(buf[lo : lo + _BLOCK] == _NL) + lo
        follows = nl + 1 < buf.size
        after = np.flatnonzero(follows)[buf[nl[follows] + 1] == ord("I")]
        cands.append(seen + 1 + after)
        ends.append(nl)
        seen += nl.size
    line_ends = np.concatenate(ends)
    if buf[-1] != _NL:
        line_ends = np.append(line_ends, buf.size)
    return _Lines(buf, line_ends, np.concatenate(cands))


def _has_prefix(lines: _Lines, idx: np.ndarray, prefix: bytes) -> np.ndarray:
    """(len(idx),) bool: line idx starts with ``prefix``."""
    pat = np.frombuffer(prefix, dtype=np.uint8)
    starts = lines.starts(idx)
    long = lines.ends[idx] - starts >= pat.size
    out = np.zeros(idx.size, dtype=bool)
    gathered = lines.buf[starts[long, None] + np.arange(pat.size)]
    out[long] = (gathered == pat).all(axis=1)
    return out


def _line_text(lines: _Lines, i: int) -> str:
    start = int(lines.starts(np.array([i]))[0])
    return bytes(lines.buf[start : lines.ends[i]]).decode(errors="replace").strip()


def _dump_header(path: Path, lines: _Lines) -> _Header:
    """Locate the ITEM lines of every frame and parse timesteps, atom counts and boxes."""
    cand = lines.item_candidates
    items = cand[_has_prefix(lines, cand, b"ITEM: ")]
    ts, na, bb, at = (
        items[_has_prefix(lines, items, key)]
        for key in (
            b"ITEM: TIMESTEP",
            b"ITEM: NUMBER OF ATOMS",
            b"ITEM: BOX BOUNDS",
            b"ITEM: ATOMS",
        )
    )
    frames = ts.size
    if frames == 0:
        raise ReaderError(f"{path}: no 'ITEM: TIMESTEP' line: not a LAMMPS text dump")
    full = min(na.size, bb.size, at.size, frames)
    nxt = np.append(ts[1:], lines.count)[:full]
    ok = (ts[:full] + 1 < na[:full]) & (na[:full] + 1 < bb[:full])
    ok &= (bb[:full] + 3 < at[:full]) & (at[:full] < nxt)
    bad = int(np.argmin(ok)) if not ok.all() else full
    if bad < frames:
        if bad == frames - 1:
            raise ReaderError(f"{path}: frame {bad}: truncated last frame (header incomplete)")
        raise ReaderError(
            f"{path}: frame {bad}: header ITEMs (TIMESTEP, NUMBER OF ATOMS, BOX BOUNDS, ATOMS) "
            "missing or out of order"
        )
    timesteps = _read_blocks(path, lines, ts + 1, 1, None, 0, "TIMESTEP", np.int64)[:, 0, 0]
    counts = _read_blocks(path, lines, na + 1, 1, None, 0, "NUMBER OF ATOMS", np.int64)[:, 0, 0]
    natoms = int(counts[0])
    if natoms <= 0:
        raise ReaderError(f"{path}: frame 0: NUMBER OF ATOMS is {natoms}")
    odd = np.flatnonzero(counts != natoms)
    if odd.size:
        k = int(odd[0])
        raise ReaderError(
            f"{path}: frame {k}: inconsistent atom count between frames: NUMBER OF ATOMS is "
            f"{counts[k]}, frame 0 has {natoms}"
        )
    _check_atom_blocks(path, lines, items, at, natoms)
    columns = _line_text(lines, int(at[0])).split()[2:]
    _check_same_lines(path, lines, at, "ITEM: ATOMS columns")
    box_item = _line_text(lines, int(bb[0]))
    box_rows = _read_blocks(path, lines, bb + 1, 3, None, 0, "BOX BOUNDS")
    box = box_rows if box_rows.shape[-1] == 2 and "xy" not in box_item.split() else None
    return _Header(at + 1, natoms, timesteps, box, box_item, tuple(columns))


def _check_atom_blocks(
    path: Path, lines: _Lines, items: np.ndarray, at: np.ndarray, natoms: int
) -> None:
    """Every ATOMS item is followed by exactly ``natoms`` lines; the file ends with a newline."""
    following = np.searchsorted(items, at, side="right")
    block_end = np.append(items, lines.count)[following]
    found = block_end - at - 1
    bad = np.flatnonzero(found != natoms)
    last = at.size - 1
    if bad.size:
        k = int(bad[0])
        if k == last and found[k] < natoms:
            raise ReaderError(
                f"{path}: frame {k}: truncated last frame: {found[k]} of {natoms} atom lines"
            )
        raise ReaderError(
            f"{path}: frame {k}: NUMBER OF ATOMS is {natoms} but {found[k]} atom lines follow"
        )
    if not lines.terminated():
        raise ReaderError(
            f"{path}: frame {last}: truncated last frame: the file ends in the middle of a line"
        )


def _check_same_lines(path: Path, lines: _Lines, idx: np.ndarray, what: str) -> None:
    """All lines ``idx`` equal the first one, byte for byte."""
    starts = lines.starts(idx)
    length = lines.ends[idx] - starts
    same = length == length[0]
    gathered = lines.buf[starts[same, None] + np.arange(int(length[0]))]
    same[same] = (gathered == gathered[0]).all(axis=1)
    if not same.all():
        k = int(np.argmin(same))
        raise ReaderError(
            f"{path}: frame {k}: {what} differ from frame 0: "
            f"'{_line_text(lines, int(idx[k]))}' vs '{_line_text(lines, int(idx[0]))}'"
        )


def _coordinate_columns(path: Path, header: _Header) -> tuple[str, list[int]]:
    """Unwrapping mode and the column indices (id, mol, 3 coordinates[, 3 image flags])."""
    cols = header.columns
    have = set(cols)
    missing = [c for c in ("id", "mol") if c not in have]
    found = " ".join(cols)
    if missing:
        raise ReaderError(
            f"{path}: frame 0: missing column(s) {missing} in 'ITEM: ATOMS {found}'; "
            "both 'id' and 'mol' are needed to order beads into chains"
        )
    image = ("ix", "iy", "iz")
    options = {
        "unwrapped": (("xu", "yu", "zu"), ()),
        "image": (("x", "y", "z"), image),
        "scaled-image": (("xs", "ys", "zs"), image),
        "scaled": (("xsu", "ysu", "zsu"), ()),
    }
    for mode, (xyz, flags) in options.items():
        if have.issuperset(xyz + flags):
            if mode != "unwrapped" and header.box is None:
                raise ReaderError(
                    f"{path}: frame 0: '{header.box_item}' is not an orthogonal box: unwrapping "
                    f"{' '.join(xyz + flags)} needs one; dump 'xu yu zu' instead"
                )
            return mode, [cols.index(c) for c in ("id", "mol", *xyz, *flags)]
    if have.issuperset(("x", "y", "z")):
        raise ReaderError(
            f"{path}: frame 0: wrapped coordinates 'x y z' without image flags "
            f"{[c for c in image if c not in have]} in 'ITEM: ATOMS {found}': positions cannot be "
            f"unwrapped; {_WRAPPED_HINT}"
        )
    partial = [xyz for xyz, _ in options.values() if have.intersection(xyz)]
    need = partial[0] if partial else ("xu", "yu", "zu")
    raise ReaderError(
        f"{path}: frame 0: missing column(s) {[c for c in need if c not in have]} in "
        f"'ITEM: ATOMS {found}'; {_WRAPPED_HINT}"
    )


def _chunks(lines: _Lines, header: _Header) -> list[tuple[int, int]]:
    """Frame ranges of about ``_CHUNK`` bytes of atom lines each."""
    frames = header.first_atom.size
    first = header.first_atom[:1]
    size = int(lines.ends[first + header.natoms - 1][0] - lines.starts(first)[0]) + 1
    step = max(1, _CHUNK // size)
    return [(k, min(k + step, frames)) for k in range(0, frames, step)]


def _read_blocks(
    path: Path,
    lines: _Lines,
    first: np.ndarray,
    count: int,
    usecols: Sequence[int] | None,
    frame0: int,
    what: str,
    dtype: type = np.float64,
) -> np.ndarray:
    """Parse ``count`` lines from each ``first[k]`` -> (len(first), count, columns)."""
    lo = lines.starts(first)
    hi = np.minimum(lines.ends[first + count - 1] + 1, lines.buf.size)

    def parse(a: int, b: int) -> np.ndarray:
        data = io.BytesIO(_gather(lines.buf, lo[a:b], hi[a:b]))
        rows = np.loadtxt(data, dtype=dtype, usecols=usecols, comments=None, ndmin=2)
        if rows.shape[0] != (b - a) * count:  # loadtxt skips blank lines
            raise ValueError(f"{rows.shape[0]} rows of numbers, expected {(b - a) * count}")
        return rows.reshape(b - a, count, -1)

    try:
        return parse(0, first.size)
    except ValueError as whole:
        for k in range(first.size):  # error path only: find the frame that fails
            try:
                parse(k, k + 1)
            except ValueError as exc:
                raise ReaderError(f"{path}: frame {frame0 + k}: cannot read {what}: {exc}") from exc
        raise ReaderError(f"{path}: frames {frame0}+: cannot read {what}: {whole}") from whole


def _gather(buf: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bytes:
    """Text of the sorted, disjoint byte ranges [lo, hi), for ``np.loadtxt``.

    Sparse ranges (header values) are gathered; dense ones (atom blocks) are copied whole with
    the header lines between them blanked to spaces, which the whitespace parser ignores.
    """
    base, top = int(lo[0]), int(hi[-1])
    if 2 * int((hi - lo).sum()) < top - base:
        return buf[_ranges(lo, hi)].tobytes()
    text = np.array(buf[base:top])
    text[_ranges(hi[:-1], lo[1:]) - base] = ord(" ")
    return text.tobytes()


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) over i, without a Python loop."""
    sizes = hi - lo
    offsets = np.repeat(lo - (np.cumsum(sizes) - sizes), sizes)
    return np.arange(int(sizes.sum()), dtype=np.int64) + offsets


def _check_finite(path: Path, values: np.ndarray, names: Sequence[str], frame0: int) -> None:
    """values: (frames, atoms, columns); the first non-finite entry names frame and column."""
    finite = np.isfinite(values)
    if not finite.all():
        k, atom, col = (int(i) for i in np.argwhere(~finite)[0])
        raise ReaderError(
            f"{path}: frame {frame0 + k}: non-finite value in column '{names[col]}' "
            f"(atom line {atom} of the frame)"
        )


def _unwrap(mode: str, raw: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    """raw: (frames, atoms, 3 or 6) coordinates [+ image flags]; box (frames, 3, 2) lo, hi."""
    xyz = raw[..., :3]
    if mode == "unwrapped" or box is None:
        return xyz
    lo = box[:, None, :, 0]
    length = box[:, None, :, 1] - lo
    if mode.startswith("scaled"):
        xyz = lo + xyz * length
    return xyz + raw[..., 3:6] * length if mode.endswith("image") else xyz


def _chain_order(
    path: Path,
    ids: np.ndarray,
    mols: np.ndarray,
    frame0: int,
    ref: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per-frame permutation (frames, atoms) sorting atoms by (mol, id).

    Every frame must hold the same atoms as the reference (sorted ids and mols of frame 0).
    """
    order = np.lexsort((ids, mols), axis=-1)
    sid = np.take_along_axis(ids, order, axis=-1)
    smol = np.take_along_axis(mols, order, axis=-1)
    if ref is None:
        ref = (sid[0], smol[0])
        dup = np.flatnonzero(np.diff(ref[0][np.argsort(ref[0])]) == 0)
        if dup.size:
            raise ReaderError(f"{path}: frame {frame0}: duplicate atom id {ref[0][dup[0]]:.0f}")
    differ = ((sid != ref[0]) | (smol != ref[1])).any(axis=1)
    if differ.any():
        raise ReaderError(
            f"{path}: frame {frame0 + int(np.argmax(differ))}: atom ids or molecule ids differ "
            "from frame 0"
        )
    return order, ref


def _chain_shape(
    path: Path, mols: np.ndarray, chains: int | None, beads: int | None
) -> tuple[int, int]:
    """(chains, beads) from the sorted molecule ids of frame 0, checked against given values."""
    names, counts = np.unique(mols, return_counts=True)
    if (counts != counts[0]).any():
        k = int(np.argmax(counts != counts[0]))
        raise ReaderError(
            f"{path}: frame 0: molecules differ in length (field 'mol'): molecule "
            f"{names[0]:.0f} has {counts[0]} atoms, molecule {names[k]:.0f} has {counts[k]}"
        )
    found = (int(names.size), int(counts[0]))
    for name, given, got in (("chains", chains, found[0]), ("beads", beads, found[1])):
        if given is not None and given != got:
            raise ReaderError(
                f"{path}: frame 0: the 'mol' column gives {found[0]} molecules of {found[1]} "
                f"atoms, but {name}={given} was given"
            )
    return found


# --------------------------------------------------------------------------- DCD


def read_dcd(path: str | Path, chains: int, beads: int) -> Trajectory:
    """Read a DCD file (``dump dcd`` + ``dump_modify ID unwrap yes``) via MDAnalysis' libdcd.

    DCD has no molecule ids: the chains * beads atoms are taken chain-major in id order. If the
    file stores a box, frames with a bond (consecutive beads) longer than half the box are
    rejected as wrapped. A partial last frame is an error (libdcd alone drops it). Frame times are
    the MD steps istart + i·nsavc of the header. Returns positions (frames, chains, beads, 3).
    """
    from MDAnalysis.lib.formats.libdcd import DCDFile

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        with DCDFile(str(path)) as dcd:
            header = dcd.header
            frames = dcd.readframes(order="fac")
            sizes = (dcd._header_size, dcd._firstframesize, dcd._framesize, dcd.n_frames)
    except (OSError, EOFError, ValueError, RuntimeError) as exc:
        raise ReaderError(f"{path}: not a readable DCD file ({exc})") from exc
    natoms = int(header["natoms"])
    if natoms != chains * beads:
        raise ReaderError(
            f"{path}: frame 0: {natoms} atoms is not chains x beads = {chains} x {beads}"
        )
    xyz = np.asarray(frames.xyz, dtype=np.float32)
    if xyz.shape[0] == 0:
        raise ReaderError(f"{path}: no frame")
    head, first, each, count = sizes  # libdcd drops a partial last frame silently
    if path.stat().st_size != head + first + (count - 1) * each:
        raise ReaderError(f"{path}: frame {count}: truncated last frame (partial frame record)")
    _check_finite(path, xyz, ("x", "y", "z"), 0)
    positions = xyz.reshape(xyz.shape[0], chains, beads, 3)
    if header["is_periodic"]:
        _check_unwrapped(path, positions, np.asarray(frames.unitcell)[:, [0, 2, 5]])
    steps = header["istart"] + header["nsavc"] * np.arange(xyz.shape[0], dtype=np.float64)
    return Trajectory(positions, steps, "step", path, "lammps-dcd")


def _check_unwrapped(path: Path, positions: np.ndarray, box: np.ndarray) -> None:
    """Reject frames with a bond component longer than half the box (frames, 3): wrapped data."""
    bonds = np.abs(np.diff(positions, axis=2))
    long = bonds > 0.5 * box[:, None, None, :]
    if long.any():
        k, chain, bead, dim = (int(i) for i in np.argwhere(long)[0])
        raise ReaderError(
            f"{path}: frame {k}: chain {chain}, beads {bead}-{bead + 1}: bond component "
            f"{'xyz'[dim]} = {bonds[k, chain, bead, dim]:.4g} exceeds half the box "
            f"({box[k, dim]:.4g} / 2): coordinates look wrapped; write the DCD with "
            "`dump_modify ID unwrap yes`"
        )


# --------------------------------------------------------------------------- NetCDF


def read_lammps_netcdf(
    path: str | Path, chains: int | None = None, beads: int | None = None
) -> Trajectory:
    """Read a LAMMPS NetCDF dump (AMBER convention) into positions (frames, chains, beads, 3).

    Variables: ``unwrapped_coordinates`` (frame, atom, spatial), or ``coordinates`` with image
    flags ``ix iy iz`` (frame, atom) and ``cell_lengths`` (frame, 3); ``time`` (frame); ``id`` and
    ``mol`` (frame, atom) if present: without ``id`` atoms keep the file order, without ``mol``
    chains and beads are required and atoms are taken chain-major. Unwritten (fill) values, as
    in a file cut short, raise naming the frame.
    """
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        with netCDF4.Dataset(path) as ds:
            data = {name: _nc_values(path, ds, name) for name in _nc_needed(path, ds)}
            time_unit = str(getattr(ds.variables["time"], "units", "time"))
    except OSError as exc:
        raise ReaderError(f"{path}: not a readable NetCDF file ({exc})") from exc
    stored = data.pop("time")
    times = stored.astype(np.float64)
    eps = np.finfo(stored.dtype).eps if stored.dtype.kind == "f" else 0.0
    xyz = _nc_positions(path, data)
    frames, natoms = xyz.shape[:2]
    if frames == 0:
        raise ReaderError(f"{path}: no frame")
    if "mol" not in data and (chains is None or beads is None):
        raise ReaderError(
            f"{path}: variable 'mol' is missing: pass chains and beads (atoms taken chain-major)"
        )
    if chains is not None and beads is not None and chains * beads != natoms:
        raise ReaderError(
            f"{path}: frame 0: {natoms} atoms is not chains x beads = {chains} x {beads}"
        )
    ids = data.get("id", np.broadcast_to(np.arange(natoms, dtype=np.float64), (frames, natoms)))
    mols = data.get("mol", np.zeros((frames, natoms)))
    order, ref = _chain_order(path, ids.astype(np.float64), mols.astype(np.float64), 0, None)
    shape = _chain_shape(path, ref[1], chains, beads) if "mol" in data else (chains, beads)
    positions = np.take_along_axis(xyz, order[..., None], axis=1).astype(np.float32)
    tolerance = 4 * float(eps) * float(np.abs(times).max())
    return Trajectory(
        positions.reshape(frames, *shape, 3), times, time_unit, path, "lammps-netcdf", tolerance
    )


def _nc_needed(path: Path, ds: Any) -> list[str]:
    names = set(ds.variables)
    if "time" not in names:
        raise ReaderError(f"{path}: variable 'time' (frame) is missing")
    optional = [n for n in ("id", "mol") if n in names]
    if "unwrapped_coordinates" in names:
        return ["time", "unwrapped_coordinates", *optional]
    if "coordinates" in names:
        flags = [n for n in ("ix", "iy", "iz", "cell_lengths") if n not in names]
        if flags:
            raise ReaderError(
                f"{path}: frame 0: wrapped 'coordinates' without {flags}: positions cannot be "
                f"unwrapped; dump 'xu yu zu' (variable 'unwrapped_coordinates') or add 'ix iy iz'"
            )
        return ["time", "coordinates", "ix", "iy", "iz", "cell_lengths", *optional]
    raise ReaderError(
        f"{path}: variable 'unwrapped_coordinates' (or 'coordinates' + 'ix iy iz') is missing; "
        f"variables: {sorted(names)}"
    )


def _nc_values(path: Path, ds: Any, name: str) -> np.ndarray:
    """A variable as an array; fill (unwritten) or non-finite values raise naming the frame."""
    values = ds.variables[name][:]
    unwritten = np.ma.getmaskarray(values)
    array = np.ma.getdata(values)
    bad = unwritten | (~np.isfinite(array) if array.dtype.kind == "f" else False)
    if bad.any():
        k = int(np.argwhere(bad)[0][0])
        what = "unwritten (fill) values: file cut short?" if unwritten.any() else "NaN or inf"
        raise ReaderError(f"{path}: frame {k}: variable '{name}' holds {what}")
    return np.asarray(array)


def _nc_positions(path: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    """Unwrapped (frames, atoms, 3) float64 from the NetCDF variables."""
    if "unwrapped_coordinates" in data:
        xyz = data.pop("unwrapped_coordinates").astype(np.float64)
    else:
        image = np.stack([data.pop(n) for n in ("ix", "iy", "iz")], axis=-1)
        xyz = data.pop("coordinates") + image * data.pop("cell_lengths")[:, None, :]
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ReaderError(f"{path}: coordinates have shape {xyz.shape}, not (frame, atom, 3)")
    return xyz


# --------------------------------------------------------------------------- meltBR


def read_meltbr(path: str | Path) -> np.ndarray:
    """Read a meltBR tensor (``torch.load``): modes (frames, chains, modes, 3) float32.

    Modes follow Eq. (14), X_p = dct(type=2)/(2N) along beads; mode 0 is the C.o.M. The file
    holds the tensor itself or a dict with exactly one tensor among its values.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime)
        raise ReaderError(f"{path}: not readable by torch.load ({exc})") from exc
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if len(tensors) != 1:
            raise ReaderError(
                f"{path}: expected a dict holding one tensor, found keys {list(obj)} "
                f"({len(tensors)} tensors)"
            )
        obj = next(iter(tensors.values()))
    if not isinstance(obj, torch.Tensor):
        raise ReaderError(f"{path}: expected a tensor or a dict of one tensor, got {type(obj)}")
    modes = obj.detach().to(torch.float32).numpy()
    if modes.ndim != 4 or modes.shape[-1] != 3 or modes.shape[0] == 0:
        raise ReaderError(
            f"{path}: tensor shape {tuple(modes.shape)} is not (frames, chains, modes, 3)"
        )
    _check_finite(path, modes.reshape(modes.shape[0], -1, 3), ("x", "y", "z"), 0)
    return modes


# --------------------------------------------------------------------------- import


def import_trajectory(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    format: str = "auto",
    chains: int | None = None,
    beads: int | None = None,
    dt: float,
    temperature: float,
    units: str = "lj",
) -> Path:
    """Read one run (files in time order) and write it as a store at ``out``.

    Positions go to a trajectory store (``write_trajectory``), meltBR modes to a modes store
    (``write_modes``). ``format``: 'auto' (from the extension: .dump/.lammpstrj/.txt, .dcd, .nc,
    .pt/.pth) or one of FORMATS. A first frame repeating the previous file's last time is
    dropped; frame times must then be evenly spaced. ``dt`` is the frame interval Δt in the data's
    time units (``units``); the spacing in the file's own units (MD steps for dump/DCD) is kept in
    meta.params. For meltBR, ``beads`` is the chain length N of the original melt, needed to
    invert Eq. (14); it defaults to the number of modes in the tensor (all modes kept).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ReaderError("import_trajectory: no input file given")
    if not (np.isfinite(dt) and dt > 0):
        raise ReaderError(f"import_trajectory: dt must be a positive number, got {dt}")
    if not np.isfinite(temperature):
        raise ReaderError(f"import_trajectory: temperature must be finite, got {temperature}")
    fmt = _resolve_format(paths, format)
    params = {"files": [str(p) for p in paths], "format": fmt}
    if fmt == "meltbr":
        tensors = [_meltbr_part(p, chains) for p in paths]
        _check_parts_agree([m.shape[1:] for m in tensors], paths)
        modes = np.concatenate(tensors, axis=0)
        n_beads = modes.shape[2] if beads is None else beads
        if n_beads < modes.shape[2]:
            raise ReaderError(
                f"{paths[0]}: beads={n_beads} is fewer than the {modes.shape[2]} modes in the file"
            )
        meta = _meta(modes.shape, n_beads, dt, temperature, units, fmt, params)
        return write_modes(out, modes, meta)
    parts = [_read_positions(p, fmt, chains, beads) for p in paths]
    positions, times = _concatenate(parts)
    spacing = _even_spacing(parts, times)
    params |= {
        "time_unit": parts[0].time_unit,
        "first_time": float(times[0]),
        "frame_spacing": spacing,
    }
    meta = _meta(positions.shape, positions.shape[2], dt, temperature, units, fmt, params)
    return write_trajectory(out, positions, meta)


def _meta(
    shape: tuple[int, ...],
    beads: int,
    dt: float,
    temperature: float,
    units: str,
    fmt: str,
    params: dict[str, Any],
) -> TrajectoryMeta:
    """Store metadata; shape: (frames, chains, beads or modes, 3)."""
    return TrajectoryMeta(
        temperature=float(temperature),
        dt=float(dt),
        chains=int(shape[1]),
        beads=int(beads),
        frames=int(shape[0]),
        units=units,
        source=SOURCES[fmt],
        params=params,
    )


def _resolve_format(paths: Sequence[Path], fmt: str) -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise ReaderError(f"import_trajectory: format '{fmt}' is not one of {FORMATS}")
        return fmt
    for p in paths:
        if p.suffix.lower() not in EXTENSIONS:
            raise ReaderError(
                f"{p}: unknown extension '{p.suffix}': expected one of {sorted(EXTENSIONS)} "
                "or pass format="
            )
    found = sorted({EXTENSIONS[p.suffix.lower()] for p in paths})
    if len(found) != 1:
        raise ReaderError(f"import_trajectory: files of different formats {found}")
    return found[0]


def _read_positions(path: Path, fmt: str, chains: int | None, beads: int | None) -> Trajectory:
    if fmt == "dump":
        return read_lammps_dump(path, chains, beads)
    if fmt == "netcdf":
        return read_lammps_netcdf(path, chains, beads)
    if chains is None or beads is None:
        raise ReaderError(f"{path}: DCD has no molecule ids: chains and beads must be given")
    return read_dcd(path, chains, beads)


def _meltbr_part(path: Path, chains: int | None) -> np.ndarray:
    modes = read_meltbr(path)
    if chains is not None and modes.shape[1] != chains:
        raise ReaderError(f"{path}: {modes.shape[1]} chains in the tensor, chains={chains} given")
    return modes


def _check_parts_agree(shapes: Sequence[tuple[int, ...]], paths: Sequence[Path]) -> None:
    for shape, path in zip(shapes[1:], paths[1:], strict=True):
        if shape != shapes[0]:
            raise ReaderError(f"{path}: shape {shape} differs from {paths[0]}: {shapes[0]}")


def _concatenate(parts: Sequence[Trajectory]) -> tuple[np.ndarray, np.ndarray]:
    """Join the files in order, dropping a first frame that repeats the previous last time."""
    _check_parts_agree([p.positions.shape[1:] for p in parts], [p.path for p in parts])
    keep = [slice(None)]
    for prev, part in pairwise(parts):
        start, end = part.times[0], prev.times[-1]
        tol = prev.time_tolerance + part.time_tolerance
        if start < end - tol:
            raise ReaderError(
                f"{part.path}: frame 0: time {start:g} precedes the last time {end:g} of "
                f"{prev.path}: files out of order or overlapping"
            )
        keep.append(slice(1 if start <= end + tol else 0, None))
    positions = np.concatenate([p.positions[s] for p, s in zip(parts, keep, strict=True)])
    times = np.concatenate([p.times[s] for p, s in zip(parts, keep, strict=True)])
    return positions, times


def _even_spacing(parts: Sequence[Trajectory], times: np.ndarray) -> float:
    """The common frame spacing of ``times``; raises naming the first uneven frame."""
    if times.size < 2:
        return 0.0
    gaps = np.diff(times)
    tol = 2 * max(p.time_tolerance for p in parts)
    uneven = (np.abs(gaps - gaps[0]) > tol) | (gaps <= 0)
    if uneven.any():
        k = int(np.argmax(uneven))
        names = ", ".join(str(p.path) for p in parts)
        raise ReaderError(
            f"{names}: frame {k + 1} (of the joined run): frame times are not evenly spaced: "
            f"{times[k]:g} -> {times[k + 1]:g} is {gaps[k]:g}, frame 0 -> 1 is {gaps[0]:g}"
        )
    return float(gaps[0])
