"""The generative model of the 2D classification as a Pyro model."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

__all__ = ["classify2d_model"]


def classify2d_model(counts, rotated_averages, fluence, class_prior=None):
    """The generative model of :func:`classify2d` as a Pyro model.

    Parameters
    ----------
    counts : torch.Tensor
        ``(N, P)`` photon counts on the used pixels.
    rotated_averages : torch.Tensor
        ``(K, R, P)`` class averages rotated by every enumerated angle, on the
        same pixels (positive).
    fluence : torch.Tensor
        ``(N,)`` fluence scales.
    class_prior : torch.Tensor, optional
        ``(K,)`` class weights; default uniform.

    Notes
    -----
    Sites: ``"class"`` (``Categorical(K)``) and ``"rotation"``
    (``Categorical(R)``), both marked for parallel enumeration, and the
    observed ``"frames"`` (``Poisson``). ``TraceEnum_ELBO`` sums the latents
    exactly; ``pyro.infer.infer_discrete`` or
    ``TraceEnum_ELBO.compute_marginals`` give the same posterior as the E-step
    of :func:`classify2d`.
    """
    k, r, _ = rotated_averages.shape
    if class_prior is None:
        class_prior = torch.full((k,), 1.0 / k, device=counts.device)
    with pyro.plate("frames_plate", counts.shape[0]):
        c = pyro.sample("class", dist.Categorical(class_prior), infer={"enumerate": "parallel"})
        rot = pyro.sample(
            "rotation",
            dist.Categorical(torch.full((r,), 1.0 / r, device=counts.device)),
            infer={"enumerate": "parallel"},
        )
        rate = fluence.unsqueeze(-1) * rotated_averages[c, rot]
        pyro.sample("frames", dist.Poisson(rate).to_event(1), obs=counts)
