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
from skimage.measure import label as label_regions

from .filters import bandpass_map, otsu_threshold
from .locate import foreground_mask, locate, split_touching

__all__ = ["pseudo_masks", "clearest_frames"]


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
    binary = foreground_mask(
        feature, threshold=threshold, min_area=min_area, opening_radius=opening_radius
    )
    # the cleaned foreground keeps its map values; the rest falls below the threshold
    cleaned = np.where(binary, feature, 0.0).astype(np.float32)
    particles = locate(
        cleaned,
        threshold=threshold,
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


def clearest_frames(frames, *, n: int, polarity: str = "bright", **bandpass) -> np.ndarray:
    """Indices of the ``n`` frames whose particles stand out most from the background.

    Parameters
    ----------
    frames : array_like
        ``(N, H, W)`` frames.
    n : int
        Number of frames to return (at most ``N``).
    polarity : {"bright", "dark"}
        As in :func:`pseudo_masks`.
    **bandpass
        ``noise_sigma`` and ``background_sigma`` of the band-pass map.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 frame indices, clearest first. Clarity is Otsu's
        between-class variance over the total variance of each frame's band-pass
        map (1: two flat levels; 0: no separation).
    """
    feature = bandpass_map(frames, dark_particles=polarity == "dark", **bandpass)
    score = np.zeros(len(feature))
    for i, fmap in enumerate(feature):
        total = fmap.var()
        if total <= 0:
            continue
        t = otsu_threshold(fmap)
        fg = fmap > t
        w1 = fg.mean()
        if 0 < w1 < 1:
            between = w1 * (1 - w1) * (fmap[fg].mean() - fmap[~fg].mean()) ** 2
            score[i] = between / total
    return np.argsort(-score, kind="stable")[: max(0, min(int(n), len(feature)))]
