"""Rotation-invariant features of diffraction patterns.

The pattern is resampled on a polar grid (rings of radius ``r`` pixels, ``A``
azimuths over ``[0, 2 pi)``). An in-plane rotation of the pattern is a circular
shift along the azimuth, so the magnitude of the azimuthal Fourier transform is
invariant to it. Odd harmonics are dropped: a diffraction pattern obeys Friedel
symmetry ``I(q) = I(-q)``, so they carry only noise. On each ring only the
harmonics the ring can resolve are kept, ``m <= resolution * pi * r`` (a
harmonic ``m`` has an arc wavelength of ``2 pi r / m`` pixels).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import check_nonnegative
from ..device import resolve_device
from ..primitives.grids import pixel_to_normalized, transform_points
from .profiles import as_patterns, check_radii

__all__ = ["polar_resample", "feature_layout", "rotation_invariant_features"]


def _default_n_azimuthal(max_radius: float) -> int:
    # about one pixel per sample on the outer ring, a multiple of 4 so that a
    # right-angle rotation is an exact shift of the samples
    return 4 * math.ceil(2 * math.pi * max_radius / 4)


def polar_resample(
    patterns,
    mask_radius: float = 2.0,
    max_radius: float | None = None,
    n_azimuthal: int | None = None,
    device=None,
) -> torch.Tensor:
    """Resample patterns on rings of integer radius around the centre.

    Parameters
    ----------
    patterns : array_like
        ``(N, S, S)``.
    mask_radius : float
        Smallest ring radius is ``ceil(mask_radius)`` (at least 1) pixels.
    max_radius : float, optional
        Largest ring radius; default ``(S - 1) / 2``.
    n_azimuthal : int, optional
        Samples per ring over ``[0, 2 pi)`` (counter-clockwise as displayed,
        starting on ``+x``); default about one pixel apart on the outer ring,
        a multiple of 4.

    Returns
    -------
    torch.Tensor
        ``(N, R, A)`` bilinear samples.
    """
    device = resolve_device(device)
    x = as_patterns(patterns, device=device)
    n, size, _ = x.shape
    mask_radius, max_radius = check_radii(size, mask_radius, max_radius)
    if n_azimuthal is None:
        n_azimuthal = _default_n_azimuthal(max_radius)
    if n_azimuthal < 4:
        raise ValueError(f"n_azimuthal must be >= 4, got {n_azimuthal}")
    radii = _ring_radii(mask_radius, max_radius, device)
    base = torch.stack([radii, torch.zeros_like(radii)], dim=-1)  # (R, 2)
    phi = torch.arange(n_azimuthal, device=device, dtype=torch.float32) * (
        2 * math.pi / n_azimuthal
    )
    pts = transform_points(base, angle=phi)  # (A, R, 2)
    grid = pixel_to_normalized(pts, size, size).unsqueeze(0).expand(n, -1, -1, -1)
    out = F.grid_sample(x.unsqueeze(1), grid, mode="bilinear", align_corners=False)
    return out.squeeze(1).transpose(1, 2)  # (N, R, A)


def _ring_radii(mask_radius: float, max_radius: float, device=None) -> torch.Tensor:
    start = max(1, math.ceil(mask_radius))
    return torch.arange(start, math.floor(max_radius) + 1, dtype=torch.float32, device=device)


def feature_layout(
    size: int,
    mask_radius: float = 2.0,
    max_radius: float | None = None,
    n_azimuthal: int | None = None,
    resolution: float = 1.0,
    max_harmonic: int | None = None,
) -> torch.Tensor:
    """The ``(F, 2)`` ``(radius, harmonic)`` of every feature, in output order."""
    mask_radius, max_radius = check_radii(size, mask_radius, max_radius)
    if n_azimuthal is None:
        n_azimuthal = _default_n_azimuthal(max_radius)
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    rows = []
    for r in _ring_radii(mask_radius, max_radius).tolist():
        top = min(int(math.floor(resolution * math.pi * r)), n_azimuthal // 2)
        if max_harmonic is not None:
            top = min(top, max_harmonic)
        rows += [(r, m) for m in range(0, top + 1, 2)]
    return torch.tensor(rows, dtype=torch.float32)


def rotation_invariant_features(
    patterns,
    mask_radius: float = 2.0,
    max_radius: float | None = None,
    n_azimuthal: int | None = None,
    resolution: float = 1.0,
    max_harmonic: int | None = None,
    log: bool = False,
    log_floor: float = 1e-3,
    device=None,
) -> torch.Tensor:
    """``|FFT|`` along the azimuth of every ring, even harmonics, resolution-cut.

    Parameters
    ----------
    patterns : array_like
        ``(N, S, S)`` intensities.
    mask_radius, max_radius, n_azimuthal
        See :func:`polar_resample`.
    resolution : float
        Keep harmonics ``m <= resolution * pi * r`` on the ring of radius ``r``
        (1 = the ring's own sampling limit).
    max_harmonic : int, optional
        Global cap on the harmonic number.
    log : bool
        Transform intensities to ``log(I + floor)`` first, ``floor`` being
        ``log_floor`` times each pattern's mean.
    log_floor : float
        Relative floor of the log transform.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.

    Returns
    -------
    torch.Tensor
        ``(N, F)`` features, ordered as :func:`feature_layout`; amplitudes are
        divided by the number of azimuthal samples (harmonic 0 is the ring mean).
    """
    device = resolve_device(device)
    x = as_patterns(patterns, device=device)
    size = x.shape[-1]
    if log:
        check_nonnegative(x, "patterns", why="log=True needs non-negative intensities")
        floor = (log_floor * x.mean(dim=(1, 2), keepdim=True)).clamp_min(1e-30)
        x = torch.log(x + floor)
    layout = feature_layout(size, mask_radius, max_radius, n_azimuthal, resolution, max_harmonic)
    polar = polar_resample(x, mask_radius, max_radius, n_azimuthal, device=device)
    spectrum = torch.fft.rfft(polar, dim=-1).abs() / polar.shape[-1]  # (N, R, A//2+1)
    ring = (layout[:, 0] - layout[0, 0]).long().to(device)
    harmonic = layout[:, 1].long().to(device)
    return spectrum[:, ring, harmonic]
