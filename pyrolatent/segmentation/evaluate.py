"""Score a segmentation of a synthetic movie against its ground truth (pixels, particles, links)."""

from __future__ import annotations

import numpy as np

from ..analysis.tracking import link
from .locate import locate
from .metrics import (
    away_from_border,
    axis_angle_error,
    detection_scores,
    link_recall,
    match_particles,
    pixel_iou,
)

__all__ = ["score_on_movie"]


def score_on_movie(
    movie,
    mean,
    variance,
    frames,
    *,
    max_distance: float = 3.0,
    min_area: int = 15,
    search_radius: float = 21.0,
    max_gap: int = 2,
) -> dict:
    """Pixel IoU, particle F1, axis error and link recall of a segmentation of a synthetic movie.

    Particles whose true centre lies within half a rod length plus one pixel of
    the frame edge are matched but not scored (their visible part is cut by the
    edge, so their centroid is not their true centre).

    Parameters
    ----------
    movie : SelfAssemblyMovie
        From :func:`pyrolatent.data.synthetic.self_assembly.make_self_assembly_movie`
        (``frames``, ``masks``, ``particles`` with ``axis_angle``, ``params``).
    mean, variance : numpy.ndarray
        ``(F, 1, H, W)`` foreground probability and its variance for ``frames``
        (:meth:`pyrolatent.segmentation.DeepEnsemble.predict`).
    frames : sequence of int
        The ``F`` consecutive movie frames that were segmented.
    max_distance : float
        Matching distance (pixels).
    min_area : int
        Smallest particle (pixels) for :func:`~pyrolatent.segmentation.locate`.
    search_radius, max_gap
        Linking settings (:func:`pyrolatent.analysis.tracking.link`).

    Returns
    -------
    dict
        ``iou``, ``f1`` (away from the border), ``f1_all_particles``,
        ``orientation_median_error_deg`` (axis, modulo 180 degrees), ``link_recall``
        and ``particles`` (the located table).
    """
    frames = [int(f) for f in frames]
    shape = tuple(movie.frames.shape[1:])
    iou = pixel_iou(mean[:, 0] > 0.5, movie.masks[frames] > 0)
    found = locate(mean[:, 0], uncertainty=variance[:, 0], min_area=min_area, first_frame=frames[0])
    sel = np.isin(movie.particles["frame"], frames)
    truth = {k: v[sel] for k, v in movie.particles.items()}
    margin = movie.params["rod_length"] / 2 + 1
    found_in = away_from_border(found, shape, margin)
    truth_in = away_from_border(truth, shape, margin)
    fi, ti = match_particles(found_in, truth_in, max_distance)
    axis_error = axis_angle_error(found_in["orientation"][fi], truth_in["axis_angle"][ti])
    tracks = link(found, search_radius=search_radius, max_gap=max_gap)
    return {
        "iou": iou,
        "f1": detection_scores(found, truth, max_distance, shape=shape, margin=margin)["f1"],
        "f1_all_particles": detection_scores(found, truth, max_distance)["f1"],
        "orientation_median_error_deg": float(np.rad2deg(np.median(axis_error))),
        "link_recall": link_recall(tracks, truth_in, max_distance),
        "particles": found,
    }
