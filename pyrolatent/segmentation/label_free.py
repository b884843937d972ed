"""Pseudo-masks without training: band-pass, Otsu threshold, optional watershed.

The label-free start of segmentation: instance masks and a particle table from
a difference-of-Gaussians map (:func:`~pyrolatent.segmentation.filters.bandpass_map`)
thresholded by Otsu's method over the whole movie, with touching particles
split by a marker watershed. :func:`clearest_frames` ranks frames by how well
that threshold separates particles from background, to pick the frames whose
pseudo-masks can train an ensemble.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as label_regions

from .filters import bandpass_map, otsu_threshold
from .locate import foreground_mask, locate, split_touching

__all__ = ["pseudo_masks", "clearest_frames", "local_foreground", "FLAT_RANGE"]

#: A frame whose value range is at most this fraction of the movie's median
#: range is flat (blank, or levelled to rounding noise) and never "clearest".
FLAT_RANGE = 1e-6


def pseudo_masks(
    frames,
    *,
    polarity: str = "bright",
    noise_sigma: float = 1.0,
    background_sigma: float = 10.0,
    threshold: float | None = None,
    min_area: float = 15,
    opening_radius: int = 0,
    watershed: bool | str = False,
    min_distance: int = 3,
    local_fraction: float | None = None,
    local_size: int | None = None,
) -> tuple[np.ndarray, dict]:
    """Instance masks and particles of a movie with no labels and no training.

    Parameters
    ----------
    frames : array_like
        ``(N, H, W)`` frames.
    polarity : {"bright", "dark"}
        Particles brighter or darker than the background.
    noise_sigma, background_sigma : float
        Band-pass scales in pixels: the noise smoothing, and the background
        subtracted (about the particle size or larger).
    threshold : float, optional
        Foreground is ``map > threshold`` on the band-pass map scaled to
        ``[0, 1]`` per frame; default Otsu's threshold over the whole movie.
    min_area : float
        Regions with fewer pixels are dropped.
    opening_radius : int
        Disk radius of a morphological opening that removes thin parts (0: none).
    watershed : bool or {"distance", "intensity"}
        Split touching particles (see :func:`~pyrolatent.segmentation.locate.locate`).
    min_distance : int
        Minimum distance between split particles' centres, pixels.
    local_fraction : float, optional
        Particle edges at this fraction of each particle's own height instead of
        at the one global threshold (see :func:`local_foreground`): a particle
        whose brightness varies along it (a bright head, a dim thin tail) keeps
        its dim end, so its mask and centroid are not pulled to the bright part.
        None: the global threshold alone.
    local_size : int, optional
        Window of the local maximum, pixels (about the particle's width or
        larger); default ``2 * round(background_sigma / 2) + 1``.

    Returns
    -------
    labels : numpy.ndarray
        ``(N, H, W)`` int32 instance labels (0 background); a frame's labels are
        the ``label`` column of the table.
    particles : dict
        The particle table of :func:`~pyrolatent.segmentation.locate.locate`.

    Raises
    ------
    ValueError
        Wrong dimensions, NaN/Inf, or an unknown ``polarity``.
    """
    if polarity not in ("bright", "dark"):
        raise ValueError(f"polarity must be 'bright' or 'dark', got {polarity!r}")
    feature = bandpass_map(
        frames,
        noise_sigma=noise_sigma,
        background_sigma=background_sigma,
        dark_particles=polarity == "dark",
    )
    if threshold is None:
        threshold = otsu_threshold(feature)
    level, cut = feature, threshold
    if local_fraction is not None:
        size = local_size if local_size is not None else 2 * round(background_sigma / 2) + 1
        local = local_foreground(feature, threshold=threshold, fraction=local_fraction, size=size)
        level, cut = np.where(local, feature, 0.0).astype(np.float32), 0.0  # > 0 inside
    binary = foreground_mask(level, threshold=cut, min_area=min_area, opening_radius=opening_radius)
    # the cleaned foreground keeps its map values; the rest falls below the threshold
    cleaned = np.where(binary, feature, 0.0).astype(np.float32)
    particles = locate(
        cleaned,
        threshold=cut,
        min_area=min_area,
        watershed=watershed,
        min_distance=min_distance,
    )
    labels = np.zeros(feature.shape, dtype=np.int32)
    for i, (fg, prob) in enumerate(zip(binary, cleaned, strict=True)):
        if not fg.any():
            continue
        lab = label_regions(fg, connectivity=1)
        if watershed:
            landscape = prob if watershed == "intensity" else None
            lab = split_touching(fg, lab, min_distance, landscape)
        kept = particles["label"][particles["frame"] == i]
        labels[i] = np.where(np.isin(lab, kept), lab, 0)
    return labels, particles


def local_foreground(
    feature, *, threshold: float, fraction: float = 0.4, size: int = 7, floor: float = 0.5
) -> np.ndarray:
    """Foreground whose edges sit at a fraction of each particle's own height.

    A pixel is foreground when it is at least ``fraction`` of the largest map
    value within ``size`` pixels (its particle's local height, as in a full
    width at a fraction of the maximum) and above ``floor * threshold``; regions
    are kept only where some pixel exceeds ``threshold`` (hysteresis), so
    background noise at the lower level is not taken for particles.

    Parameters
    ----------
    feature : numpy.ndarray
        ``(N, H, W)`` band-pass maps scaled to ``[0, 1]`` per frame (particles bright).
    threshold : float
        The global particle level (e.g. Otsu's threshold of the maps).
    fraction : float
        In ``(0, 1)``: edge level relative to the local maximum.
    size : int
        Window of the local maximum, pixels.
    floor : float
        In ``(0, 1]``: the lowest level, relative to ``threshold``.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` bool.

    Raises
    ------
    ValueError
        ``fraction`` or ``floor`` out of range, ``size`` < 1.
    """
    if not 0 < fraction < 1 or not 0 < floor <= 1 or int(size) < 1:
        raise ValueError(
            f"need 0 < fraction < 1, 0 < floor <= 1 and size >= 1, got {fraction}, {floor}, {size}"
        )
    feature = np.asarray(feature)
    peak = ndi.maximum_filter(feature, size=(1, int(size), int(size)))
    candidate = (feature > floor * threshold) & (feature >= fraction * peak)
    out = np.zeros(feature.shape, dtype=bool)
    for i, (cand, fmap) in enumerate(zip(candidate, feature, strict=True)):
        lab, n = ndi.label(cand)
        if n:
            strong = np.zeros(n + 1, dtype=bool)
            strong[np.unique(lab[cand & (fmap > threshold)])] = True
            strong[0] = False
            out[i] = strong[lab]
    return out


def clearest_frames(
    frames, *, n: int, polarity: str = "bright", block: int = 32, exclude=None, **bandpass
) -> np.ndarray:
    """Indices of the ``n`` frames whose particles stand out most from the background.

    Flat frames (value range at most :data:`FLAT_RANGE` times the median range
    of the frames: blank frames, or levelled to rounding noise) and the frames
    in ``exclude`` are never returned: their band-pass map, scaled to ``[0, 1]``,
    would make rounding noise look like the clearest particles.

    Parameters
    ----------
    frames : array_like
        ``(N, H, W)`` frames.
    n : int
        Number of frames to return (at most ``N``).
    polarity : {"bright", "dark"}
        As in :func:`pseudo_masks`.
    block : int
        Frames filtered at a time (memory: ``block`` band-pass maps; ``frames``
        may be a lazy reader that loads slices on demand).
    exclude : sequence of int, optional
        Frames not to return (e.g. those flagged by
        :func:`pyrolatent.data.afm.frame_quality`).
    **bandpass
        ``noise_sigma`` and ``background_sigma`` of the band-pass map.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` int64 frame indices, clearest first, ``k = min(n, usable
        frames)``. Clarity is Otsu's between-class variance over the total
        variance of each frame's band-pass map (1: two flat levels; 0: no
        separation).

    Raises
    ------
    ValueError
        If every frame is flat or excluded.
    """
    n_frames, block = len(frames), max(1, int(block))
    score, spread = np.zeros(n_frames), np.zeros(n_frames)
    for start in range(0, n_frames, block):
        chunk = np.asarray(frames[start : start + block], dtype=np.float64)
        spread[start : start + len(chunk)] = np.ptp(chunk.reshape(len(chunk), -1), axis=1)
        feature = bandpass_map(chunk, dark_particles=polarity == "dark", **bandpass)
        for i, fmap in enumerate(feature, start=start):
            score[i] = _clarity(fmap)
    flat = spread <= FLAT_RANGE * np.median(spread)
    usable = ~flat
    if exclude is not None:
        usable[np.asarray(exclude, dtype=np.int64)] = False
    if not usable.any():
        raise ValueError(
            f"no frame to take pseudo-masks from: {int(flat.sum())} of {n_frames} frames are "
            f"flat (constant, or rounding noise), {n_frames - int(flat.sum())} excluded"
        )
    order = np.flatnonzero(usable)[np.argsort(-score[usable], kind="stable")]
    return order[: max(0, int(n))]


def _clarity(fmap: np.ndarray) -> float:
    """Otsu's between-class variance over the total variance of one map (0 to 1)."""
    total = fmap.var()
    if total <= 0:
        return 0.0
    fg = fmap > otsu_threshold(fmap)
    w1 = fg.mean()
    if not 0 < w1 < 1:
        return 0.0
    return float(w1 * (1 - w1) * (fmap[fg].mean() - fmap[~fg].mean()) ** 2 / total)
