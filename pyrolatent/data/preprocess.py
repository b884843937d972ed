"""Preprocessing of particle images: centring by centre of mass, denoising, scaling.

The same functions serve synthetic and experimental images, so a network
trained on generated data sees real data prepared in exactly the same way.
Images are ``(N, H, W)``; 1D projections (profiles) are ``(N, L)``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import as_images
from ..primitives.grids import pixel_grid
from ..primitives.warp import warp_images
from .synthetic.polygons import gaussian_blur

__all__ = [
    "center_of_mass",
    "center_by_mass",
    "denoise",
    "normalize_intensity",
    "preprocess",
    "scale_crops",
]


def _as_stack(images, name: str) -> torch.Tensor:
    """Validate ``(N, H, W)`` images or ``(N, L)`` profiles."""
    return as_images(images, name=name, ndim=(2, 3))


def _signal_weights(images: torch.Tensor, background) -> torch.Tensor:
    """Non-negative weights above the background level, one image per row."""
    flat = images.reshape(images.shape[0], -1)
    if background is None:
        level = flat.amin(dim=1, keepdim=True)
    elif background == "median":
        level = flat.median(dim=1, keepdim=True).values
    else:
        level = torch.full_like(flat[:, :1], float(background))
    weights = (flat - level).clamp_min(0)
    empty = weights.sum(dim=1, keepdim=True) <= 0
    return torch.where(empty, torch.ones_like(weights), weights).reshape(images.shape)


def center_of_mass(images, background="median") -> torch.Tensor:
    """Intensity-weighted centre of each image, in centred pixel units.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` images or ``(N, L)`` profiles.
    background : "median", float or None
        Level subtracted before weighting (negative values are clipped):
        the per-image median (robust when the particle covers less than half
        of the frame), a fixed value, or the per-image minimum (``None``).

    Returns
    -------
    torch.Tensor
        ``(N, 2)`` ``(x, y)`` pixels from the image centre for images, ``(N,)``
        ``x`` for profiles.
    """
    x = _as_stack(images, "images")
    w = _signal_weights(x, background)
    if x.dim() == 2:
        coords = torch.arange(x.shape[1], dtype=x.dtype) - (x.shape[1] - 1) / 2
        return (w * coords).sum(1) / w.sum(1)
    grid = pixel_grid(x.shape[1], x.shape[2], dtype=x.dtype, device=x.device)
    total = w.sum(dim=(1, 2)).unsqueeze(-1)
    return torch.einsum("nhw,hwc->nc", w, grid) / total


def center_by_mass(images, background="median", return_shift: bool = False):
    """Shift each image so that its centre of mass sits at the image centre.

    Sub-pixel shifts use the shared warp primitive (bilinear, zero padding).

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` images or ``(N, L)`` profiles.
    background : "median", float or None
        See :func:`center_of_mass`.
    return_shift : bool
        Also return the centre of mass that was removed.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Centred images of the input's shape, and optionally the ``(N, 2)``
        (or ``(N,)``) centres of mass in pixels.
    """
    x = _as_stack(images, "images")
    com = center_of_mass(x, background=background)
    # warp with the background level outside the frame: pad with the border
    if x.dim() == 2:
        offset = torch.stack([-com, torch.zeros_like(com)], dim=-1)
        out = warp_images(x.unsqueeze(1), offset=offset, padding_mode="border").squeeze(1)
    else:
        out = warp_images(x, offset=-com, padding_mode="border")
    return (out, com) if return_shift else out


def denoise(images, method: str = "gaussian", sigma: float = 1.0) -> torch.Tensor:
    """Suppress shot and read noise.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` images or ``(N, L)`` profiles.
    method : {"gaussian", "median"}
        Gaussian blur of width ``sigma`` pixels, or a median filter of size
        ``2 * round(sigma) + 1``.
    sigma : float
        Filter width in pixels (``> 0``).

    Returns
    -------
    torch.Tensor
        Same shape as the input.
    """
    x = _as_stack(images, "images")
    if sigma <= 0:
        raise ValueError(f"sigma: expected a positive filter width in pixels, got {sigma}")
    if method == "gaussian":
        return gaussian_blur(x, sigma)
    if method == "median":
        k = 2 * max(1, round(sigma)) + 1
        pad = k // 2
        if x.dim() == 2:
            padded = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="replicate")
            return padded.squeeze(1).unfold(1, k, 1).median(dim=-1).values
        padded = torch.nn.functional.pad(x.unsqueeze(1), (pad,) * 4, mode="replicate").squeeze(1)
        patches = padded.unfold(1, k, 1).unfold(2, k, 1)
        return patches.reshape(*patches.shape[:3], -1).median(dim=-1).values
    raise ValueError(f"method: expected 'gaussian' or 'median', got {method!r}")


def normalize_intensity(images, method: str = "standardize") -> torch.Tensor:
    """Per-image intensity scaling.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` images or ``(N, L)`` profiles.
    method : {"standardize", "max", "sum"}
        Zero mean and unit standard deviation; division by the maximum; or
        division by the total intensity (times the number of pixels).

    Returns
    -------
    torch.Tensor
        Same shape as the input.
    """
    x = _as_stack(images, "images")
    flat = x.reshape(x.shape[0], -1)
    if method == "standardize":
        out = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-8)
    elif method == "max":
        out = flat / flat.amax(1, keepdim=True).clamp_min(1e-8)
    elif method == "sum":
        out = flat / flat.sum(1, keepdim=True).clamp_min(1e-8) * flat.shape[1]
    else:
        raise ValueError(f"method: expected 'standardize', 'max' or 'sum', got {method!r}")
    return out.reshape(x.shape)


def preprocess(
    images,
    center: bool = True,
    denoise_method: str | None = "gaussian",
    sigma: float = 0.7,
    normalize: str | None = "standardize",
    background="median",
) -> torch.Tensor:
    """The standard preparation: denoise, centre by mass, normalise intensity.

    Denoising comes first so that the centre of mass is not pulled by noise.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` images or ``(N, L)`` profiles.
    center : bool
        Centre by centre of mass (:func:`center_by_mass`).
    denoise_method : {"gaussian", "median", None}
        See :func:`denoise`; ``None`` skips denoising.
    sigma : float
        Denoising width in pixels.
    normalize : {"standardize", "max", "sum", None}
        See :func:`normalize_intensity`.
    background : "median", float or None
        See :func:`center_of_mass`.

    Returns
    -------
    torch.Tensor
        Same shape as the input, float32.
    """
    x = _as_stack(images, "images")
    if denoise_method is not None:
        x = denoise(x, method=denoise_method, sigma=sigma)
    if center:
        x = center_by_mass(x, background=background)
    if normalize is not None:
        x = normalize_intensity(x, method=normalize)
    return x


def scale_crops(crops) -> tuple[np.ndarray, tuple[float, float]]:
    """Rescale crops to ``[0, 1]``: background 0, particles up to 1 (for a Bernoulli rVAE).

    The background level is the median of the crops' border pixels, and it maps
    to 0: the rVAE's warp fills what moves into a crop from outside with 0, so
    a background above 0 would leave every turned template wrong at its corners.
    (With the former map, the 1st to 99.5th percentiles to ``[0, 1]``, the
    background of levelled AFM heights sat at 0.19, and the rVAE reconstructed
    the crops of AFMReader's sample movie 1.9x worse than their mean image.)
    Particles brighter than the background on average over the middle half of
    the crops map upwards, darker ones are inverted; the 99.5th percentile of
    the particles' side maps to 1. One affine map for the whole stack (relative
    intensities between crops are kept), then clipping.

    Parameters
    ----------
    crops : array_like
        ``(N, H, W)`` crops centred on particles (any real values).

    Returns
    -------
    scaled : numpy.ndarray
        ``(N, H, W)`` float32 in ``[0, 1]``.
    limits : (float, float)
        The ``(lo, hi)`` intensities mapped to 0 and 1 (the background, then
        ``hi > lo`` for bright particles and ``hi < lo`` for dark ones).
    """
    crops = np.asarray(crops, dtype=np.float64)
    if crops.ndim != 3 or not crops.size:
        raise ValueError(f"crops: expected a non-empty (N, H, W) stack, got shape {crops.shape}")
    h, w = crops.shape[1:]
    border = np.concatenate([crops[:, 0], crops[:, -1], crops[:, :, 0], crops[:, :, -1]], axis=1)
    lo = float(np.median(border))
    middle = crops[:, h // 4 : h - h // 4, w // 4 : w - w // 4]
    sign = 1.0 if middle.mean() >= lo else -1.0
    top = float(np.percentile(sign * (crops - lo), 99.5))
    hi = lo + sign * (top if top > 0 else 1.0)
    return np.clip((crops - lo) / (hi - lo), 0, 1).astype(np.float32), (lo, float(hi))
