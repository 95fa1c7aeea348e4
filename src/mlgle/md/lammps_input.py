"""Text of the LAMMPS inputs for the Kremer-Grest melt (paper Sec. 4.1): data file and scripts.

Pure functions, no LAMMPS needed: the initial random-walk melt as a data file, the equilibration
script (segment 0: soft push-off, capped WCA, equilibration) and the production scripts (segments
1..K, each a restart in, a DCD of unwrapped frames and a restart out). Reduced LJ units throughout.

Model: WCA non-bonded (ε = σ = 1, rc = 2^(1/6), shifted), FENE bonds (K = 30, R0 = 1.5, with the
bond's own WCA term and ``special_bonds fene``), velocity Verlet with either a Langevin thermostat
(``fix langevin``, damping time τ_damp, γ = 1/τ_damp) or a momentum-conserving DPD thermostat
(``pair_style hybrid/overlay lj/cut ... dpd/tstat``, Eqs. 31-32 with friction ``dpd_gamma`` on
non-bonded pairs within r_d = 2^(1/6)). The total momentum is zeroed after the push-off and the
Langevin noise has no net force (``zero yes``), so with either thermostat the centre of the whole
melt stays put: otherwise it would diffuse with D = T / (chains · beads · γ), about a quarter of a
chain's D in the default 100 x 20 melt, and bias D_MD.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlgle.config import MDConfig

WCA_CUTOFF = 2.0 ** (1.0 / 6.0)
BOND_LENGTH = 0.97  # start-up bond length, near the FENE + WCA minimum
FENE_K = 30.0
FENE_R0 = 1.5
SOFT_STEPS = 2000  # push-off with pair soft, prefactor ramped SOFT_START -> SOFT_END
SOFT_START, SOFT_END = 1.0, 100.0
CAPPED_STEPS = 2000  # WCA under fix nve/limit
LIMIT = 0.05  # max displacement per step (σ) while pushing off
PUSHOFF_DAMP = 1.0
THERMO_EVERY = 1000
PUSHOFF_STEPS = SOFT_STEPS + CAPPED_STEPS


@dataclass(frozen=True)
class Seeds:
    """LAMMPS seeds (integers in [1, 9e8]) of one segment: velocities and thermostat."""

    velocity: int
    thermostat: int


def box_length(chains: int, beads: int, density: float) -> float:
    """Edge of the cubic box holding chains * beads beads at the number density."""
    return float((chains * beads / density) ** (1.0 / 3.0))


def random_walk_melt(
    chains: int, beads: int, density: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Freely jointed chains (bond BOND_LENGTH) started uniformly in a cubic box.

    Returns unwrapped positions (chains, beads, 3) and the box edge L. Overlaps are left to the
    soft push-off of the equilibration script.
    """
    length = box_length(chains, beads, density)
    steps = rng.normal(size=(chains, beads - 1, 3))
    steps *= BOND_LENGTH / np.linalg.norm(steps, axis=-1, keepdims=True)
    start = rng.uniform(0.0, length, size=(chains, 1, 3))
    positions = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)
    return positions, length


def data_file(positions: np.ndarray, length: float, title: str) -> str:
    """LAMMPS data file (atom_style bond) of chains (chains, beads, 3) in the box [0, L)^3.

    Atom ids are chain-major (chain c, bead n -> c * beads + n + 1), molecule ids c + 1; positions
    are wrapped into the box with image flags so that the unwrapped chains are exact.
    """
    chains, beads, _ = positions.shape
    flat = positions.reshape(-1, 3)
    image = np.floor(flat / length)
    wrapped = flat - image * length
    ids = np.arange(1, chains * beads + 1)
    molecule = np.repeat(np.arange(1, chains + 1), beads)
    first = (ids.reshape(chains, beads)[:, :-1]).ravel()
    bonds = np.column_stack([np.arange(1, first.size + 1), np.ones_like(first), first, first + 1])
    atoms = "\n".join(
        f"{i} {m} 1 {x:.12f} {y:.12f} {z:.12f} {a:d} {b:d} {c:d}"
        for i, m, (x, y, z), (a, b, c) in zip(
            ids, molecule, wrapped, image.astype(np.int64), strict=True
        )
    )
    bond_lines = "\n".join(" ".join(map(str, row)) for row in bonds)
    return (
        f"LAMMPS data file: {title}\n\n"
        f"{chains * beads} atoms\n{first.size} bonds\n1 atom types\n1 bond types\n\n"
        f"0.0 {length!r} xlo xhi\n0.0 {length!r} ylo yhi\n0.0 {length!r} zlo zhi\n\n"
        f"Masses\n\n1 1.0\n\n"
        f"Atoms # bond\n\n{atoms}\n\n"
        f"Bonds\n\n{bond_lines}\n"
    )


def _common(config: MDConfig) -> str:
    vel = " vel yes" if config.thermostat == "dpd" else ""
    return (
        f"timestep {config.timestep!r}\n"
        "neighbor 0.4 bin\n"
        "neigh_modify every 1 delay 0 check yes\n"
        f"comm_modify cutoff 2.0{vel}\n"
        "special_bonds fene\n"
        "bond_style fene\n"
        f"bond_coeff 1 {FENE_K} {FENE_R0} 1.0 1.0\n"
        "thermo_style custom step temp epair emol press\n"
        f"thermo {THERMO_EVERY}\n"
        "thermo_modify flush yes norm yes\n"
    )


def _dynamics(config: MDConfig, temperature: float, seed: int) -> str:
    """Pair style and integrator of the full model (WCA + thermostat)."""
    t = repr(float(temperature))
    if config.thermostat == "dpd":
        return (
            f"pair_style hybrid/overlay lj/cut {WCA_CUTOFF!r} dpd/tstat {t} {t} "
            f"{WCA_CUTOFF!r} {seed}\n"
            "pair_modify pair lj/cut shift yes\n"
            "pair_coeff * * lj/cut 1.0 1.0\n"
            f"pair_coeff * * dpd/tstat {config.dpd_gamma!r}\n"
            "fix integrate all nve\n"
        )
    return (
        f"pair_style lj/cut {WCA_CUTOFF!r}\n"
        "pair_modify shift yes\n"
        "pair_coeff * * 1.0 1.0\n"
        "fix integrate all nve\n"
        f"fix thermostat all langevin {t} {t} {config.damping!r} {seed} zero yes\n"
    )


def equilibration_script(
    config: MDConfig, temperature: float, data: Path, restart: Path, seeds: Seeds
) -> str:
    """Segment 0: read the data file, push off, equilibrate, reset the step to 0, write restart.

    Push-off: ``pair soft`` with its prefactor ramped SOFT_START -> SOFT_END over SOFT_STEPS, then
    WCA for CAPPED_STEPS, both under ``fix nve/limit`` and a Langevin thermostat; then, with the
    total momentum zeroed (conserved from there on by the DPD thermostat),
    ``config.equilibration_steps`` of the full model. Steps run: PUSHOFF_STEPS + equilibration.
    """
    t = repr(float(temperature))
    equilibrate = f"run {config.equilibration_steps}\n" if config.equilibration_steps else ""
    return (
        "units lj\natom_style bond\nboundary p p p\n"
        f"read_data {data}\n"
        + _common(config)
        + f"velocity all create {t} {seeds.velocity} dist gaussian mom yes rot no loop geom\n"
        f"pair_style soft {WCA_CUTOFF!r}\n"
        f"pair_coeff * * {SOFT_START}\n"
        f"variable prefactor equal ramp({SOFT_START},{SOFT_END})\n"
        "fix pushoff all adapt 1 pair soft a * * v_prefactor\n"
        f"fix limit all nve/limit {LIMIT}\n"
        f"fix pushoff_thermostat all langevin {t} {t} {PUSHOFF_DAMP} {seeds.thermostat}\n"
        f"run {SOFT_STEPS}\n"
        "unfix pushoff\n"
        f"pair_style lj/cut {WCA_CUTOFF!r}\n"
        "pair_modify shift yes\n"
        "pair_coeff * * 1.0 1.0\n"
        f"run {CAPPED_STEPS}\n"
        "unfix limit\n"
        "unfix pushoff_thermostat\n"
        "velocity all zero linear\n"
        + _dynamics(config, temperature, seeds.thermostat)
        + equilibrate
        + "reset_timestep 0\n"
        f"write_restart {restart}\n"
    )


def production_script(
    config: MDConfig,
    temperature: float,
    restart_in: Path,
    frames: Path,
    restart_out: Path,
    steps: int,
    seeds: Seeds,
    diagnostics: Path | None = None,
) -> str:
    """One production segment: ``steps`` steps from ``restart_in``.

    Writes a DCD of unwrapped positions every ``config.steps_per_frame`` steps (first and last step
    of the segment included, sorted by atom id) and a restart at the end. With ``diagnostics``,
    also LAMMPS' own ``compute msd/chunk`` over molecules (chain C.o.M displacement from the start
    of production, mean-square per chain) every frame into that file, for independent checks.
    """
    every = config.steps_per_frame
    extra = ""
    if diagnostics is not None:
        # Same compute IDs every segment: the reference C.o.M (a fix STORE) comes back from the
        # restart, so displacements stay relative to the first production frame.
        extra = (
            "compute chains all chunk/atom molecule\n"
            "compute chain_msd all msd/chunk chains\n"
            f"fix chain_msd all ave/time {every} 1 {every} c_chain_msd[4] "
            f'mode vector format " %.15g" file {diagnostics}\n'
        )
    return (
        f"read_restart {restart_in}\n"
        + _common(config)
        + _dynamics(config, temperature, seeds.thermostat)
        + extra
        + f"dump frames all dcd {every} {frames}\n"
        "dump_modify frames unwrap yes\n"
        f"run {steps}\n"
        f"write_restart {restart_out}\n"
    )
