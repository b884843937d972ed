"""Particle localisation from probability maps: threshold, regions, ellipse fits.

Tables are dicts of equal-length 1-D numpy arrays (one row per particle), ready
for ``pandas.DataFrame(table)``. Coordinates are ``(row, col)`` pixels;
orientations are radians counter-clockwise as displayed, measured from the +x
axis (along the columns) to the ellipse's major axis, in ``(-pi/2, pi/2]``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.measure import label as label_regions
from skimage.measure import regionprops
from skimage.segmentation import watershed as watershed_transform

from .._deprecated import forward
from ..checks import as_images, check_count, check_number
from ..data import particles as _table

__all__ = ["locate", "foreground_mask", "split_touching"]


def split_touching(
    binary: np.ndarray,
    labels: np.ndarray,
    min_distance: int = 3,
    landscape: np.ndarray | None = None,
) -> np.ndarray:
    """Split touching particles by a marker-based watershed.

    Parameters
    ----------
    binary : numpy.ndarray
        ``(H, W)`` bool foreground.
    labels : numpy.ndarray
        ``(H, W)`` connected-component labels of ``binary``.
    min_distance : int
        Minimum distance between particle centres (markers), pixels.
    landscape : numpy.ndarray, optional
        ``(H, W)`` map that peaks at particle centres (e.g. the probability or a
        band-pass image). Default: the distance transform of ``binary`` (good for
        round particles of similar size; use the intensity for touching particles
        of different sizes).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` int labels; each local maximum of the landscape becomes one region.
    """
    distance = ndi.distance_transform_edt(binary) if landscape is None else landscape
    peaks = peak_local_max(distance, min_distance=min_distance, labels=labels, exclude_border=False)
    markers = np.zeros(binary.shape, dtype=np.int64)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # components without a peak (tiny) keep one marker each
    missing = np.setdiff1d(np.unique(labels[binary]), np.unique(labels[markers > 0]))
    for k, lab in enumerate(missing, start=len(peaks) + 1):
        r, c = np.argwhere(labels == lab)[0]
        markers[r, c] = k
    return watershed_transform(-distance, markers, mask=binary)


def _clean_frame(binary, min_area, structure):
    if structure is not None:
        binary = ndi.binary_opening(binary, structure=structure)
    if min_area > 0 and binary.any():
        labels = label_regions(binary, connectivity=1)
        areas = np.bincount(labels.ravel())
        keep = areas >= min_area
        keep[0] = False
        binary = keep[labels]
    return binary


def foreground_mask(
    probability, *, threshold: float = 0.5, min_area: float = 0, opening_radius: int = 0
) -> np.ndarray:
    """Binary foreground of probability maps, cleaned of small regions and thin parts.

    Parameters
    ----------
    probability : array_like
        ``(N, H, W)`` or ``(N, C, H, W)`` maps (e.g. an ensemble mean); each map is
        cleaned on its own.
    threshold : float
        Foreground is ``probability > threshold``.
    min_area : float
        Connected regions (4-connected, as in :func:`locate`) with fewer pixels are
        removed, after the opening (0 keeps all).
    opening_radius : int
        Radius in pixels of a disk for a morphological opening, which removes parts
        thinner than about ``2 * opening_radius + 1`` pixels (0: no opening).

    Returns
    -------
    numpy.ndarray
        Boolean, the shape of ``probability``.

    Raises
    ------
    ValueError
        NaN/Inf values, wrong dimensions, or a negative ``min_area``/``opening_radius``.
    """
    if min_area < 0 or opening_radius < 0:
        raise ValueError(
            f"min_area and opening_radius must be >= 0, got {min_area}, {opening_radius}"
        )
    prob = as_images(probability, "probability", ndim=(3, 4)).numpy()
    binary = prob > threshold
    structure = None
    if opening_radius > 0:
        r = int(opening_radius)
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        structure = yy**2 + xx**2 <= r**2
    flat = binary.reshape(-1, *binary.shape[-2:])
    cleaned = np.stack([_clean_frame(b, min_area, structure) for b in flat])
    return cleaned.reshape(binary.shape)


def _locate_frame(prob, unc, frame, threshold, min_area, border_margin, watershed, min_distance):
    binary = prob > threshold
    if not binary.any():
        return _table.empty_table()
    labels = label_regions(binary, connectivity=1)
    if watershed:
        landscape = prob if watershed == "intensity" else None
        labels = split_touching(binary, labels, min_distance, landscape)
    h, w = prob.shape
    rows = {name: [] for name in _table.PARTICLE_COLUMNS if name != "particle_id"}
    for region in regionprops(labels, intensity_image=prob):
        if region.area < min_area:
            continue
        r, c = region.centroid_weighted
        if (
            r < border_margin
            or c < border_margin
            or r > h - 1 - border_margin
            or c > w - 1 - border_margin
        ):
            continue
        # skimage: angle from the rows axis to the major axis; ours: from +x, CCW as displayed
        orientation = region.orientation - np.pi / 2
        if orientation <= -np.pi / 2:
            orientation += np.pi
        rows["frame"].append(frame)
        rows["label"].append(region.label)
        rows["row"].append(r)
        rows["col"].append(c)
        rows["area"].append(region.area)
        rows["orientation"].append(orientation)
        rows["major_axis"].append(region.axis_major_length)
        rows["minor_axis"].append(region.axis_minor_length)
        # a one-pixel region has no axes: eccentricity 0 (skimage gives 0/0 = NaN)
        rows["eccentricity"].append(region.eccentricity if region.axis_major_length > 0 else 0.0)
        rows["mean_probability"].append(region.intensity_mean)
        rows["mean_uncertainty"].append(
            float(unc[labels == region.label].mean()) if unc is not None else np.nan
        )
        top, left, bottom, right = region.bbox
        rows["touches_border"].append(top == 0 or left == 0 or bottom == h or right == w)
    return {name: np.asarray(v, dtype=_table.PARTICLE_COLUMNS[name]) for name, v in rows.items()}


def locate(
    probability,
    *,
    threshold: float = 0.5,
    uncertainty=None,
    min_area: float = 5,
    border_margin: float = 0,
    watershed: bool | str = False,
    min_distance: int = 3,
    first_frame: int = 0,
) -> dict | list[dict]:
    """Find particles in probability maps and measure them.

    Parameters
    ----------
    probability : array_like
        ``(N, H, W)`` maps, or ``(N, C, H, W)`` for multi-channel output (one table
        per channel). Values are compared with ``threshold``; any map works (e.g.
        an ensemble mean, or a normalised filtered image).
    threshold : float
        Foreground is ``probability > threshold``.
    uncertainty : array_like, optional
        Same shape as ``probability`` (e.g. ensemble variance); its mean over each
        particle fills ``mean_uncertainty`` (NaN when absent).
    min_area : float
        Regions smaller than this many pixels are dropped.
    border_margin : float
        Particles whose centre lies closer than this to the frame edge are dropped
        (0 keeps all).
    watershed : bool or {"distance", "intensity"}
        Split touching particles by a watershed: ``True``/``"distance"`` puts one
        marker at each maximum of the distance transform, ``"intensity"`` at each
        maximum of ``probability`` itself (touching particles of unequal size).
    min_distance : int
        Minimum centre distance between split particles, pixels.
    first_frame : int
        Frame number of the first map (for movies processed in chunks).

    Returns
    -------
    dict or list of dict
        Particle table(s) (:mod:`pyrolatent.data.particles`) with columns
        ``particle_id`` (0 .. N-1 per table), ``frame, label, row, col, area,
        orientation, major_axis, minor_axis, eccentricity, mean_probability,
        mean_uncertainty, touches_border`` (the region reaches the frame's first
        or last row or column: the particle is cut by the edge).
        A frame with no particles contributes no rows (it is not an error).

    Raises
    ------
    ValueError
        NaN/Inf values, wrong dimensions, or an uncertainty of another shape.
    """
    prob = as_images(probability, "probability", ndim=(3, 4)).numpy()
    threshold = check_number(threshold, "threshold")
    min_area = check_number(min_area, "min_area", low=0)
    border_margin = check_number(border_margin, "border_margin", low=0)
    min_distance = check_count(min_distance, "min_distance", low=1)
    first_frame = check_count(first_frame, "first_frame", low=0)
    unc = None
    if uncertainty is not None:
        unc = as_images(uncertainty, "uncertainty", ndim=(3, 4)).numpy()
        if unc.shape != prob.shape:
            raise ValueError(
                f"uncertainty: shape {unc.shape} does not match probability {prob.shape}"
            )
    if min_area < 0 or border_margin < 0:
        raise ValueError("min_area and border_margin must be >= 0")
    multi = prob.ndim == 4
    if not multi:
        prob = prob[:, None]
        unc = unc[:, None] if unc is not None else None
    tables = []
    for ch in range(prob.shape[1]):
        per_frame = [
            _locate_frame(
                prob[i, ch],
                None if unc is None else unc[i, ch],
                first_frame + i,
                threshold,
                min_area,
                border_margin,
                watershed,
                min_distance,
            )
            for i in range(prob.shape[0])
        ]
        tables.append(_table.concat_tables(per_frame))
    return tables if multi else tables[0]


__getattr__ = forward(
    __name__,
    {
        "PARTICLE_COLUMNS": "pyrolatent.data.particles",
        "empty_table": "pyrolatent.data.particles",
        "concat_tables": "pyrolatent.data.particles",
    },
)
