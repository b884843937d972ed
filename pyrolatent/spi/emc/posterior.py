"""Orientation of sparse photon frames against a known intensity, by the Poisson posterior.

Beside the cross-correlation search of :class:`pyrolatent.spi.OrientationSearch`,
this scores each frame with the exact Poisson likelihood of the EMC model (see
:mod:`pyrolatent.spi.emc.estep`) on Dragonfly's quaternion grid, which uses every
photon with its proper weight, then refines the best orientation locally by
random rotations within a shrinking radius (keeping a candidate when its
likelihood is higher). The per-frame scale is the closed-form
``phi_n = sum_t K_nt / sum_r P_nr sum_t c_t I_rt`` (with ``fit_scales``).
"""

from __future__ import annotations

import math

import torch

from ...device import resolve_device
from ...primitives.groups import canonicalize
from ...primitives.so3 import axis_angle_to_matrix, quaternion_to_matrix
from ...primitives.volumes import check_volume
from .estep import log_likelihood_block, posterior_summary
from .frames import Detector
from .quaternions import quaternion_grid
from .slicing import expand

__all__ = ["fill_unmeasured", "poisson_orientations", "refine_orientations"]


def fill_unmeasured(volume: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
    """Replace unmeasured voxels by the mean of the measured ones in the same ``|q|`` shell.

    Parameters
    ----------
    volume : torch.Tensor
        ``(S, S, S)`` intensity.
    measured : torch.Tensor
        ``(S, S, S)`` bool, True = measured.

    Returns
    -------
    torch.Tensor
        ``(S, S, S)``; shells without any measured voxel become 0.
    """
    from ...primitives.volumes import volume_coordinates

    size = volume.shape[-1]
    shell = volume_coordinates(size, device=volume.device).norm(dim=-1).round().long()
    n = int(shell.max()) + 1
    m = measured.to(volume.dtype)
    sums = torch.zeros(n, dtype=volume.dtype, device=volume.device)
    cnts = torch.zeros(n, dtype=volume.dtype, device=volume.device)
    sums.index_add_(0, shell.reshape(-1), (volume * m).reshape(-1))
    cnts.index_add_(0, shell.reshape(-1), m.reshape(-1))
    mean = sums / cnts.clamp_min(1)
    return torch.where(measured, volume, mean[shell])


def _frame_loglik(blk, pixel_map, volume, rotations, coords, corr, scales):
    """``(n, K)`` log-likelihood of frame ``i`` at its own candidates ``rotations[i]``.

    ``scales`` ``(n,)`` fixed per frame, or None: each candidate's own best scale
    ``photons / slice sum`` (the likelihood profiled over the scale).
    """
    n, k = rotations.shape[:2]
    slices = expand(volume, rotations.reshape(n * k, 3, 3), coords).reshape(n, k, -1) * corr
    total = slices.sum(-1)
    rows = blk.frame_rows().to(volume.device)
    cols = pixel_map[blk.pixels.long()].to(volume.device)
    keep = cols >= 0
    rows, cols = rows[keep], cols[keep]
    cnt = blk.counts.to(volume.device)[keep].to(volume.dtype)
    logs = slices[rows, :, cols].clamp_min(1e-12).log() * cnt[:, None]  # (nnz, K)
    acc = torch.zeros(n, k, dtype=volume.dtype, device=volume.device).index_add_(0, rows, logs)
    if scales is None:
        photons = torch.zeros(n, dtype=volume.dtype, device=volume.device).index_add_(0, rows, cnt)
        best = photons[:, None] / total.clamp_min(1e-30)
        return acc + photons[:, None] * best.clamp_min(1e-30).log() - photons[:, None]
    return acc - scales[:, None] * total


def refine_orientations(
    frames, volume, detector: Detector, rotations, scales=None, steps: int = 4,
    samples: int = 32, radius: float = 0.1, seed: int = 0, chunk: int = 64, device=None,
):  # fmt: skip
    """Locally maximise each frame's Poisson likelihood over its orientation.

    Parameters
    ----------
    frames : PhotonFrames
        ``N`` frames.
    volume : array_like
        ``(S, S, S)`` intensity.
    detector : Detector
        Pixel geometry.
    rotations : array_like
        ``(N, 3, 3)`` starting orientations.
    scales : array_like, optional
        ``(N,)`` per-frame scales, in the units of ``volume`` (e.g.
        :attr:`EMCResult.scales` with :attr:`EMCResult.volume`). Default: each
        candidate's own best scale, ``photons / slice sum`` (the likelihood
        profiled over the scale). A fixed scale that is off pulls the
        orientation towards slices of the matching total: at 10^4 photons a
        10% error is worth about 35 nats: frames of 4BED (10% scale jitter)
        refined from their true orientations moved 5.4 deg (0.6 deg profiled).
    steps, samples : int
        Rounds of ``samples`` random candidates each, the radius halving per round.
    radius : float
        Starting radius (radians), about the grid spacing.
    seed : int
        Seed of the random candidates.
    chunk : int
        Frames per block.
    device : str or torch.device, optional
        Compute device.

    Returns
    -------
    rotations : torch.Tensor
        ``(N, 3, 3)`` refined orientations (CPU).
    log_likelihood : torch.Tensor
        ``(N,)`` ``sum_t K log(phi c I) - phi sum c I`` at them (CPU).
    """
    dev = resolve_device(device)
    vol = check_volume(volume, name="volume").float().to(dev)
    pixel_map, coords, corr = detector.measured(torch.float32, dev)
    rot = torch.as_tensor(rotations, dtype=torch.float32).to(dev).clone()
    n = len(frames)
    phi_all = None if scales is None else torch.as_tensor(scales, dtype=torch.float32).to(dev)
    gen = torch.Generator().manual_seed(int(seed))
    best_ll = torch.empty(n, dtype=torch.float32, device=dev)
    for a in range(0, n, chunk):
        blk = frames.block(a, a + chunk)
        m = len(blk)
        phi = None if phi_all is None else phi_all[a : a + m]
        cur = rot[a : a + m]
        ll = _frame_loglik(blk, pixel_map, vol, cur[:, None], coords, corr, phi)[:, 0]
        r = float(radius)
        for _ in range(int(steps)):
            axes = torch.randn(m, samples, 3, generator=gen).to(dev)
            ang = (r * torch.rand(m, samples, generator=gen) ** (1 / 3)).to(dev)
            cand = cur[:, None] @ axis_angle_to_matrix(axes, ang)
            cll = _frame_loglik(blk, pixel_map, vol, cand, coords, corr, phi)
            top, idx = cll.max(1)
            better = top > ll
            pick = cand[torch.arange(m, device=dev), idx]
            cur = torch.where(better[:, None, None], pick, cur)
            ll = torch.where(better, top, ll)
            r /= 2
        rot[a : a + m] = cur
        best_ll[a : a + m] = ll
    return rot.cpu(), best_ll.cpu()


def poisson_orientations(
    frames, reference, detector: Detector, level: int = 6, fit_scales: bool = True,
    refine_steps: int = 4, refine_samples: int = 32, group: str | None = None,
    frame_chunk: int = 1024, orientation_chunk: int = 256, seed: int = 0, device=None,
    reference_mask=None,
) -> dict:  # fmt: skip
    """Orientation posterior of each frame against a known intensity (Poisson likelihood).

    Parameters
    ----------
    frames : PhotonFrames
        ``N`` sparse frames on the detector's pixels.
    reference : array_like
        ``(S, S, S)`` intensity (odd ``S``; see
        :func:`pyrolatent.primitives.volumes.center_volume` for even sizes).
    detector : Detector
        Pixel geometry (e.g. :func:`~pyrolatent.spi.emc.frames.flat_detector`).
    level : int
        Quaternion-grid level (``10 (5 n^3 + n)`` orientations).
    fit_scales : bool
        Fit a per-frame scale on the grid (fixed-point over the posterior), and
        profile it per candidate in the refinement (else 1 for all frames).
    refine_steps, refine_samples : int
        Local refinement after the grid (0 steps: grid only).
    group : str, optional
        Point group of the reference; the rotations are then canonicalised
        into its fundamental zone. Default None (no symmetry).
    frame_chunk, orientation_chunk : int
        Block sizes (memory).
    seed : int
        Seed of the refinement.
    device : str or torch.device, optional
        Compute device.
    reference_mask : array_like, optional
        ``(S, S, S)`` bool, True = measured voxel of the reference (e.g.
        ``EMCResult.measured``); unmeasured voxels are filled with the mean of
        the measured voxels in their ``|q|`` shell (:func:`fill_unmeasured`), a
        neutral model that favours no orientation. Default: all measured.

    Returns
    -------
    dict
        ``rotation`` ``(N, 3, 3)`` best (refined) orientation; ``grid_index``
        ``(N,)``; ``probability`` ``(N,)`` posterior mass of the best grid point;
        ``spread`` ``(N,)`` radians (posterior RMS angle, modulo Friedel);
        ``scale`` ``(N,)``; ``log_likelihood`` ``(N,)`` at the refined orientation.
    """
    dev = resolve_device(device)
    vol = check_volume(reference, name="reference").float().to(dev)
    vmask = None
    if reference_mask is not None:
        vmask = torch.as_tensor(reference_mask).bool().to(dev)
        if vmask.shape != vol.shape:
            raise ValueError(f"reference_mask: expected shape {tuple(vol.shape)}, got "
                             f"{tuple(vmask.shape)}")  # fmt: skip
        vol = fill_unmeasured(vol, vmask)
    quats, weights = quaternion_grid(level, dtype=torch.float64)
    grid = quaternion_to_matrix(quats).float().to(dev)
    quats, weights = quats.float().to(dev), weights.float().to(dev)
    pixel_map, coords, corr = detector.measured(torch.float32, dev)
    n = len(frames)
    out = {k: [] for k in ("grid_index", "probability", "spread", "scale")}
    for a in range(0, n, frame_chunk):
        blk = frames.block(a, a + frame_chunk)
        k_csr = blk.csr(device=dev, pixel_map=pixel_map)
        k_tot = blk.photons_per_frame().float().to(dev)
        phi = torch.ones(len(blk), device=dev)
        ll, sums = log_likelihood_block(k_csr, phi, vol, grid, coords, corr, orientation_chunk)
        if fit_scales:  # fixed-point rounds of phi = K / E_P[sum_t c I], from K / mean
            phi = k_tot / float(sums.mean())
            for _ in range(2):
                lik = ll + (1 - phi[:, None]) * sums[None]  # the same scores at scale phi
                prob = torch.softmax(lik + weights.log()[None], dim=1)
                phi = k_tot / (prob @ sums).clamp_min(1e-30)
            ll = ll + (1 - phi[:, None]) * sums[None]
        prob = torch.softmax(ll + weights.log()[None], dim=1)
        summ = posterior_summary(prob, quats, weights)
        out["grid_index"].append(summ["best"].cpu())
        out["probability"].append(summ["best_probability"].cpu())
        out["spread"].append(summ["spread"].cpu())
        out["scale"].append(phi.cpu())
    res = {k: torch.cat(v) for k, v in out.items()}
    rot = grid.cpu()[res["grid_index"]]
    radius = 0.944 / int(level)
    # refinement profiles the scale per candidate (fit_scales) or keeps 1
    rot, ll = refine_orientations(frames, vol, detector, rot,
                                  scales=None if fit_scales else res["scale"],
                                  steps=refine_steps, samples=refine_samples, radius=radius,
                                  seed=seed, device=dev)  # fmt: skip
    if group is not None:
        rot = canonicalize(rot, group)
    res["rotation"] = rot
    res["log_likelihood"] = ll
    if not math.isfinite(float(ll.sum())):
        raise RuntimeError("poisson_orientations: non-finite log-likelihood")
    return res
