"""Rotational symmetry order of particle images, read off their self-correlation under turns.

:func:`rotational_symmetry` estimates the order n of an n-fold symmetric
particle from the images alone (no model): each image, centred on its
intensity centroid, is turned by ``2 pi k / n`` and correlated with itself. A
disc matches every turn, so the score of n is a **contrast**: the mean match at
the turns ``2 pi k / n`` minus the mean match at the half-way turns
``pi (2k + 1) / n``. A particle whose best contrast is small is either
asymmetric (``order = 1``: it matches no turn) or round (``order = None``: it
matches every turn, its orientation cannot be resolved).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["rotational_symmetry", "turn_match", "MATCH_THRESHOLD", "CONTRAST_THRESHOLD"]

#: Least best contrast that declares an n-fold symmetry.
CONTRAST_THRESHOLD = 0.03
#: Below this contrast, images that match every turn by at least this much are round.
MATCH_THRESHOLD = 0.8


def _centred(x: torch.Tensor) -> torch.Tensor:
    """Images ``(N, H, W)`` moved so that their intensity centroid (above the median) is central."""
    n, h, w = x.shape
    m = (x - x.flatten(1).median(dim=1).values[:, None, None]).clamp_min(0)
    ys = torch.arange(h, dtype=x.dtype) - (h - 1) / 2
    xs = torch.arange(w, dtype=x.dtype) - (w - 1) / 2
    mass = m.sum((1, 2)).clamp_min(1e-12)
    cy = (m.sum(2) * ys).sum(1) / mass
    cx = (m.sum(1) * xs).sum(1) / mass
    return _warp(x, torch.zeros(n, dtype=x.dtype), cx, cy)


def _warp(x: torch.Tensor, angle: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor):
    """Sample ``x`` at ``c + R(angle) p`` for every centred pixel position ``p`` (pixels)."""
    n, h, w = x.shape
    ys = torch.arange(h, dtype=x.dtype) - (h - 1) / 2
    xs = torch.arange(w, dtype=x.dtype) - (w - 1) / 2
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    sx = cx[:, None, None] + cos * px - sin * py
    sy = cy[:, None, None] + sin * px + cos * py
    grid = torch.stack(
        (2 * (sx + (w - 1) / 2) / (w - 1) - 1, 2 * (sy + (h - 1) / 2) / (h - 1) - 1), -1
    )
    out = F.grid_sample(
        x[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[:, 0]


def turn_match(images, angles) -> np.ndarray:
    """Median over images of the self-correlation of each centred image turned by each angle.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)``.
    angles : array_like
        ``(A,)`` radians.

    Returns
    -------
    numpy.ndarray
        ``(A,)`` medians over images of the Pearson correlation (over the
        pixels of the central disc) between an image and itself turned.
    """
    x = torch.as_tensor(np.asarray(images), dtype=torch.float64)
    if x.dim() != 3:
        raise ValueError(f"images: expected (N, H, W), got shape {tuple(x.shape)}")
    x = _centred(x)
    n, h, w = x.shape
    ys = torch.arange(h, dtype=x.dtype) - (h - 1) / 2
    xs = torch.arange(w, dtype=x.dtype) - (w - 1) / 2
    disc = (ys[:, None] ** 2 + xs[None] ** 2) <= ((min(h, w) - 1) / 2) ** 2
    a = x[:, disc]
    a = a - a.mean(1, keepdim=True)
    out = []
    zero = torch.zeros(n, dtype=x.dtype)
    for phi in np.asarray(angles, dtype=np.float64).reshape(-1):
        b = _warp(x, torch.full((n,), float(phi), dtype=x.dtype), zero, zero)[:, disc]
        b = b - b.mean(1, keepdim=True)
        den = (a.square().sum(1) * b.square().sum(1)).sqrt()
        r = torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-30), torch.zeros_like(den))
        out.append(float(r.median()))
    return np.asarray(out)


def rotational_symmetry(
    images, max_order: int = 8, max_images: int = 512, smooth: float = 0.0
) -> dict:
    """The rotational symmetry order n of particle images (no model needed).

    For each n in ``2..max_order``: ``match[n]`` = the smallest
    :func:`turn_match` over the turns ``2 pi k / n`` (k = 1..n-1) and
    ``contrast[n] = match[n] -`` the largest match over the half-way turns
    ``pi (2k + 1) / n``: every symmetry turn must match better than every
    half-way turn. The order is the largest n with ``match[n] >=``
    :data:`MATCH_THRESHOLD` and ``contrast[n] >=`` :data:`CONTRAST_THRESHOLD`;
    otherwise 1 (no symmetry), or None when every turn matches by at least
    :data:`MATCH_THRESHOLD` (a round particle: no resolvable orientation).

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` particle images, one particle per image, on a flat background.
    max_order : int
        Largest n tried (>= 2).
    max_images : int
        At most this many images (evenly spaced).
    smooth : float
        Gaussian blur (pixels) applied first against strong pixel noise; 0 (default) is
        off (a blur also rounds the corners that tell the turns apart).

    Returns
    -------
    dict
        ``order`` (int or None), ``match``, ``contrast`` (``{n: float}``).
    """
    if max_order < 2:
        raise ValueError(f"max_order must be >= 2, got {max_order}")
    x = torch.as_tensor(np.asarray(images), dtype=torch.float64)
    if x.shape[0] > max_images:
        x = x[np.linspace(0, x.shape[0] - 1, max_images).round().astype(np.int64)]
    if smooth > 0:
        x = _blur(x, smooth)
    turns = sorted({k / (2 * n) for n in range(2, max_order + 1) for k in range(1, 2 * n)})
    values = dict(zip(turns, turn_match(x, 2 * math.pi * np.asarray(turns)), strict=True))
    match, contrast = {}, {}
    for n in range(2, max_order + 1):
        match[n] = min(values[k / n] for k in range(1, n))
        contrast[n] = match[n] - max(values[(2 * k + 1) / (2 * n)] for k in range(n))
    good = [n for n in match if match[n] >= MATCH_THRESHOLD and contrast[n] >= CONTRAST_THRESHOLD]
    if good:
        order = max(good)
    elif min(values.values()) >= MATCH_THRESHOLD:
        order = None
    else:
        order = 1
    return {"order": order, "match": match, "contrast": contrast}


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, H, W)`` images, ``sigma`` pixels (reflected edges)."""
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    y = F.pad(x[:, None], (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    return F.conv2d(y, k.view(1, 1, -1, 1))[:, 0]
