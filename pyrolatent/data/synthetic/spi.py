"""Synthetic X-ray single-particle diffraction data with ground truth.

The particle is a uniform density (a cube, a sphere, a constant-volume
superellipsoid that morphs between them, a rounded cube, a dimer or a rod) on a
cubic voxel grid (:mod:`pyrolatent.data.synthetic.densities`, whose names are
re-exported here). Its far-field intensity ``|F(q)|^2`` is a centred volume of odd
size; patterns are central slices of it (see
:func:`pyrolatent.primitives.volumes.slice_volume`) at uniformly random
orientations, scaled to a chosen mean photon count per pattern with a
per-pattern fluence jitter, hit by Poisson noise, with a beamstop and a circular
detector edge masked out.

Real detectors sample the continuous ``|F(q)|^2`` at their pixels, whereas a
slice of a ``S^3`` volume interpolates it trilinearly between voxels, which
fills in the minima of fine fringes (about 2.4 voxels per ring of the sphere at
``S = 33``). ``oversample = k`` (in :func:`intensity_volume`,
:func:`simulate_patterns`, :func:`melting_series`) slices an intensity computed
on a ``k``-times finer ``q`` grid over the same ``q`` range instead; the
detector geometry, and the ground-truth volumes returned for evaluation, stay at
``S``.

The "melting series" imitates gold nanocubes that melt into spheres (Ayyer et al.,
``papers/spi-clpca-volume-vae.txt``): the morph parameter ``m`` in ``[0, 1]``
maps to the superellipsoid exponent through ``1/p = 1/p_cube + m (1/2 - 1/p_cube)``
(linear in ``1/p``, which makes the steps in shape, and in the intensity,
roughly even), so ``m = 0`` is a cube (``p = p_cube``, 32 by default) and
``m = 1`` a sphere (``p = 2``), all of the same volume.
"""

from __future__ import annotations

import torch

from ...primitives.so3 import check_rotations, random_rotations
from ...primitives.volumes import check_volume, slice_volume
from .densities import (
    SHAPE_KINDS,
    blob_density,
    morph_to_exponent,
    shape_density,
    superellipsoid_half_width,
)

__all__ = [
    "SHAPE_KINDS",
    "blob_density",
    "detector_mask",
    "intensity_volume",
    "melting_series",
    "morph_to_exponent",
    "shape_density",
    "simulate_patterns",
    "superellipsoid_half_width",
]


def _check_oversample(oversample) -> int:
    """``oversample`` as a positive ``int``, or a clear ``ValueError``."""
    if isinstance(oversample, bool) or not isinstance(oversample, (int, float)):
        raise ValueError(f"oversample: expected a positive integer, got {oversample!r}")
    if oversample != int(oversample) or int(oversample) < 1:
        raise ValueError(f"oversample: expected a positive integer, got {oversample!r}")
    return int(oversample)


def intensity_volume(density, size: int | None = None, oversample: int = 1) -> torch.Tensor:
    """Far-field intensity ``|F(q)|^2`` of a density, centred on the central voxel.

    Parameters
    ----------
    density : array_like
        ``(D, D, D)`` real-space density, centred on voxel ``(D - 1) / 2``.
    size : int, optional
        Odd size ``S >= D`` of the ``q`` grid; the density is zero-padded to
        ``S`` (finer sampling of ``q``). Default ``D`` (which must then be odd).
    oversample : int
        Sample ``q`` ``oversample`` times more finely than the ``S`` grid over
        the same range, ``|q_i| <= (S - 1) / (2 S)`` per voxel, so that every
        ``oversample``-th voxel lies on the ``S`` grid (computed by zero-padding
        the density to ``oversample * S``). Default 1: the ``S`` grid itself.

    Returns
    -------
    torch.Tensor
        ``(M, M, M)`` intensity with ``M = oversample (S - 1) + 1`` (``S`` by
        default), indexed ``[qz, qy, qx]``, with ``q = 0`` at index
        ``(M - 1) / 2`` and ``q`` in units of ``1 / (oversample S)`` per voxel
        (cycles per real-space voxel). ``I(0) = (sum of the density)^2``.

    Raises
    ------
    ValueError
        Not a single cubic volume, NaN/inf, an even or too small ``size``, a
        ``oversample`` that is not a positive integer.
    """
    k = _check_oversample(oversample)
    d = check_volume(density, name="density", require_odd=False)
    if d.dim() != 3:
        raise ValueError(f"density: expected a single (D, D, D) volume, got {tuple(d.shape)}")
    n = d.shape[-1]
    size = n if size is None else int(size)
    if size % 2 == 0:
        raise ValueError(f"size: {size} is even; intensity volumes need an odd size (33, 65, 81)")
    if size < n:
        raise ValueError(f"size: {size} is smaller than the density ({n})")
    if n % 2 == 0 and size == n:
        raise ValueError(f"density: size {n} is even; pass an odd output size to pad it")
    if k == 1:
        lo = (size - n) // 2
        padded = torch.zeros(size, size, size, dtype=torch.float64)
        padded[lo : lo + n, lo : lo + n, lo : lo + n] = d.double()
        f = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(padded)))
        return (f.abs() ** 2).to(d.dtype if d.dtype != torch.float64 else torch.float64)
    # zero-pad to k S voxels: q in steps of 1 / (k S); |F|^2 ignores the (possibly
    # half-voxel, for even k S) shift of the density, so any centring will do
    n_fft = k * size
    lo = (n_fft - n) // 2
    padded = torch.zeros(n_fft, n_fft, n_fft, dtype=torch.float64)
    padded[lo : lo + n, lo : lo + n, lo : lo + n] = d.double()
    f = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(padded)))
    c, h = n_fft // 2, k * (size - 1) // 2  # q = 0 after fftshift; half-width kept
    f = f[c - h : c + h + 1, c - h : c + h + 1, c - h : c + h + 1]
    return (f.abs() ** 2).to(d.dtype if d.dtype != torch.float64 else torch.float64)


def detector_mask(
    size: int, beamstop_radius: float = 2.0, gap: int = 0, circular: bool = True
) -> torch.Tensor:
    """Valid-pixel mask of a ``(size, size)`` detector (True = measured).

    Parameters
    ----------
    beamstop_radius : float
        Pixels with ``r < beamstop_radius`` (pixels from the centre) are blocked.
    gap : int
        Width in pixels of a horizontal gap through the centre (0 = none).
    circular : bool
        Mask the corners beyond ``r = (size - 1) / 2``, where slices leave the volume.
    """
    c = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    r = (c[:, None] ** 2 + c[None] ** 2).sqrt()
    mask = r >= beamstop_radius
    if circular:
        mask &= r <= (size - 1) / 2
    if gap > 0:
        mask &= ~(c.abs() < gap / 2)[:, None].expand(size, size)
    return mask


def simulate_patterns(
    volume,
    n: int,
    photons: float = 1e4,
    rotations=None,
    fluence_jitter: float = 0.1,
    beamstop_radius: float = 2.0,
    seed: int = 0,
    gap: int = 0,
    intensity_scale: float | None = None,
    oversample: int = 1,
) -> dict:
    """Noisy diffraction patterns: Poisson photon counts of central slices.

    Parameters
    ----------
    volume : array_like
        ``(M, M, M)`` intensity, odd ``M`` (e.g. from :func:`intensity_volume`
        with the same ``oversample``); patterns have ``S = (M - 1) / oversample
        + 1`` pixels a side.
    n : int
        Number of patterns.
    photons : float
        Mean number of photons per pattern (on valid pixels, at fluence 1).
    rotations : array_like, optional
        ``(n, 3, 3)`` orientations; default uniformly random (Shoemake).
    fluence_jitter : float
        Relative spread of the per-pattern fluence: ``f = exp(s e - s^2 / 2)``,
        ``e ~ N(0, 1)``, ``s = fluence_jitter`` (mean 1).
    beamstop_radius : float
        Radius in pixels of the masked beamstop.
    seed : int
        Seed of everything random here.
    gap : int
        Width of a horizontal detector gap (see :func:`detector_mask`).
    intensity_scale : float, optional
        Photons per unit of ``volume``; default: chosen so the mean photon count is
        ``photons``.
    oversample : int
        Voxels of ``volume`` per detector pixel along each axis: pixel ``(i, j)``
        samples ``volume`` at ``oversample`` times its centred pixel
        coordinates, so an intensity computed ``oversample`` times more finely
        in ``q`` is interpolated between samples that are that much closer
        (closer to the continuous ``|F(q)|^2`` a detector records). Default 1:
        one voxel per pixel.

    Returns
    -------
    dict
        ``patterns`` ``(n, S, S)`` float32 photon counts (0 on masked pixels),
        ``expected`` ``(n, S, S)`` their noise-free means, ``rotations``
        ``(n, 3, 3)``, ``mask`` ``(S, S)`` bool (True = valid), ``fluence`` ``(n,)``,
        ``intensity_scale`` (float).

    Raises
    ------
    ValueError
        An even, non-cubic or non-finite volume, a bad ``n``/``photons``/
        ``rotations``, or an ``oversample`` that is not a positive integer
        dividing ``M - 1`` into an even number of pixel steps.
    """
    k = _check_oversample(oversample)
    v = check_volume(volume).float()
    if v.dim() != 3:
        raise ValueError(f"volume: expected a single (M, M, M) intensity, got {tuple(v.shape)}")
    if (v.shape[-1] - 1) % (2 * k) != 0:
        raise ValueError(
            f"oversample: a volume of {v.shape[-1]} voxels does not give an odd pattern size "
            f"at {k} voxels per pixel (need M = oversample (S - 1) + 1, S odd)"
        )
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive number of patterns, got {n}")
    if photons <= 0:
        raise ValueError(f"photons: expected a positive photon count, got {photons}")
    gen = torch.Generator().manual_seed(int(seed))
    if rotations is None:
        rot = random_rotations(n, generator=gen)
    else:
        rot = check_rotations(rotations).float()
        if rot.shape != (n, 3, 3):
            raise ValueError(f"rotations: expected ({n}, 3, 3), got {tuple(rot.shape)}")
    size = (v.shape[-1] - 1) // k + 1
    mask = detector_mask(size, beamstop_radius=beamstop_radius, gap=gap)
    pattern_size = None if k == 1 else size
    slices = torch.cat(
        [slice_volume(v, rot[i : i + 512], pattern_size=pattern_size) for i in range(0, n, 512)]
    )
    slices = slices.clamp_min(0) * mask
    if intensity_scale is None:
        intensity_scale = float(photons / slices.sum(dim=(-1, -2)).mean())
    eps = torch.randn(n, generator=gen)
    fluence = torch.exp(fluence_jitter * eps - fluence_jitter**2 / 2)
    expected = slices * (intensity_scale * fluence).reshape(-1, 1, 1)
    counts = torch.poisson(expected, generator=gen)
    return {
        "patterns": counts,
        "expected": expected,
        "rotations": rot,
        "mask": mask,
        "fluence": fluence,
        "intensity_scale": intensity_scale,
    }


def melting_series(
    n: int,
    size: int = 33,
    photons: float = 1e4,
    seed: int = 0,
    n_levels: int = 11,
    p_cube: float = 32.0,
    edge: float | None = None,
    fluence_jitter: float = 0.1,
    beamstop_radius: float = 2.0,
    contaminant: str | None = None,
    contaminant_fraction: float = 0.0,
    oversample: int = 1,
) -> dict:
    """Patterns of cubes melting into spheres, at constant particle volume.

    The morph parameter takes ``n_levels`` equally spaced values in [0, 1]
    (0 = cube, 1 = sphere, see :func:`morph_to_exponent`); each pattern picks a
    level uniformly at random and a uniformly random orientation. All volumes
    share one intensity scale (the cube's, set so a cube pattern has ``photons``
    photons on average), so the series is on an absolute scale.

    Parameters
    ----------
    n : int
        Number of patterns.
    size : int
        Odd pattern/volume size (33, 65, 81).
    photons : float
        Mean photons per cube pattern.
    seed : int
        Seed of everything random here.
    n_levels : int
        Number of distinct morph levels (and ground-truth volumes).
    p_cube : float
        Superellipsoid exponent of the cube end.
    edge : float, optional
        Edge of the equal-volume cube in voxels (default ``size / 3``).
    fluence_jitter, beamstop_radius
        See :func:`simulate_patterns`.
    contaminant : str, optional
        A shape kind (e.g. ``"dimer"``, ``"rod"``) mixed in with class label 1.
    contaminant_fraction : float
        Fraction of patterns from the contaminant.
    oversample : int
        Slice the patterns from intensities sampled ``oversample`` times more
        finely in ``q`` over the same range (see :func:`intensity_volume` and
        :func:`simulate_patterns`); the returned ``volumes`` stay ``(S, S, S)``.
        Default 1 (patterns are slices of ``volumes``).

    Returns
    -------
    dict
        ``patterns`` ``(n, S, S)``, ``rotations`` ``(n, 3, 3)``, ``mask`` ``(S, S)``,
        ``fluence`` ``(n,)``, ``morph`` ``(n,)`` in [0, 1], ``p`` ``(n,)``,
        ``level`` ``(n,)`` long, ``cls`` ``(n,)`` long (0 = particle, 1 =
        contaminant; contaminants have ``morph = nan``, ``level = -1``),
        ``volumes`` ``(n_levels, S, S, S)`` ground-truth intensities,
        ``level_morph`` ``(n_levels,)``, ``level_p`` ``(n_levels,)``,
        ``densities`` ``(n_levels, S, S, S)``, and ``contaminant_volume`` when used.
    """
    k = _check_oversample(oversample)
    size = int(size)
    if size % 2 == 0:
        raise ValueError(f"size: {size} is even; use an odd size (33, 65, 81)")
    if not 0 <= contaminant_fraction < 1:
        raise ValueError(f"contaminant_fraction: expected [0, 1), got {contaminant_fraction}")
    if int(n_levels) < 2:
        raise ValueError(f"n_levels: expected at least 2 levels, got {n_levels}")
    level_morph = torch.linspace(0, 1, int(n_levels), dtype=torch.float64)
    level_p = morph_to_exponent(level_morph, p_cube=p_cube)
    densities = torch.stack(
        [shape_density("superellipsoid", size, p=float(pk), edge=edge) for pk in level_p]
    )
    volumes = torch.stack([intensity_volume(d).float() for d in densities])
    gen = torch.Generator().manual_seed(int(seed))
    n = int(n)
    level = torch.randint(0, int(n_levels), (n,), generator=gen)
    cls = torch.zeros(n, dtype=torch.long)
    if contaminant is not None and contaminant_fraction > 0:
        cls = (torch.rand(n, generator=gen) < contaminant_fraction).long()
        level = torch.where(cls == 1, torch.full_like(level, -1), level)
    rotations = random_rotations(n, generator=gen)
    sub_seeds = torch.randint(0, 2**31 - 1, (int(n_levels) + 1,), generator=gen).tolist()

    def pattern_volume(level_index: int) -> torch.Tensor:
        """The intensity the patterns of a level are sliced from (finer in q if k > 1)."""
        if k == 1:
            return volumes[level_index]
        return intensity_volume(densities[level_index], oversample=k).float()

    # one scale for all: photons per unit intensity of the cube
    cube_volume = pattern_volume(0)
    scale = float(
        simulate_patterns(cube_volume, min(n, 256), photons=photons, rotations=rotations[:256],
                          fluence_jitter=0.0, beamstop_radius=beamstop_radius,
                          seed=sub_seeds[-1], oversample=k)["intensity_scale"]
    )  # fmt: skip
    patterns = torch.zeros(n, size, size)
    fluence = torch.ones(n)
    mask = None
    groups = [(j, level == j) for j in range(int(n_levels))]
    contaminant_volume = contaminant_fine = None
    if cls.any():
        dens_c = shape_density(contaminant, size, edge=edge)
        contaminant_volume = intensity_volume(dens_c).float()
        contaminant_fine = (
            contaminant_volume if k == 1 else intensity_volume(dens_c, oversample=k).float()
        )
        groups.append((int(n_levels), cls == 1))
    for j, sel in groups:
        idx = sel.nonzero().flatten()
        if idx.numel() == 0:
            continue
        if j == int(n_levels):
            vol = contaminant_fine
        else:
            vol = cube_volume if j == 0 else pattern_volume(j)
        sim = simulate_patterns(vol, idx.numel(), photons=photons, rotations=rotations[idx],
                                fluence_jitter=fluence_jitter, beamstop_radius=beamstop_radius,
                                seed=sub_seeds[j], intensity_scale=scale,
                                oversample=k)  # fmt: skip
        patterns[idx] = sim["patterns"]
        fluence[idx] = sim["fluence"]
        mask = sim["mask"]
    morph = torch.where(level >= 0, level_morph.float()[level.clamp_min(0)], float("nan"))
    p = torch.where(level >= 0, level_p.float()[level.clamp_min(0)], float("nan"))
    out = {
        "patterns": patterns,
        "rotations": rotations,
        "mask": mask,
        "fluence": fluence,
        "morph": morph,
        "p": p,
        "level": level,
        "cls": cls,
        "volumes": volumes,
        "densities": densities,
        "level_morph": level_morph.float(),
        "level_p": level_p.float(),
        "intensity_scale": scale,
    }
    if contaminant_volume is not None:
        out["contaminant_volume"] = contaminant_volume
    return out
