"""Latent dynamics of a particle movie: KDE(latent, t) on fixed grids and angle-peak windows.

The per-frame latent densities are what the NMF factorises
(:class:`pyrolatent.models.nmf.NMF`); the transition is read from its time
courses (:func:`pyrolatent.analysis.transitions.transition_frame`) and the
angle peaks are counted on the frames clearly before and after it.
"""

from __future__ import annotations

import math

import numpy as np

from .kde import latent_kde_over_time
from .transitions import count_angle_peaks

__all__ = ["ANGLE_GRID_SIZE", "latent_kdes", "angle_peaks_around"]

ANGLE_GRID_SIZE = 180


def latent_kdes(
    latents: dict,
    *,
    n_frames: int,
    window: int = 3,
    content: tuple[str, ...] = ("z_0", "z_1"),
    angle_grid_size: int = ANGLE_GRID_SIZE,
    content_grid_size: int = 100,
) -> tuple[dict, dict]:
    """KDE(latent, t) of the angle and the content latents, on fixed grids.

    Parameters
    ----------
    latents : dict
        Latent table: ``frame`` (int), ``angle`` (radians) and the ``content``
        columns (a missing column counts as zeros).
    n_frames : int
        Frames of the movie; frames without particles give zero rows.
    window : int
        Frames pooled per row (centred window).
    content : tuple of str
        Content-latent columns; ``z_0`` is stored under key ``"z0"``.
    angle_grid_size, content_grid_size : int
        Grid points: the angle grid spans ``[-pi, pi)``; a content grid spans
        ``+-`` the 99.5th percentile of ``|z|``.

    Returns
    -------
    kdes : dict
        Key (``"angle"``, ``"z0"``, ``"z1"``) -> ``(n_frames, G)`` density rows.
    grids : dict
        Key -> ``(G,)`` grid (radians for the angle).
    """
    frames = np.asarray(latents["frame"]).astype(np.int64)
    angle_grid = np.linspace(-math.pi, math.pi, angle_grid_size, endpoint=False)
    grids = {"angle": angle_grid}
    kdes = {
        "angle": latent_kde_over_time(
            latents["angle"], frames, angle_grid, circular=True, window=window, n_frames=n_frames
        )
    }
    for name in content:
        key = name.replace("_", "")
        z = latents.get(name, np.zeros(len(frames)))
        lim = float(np.percentile(np.abs(z), 99.5)) if z.size else 1.0
        grids[key] = np.linspace(-lim, lim, content_grid_size)
        kdes[key] = latent_kde_over_time(z, frames, grids[key], window=window, n_frames=n_frames)
    return kdes, grids


def angle_peaks_around(angles, frames, *, onset: int, end: int, margin: int = 3) -> dict:
    """Angle peaks on the frames clearly before and clearly after a transition.

    Parameters
    ----------
    angles : array_like
        ``(N,)`` radians, one per particle.
    frames : array_like
        ``(N,)`` frame of each particle.
    onset, end : int
        Transition onset and the end of its ramp (frames).
    margin : int
        "Before" is ``frame < onset - margin``; "after" is ``frame >= end + margin``.

    Returns
    -------
    dict
        ``before`` and ``after``: :func:`~pyrolatent.analysis.transitions.count_angle_peaks`
        results (``n_peaks``, ``positions`` in radians, ...).
    """
    angles = np.asarray(angles)
    frames = np.asarray(frames).astype(np.int64)
    before = frames < onset - margin
    after = frames >= end + margin
    return {
        "before": count_angle_peaks(angles[before]),
        "after": count_angle_peaks(angles[after]),
    }
