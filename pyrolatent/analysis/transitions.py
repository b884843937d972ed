"""Transition detection on NMF time behaviours and peak counting of angles.

Change-point rule (stated once): every time behaviour ``e_k(t)`` is modelled
as constant up to an onset ``t1``, a linear ramp to a new constant reached at
``t2`` (``t1 < t2 <= t1 + max_ramp``; ``t2 = t1 + 1`` is a step), with
independent Gaussian residuals of one common variance. The transition frame
is the onset ``t1``: the first frame whose value differs from the "before"
level, fitted by least squares over all ``(t1, t2)``. Its uncertainty is the
standard deviation of the onsets refitted on moving-block bootstrap
resamples of the residuals (blocks of ``block`` frames keep their time
correlation), added to the fitted curve.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import find_peaks

from .kde import wrapped_kde

__all__ = ["transition_frame", "count_angle_peaks", "angle_peaks_per_window"]


def _ramps(t_len: int, max_ramp: int, margin: int):
    """All ramp shapes: pairs ``(onset, end)`` ``(P, 2)`` and ramps ``(P, T)``."""
    t = np.arange(t_len, dtype=np.float64)
    pairs = [
        (t1 + 1, t2)
        for t1 in range(margin - 1, t_len - margin)
        for t2 in range(t1 + 1, min(t1 + max_ramp, t_len - 1) + 1)
    ]
    pairs = np.asarray(pairs, dtype=np.int64)
    ramps = np.clip((t[None] - (pairs[:, :1] - 1)) / (pairs[:, 1:] - (pairs[:, :1] - 1)), 0, 1)
    return pairs, ramps


def _best_fit(y: np.ndarray, pairs: np.ndarray, ramps: np.ndarray):
    """Least-squares ramp fit (closed-form 2x2 normal equations for every pair)."""
    n = y.shape[0]
    sr, srr = ramps.sum(1)[:, None], (ramps**2).sum(1)[:, None]  # (P, 1)
    sy, syy = y.sum(0)[None], (y**2).sum(0)[None]  # (1, K)
    sry = ramps @ y  # (P, K)
    det = np.maximum(n * srr - sr**2, 1e-12)
    a = (srr * sy - sr * sry) / det
    b = (n * sry - sr * sy) / det
    sse = (syy - a * sy - b * sry).sum(1)
    best = int(np.argmin(sse))
    fitted = a[best][None] + ramps[best][:, None] * b[best][None]
    return pairs[best], fitted, y - fitted


def transition_frame(
    time_behaviours,
    *,
    max_ramp: int = 15,
    margin: int = 3,
    normalise: bool = True,
    n_bootstrap: int = 100,
    block: int = 5,
    seed: int = 0,
) -> dict:
    """Onset of the change in NMF time behaviours, with an uncertainty.

    Parameters
    ----------
    time_behaviours : array_like
        ``(T,)`` or ``(T, K)`` loadings ``e_k(t)`` (time on rows).
    max_ramp : int
        Longest ramp (frames) between the two levels.
    margin : int
        The onset is searched in ``[margin, T - margin]``.
    normalise : bool
        Divide each row by its sum first (fractions of the components), so
        frames with few particles weigh the same; rows summing to 0 (empty
        frames) are dropped from the fit but keep their frame numbers.

    Returns
    -------
    dict
        ``frame`` (int, onset), ``uncertainty`` (float, frames, bootstrap
        standard deviation), ``interval`` ((lo, hi) 5-95 % bootstrap
        frames), ``end`` (frame where the new level is reached),
        ``bootstrap`` (the resampled onsets).

    Raises
    ------
    ValueError
        NaN values, fewer than ``2 * margin + 2`` frames.
    """
    y = np.asarray(time_behaviours, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"time_behaviours: expected (T,) or (T, K), got {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("time_behaviours: contains NaN or Inf")
    t_len = y.shape[0]
    if max_ramp < 1 or margin < 1:
        raise ValueError("max_ramp and margin must be >= 1")
    if block < 1 or n_bootstrap < 0:
        raise ValueError("block must be >= 1 and n_bootstrap >= 0")
    if t_len < 2 * margin + 2:
        raise ValueError(f"need at least {2 * margin + 2} frames, got {t_len}")
    if normalise:
        s = y.sum(1)
        keep = s > 0
        if keep.sum() < 2 * margin + 2:
            raise ValueError("too few frames with a non-zero time behaviour")
        # empty frames: repeat the previous non-empty row (a carry-forward, no new information)
        idx = np.maximum.accumulate(np.where(keep, np.arange(t_len), 0))
        first = int(np.argmax(keep))
        idx[:first] = first
        y = (y / np.where(keep, s, 1.0)[:, None])[idx]
    all_pairs, ramps = _ramps(t_len, max_ramp, margin)
    pairs, fitted, resid = _best_fit(y, all_pairs, ramps)
    rng = np.random.default_rng(seed)
    n_blocks = int(math.ceil(t_len / block))
    onsets = np.empty(n_bootstrap, dtype=np.int64)
    for b in range(n_bootstrap):
        starts = rng.integers(0, t_len - block + 1, size=n_blocks)
        take = (starts[:, None] + np.arange(block)).ravel()[:t_len]
        onsets[b] = _best_fit(fitted + resid[take], all_pairs, ramps)[0][0]
    return {
        "frame": int(pairs[0]),
        "end": int(pairs[1]),
        "uncertainty": float(onsets.std()) if n_bootstrap > 1 else float("nan"),
        "interval": tuple(int(v) for v in np.quantile(onsets, [0.05, 0.95]))
        if n_bootstrap
        else (int(pairs[0]), int(pairs[0])),
        "bootstrap": onsets,
    }


def count_angle_peaks(
    angles,
    *,
    bandwidth: float = 0.1,
    grid_size: int = 360,
    min_height: float = 0.15,
    min_separation_deg: float = 20.0,
    period: float = 2 * math.pi,
) -> dict:
    """Number of modes of a circular angle distribution (wrapped KDE).

    A peak counts when it is a local maximum of the wrapped KDE, higher than
    ``min_height`` times the highest peak, and at least ``min_separation_deg``
    from a higher peak.

    Parameters
    ----------
    angles : array_like
        ``(N,)`` radians.
    bandwidth : float
        Kernel standard deviation, radians.
    grid_size : int
        Evaluation points over one period.
    min_height : float
        Relative height threshold in (0, 1).
    min_separation_deg : float
        Minimum distance between counted peaks, degrees.
    period : float

    Returns
    -------
    dict
        ``n_peaks`` (int), ``positions`` (radians, ``(n_peaks,)``, in
        ``[-period/2, period/2)``), ``density`` ``(grid_size,)`` and ``grid``.
    """
    a = np.asarray(angles, dtype=np.float64).ravel()
    if not 0 < min_height < 1:
        raise ValueError(f"min_height must be in (0, 1), got {min_height}")
    grid = np.linspace(-period / 2, period / 2, grid_size, endpoint=False)
    if a.size == 0:
        empty = np.zeros(grid_size)
        return {"n_peaks": 0, "positions": np.zeros(0), "density": empty, "grid": grid}
    dens = wrapped_kde(a, grid, bandwidth, period)
    tiled = np.concatenate([dens, dens, dens])
    distance = max(1, int(round(np.deg2rad(min_separation_deg) / (period / grid_size))))
    idx, _ = find_peaks(tiled, height=min_height * dens.max(), distance=distance)
    idx = idx[(idx >= grid_size) & (idx < 2 * grid_size)] - grid_size
    return {"n_peaks": int(idx.size), "positions": grid[idx], "density": dens, "grid": grid}


def angle_peaks_per_window(
    angles,
    frames,
    window: int,
    *,
    n_frames: int | None = None,
    bandwidth: float = 0.1,
    min_height: float = 0.15,
    min_separation_deg: float = 20.0,
) -> dict:
    """Peak counts of the angle distribution in consecutive time windows.

    Parameters
    ----------
    angles, frames : array_like
        ``(N,)`` radians and integer frames.
    window : int
        Frames per window (non-overlapping, the last one may be shorter).
    n_frames : int, optional
        Default ``max(frames) + 1``.

    Returns
    -------
    dict
        ``start`` (first frame of each window), ``n_peaks``, ``n_angles``.

    Raises
    ------
    ValueError
        A movie with fewer frames than ``window``, or mismatched inputs.
    """
    a = np.asarray(angles, dtype=np.float64).ravel()
    f = np.asarray(frames).ravel().astype(np.int64)
    if a.shape != f.shape:
        raise ValueError("angles and frames must have the same length")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if n_frames is None:
        n_frames = int(f.max()) + 1 if f.size else 0
    if n_frames < window:
        raise ValueError(f"the movie has {n_frames} frames, fewer than the window of {window}")
    starts = np.arange(0, n_frames, window)
    counts, sizes = [], []
    for s in starts:
        sel = (f >= s) & (f < s + window)
        r = count_angle_peaks(
            a[sel],
            bandwidth=bandwidth,
            min_height=min_height,
            min_separation_deg=min_separation_deg,
        )
        counts.append(r["n_peaks"])
        sizes.append(int(sel.sum()))
    return {"start": starts, "n_peaks": np.asarray(counts), "n_angles": np.asarray(sizes)}
