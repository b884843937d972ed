"""Per-frame quality of an AFM movie: which frames are dominated by scan artefacts.

Three metrics per frame, each compared with the movie's own frames by a
robust z-score, so the threshold follows the data rather than a fixed unit:

* ``line_ratio``: mean squared difference between adjacent rows over that
  between adjacent columns. Content without a preferred direction gives
  similar values (about 1 for isotropic noise); scan-line offsets, streaks and
  smeared lines raise the row-to-row term.
* ``streak_fraction``: fraction of pixels in horizontal streaks: runs of at
  least ``max(8, W // 16)`` adjacent pixels along a row whose second
  difference across rows (``f[y] - (f[y-1] + f[y+1]) / 2``) exceeds 4 robust
  standard deviations. Particles give short runs; lines where the tip skipped
  or the feedback rang give long ones.
* ``saturation_fraction``: fraction of pixels at the frame's minimum or
  maximum value (the height range was clipped; a blank frame gives 1).

See :func:`frame_quality` for the flagging rule.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..checks import as_array, check_number

__all__ = ["frame_quality", "quality_metrics", "flag_frames", "robust_z", "QUALITY_METRICS"]

#: metric -> (flag column, minimum excess over the movie's median needed to flag).
#: ``line_ratio`` is compared as a logarithm: log(1.5) means 1.5 times the median.
QUALITY_METRICS = {
    "line_ratio": ("flag_lines", float(np.log(1.5))),
    "streak_fraction": ("flag_streaks", 0.01),
    "saturation_fraction": ("flag_saturation", 0.01),
}
STREAK_SIGMAS = 4.0


def robust_z(values) -> np.ndarray:
    """Modified z-scores ``0.6745 (v - median) / MAD`` (Iglewicz and Hoaglin 1993).

    A value equal to the median scores 0; with ``MAD = 0`` any other value
    scores ``+-inf``.
    """
    v = np.asarray(values, dtype=np.float64)
    med = np.median(v)
    mad = np.median(np.abs(v - med))
    dev = v - med
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 0.6745 * dev / mad
    return np.where(dev == 0, 0.0, z)


def _line_ratio(frame: np.ndarray) -> float:
    rows = float(np.mean(np.diff(frame, axis=0) ** 2))
    cols = float(np.mean(np.diff(frame, axis=1) ** 2))
    if cols == 0:
        return 1.0 if rows == 0 else float("inf")
    return rows / cols


def _streak_fraction(frame: np.ndarray) -> float:
    second = frame[1:-1] - 0.5 * (frame[:-2] + frame[2:])
    med = np.median(second)
    sigma = 1.4826 * np.median(np.abs(second - med))
    hot = np.abs(second - med) > STREAK_SIGMAS * sigma
    labels, n = ndimage.label(hot, structure=[[0, 0, 0], [1, 1, 1], [0, 0, 0]])
    if n == 0:
        return 0.0
    sizes = np.bincount(labels.ravel())[1:]
    min_run = max(8, frame.shape[1] // 16)
    return float(sizes[sizes >= min_run].sum() / second.size)


def _saturation_fraction(frame: np.ndarray) -> float:
    return float(np.mean((frame == frame.max()) | (frame == frame.min())))


def quality_metrics(frames, *, raw=None) -> dict:
    """The per-frame metrics of :func:`frame_quality`, without z-scores and flags.

    Frames can be scored block by block and the tables joined
    (:func:`flag_frames` then compares each frame with the whole movie).

    Returns
    -------
    dict
        ``line_ratio``, ``streak_fraction``, ``saturation_fraction``: ``(T,)`` each.
    """
    arr = as_array(frames, "frames", ndim=(3,), allow_bool=False)
    if min(arr.shape[1:]) < 3:
        raise ValueError(f"frames: frames must be at least 3 x 3 pixels, got {arr.shape[1:]}")
    raw = arr if raw is None else as_array(raw, "raw", ndim=(3,), allow_bool=False)
    if raw.shape != arr.shape:
        raise ValueError(f"raw: shape {raw.shape} differs from frames {arr.shape}")
    return {
        "line_ratio": np.array([_line_ratio(f) for f in arr]),
        "streak_fraction": np.array([_streak_fraction(f) for f in arr]),
        "saturation_fraction": np.array([_saturation_fraction(f) for f in raw]),
    }


def flag_frames(metrics: dict, *, z_threshold: float = 3.5) -> dict:
    """The quality table of :func:`frame_quality` from the metrics of every frame.

    Parameters
    ----------
    metrics : dict
        :func:`quality_metrics` of the whole movie (``(T,)`` columns).
    z_threshold : float
        Modified z-score above which a metric flags a frame (``> 0``).
    """
    z_threshold = check_number(z_threshold, "z_threshold", low=0, low_open=True)
    n = len(metrics["line_ratio"])
    table = {"frame": np.arange(n, dtype=np.int64)}
    table |= {name: np.asarray(metrics[name], dtype=np.float64) for name in QUALITY_METRICS}
    flagged = np.zeros(n, dtype=bool)
    for name, (flag, min_excess) in QUALITY_METRICS.items():
        values = table[name]
        if name == "line_ratio":
            with np.errstate(divide="ignore"):
                values = np.log(values)
        z = robust_z(values)
        table[f"{name}_z"] = z
        table[flag] = (z > z_threshold) & (values - np.median(values) >= min_excess)
        flagged |= table[flag]
    table["flagged"] = flagged
    return table


def frame_quality(frames, *, raw=None, z_threshold: float = 3.5) -> dict:
    """Per-frame scan-artefact metrics and a ``flagged`` column.

    A frame is flagged when any metric is both an outlier of the movie and
    large in absolute terms: its modified z-score (:func:`robust_z` over the
    movie's frames; for ``line_ratio`` of its logarithm) exceeds
    ``z_threshold`` (3.5, the cut recommended by Iglewicz and Hoaglin), and
    it exceeds the movie's median by a minimum effect (``line_ratio`` at least
    1.5 times the median, ``streak_fraction`` and ``saturation_fraction`` at
    least 0.01 above it), so that a very uniform movie (MAD near 0) does not
    flag trivial differences. Only high values flag. The rule assumes that
    most frames (more than half) are usable.

    Parameters
    ----------
    frames : array_like
        ``(T, H, W)`` frames, levelled and scan-line corrected (see
        :func:`pyrolatent.data.afm.preprocess_afm`); any height unit; no NaN/Inf.
        ``H, W >= 3``.
    raw : array_like, optional
        ``(T, H, W)`` frames as recorded, for ``saturation_fraction``
        (levelling moves the clipped values off the extremes); default
        ``frames``.
    z_threshold : float
        Modified z-score above which a metric flags a frame (``> 0``).

    Returns
    -------
    dict
        A table of ``T`` rows: ``frame`` (int), ``line_ratio``,
        ``streak_fraction``, ``saturation_fraction`` (see the module), their
        z-scores ``line_ratio_z``, ``streak_fraction_z``,
        ``saturation_fraction_z``, the bool columns ``flag_lines``,
        ``flag_streaks``, ``flag_saturation`` and ``flagged`` (any of them).
    """
    return flag_frames(quality_metrics(frames, raw=raw), z_threshold=z_threshold)
