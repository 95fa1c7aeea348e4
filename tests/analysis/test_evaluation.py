"""Tests of mlgle.analysis.evaluation: the evaluation read from memory-mapped files in small
frame blocks equals the evaluation of the same arrays in memory, and its block-wise pieces
equal their direct formulas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mlgle.blockio
from mlgle import stats
from mlgle.analysis.evaluation import (
    PDF_SAMPLES,
    _increments,
    _places,
    com_msd,
    evaluate,
    mode_correlation,
)
from mlgle.gle import GLEModel


def _walks(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.standard_normal(shape), axis=0) * 0.01).astype(np.float32)


@pytest.fixture
def ensembles(tmp_path):
    """MD modes (600, 6, 5, 3) with the C.o.M at index 0, generated modes (700, 7, 4, 3) and
    C.o.M (700, 7, 3), float32 as the stores hold them, in memory and memory-mapped."""
    arrays = {"md": _walks((600, 6, 5, 3), 0), "gen": _walks((700, 7, 4, 3), 1)}
    arrays["com"] = _walks((700, 7, 3), 2)
    mapped = {}
    for name, value in arrays.items():
        np.save(tmp_path / f"{name}.npy", value)
        mapped[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    return arrays, mapped


GLE = GLEModel(alpha=0.1, beta=0.5, dt=0.2, points=(1, 8, 16), k=4)


def _evaluate(md, gen, com):
    return evaluate(md, gen, com, GLE, 0.2, 1.0, (50, 400), 100, 0.99, 7)


def test_memory_mapped_in_small_blocks_equals_in_memory(ensembles, monkeypatch):
    arrays, mapped = ensembles
    plain_data, plain = _evaluate(arrays["md"].astype(np.float64), arrays["gen"], arrays["com"])
    monkeypatch.setattr(mlgle.blockio, "BLOCK_BYTES", 1000)  # ~2-4 frames per block
    assert len(list(mlgle.blockio.frame_blocks(mapped["gen"]))) >= 100
    data, summary = _evaluate(mapped["md"], mapped["gen"], mapped["com"])
    # Sums over frames are taken block by block: equal to float round-off, not bitwise.
    assert summary.keys() == plain.keys()
    for key, value in plain.items():
        if isinstance(value, str):
            assert summary[key] == value, key
        else:
            np.testing.assert_allclose(summary[key], value, rtol=1e-12, atol=0, err_msg=key)
    for field in dataclasses.fields(data):
        np.testing.assert_allclose(
            getattr(data, field.name), getattr(plain_data, field.name), rtol=1e-12, atol=0
        )


def test_block_wise_pieces_equal_their_direct_formulas(ensembles, monkeypatch):
    arrays, mapped = ensembles
    monkeypatch.setattr(mlgle.blockio, "BLOCK_BYTES", 1000)
    data, summary = _evaluate(mapped["md"], mapped["gen"], mapped["com"])
    md = arrays["md"].astype(np.float64)[:, :, 1:]
    gen = arrays["gen"].astype(np.float64)
    rms = [np.sqrt((np.diff(x, axis=0) ** 2).mean(axis=(0, 1, 3))) for x in (md, gen)]
    np.testing.assert_allclose(summary["dz_rms_ratio_per_mode"], rms[1] / rms[0], rtol=1e-12)
    cov = np.einsum("tcid,tcjd->ij", md, md)
    direct = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(data.corr_md, direct, rtol=1e-12)
    np.testing.assert_allclose(mode_correlation(mapped["md"], 1, 4), direct, rtol=1e-12)
    # 700 x 7 x 3 < PDF_SAMPLES: the samples are all values of the mode, each over the mode's
    # RMS, in a random order; the increments likewise.
    assert gen[:, :, 0].size < PDF_SAMPLES and data.z_gen.shape == (4, gen[:, :, 0].size)
    for j in range(4):
        values = gen[:, :, j].ravel() / np.sqrt((gen[:, :, j] ** 2).mean())
        np.testing.assert_allclose(np.sort(data.z_gen[j]), np.sort(values), rtol=1e-12)
        steps = np.diff(gen[:, :, j], axis=0).ravel() / rms[1][j]
        np.testing.assert_allclose(np.sort(data.dz_gen[j]), np.sort(steps), rtol=1e-12)


@pytest.mark.parametrize("chains", [1, 3, 7, 64])
def test_com_msd_in_chain_blocks_equals_the_whole_ensemble(ensembles, monkeypatch, chains):
    arrays, mapped = ensembles
    monkeypatch.setattr(mlgle.blockio, "BLOCK_BYTES", 1000)
    per_chain = stats.msd_per_trajectory(arrays["com"])
    msd, d = com_msd(mapped["com"], 0.2, (50, 400), chains=chains)
    assert d == stats.diffusion_coefficient(per_chain, 0.2, 50, 400)  # bitwise, CI included
    np.testing.assert_allclose(msd, per_chain.mean(axis=1), rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="t2 = 700"):
        com_msd(mapped["com"], 0.2, (50, 700))


def test_increments_read_in_blocks_equal_direct_indexing(ensembles, monkeypatch):
    arrays, mapped = ensembles
    monkeypatch.setattr(mlgle.blockio, "BLOCK_BYTES", 1000)
    com = arrays["com"]
    t, c, a = _places(com.shape[0] - 1, com.shape[1], np.random.default_rng(3))
    direct = com[t + 1, c, a].astype(np.float64) - com[t, c, a]
    np.testing.assert_array_equal(_increments(mapped["com"], np.random.default_rng(3)), direct)
