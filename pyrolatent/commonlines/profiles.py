"""Intensity profiles along lines through the centre of square patterns.

A *line* is a full diameter through the pattern centre. Line ``l`` of ``L`` has
the angle ``theta_l = pi * l / L`` (radians, counter-clockwise as displayed,
measured from the ``+x`` axis, i.e. along the columns), so the ``L`` lines cover
``[0, pi)``. Points on the line are ``t * (cos theta, -sin theta)`` in centred
pixel units ``(x, y-down)`` (see :mod:`pyrolatent.primitives.grids`) for
``t = -r_max .. -r_min, r_min .. r_max`` in steps of one pixel; the disc
``|t| < mask_radius`` (beamstop / central speckle) is left out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import as_images, check_count, check_nonnegative, check_number
from ..device import resolve_device
from ..primitives.grids import pixel_to_normalized, transform_points

__all__ = [
    "as_patterns",
    "line_angles",
    "line_radii",
    "line_profiles",
    "normalize_profiles",
    "profiles_of",
]


def as_patterns(
    patterns,
    name: str = "patterns",
    min_count: int = 1,
    size: int | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Validate a stack of square patterns and return a float32 tensor.

    Parameters
    ----------
    patterns : array_like or sequence of array_like
        ``(N, S, S)`` array, or a sequence of ``(S, S)`` arrays.
    name : str
        Argument name used in error messages.
    min_count : int
        Smallest accepted ``N``.
    size : int, optional
        Required side length ``S``.

    Returns
    -------
    torch.Tensor
        ``(N, S, S)`` float32 on ``device``.

    Raises
    ------
    ValueError
        Not square, patterns of different sizes, fewer than ``min_count``
        patterns, NaN/Inf values, or the wrong size.
    """
    if isinstance(patterns, (list, tuple)):
        if len(patterns) == 0:
            raise ValueError(f"{name}: is empty")
        shapes = [tuple(getattr(p, "shape", ())) for p in patterns]
        if any(len(s) != 2 for s in shapes):
            raise ValueError(f"{name}: every pattern must be 2-D, got shapes {sorted(set(shapes))}")
        if len(set(shapes)) > 1:
            raise ValueError(
                f"{name}: all patterns must have the same size, got {sorted(set(shapes))}"
            )
        patterns = torch.stack([torch.as_tensor(p) for p in patterns])
    t = as_images(patterns, name=name, ndim=(3,), device=device)
    n, h, w = t.shape
    if h != w:
        raise ValueError(f"{name}: patterns must be square, got {h} x {w}")
    if n < min_count:
        raise ValueError(f"{name}: needs at least {min_count} patterns, got {n}")
    if size is not None and h != size:
        raise ValueError(f"{name}: patterns are {h} x {w} but {size} x {size} was expected")
    return t


def check_radii(size: int, mask_radius: float, max_radius: float | None) -> tuple[float, float]:
    """Validate ``(mask_radius, max_radius)`` for patterns of side ``size``.

    Returns
    -------
    (float, float)
        ``mask_radius`` and the resolved ``max_radius`` (default ``(size - 1) / 2``,
        the distance from the centre to the centre of an edge pixel).
    """
    edge = (size - 1) / 2
    mask_radius = check_number(mask_radius, "mask_radius", low=0)
    max_radius = edge if max_radius is None else check_number(max_radius, "max_radius", low=0)
    if max_radius > edge + 1e-9:
        raise ValueError(
            f"max_radius {max_radius} is larger than the pattern allows ({edge} for size {size})"
        )
    if mask_radius < 0:
        raise ValueError(f"mask_radius must be >= 0, got {mask_radius}")
    if mask_radius >= max_radius:
        raise ValueError(
            f"mask_radius {mask_radius} must be smaller than the pattern radius {max_radius} "
            f"(pattern size {size})"
        )
    return float(mask_radius), float(max_radius)


def line_angles(n_angles: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The ``(L,)`` line angles ``pi * l / L`` in radians."""
    if n_angles < 1:
        raise ValueError(f"n_angles must be >= 1, got {n_angles}")
    return torch.arange(n_angles, dtype=dtype, device=device) * (math.pi / n_angles)


def line_radii(mask_radius: float, max_radius: float, dtype=torch.float32, device=None):
    """Signed positions ``t`` (pixels) sampled along every line, ``(P,)``."""
    r = torch.arange(math.ceil(mask_radius), math.floor(max_radius) + 1, dtype=dtype, device=device)
    if r.numel() > 0 and r[0] == 0:
        r = r[1:]  # the centre belongs to no direction; count it once at most
    return torch.cat([-r.flip(0), r])


def line_profiles(
    patterns,
    n_angles: int = 180,
    mask_radius: float = 2.0,
    max_radius: float | None = None,
    log: bool = False,
    log_floor: float = 1e-3,
    normalize: bool = False,
    friedel: bool = False,
    device=None,
) -> torch.Tensor:
    """Sample every pattern along ``n_angles`` lines through its centre.

    Parameters
    ----------
    patterns : array_like
        ``(N, S, S)`` intensities (centre of the pattern at the centre pixel
        for odd ``S``, between the four centre pixels for even ``S``).
    n_angles : int
        Number ``L`` of lines over ``[0, pi)``.
    mask_radius : float
        Points closer than this to the centre (pixels) are left out.
    max_radius : float, optional
        Outermost sampled radius in pixels; default ``(S - 1) / 2``.
    log : bool
        Sample ``log(I + floor)`` instead of ``I``, where ``floor`` is
        ``log_floor`` times each pattern's mean intensity. Needs ``I >= 0``.
    log_floor : float
        Relative floor of the log transform.
    normalize : bool
        Return zero-mean, unit-norm profiles (:func:`normalize_profiles`), whose
        dot products are correlation coefficients.
    friedel : bool
        Average the two halves of every line, ``(I(t u) + I(-t u)) / 2`` for
        ``t >= mask_radius``, and return half-lines. For centrosymmetric
        (diffraction) patterns this is the same line with half the noise, and
        its correlations equal those of the full symmetrised lines at half the
        cost.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.

    Returns
    -------
    torch.Tensor
        ``(N, L, P)`` profiles; the signed positions are :func:`line_radii`
        (with ``friedel``, only its positive half).
    """
    device = resolve_device(device)
    x = as_patterns(patterns, device=device)
    n, size, _ = x.shape
    mask_radius, max_radius = check_radii(size, mask_radius, max_radius)
    n_angles = check_count(n_angles, "n_angles", low=1, high=100_000)
    if log:
        check_nonnegative(x, "patterns", why="log=True needs non-negative intensities")
        floor = (log_floor * x.mean(dim=(1, 2), keepdim=True)).clamp_min(1e-30)
        x = torch.log(x + floor)
    t = line_radii(mask_radius, max_radius, device=device)
    base = torch.stack([t, torch.zeros_like(t)], dim=-1)  # (P, 2) along +x
    pts = transform_points(base, angle=line_angles(n_angles, device=device))  # (L, P, 2)
    grid = pixel_to_normalized(pts, size, size).unsqueeze(0).expand(n, -1, -1, -1)
    prof = F.grid_sample(
        x.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    ).squeeze(1)
    if friedel:
        half = t.numel() // 2  # positions are -r_k .. -r_1, r_1 .. r_k
        prof = 0.5 * (prof[..., half:] + prof[..., :half].flip(-1))
    return normalize_profiles(prof) if normalize else prof


def normalize_profiles(profiles: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-norm profiles along the last axis.

    Constant profiles become zero vectors (correlation 0 with everything).
    """
    centred = profiles - profiles.mean(dim=-1, keepdim=True)
    norm = centred.norm(dim=-1, keepdim=True)
    return torch.where(norm > 1e-12, centred / norm.clamp_min(1e-12), torch.zeros_like(centred))


def profiles_of(
    patterns,
    name: str = "patterns",
    min_count: int = 1,
    size: int | None = None,
    block_size: int = 4096,
    **options,
) -> tuple[torch.Tensor, int]:
    """:func:`line_profiles` of an array, or of a frame source read block by block.

    Parameters
    ----------
    patterns : array_like or frame source
        ``(N, S, S)`` patterns, or a frame source (``EMCFile``, ``CXIFrames``,
        ``PhotonFrames``; see :mod:`pyrolatent.io.frame_source`) of ``S x S``
        frames: only ``block_size`` frames are dense at a time, and the
        profiles (``N L P`` floats) are what stays in memory.
    name, min_count, size
        As :func:`as_patterns`.
    block_size : int
        Frames per block read from a frame source.
    **options
        Keyword arguments of :func:`line_profiles`.

    Returns
    -------
    profiles : torch.Tensor
        ``(N, L, P)``.
    size : int
        The patterns' side ``S``.
    """
    from ..io.frame_source import image_blocks, is_frame_source, source_image_size

    if not is_frame_source(patterns):
        x = as_patterns(patterns, name=name, min_count=min_count, size=size,
                        device=options.get("device"))  # fmt: skip
        check_radii(x.shape[-1], options.get("mask_radius", 2.0), options.get("max_radius"))
        return line_profiles(x, **options), int(x.shape[-1])
    s = source_image_size(patterns, name)
    if size is not None and s != size:
        raise ValueError(f"{name}: patterns are {s} x {s} but {size} x {size} was expected")
    if len(patterns) < min_count:
        raise ValueError(f"{name}: needs at least {min_count} patterns, got {len(patterns)}")
    check_radii(s, options.get("mask_radius", 2.0), options.get("max_radius"))
    blocks = [line_profiles(x, **options) for _, x in image_blocks(patterns, block_size)]
    return torch.cat(blocks), s
