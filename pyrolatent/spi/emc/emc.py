"""3D EMC (expand-maximize-compress) on sparse photon frames (Loh & Elser 2009; Dragonfly).

Each iteration, for every block of frames:

1. **Expand**: slice the current intensity ``I`` at every grid orientation
   (chunks of ``orientation_chunk``) on the measured pixels.
2. **E-step** (exact, see :mod:`pyrolatent.spi.emc.estep` and its Pyro model
   :func:`~pyrolatent.spi.emc.estep.emc_model`): ``P_nr`` proportional to
   ``w_r L_nr^beta``.
3. **Scales** (``scaling=True``): ``phi_n = sum_t K_nt / sum_r P_nr sum_t c_t I_rt``.
4. **Maximize/compress**: accumulate ``A(x) = sum_{n,r} P_nr K_n(R_r^-1 x)`` and
   ``B(x) = sum_{n,r} P_nr phi_n c(R_r^-1 x)`` by trilinear merging
   (the adjoint of the slicing), then ``I = A / B`` (Dragonfly's update,
   ``m_step="merge"``). The model slices ``I`` by trilinear interpolation, so
   ``A / B`` is not its EM update: even with known orientations and noiseless
   frames it returns a smoothed ``I`` (the interpolation applied twice); from the
   true 4BED intensity at 10^3 photons (no scales) its log-likelihood fell at
   every iteration (-530.3 to -533.7 per frame in four). The exact EM
   update (``m_step="exact"``) also treats the voxel each photon came from as
   latent (weight ``w_x I_x / sum_x' w_x' I_x'``, the Richardson-Lucy step):
   ``I_new(x) = I(x) A'(x) / B(x)`` with ``A'`` merging ``K / I_rt`` instead of
   ``K``; at ``beta = 1`` its log-likelihood never falls, and noiseless frames
   at known orientations leave the true intensity unchanged.
   ``m_step="auto"`` (default) merges while ``beta < 0.1`` (robust from a random
   start) and is exact after. Point groups average ``A`` (or ``I A'``) and ``B``.
   Voxels with ``B = 0`` were never measured: they are reported in ``measured``
   and set to 0.

Frames come from any source with ``len()``, ``num_pixels`` and
``block(start, stop)`` (in memory or streamed from an ``.emc``/CXI file), so the
memory is ``O(frame_chunk R + orientation_chunk P + S^3)`` plus ``O(N)`` per-frame
outputs. Under ``torch.distributed`` each rank passes its own shard of frames and
the sums ``A``, ``B`` (and the scale normalisation and diagnostics) are all-reduced,
so every rank ends with the same volume. State is written atomically after every
iteration to ``checkpoint`` (``checkpoint.rank<r>`` per rank under
``torch.distributed``) and picked up again with ``resume=True``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as tdist
from tqdm.auto import tqdm

from ...device import configure_cpu, resolve_device
from ...io.checkpoint import load_checkpoint, save_checkpoint
from ...primitives.so3 import quaternion_to_matrix
from ...primitives.volumes import symmetrize_volume
from .anneal import ANNEAL_ITERATIONS, EXACT_FROM_BETA, anneal_start, beta_at
from .estep import log_likelihood_block, posterior_summary
from .frames import Detector
from .quaternions import quaternion_grid
from .slicing import expand, merge

__all__ = ["EMCResult", "emc"]


@dataclass
class EMCResult:
    """Output of :func:`emc` (tensors on the CPU).

    Attributes
    ----------
    volume : torch.Tensor
        ``(S, S, S)`` intensity, photons per pixel at scale 1 and correction 1.
    measured : torch.Tensor
        ``(S, S, S)`` bool, voxels that received data (others are 0).
    quaternions, weights : torch.Tensor
        ``(R, 4)`` and ``(R,)`` the orientation grid.
    best_index : torch.Tensor
        ``(N,)`` most probable grid orientation of each frame (last E-step).
    best_rotation : torch.Tensor
        ``(N, 3, 3)`` its rotation matrix: frame ``n`` samples ``volume`` at
        ``best_rotation[n] @ q_t``.
    best_probability, spread : torch.Tensor
        ``(N,)`` its posterior probability, and the posterior RMS angle (radians)
        from it.
    scales : torch.Tensor
        ``(N,)`` per-frame scales (mean 1 when ``scaling``).
    log_likelihood : list of float
        Mean per-frame log marginal likelihood ``log sum_r w_r p(K_n | r)`` (full
        Poisson, with ``-log K!``) at each iteration, scored on the volume that
        iteration started from.
    mutual_information : list of float
        Mean per-frame ``sum_r P_nr log(P_nr / w_r)`` (nats) at each iteration.
    beta : list of float
        The annealing exponent used at each iteration.
    iterations : int
        Iterations done in total (including resumed ones).
    """

    volume: torch.Tensor
    measured: torch.Tensor
    quaternions: torch.Tensor
    weights: torch.Tensor
    best_index: torch.Tensor
    best_rotation: torch.Tensor
    best_probability: torch.Tensor
    spread: torch.Tensor
    scales: torch.Tensor
    log_likelihood: list = field(default_factory=list)
    mutual_information: list = field(default_factory=list)
    beta: list = field(default_factory=list)
    iterations: int = 0


def _photons(frames, n: int, chunk: int, dev):
    """Photons per frame ``(N,)`` and the mean over all ranks' frames."""
    photons = torch.cat([frames.block(a, a + chunk).photons_per_frame()
                         for a in range(0, n, chunk)])  # fmt: skip
    total = torch.tensor([float(photons.sum()), float(n)], dtype=torch.float64, device=dev)
    _all_reduce(total)  # every rank starts from the same volume and mean
    return photons, float(total[0] / total[1])


def _exp_relative(z: torch.Tensor, z_max: torch.Tensor) -> torch.Tensor:
    """``exp(z - z_max)``, set to 0 below ``e^-25`` (1e-11; ``exp`` of large negative
    arguments is slow, and such posterior mass is dropped anyway)."""
    d = z - z_max
    return torch.where(d < -25.0, torch.zeros_like(d), torch.exp(d.clamp_min(-25.0)))


def _all_reduce(*tensors):
    if tdist.is_available() and tdist.is_initialized():
        for t in tensors:
            tdist.all_reduce(t)


def _check_frames(frames, detector: Detector):
    for attr in ("block", "num_pixels", "__len__"):
        if not hasattr(frames, attr):
            raise ValueError("frames: expected PhotonFrames or a reader with block()/num_pixels")
    if int(frames.num_pixels) != detector.num_pixels:
        raise ValueError(
            f"frames have {frames.num_pixels} pixels but the detector has {detector.num_pixels}"
        )
    if len(frames) < 1:
        raise ValueError("frames: no frames given")


def _initial_volume(size, mean_photons, detector, generator, dtype):
    level = mean_photons / float(detector.correction[detector.mask].sum())
    u = torch.rand(size, size, size, generator=generator, dtype=torch.float64)
    return (2 * level * u).to(dtype)


def emc(
    frames,
    detector: Detector,
    size: int | None = None,
    level: int = 4,
    iterations: int = 30,
    beta="anneal",
    scaling: bool = True,
    m_step: str = "auto",
    group: str | None = None,
    init=None,
    frame_chunk: int = 4096,
    orientation_chunk: int = 256,
    checkpoint: str | None = None,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    device=None,
    dtype=torch.float32,
) -> EMCResult:
    """Reconstruct a 3D intensity from unoriented sparse photon frames by EMC.

    Parameters
    ----------
    frames : PhotonFrames or frame source
        ``N`` frames on the detector's ``P`` pixels (under ``torch.distributed``:
        this rank's shard).
    detector : Detector
        Pixel ``q`` vectors (voxels), corrections and mask.
    size : int, optional
        Odd volume edge ``S``; default :meth:`Detector.volume_size`.
    level : int
        Refinement level of the quaternion grid (``10 (5 n^3 + n)`` orientations).
    iterations : int
        EMC iterations to run (more after a resume: the total becomes
        ``iterations`` done plus this many).
    beta : "anneal", float or callable
        Exponent of the likelihood in the posterior (deterministic annealing).
        Default ``"anneal"``: ``beta_0^(1 - i / 15)`` at iteration ``i`` (1 from
        iteration 15 on), ``beta_0`` from the mean photons per frame by
        :func:`anneal_start` (0.019 at 10^3). A float fixes it; a callable
        ``iteration -> beta`` gives a schedule. Measured on 2,000 frames of 4BED at
        10^3 photons (25^3, level 4, 20 iterations), lowest shell CC to 3/4 of the
        edge: 0.45 (seed 0) with the former start 0.25 doubling every 5 iterations
        and ``"merge"``, 0.62 with it and ``"exact"``; with this schedule (seeds
        0-2) 0.89-0.93 ``"merge"``, 0.96-0.97 ``"auto"``.
    m_step : {"auto", "exact", "merge"}
        The M-step (see the module notes): ``"merge"`` is Dragonfly's ``A / B``,
        ``"exact"`` the EM update of the interpolated model, ``"auto"`` merge while
        ``beta < 0.1`` then exact (random 40-atom cloud, 1,500 frames at 10^3
        photons, seeds 0-2: lowest shell CC 0.97 merge, 0.53-0.76 exact, 0.98-0.99
        auto).
    scaling : bool
        Fit a scale per frame (fluence jitter); else all scales are 1.
    group : str, optional
        Point group (``"C4"``, ``"D2"``, ``"O"``, ...) to symmetrise the intensity
        with after each M-step; default None (no symmetry).
    init : array_like, optional
        ``(S, S, S)`` starting intensity; default uniform random at the data's level.
    frame_chunk, orientation_chunk : int
        Frames and orientations per block (bounds the memory).
    checkpoint : str, optional
        File for the state after each iteration (written atomically).
    resume : bool
        Continue from ``checkpoint`` when it exists.
    progress : bool
        Show a progress bar.
    seed : int
        Seed of the random starting volume.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.
    dtype : torch.dtype
        Compute dtype.

    Returns
    -------
    EMCResult

    Raises
    ------
    ValueError
        Pixel counts of frames and detector differ, even ``size``, level < 1, an
        unknown ``m_step``, or a checkpoint made with other settings.

    See Also
    --------
    pyrolatent.spi.emc.local_emc : refines the result with a per-frame search finer than
        the grid (the orientations of a level-4 grid are several degrees off).
    """
    _check_frames(frames, detector)
    configure_cpu()
    if m_step not in ("auto", "exact", "merge"):
        raise ValueError(f"m_step: expected 'auto', 'exact' or 'merge', got {m_step!r}")
    dev = resolve_device(device)
    size = detector.volume_size() if size is None else int(size)
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size: expected an odd volume size >= 3, got {size}")
    quats, weights = quaternion_grid(level, dtype=torch.float64)
    rot = quaternion_to_matrix(quats).to(dtype=dtype, device=dev)
    quats, weights = quats.to(dtype=dtype, device=dev), weights.to(dtype=dtype, device=dev)
    log_w = weights.log()
    pixel_map, coords, corr = detector.measured(dtype, dev)
    n = len(frames)
    gen = torch.Generator().manual_seed(int(seed))
    config = {"size": size, "level": int(level), "num_frames": n, "num_pixels": frames.num_pixels}

    state = None
    if checkpoint is not None and tdist.is_initialized() and tdist.get_world_size() > 1:
        checkpoint = f"{checkpoint}.rank{tdist.get_rank()}"  # each rank keeps its own scales
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        if state["config"] != config:
            raise ValueError(f"checkpoint {checkpoint}: made with {state['config']}, not {config}")
    if state is not None:
        volume = state["volume"].to(dtype=dtype, device=dev)
        scales = state["scales"].to(dtype=dtype, device=dev)
        history = {k: list(state[k]) for k in ("log_likelihood", "mutual_information", "beta")}
        done = int(state["iteration"])
        start = state.get("beta_start")
        start = anneal_start(_photons(frames, n, frame_chunk, dev)[1]) if start is None else start
    else:
        photons, mean = _photons(frames, n, frame_chunk, dev)
        start = anneal_start(mean)
        volume = (
            _initial_volume(size, mean, detector, gen, dtype)
            if init is None
            else torch.as_tensor(np.asarray(init), dtype=dtype)
        ).to(dev)
        if tuple(volume.shape) != (size,) * 3:
            raise ValueError(f"init: expected ({size}, {size}, {size}), got {tuple(volume.shape)}")
        scales = (photons / mean if scaling else torch.ones(n, dtype=torch.float64)).to(dtype)
        scales = scales.to(dev)
        history = {"log_likelihood": [], "mutual_information": [], "beta": []}
        done = 0

    best = torch.zeros(n, dtype=torch.long)
    best_p = torch.zeros(n, dtype=dtype)
    spread = torch.zeros(n, dtype=dtype)
    measured = torch.ones(size, size, size, dtype=torch.bool)
    bar = tqdm(range(done, done + int(iterations)), disable=not progress, desc="EMC", unit="it")
    for it in bar:
        b = beta_at(beta, it, start)
        exact = m_step == "exact" or (m_step == "auto" and b >= EXACT_FROM_BETA)
        num = torch.zeros(size, size, size, dtype=dtype, device=dev)
        # base of the exact update: zeros (unmeasured so far) would stay zero, so floor them
        base = volume.clamp_min(1e-6 * float(volume.mean())) if exact else None
        wphi = torch.zeros(rot.shape[0], dtype=dtype, device=dev)
        stats = torch.zeros(3, dtype=torch.float64, device=dev)  # loglik, MI, frames
        for a in range(0, n, frame_chunk):
            blk = frames.block(a, a + frame_chunk)
            m = len(blk)
            k_csr = blk.csr(dtype=dtype, device=dev, pixel_map=pixel_map)
            k_tot = blk.photons_per_frame().to(dtype=dtype, device=dev)
            lgam = torch.zeros(m, dtype=torch.float64).index_add_(
                0, blk.frame_rows(), torch.lgamma(blk.counts.double() + 1)
            )
            phi = scales[a : a + m]
            ll, sums = log_likelihood_block(k_csr, phi, volume, rot, coords, corr,
                                            chunk=orientation_chunk)  # fmt: skip
            # full log marginal: sum_t K log(phi c I) - phi sum c I - log K!, mixed over w
            z = ll + log_w[None]
            z_max = z.amax(1, keepdim=True)
            prob = _exp_relative(z, z_max) if b == 1.0 else None
            z_sum = (prob if prob is not None else _exp_relative(z, z_max)).sum(1)
            marg = (z_max[:, 0] + z_sum.log()).double()
            marg = marg + k_tot.double() * phi.double().clamp_min(1e-30).log() - lgam.to(dev)
            if prob is None:  # annealed posterior
                z = b * ll + log_w[None]
                prob = _exp_relative(z, z.amax(1, keepdim=True))
            del ll, z
            prob = prob / prob.sum(1, keepdim=True)
            summ = posterior_summary(prob, quats, weights)
            stats[0] += marg.sum()
            stats[1] += summ["information"].double().sum()
            stats[2] += m
            if scaling:
                phi = k_tot / (prob @ sums).clamp_min(1e-30)
                scales[a : a + m] = phi
            best[a : a + m] = summ["best"].cpu()
            best_p[a : a + m] = summ["best_probability"].cpu()
            spread[a : a + m] = summ["spread"].cpu()
            wphi += prob.T @ phi
            k_t = blk.csr(dtype=dtype, device=dev, pixel_map=pixel_map, transpose=True)
            active = torch.nonzero(prob.amax(0) > 0).reshape(-1)
            for c in range(0, active.numel(), orientation_chunk):
                idx = active[c : c + orientation_chunk]
                photons_r = torch.sparse.mm(k_t, prob[:, idx].contiguous()).T  # (R_c, P)
                if exact:  # each photon split over its voxels in proportion w_x I_x
                    photons_r = photons_r / expand(base, rot[idx], coords).clamp_min(1e-30)
                merge(photons_r, rot[idx], coords, size, out=num)
            del prob
        den = torch.zeros(size, size, size, dtype=dtype, device=dev)
        _all_reduce(num, wphi, stats)
        active = torch.nonzero(wphi > 0).reshape(-1)
        for c in range(0, active.numel(), orientation_chunk):
            idx = active[c : c + orientation_chunk]
            merge(wphi[idx, None] * corr[None], rot[idx], coords, size, out=den)
        if exact:
            num = num * base
        if group is not None:
            num, den = symmetrize_volume(num, group), symmetrize_volume(den, group)
        seen = den > 1e-12 * float(den.max())
        volume = torch.where(seen, num / den.clamp_min(1e-30), torch.zeros_like(num))
        measured = seen.cpu()
        if scaling:
            tot = torch.stack([scales.double().sum(), torch.tensor(float(n), device=dev).double()])
            _all_reduce(tot)
            mean_phi = float(tot[0] / tot[1])
            scales = scales / mean_phi
            volume = volume * mean_phi
        history["log_likelihood"].append(float(stats[0] / stats[2]))
        history["mutual_information"].append(float(stats[1] / stats[2]))
        history["beta"].append(b)
        done = it + 1
        bar.set_postfix(loglik=f"{history['log_likelihood'][-1]:.1f}",
                        mi=f"{history['mutual_information'][-1]:.2f}")  # fmt: skip
        if checkpoint is not None:
            save_checkpoint({"config": config, "iteration": done, "volume": volume.cpu(),
                             "scales": scales.cpu(), "beta_start": start, **history},
                            checkpoint)  # fmt: skip
    if beta == "anneal" and history["beta"] and history["beta"][-1] < 1.0:
        warnings.warn(f"emc: stopped at beta = {history['beta'][-1]:.3g}; the default annealing "
                      f"reaches 1 at iteration {ANNEAL_ITERATIONS}, run more iterations (resume) "
                      "for the sharp reconstruction", stacklevel=2)  # fmt: skip
    return EMCResult(
        volume=volume.cpu(), measured=measured, quaternions=quats.cpu(), weights=weights.cpu(),
        best_index=best, best_rotation=rot.cpu()[best], best_probability=best_p, spread=spread,
        scales=scales.cpu(), log_likelihood=history["log_likelihood"],
        mutual_information=history["mutual_information"], beta=history["beta"], iterations=done,
    )  # fmt: skip
