"""Playing-card suits with controlled disorder, the benchmark of the ss-rVAE paper.

The four suits (:data:`SUITS`: clubs, diamonds, hearts, spades; labels 0-3)
are drawn analytically as soft indicators of signed distances, evaluated at
pixel coordinates pulled back through the pose with
:func:`pyrolatent.primitives.transform_points`. The forward map of a canonical
point ``p`` (centred pixels, ``y`` down) is::

    p' = scale * R(angle) @ S(shear) @ p + offset,   S(shear) = [[1, shear], [0, 1]]

so the images follow the library's conventions: angles are radians,
counter-clockwise as displayed; offsets are ``(dx, dy)`` pixels. Shear is a
horizontal shear of the canonical card before it is rotated.

Disorder knobs (Ziatdinov et al. 2024, Figs. 1, 3, 4): rotation range ``+-a``,
shear uniform in ``[0, s]``, scale jitter, offsets up to a fraction of the
image, Gaussian background noise, and contamination (a fraction of pixels that
receive extra intensity). Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...primitives import pixel_grid, transform_points

__all__ = ["SUITS", "check_card_options", "render_cards", "make_cards", "paper_split"]

SUITS = ("clubs", "diamonds", "hearts", "spades")


def _circle(p: torch.Tensor, cx: float, cy: float, r: float) -> torch.Tensor:
    return (p - p.new_tensor([cx, cy])).norm(dim=-1) - r


def _convex(p: torch.Tensor, vertices: list[tuple[float, float]]) -> torch.Tensor:
    """Signed distance (exact inside, a lower bound outside) to a convex polygon."""
    v = p.new_tensor(vertices)
    centre = v.mean(0)
    out = None
    for i in range(v.shape[0]):
        a, b = v[i], v[(i + 1) % v.shape[0]]
        edge = b - a
        normal = torch.stack([edge[1], -edge[0]]) / edge.norm()
        if float((centre - a) @ normal) > 0:
            normal = -normal
        d = (p - a) @ normal
        out = d if out is None else torch.maximum(out, d)
    return out


def _suit_sdf(suit: int, p: torch.Tensor) -> torch.Tensor:
    """Signed distance of a canonical suit, in units of the card size."""
    if suit == 0:  # clubs: three lobes and a stem
        lobes = torch.minimum(
            _circle(p, 0.0, -0.17, 0.13),
            torch.minimum(_circle(p, -0.16, 0.06, 0.13), _circle(p, 0.16, 0.06, 0.13)),
        )
        stem = _convex(p, [(0.0, -0.02), (-0.1, 0.36), (0.1, 0.36)])
        return torch.minimum(lobes, stem)
    if suit == 1:  # diamonds
        return (p[..., 0].abs() / 0.27 + p[..., 1].abs() / 0.40 - 1.0) * 0.22
    if suit == 2:  # hearts: two lobes on top, point down
        lobes = torch.minimum(_circle(p, -0.13, -0.12, 0.16), _circle(p, 0.13, -0.12, 0.16))
        tip = _convex(p, [(-0.28, -0.06), (0.28, -0.06), (0.0, 0.36)])
        return torch.minimum(lobes, tip)
    if suit == 3:  # spades: a heart upside down plus a stem
        lobes = torch.minimum(_circle(p, -0.13, 0.05, 0.15), _circle(p, 0.13, 0.05, 0.15))
        tip = _convex(p, [(-0.27, 0.0), (0.27, 0.0), (0.0, -0.38)])
        stem = _convex(p, [(0.0, 0.05), (-0.09, 0.37), (0.09, 0.37)])
        return torch.minimum(torch.minimum(lobes, tip), stem)
    raise ValueError(f"suit must be in 0..3, got {suit}")


def _circle_j(p: torch.Tensor, c: list, base: int) -> torch.Tensor:
    """``_circle`` with per-image constants ``c[base:base + 3]`` of shape ``(n, 1)``."""
    return torch.hypot(p[..., 0] - c[base], p[..., 1] - c[base + 1]) - c[base + 2]


def _convex_j(p: torch.Tensor, c: list, base: int, n_vertices: int) -> torch.Tensor:
    """``_convex`` with per-image vertices ``c[base:base + 2 * n_vertices]`` of shape ``(n, 1)``."""
    v = [(c[base + 2 * i], c[base + 2 * i + 1]) for i in range(n_vertices)]
    cx = sum(x for x, _ in v) / n_vertices
    cy = sum(y for _, y in v) / n_vertices
    out = None
    for i in range(n_vertices):
        (ax, ay), (bx, by) = v[i], v[(i + 1) % n_vertices]
        length = torch.hypot(bx - ax, by - ay)
        nx, ny = (by - ay) / length, -(bx - ax) / length
        flip = torch.where((cx - ax) * nx + (cy - ay) * ny > 0, -1.0, 1.0)
        d = ((p[..., 0] - ax) * nx + (p[..., 1] - ay) * ny) * flip
        out = d if out is None else torch.maximum(out, d)
    return out


#: the constants of each suit's primitives, in the order ``_suit_sdf_jittered`` reads them
_SUIT_CONSTANTS = {
    0: (0.0, -0.17, 0.13, -0.16, 0.06, 0.13, 0.16, 0.06, 0.13, 0.0, -0.02, -0.1, 0.36, 0.1, 0.36),
    1: (0.27, 0.40),
    2: (-0.13, -0.12, 0.16, 0.13, -0.12, 0.16, -0.28, -0.06, 0.28, -0.06, 0.0, 0.36),
    3: (-0.13, 0.05, 0.15, 0.13, 0.05, 0.15, -0.27, 0.0, 0.27, 0.0, 0.0, -0.38)
    + (0.0, 0.05, -0.09, 0.37, 0.09, 0.37),
}


def _suit_sdf_jittered(suit: int, p: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """:func:`_suit_sdf` with every constant multiplied by a per-image factor.

    ``p`` is ``(n, P, 2)``, ``factors`` ``(n, K)`` with ``K >= len(_SUIT_CONSTANTS[suit])``.
    """
    c = [v * factors[:, i : i + 1] for i, v in enumerate(_SUIT_CONSTANTS[suit])]
    if suit == 0:
        lobes = torch.minimum(
            _circle_j(p, c, 0), torch.minimum(_circle_j(p, c, 3), _circle_j(p, c, 6))
        )
        return torch.minimum(lobes, _convex_j(p, c, 9, 3))
    if suit == 1:
        return (p[..., 0].abs() / c[0] + p[..., 1].abs() / c[1] - 1.0) * 0.22
    if suit == 2:
        lobes = torch.minimum(_circle_j(p, c, 0), _circle_j(p, c, 3))
        return torch.minimum(lobes, _convex_j(p, c, 6, 3))
    if suit == 3:
        lobes = torch.minimum(_circle_j(p, c, 0), _circle_j(p, c, 3))
        tip = _convex_j(p, c, 6, 3)
        return torch.minimum(torch.minimum(lobes, tip), _convex_j(p, c, 12, 3))
    raise ValueError(f"suit must be in 0..3, got {suit}")


def render_cards(
    labels: torch.Tensor,
    angles: torch.Tensor,
    shears: torch.Tensor,
    scales: torch.Tensor,
    offsets: torch.Tensor,
    image_size: int = 48,
    card_size: float | None = None,
    edge_width: float = 0.6,
    shape_factors: torch.Tensor | None = None,
) -> torch.Tensor:
    """Render posed suits (noise-free).

    Parameters
    ----------
    labels : torch.Tensor
        ``(N,)`` suit indices into :data:`SUITS`.
    angles : torch.Tensor
        ``(N,)`` radians, counter-clockwise as displayed.
    shears : torch.Tensor
        ``(N,)`` horizontal shear factors (dimensionless).
    scales : torch.Tensor
        ``(N,)`` magnifications.
    offsets : torch.Tensor
        ``(N, 2)`` ``(dx, dy)`` pixels.
    image_size : int
        Side of the square images, pixels.
    card_size : float, optional
        Extent of a suit at scale 1, pixels (default ``0.6 * image_size``).
    edge_width : float
        Softness of the edges, pixels.
    shape_factors : torch.Tensor, optional
        ``(N, 18)`` multiplicative factors of each suit's geometric constants
        (circle centres and radii, polygon vertices, the diamond's half-axes),
        per image; ``None`` draws the canonical shapes.

    Returns
    -------
    torch.Tensor
        ``(N, image_size, image_size)`` float32 in ``[0, 1]``.
    """
    size = 0.6 * image_size if card_size is None else float(card_size)
    grid = pixel_grid(image_size, image_size).reshape(-1, 2)
    pts = transform_points(grid, angle=angles, offset=offsets, scale=scales, inverse=True)
    # undo the shear: S^{-1} = [[1, -s], [0, 1]]
    x = pts[..., 0] - shears.reshape(-1, 1) * pts[..., 1]
    pts = torch.stack([x, pts[..., 1]], dim=-1) / size
    out = torch.empty(labels.shape[0], image_size * image_size)
    for suit in range(len(SUITS)):
        sel = labels == suit
        if bool(sel.any()):
            if shape_factors is None:
                sdf = _suit_sdf(suit, pts[sel])
            else:
                sdf = _suit_sdf_jittered(suit, pts[sel], shape_factors[sel])
            out[sel] = torch.sigmoid(-sdf * size / edge_width)
    return out.reshape(-1, image_size, image_size)


def check_card_options(
    n_per_class: int,
    image_size: int,
    *,
    angle_range: float,
    shear: float,
    scale_jitter: float,
    max_offset: float,
    noise: float,
    contamination_density: float,
    contamination_intensity: float,
    shape_jitter: float = 0.0,
) -> None:
    """Refuse card-set options outside their ranges (shared by every card renderer).

    Raises
    ------
    ValueError
        Naming the option and its range.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    for name, value in (
        ("angle_range", angle_range),
        ("shear", shear),
        ("scale_jitter", scale_jitter),
        ("max_offset", max_offset),
        ("noise", noise),
        ("contamination_intensity", contamination_intensity),
        ("shape_jitter", shape_jitter),
    ):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value}")
    if scale_jitter >= 1:
        raise ValueError(f"scale_jitter must be < 1, got {scale_jitter}")
    if shape_jitter >= 1:
        raise ValueError(f"shape_jitter must be < 1, got {shape_jitter}")
    if max_offset > 0.5:
        raise ValueError(
            f"max_offset is a fraction of the image and must be <= 0.5, got {max_offset}"
        )
    if not 0 <= contamination_density <= 1:
        raise ValueError(f"contamination_density must be in [0, 1], got {contamination_density}")


def make_cards(
    n_per_class: int,
    image_size: int = 48,
    angle_range: float = 0.0,
    shear: float = 0.0,
    scale_jitter: float = 0.0,
    max_offset: float = 0.0,
    noise: float = 0.0,
    contamination_density: float = 0.0,
    contamination_intensity: float = 1.0,
    seed: int = 0,
    shape_jitter: float = 0.0,
) -> dict[str, np.ndarray]:
    """A balanced, shuffled set of disordered card suits with ground truth.

    Parameters
    ----------
    n_per_class : int
        Images per suit (the set has ``4 * n_per_class`` images).
    image_size : int
        Side of the square images, pixels.
    angle_range : float
        Rotation ``a``: angles uniform in ``[-a, a]``, radians (the paper's
        labelled set: ``math.radians(4)``; unlabelled: ``math.radians(60)``).
    shear : float
        Shear factor uniform in ``[0, shear]`` (the paper's ``s = 23%`` is 0.23).
    scale_jitter : float
        Magnification uniform in ``[1 - scale_jitter, 1 + scale_jitter]``.
    max_offset : float
        Offsets uniform in ``[-max_offset, max_offset] * image_size`` pixels on
        each axis (a fraction of the image; the paper: 0.1).
    noise : float
        Standard deviation of added Gaussian background noise (image units).
    contamination_density : float
        Fraction of pixels, in ``[0, 1]``, that receive extra intensity.
    contamination_intensity : float
        The extra intensity of a contaminated pixel.
    seed : int
    shape_jitter : float
        Shape variability (a training augmentation): every geometric constant
        of a suit (circle centres and radii, polygon vertices, the diamond's
        half-axes) is multiplied, per image and independently, by a factor
        uniform in ``[1 - shape_jitter, 1 + shape_jitter]``; ``0`` draws the
        canonical suits (and leaves the random stream of the other knobs as it is).

    Returns
    -------
    dict
        ``images (N, S, S) float32`` in ``[0, 1]`` (noise and contamination are
        clipped), ``labels (N,) int64``, ``angles (N,)`` radians,
        ``shears (N,)``, ``scales (N,)``, ``offsets (N, 2)`` pixels and
        ``suits`` (class names).
    """
    check_card_options(
        n_per_class, image_size, angle_range=angle_range, shear=shear,
        scale_jitter=scale_jitter, max_offset=max_offset, noise=noise,
        contamination_density=contamination_density,
        contamination_intensity=contamination_intensity, shape_jitter=shape_jitter,
    )  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    n = len(SUITS) * n_per_class
    labels = torch.arange(len(SUITS)).repeat_interleave(n_per_class)
    labels = labels[torch.randperm(n, generator=g)]
    angles = (torch.rand(n, generator=g) * 2 - 1) * angle_range
    shears = torch.rand(n, generator=g) * shear
    scales = 1 + (torch.rand(n, generator=g) * 2 - 1) * scale_jitter
    offsets = (torch.rand(n, 2, generator=g) * 2 - 1) * max_offset * image_size
    factors = None
    if shape_jitter > 0:
        k = max(len(c) for c in _SUIT_CONSTANTS.values())
        factors = 1 + (torch.rand(n, k, generator=g) * 2 - 1) * shape_jitter
    images = render_cards(
        labels, angles, shears, scales, offsets, image_size, shape_factors=factors
    )
    if noise > 0:
        images = images + noise * torch.randn(images.shape, generator=g)
    if contamination_density > 0:
        mask = torch.rand(images.shape, generator=g) < contamination_density
        images = images + contamination_intensity * mask
    images = images.clamp(0, 1)
    return {
        "images": images.numpy().astype(np.float32),
        "labels": labels.numpy().astype(np.int64),
        "angles": angles.numpy(),
        "shears": shears.numpy(),
        "scales": scales.numpy(),
        "offsets": offsets.numpy(),
        "suits": list(SUITS),
    }


def paper_split(
    n_labelled_per_class: int = 200,
    n_unlabelled_per_class: int = 3000,
    n_test_per_class: int = 500,
    image_size: int = 48,
    angle_range: float = math.radians(60),
    shear: float = 0.23,
    max_offset: float = 0.1,
    scale_jitter: float = 0.1,
    labelled_angle_range: float = math.radians(4),
    seed: int = 0,
    shape_jitter: float = 0.0,
) -> dict[str, dict[str, np.ndarray]]:
    """The labelled / unlabelled / test split of the ss-rVAE paper.

    Labelled cards are centred and weakly rotated (``+-4 deg``); unlabelled and
    test cards share the strong disorder (rotation ``+-angle_range``, shear
    ``[0, shear]``, offsets up to ``max_offset`` of the image) and differ only
    by their seed. All three sets have the same shear, scale jitter and shape
    jitter (see :func:`make_cards`).

    Returns
    -------
    dict
        ``{"labelled": ..., "unlabelled": ..., "test": ...}``, each the output of
        :func:`make_cards`.
    """
    common = {"image_size": image_size, "shear": shear, "scale_jitter": scale_jitter}
    if shape_jitter:
        common["shape_jitter"] = shape_jitter
    strong = {"angle_range": angle_range, "max_offset": max_offset, **common}
    return {
        "labelled": make_cards(
            n_labelled_per_class, angle_range=labelled_angle_range, seed=seed, **common
        ),
        "unlabelled": make_cards(n_unlabelled_per_class, seed=seed + 1, **strong),
        "test": make_cards(n_test_per_class, seed=seed + 2, **strong),
    }
