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

__all__ = ["SUITS", "render_cards", "make_cards", "paper_split"]

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


def render_cards(
    labels: torch.Tensor,
    angles: torch.Tensor,
    shears: torch.Tensor,
    scales: torch.Tensor,
    offsets: torch.Tensor,
    image_size: int = 48,
    card_size: float | None = None,
    edge_width: float = 0.6,
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
            out[sel] = torch.sigmoid(-_suit_sdf(suit, pts[sel]) * size / edge_width)
    return out.reshape(-1, image_size, image_size)


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

    Returns
    -------
    dict
        ``images (N, S, S) float32`` in ``[0, 1]`` (noise and contamination are
        clipped), ``labels (N,) int64``, ``angles (N,)`` radians,
        ``shears (N,)``, ``scales (N,)``, ``offsets (N, 2)`` pixels and
        ``suits`` (class names).
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
    ):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value}")
    if scale_jitter >= 1:
        raise ValueError(f"scale_jitter must be < 1, got {scale_jitter}")
    if max_offset > 0.5:
        raise ValueError(
            f"max_offset is a fraction of the image and must be <= 0.5, got {max_offset}"
        )
    if not 0 <= contamination_density <= 1:
        raise ValueError(f"contamination_density must be in [0, 1], got {contamination_density}")
    g = torch.Generator().manual_seed(seed)
    n = len(SUITS) * n_per_class
    labels = torch.arange(len(SUITS)).repeat_interleave(n_per_class)
    labels = labels[torch.randperm(n, generator=g)]
    angles = (torch.rand(n, generator=g) * 2 - 1) * angle_range
    shears = torch.rand(n, generator=g) * shear
    scales = 1 + (torch.rand(n, generator=g) * 2 - 1) * scale_jitter
    offsets = (torch.rand(n, 2, generator=g) * 2 - 1) * max_offset * image_size
    images = render_cards(labels, angles, shears, scales, offsets, image_size)
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
) -> dict[str, dict[str, np.ndarray]]:
    """The labelled / unlabelled / test split of the ss-rVAE paper.

    Labelled cards are centred and weakly rotated (``+-4 deg``); unlabelled and
    test cards share the strong disorder (rotation ``+-angle_range``, shear
    ``[0, shear]``, offsets up to ``max_offset`` of the image) and differ only
    by their seed. All three sets have the same shear and scale jitter.

    Returns
    -------
    dict
        ``{"labelled": ..., "unlabelled": ..., "test": ...}``, each the output of
        :func:`make_cards`.
    """
    common = {"image_size": image_size, "shear": shear, "scale_jitter": scale_jitter}
    strong = {"angle_range": angle_range, "max_offset": max_offset, **common}
    return {
        "labelled": make_cards(
            n_labelled_per_class, angle_range=labelled_angle_range, seed=seed, **common
        ),
        "unlabelled": make_cards(n_unlabelled_per_class, seed=seed + 1, **strong),
        "test": make_cards(n_test_per_class, seed=seed + 2, **strong),
    }
