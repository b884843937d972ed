"""3D classification inside local EMC: class volumes, the first random split, the block E-step.

Used by :func:`pyrolatent.spi.emc.local_emc` with ``classes > 1``; with one
class :func:`block_posterior` is the plain local E-step.
"""

from __future__ import annotations

import math

import torch

from ...primitives.volumes import check_volume

__all__ = ["block_posterior", "class_volumes", "random_split"]


def class_volumes(volume, classes: int):
    """``(C, S, S, S)`` starting intensities, and whether they are copies of one."""
    volume = check_volume(volume, name="init volume").float()
    if volume.dim() == 3:
        return volume[None].repeat(classes, 1, 1, 1), classes > 1
    if volume.shape[0] != classes:
        raise ValueError(f"init: {volume.shape[0]} class volumes for classes={classes}")
    return volume, False


def block_posterior(counts, slices, scales, log_pi, beta: float, split=None):
    """Exact posterior over (class, candidate) for one block of frames.

    Parameters
    ----------
    counts : torch.Tensor
        ``(m, P)`` photon counts on the measured pixels.
    slices : torch.Tensor
        ``(m, C, K, P)`` expected counts at scale 1 of every class and candidate.
    scales : torch.Tensor
        ``(m,)`` the frames' scales from the last iteration.
    log_pi : torch.Tensor
        ``(C,)`` log class weights.
    beta : float
        Exponent of the class likelihood (annealing; 1 for one class).
    split : torch.Tensor, optional
        ``(m, C)`` class probabilities to use instead (the first, random split).

    Returns
    -------
    prob : torch.Tensor
        ``(m, C, K)`` posterior (sums to 1 per frame).
    phi : torch.Tensor
        ``(m,)`` the updated scales.
    marginal : torch.Tensor
        ``(m,)`` float64 log marginal likelihood (without ``log K!`` and ``log phi``
        terms), mixed over classes with a uniform prior over the ``K`` candidates.
    """
    m, c, k = slices.shape[:3]
    sums = slices.sum(-1)
    logs = torch.einsum("mp,mckp->mck", counts, slices.clamp_min(1e-12).log())
    prior = log_pi[None, :, None]
    prob = torch.softmax((logs - scales[:, None, None] * sums + prior).reshape(m, -1), 1)
    phi = counts.sum(1) / (prob.reshape(m, c, k) * sums).sum((1, 2)).clamp_min(1e-30)
    ll = logs - phi[:, None, None] * sums
    per_class = torch.logsumexp(ll, 2) - math.log(k)  # (m, C)
    marginal = torch.logsumexp(per_class.double() + log_pi[None].double(), 1)
    if split is None:
        split = torch.softmax(beta * per_class + log_pi[None], 1)
    return torch.softmax(ll, 2) * split[:, :, None], phi, marginal


def random_split(n: int, c: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, c)`` rows drawn from a flat Dirichlet (normalised exponentials)."""
    e = -torch.log(torch.rand(n, c, generator=generator).clamp_min(1e-12))
    return e / e.sum(1, keepdim=True)
