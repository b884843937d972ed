"""Latent variables followed along particle trajectories."""

from __future__ import annotations

import numpy as np

__all__ = ["latents_along_trajectories", "longest_tracks"]


def latents_along_trajectories(trajectories: dict, latents: dict, min_length: int = 1) -> dict:
    """Join per-particle latents onto a trajectory table, sorted by track and frame.

    Parameters
    ----------
    trajectories : dict
        Output of :func:`pyrolatent.analysis.tracking.link`: ``frame``,
        ``track`` and ``particle`` (row in the particle table) columns.
    latents : dict
        Latent name -> ``(P,)`` or ``(P, D)`` array, one row per particle of the
        particle table (e.g. ``{"angle": ..., "z": ...}``). Particles without a
        latent (NaN rows) are kept with NaN.
    min_length : int
        Keep tracks with at least this many points.

    Returns
    -------
    dict
        ``track``, ``frame``, ``particle`` and every latent, rows sorted by
        ``(track, frame)``. An empty trajectory table gives empty columns.
    """
    for c in ("frame", "track", "particle"):
        if c not in trajectories:
            raise ValueError(f"trajectories: missing column {c!r}")
    track = np.asarray(trajectories["track"], dtype=np.int64)
    frame = np.asarray(trajectories["frame"], dtype=np.int64)
    particle = np.asarray(trajectories["particle"], dtype=np.int64)
    n_part = None
    for k, v in latents.items():
        v = np.asarray(v)
        if n_part is None:
            n_part = len(v)
        elif len(v) != n_part:
            raise ValueError(f"latents[{k!r}]: length {len(v)} differs from {n_part}")
    if len(particle) and n_part is not None and particle.max() >= n_part:
        raise ValueError("trajectories: particle numbers exceed the latent tables")
    if len(track):
        counts = np.bincount(track)
        keep = counts[track] >= min_length
    else:
        keep = np.zeros(0, dtype=bool)
    order = np.lexsort((frame[keep], track[keep]))
    out = {
        "track": track[keep][order],
        "frame": frame[keep][order],
        "particle": particle[keep][order],
    }
    for k, v in latents.items():
        out[k] = np.asarray(v)[out["particle"]]
    return out


def longest_tracks(trajectories: dict, n: int = 5) -> np.ndarray:
    """Track ids of the ``n`` longest trajectories (ties: smaller id first)."""
    track = np.asarray(trajectories["track"], dtype=np.int64)
    if track.size == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(track)
    order = np.lexsort((np.arange(counts.size), -counts))
    return order[: min(n, int((counts > 0).sum()))]
