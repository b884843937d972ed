"""PixelBernoulli: the same density and gradients as a clamped Bernoulli, in one pass."""

import pyro.distributions as dist
import pytest
import torch

from pyrolatent.distributions import pixel_bernoulli
from pyrolatent.distributions.pixel_bernoulli import PixelBernoulli


def _mean_and_pixels(seed=0):
    gen = torch.Generator().manual_seed(seed)
    # some means outside [eps, 1 - eps] (exact zeros, as a zero-padded warp gives)
    mean = torch.rand(4, 5, 6, 7, generator=gen) * 1.2 - 0.1
    return mean.clamp(0, 1).requires_grad_(), torch.rand(5, 6, 7, generator=gen)


def test_log_prob_and_gradient_equal_the_clamped_bernoulli():
    mean, x = _mean_and_pixels()
    ref = dist.Bernoulli(probs=mean.clamp(1e-6, 1 - 1e-6), validate_args=False)
    ref = ref.to_event(2).log_prob(x)
    got = PixelBernoulli(mean, eps=1e-6).log_prob(x)
    assert got.shape == (4, 5)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-3)
    (g_ref,) = torch.autograd.grad(ref.sum(), mean)
    (g_got,) = torch.autograd.grad(got.sum(), mean)
    assert torch.allclose(g_got, g_ref, rtol=1e-4, atol=1e-3)
    assert float(g_got[mean.detach() == 0].abs().max()) == 0.0  # clamped: no gradient


def test_gradcheck_in_both_arguments():
    gen = torch.Generator().manual_seed(1)
    mean = (torch.rand(2, 3, 3, generator=gen, dtype=torch.double) * 0.8 + 0.1).requires_grad_()
    x = torch.rand(3, 3, generator=gen, dtype=torch.double).requires_grad_()
    assert torch.autograd.gradcheck(lambda m, v: PixelBernoulli(m).log_prob(v), (mean, x))


def test_shapes_expand_and_sample():
    d = PixelBernoulli(torch.full((1, 6, 7), 0.3))
    assert d.batch_shape == (1,) and d.event_shape == (6, 7)
    e = d.expand((5,))
    assert isinstance(e, PixelBernoulli) and e.batch_shape == (5,)
    s = e.sample((2,))
    assert s.shape == (2, 5, 6, 7) and set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(e.mean, torch.full((5, 6, 7), 0.3))
    with pytest.raises(ValueError, match="H, W"):
        PixelBernoulli(torch.rand(4))


@pytest.mark.parametrize(
    "mean_shape, x_shape",
    [
        ((8, 100, 32, 32), (100, 32, 32)),  # K poses of every item: done in blocks
        ((8, 1, 100, 32, 32), (100, 32, 32)),
        ((8, 100, 32, 32), (8, 100, 32, 32)),
        ((1, 100, 32, 32), (8, 100, 32, 32)),  # value wider than the mean: one pass
        ((100, 32, 32), (3, 100, 32, 32)),
    ],
)
def test_blocks_and_broadcasting_match_the_clamped_bernoulli(mean_shape, x_shape):
    # more than 2 * 2^18 elements: the block path
    gen = torch.Generator().manual_seed(2)
    mean = torch.rand(mean_shape, generator=gen).requires_grad_()
    x = torch.rand(x_shape, generator=gen)
    ref = dist.Bernoulli(probs=mean.clamp(1e-6, 1 - 1e-6), validate_args=False)
    ref = ref.to_event(2).log_prob(x)
    got = PixelBernoulli(mean).log_prob(x)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-2)
    (g_ref,) = torch.autograd.grad(ref.sum(), mean)
    (g_got,) = torch.autograd.grad(got.sum(), mean)
    assert torch.allclose(g_got, g_ref, rtol=1e-4, atol=1e-4 * float(g_ref.abs().max()))


@pytest.mark.parametrize("x_shape", [(5, 6, 7), (4, 5, 6, 7)])
def test_images_with_zero_gradient_are_skipped_with_the_same_result(x_shape):
    """Most rows of an enumerated posterior's gradient are exact zeros (the live-row path);
    the gradient equals the dense path's (all rows weighted 1, then masked) bit for bit."""
    mean, _ = _mean_and_pixels(3)
    x = torch.rand(x_shape, generator=torch.Generator().manual_seed(4))
    weight = torch.zeros(4, 5)
    weight[[0, 2, 3], [1, 1, 4]] = torch.tensor([0.5, -2.0, 1e-30])
    (sparse,) = torch.autograd.grad(PixelBernoulli(mean).log_prob(x), mean, weight)
    (dense,) = torch.autograd.grad(PixelBernoulli(mean).log_prob(x), mean, torch.ones(4, 5))
    live = weight != 0
    assert torch.equal(sparse[live], dense[live] * weight[live][:, None, None])
    assert float(sparse[~live].abs().max()) == 0.0
    rows = []
    inner = pixel_bernoulli._grad_mean
    spy = lambda m, v, g, eps: rows.append(len(m)) or inner(m, v, g, eps)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pixel_bernoulli, "_grad_mean", spy)
        torch.autograd.grad(PixelBernoulli(mean).log_prob(x), mean, weight)
    assert rows == [3]  # the live rows only
    weight[1, 0] = float("nan")  # a NaN weight is passed on, not skipped
    (got,) = torch.autograd.grad(PixelBernoulli(mean).log_prob(x), mean, weight)
    assert bool(got[1, 0].isnan().any())
