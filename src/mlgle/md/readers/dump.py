"""LAMMPS text dumps (``dump custom``) -> unwrapped positions."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlgle.errors import ReaderError
from mlgle.md.readers.common import (
    WRAPPED_HINT,
    Trajectory,
    chain_order,
    chain_shape,
    check_finite,
    unwrap,
)

_BLOCK = 1 << 26  # bytes scanned per step when indexing lines
_CHUNK = 1 << 26  # bytes of atom lines parsed per step
_NL = ord("\n")
_WHITESPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)




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
        check_finite(path, raw, [header.columns[c] for c in cols], k0)
        xyz = unwrap(mode, raw[..., 2:], None if header.box is None else header.box[k0:k1])
        order, ref = chain_order(path, raw[..., 0], raw[..., 1], k0, ref)
        flat[k0:k1] = np.take_along_axis(xyz, order[..., None], axis=1)
    assert ref is not None
    shape = chain_shape(path, ref[1], chains, beads)
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
            f"unwrapped; {WRAPPED_HINT}"
        )
    partial = [xyz for xyz, _ in options.values() if have.intersection(xyz)]
    need = partial[0] if partial else ("xu", "yu", "zu")
    raise ReaderError(
        f"{path}: frame 0: missing column(s) {[c for c in need if c not in have]} in "
        f"'ITEM: ATOMS {found}'; {WRAPPED_HINT}"
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
