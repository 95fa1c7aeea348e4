"""The LAMMPS inputs of the reference melt (mlgle.md.lammps_input): the random-walk start and
the data file, checked without running LAMMPS."""

from __future__ import annotations

import numpy as np
import pytest

from mlgle.md import lammps_input


def test_random_walk_melt_has_density_and_bond_length():
    rng = np.random.default_rng(3)
    positions, length = lammps_input.random_walk_melt(7, 5, 0.85, rng)
    assert positions.shape == (7, 5, 3)
    assert 7 * 5 / length**3 == pytest.approx(0.85)
    bonds = np.linalg.norm(np.diff(positions, axis=1), axis=-1)
    np.testing.assert_allclose(bonds, lammps_input.BOND_LENGTH, rtol=1e-12)


def test_data_file_wraps_with_image_flags_exactly():
    positions = np.array([[[-0.5, 1.0, 2.0], [0.4, 1.2, 2.9]], [[3.9, 4.1, 8.5], [4.5, 4.0, 8.0]]])
    text = lammps_input.data_file(positions, 4.0, "test")
    start = text.index("Atoms # bond") + len("Atoms # bond")
    rows = np.array([line.split() for line in text[start:].split("Bonds")[0].split("\n") if line])
    ids, mol = rows[:, 0].astype(int), rows[:, 1].astype(int)
    wrapped, image = rows[:, 3:6].astype(float), rows[:, 6:9].astype(int)
    assert ids.tolist() == [1, 2, 3, 4] and mol.tolist() == [1, 1, 2, 2]
    assert ((wrapped >= 0) & (wrapped < 4.0)).all()
    np.testing.assert_allclose(wrapped + 4.0 * image, positions.reshape(-1, 3), atol=1e-12)
    assert "2 bonds" in text and text.rstrip().endswith("2 1 3 4")
