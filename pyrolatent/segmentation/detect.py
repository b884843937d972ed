"""Classical particle detection without training: band-pass peaks refined to sub-pixel.

:func:`detect_particles` is the Crocker–Grier scheme (the one trackpy
implements): a band-pass (Gaussian noise filter minus a boxcar background),
local maxima at least ``separation`` apart, and centroids refined iteratively
inside a disk of radius ``diameter // 2``. The mass threshold that rejects noise
is chosen from the data: the movie's pixel noise is measured (Immerkaer's
Laplacian estimator), pure noise of that level is passed through the same
detector, and the threshold is the mass that noise peaks exceed
``false_alarms_per_frame`` times per frame of this size.

:func:`pseudo_masks` gives instance masks and particles from a band-pass map,
an Otsu threshold and a watershed: the label-free start of segmentation.

Tables are dicts of equal-length 1-D numpy arrays with the particle-table
columns of :mod:`pyrolatent.segmentation.locate` plus detector columns.
Coordinates are ``(row, col)`` pixels, orientations radians as in ``locate``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ..checks import as_images
from ..data.particles import PARTICLE_COLUMNS, concat_tables
from .mass_threshold import population_mass_threshold

__all__ = [
    "band_sigma",
    "detect_particles",
    "null_mass_threshold",
]

DETECTOR_COLUMNS = {
    "mass": np.float64,
    "signal": np.float64,
    "snr": np.float64,
    "size": np.float64,
}


def _bandpass(frame, diameter, noise_size):
    """Gaussian noise filter minus a boxcar background, not clipped."""
    smooth = ndi.gaussian_filter(frame, noise_size, truncate=4.0) if noise_size > 0 else frame
    return smooth - ndi.uniform_filter(frame, size=diameter, mode="nearest")


def band_sigma(frame: np.ndarray, *, diameter: int, noise_size: float = 1.0) -> float:
    """Robust noise of the band-pass image at the particles' scale.

    Parameters
    ----------
    frame : numpy.ndarray
        ``(H, W)`` image (particles bright).
    diameter : int
        Boxcar background size, pixels.
    noise_size : float
        Gaussian noise filter, pixels.

    Returns
    -------
    float
        ``1.4826 * MAD`` of the band-pass image: the standard deviation of its
        background (particles covering under half the frame do not move it much).
    """
    band = _bandpass(np.asarray(frame, dtype=np.float32), diameter, noise_size)
    return float(1.4826 * np.median(np.abs(band - np.median(band))))


def _disk(radius):
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (yy**2 + xx**2 <= radius**2).astype(np.float64), yy, xx


def _peaks(band, floor, separation, margin, percentile):
    """Local maxima of ``band`` above ``floor`` and above a percentile of its positive part.

    The max filter is the largest square inside the disk of radius ``separation``;
    pairs closer than ``separation`` are resolved after refinement.
    """
    size = int(2 * separation / np.sqrt(2))
    is_max = (band == ndi.maximum_filter(band, size=size, mode="constant")) & (band > floor)
    if percentile > 0 and (band > 0).any():
        is_max &= band >= np.percentile(band[band > 0], percentile)
    h, w = band.shape
    is_max[:margin] = is_max[h - margin :] = False
    is_max[:, :margin] = is_max[:, w - margin :] = False
    return np.nonzero(is_max)


def _refine(band, rows, cols, radius, max_iterations):
    """Centroids inside a disk; the disk steps one pixel while the offset exceeds 0.6 px."""
    mask, yy, xx = _disk(radius)
    windows = np.lib.stride_tricks.sliding_window_view(band, mask.shape)
    h, w = band.shape
    rows, cols = rows.copy(), cols.copy()
    for _ in range(max_iterations):
        patch = windows[rows - radius, cols - radius] * mask
        mass = patch.sum(axis=(1, 2))
        safe = np.where(mass > 0, mass, 1.0)
        dy = (patch * yy).sum(axis=(1, 2)) / safe
        dx = (patch * xx).sum(axis=(1, 2)) / safe
        move = (np.abs(dy) > 0.6) | (np.abs(dx) > 0.6)
        if not move.any():
            break
        step_r = np.where(dy > 0.6, 1, 0) - np.where(dy < -0.6, 1, 0)
        step_c = np.where(dx > 0.6, 1, 0) - np.where(dx < -0.6, 1, 0)
        rows = np.clip(rows + step_r, radius, h - 1 - radius)
        cols = np.clip(cols + step_c, radius, w - 1 - radius)
    patch = windows[rows - radius, cols - radius] * mask
    return rows + dy, cols + dx, patch, mass


def _shape(patch, mass, dy, dx, radius):
    """Second moments of each masked patch about its centroid."""
    _, yy, xx = _disk(radius)
    safe = np.where(mass > 0, mass, 1.0)[:, None, None]
    y = yy[None] - dy[:, None, None]
    x = xx[None] - dx[:, None, None]
    myy = (patch * y * y).sum(axis=(1, 2)) / safe[:, 0, 0]
    mxx = (patch * x * x).sum(axis=(1, 2)) / safe[:, 0, 0]
    mxy = (patch * x * y).sum(axis=(1, 2)) / safe[:, 0, 0]
    half_diff = np.sqrt(((mxx - myy) / 2) ** 2 + mxy**2)
    lam1 = (mxx + myy) / 2 + half_diff
    lam2 = np.clip((mxx + myy) / 2 - half_diff, 0, None)
    # rows point down: an angle CCW as displayed from +x is atan2(-y, x)
    orientation = -0.5 * np.arctan2(2 * mxy, mxx - myy)
    orientation = np.where(orientation <= -np.pi / 2, orientation + np.pi, orientation)
    ecc = np.sqrt(np.clip(1 - lam2 / np.where(lam1 > 0, lam1, 1.0), 0, 1))
    return orientation, 4 * np.sqrt(lam1), 4 * np.sqrt(lam2), ecc, np.sqrt(mxx + myy)


def _detect_frame(frame, diameter, separation, noise_size, clip, percentile, max_iterations):
    """Peaks of one frame (particles bright), refined; close duplicates resolved."""
    radius = diameter // 2
    band = _bandpass(frame, diameter, noise_size)
    margin = max(radius, int(separation) // 2 - 1, diameter // 2)
    rows, cols = _peaks(band, clip, separation, margin, percentile)
    band[band < clip] = 0.0
    r, c, patch, mass = _refine(band, rows, cols, radius, max_iterations)
    # flat or double peaks: keep the heavier of two detections closer than separation
    tree = cKDTree(np.stack([r, c], axis=1))
    pairs = tree.query_pairs(separation - 1e-9, output_type="ndarray")
    if len(pairs):
        keep = np.ones(len(r), bool)
        for i, j in pairs[np.argsort(-np.maximum(mass[pairs[:, 0]], mass[pairs[:, 1]]))]:
            if keep[i] and keep[j]:
                keep[j if mass[i] >= mass[j] else i] = False
        r, c, patch, mass = r[keep], c[keep], patch[keep], mass[keep]
    return r, c, mass, patch


def null_mass_threshold(
    sigma: float,
    shape: tuple[int, int],
    *,
    diameter: int,
    separation: float,
    noise_size: float = 1.0,
    clip_sigma: float = 1.0,
    percentile: float = 64,
    false_alarms_per_frame: float = 0.5,
    null_pixels: int = 2**20,
    seed: int = 0,
) -> float:
    """Mass that peaks of pure noise exceed ``false_alarms_per_frame`` times per frame.

    White Gaussian noise, scaled so that its band-pass image has the standard
    deviation ``sigma``, goes through the detector with the same settings; the
    threshold is the mass exceeded by that many of its peaks per frame.

    Parameters
    ----------
    sigma : float
        Band-pass noise of the data (:func:`band_sigma`).
    shape : tuple of int
        ``(H, W)`` of the frames the threshold is for.
    diameter, separation, noise_size, clip_sigma, percentile
        The detector's settings (see :func:`detect_particles`).
    false_alarms_per_frame : float
        Expected number of noise peaks per frame above the threshold.
    null_pixels : int
        About this many pixels of noise are simulated (whole frames, at least 2).
    seed : int
        Seed of the ``numpy.random.default_rng`` that draws the noise.

    Returns
    -------
    float
        The mass threshold (0 when noise gives fewer peaks than allowed).
    """
    rng = np.random.default_rng(seed)
    n_null_frames = max(2, int(np.ceil(null_pixels / (shape[0] * shape[1]))))
    masses = []
    for _ in range(n_null_frames):
        noise = rng.standard_normal(size=shape, dtype=np.float32)
        noise *= sigma / band_sigma(noise, diameter=diameter, noise_size=noise_size)
        mass = _detect_frame(
            noise, diameter, separation, noise_size, clip_sigma * sigma, percentile, 10
        )[2]
        masses.append(mass)
    masses = np.sort(np.concatenate(masses))[::-1]
    exceed = int(np.floor(false_alarms_per_frame * n_null_frames))
    return float(masses[exceed]) if exceed < masses.size else 0.0


def detect_particles(
    frames,
    *,
    diameter: int,
    polarity: str = "bright",
    separation: float | None = None,
    noise_size: float = 1.0,
    clip_sigma: float = 1.0,
    percentile: float = 64,
    min_mass: float | None = None,
    false_alarms_per_frame: float = 0.5,
    population_sigma: float = 3.0,
    max_iterations: int = 10,
    first_frame: int = 0,
    seed: int = 0,
) -> dict:
    """Detect round particles with sub-pixel centroids, no training needed.

    Parameters
    ----------
    frames : array_like
        ``(N, H, W)`` frames (any units).
    diameter : int
        Odd apparent particle diameter in pixels (round up); it sets the band-pass
        background box, the centroid disk (radius ``diameter // 2``) and the margin.
    polarity : {"bright", "dark"}
        Particles brighter (fluorescence, HAADF, AFM height) or darker (bright-field,
        TEM) than the background.
    separation : float, optional
        Minimum centre distance, pixels; default ``diameter + 1``.
    noise_size : float
        Gaussian noise filter, pixels.
    clip_sigma : float
        Band-pass values below ``clip_sigma`` times the band-pass noise
        (:func:`band_sigma`, median over frames) are set to 0 before peaks,
        centroids and masses are measured.
    percentile : float
        A peak must exceed this percentile of the positive band-pass pixels.
    min_mass : float, optional
        Mass threshold (clipped band-pass summed over the disk). Default: chosen
        from the data, the larger of :func:`null_mass_threshold` (noise) and
        :func:`~pyrolatent.segmentation.mass_threshold.population_mass_threshold`
        (the faint end of the particles' own mass distribution, over all frames).
    false_alarms_per_frame : float
        Expected noise detections per frame allowed by the noise threshold.
    population_sigma : float
        Standard deviations of log-mass below the particle mode for the
        population threshold.
    max_iterations : int
        Re-centring steps of the centroid refinement.
    first_frame : int
        Frame number of the first frame (movies processed in blocks).
    seed : int
        Seed of the noise simulated for the default ``min_mass``.

    Returns
    -------
    dict
        Particle table (``frame, label, row, col, area, orientation, major_axis,
        minor_axis, eccentricity, mean_probability, mean_uncertainty,
        touches_border``; the mean probability and uncertainty NaN, ``touches_border``
        True where the centroid disk reaches past the frame) plus ``mass`` (clipped
        band-pass summed over the disk), ``signal`` (its peak value), ``snr``
        (``signal`` over the band-pass noise) and ``size`` (radius of gyration, pixels).

    Raises
    ------
    ValueError
        Wrong dimensions, NaN/Inf, an even or too small ``diameter``, or an unknown
        ``polarity``.
    """
    x = as_images(frames, "frames", ndim=(3,)).numpy()  # float32
    diameter = int(diameter)
    if diameter < 3 or diameter % 2 == 0:
        raise ValueError(f"diameter must be an odd integer >= 3, got {diameter}")
    if polarity not in ("bright", "dark"):
        raise ValueError(f"polarity must be 'bright' or 'dark', got {polarity!r}")
    if polarity == "dark":
        x = np.negative(x)
    separation = float(diameter + 1 if separation is None else separation)
    step = max(1, len(x) // 5)
    sigma = float(
        np.median([band_sigma(f, diameter=diameter, noise_size=noise_size) for f in x[::step]])
    )
    found = [
        _detect_frame(
            frame, diameter, separation, noise_size, clip_sigma * sigma, percentile, max_iterations
        )
        for frame in x
    ]
    if min_mass is None:
        null = null_mass_threshold(
            sigma,
            x.shape[1:],
            diameter=diameter,
            separation=separation,
            noise_size=noise_size,
            clip_sigma=clip_sigma,
            percentile=percentile,
            false_alarms_per_frame=false_alarms_per_frame,
            seed=seed,
        )
        population = population_mass_threshold(
            np.concatenate([f[2] for f in found]), n_sigma=population_sigma
        )
        min_mass = max(null, population)
    radius = diameter // 2
    parts = []
    for i, (r, c, mass, patch) in enumerate(found):
        keep = mass > min_mass
        r, c, mass, patch = r[keep], c[keep], mass[keep], patch[keep]
        signal = patch.max(axis=(1, 2)) if len(r) else np.zeros(0)
        dy = r - np.rint(r)
        dx = c - np.rint(c)
        orientation, major, minor, ecc, size = _shape(patch, mass, dy, dx, radius)
        n = len(r)
        parts.append(
            {
                "frame": np.full(n, first_frame + i),
                "label": np.arange(1, n + 1),
                "row": r,
                "col": c,
                "area": (patch > 0).sum(axis=(1, 2)).astype(np.float64),
                "orientation": orientation,
                "major_axis": major,
                "minor_axis": minor,
                "eccentricity": ecc,
                "mean_probability": np.full(n, np.nan),
                "mean_uncertainty": np.full(n, np.nan),
                # the centroid disk reaches past the frame: the particle is cut by the edge
                "touches_border": (np.minimum(r, c) < radius)
                | (r > x.shape[1] - 1 - radius)
                | (c > x.shape[2] - 1 - radius),
                "mass": mass,
                "signal": signal,
                "snr": signal / sigma if sigma > 0 else np.full(n, np.inf),
                "size": size,
            }
        )
    return concat_tables(parts, columns={**PARTICLE_COLUMNS, **DETECTOR_COLUMNS})
