"""Synthetic stereo pairs with ground truth: polygons, their 1D projections, and polyhedra.

A stereo pair is two images of the same particle whose angles differ by a
known ``delta``: ``angle_b = angle_a + delta`` (Laurie 2023, the stereo-pair
angle CNN). The images use the rendering and the STEM noise model of
:mod:`pyrolatent.data.synthetic.polygons`, whose conventions hold here too.
Polyhedra are rendered as projected thickness along the beam (``z``), the
HAADF contrast of a uniform particle; their orientation is a ``(3, 3)``
rotation matrix acting on column vectors ``(x, y, z)`` of the object.
"""

from __future__ import annotations

import math

import torch

from ...primitives.grids import pixel_grid
from ...primitives.so3 import axis_angle_to_matrix, random_rotations
from .polygons import (
    _check_count,
    _draw_poses,
    _image_size,
    _shape_vertices,
    _uniform,
    add_stem_noise,
    render_polygons,
    symmetry_order,
)

__all__ = [
    "make_stereo_pairs",
    "project_1d",
    "make_projection_pairs",
    "POLYHEDRA",
    "polyhedron_faces",
    "render_polyhedra",
    "make_polyhedron_pairs",
]

#: Polyhedra known to :func:`polyhedron_faces`.
POLYHEDRA = ("cube", "tetrahedron", "octahedron")


def _noisy_pair(clean_a, clean_b, noise: dict, generator) -> dict:
    """Noisy images of a clean pair (``a`` drawn first), with the clean ones."""
    return {
        "images_a": add_stem_noise(clean_a, generator=generator, **noise),
        "images_b": add_stem_noise(clean_b, generator=generator, **noise),
        "clean_a": clean_a,
        "clean_b": clean_b,
    }


def _draw_deltas(n, delta, delta_range, symmetry, generator):
    if delta is None:
        if delta_range is None:
            delta_range = (-math.pi / symmetry, math.pi / symmetry)
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
        ``symmetry`` (``order``, its old name, is kept for one release).
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
        **_noisy_pair(clean_a, clean_b, noise, generator),
        "angle_a": angle_a,
        "angle_b": angle_b,
        "delta": delta,
        "offset_a": offset_a,
        "offset_b": offset_b,
        "size": size,
        "intensity": intensity,
        "vertices": vertices,
        "symmetry": symmetry_order(shape),
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
    beam axis its angle is defined modulo ``pi`` (``symmetry`` 2); otherwise, and
    for the tetrahedron, ``symmetry`` is 1. This assumes the generic default
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
        ``offset_a``, ``offset_b``, ``size``, ``intensity``; ``symmetry`` (``order``,
        its old name, is kept for one release).
    """
    n = _check_count(n)
    polyhedron_faces(name)  # validates the name
    axis_t = torch.as_tensor(axis, dtype=torch.float32).reshape(3)
    if not torch.isfinite(axis_t).all() or float(axis_t.norm()) < 1e-8:
        raise ValueError(f"axis: expected a non-zero 3-vector, got {axis}")
    axis_t = axis_t / axis_t.norm()
    along_beam = float(axis_t[2].abs()) > 1 - 1e-6
    symmetry = 2 if along_beam and name in ("cube", "octahedron") else 1
    delta = _draw_deltas(n, delta, delta_range, symmetry, generator)
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
        **_noisy_pair(clean_a, clean_b, noise, generator),
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
        "symmetry": symmetry,
        "order": symmetry,
    }
