"""Card suits drawn from font glyphs: an independent renderer for evaluation only.

:func:`make_glyph_cards` has the signature and the return layout of
:func:`~pyrolatent.data.synthetic.cards.make_cards`, but shares none of its
drawing code: the four suits are the filled glyphs U+2663 (clubs), U+2666
(diamonds), U+2665 (hearts) and U+2660 (spades) of the DejaVu Sans font that
ships with matplotlib, taken as outlines with :class:`matplotlib.textpath.TextPath`,
rasterised once per suit at high resolution with
:meth:`matplotlib.path.Path.contains_points`, and posed with NumPy alone
(supersampled nearest look-ups in that bitmap; no torch). Class indices are
those of :data:`~pyrolatent.data.synthetic.cards.SUITS`.

Use it to check that a classifier trained on :func:`make_cards` learned the
suits rather than the generator: never train on these images.

Pose convention (the library's): the forward map of a canonical point ``p``
(centred pixels, ``y`` down) is::

    p' = scale * R(angle) @ S(shear) @ p + offset,   S(shear) = [[1, shear], [0, 1]]

with ``R`` counter-clockwise as displayed, angles in radians and offsets
``(dx, dy)`` in pixels. Each glyph is centred on the centre of its bounding box;
all four share one font scale, chosen so that the glyphs are
``glyph_height * image_size`` pixels tall (about the height of the analytic suits).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .cards import SUITS, check_card_options

__all__ = ["GLYPHS", "glyph_masks", "render_glyph_cards", "make_glyph_cards"]

#: the font character of each suit, in the order of :data:`SUITS`
GLYPHS = {"clubs": "\u2663", "diamonds": "\u2666", "hearts": "\u2665", "spades": "\u2660"}
_FONT = "DejaVu Sans"
_MASK_SIZE = 512  # canonical bitmap side, pixels
_MASK_EXTENT = 1.25  # the bitmap covers [-1.25, 1.25]^2 glyph units
_SUPERSAMPLE = 4  # samples per pixel and axis


@lru_cache(maxsize=1)
def glyph_masks() -> np.ndarray:
    """High-resolution canonical bitmaps of the four suits (cached).

    Returns
    -------
    numpy.ndarray
        ``(4, M, M)`` bool, ``M = 512``: ``masks[k, i, j]`` is whether the point
        ``(x, y) = E * (-1 + (j + 0.5) * 2 / M, -1 + (i + 0.5) * 2 / M)``,
        ``E = 1.25`` (glyph units, ``y`` down, origin at the centre of the
        glyph's bounding box), lies inside the glyph of suit ``k``. One glyph
        unit is half the common glyph height.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path
    from matplotlib.textpath import TextPath

    prop = FontProperties(family=_FONT)
    paths = [TextPath((0, 0), GLYPHS[s], size=1.0, prop=prop) for s in SUITS]
    height = max(p.get_extents().height for p in paths)
    centres = ((np.arange(_MASK_SIZE) + 0.5) * 2.0 / _MASK_SIZE - 1.0) * _MASK_EXTENT
    xx, yy = np.meshgrid(centres, centres)  # yy[i] varies along rows (y down)
    masks = np.empty((len(SUITS), _MASK_SIZE, _MASK_SIZE), dtype=bool)
    for k, path in enumerate(paths):
        ext = path.get_extents()
        cx, cy = (ext.x0 + ext.x1) / 2, (ext.y0 + ext.y1) / 2
        if max(ext.width, ext.height) / height >= _MASK_EXTENT:
            raise RuntimeError(f"the {_FONT} glyph of {SUITS[k]} does not fit its bitmap")
        # glyph units -> font units: x * h / 2 + cx, and y flips (fonts have y up)
        pts = np.stack([xx.ravel() * height / 2 + cx, -yy.ravel() * height / 2 + cy], axis=-1)
        polygons = path.to_polygons(closed_only=True)
        inside = np.zeros(pts.shape[0], dtype=bool)
        for poly in polygons:  # the suit glyphs are single outlines; xor keeps any holes
            inside ^= Path(poly).contains_points(pts)
        masks[k] = inside.reshape(_MASK_SIZE, _MASK_SIZE)
    return masks


def render_glyph_cards(
    labels: np.ndarray,
    angles: np.ndarray,
    shears: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    image_size: int = 48,
    glyph_height: float = 0.42,
    chunk: int = 128,
) -> np.ndarray:
    """Render posed glyph suits (noise-free), NumPy only.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(N,)`` suit indices into :data:`SUITS`.
    angles : numpy.ndarray
        ``(N,)`` radians, counter-clockwise as displayed.
    shears : numpy.ndarray
        ``(N,)`` horizontal shear factors of the canonical glyph.
    scales : numpy.ndarray
        ``(N,)`` magnifications.
    offsets : numpy.ndarray
        ``(N, 2)`` ``(dx, dy)`` pixels.
    image_size : int
        Side of the square images, pixels.
    glyph_height : float
        Height of an upright glyph at scale 1, as a fraction of ``image_size``.
    chunk : int
        Images rendered per vectorised step (memory only).

    Returns
    -------
    numpy.ndarray
        ``(N, image_size, image_size)`` float32 in ``[0, 1]``: the fraction of
        the ``4 x 4`` sub-pixel samples of each pixel that fall in the glyph.
    """
    masks = glyph_masks()
    m = masks.shape[-1]
    flat = masks.ravel()
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    if np.any((labels < 0) | (labels >= len(SUITS))):
        raise ValueError(f"labels must be in 0..{len(SUITS) - 1}")
    angles, shears, scales = (
        np.asarray(a, dtype=np.float64).reshape(n) for a in (angles, shears, scales)
    )
    offsets = np.asarray(offsets, dtype=np.float64).reshape(n, 2)
    # inverse pose, per image: p = S(-shear) @ R(-angle) @ (p' - offset) / scale, with
    # R(-angle) = [[c, -s], [s, c]] for (x, y-down) points; then glyph units -> bitmap index
    c, s = np.cos(angles), np.sin(angles)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (N, 2, 2)
    unshear = np.zeros((n, 2, 2))
    unshear[:, 0, 0] = unshear[:, 1, 1] = 1.0
    unshear[:, 0, 1] = -shears
    per_pixel = m / (2.0 * _MASK_EXTENT * glyph_height * image_size / 2.0)  # index / pixel
    lin = unshear @ rot / scales[:, None, None] * per_pixel  # (N, 2, 2)
    shift = m / 2.0 - np.einsum("nij,nj->ni", lin, offsets)  # (N, 2): (col, row)
    lin, shift = lin.astype(np.float32), shift.astype(np.float32)
    sub = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - 0.5
    axis = (np.arange(image_size)[:, None] + sub[None, :]).ravel() - (image_size - 1) / 2
    sy, sx = np.meshgrid(axis.astype(np.float32), axis.astype(np.float32), indexing="ij")
    sx, sy = sx.ravel()[None], sy.ravel()[None]  # (1, P) sample positions, pixels
    out = np.empty((n, image_size, image_size), dtype=np.float32)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        col = lin[sl, 0, 0:1] * sx + lin[sl, 0, 1:2] * sy + shift[sl, 0:1]
        row = lin[sl, 1, 0:1] * sx + lin[sl, 1, 1:2] * sy + shift[sl, 1:2]
        # the bitmap's border is empty, so clipped look-ups outside it read "outside";
        # after clipping at 0 the cast truncates like floor
        col = np.clip(col, 0, m - 1).astype(np.int32)
        row = np.clip(row, 0, m - 1).astype(np.int32)
        hit = flat[(labels[sl, None].astype(np.int32) * m + row) * m + col]
        hit = hit.reshape(-1, image_size, _SUPERSAMPLE, image_size, _SUPERSAMPLE)
        out[sl] = hit.mean(axis=(2, 4), dtype=np.float32)
    return out


def make_glyph_cards(
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
    """A balanced, shuffled set of disordered glyph suits with ground truth.

    The knobs mean what they mean in
    :func:`~pyrolatent.data.synthetic.cards.make_cards` (angles uniform in
    ``[-angle_range, angle_range]`` radians, shear uniform in ``[0, shear]``,
    magnification uniform in ``[1 - scale_jitter, 1 + scale_jitter]``, offsets
    uniform in ``[-max_offset, max_offset] * image_size`` pixels per axis,
    Gaussian noise of std ``noise``, a fraction ``contamination_density`` of
    pixels raised by ``contamination_intensity``, then clipped to ``[0, 1]``);
    the random stream is :func:`numpy.random.default_rng` ``(seed)``.

    Returns
    -------
    dict
        ``images (N, S, S) float32``, ``labels (N,) int64``, ``angles (N,)``
        radians, ``shears (N,)``, ``scales (N,)``, ``offsets (N, 2)`` pixels
        (float32) and ``suits`` (class names), ``N = 4 * n_per_class``.
    """
    check_card_options(
        n_per_class, image_size, angle_range=angle_range, shear=shear,
        scale_jitter=scale_jitter, max_offset=max_offset, noise=noise,
        contamination_density=contamination_density,
        contamination_intensity=contamination_intensity,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    n = len(SUITS) * n_per_class
    labels = rng.permutation(np.repeat(np.arange(len(SUITS)), n_per_class))
    angles = rng.uniform(-angle_range, angle_range, n)
    shears = rng.uniform(0.0, shear, n)
    scales = rng.uniform(1.0 - scale_jitter, 1.0 + scale_jitter, n)
    offsets = rng.uniform(-1.0, 1.0, (n, 2)) * max_offset * image_size
    images = render_glyph_cards(labels, angles, shears, scales, offsets, image_size)
    if noise > 0:
        images = images + noise * rng.standard_normal(images.shape)
    if contamination_density > 0:
        images = images + contamination_intensity * (
            rng.random(images.shape) < contamination_density
        )
    return {
        "images": np.clip(images, 0.0, 1.0).astype(np.float32),
        "labels": labels.astype(np.int64),
        "angles": angles.astype(np.float32),
        "shears": shears.astype(np.float32),
        "scales": scales.astype(np.float32),
        "offsets": offsets.astype(np.float32),
        "suits": list(SUITS),
    }
