"""Rotated and shifted shapes with ground truth, for testing rotation-aware models.

Shapes are drawn analytically (a soft indicator of a signed distance) at the
transformed pixel coordinates of :func:`pyrolatent.primitives.transform_points`,
so the images follow the library's pose conventions exactly: an image with
``angle = a`` and ``offset = d`` shows the canonical shape turned by ``a``
counter-clockwise (as displayed) and moved by ``d = (dx, dy)`` pixels.

Shapes
------
``"L"``
    An L made of two bars: no rotational symmetry.
``"arrow"``
    A bar with a triangular head: no rotational symmetry (mirror symmetric).
``"ngon<n>"`` (e.g. ``"ngon3"``, ``"ngon6"``)
    Regular polygon: n-fold symmetry.
``"star<n>"``
    n-pointed star: n-fold symmetry.
``"bar"``
    A rectangle: 2-fold symmetry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ...primitives import pixel_grid, transform_points

__all__ = ["SHAPES", "symmetry_order", "render_shapes", "make_rotated_shapes"]

SHAPES = ("L", "arrow", "bar", "ngon<n>", "star<n>")


def symmetry_order(shape: str) -> int:
    """Rotational symmetry order n of a shape (the angle is defined modulo 2 pi / n)."""
    if shape in ("L", "arrow"):
        return 1
    if shape == "bar":
        return 2
    for prefix in ("ngon", "star"):
        if shape.startswith(prefix) and shape[len(prefix) :].isdigit():
            n = int(shape[len(prefix) :])
            if n < 3:
                raise ValueError(f"{shape!r}: polygons and stars need at least 3 corners")
            return n
    raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")


def _box_sdf(p: torch.Tensor, cx: float, cy: float, hx: float, hy: float) -> torch.Tensor:
    dx = (p[..., 0] - cx).abs() - hx
    dy = (p[..., 1] - cy).abs() - hy
    outside = torch.stack([dx.clamp_min(0), dy.clamp_min(0)], -1).norm(dim=-1)
    return outside + torch.maximum(dx, dy).clamp_max(0)


def _polygon_sdf(p: torch.Tensor, n: int, r: float) -> torch.Tensor:
    # max over edge normals of (p . n_k) - apothem: a (slightly rounded) regular polygon
    k = torch.arange(n, dtype=p.dtype, device=p.device)
    phi = 2 * math.pi * k / n + math.pi / n
    normals = torch.stack([torch.cos(phi), -torch.sin(phi)], -1)  # y points down
    return (p @ normals.T).amax(-1) - r * math.cos(math.pi / n)


def _star_sdf(p: torch.Tensor, n: int, r: float) -> torch.Tensor:
    theta = torch.atan2(-p[..., 1], p[..., 0])
    radius = r * (0.6 + 0.4 * torch.cos(n * theta))
    return p.norm(dim=-1) - radius


def _signed_distance(shape: str, p: torch.Tensor, size: float) -> torch.Tensor:
    s = size
    if shape == "L":
        a = _box_sdf(p, -0.15 * s, 0.0, 0.12 * s, 0.35 * s)
        b = _box_sdf(p, 0.05 * s, 0.27 * s, 0.25 * s, 0.08 * s)
        return torch.minimum(a, b)
    if shape == "arrow":
        shaft = _box_sdf(p, -0.1 * s, 0.0, 0.25 * s, 0.07 * s)
        # triangular head pointing along +x
        q = p - p.new_tensor([0.15 * s, 0.0])
        head = torch.maximum(-q[..., 0], (q[..., 0] * 0.8 + q[..., 1].abs() * 1.0) - 0.18 * s)
        return torch.minimum(shaft, head)
    if shape == "bar":
        return _box_sdf(p, 0.0, 0.0, 0.35 * s, 0.1 * s)
    n = symmetry_order(shape)
    if shape.startswith("ngon"):
        return _polygon_sdf(p, n, 0.35 * s)
    return _star_sdf(p, n, 0.4 * s)


def render_shapes(
    shape: str,
    angles: torch.Tensor,
    offsets: torch.Tensor | None = None,
    image_size: int = 32,
    shape_size: float | None = None,
    edge_width: float = 0.5,
    scales: torch.Tensor | None = None,
) -> torch.Tensor:
    """Render posed copies of one shape.

    Parameters
    ----------
    shape : str
        See the module docstring.
    angles : torch.Tensor
        ``(N,)`` radians, counter-clockwise as displayed.
    offsets : torch.Tensor, optional
        ``(N, 2)`` ``(dx, dy)`` pixels.
    image_size : int
        Square image side, pixels.
    shape_size : float, optional
        Shape extent in pixels (default ``0.7 * image_size``).
    edge_width : float
        Softness of the edge, pixels.
    scales : torch.Tensor, optional
        ``(N,)`` per-image size factors (content that a rotation-invariant
        model should keep in its content latent).

    Returns
    -------
    torch.Tensor
        ``(N, image_size, image_size)`` in ``[0, 1]``.
    """
    symmetry_order(shape)  # validates the name
    size = 0.7 * image_size if shape_size is None else shape_size
    grid = pixel_grid(image_size, image_size).reshape(-1, 2)
    if offsets is None:
        offsets = torch.zeros(angles.shape[0], 2)
    pts = transform_points(grid, angle=angles, offset=offsets, scale=scales, inverse=True)
    sdf = _signed_distance(shape, pts, size)
    if scales is not None:
        sdf = sdf * scales.reshape(-1, 1)
    return torch.sigmoid(-sdf / edge_width).reshape(-1, image_size, image_size)


def make_rotated_shapes(
    n: int,
    shapes: Sequence[str] = ("L",),
    image_size: int = 32,
    angle_range: float = math.pi,
    max_offset: float = 0.0,
    size_jitter: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A labelled set of posed shapes.

    Parameters
    ----------
    n : int
        Number of images.
    shapes : sequence of str
        Classes; each image draws one uniformly.
    image_size : int
        Side, pixels.
    angle_range : float
        Angles are uniform in ``[-angle_range, angle_range)`` radians (``pi``:
        the full circle).
    max_offset : float
        Offsets uniform in ``[-max_offset, max_offset]`` pixels on each axis.
    size_jitter : float
        Size factors uniform in ``[1 - size_jitter, 1 + size_jitter]``.
    noise : float
        Gaussian noise standard deviation added to the images (then clipped to
        ``[0, 1]``).
    seed : int

    Returns
    -------
    dict
        ``images (N, S, S) float32``, ``angles (N,)`` radians, ``offsets (N, 2)``
        pixels, ``sizes (N,)`` size factors, ``labels (N,) int64`` (index into
        ``shapes``), ``shapes``, ``symmetry (N,) int64``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    orders = [symmetry_order(s) for s in shapes]
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(shapes), (n,), generator=g)
    angles = (torch.rand(n, generator=g) * 2 - 1) * angle_range
    offsets = (torch.rand(n, 2, generator=g) * 2 - 1) * max_offset
    sizes = 1 + (torch.rand(n, generator=g) * 2 - 1) * size_jitter
    images = torch.empty(n, image_size, image_size)
    for k, shape in enumerate(shapes):
        sel = labels == k
        if sel.any():
            images[sel] = render_shapes(
                shape, angles[sel], offsets[sel], image_size, scales=sizes[sel]
            )
    if noise > 0:
        images = (images + noise * torch.randn(images.shape, generator=g)).clamp(0, 1)
    return {
        "images": images.numpy().astype(np.float32),
        "angles": angles.numpy(),
        "offsets": offsets.numpy(),
        "sizes": sizes.numpy(),
        "labels": labels.numpy(),
        "shapes": list(shapes),
        "symmetry": np.asarray([orders[i] for i in labels.tolist()], dtype=np.int64),
    }
