"""2D coordinate grids and similarity transforms of points.

Conventions (see DESIGN.md):

* Points are ``(x, y)`` in **pixel units relative to the image centre**, with ``x``
  along columns (right) and ``y`` along rows (down). The pixel at ``(row, col)``
  has ``x = col - (W - 1) / 2`` and ``y = row - (H - 1) / 2``.
* Angles are radians, counter-clockwise **as the image is displayed** (rows down).
  ``rotate_points(p, pi/2)`` maps the right-pointing axis to the upward one.
* The forward transform of a point is ``p' = scale * R(angle) @ p + offset``;
  offsets are ``(dx, dy)`` in pixels.
* Normalised coordinates (``grid_sample`` convention, ``align_corners=False``)
  span ``[-1, 1]`` across the image edges: ``x_n = 2 x / W``, ``y_n = 2 y / H``.
"""

from __future__ import annotations

import torch

__all__ = [
    "centre_of_mass",
    "particle_centre",
    "pixel_grid",
    "rotation_matrix_2d",
    "transform_points",
    "pixel_to_normalized",
    "normalized_to_pixel",
]


def pixel_grid(
    height: int,
    width: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Centred pixel coordinates of every pixel.

    Returns
    -------
    torch.Tensor
        Shape ``(H, W, 2)`` holding ``(x, y)`` in pixels.
    """
    if height < 1 or width < 1:
        raise ValueError(f"grid size must be positive, got {(height, width)}")
    ys = torch.arange(height, dtype=dtype, device=device) - (height - 1) / 2
    xs = torch.arange(width, dtype=dtype, device=device) - (width - 1) / 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    """``(n, 2)`` weighted centre ``(x, y)`` of images ``(n, H, W)``, pixels from the centre.

    The weights are the squared images above their minimum: a constant
    background has no pull, and a faint haze (a decoder's low background
    probabilities over many pixels) little.
    """
    n, h, w = images.shape
    weights = (images - images.flatten(1).amin(1).reshape(n, 1, 1)) ** 2
    weights = weights / weights.sum((1, 2), keepdim=True).clamp_min(1e-12)
    grid = pixel_grid(h, w, dtype=images.dtype, device=images.device)
    return torch.einsum("nhw,hwc->nc", weights, grid)


def particle_centre(images: torch.Tensor) -> torch.Tensor:
    """``(n, 2)`` centre ``(x, y)`` of the particle in images ``(n, H, W)``, robust to noise.

    :func:`centre_of_mass` of the images smoothed by a 3x3 box filter, with
    weights counted only above each smoothed image's median: background noise
    (zero-mean or not) then pulls the centre little towards the image centre.
    Pixels from the image centre.
    """
    smooth = torch.nn.functional.avg_pool2d(images.unsqueeze(1), 3, 1, 1).squeeze(1)
    median = smooth.flatten(1).median(1).values.reshape(-1, 1, 1)
    return centre_of_mass((smooth - median).clamp_min(0))


def rotation_matrix_2d(angle: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise (as displayed) rotation matrices for ``(x, y-down)`` points.

    Parameters
    ----------
    angle : torch.Tensor
        Shape ``(...)``, radians.

    Returns
    -------
    torch.Tensor
        Shape ``(..., 2, 2)``.
    """
    c, s = torch.cos(angle), torch.sin(angle)
    # With y pointing down, a visually counter-clockwise turn is
    # x' = c x + s y, y' = -s x + c y.
    row0 = torch.stack([c, s], dim=-1)
    row1 = torch.stack([-s, c], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def transform_points(
    points: torch.Tensor,
    angle: torch.Tensor | None = None,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    inverse: bool = False,
) -> torch.Tensor:
    """Apply a batch of similarity transforms to points.

    Parameters
    ----------
    points : torch.Tensor
        ``(P, 2)`` shared by the batch, or ``(B, P, 2)``; pixel units.
    angle : torch.Tensor, optional
        ``(B,)`` radians.
    offset : torch.Tensor, optional
        ``(B, 2)`` ``(dx, dy)`` pixels.
    scale : torch.Tensor, optional
        ``(B,)`` dimensionless, positive.
    inverse : bool
        Apply ``p = R(-angle) (p' - offset) / scale`` instead of the forward map.

    Returns
    -------
    torch.Tensor
        ``(B, P, 2)`` (or ``(P, 2)`` when no transform parameter is given and
        ``points`` is 2-D).
    """
    batch = next((t.shape[0] for t in (angle, offset, scale) if t is not None), None)
    if batch is None:
        return points
    if points.dim() == 2:
        points = points.unsqueeze(0).expand(batch, -1, -1)
    if not inverse:
        out = points
        if angle is not None:
            out = out @ rotation_matrix_2d(angle).transpose(-1, -2)
        if scale is not None:
            out = out * scale.reshape(-1, 1, 1)
        if offset is not None:
            out = out + offset.unsqueeze(-2)
        return out
    out = points
    if offset is not None:
        out = out - offset.unsqueeze(-2)
    if scale is not None:
        out = out / scale.reshape(-1, 1, 1)
    if angle is not None:
        out = out @ rotation_matrix_2d(-angle).transpose(-1, -2)
    return out


def pixel_to_normalized(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Map centred pixel ``(x, y)`` to ``grid_sample`` coordinates in ``[-1, 1]``."""
    factor = points.new_tensor([2.0 / width, 2.0 / height])
    return points * factor


def normalized_to_pixel(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`pixel_to_normalized`."""
    factor = points.new_tensor([width / 2.0, height / 2.0])
    return points * factor
