"""Synthetic polygons with ground truth: vertices, rendering, probe blur and STEM noise.

Stereo pairs, 1D projections and polyhedra are in
:mod:`pyrolatent.data.synthetic.stereo`.

These images stand in for HAADF-STEM images of faceted nanoparticles
(Laurie 2023, "stereo-pair angle CNN"): a bright convex particle on a dark
support, with random position, size, orientation and intensity, blurred by the
probe and recorded with shot (Poisson) and read (Gaussian) noise.

Conventions (see :mod:`pyrolatent.primitives.grids`)
----------------------------------------------------
* Angles are radians, counter-clockwise as displayed. A shape "at angle
  ``theta``" is its canonical form rotated by ``theta`` about its centre.
* The canonical regular n-gon has a vertex on the ``+x`` axis (pointing right);
  it is unchanged by a turn of ``2 pi / n`` (its *symmetry order* is ``n``).
* ``offset`` is the shape centre ``(dx, dy)`` in pixels from the image centre;
  ``size`` is the circumradius in pixels.
* A stereo pair is two images of the same particle whose angles differ by a
  known ``delta``: ``angle_b = angle_a + delta``.
* Polyhedra are rendered as projected thickness along the beam (``z``), the
  HAADF contrast of a uniform particle. Their orientation is a ``(3, 3)``
  rotation matrix acting on column vectors ``(x, y, z)`` of the object.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..._deprecated import forward
from ...primitives.grids import pixel_grid, transform_points

__all__ = [
    "SHAPE_SIDES",
    "symmetry_order",
    "regular_polygon_vertices",
    "random_convex_vertices",
    "render_polygons",
    "gaussian_blur",
    "add_stem_noise",
    "make_polygons",
    "reference_polygon",
]

#: Names accepted for regular polygons, with their number of sides.
SHAPE_SIDES = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "octagon": 8}


def _sides(shape) -> int | None:
    """Number of sides of a regular polygon name/int, ``None`` for ``"irregular"``."""
    if isinstance(shape, str):
        if shape == "irregular":
            return None
        if shape not in SHAPE_SIDES:
            raise ValueError(
                f"shape: expected one of {sorted(SHAPE_SIDES)} , 'irregular' or an int >= 3,"
                f" got {shape!r}"
            )
        return SHAPE_SIDES[shape]
    n = int(shape)
    if n != shape or n < 3:
        raise ValueError(
            f"shape: a regular polygon needs an integer number of sides >= 3, got {shape}"
        )
    return n


def symmetry_order(shape) -> int:
    """Rotational symmetry order of a polygon name (``"square"`` -> 4, ``"irregular"`` -> 1)."""
    n = _sides(shape)
    return 1 if n is None else n


def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    h, w = (int(s) for s in image_size)
    if h < 4 or w < 4:
        raise ValueError(f"image_size: expected at least 4x4 pixels, got {(h, w)}")
    return h, w


def regular_polygon_vertices(n_sides: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Vertices of the canonical regular polygon with unit circumradius.

    Returns
    -------
    torch.Tensor
        ``(n_sides, 2)`` points ``(x, y)``; the first vertex is ``(1, 0)`` and
        the others follow counter-clockwise as displayed (``y`` points down).
    """
    n = _sides(n_sides)
    k = torch.arange(n, dtype=torch.float64)
    phi = 2 * math.pi * k / n
    return torch.stack([phi.cos(), -phi.sin()], dim=-1).to(dtype)


def random_convex_vertices(
    n: int,
    n_vertices: int = 5,
    jitter: float = 0.35,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random irregular convex polygons (symmetry order 1) with circumradius about 1.

    Vertex angles are evenly spaced with a random jitter, radii are drawn from
    ``[0.75, 1]``; the convex hull is not recomputed, so keep ``jitter`` below
    about half the vertex spacing.

    Returns
    -------
    torch.Tensor
        ``(n, n_vertices, 2)`` vertices ``(x, y)``.
    """
    if n_vertices < 3:
        raise ValueError(f"n_vertices: expected >= 3, got {n_vertices}")
    base = 2 * math.pi * torch.arange(n_vertices, dtype=torch.float32) / n_vertices
    spacing = 2 * math.pi / n_vertices
    phi = base + jitter * spacing * (torch.rand(n, n_vertices, generator=generator) - 0.5)
    radius = 0.75 + 0.25 * torch.rand(n, n_vertices, generator=generator)
    return torch.stack([radius * phi.cos(), -radius * phi.sin()], dim=-1)


def _edge_halfplanes(vertices: torch.Tensor):
    """Outward unit normals ``(B, V, 2)`` and support values ``(B, V)`` of convex polygons."""
    nxt = torch.roll(vertices, shifts=-1, dims=-2)
    edge = nxt - vertices
    normal = torch.stack([edge[..., 1], -edge[..., 0]], dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    centroid = vertices.mean(dim=-2, keepdim=True)
    inward = ((centroid - vertices) * normal).sum(-1, keepdim=True) > 0
    normal = torch.where(inward, -normal, normal)
    support = (normal * vertices).sum(-1)
    return normal, support


def render_polygons(
    vertices: torch.Tensor,
    angle: torch.Tensor,
    offset: torch.Tensor,
    size: torch.Tensor,
    intensity: torch.Tensor | None = None,
    image_size=(32, 32),
    edge_width: float = 0.5,
) -> torch.Tensor:
    """Render filled convex polygons with anti-aliased edges (noise-free).

    Parameters
    ----------
    vertices : torch.Tensor
        ``(V, 2)`` shared canonical vertices or ``(B, V, 2)`` per image,
        circumradius about 1.
    angle : torch.Tensor
        ``(B,)`` radians, counter-clockwise.
    offset : torch.Tensor
        ``(B, 2)`` centre ``(dx, dy)`` in pixels from the image centre.
    size : torch.Tensor
        ``(B,)`` circumradius in pixels.
    intensity : torch.Tensor, optional
        ``(B,)`` value inside the shape (default 1).
    image_size : int or (int, int)
        ``(H, W)``.
    edge_width : float
        Width in pixels of the sigmoid edge ramp.

    Returns
    -------
    torch.Tensor
        ``(B, H, W)`` images in ``[0, intensity]``.
    """
    h, w = _image_size(image_size)
    b = angle.shape[0]
    grid = pixel_grid(h, w, dtype=angle.dtype, device=angle.device).reshape(-1, 2)
    # points in the canonical frame of each shape, in circumradius units
    local = transform_points(grid, angle=angle, offset=offset, scale=size, inverse=True)
    if vertices.dim() == 2:
        vertices = vertices.unsqueeze(0).expand(b, -1, -1)
    normal, support = _edge_halfplanes(vertices.to(local))
    dist = (local @ normal.transpose(-1, -2) - support.unsqueeze(-2)).amax(-1)  # (B, P)
    dist_px = dist * size.reshape(-1, 1)
    img = torch.sigmoid(-dist_px / max(edge_width, 1e-3) * 4.0).reshape(b, h, w)
    if intensity is not None:
        img = img * intensity.reshape(-1, 1, 1)
    return img


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, H, W)`` images or ``(B, L)`` profiles.

    ``sigma`` is in pixels; ``sigma <= 0`` returns the input. Borders are
    replicated.
    """
    if sigma <= 0:
        return images
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    if images.dim() == 2:
        out = F.pad(images.unsqueeze(1), (radius, radius), mode="replicate")
        return F.conv1d(out, kernel.reshape(1, 1, -1)).squeeze(1)
    if images.dim() != 3:
        raise ValueError(f"images: expected (B, H, W) or (B, L), got {tuple(images.shape)}")
    out = F.pad(images.unsqueeze(1), (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.reshape(1, 1, 1, -1))
    out = F.conv2d(out, kernel.reshape(1, 1, -1, 1))
    return out.squeeze(1)


def add_stem_noise(
    images: torch.Tensor,
    dose: float = 200.0,
    background: float = 0.05,
    read_noise: float = 0.02,
    blur_sigma: float = 0.7,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """STEM-like recording: probe blur, shot noise and detector read noise.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, H, W)`` noise-free intensities (about 1 inside a particle).
    dose : float
        Expected electron counts per pixel at intensity 1. Lower is noisier.
        ``dose <= 0`` (or ``inf``) disables shot noise.
    background : float
        Support signal added everywhere, in intensity units.
    read_noise : float
        Standard deviation of the additive Gaussian noise, in intensity units.
    blur_sigma : float
        Gaussian probe blur in pixels.

    Returns
    -------
    torch.Tensor
        Same shape, in intensity units (counts divided by ``dose``).
    """
    out = gaussian_blur(images, blur_sigma) + background
    if dose > 0 and math.isfinite(dose):
        out = torch.poisson(out.clamp_min(0) * dose, generator=generator) / dose
    if read_noise > 0:
        noise = torch.randn(out.shape, generator=generator, dtype=out.dtype)
        out = out + read_noise * noise.to(out.device)
    return out


def _uniform(n, low, high, generator):
    return low + (high - low) * torch.rand(n, generator=generator)


def _draw_poses(n, size_range, max_offset, intensity_range, generator):
    size = _uniform(n, size_range[0], size_range[1], generator)
    offset = _uniform(2 * n, -max_offset, max_offset, generator).reshape(n, 2)
    intensity = _uniform(n, intensity_range[0], intensity_range[1], generator)
    return size, offset, intensity


def _shape_vertices(shape, n, n_vertices, generator):
    sides = _sides(shape)
    if sides is None:
        return random_convex_vertices(n, n_vertices=n_vertices, generator=generator)
    return regular_polygon_vertices(sides)


def _check_count(n):
    if int(n) != n or int(n) < 1:
        raise ValueError(f"n: expected a positive number of images, got {n}")
    return int(n)


def make_polygons(
    n: int,
    shape="square",
    image_size=(32, 32),
    angle=None,
    size_range=(7.0, 11.0),
    max_offset: float = 3.0,
    intensity_range=(0.6, 1.0),
    n_vertices: int = 5,
    dose: float = 200.0,
    background: float = 0.05,
    read_noise: float = 0.02,
    blur_sigma: float = 0.7,
    generator: torch.Generator | None = None,
) -> dict:
    """Noisy images of randomly placed polygons with their ground truth.

    Parameters
    ----------
    n : int
        Number of images.
    shape : str or int
        ``"triangle"``, ``"square"``, ``"pentagon"``, ``"hexagon"``, ``"octagon"``,
        a number of sides, or ``"irregular"`` (random convex, symmetry order 1).
    image_size : int or (int, int)
        ``(H, W)`` in pixels.
    angle : array_like, optional
        ``(n,)`` radians. Default: uniform on ``[0, 2 pi)``.
    size_range : (float, float)
        Circumradius range in pixels.
    max_offset : float
        Centres are uniform in ``[-max_offset, max_offset]^2`` pixels.
    intensity_range : (float, float)
        Particle intensity range.
    n_vertices : int
        Vertices of irregular shapes.
    dose, background, read_noise, blur_sigma : float
        Noise model, see :func:`add_stem_noise`.
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    dict
        ``images`` ``(n, H, W)`` noisy, ``clean`` ``(n, H, W)``, ``angle`` ``(n,)``
        radians, ``offset`` ``(n, 2)`` pixels, ``size`` ``(n,)`` pixels,
        ``intensity`` ``(n,)``, ``vertices`` (canonical), ``symmetry`` (int, the
        rotational symmetry order; ``order``, its old name, is kept for one release).
    """
    n = _check_count(n)
    if angle is None:
        angle = _uniform(n, 0.0, 2 * math.pi, generator)
    else:
        angle = torch.as_tensor(angle, dtype=torch.float32).reshape(-1)
        if angle.shape[0] != n:
            raise ValueError(f"angle: expected {n} values, got {angle.shape[0]}")
    size, offset, intensity = _draw_poses(n, size_range, max_offset, intensity_range, generator)
    vertices = _shape_vertices(shape, n, n_vertices, generator)
    clean = render_polygons(vertices, angle, offset, size, intensity, image_size)
    images = add_stem_noise(clean, dose, background, read_noise, blur_sigma, generator)
    return {
        "images": images,
        "clean": clean,
        "angle": angle,
        "offset": offset,
        "size": size,
        "intensity": intensity,
        "vertices": vertices,
        "symmetry": symmetry_order(shape),
        "order": symmetry_order(shape),
    }


def reference_polygon(shape="square", image_size=(32, 32), size: float = 9.0) -> torch.Tensor:
    """The calibration image of a shape: at angle 0, centred, blurred, without noise.

    Parameters
    ----------
    shape : str or int
        As in :func:`make_polygons` (``"irregular"`` draws its vertices from a
        fixed seed).
    image_size : int or (int, int)
        ``(H, W)`` in pixels.
    size : float
        Circumradius in pixels.

    Returns
    -------
    torch.Tensor
        ``(1, H, W)``; the intensity is drawn from a fixed seed (99), so the image
        is the same at every call.
    """
    ref = make_polygons(
        1,
        shape,
        image_size=image_size,
        angle=[0.0],
        size_range=(size, size),
        max_offset=0.0,
        dose=0.0,
        read_noise=0.0,
        generator=torch.Generator().manual_seed(99),
    )
    return ref["images"]


__getattr__ = forward(
    __name__,
    {
        name: "pyrolatent.data.synthetic.stereo"
        for name in (
            "make_stereo_pairs",
            "project_1d",
            "make_projection_pairs",
            "POLYHEDRA",
            "polyhedron_faces",
            "render_polyhedra",
            "make_polyhedron_pairs",
        )
    },
)
