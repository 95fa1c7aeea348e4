"""Normal modes (Eqs. 14-15): exact inverse, C.o.M, agreement with an explicit cosine sum."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.fft

from mlgle.modes import center_of_mass, normal_modes, positions_from_modes
from mlgle.synthetic import rouse_chains


def _cosines(beads: int) -> np.ndarray:
    """c[p, n] = cos(pπ(n+½)/N), written out independently of scipy.fft."""
    p, n = np.meshgrid(np.arange(beads), np.arange(beads), indexing="ij")
    return np.cos(p * np.pi * (n + 0.5) / beads)


@pytest.fixture(scope="module")
def random_chains() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(5, 4, 9, 3))


def test_round_trip_is_exact(random_chains: np.ndarray) -> None:
    modes = normal_modes(random_chains)
    assert modes.shape == random_chains.shape
    back = positions_from_modes(modes, beads=9)
    np.testing.assert_allclose(back, random_chains, rtol=0, atol=1e-12)


def test_matches_explicit_cosine_sum_and_scipy_dct(random_chains: np.ndarray) -> None:
    beads = random_chains.shape[2]
    explicit = np.einsum("pn,fcnd->fcpd", _cosines(beads), random_chains) / beads
    modes = normal_modes(random_chains)
    np.testing.assert_allclose(modes, explicit, rtol=0, atol=1e-12)
    dct = scipy.fft.dct(random_chains, type=2, axis=2) / (2 * beads)
    np.testing.assert_allclose(modes, dct, rtol=0, atol=1e-12)


def test_inverse_matches_eq14_cosine_sum(random_chains: np.ndarray) -> None:
    beads = random_chains.shape[2]
    modes = normal_modes(random_chains)
    weights = np.full(beads, 2.0)
    weights[0] = 1.0
    eq14 = np.einsum("pn,p,fcpd->fcnd", _cosines(beads), weights, modes)
    np.testing.assert_allclose(positions_from_modes(modes, beads), eq14, rtol=0, atol=1e-12)


def test_mode_zero_is_center_of_mass(random_chains: np.ndarray) -> None:
    com = center_of_mass(random_chains)
    assert com.shape == (5, 4, 3)
    np.testing.assert_allclose(com, random_chains.mean(axis=2), rtol=0, atol=1e-14)
    np.testing.assert_allclose(normal_modes(random_chains)[:, :, 0], com, rtol=0, atol=1e-12)


def test_k_keeps_the_slowest_modes(random_chains: np.ndarray) -> None:
    full = normal_modes(random_chains)
    first = normal_modes(random_chains, k=3)
    assert first.shape == (5, 4, 4, 3)
    np.testing.assert_array_equal(first, full[:, :, :4])


def test_float32_input_is_computed_in_float64(random_chains: np.ndarray) -> None:
    single = random_chains.astype(np.float32)
    modes = normal_modes(single)
    assert modes.dtype == np.float64
    np.testing.assert_allclose(modes, normal_modes(single.astype(np.float64)), rtol=0, atol=1e-15)


def test_single_cosine_chain_gives_back_its_mode() -> None:
    beads, p = 10, 3
    amplitude = np.array([0.7, -1.2, 0.4])
    n = np.arange(beads)
    chain = 2 * np.cos(p * np.pi * (n + 0.5) / beads)[:, None] * amplitude
    modes = normal_modes(chain[None, None])
    expected = np.zeros((beads, 3))
    expected[p] = amplitude
    np.testing.assert_allclose(modes[0, 0], expected, rtol=0, atol=1e-12)
    # Eq. 14 from the single mode alone reproduces the chain, including through truncation.
    only = np.zeros((1, 1, p + 1, 3))
    only[0, 0, p] = amplitude
    np.testing.assert_allclose(positions_from_modes(only, beads)[0, 0], chain, atol=1e-12)


def test_truncated_reconstruction_improves_with_k() -> None:
    """Fig. 3: more slow modes give a chain closer to the original (on Rouse chains)."""
    beads = 16
    positions = rouse_chains(chains=32, beads=beads, frames=4, dt=1.0, seed=3)
    modes = normal_modes(positions)
    errors = [
        np.mean((positions_from_modes(modes[:, :, : k + 1], beads) - positions) ** 2)
        for k in range(beads)
    ]
    assert np.all(np.diff(errors) < 0)
    assert errors[-1] < 1e-24
    # Parseval for the orthogonal cosine basis (Σ_n c_p(n)² = N/2): the squared error summed over
    # the beads of one chain component is Σ_{p>k} (2 X_p)² N/2 = 2N Σ_{p>k} X_p².
    dropped = 2 * np.array([np.sum(modes[:, :, k + 1 :] ** 2) for k in range(beads)])
    np.testing.assert_allclose(
        np.array(errors) * positions.size / beads, dropped, rtol=1e-9, atol=1e-20
    )


@pytest.mark.parametrize(
    ("bad", "shape"),
    [
        (np.zeros(3), "(3,)"),
        (np.zeros((2, 3, 4, 2)), "(2, 3, 4, 2)"),
        (np.zeros((2, 3, 0, 3)), "(2, 3, 0, 3)"),
    ],
)
def test_bad_shapes_name_the_shape(bad: np.ndarray, shape: str) -> None:
    for func in (normal_modes, center_of_mass):
        with pytest.raises(ValueError, match=r"positions.*" + re.escape(shape)):
            func(bad)
    with pytest.raises(ValueError, match=r"modes.*" + re.escape(shape)):
        positions_from_modes(bad, beads=4)


def test_non_finite_values_are_located() -> None:
    x = np.zeros((3, 2, 5, 3))
    x[2, 1, 4, 0] = np.nan
    with pytest.raises(ValueError, match=r"positions: non-finite .*\(2, 1, 4, 0\).*\(3, 2, 5, 3\)"):
        normal_modes(x)
    with pytest.raises(ValueError, match=r"modes: non-finite"):
        positions_from_modes(x, beads=5)


def test_bad_k_and_beads() -> None:
    x = np.zeros((2, 2, 5, 3))
    for k in (-1, 5):
        with pytest.raises(ValueError, match="k: expected 0 <= k < beads"):
            normal_modes(x, k=k)
    with pytest.raises(ValueError, match=r"beads: .*\(5\)"):
        positions_from_modes(x, beads=4)
