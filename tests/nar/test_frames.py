"""Frames of mode windows (Sec. 3.2): orthonormality, geometry, invariance, degenerate windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import ortho_group

from mlgle.nar.frames import from_frame, rotation_frames, to_frame

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
ORTHO_TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
DTYPES = [torch.float32, torch.float64]

# Arbitrary windows, zeros, repeats and subnormal entries included (hypothesis favours them).
windows = arrays(
    np.float64,
    st.tuples(st.integers(3, 6), st.just(3)),
    elements=st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False),
)


def _orthogonal(seed: int, reflect: bool) -> np.ndarray:
    """Haar-random orthogonal 3x3 with det = -1 if ``reflect`` else +1."""
    q = ortho_group.rvs(3, random_state=seed)
    if (np.linalg.det(q) < 0) != reflect:
        q[0] = -q[0]
    return q


def _assert_orthonormal(R: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    tol = ORTHO_TOL[R.dtype]
    assert torch.isfinite(R).all()
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=tol, rtol=0)
    torch.testing.assert_close(
        torch.linalg.det(R).abs(), torch.ones(R.shape[:-2], dtype=R.dtype), atol=10 * tol, rtol=0
    )


@SETTINGS
@given(window=windows)
@pytest.mark.parametrize("dtype", DTYPES)
def test_frames_orthonormal_for_any_window(window: np.ndarray, dtype: torch.dtype) -> None:
    _assert_orthonormal(rotation_frames(torch.as_tensor(window, dtype=dtype)))


@SETTINGS
@given(window=windows)
def test_frame_geometry(window: np.ndarray) -> None:
    """e1 ∥ z_{t-1}; z_{t-2} in span(e1, e2) with positive e2 part; z_{t-3}·e3 >= 0."""
    R = rotation_frames(torch.as_tensor(window)).numpy()
    z1, z2, z3 = window[-1], window[-2], window[-3]
    n1 = np.linalg.norm(z1)
    if n1 > 1e-6:
        np.testing.assert_allclose(R[0], z1 / n1, atol=1e-12)
        orth2 = np.linalg.norm(np.cross(z1, z2)) / n1  # |part of z2 orthogonal to z1|
        if np.linalg.norm(z2) > 1e-6 and orth2 > 1e-3 * np.linalg.norm(z2):
            assert abs(z2 @ R[2]) <= 1e-9 * np.linalg.norm(z2)
            assert z2 @ R[1] > 0
            np.testing.assert_allclose(z2 @ R[1], orth2, rtol=1e-9)
    assert z3 @ R[2] >= -1e-12 * np.linalg.norm(z3)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(3, 8),
    scale=st.floats(1e-2, 1e2),
    q_seed=st.integers(0, 2**32 - 1),
    reflect=st.booleans(),
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotated_window_is_invariant(
    seed: int, m: int, scale: float, q_seed: int, reflect: bool, dtype: torch.dtype
) -> None:
    """to_frame(Q·w, R(Q·w)) == to_frame(w, R(w)) for orthogonal Q, reflections too (Eq. 17)."""
    w = scale * np.random.default_rng(seed).standard_normal((m, 3))
    z1, z2, z3 = w[-1], w[-2], w[-3]
    normal = np.cross(z1, z2)
    # Invariance is exact for non-degenerate windows; keep them well conditioned for rounding.
    assume(np.linalg.norm(normal) > 0.1 * np.linalg.norm(z1) * np.linalg.norm(z2))
    assume(abs(z3 @ normal) > 0.1 * np.linalg.norm(z3) * np.linalg.norm(normal))
    q = _orthogonal(q_seed, reflect)
    window = torch.as_tensor(w, dtype=dtype)
    rotated = torch.as_tensor(w @ q.T, dtype=dtype)
    hat = to_frame(window, rotation_frames(window))
    hat_rotated = to_frame(rotated, rotation_frames(rotated))
    tol = 1e-4 if dtype == torch.float32 else 1e-11
    torch.testing.assert_close(hat_rotated, hat, atol=tol * scale, rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_from_frame_round_trip_and_meaning(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    R = rotation_frames(torch.randn(4, 5, 7, 3, generator=g, dtype=dtype))
    v = torch.randn(4, 5, 9, 3, generator=g, dtype=dtype)
    hat = to_frame(v, R)
    torch.testing.assert_close(hat, torch.einsum("...ij,...nj->...ni", R, v))  # v̂ = R v
    tol = ORTHO_TOL[dtype]
    torch.testing.assert_close(from_frame(hat, R), v, atol=10 * tol, rtol=0)


def test_vectorised_equals_one_window_at_a_time() -> None:
    g = torch.Generator().manual_seed(1)
    windows_ = torch.randn(3, 4, 5, 3, generator=g, dtype=torch.float64)
    windows_[0, 0] = 0.0
    windows_[1, 2, -1] = 0.0
    windows_[2, 1, -2] = -3.0 * windows_[2, 1, -1]
    batched = rotation_frames(windows_)
    for i in range(3):
        for j in range(4):
            torch.testing.assert_close(
                batched[i, j], rotation_frames(windows_[i, j]), rtol=0, atol=1e-15
            )


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_zero_window_gives_identity(dtype: torch.dtype) -> None:
    R = rotation_frames(torch.zeros(2, 6, 3, dtype=dtype))
    assert torch.equal(R, torch.eye(3, dtype=dtype).expand(2, 3, 3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [0.0, 1e-30])
def test_vanishing_last_value_falls_back_to_x_axis(dtype: torch.dtype, size: float) -> None:
    window = torch.tensor([[0.3, -1.2, 2.0], [0.7, 0.4, -0.9], [size, 0.0, 0.0]], dtype=dtype)
    R = rotation_frames(window)
    _assert_orthonormal(R)
    assert torch.equal(R[0], torch.tensor([1.0, 0.0, 0.0], dtype=dtype))
    z2 = window[-2]
    assert abs(float(z2 @ R[2])) <= 10 * ORTHO_TOL[dtype]  # z2 still spans e1-e2
    assert float(z2 @ R[1]) > 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factor", [-2.5, 0.0, 1.0])
def test_collinear_second_value_uses_least_aligned_axis(dtype: torch.dtype, factor: float) -> None:
    z1 = torch.tensor([3.0, 1.0, 0.5], dtype=dtype)
    window = torch.stack((torch.tensor([0.2, 0.1, -0.4], dtype=dtype), factor * z1, z1))
    R = rotation_frames(window)
    _assert_orthonormal(R)
    e1 = z1 / z1.norm()
    torch.testing.assert_close(R[0], e1)
    axis = torch.tensor([0.0, 0.0, 1.0], dtype=dtype)  # smallest |component| of z1
    expected = axis - (axis @ e1) * e1
    torch.testing.assert_close(R[1], expected / expected.norm())


@pytest.mark.parametrize(("dtype", "offset"), [(torch.float32, 1e-3), (torch.float64, 1e-7)])
def test_nearly_collinear_window_stays_orthonormal(dtype: torch.dtype, offset: float) -> None:
    """Just above the collinearity threshold one Gram-Schmidt pass would lose orthogonality."""
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(200, 3, generator=g, dtype=torch.float64)
    z2 = 1.7 * z1 + offset * torch.randn(200, 3, generator=g, dtype=torch.float64)
    window = torch.stack((torch.randn(200, 3, generator=g, dtype=torch.float64), z2, z1), dim=-2)
    _assert_orthonormal(rotation_frames(window.to(dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_third_value_in_plane_keeps_right_handed_frame(dtype: torch.dtype) -> None:
    for z3 in ([3.0, -2.0, 0.0], [0.0, 0.0, 0.0]):
        window = torch.tensor([z3, [1.0, 1.0, 0.0], [2.0, 0.0, 0.0]], dtype=dtype)
        R = rotation_frames(window)
        _assert_orthonormal(R)
        assert torch.equal(R[2], torch.tensor([0.0, 0.0, 1.0], dtype=dtype))
        assert float(torch.linalg.det(R)) > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_third_value_below_plane_gives_reflection(dtype: torch.dtype) -> None:
    window = torch.tensor([[0.5, 0.2, -1.0], [1.0, 1.0, 0.0], [2.0, 0.0, 0.0]], dtype=dtype)
    R = rotation_frames(window)
    assert torch.equal(R[2], torch.tensor([0.0, 0.0, -1.0], dtype=dtype))
    assert float(window[0] @ R[2]) > 0


@pytest.mark.parametrize(
    "shape", [(5,), (4, 2), (2, 3), (7, 4, 3, 2)], ids=["1d", "two-components", "m=2", "last=2"]
)
def test_bad_window_shapes_are_rejected(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., m, 3\)"):
        rotation_frames(torch.zeros(shape))


def test_integer_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="floating point"):
        rotation_frames(torch.zeros(4, 3, dtype=torch.int64))


def test_bad_shapes_in_to_and_from_frame_are_rejected() -> None:
    R = torch.eye(3).expand(2, 3, 3)
    with pytest.raises(ValueError, match=r"vectors must have shape \(\.\.\., n, 3\)"):
        to_frame(torch.zeros(2, 4, 2), R)
    with pytest.raises(ValueError, match=r"R must have shape \(\.\.\., 3, 3\)"):
        from_frame(torch.zeros(2, 4, 3), torch.zeros(2, 3, 2))
