"""Simulated sparse photon frames with ground truth, from an intensity or an atomic structure.

:func:`structure_intensity` computes the far-field intensity ``|F(q)|^2`` of a
set of atoms (e.g. a PDB file read with :func:`pyrolatent.io.pdb.read_pdb_atoms`)
by the direct sum ``F(q) = sum_j f_j exp(2 pi i q . r_j)`` on a centred voxel grid
(atoms as point scatterers of weight ``f_j``, their atomic number, times a
Debye-Waller factor ``exp(-B |q|^2 / 4)``). :func:`simulate_frames` slices an
intensity at uniformly random orientations on a :class:`Detector`, scales each
frame to a mean photon count (with optional per-frame fluence jitter) and draws
Poisson counts, returning sparse frames and the true orientations.
"""

from __future__ import annotations

import math

import torch

from ...primitives.so3 import random_rotations
from ...primitives.volumes import check_volume
from .frames import Detector, PhotonFrames
from .slicing import expand

__all__ = ["simulate_frames", "structure_intensity"]


def structure_intensity(
    positions, weights=None, size: int = 65, resolution: float | None = None,
    oversampling: float = 3.0, b_factor: float = 0.0, chunk: int = 8192,
    method: str = "auto",
):  # fmt: skip
    """``|F(q)|^2`` of point atoms on an ``(S, S, S)`` grid of ``q`` (``[z, y, x]``).

    Parameters
    ----------
    positions : array_like
        ``(A, 3)`` atom coordinates ``(x, y, z)`` in angstrom.
    weights : array_like, optional
        ``(A,)`` scattering weights (default 1 per atom; atomic numbers are usual).
    size : int
        Odd grid size ``S``.
    resolution : float, optional
        Real-space resolution (angstrom) at the grid's edge ``q_max = 1 / resolution``.
        Default: set by ``oversampling``.
    oversampling : float
        Linear oversampling of the particle's diameter ``D`` when ``resolution``
        is None: the voxel spacing is ``dq = 1 / (oversampling D)``.
    b_factor : float
        Debye-Waller ``B`` (angstrom^2) damping ``exp(-B |q|^2 / 4)``.
    chunk : int
        Voxels per block of the direct sum.
    method : {"auto", "direct", "fft"}
        ``"direct"``: the exact sum over atoms. ``"fft"`` (needs
        ``resolution=None``): atoms binned to the nearest point of a real-space
        grid of spacing ``D / 40`` (a low-pass of at most 5% at the grid's edge
        for ``oversampling >= 3``), zero-padded to ``oversampling D`` and Fourier
        transformed: fast for large structures. ``"auto"``: fft above 5,000 atoms.

    Returns
    -------
    intensity : torch.Tensor
        ``(S, S, S)`` float32 intensity (normalised to a maximum of 1).
    dq : float
        Voxel spacing in 1/angstrom.
    """
    pos = torch.as_tensor(positions, dtype=torch.float64).reshape(-1, 3)
    pos = pos - pos.mean(0)
    w = torch.ones(pos.shape[0], dtype=torch.float64) if weights is None else (
        torch.as_tensor(weights, dtype=torch.float64).reshape(-1))  # fmt: skip
    size = int(size)
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size: expected an odd grid size >= 3, got {size}")
    half = (size - 1) / 2
    if resolution is None:
        diameter = 2 * float(pos.norm(dim=1).max()) + 1e-6
        dq = 1.0 / (float(oversampling) * diameter)
    else:
        dq = 1.0 / (float(resolution) * half)
    if method == "auto":
        method = "fft" if pos.shape[0] > 5000 and resolution is None else "direct"
    if method == "fft":
        return _fft_intensity(pos, w, size, float(oversampling), float(b_factor)), dq
    c = (torch.arange(size, dtype=torch.float64) - half) * dq
    qz, qy, qx = torch.meshgrid(c, c, c, indexing="ij")
    q = torch.stack([qx, qy, qz], dim=-1).reshape(-1, 3)
    out = torch.empty(q.shape[0], dtype=torch.float64)
    for a in range(0, q.shape[0], chunk):
        phase = 2 * math.pi * (q[a : a + chunk] @ pos.T)
        re = (torch.cos(phase) * w).sum(1)
        im = (torch.sin(phase) * w).sum(1)
        out[a : a + chunk] = re**2 + im**2
    if b_factor:
        out = out * torch.exp(-0.5 * float(b_factor) * (q**2).sum(1) / 2)
    out = out.reshape(size, size, size)
    return (out / out.max()).float(), dq


def _fft_intensity(pos, w, size, oversampling, b_factor):
    diameter = 2 * float(pos.norm(dim=1).max()) + 1e-6
    dr = diameter / 40
    n = int(round(oversampling * diameter / dr))
    n += n % 2  # even: q = 0 at index n / 2 after the shift
    # dq = 1 / (n dr) = 1 / (oversampling D), as in the direct sum
    idx = torch.round(pos / dr).long() + n // 2  # (A, 3) in (x, y, z)
    rho = torch.zeros(n, n, n, dtype=torch.float64)
    flat = (idx[:, 2] * n + idx[:, 1]) * n + idx[:, 0]
    rho.view(-1).index_add_(0, flat, w)
    f = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(rho)))
    a = n // 2 - (size - 1) // 2
    out = f[a : a + size, a : a + size, a : a + size].abs() ** 2
    if b_factor:
        q = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2) / (n * dr)
        q2 = q[:, None, None] ** 2 + q[None, :, None] ** 2 + q[None, None] ** 2
        out = out * torch.exp(-b_factor * q2 / 4)
    return (out / out.max()).float()


def simulate_frames(
    intensity, detector: Detector, n_frames: int, mean_photons: float,
    generator: torch.Generator | None = None, scale_jitter: float = 0.0,
    rotations=None, chunk: int = 1024,
):  # fmt: skip
    """Poisson photon frames of an intensity at random orientations.

    Parameters
    ----------
    intensity : array_like
        ``(S, S, S)`` intensity, odd ``S``, large enough for the detector's ``q``.
    detector : Detector
        Pixel geometry; unmeasured pixels get no photons.
    n_frames : int
        Number of frames ``N``.
    mean_photons : float
        Mean photons per frame (over orientations, at scale 1).
    generator : torch.Generator, optional
        Source of randomness (orientations, scales and counts).
    scale_jitter : float
        Per-frame scales are ``exp(scale_jitter * eps)``, ``eps ~ N(0, 1)``, then
        divided by their mean.
    rotations : array_like, optional
        ``(N, 3, 3)`` orientations to use instead of random ones.
    chunk : int
        Frames per block.

    Returns
    -------
    frames : PhotonFrames
    rotations : torch.Tensor
        ``(N, 3, 3)`` true orientations (frame ``n`` samples ``I(R_n q_t)``).
    scales : torch.Tensor
        ``(N,)`` true per-frame scales (mean 1).
    """
    vol = check_volume(intensity, name="intensity").float()
    n = int(n_frames)
    if n < 1 or mean_photons <= 0:
        raise ValueError("n_frames and mean_photons must be positive")
    if bool((vol < 0).any()):
        raise ValueError("intensity: must be nonnegative")
    rot = (random_rotations(n, generator=generator) if rotations is None
           else torch.as_tensor(rotations, dtype=torch.float32))  # fmt: skip
    scales = torch.exp(float(scale_jitter) * torch.randn(n, generator=generator))
    scales = scales / scales.mean()
    coords = detector.coords.float()
    corr = detector.correction.float() * detector.mask.float()
    # mean photons per frame at unit scale: average over a set of orientations
    probe = random_rotations(256, generator=generator)
    level = float((expand(vol, probe, coords) * corr).sum(1).mean())
    factor = float(mean_photons) / level
    parts = []
    for a in range(0, n, chunk):
        rates = expand(vol, rot[a : a + chunk], coords) * corr * factor
        rates = rates * scales[a : a + chunk, None]
        counts = torch.poisson(rates, generator=generator)
        parts.append(PhotonFrames.from_dense(counts))
    frames = PhotonFrames.concatenate(parts)
    return frames, rot, scales
