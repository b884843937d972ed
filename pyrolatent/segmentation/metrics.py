"""Scores of segmentation, detection, orientation and linking against ground truth."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "pixel_iou",
    "match_particles",
    "detection_scores",
    "axis_angle_error",
    "link_recall",
    "away_from_border",
]


def pixel_iou(predicted, truth) -> float:
    """Intersection over union of two boolean masks of the same shape (1.0 if both empty)."""
    p = np.asarray(predicted, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"predicted {p.shape} and truth {t.shape} masks differ in shape")
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def match_particles(found: dict, truth: dict, max_distance: float = 3.0) -> tuple:
    """One-to-one matching of found and true particles, frame by frame.

    Parameters
    ----------
    found, truth : dict
        Tables with ``frame``, ``row`` and ``col``.
    max_distance : float
        Largest centre distance of a match, pixels.

    Returns
    -------
    found_index, truth_index : numpy.ndarray
        Row numbers of matched pairs (Hungarian assignment on the distances).
    """
    fi, ti = [], []
    ff, tf = np.asarray(found["frame"]), np.asarray(truth["frame"])
    for f in np.intersect1d(np.unique(ff), np.unique(tf)):
        a = np.flatnonzero(ff == f)
        b = np.flatnonzero(tf == f)
        pa = np.stack([np.asarray(found["row"])[a], np.asarray(found["col"])[a]], 1)
        pb = np.stack([np.asarray(truth["row"])[b], np.asarray(truth["col"])[b]], 1)
        dist = np.hypot(*(pa[:, None] - pb[None]).transpose(2, 0, 1))
        cost = np.where(dist <= max_distance, dist, 1e9)
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] <= max_distance
        fi.append(a[r[ok]])
        ti.append(b[c[ok]])
    if not fi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(fi).astype(np.int64), np.concatenate(ti).astype(np.int64)


def detection_scores(
    found: dict,
    truth: dict,
    max_distance: float = 3.0,
    shape: tuple[int, int] | None = None,
    margin: float = 0.0,
) -> dict:
    """Precision, recall and F1 of detections matched within ``max_distance`` pixels.

    Parameters
    ----------
    found, truth : dict
        Tables with ``frame``, ``row`` and ``col``.
    max_distance : float
        Largest centre distance of a match, pixels.
    shape : (int, int), optional
        Frame size; with ``margin``, particles near the edge are matched but not
        scored: a true particle counts only if its centre is at least ``margin``
        inside the frame, and an unmatched detection is a false positive only if it
        is itself that far inside (a matched pair is scored by its true particle).
    margin : float
        Width of the edge band left out of the scores, pixels.
    """
    fi, ti = match_particles(found, truth, max_distance)
    n_found, n_true = len(found["frame"]), len(truth["frame"])
    if shape is None or margin <= 0:
        true_in = np.ones(n_true, bool)
        found_in = np.ones(n_found, bool)
    else:
        true_in = _inside(truth, shape, margin)
        found_in = _inside(found, shape, margin)
    matched_found = np.zeros(n_found, bool)
    matched_found[fi] = True
    tp = int(true_in[ti].sum())
    fn = int(true_in.sum()) - tp
    fp = int((found_in & ~matched_found).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n_matched": tp}


def axis_angle_error(a, b) -> np.ndarray:
    """Absolute difference of axis angles modulo pi (radians, in [0, pi/2])."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.abs(np.angle(np.exp(2j * d))) / 2


def link_recall(trajectories: dict, truth: dict, max_distance: float = 3.0) -> float:
    """Fraction of true frame-to-frame links recovered by the trajectories.

    A true link (particle ``id`` in frames ``t`` and ``t + 1``) is recovered when
    both of its detections are matched (within ``max_distance``) to found
    particles that carry the same ``track``. Missed detections count as missed
    links.

    Parameters
    ----------
    trajectories : dict
        Output of :func:`pyrolatent.analysis.tracking.link`.
    truth : dict
        Ground truth with ``frame``, ``id``, ``row``, ``col``.
    """
    fi, ti = match_particles(trajectories, truth, max_distance)
    track_of = {}
    frames, ids = np.asarray(truth["frame"]), np.asarray(truth["id"])
    tracks = np.asarray(trajectories["track"])
    for f_row, t_row in zip(fi, ti, strict=True):
        track_of[(int(frames[t_row]), int(ids[t_row]))] = int(tracks[f_row])
    present = set(zip(frames.tolist(), ids.tolist(), strict=True))
    links = [(f, i) for f, i in present if (f + 1, i) in present]
    if not links:
        return 1.0
    hits = sum(
        1
        for f, i in links
        if (f, i) in track_of and track_of.get((f + 1, i), -1) == track_of[(f, i)]
    )
    return hits / len(links)


def _inside(table: dict, shape: tuple[int, int], margin: float) -> np.ndarray:
    h, w = shape
    r, c = np.asarray(table["row"]), np.asarray(table["col"])
    return (r >= margin) & (c >= margin) & (r <= h - 1 - margin) & (c <= w - 1 - margin)


def away_from_border(table: dict, shape: tuple[int, int], margin: float) -> dict:
    """Rows of ``table`` whose centre lies at least ``margin`` pixels inside a frame of ``shape``.

    Used to score particles without those cut by the frame edge, whose visible
    centroid differs from their true centre.
    """
    keep = _inside(table, shape, margin)
    return {k: np.asarray(v)[keep] for k, v in table.items()}
