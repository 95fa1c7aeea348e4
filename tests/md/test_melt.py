"""The reference melt stage (mlgle.md.melt) on a tiny Kremer-Grest melt, run by LAMMPS under MPI.

One uninterrupted run (module fixture) is checked against LAMMPS' own ``compute msd/chunk`` and
against a run killed after its first production segment and started again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mlgle.config import MDConfig
from mlgle.errors import ConfigError, MDError, ReaderError
from mlgle.md import lammps_input, melt
from mlgle.md.readers.dcd import read_dcd
from mlgle.store import open_trajectory

TINY = MDConfig(
    temperatures=(1.0,),
    chains=10,
    beads=8,
    density=0.85,
    equilibration_steps=500,
    production_steps=2000,
    steps_per_frame=20,
    restart_every=500,  # 1 equilibration + 4 production segments
    ranks=2,
    seed=20240611,
)
T = 1.0


def _run(base: Path, config: MDConfig = TINY, **kwargs) -> tuple[Path, Path]:
    out, work = base / "T1.0", base / "work"
    melt.simulate(config, T, out, work_dir=work, progress=False, **kwargs)
    return out, work


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """Uninterrupted run with LAMMPS' msd/chunk diagnostics (keeps the work directory)."""
    return _run(tmp_path_factory.mktemp("tiny"), extra_diagnostics=True)


def _msd_chunk(work: Path) -> dict[int, float]:
    """Step -> mean over chains of LAMMPS' msd/chunk (|X_t - X_0|², X_0 at production start)."""
    out: dict[int, float] = {}
    for path in sorted(work.glob("msd_chunk_*.txt")):
        rows = [line.split() for line in path.read_text().splitlines() if line[:1] != "#"]
        i = 0
        while i < len(rows):
            step, count = int(rows[i][0]), int(rows[i][1])
            out.setdefault(step, float(np.mean([float(r[1]) for r in rows[i + 1 : i + 1 + count]])))
            i += 1 + count
    return out


@pytest.mark.lammps
def test_store_has_shape_meta_and_unwrapped_chain_major_frames(tiny):
    out, _ = tiny
    positions, meta = open_trajectory(out)
    assert positions.shape == (TINY.frames, TINY.chains, TINY.beads, 3) == (101, 10, 8, 3)
    assert positions.dtype == np.float32 and np.isfinite(positions).all()
    assert (meta.temperature, meta.dt, meta.frames) == (T, pytest.approx(0.2), TINY.frames)
    assert (meta.units, meta.source, meta.seed) == ("lj", "lammps", TINY.seed)
    assert meta.engine_version == melt.lammps_version()
    assert meta.engine_version.startswith("LAMMPS ")
    assert meta.params["production_steps"] == TINY.production_steps
    assert MDConfig(**{**meta.params, "temperatures": tuple(meta.params["temperatures"])}) == TINY
    # Consecutive ids are bonded only if the reshape is chain-major; a wrapped coordinate would
    # put a bond at ~ the box edge (4.5). FENE forbids bonds >= R0 and WCA keeps them > ~0.8.
    bonds = np.linalg.norm(np.diff(positions, axis=2), axis=-1)
    assert 0.75 < bonds.min() and bonds.max() < lammps_input.FENE_R0
    # Unwrapped beads do leave the box [0, L) over the run (otherwise the check above is moot).
    length = lammps_input.box_length(TINY.chains, TINY.beads, TINY.density)
    assert positions.min() < 0.0 or positions.max() >= length


@pytest.mark.lammps
def test_com_displacement_matches_lammps_msd_chunk(tiny):
    """Mean over chains of |X_t - X_0|² from the store == LAMMPS' msd/chunk (not time-averaged).

    msd/chunk (double precision, unwrapped, reference kept across restarts) is written every
    frame; the store holds float32. Each coordinate is off by at most one float32 ulp δ of the
    largest |x|, so the C.o.M displacement per component by ≤ 2δ and |d|² by ≤ Σ(4|d_i|δ + 4δ²).
    """
    out, work = tiny
    positions, _ = open_trajectory(out)
    com = positions.astype(np.float64).mean(axis=2)  # (frames, chains, 3)
    d = com - com[0]
    ours = (d**2).sum(-1).mean(-1)
    reference = _msd_chunk(work)
    steps = np.arange(TINY.frames) * TINY.steps_per_frame
    assert sorted(reference) == steps.tolist()
    theirs = np.array([reference[s] for s in steps])
    delta = float(np.spacing(np.abs(positions).max()))
    bound = (4 * np.abs(d) * delta + 4 * delta**2).sum(-1).mean(-1) + 1e-12
    assert theirs[-1] > 0.1  # chains did move: the comparison is not between zeros
    assert np.all(np.abs(ours - theirs) <= bound)


def _system_drift(positions: np.ndarray) -> float:
    """Largest excursion of the centre of mass of all beads from its frame-0 value."""
    centre = positions.astype(np.float64).mean(axis=(1, 2))
    return float(np.abs(centre - centre[0]).max())


@pytest.mark.lammps
def test_dpd_runs_and_both_thermostats_keep_the_system_centre_fixed(tiny, tmp_path):
    """Total momentum is zeroed after the push-off; dpd/tstat (pairwise) and Langevin with
    ``zero yes`` (no net random force) keep it zero, so the centre of all beads stays put.

    float32 rounding of a mean of 80 coordinates is < 1e-5. Without ``zero yes`` the Langevin
    system centre would diffuse with D = T / (80 γ): ~1 σ r.m.s. over the 20 τ of the run.
    """
    dpd = dataclasses.replace(TINY, thermostat="dpd", ranks=1, production_steps=1000)
    out, work = _run(tmp_path, dpd, keep_work=True)
    positions, meta = open_trajectory(out)
    assert positions.shape == (dpd.frames, dpd.chains, dpd.beads, 3)
    assert np.isfinite(positions).all() and meta.params["thermostat"] == "dpd"
    assert np.linalg.norm(np.diff(positions, axis=2), axis=-1).max() < lammps_input.FENE_R0
    assert "dpd/tstat" in (work / "seg_0001.log").read_text()  # LAMMPS echoes what it ran
    assert _system_drift(positions) < 1e-5
    assert _system_drift(open_trajectory(tiny[0])[0]) < 1e-5


@pytest.mark.lammps
def test_resume_after_kill_gives_identical_frames(tiny, tmp_path, monkeypatch):
    real = melt._run_segment
    ran: list[int] = []

    def killed_after_segment_1(work, config, temperature, segment, *args):
        if segment == 2:
            raise KeyboardInterrupt("killed")
        ran.append(segment)
        real(work, config, temperature, segment, *args)

    monkeypatch.setattr(melt, "_run_segment", killed_after_segment_1)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, extra_diagnostics=True)
    assert ran == [0, 1] and not (tmp_path / "T1.0").exists()
    # What a kill inside segment 2 leaves: partial temporaries and frames without a restart.
    work = tmp_path / "work"
    (work / "seg_0002.dcd").write_bytes((work / "seg_0001.dcd").read_bytes()[:1000])
    (work / "seg_0002.restart.tmp").write_bytes(b"partial")

    def spy(work, config, temperature, segment, *args):
        ran.append(segment)
        real(work, config, temperature, segment, *args)

    monkeypatch.setattr(melt, "_run_segment", spy)
    out, _ = _run(tmp_path, extra_diagnostics=True)
    assert ran == [0, 1, 2, 3, 4]  # segments 0 and 1 were not run again
    resumed, _ = open_trajectory(out)
    uninterrupted, _ = open_trajectory(tiny[0])
    assert np.array_equal(resumed, uninterrupted)


@pytest.mark.lammps
def test_lammps_failure_raises_with_log_tail(tmp_path):
    """dt = 5 τ blows the melt apart: LAMMPS stops with an ERROR; no store is written. The error
    is one line (the CLI prints it as is): LAMMPS' ERROR line and the log, kept in full."""
    broken = dataclasses.replace(TINY, timestep=5.0, ranks=1, equilibration_steps=100)
    with pytest.raises(MDError) as info:
        _run(tmp_path, broken)
    message = str(info.value)
    log = tmp_path / "work" / "seg_0000.log"
    (line,) = message.splitlines()
    assert "ERROR" in line and line.endswith(f"see {log}")  # not just the exit code
    assert not (tmp_path / "T1.0").exists()
    assert log.is_file()  # kept for inspection
    error = line.split("): ", 1)[1].rsplit("; see ", 1)[0]  # LAMMPS' ERROR line, from the log
    text = log.read_text()
    assert len(text.splitlines()) > 10 and error in text


def test_bad_arguments_are_rejected_before_lammps(tmp_path):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        melt.simulate(TINY, 0.0, tmp_path / "T0", progress=False)
    with pytest.raises(ConfigError, match=r"md\.restart_every"):
        melt.simulate(
            dataclasses.replace(TINY, restart_every=510), T, tmp_path / "T", progress=False
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.lammps
def test_truncated_dcd_is_an_error(tmp_path, tiny):
    path = tmp_path / "cut.dcd"
    path.write_bytes((tiny[1] / "seg_0001.dcd").read_bytes()[:-10])
    with pytest.raises(ReaderError, match=r"cut\.dcd"):
        read_dcd(path, TINY.chains, TINY.beads)


@pytest.mark.lammps
def test_work_files_of_another_setup_are_discarded(tmp_path):
    """A stale 'complete' segment 0 from another temperature must not be resumed from."""
    config = dataclasses.replace(TINY, ranks=1, production_steps=500)
    work = tmp_path / "work"
    work.mkdir()
    (work / melt.MANIFEST).write_text('{"temperature": 2.0}')
    (work / "seg_0000.restart").write_bytes(b"not a restart file")
    with pytest.warns(UserWarning, match="another set-up"):
        out, _ = _run(tmp_path, config)
    assert open_trajectory(out)[0].shape == (config.frames, config.chains, config.beads, 3)
    assert not work.exists()  # work files are removed once the store is written
