"""Trajectory linking by optimal assignment, with gap closing, and track statistics.

Linking goes frame by frame. The open tracks (last seen at most ``max_gap + 1``
frames earlier) and the particles of the current frame are matched by the
Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`) on their
distances, within ``search_radius``. Each particle joins at most one track and
each track takes at most one particle per frame; particles left unmatched start
new tracks, in any frame.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from ..checks import check_count, check_number
from ..data.particles import check_particles

__all__ = ["link", "track_statistics", "mean_squared_displacement"]

_INFEASIBLE = 1e9


def _check_table(particles: dict, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = check_particles(particles, name=name)
    return table["frame"], table["row"], table["col"]


def _assign(pos, prev, gaps, search_radius, gap_penalty) -> np.ndarray:
    """Optimal assignment of current positions to open tracks within the radius.

    Returns, for each current particle, the index of its open track or -1. The
    assignment first maximises the number of links, then minimises the summed
    cost (distance plus ``gap_penalty`` per missed frame).
    """
    assigned = np.full(len(pos), -1, dtype=np.int64)
    if len(prev) == 0 or len(pos) == 0:
        return assigned
    pairs = cKDTree(pos).sparse_distance_matrix(cKDTree(prev), search_radius, output_type="ndarray")
    if len(pairs) == 0:
        return assigned
    i, j, d = pairs["i"], pairs["j"], pairs["v"]
    rows_with, ri = np.unique(i, return_inverse=True)
    cols_with, ci = np.unique(j, return_inverse=True)
    cost = np.full((len(rows_with), len(cols_with)), _INFEASIBLE)
    cost[ri, ci] = d + gap_penalty * gaps[j]
    a, b = linear_sum_assignment(cost)
    ok = cost[a, b] < _INFEASIBLE
    assigned[rows_with[a[ok]]] = cols_with[b[ok]]
    return assigned


def link(
    particles: dict,
    *,
    search_radius: float = 21.0,
    max_gap: int = 0,
    gap_penalty: float = 0.0,
) -> dict:
    """Link particles into trajectories.

    Parameters
    ----------
    particles : dict
        Particle table (:mod:`pyrolatent.data.particles`) with ``frame``,
        ``row`` and ``col`` columns (any other columns, ``particle_id``
        included, are carried along).
    search_radius : float
        Largest displacement (pixels) allowed for one link (21 px in the paper).
    max_gap : int
        Number of consecutive missing frames a track may bridge (gap closing);
        0 links consecutive frames only.
    gap_penalty : float
        Extra cost (pixels) per missing frame, so a recent track wins ties.

    Returns
    -------
    dict
        A copy of the input table (rows in input order) with a new ``track``
        column (int64, tracks numbered from 0 by first appearance) and
        ``particle`` (row number in the input table).

    Raises
    ------
    ValueError
        Missing columns, NaN coordinates, fractional frames, a radius that is
        not finite and positive, a negative or fractional gap, a negative penalty.
    """
    frame, row, col = _check_table(particles, "particles")
    search_radius = check_number(search_radius, "search_radius", low=0, low_open=True)
    max_gap = check_count(max_gap, "max_gap", low=0)
    gap_penalty = check_number(gap_penalty, "gap_penalty", low=0)
    n = len(frame)
    track = np.full(n, -1, dtype=np.int64)
    # open tracks as arrays: id, last frame seen, last position
    open_ids = np.zeros(0, dtype=np.int64)
    open_last = np.zeros(0, dtype=np.int64)
    open_pos = np.zeros((0, 2))
    n_tracks = 0
    order = np.argsort(frame, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(frame[order]) != 0, True]) if n else [0]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        idx = order[start:stop]
        f = frame[idx[0]]
        pos = np.stack([row[idx], col[idx]], axis=1)
        alive = f - open_last <= max_gap + 1
        open_ids, open_last, open_pos = open_ids[alive], open_last[alive], open_pos[alive]
        assigned = _assign(pos, open_pos, f - open_last - 1, search_radius, gap_penalty)
        matched = assigned >= 0
        ids = np.empty(len(idx), dtype=np.int64)
        ids[matched] = open_ids[assigned[matched]]
        n_new = int((~matched).sum())
        ids[~matched] = np.arange(n_tracks, n_tracks + n_new)
        n_tracks += n_new
        track[idx] = ids
        untaken = np.ones(len(open_ids), bool)
        untaken[assigned[matched]] = False
        open_ids = np.r_[ids, open_ids[untaken]]
        open_last = np.r_[np.full(len(idx), f), open_last[untaken]]
        open_pos = np.concatenate([pos, open_pos[untaken]])
    out = {k: np.asarray(v).copy() for k, v in particles.items()}
    out["track"] = track
    out["particle"] = np.arange(n, dtype=np.int64)
    return out


def mean_squared_displacement(trajectories: dict, max_lag: int = 10) -> dict:
    """Ensemble mean-squared displacement against lag, over all tracks.

    Parameters
    ----------
    trajectories : dict
        Output of :func:`link` (``frame``, ``row``, ``col``, ``track``).
    max_lag : int
        Largest lag in frames.

    Returns
    -------
    dict
        ``lag`` (frames), ``msd`` (pixels squared; NaN where no pair exists) and
        ``n_pairs`` per lag.
    """
    frame, row, col = _check_table(trajectories, "trajectories")
    track = np.asarray(trajectories["track"], dtype=np.int64)
    lags = np.arange(1, max_lag + 1)
    sums = np.zeros(max_lag)
    counts = np.zeros(max_lag, dtype=np.int64)
    order = np.lexsort((frame, track))
    frame, row, col, track = frame[order], row[order], col[order], track[order]
    starts = np.flatnonzero(np.r_[True, track[1:] != track[:-1]])
    ends = np.r_[starts[1:], len(track)]
    for s, e in zip(starts, ends, strict=True):
        f = frame[s:e]
        lookup = {int(v): k for k, v in enumerate(f)}
        for k, lag in enumerate(lags):
            j = [lookup.get(int(v) + lag, -1) for v in f]
            j = np.asarray(j)
            ok = j >= 0
            if ok.any():
                i = np.flatnonzero(ok)
                d2 = (row[s:e][j[ok]] - row[s:e][i]) ** 2 + (col[s:e][j[ok]] - col[s:e][i]) ** 2
                sums[k] += d2.sum()
                counts[k] += ok.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        msd = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return {"lag": lags, "msd": msd, "n_pairs": counts}


def track_statistics(trajectories: dict) -> dict:
    """Per-track summary table.

    Parameters
    ----------
    trajectories : dict
        Output of :func:`link`.

    Returns
    -------
    dict
        One row per track: ``track``, ``start``, ``end`` (frames), ``length``
        (number of detections), ``n_gaps`` (missing frames bridged),
        ``mean_step`` (mean displacement per link, pixels, NaN for one detection)
        and ``msd1`` (mean squared displacement over one frame, pixels squared,
        NaN without consecutive detections).
    """
    frame, row, col = _check_table(trajectories, "trajectories")
    track = np.asarray(trajectories["track"], dtype=np.int64)
    columns = ("track", "start", "end", "length", "n_gaps", "mean_step", "msd1")
    out = {c: [] for c in columns}
    order = np.lexsort((frame, track))
    frame, row, col, track = frame[order], row[order], col[order], track[order]
    starts = np.flatnonzero(np.r_[True, track[1:] != track[:-1]]) if len(track) else []
    ends = np.r_[starts[1:], len(track)] if len(track) else []
    for s, e in zip(starts, ends, strict=True):
        f = frame[s:e]
        step = np.hypot(np.diff(row[s:e]), np.diff(col[s:e]))
        consecutive = np.diff(f) == 1
        out["track"].append(track[s])
        out["start"].append(f[0])
        out["end"].append(f[-1])
        out["length"].append(e - s)
        out["n_gaps"].append(int((np.diff(f) - 1).sum()))
        out["mean_step"].append(step.mean() if len(step) else np.nan)
        out["msd1"].append((step[consecutive] ** 2).mean() if consecutive.any() else np.nan)
    dtypes = (np.int64, np.int64, np.int64, np.int64, np.int64, np.float64, np.float64)
    return {c: np.asarray(out[c], dtype=dt) for c, dt in zip(columns, dtypes, strict=True)}
