"""Independent Bernoulli pixels, parameterised by probabilities, with a fused ``log_prob``."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.distributions import constraints

__all__ = ["PixelBernoulli"]


#: Elements per block of the fused log-density: blocks this small are recycled
#: by the allocator instead of being mapped afresh (page faults cost more than
#: the arithmetic on a large rendered batch).
_BLOCK = 1 << 18


def _log_density(mean, value, eps):
    p = mean.clamp(eps, 1 - eps)
    log_q = torch.neg(p).log1p_()
    if torch.broadcast_shapes(mean.shape, value.shape) != mean.shape:  # e.g. several samples
        return torch.lerp(log_q, p.log_(), value).sum((-2, -1))
    return log_q.lerp_(p.log_(), value).sum((-2, -1))  # (1 - x) log q + x log p


def _grad_mean(mean, value, grad, eps):
    # (x - p) / (p (1 - p)), zero where the clamp was active
    p = mean.clamp(eps, 1 - eps)
    g = torch.sub(value, p).div_(torch.addcmul(p, p, p, value=-1)).mul_(grad[..., None, None])
    return g.masked_fill_(p != mean, 0.0)


def _blocks(mean, value):
    """Slices of the leading dim of ``mean`` (with ``value``'s matching part), or None."""
    if mean.dim() < 3 or value.dim() > mean.dim() or mean.numel() <= 2 * _BLOCK:
        return None
    if torch.broadcast_shapes(mean.shape, value.shape)[0] != mean.shape[0]:
        return None
    step = max(1, _BLOCK // max(1, mean[0].numel()))
    own = value.dim() == mean.dim() and value.shape[0] == mean.shape[0] > 1
    return [(slice(i, i + step), own) for i in range(0, mean.shape[0], step)]


def _live_rows(mean, value, grad):
    """Indices of the images with a nonzero incoming gradient, when most have none (CPU).

    Under exact pose enumeration most rendered copies have a posterior weight,
    hence a gradient, of exactly zero (see :mod:`pyrolatent.primitives.copy_warp`);
    their pixel gradients are exact zeros and need no arithmetic. None when
    the dense path applies (GPU, a broadcast value wider than ``mean``, or
    more than half the images live).
    """
    if mean.device.type != "cpu" or grad.shape != mean.shape[:-2] or mean.dim() < 3:
        return None
    if torch.broadcast_shapes(mean.shape, value.shape) != mean.shape:
        return None
    live = grad != 0  # NaN counts as live
    if 2 * int(live.sum()) > live.numel():
        return None
    return live.nonzero(as_tuple=True)


class _BernoulliImageLogProb(torch.autograd.Function):
    """``sum_pixels [x log p + (1 - x) log(1 - p)]`` with ``p = clamp(m, eps, 1 - eps)``.

    One pass forward and one backward (``d/dm = (x - p) / (p (1 - p))`` inside
    the clamp, 0 outside) instead of autograd's chain of about a dozen
    elementwise operations, each a pass over every rendered pixel; a large
    batch (e.g. ``K`` poses of every item) is done in blocks of the leading dim,
    and images whose incoming gradient is zero are skipped (:func:`_live_rows`).
    """

    @staticmethod
    def forward(ctx, mean, value, eps):
        ctx.save_for_backward(mean, value)
        ctx.eps = eps
        blocks = _blocks(mean, value)
        if blocks is None:
            return _log_density(mean, value, eps)
        out = mean.new_empty(torch.broadcast_shapes(mean.shape, value.shape)[:-2])
        for rows, own in blocks:
            out[rows] = _log_density(mean[rows], value[rows] if own else value, eps)
        return out

    @staticmethod
    def backward(ctx, grad):
        mean, value = ctx.saved_tensors
        eps = ctx.eps
        grad_mean = grad_value = None
        if ctx.needs_input_grad[0]:
            blocks = _blocks(mean, value)
            live = _live_rows(mean, value, grad)
            if live is not None:
                grad_mean = torch.zeros_like(mean)
                value = value.expand(mean.shape)
                grad_mean[live] = _grad_mean(mean[live], value[live], grad[live], eps)
            elif blocks is None or grad.shape[:1] != mean.shape[:1]:
                grad_mean = _grad_mean(mean, value, grad, eps)
            else:
                grad_mean = torch.empty_like(mean)
                for rows, own in blocks:
                    v = value[rows] if own else value
                    grad_mean[rows] = _grad_mean(mean[rows], v, grad[rows], eps)
            grad_mean = grad_mean.sum_to_size(mean.shape)
        if ctx.needs_input_grad[1]:
            p = mean.clamp(eps, 1 - eps)
            grad_value = torch.log(p).sub_(torch.neg(p).log1p_()).mul_(grad[..., None, None])
            grad_value = grad_value.sum_to_size(value.shape)
        return grad_mean, grad_value, None


class PixelBernoulli(dist.TorchDistribution):
    """Independent Bernoulli pixels: batch ``probs.shape[:-2]``, event ``(H, W)``.

    The same log-density as ``Bernoulli(probs=p.clamp(eps, 1 - eps)).to_event(2)``,
    evaluated in one fused pass (the likelihood is evaluated once per
    enumerated pose, ``K`` rendered images per item, so its cost counts).
    Pixels may be intensities in ``[0, 1]`` (the continuous relaxation of the
    rVAE literature), so ``log_prob`` does not check that they are 0 or 1.

    Parameters
    ----------
    probs : torch.Tensor
        ``(..., H, W)`` pixel probabilities; values outside ``[eps, 1 - eps]``
        are clamped (zero gradient there).
    eps : float
        Clamp margin.
    """

    arg_constraints = {"probs": constraints.unit_interval}
    support = constraints.independent(constraints.unit_interval, 2)

    def __init__(self, probs: torch.Tensor, eps: float = 1e-6, validate_args=None):
        if probs.dim() < 2:
            raise ValueError(f"probs must have at least 2 dims (H, W), got {tuple(probs.shape)}")
        self.probs, self.eps = probs, float(eps)
        super().__init__(probs.shape[:-2], probs.shape[-2:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(PixelBernoulli, _instance)
        batch_shape = torch.Size(batch_shape)
        new.probs, new.eps = self.probs.expand(batch_shape + self.event_shape), self.eps
        super(PixelBernoulli, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> torch.Tensor:
        return self.probs

    @property
    def variance(self) -> torch.Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            return torch.bernoulli(self.probs.expand(shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return _BernoulliImageLogProb.apply(self.probs, value, self.eps)
