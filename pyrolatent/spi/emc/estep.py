"""The E-step of 3D EMC: Poisson log-likelihoods over an orientation grid, and the Pyro model.

Generative model of frame ``n`` (counts ``K_nt`` on the measured pixels ``t``)::

    orientation  r_n ~ Categorical(w)                       (the quaternion grid)
    K_nt         ~ Poisson(phi_n c_t I(R_{r_n} q_t))

with ``I`` the 3D intensity, ``phi_n`` a per-frame scale (fluence), ``c_t`` the
pixel correction and ``q_t`` the pixel's scattering vector. The orientation is
discrete, so its posterior is exact by enumeration:
``log P(r | K_n) = beta * log L_nr + log w_r + const`` with
``log L_nr = sum_t K_nt log(c_t I_rt) - phi_n sum_t c_t I_rt`` (dropping terms
without ``r``); ``beta <= 1`` is Dragonfly's deterministic annealing.
:func:`emc_model` writes the same model in Pyro, with the orientation marked for
parallel enumeration (``TraceEnum_ELBO`` sums it exactly); the tests check that
its posterior equals :func:`log_likelihood_block`'s.

Sparse frames make ``sum_t K_nt log I_rt`` a sparse-dense matrix product
``(N, P) x (P, R)``; orientations are processed in chunks of ``R_c`` so the
working memory is ``O(R_c P + N R)``.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

from .slicing import expand

__all__ = ["emc_model", "log_likelihood_block", "posterior_summary", "slice_chunks"]


def slice_chunks(volume, rotations, coords, correction, chunk: int, floor: float):
    """Yield ``(start, stop, log_slices, slice_sums)`` per chunk of orientations.

    ``log_slices`` ``(R_c, P)`` is ``log(c_t I(R_r q_t))`` (clamped below at
    ``floor``), ``slice_sums`` ``(R_c,)`` is ``sum_t c_t I(R_r q_t)``.
    """
    for start in range(0, rotations.shape[0], chunk):
        stop = min(start + chunk, rotations.shape[0])
        s = expand(volume, rotations[start:stop], coords) * correction
        yield start, stop, s.clamp_min(floor).log(), s.sum(1)


def log_likelihood_block(
    counts_csr, scales, volume, rotations, coords, correction, chunk: int = 256,
    floor: float = 1e-12,
):  # fmt: skip
    """Poisson log-likelihood of a block of frames at every grid orientation.

    Parameters
    ----------
    counts_csr : torch.Tensor
        ``(N, P)`` sparse CSR counts on the measured pixels.
    scales : torch.Tensor
        ``(N,)`` per-frame scales ``phi_n``.
    volume : torch.Tensor
        ``(S, S, S)`` intensity (photons per pixel at scale 1).
    rotations : torch.Tensor
        ``(R, 3, 3)`` orientations.
    coords, correction : torch.Tensor
        ``(P, 3)`` and ``(P,)`` of the measured pixels.
    chunk : int
        Orientations per chunk.
    floor : float
        Lower clamp of the expected counts inside the log.

    Returns
    -------
    log_lik : torch.Tensor
        ``(N, R)`` ``sum_t K_nt log(c_t I_rt) - phi_n sum_t c_t I_rt``.
    slice_sums : torch.Tensor
        ``(R,)`` ``sum_t c_t I_rt``.
    """
    n, r = counts_csr.shape[0], rotations.shape[0]
    out = torch.empty(n, r, dtype=volume.dtype, device=volume.device)
    sums = torch.empty(r, dtype=volume.dtype, device=volume.device)
    for a, b, log_s, s_sum in slice_chunks(volume, rotations, coords, correction, chunk, floor):
        out[:, a:b] = torch.sparse.mm(counts_csr, log_s.T) - scales[:, None] * s_sum[None]
        sums[a:b] = s_sum
    return out, sums


def _friedel_twin(q: torch.Tensor) -> torch.Tensor:
    """Quaternion of ``R Rz(pi)``: ``q (0, 0, 0, 1) = (-z, y, -x, w)``."""
    w, x, y, z = q.unbind(-1)
    return torch.stack([-z, y, -x, w], dim=-1)


def posterior_summary(prob, quaternions, weights, friedel: bool = True):
    """Best orientation, its probability, the spread and the information of posteriors.

    Parameters
    ----------
    prob : torch.Tensor
        ``(N, R)`` posterior probabilities (rows sum to 1).
    quaternions : torch.Tensor
        ``(R, 4)`` unit quaternions of the grid.
    weights : torch.Tensor
        ``(R,)`` prior weights (sum 1).
    friedel : bool
        Measure the spread modulo Friedel's ``R ~ R Rz(pi)`` (identical central
        slices of a centrosymmetric intensity on a flat detector, nearly so with
        Ewald curvature), so that the two equal modes do not count as spread.

    Returns
    -------
    dict
        ``best`` ``(N,)`` int64 index of the most probable orientation;
        ``best_probability`` ``(N,)``; ``spread`` ``(N,)`` radians, the posterior
        root-mean-square rotation angle away from the best orientation;
        ``information`` ``(N,)`` nats, ``sum_r P_r log(P_r / w_r)`` (the mutual
        information between frame and orientation, per frame).
    """
    best_p, best = prob.max(dim=1)
    dots = (quaternions[best] @ quaternions.T).abs()
    if friedel:
        dots = torch.maximum(dots, (_friedel_twin(quaternions[best]) @ quaternions.T).abs())
    dots = dots.clamp(max=1.0)
    angle = 2 * torch.arccos(dots)
    spread = (prob * angle**2).sum(1).sqrt()
    logp = prob.clamp_min(1e-30).log()
    info = (prob * (logp - weights.clamp_min(1e-30).log()[None])).sum(1)
    return {"best": best, "best_probability": best_p, "spread": spread, "information": info}


def emc_model(counts, slices, scales, weights=None):
    """The 3D EMC generative model as a Pyro model with the orientation enumerated.

    Parameters
    ----------
    counts : torch.Tensor
        ``(N, P)`` dense photon counts on the measured pixels.
    slices : torch.Tensor
        ``(R, P)`` expected counts at scale 1, ``c_t I(R_r q_t)``, for every grid
        orientation (positive).
    scales : torch.Tensor
        ``(N,)`` per-frame scales ``phi_n``.
    weights : torch.Tensor, optional
        ``(R,)`` prior weights of the orientations; default uniform.

    Notes
    -----
    Sites: ``"orientation"`` (``Categorical(R)``, marked
    ``infer={"enumerate": "parallel"}``) and the observed ``"frames"``
    (``Poisson(phi_n slices[r]).to_event(1)``) inside the plate ``"frames_plate"``.
    ``TraceEnum_ELBO`` sums the orientation exactly;
    ``TraceEnum_ELBO().compute_marginals`` gives the posterior that the E-step of
    :func:`pyrolatent.spi.emc.emc` computes in closed form (at ``beta = 1``).
    """
    r = slices.shape[0]
    if weights is None:
        weights = torch.full((r,), 1.0 / r, dtype=slices.dtype, device=slices.device)
    with pyro.plate("frames_plate", counts.shape[0]):
        o = pyro.sample("orientation", dist.Categorical(weights),
                        infer={"enumerate": "parallel"})  # fmt: skip
        rate = scales.unsqueeze(-1) * slices[o]
        pyro.sample("frames", dist.Poisson(rate).to_event(1), obs=counts)
