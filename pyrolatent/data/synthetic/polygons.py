"""Synthetic polygons, polyhedra and their projections, with ground truth.

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

from ...primitives.grids import pixel_grid, transform_points
from ...primitives.so3 import axis_angle_to_matrix, random_rotations

__all__ = [
    "SHAPE_SIDES",
    "symmetry_order",
    "regular_polygon_vertices",
    "random_convex_vertices",
    "render_polygons",
    "gaussian_blur",
    "add_stem_noise",
    "make_polygons",
    "make_stereo_pairs",
    "project_1d",
    "make_projection_pairs",
    "POLYHEDRA",
    "polyhedron_faces",
    "render_polyhedra",
    "make_polyhedron_pairs",
]

#: Names accepted for regular polygons, with their number of sides.
SHAPE_SIDES = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "octagon": 8}

#: Polyhedra known to :func:`polyhedron_faces`.
POLYHEDRA = ("cube", "tetrahedron", "octahedron")


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
        ``intensity`` ``(n,)``, ``vertices`` (canonical), ``order`` (int, the
        rotational symmetry order).
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
        "order": symmetry_order(shape),
    }


def _draw_deltas(n, delta, delta_range, order, generator):
    if delta is None:
        if delta_range is None:
            delta_range = (-math.pi / order, math.pi / order)
        return _uniform(n, delta_range[0], delta_range[1], generator)
    delta = torch.as_tensor(delta, dtype=torch.float32).reshape(-1)
    if delta.numel() == 1:
        return delta.expand(n).clone()
    if delta.shape[0] != n:
        raise ValueError(f"delta: expected 1 or {n} offsets, got {delta.shape[0]}")
    return delta


def make_stereo_pairs(
    n: int,
    shape="square",
    image_size=(32, 32),
    delta=None,
    delta_range=None,
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
    """Stereo pairs: the same particle seen at two angles a known ``delta`` apart.

    Both images share the shape, size and intensity; their positions and
    noise are independent (the particle drifts between exposures).

    Parameters
    ----------
    delta : float or array_like, optional
        The known angular offset(s) ``angle_b - angle_a`` in radians: one value
        for all pairs, or ``(n,)``. Default: uniform in ``delta_range``.
    delta_range : (float, float), optional
        Range of random offsets in radians. Default ``(-pi/n, pi/n)`` for
        symmetry order ``n``: then ``n delta`` covers the whole circle, which
        keeps label-free training away from a constant-output minimum.
    Other parameters
        As in :func:`make_polygons`.

    Returns
    -------
    dict
        ``images_a``, ``images_b`` ``(n, H, W)``; ``clean_a``, ``clean_b``;
        ``angle_a``, ``angle_b``, ``delta`` ``(n,)`` radians; ``offset_a``,
        ``offset_b`` ``(n, 2)``; ``size``, ``intensity`` ``(n,)``; ``vertices``;
        ``order``.
    """
    n = _check_count(n)
    delta = _draw_deltas(n, delta, delta_range, symmetry_order(shape), generator)
    angle_a = _uniform(n, 0.0, 2 * math.pi, generator)
    angle_b = angle_a + delta
    size, offset_a, intensity = _draw_poses(n, size_range, max_offset, intensity_range, generator)
    offset_b = _uniform(2 * n, -max_offset, max_offset, generator).reshape(n, 2)
    vertices = _shape_vertices(shape, n, n_vertices, generator)
    noise = dict(dose=dose, background=background, read_noise=read_noise, blur_sigma=blur_sigma)
    clean_a = render_polygons(vertices, angle_a, offset_a, size, intensity, image_size)
    clean_b = render_polygons(vertices, angle_b, offset_b, size, intensity, image_size)
    return {
        "images_a": add_stem_noise(clean_a, generator=generator, **noise),
        "images_b": add_stem_noise(clean_b, generator=generator, **noise),
        "clean_a": clean_a,
        "clean_b": clean_b,
        "angle_a": angle_a,
        "angle_b": angle_b,
        "delta": delta,
        "offset_a": offset_a,
        "offset_b": offset_b,
        "size": size,
        "intensity": intensity,
        "vertices": vertices,
        "order": symmetry_order(shape),
    }


def project_1d(images: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """1D projections of ``(B, H, W)`` images: the sum along ``axis`` (0 = rows).

    ``axis=0`` integrates along ``y`` (down the rows) and gives profiles along
    ``x``, ``(B, W)``; ``axis=1`` gives profiles along ``y``, ``(B, H)``.
    """
    if images.dim() != 3:
        raise ValueError(f"images: expected (B, H, W), got {tuple(images.shape)}")
    if axis not in (0, 1):
        raise ValueError(f"axis: expected 0 (sum over rows) or 1 (sum over columns), got {axis}")
    return images.sum(dim=1 + axis)


def make_projection_pairs(n: int, shape="square", image_size=(32, 32), **pair_options) -> dict:
    """Stereo pairs of 1D projections of polygons.

    The noisy 2D pairs of :func:`make_stereo_pairs` (``pair_options`` are its
    keyword arguments) are integrated along ``y``. A projection of a regular
    polygon cannot tell ``theta`` from ``-theta`` (its mirror axis), so its
    angle is identifiable only up to that reflection (``mirror=True`` in the
    losses and metrics).

    Returns
    -------
    dict
        As :func:`make_stereo_pairs`, with ``profiles_a``, ``profiles_b``
        ``(n, W)`` added.
    """
    pairs = make_stereo_pairs(n, shape=shape, image_size=image_size, **pair_options)
    pairs["profiles_a"] = project_1d(pairs["images_a"])
    pairs["profiles_b"] = project_1d(pairs["images_b"])
    return pairs


def polyhedron_faces(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Face half-spaces ``n . p <= h`` of a polyhedron with unit circumradius.

    Parameters
    ----------
    name : str
        ``"cube"``, ``"tetrahedron"`` or ``"octahedron"``.

    Returns
    -------
    normals : torch.Tensor
        ``(F, 3)`` outward unit normals.
    support : torch.Tensor
        ``(F,)`` distances of the faces from the centre.
    """
    if name == "cube":
        normals = torch.cat([torch.eye(3), -torch.eye(3)])
        support = torch.full((6,), 1 / math.sqrt(3))
    elif name == "octahedron":
        signs = torch.tensor([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (1, -1)])
        normals = signs.float() / math.sqrt(3)
        support = torch.full((8,), 1 / math.sqrt(3))
    elif name == "tetrahedron":
        verts = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]).float()
        normals = -verts / math.sqrt(3)
        support = torch.full((4,), 1 / 3)
    else:
        raise ValueError(f"name: expected one of {POLYHEDRA}, got {name!r}")
    return normals, support


def render_polyhedra(
    name: str,
    rotations: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    intensity: torch.Tensor | None = None,
    image_size=(32, 32),
) -> torch.Tensor:
    """Projected thickness of rotated convex polyhedra along the beam (``z``).

    Parameters
    ----------
    name : str
        See :func:`polyhedron_faces`.
    rotations : torch.Tensor
        ``(B, 3, 3)`` orientations of the object.
    size : torch.Tensor
        ``(B,)`` circumradius in pixels.
    offset : torch.Tensor
        ``(B, 2)`` centre ``(dx, dy)`` in pixels.
    intensity : torch.Tensor, optional
        ``(B,)`` scale of the projected thickness.
    image_size : int or (int, int)

    Returns
    -------
    torch.Tensor
        ``(B, H, W)`` thickness in units of the circumscribed diameter
        (``intensity`` times a value in ``[0, 1]``).
    """
    h, w = _image_size(image_size)
    if rotations.dim() != 3 or rotations.shape[-2:] != (3, 3):
        raise ValueError(f"rotations: expected (B, 3, 3), got {tuple(rotations.shape)}")
    normals, support = polyhedron_faces(name)
    normals = normals.to(rotations)
    support = support.to(rotations)
    moved = normals @ rotations.transpose(-1, -2)  # (B, F, 3): R n_k
    grid = pixel_grid(h, w, dtype=rotations.dtype, device=rotations.device).reshape(-1, 2)
    xy = (grid.unsqueeze(0) - offset.unsqueeze(-2)) / size.reshape(-1, 1, 1)  # (B, P, 2)
    # ray (x, y, t): m_z t <= h - m_x x - m_y y for every face
    rhs = support.reshape(1, 1, -1) - xy @ moved[..., :2].transpose(-1, -2)  # (B, P, F)
    mz = moved[..., 2].unsqueeze(-2)
    mz = torch.where(mz.abs() < 1e-6, torch.full_like(mz, 1e-6), mz)
    bound = rhs / mz
    big = torch.full_like(bound, 1e6)
    upper = torch.where(mz > 0, bound, big).amin(-1)
    lower = torch.where(mz < 0, bound, -big).amax(-1)
    thickness = (upper - lower).clamp(min=0, max=2) / 2
    img = thickness.reshape(-1, h, w)
    if intensity is not None:
        img = img * intensity.reshape(-1, 1, 1)
    return img


def make_polyhedron_pairs(
    n: int,
    name: str = "cube",
    image_size=(32, 32),
    axis=(0.0, 0.0, 1.0),
    base_rotation=None,
    wobble: float = 0.0,
    delta=None,
    delta_range=None,
    size_range=(9.0, 13.0),
    max_offset: float = 3.0,
    intensity_range=(0.6, 1.0),
    dose: float = 200.0,
    background: float = 0.05,
    read_noise: float = 0.02,
    blur_sigma: float = 0.7,
    generator: torch.Generator | None = None,
) -> dict:
    """Stereo pairs of projected polyhedra turned about a tilt axis.

    The orientation of image ``a`` is
    ``R_axis(angle_a) @ R_extra @ base_rotation`` and image ``b`` has
    ``angle_a + delta``: the pair is a tilt pair about ``axis``. ``angle_a``
    is the ground truth the angle network is asked for.

    Symmetry order: a projection of a centrosymmetric solid (cube,
    octahedron) is unchanged by a half turn in the image plane, so about the
    beam axis its angle is defined modulo ``pi`` (``order`` 2); otherwise, and
    for the tetrahedron, ``order`` is 1. This assumes the generic default
    ``base_rotation`` (no symmetry axis of the solid along ``axis``).

    Parameters
    ----------
    name : str
        ``"cube"``, ``"tetrahedron"`` or ``"octahedron"``.
    axis : (float, float, float)
        Rotation axis in the frame ``(x, y, z)``; ``z`` is the beam. The
        default ``z`` turns the particle in the image plane (the in-plane
        angle of the paper, first for one axis, then with ``wobble`` for
        several); ``(0, 1, 0)`` is a goniometer tilt about an in-plane axis.
    base_rotation : array_like, optional
        ``(3, 3)`` fixed starting orientation. Default: a fixed generic one
        (drawn with seed 7), so that no symmetry axis of the solid is aligned
        with the tilt axis and the angle is defined modulo ``2 pi``.
    wobble : float
        Rotations about several axes: each particle also gets a random
        rotation ``R_extra`` about the two axes perpendicular to ``axis``,
        each angle uniform in ``[-wobble, wobble]`` radians (shared by the
        pair). ``0`` gives a single-axis problem.
    delta, delta_range
        As in :func:`make_stereo_pairs`.
    Other parameters
        As in :func:`make_polygons`; ``size`` is the circumradius.

    Returns
    -------
    dict
        ``images_a``, ``images_b``, ``clean_a``, ``clean_b`` ``(n, H, W)``;
        ``angle_a``, ``angle_b``, ``delta`` ``(n,)``; ``rotations_a``,
        ``rotations_b`` ``(n, 3, 3)``; ``wobble_angles`` ``(n, 2)``;
        ``offset_a``, ``offset_b``, ``size``, ``intensity``; ``order``.
    """
    n = _check_count(n)
    polyhedron_faces(name)  # validates the name
    axis_t = torch.as_tensor(axis, dtype=torch.float32).reshape(3)
    if not torch.isfinite(axis_t).all() or float(axis_t.norm()) < 1e-8:
        raise ValueError(f"axis: expected a non-zero 3-vector, got {axis}")
    axis_t = axis_t / axis_t.norm()
    along_beam = float(axis_t[2].abs()) > 1 - 1e-6
    order = 2 if along_beam and name in ("cube", "octahedron") else 1
    delta = _draw_deltas(n, delta, delta_range, order, generator)
    if base_rotation is None:
        base_rotation = random_rotations(1, generator=torch.Generator().manual_seed(7))[0]
    base = torch.as_tensor(base_rotation, dtype=torch.float32).reshape(3, 3)
    angle_a = _uniform(n, 0.0, 2 * math.pi, generator)
    angle_b = angle_a + delta
    # two axes perpendicular to the tilt axis
    helper = (
        torch.tensor([1.0, 0.0, 0.0])
        if abs(float(axis_t[0])) < 0.9
        else torch.tensor([0.0, 0.0, 1.0])
    )
    perp1 = torch.linalg.cross(axis_t, helper)
    perp1 = perp1 / perp1.norm()
    perp2 = torch.linalg.cross(axis_t, perp1)
    wobble_angles = _uniform(2 * n, -wobble, wobble, generator).reshape(n, 2)
    extra = axis_angle_to_matrix(perp1.expand(n, 3), wobble_angles[:, 0]) @ axis_angle_to_matrix(
        perp2.expand(n, 3), wobble_angles[:, 1]
    )
    start = extra @ base
    rot_a = axis_angle_to_matrix(axis_t.expand(n, 3), angle_a) @ start
    rot_b = axis_angle_to_matrix(axis_t.expand(n, 3), angle_b) @ start
    size, offset_a, intensity = _draw_poses(n, size_range, max_offset, intensity_range, generator)
    offset_b = _uniform(2 * n, -max_offset, max_offset, generator).reshape(n, 2)
    clean_a = render_polyhedra(name, rot_a, size, offset_a, intensity, image_size)
    clean_b = render_polyhedra(name, rot_b, size, offset_b, intensity, image_size)
    noise = dict(dose=dose, background=background, read_noise=read_noise, blur_sigma=blur_sigma)
    return {
        "images_a": add_stem_noise(clean_a, generator=generator, **noise),
        "images_b": add_stem_noise(clean_b, generator=generator, **noise),
        "clean_a": clean_a,
        "clean_b": clean_b,
        "angle_a": angle_a,
        "angle_b": angle_b,
        "delta": delta,
        "rotations_a": rot_a,
        "rotations_b": rot_b,
        "wobble_angles": wobble_angles,
        "offset_a": offset_a,
        "offset_b": offset_b,
        "size": size,
        "intensity": intensity,
        "order": order,
    }
