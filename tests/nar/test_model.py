"""Batched per-mode networks, the LDLᵀ Gaussian head, its NLL and sampling (Secs. 3.1-3.4)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group
from torch import nn
from torch.distributions import MultivariateNormal

from mlgle.nar import model as model_module
from mlgle.nar.frames import from_frame, rotation_frames, to_frame
from mlgle.nar.model import (
    ACTIVATIONS,
    FrozenNetworks,
    GaussianParams,
    ModeNetworks,
    backend_timings,
    covariance,
    gaussian_nll,
    onednn_available,
    sample_increment,
)

SMALL = {"history": 6, "hidden": (16, 8), "latent": 5}


def _lower_matrix(lower: torch.Tensor) -> torch.Tensor:
    """Unit lower-triangular L from (l21, l31, l32), built entry by entry."""
    one, zero = torch.ones_like(lower[..., 0]), torch.zeros_like(lower[..., 0])
    l21, l31, l32 = lower.unbind(-1)
    rows = [
        torch.stack((one, zero, zero), -1),
        torch.stack((l21, one, zero), -1),
        torch.stack((l31, l32, one), -1),
    ]
    return torch.stack(rows, -2)


def _random_params(
    modes: int, batch: int, dtype: torch.dtype, seed: int, log_d_range: float = 3.0
) -> GaussianParams:
    g = torch.Generator().manual_seed(seed)
    return GaussianParams(
        mean=torch.randn(modes, batch, 3, generator=g, dtype=dtype),
        lower=torch.randn(modes, batch, 3, generator=g, dtype=dtype),
        log_d=log_d_range * (2 * torch.rand(modes, batch, 3, generator=g, dtype=dtype) - 1),
    )


# --- the batched network ------------------------------------------------------------------------


def test_output_shapes_and_dtypes() -> None:
    net = ModeNetworks(3, **SMALL)
    out = net(torch.randn(3, 10, 18))
    assert isinstance(out, GaussianParams)
    assert [t.shape for t in out] == [(3, 10, 3)] * 3
    assert all(t.dtype == torch.float32 for t in out)
    out64 = net.double()(torch.randn(3, 10, 18, dtype=torch.float64))
    assert all(t.dtype == torch.float64 for t in out64)


def test_parameters_are_stacked_over_modes() -> None:
    net = ModeNetworks(4, history=6, hidden=(16, 8), latent=5)
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters()}
    assert shapes == {
        "weights.0": (4, 18, 16),
        "weights.1": (4, 16, 8),
        "weights.2": (4, 8, 5),
        "biases.0": (4, 1, 16),
        "biases.1": (4, 1, 8),
        "biases.2": (4, 1, 5),
        "head_weight": (4, 5, 9),
        "head_bias": (4, 1, 9),
    }


def test_config_round_trip() -> None:
    net = ModeNetworks(
        2, history=5, hidden=(7,), latent=3, activation="gelu", dropout=0.1, seeds=[11, 4]
    )
    cfg = json.loads(json.dumps(net.config()))
    assert cfg == net.config()
    rebuilt = ModeNetworks(**cfg)
    assert (rebuilt.modes, rebuilt.history) == (2, 5)
    for (name, a), (name_b, b) in zip(
        net.named_parameters(), rebuilt.named_parameters(), strict=True
    ):
        assert name == name_b
        assert torch.equal(a, b)  # same shapes, and the seeds make the same values


def _reference_mode(seed: int, act: nn.Module) -> tuple[nn.Sequential, nn.Linear, nn.Linear]:
    """The paper's per-mode MLP from nn.Linear layers, initialised from the global seed."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the global generator replays what Generator(seed) gives
        body = nn.Sequential(nn.Linear(18, 16), act, nn.Linear(16, 8), act, nn.Linear(8, 5), act)
        mean_head, ldl_head = nn.Linear(5, 3), nn.Linear(5, 6)
    return body.double(), mean_head.double(), ldl_head.double()


def _stacked_like_mode_networks(
    body: nn.Sequential, mean_head: nn.Linear, ldl_head: nn.Linear
) -> dict[str, torch.Tensor]:
    """Reference parameters (or their gradients) named and laid out as in ModeNetworks."""
    linears = [m for m in body if isinstance(m, nn.Linear)]
    grad = linears[0].weight.grad is not None
    get = (lambda p: p.grad) if grad else (lambda p: p.detach())
    out = {f"weights.{i}": get(lin.weight).T for i, lin in enumerate(linears)}
    out |= {f"biases.{i}": get(lin.bias)[None] for i, lin in enumerate(linears)}
    out["head_weight"] = torch.cat((get(mean_head.weight), get(ldl_head.weight))).T
    out["head_bias"] = torch.cat((get(mean_head.bias), get(ldl_head.bias)))[None]
    return out


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_mode_equals_nn_linear_reference(activation: str) -> None:
    """Mode j is the MLP nn.Linear layers build from seed S[j]: init, outputs and gradients."""
    seeds = [5, 123]
    net = ModeNetworks(2, **SMALL, activation=activation, seeds=seeds).double()
    g = torch.Generator().manual_seed(12)
    x = torch.randn(2, 7, 18, generator=g, dtype=torch.float64)
    weights = torch.randn(3, 2, 7, 3, generator=g, dtype=torch.float64)
    out = net(x)
    sum(((w * o).sum() for w, o in zip(weights, out, strict=True))).backward()
    act = {
        "relu": nn.ReLU(),
        "gelu": nn.GELU(),
        "tanh": nn.Tanh(),
        "silu": nn.SiLU(),
        "elu": nn.ELU(),
    }[activation]
    for j, seed in enumerate(seeds):
        body, mean_head, ldl_head = _reference_mode(seed, act)
        ours = dict(net.named_parameters())
        reference_params = _stacked_like_mode_networks(body, mean_head, ldl_head)
        assert ours.keys() == reference_params.keys()
        for name, b in reference_params.items():
            assert torch.equal(ours[name].detach()[j], b)
        latent = body(x[j])
        mean, ldl = mean_head(latent), ldl_head(latent)
        reference = (mean, ldl[:, :3], ldl[:, 3:])
        for o, r in zip(out, reference, strict=True):
            torch.testing.assert_close(o[j], r)
        sum(((w[j] * r).sum() for w, r in zip(weights, reference, strict=True))).backward()
        for name, b in _stacked_like_mode_networks(body, mean_head, ldl_head).items():
            torch.testing.assert_close(ours[name].grad[j], b)


def test_default_seeds_are_mode_indices() -> None:
    assert ModeNetworks(3, **SMALL).config()["seeds"] == [0, 1, 2]
    a, b = ModeNetworks(3, **SMALL), ModeNetworks(1, **SMALL, seeds=[2])
    assert torch.equal(a.weights[0][2:], b.weights[0])


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_batched_equals_separate(dtype: torch.dtype, tol: float) -> None:
    """Mode j of ModeNetworks(k, seeds=S) == ModeNetworks(1, seeds=[S[j]]): outputs and gradients.

    Parameters agree bit for bit; outputs to rounding (float32 bmm may pick a different kernel
    for one matrix than for k, which reorders sums).
    """
    seeds = [3, 7, 11, 5]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 10, 18, generator=g, dtype=dtype)
    target = torch.randn(4, 10, 3, generator=g, dtype=dtype)
    batched = ModeNetworks(4, **SMALL, activation="tanh", seeds=seeds).to(dtype)
    out = batched(x)
    gaussian_nll(out, target).mean(1).sum().backward()
    for j, seed in enumerate(seeds):
        single = ModeNetworks(1, **SMALL, activation="tanh", seeds=[seed]).to(dtype)
        out_j = single(x[j : j + 1])
        gaussian_nll(out_j, target[j : j + 1]).mean(1).sum().backward()
        for a, b in zip(out, out_j, strict=True):
            torch.testing.assert_close(a[j : j + 1], b, atol=tol, rtol=tol)
        for p, q in zip(batched.parameters(), single.parameters(), strict=True):
            assert torch.equal(p.detach()[j : j + 1], q.detach())
            torch.testing.assert_close(p.grad[j : j + 1], q.grad, atol=tol, rtol=tol)


def test_dropout_follows_train_and_eval_mode() -> None:
    x = torch.randn(2, 50, 18)
    plain = ModeNetworks(2, **SMALL)(x)
    net = ModeNetworks(2, **SMALL, dropout=0.5)
    net.eval()
    assert all(torch.equal(a, b) for a, b in zip(net(x), plain, strict=True))
    net.train()
    torch.manual_seed(0)
    first = net(x).mean
    second = net(x).mean
    assert not torch.allclose(first, plain.mean)
    assert not torch.allclose(first, second)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((2, 10, 18), torch.float32),
        ((3, 10, 15), torch.float32),
        ((3, 18), torch.float32),
        ((3, 10, 18), torch.float64),
    ],
    ids=["modes", "history", "2d", "dtype"],
)
def test_forward_rejects_wrong_input(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    net = ModeNetworks(3, **SMALL)
    expected = (
        "dtype torch.float32" if dtype == torch.float64 else r"\(modes=3, batch, 3\*history=18\)"
    )
    with pytest.raises(ValueError, match=expected):
        net(torch.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "swish"}, r"activation must be one of \['elu', 'gelu'"),
        ({"seeds": [1, 2]}, "seeds must hold 3 entries"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"hidden": ()}, "hidden must list positive widths"),
        ({"history": 2}, "history must be >= 3"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"modes": 3, **SMALL, **kwargs}
    with pytest.raises(ValueError, match=match):
        ModeNetworks(**args)


# --- the whole predictor: frames + network ------------------------------------------------------


def _predict(net: ModeNetworks, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the increment in the window's own axes (Eqs. 18-19, 22, 24)."""
    R = rotation_frames(window)  # (modes, batch, 3, 3)
    x = to_frame(window, R).reshape(net.modes, window.shape[1], 3 * net.history)
    params = net(x)
    mean = from_frame(params.mean.unsqueeze(-2), R).squeeze(-2)
    return mean, R.transpose(-1, -2) @ covariance(params) @ R


@settings(max_examples=15, deadline=None, derandomize=True)
@given(q_seed=st.integers(0, 2**32 - 1), reflect=st.booleans())
def test_predictor_is_equivariant(q_seed: int, reflect: bool) -> None:
    """Window -> Q·window maps μ -> Q μ and Σ -> Q Σ Qᵀ (Eq. 17), for rotations and reflections."""
    q = ortho_group.rvs(3, random_state=q_seed)
    if (np.linalg.det(q) < 0) != reflect:
        q[0] = -q[0]
    Q = torch.as_tensor(q)
    net = ModeNetworks(2, **SMALL, activation="silu").double()
    window = torch.randn(
        2, 9, 6, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    mean, cov = _predict(net, window)
    mean_q, cov_q = _predict(net, window @ Q.T)
    torch.testing.assert_close(mean_q, mean @ Q.T, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(cov_q, Q @ cov @ Q.T, atol=1e-10, rtol=1e-10)
    # Control: the same network fed the unrotated window is not equivariant.
    raw = net(window.reshape(2, 9, 18)).mean
    raw_q = net((window @ Q.T).reshape(2, 9, 18)).mean
    assert (raw_q - raw @ Q.T).abs().max() > 1e-3


# --- NLL (Eq. 21) -------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_nll_matches_torch_distributions(dtype: torch.dtype, tol: float) -> None:
    params = _random_params(3, 40, dtype, seed=1)
    target = 2 * torch.randn(3, 40, 3, generator=torch.Generator().manual_seed(2), dtype=dtype)
    scale_tril = _lower_matrix(params.lower) * torch.exp(0.5 * params.log_d).unsqueeze(-2)
    reference = -MultivariateNormal(params.mean, scale_tril=scale_tril).log_prob(target)
    nll = gaussian_nll(params, target)
    assert nll.shape == (3, 40)
    torch.testing.assert_close(nll, reference, atol=tol, rtol=tol)


def test_nll_is_accurate_and_differentiable_for_tiny_d_and_large_residuals() -> None:
    p64 = _random_params(2, 8, torch.float64, seed=3)
    p64 = p64._replace(log_d=torch.full_like(p64.log_d, -30.0))
    target = p64.mean + 1e3 * torch.randn(
        2, 8, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    scale_tril = _lower_matrix(p64.lower) * math.exp(-15.0)
    reference = -MultivariateNormal(p64.mean, scale_tril=scale_tril).log_prob(target)
    torch.testing.assert_close(gaussian_nll(p64, target), reference, rtol=1e-10, atol=0)

    leaves = [t.float().requires_grad_() for t in p64]
    nll = gaussian_nll(GaussianParams(*leaves), target.float())
    assert torch.isfinite(nll).all()
    nll.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in leaves)


def _fit_gaussian(samples: torch.Tensor, loss_fn) -> GaussianParams:
    """Free mean, lower and log_d shared by all samples (1, n, 3), fitted by L-BFGS."""
    free = [torch.zeros(1, 1, 3, dtype=samples.dtype, requires_grad=True) for _ in range(3)]
    opt = torch.optim.LBFGS(
        free,
        max_iter=200,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        params = GaussianParams(*(t.expand_as(samples) for t in free))
        loss = loss_fn(params, samples).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return GaussianParams(*(t.detach()[0, 0] for t in free))


def _nll_with_published_bug(params: GaussianParams, target: torch.Tensor) -> torch.Tensor:
    """The published code's loss: Σ exp(log d) in place of Σ log d."""
    return gaussian_nll(params, target) - 0.5 * (params.log_d - params.log_d.exp()).sum(-1)


def test_minimising_nll_learns_the_variance_not_the_standard_deviation() -> None:
    """N(0, s² I) samples, s = 0.3: exp(log d) -> s² = 0.09 (the Σ exp(e) bug gives s = 0.3).

    The fitted d is the per-component sample variance, whose standard error is s² √(2/n) =
    1.3e-3 for n = 10 000; we allow 5 standard errors (6.4e-3), far from |s - s²| = 0.21.
    """
    s, n = 0.3, 10_000
    samples = s * torch.randn(
        1, n, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    fitted = _fit_gaussian(samples, gaussian_nll)
    tol = 5 * s**2 * math.sqrt(2 / n)
    np.testing.assert_allclose(fitted.log_d.exp().numpy(), s**2, atol=tol)
    # The MLE exactly: sample mean and the LDLᵀ factors of the (biased) sample covariance.
    centred = samples[0] - samples[0].mean(0)
    chol = torch.linalg.cholesky(centred.T @ centred / n)
    lower = chol / chol.diagonal()
    torch.testing.assert_close(fitted.mean, samples[0].mean(0), atol=1e-7, rtol=0)
    torch.testing.assert_close(fitted.log_d.exp(), chol.diagonal() ** 2, atol=1e-7, rtol=0)
    torch.testing.assert_close(fitted.lower, lower[[1, 2, 2], [0, 0, 1]], atol=1e-6, rtol=0)
    # Control: the published loss converges to the standard deviation, so this test can tell.
    buggy = _fit_gaussian(samples, _nll_with_published_bug)
    np.testing.assert_allclose(buggy.log_d.exp().numpy(), s, atol=0.01)


# --- covariance and sampling (Eqs. 22-23) ---------------------------------------------------------


def test_covariance_is_ldlt() -> None:
    params = _random_params(2, 5, torch.float64, seed=6)
    L = _lower_matrix(params.lower)
    expected = L @ torch.diag_embed(params.log_d.exp()) @ L.transpose(-1, -2)
    cov = covariance(params)
    torch.testing.assert_close(cov, expected)
    assert (torch.linalg.eigvalsh(cov) > 0).all()


def test_sample_increment_is_mean_plus_scale_times_eps() -> None:
    params = _random_params(3, 20, torch.float64, seed=7)
    eps = torch.randn(3, 20, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    scale_tril = _lower_matrix(params.lower) * torch.exp(0.5 * params.log_d).unsqueeze(-2)
    expected = params.mean + (scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(sample_increment(params, eps), expected, atol=1e-12, rtol=0)
    assert torch.equal(sample_increment(params, torch.zeros_like(eps)), params.mean)


def test_sample_covariance_matches_ldlt() -> None:
    """Empirical mean and covariance of n = 200 000 draws agree with μ and L D Lᵀ.

    Standard errors: √(Σ_ii / n) for means and √((Σ_ii Σ_jj + Σ_ij²) / n) for covariances
    (Gaussian fourth moments); 5 standard errors for each of the 18 checked numbers.
    """
    n = 200_000
    base = _random_params(2, 1, torch.float64, seed=9, log_d_range=1.0)
    params = GaussianParams(*(t.expand(2, n, 3) for t in base))
    eps = torch.randn(2, n, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    draws = sample_increment(params, eps)
    sigma = covariance(base)[:, 0]  # (2, 3, 3)
    mean = draws.mean(1)
    centred = draws - mean.unsqueeze(1)
    empirical = centred.transpose(1, 2) @ centred / (n - 1)
    var = sigma.diagonal(dim1=-2, dim2=-1)
    se_cov = torch.sqrt((var.unsqueeze(-1) * var.unsqueeze(-2) + sigma**2) / n)
    assert ((mean - base.mean[:, 0]).abs() <= 5 * torch.sqrt(var / n)).all()
    assert ((empirical - sigma).abs() <= 5 * se_cov).all()


def test_nll_and_sampling_reject_mismatched_shapes() -> None:
    params = _random_params(2, 5, torch.float32, seed=11)
    with pytest.raises(
        ValueError, match=r"target must have shape \(modes, batch, 3\) = \(2, 5, 3\)"
    ):
        gaussian_nll(params, torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match=r"eps must have shape \(modes, batch, 3\) = \(2, 5, 3\)"):
        sample_increment(params, torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"params\.lower and params\.log_d must have shape"):
        covariance(params._replace(lower=torch.zeros(2, 5, 2)))


# --- FrozenNetworks: the generation loop's inference copy ---------------------------------------

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="torch without oneDNN")


def _frozen_case(activation: str, dtype: torch.dtype, batch: int = 7):
    model = ModeNetworks(3, **SMALL, activation=activation, dropout=0.3, seeds=[4, 5, 6])
    model = model.to(dtype)
    x = torch.randn(3, batch, 18, generator=torch.Generator().manual_seed(1), dtype=dtype)
    with torch.no_grad():
        expected = model.eval()(x)
    return model.train(), x, expected


@pytest.mark.parametrize("backend", ["torch", pytest.param("onednn", marks=needs_onednn)])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_frozen_networks_equal_the_eval_forward(backend: str, activation: str) -> None:
    # Same outputs as forward in eval mode (dropout off although the model is in train mode),
    # to float32 rounding (oneDNN and MKL order their sums differently); the mode is kept.
    model, x, expected = _frozen_case(activation, torch.float32)
    frozen = FrozenNetworks(model, 7, backend=backend)
    assert frozen.backend == backend
    with torch.no_grad():
        out = frozen(x)
    for a, b in zip(out, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert model.training


def test_frozen_networks_float64_use_the_model_exactly() -> None:
    model, x, expected = _frozen_case("relu", torch.float64, batch=64)
    frozen = FrozenNetworks(model, 64)
    assert frozen.backend == "torch"
    for a, b in zip(frozen(x), expected, strict=True):
        assert torch.equal(a, b)


@needs_onednn
@pytest.mark.parametrize("faster", ["onednn", "torch"])
def test_frozen_networks_auto_takes_the_backend_measured_faster(monkeypatch, faster) -> None:
    model = ModeNetworks(2, **SMALL)
    timings = {"onednn": 2.0, "torch": 2.0, faster: 1.0}
    monkeypatch.setattr(model_module, "backend_timings", lambda m, batch: dict(timings))
    assert FrozenNetworks(model, 8).backend == faster


@needs_onednn
def test_backend_timings_measure_both_backends_once_per_shape_and_threads(monkeypatch) -> None:
    model = ModeNetworks(2, **SMALL)
    monkeypatch.setattr(model_module, "_TIMINGS", {})
    first = backend_timings(model, 6)
    assert set(first) == {"onednn", "torch"} and all(0 < t < 10 for t in first.values())
    assert backend_timings(model, 6) == first  # cached: the same figures, not a new probe
    assert len(model_module._TIMINGS) == 1
    backend_timings(model, 7)  # another batch is another shape
    assert len(model_module._TIMINGS) == 2
    with pytest.raises(ValueError, match="onednn_eligible"):
        backend_timings(model.double(), 6)


def test_frozen_networks_auto_without_onednn_eligibility_is_torch() -> None:
    model = ModeNetworks(2, **SMALL).double()  # float64: oneDNN's path is float32 only
    assert FrozenNetworks(model, 64).backend == "torch"


def test_frozen_networks_reject_bad_use() -> None:
    model = ModeNetworks(2, **SMALL)
    with pytest.raises(ValueError, match="backend must be auto, onednn or torch"):
        FrozenNetworks(model, 4, backend="mkl")
    with pytest.raises(ValueError, match=r"'onednn' needs ModeNetworks \(MLP\) with float32"):
        FrozenNetworks(model.double(), 4, backend="onednn")
    frozen = FrozenNetworks(model.float(), 4)
    with pytest.raises(ValueError, match=r"x must have shape \(modes=2, batch=4, 3\*history=18\)"):
        frozen(torch.zeros(2, 5, 18))
    with pytest.raises(ValueError, match=r"dtype torch\.float32"):
        frozen(torch.zeros(2, 4, 18, dtype=torch.float64))
