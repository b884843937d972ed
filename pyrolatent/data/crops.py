"""Crops around located particles, ready for the rVAE.

Particles near the frame edge are kept: their crops are padded and flagged
``valid = False`` instead of being dropped, so the index table always lines up
with the particle table.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import as_images, check_count
from ..primitives.grids import transform_points
from ..primitives.warp import warp_images
from .particles import check_particles

__all__ = ["extract_crops", "align_crops", "aligned_crops", "band_mask"]


def extract_crops(
    frames,
    particles: dict,
    window: int,
    *,
    pad_mode: str = "constant",
    pad_value: float | None = None,
) -> tuple[np.ndarray, dict]:
    """Cut a ``window x window`` crop centred on every particle.

    Parameters
    ----------
    frames : array_like
        ``(T, H, W)`` movie.
    particles : dict
        Table with integer ``frame`` and float ``row``, ``col`` columns (e.g. from
        :func:`pyrolatent.segmentation.locate`). The centre pixel of a crop is the
        particle centre rounded to the nearest pixel.
    window : int
        Crop edge in pixels, at least 2 and at most ``min(H, W)``.
    pad_mode : {"constant", "reflect", "replicate"}
        How crops that reach past the frame edge are filled.
    pad_value : float, optional
        Fill value for ``"constant"``; default: the median of that frame (the lower
        middle value for an even number of pixels).

    Returns
    -------
    crops : numpy.ndarray
        ``(N, window, window)`` float32, one per table row, in table order.
    index : dict
        ``frame``, ``particle`` (row number in ``particles``), ``particle_id``
        (the join key, :mod:`pyrolatent.data.particles`), ``row``, ``col``
        (integer crop centre), ``valid`` (True when the crop lies inside the frame).

    Raises
    ------
    ValueError
        NaN frames, missing columns, a frame number out of range, or a window
        larger than the frame.
    """
    movie = as_images(frames, "frames", ndim=(3,))
    t, h, w = movie.shape
    window = check_count(window, "window", low=2)
    if window > min(h, w):
        raise ValueError(f"window {window} is larger than the frame ({h} x {w})")
    if pad_mode not in ("constant", "reflect", "replicate"):
        raise ValueError(f"pad_mode must be constant, reflect or replicate, got {pad_mode!r}")
    table = check_particles(particles, n_frames=t)
    frame, row, col = table["frame"], table["row"], table["col"]
    n = len(frame)
    r0 = np.rint(row).astype(np.int64)
    c0 = np.rint(col).astype(np.int64)
    lo = window // 2
    top, left = r0 - lo, c0 - lo
    valid = (top >= 0) & (left >= 0) & (top + window <= h) & (left + window <= w)
    if n == 0:
        crops = np.zeros((0, window, window), np.float32)
    else:
        # pad every frame by the window so that any centre near (or past) the edge fits
        if pad_mode == "constant":
            fill = movie.flatten(1).median(dim=1).values if pad_value is None else None
            padded = F.pad(movie, (window, window, window, window))
            inner = torch.zeros_like(padded, dtype=torch.bool)
            inner[:, window : window + h, window : window + w] = True
            if pad_value is None:
                padded = torch.where(inner, padded, fill.view(t, 1, 1))
            else:
                padded = torch.where(inner, padded, torch.full_like(padded, pad_value))
        else:
            mode = "reflect" if pad_mode == "reflect" and window < min(h, w) else "replicate"
            padded = F.pad(movie.unsqueeze(1), (window,) * 4, mode=mode).squeeze(1)
        tt = np.clip(top + window, 0, h + window)
        ll = np.clip(left + window, 0, w + window)
        d = torch.arange(window)
        rows_idx = torch.as_tensor(tt)[:, None] + d[None]
        cols_idx = torch.as_tensor(ll)[:, None] + d[None]
        f = torch.as_tensor(frame)
        crops = padded[f[:, None, None], rows_idx[:, :, None], cols_idx[:, None, :]]
        crops = crops.numpy().astype(np.float32)
    index = {
        "frame": frame.copy(),
        "particle": np.arange(n, dtype=np.int64),
        "particle_id": table["particle_id"].copy(),
        "row": r0,
        "col": c0,
        "valid": valid,
    }
    return crops, index


def align_crops(crops, angles, *, shifts=None, window: int | None = None) -> np.ndarray:
    """Rotate crops so that the direction ``angles`` points along +x.

    Used to *pre-align* particles by a measured axis (e.g. the ellipse
    orientation from :func:`pyrolatent.segmentation.locate`): after alignment
    an elongated particle lies along the rows, and the rVAE only has to resolve
    what the axis leaves open (a small residual rotation and the 180 degree
    polarity).

    Parameters
    ----------
    crops : array_like
        ``(N, S, S)`` crops centred on the particles (as from :func:`extract_crops`).
    angles : array_like
        ``(N,)`` radians, counter-clockwise as displayed, from +x.
    shifts : array_like, optional
        ``(N, 2)`` ``(dx, dy)`` pixels of each particle's centre from the crop
        centre ``((S - 1) / 2, (S - 1) / 2)``; the aligned crop is centred on
        the particle (sub-pixel). Default: no shift.
    window : int, optional
        Edge ``w <= S`` of the returned (centre-cut) crops; default ``S``. Cut
        crops from an ``S ~ 1.5 w`` window so that the rotated corners hold
        image data.

    Returns
    -------
    numpy.ndarray
        ``(N, w, w)`` float32; bilinear interpolation, border values outside.
    """
    arr = np.asarray(crops) if not torch.is_tensor(crops) else crops
    if arr.ndim == 3 and arr.shape[0] == 0:  # no particles: nothing to align
        w = arr.shape[-1] if window is None else int(window)
        return np.zeros((0, w, w), np.float32)
    x = as_images(crops, "crops", ndim=(3,))
    n, s = x.shape[0], x.shape[-1]
    if x.shape[1] != s:
        raise ValueError(f"crops: expected square crops, got {tuple(x.shape[1:])}")
    a = torch.as_tensor(np.asarray(angles, dtype=np.float32).reshape(-1))
    if a.numel() != n:
        raise ValueError(f"angles: expected {n} values, got {a.numel()}")
    if not torch.isfinite(a).all():
        raise ValueError("angles: contain NaN or Inf")
    window = s if window is None else int(window)
    if not 2 <= window <= s:
        raise ValueError(f"window must be in [2, {s}], got {window}")
    offset = None
    if shifts is not None:
        q = torch.as_tensor(np.asarray(shifts, dtype=np.float32)).reshape(n, 1, 2)
        if not torch.isfinite(q).all():
            raise ValueError("shifts: contain NaN or Inf")
        # the forward transform must send the particle centre q to the crop centre
        offset = -transform_points(q, angle=-a).squeeze(1)
    out = warp_images(x.float(), angle=-a, offset=offset, padding_mode="border")
    lo = (s - window) // 2
    return out[:, lo : lo + window, lo : lo + window].cpu().numpy().astype(np.float32)


def band_mask(window: int, half_width: float, softness: float = 0.5) -> np.ndarray:
    """Soft mask ``(window, window)`` of a horizontal band ``|y| <= half_width``.

    Multiplying aligned crops (:func:`align_crops`) by it keeps the particle
    and removes most of its side-by-side neighbours. The edge is a logistic
    ramp of width ``softness`` pixels; ``y`` is measured from the crop centre.
    """
    if half_width <= 0 or softness <= 0:
        raise ValueError("half_width and softness must be > 0")
    y = np.abs(np.arange(window) - (window - 1) / 2)
    band = 1.0 / (1.0 + np.exp((y - half_width) / softness))
    return np.repeat(band[:, None], window, axis=1).astype(np.float32)


def aligned_crops(
    frames, particles: dict, window: int, *, mask_half_width: float | str | None = None
) -> tuple[np.ndarray, dict]:
    """Crops centred on each particle and rotated so its ellipse axis lies along +x.

    Each crop is cut from a ``~1.5 w`` window (:func:`extract_crops`), shifted
    to the sub-pixel particle centre and rotated by the particle's
    ``orientation`` (:func:`align_crops`), so the rotated corners hold image
    data; optionally a soft band keeps the particle and removes its
    side-by-side neighbours (:func:`band_mask`).

    Parameters
    ----------
    frames : array_like
        ``(T, H, W)`` movie.
    particles : dict
        Particle table (:mod:`pyrolatent.data.particles`) with ``frame``,
        ``row``, ``col`` and ``orientation`` (radians); ``minor_axis`` (pixels)
        for ``mask_half_width="auto"``.
    window : int
        Edge ``w`` of the returned crops, pixels.
    mask_half_width : float or "auto", optional
        Multiply the aligned crops by a band ``|y| <= mask_half_width`` pixels;
        ``"auto"`` uses the median ``minor_axis`` plus 1 pixel; ``None`` keeps
        the whole crop.

    Returns
    -------
    crops : numpy.ndarray
        ``(N, w, w)`` float32, one per table row.
    index : dict
        As :func:`extract_crops` (centres of the ``w`` window, ``valid`` for a
        ``w`` crop inside the frame) plus ``orientation`` (radians).

    Raises
    ------
    ValueError
        No ``orientation`` column, or ``"auto"`` without ``minor_axis`` (or
        without particles), besides the errors of :func:`extract_crops`.
    """
    if "orientation" not in particles:
        raise ValueError("aligned crops need an 'orientation' column in the particle table")
    h, w = np.shape(frames)[-2:]
    window = int(window)
    big = int(math.ceil(1.5 * window))
    big += (big - window) % 2  # same parity: the centre cut is symmetric
    big = min(big, h, w)
    crops, index = extract_crops(frames, particles, big)
    row = np.asarray(particles["row"], dtype=np.float64)
    col = np.asarray(particles["col"], dtype=np.float64)
    centre = big // 2 - (big - 1) / 2  # crop-centre pixel minus geometric centre
    if len(crops):
        shifts = np.stack([col - index["col"] + centre, row - index["row"] + centre], axis=1)
    else:
        shifts = np.zeros((0, 2))
    orientation = np.asarray(particles["orientation"], dtype=np.float64)
    crops = align_crops(crops, orientation, shifts=shifts, window=window)
    top, left = index["row"] - window // 2, index["col"] - window // 2
    index["valid"] = (top >= 0) & (left >= 0) & (top + window <= h) & (left + window <= w)
    index["orientation"] = orientation
    if mask_half_width is not None:
        if mask_half_width == "auto":
            if "minor_axis" not in particles or not len(crops):
                raise ValueError("mask_half_width='auto' needs a 'minor_axis' column")
            mask_half_width = float(np.median(particles["minor_axis"])) + 1.0
        crops = crops * band_mask(window, float(mask_half_width))[None]
    return crops, index
