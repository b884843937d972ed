"""What the analysis leaves out: frames a quality table flags, particles the edge cuts.

A quality table is :func:`pyrolatent.data.afm.frame_quality`'s (``frame``,
``flagged`` and ``flag_<reason>`` columns; ``frame_quality.csv`` of the
``preprocess`` stage). The analysis runs on the kept frames only (their rows,
in order) and maps frame numbers back to the movie's with :func:`to_movie_frames`.

A particle cut by the frame edge (``touches_border`` in the particle table) shows
only part of itself: its centroid, axis and head/tail are those of the visible
part, and which part is visible changes as it moves. Its latents are left out of
the densities, the transition and the angle peaks (:func:`drop_border_particles`);
the trajectories keep it.
"""

from __future__ import annotations

import numpy as np

from ..checks import as_array
from ..data.particles import join_on_particle_id

__all__ = [
    "EXCLUSION_REASONS",
    "frame_exclusion",
    "keep_good_frames",
    "drop_frames",
    "to_movie_frames",
    "expand_rows",
    "drop_border_particles",
    "rows_to_analyse",
    "border_caveats",
]

#: flag column (without ``flag_``) -> the reason in words (for the report)
EXCLUSION_REASONS = {
    "lines": "scan-line artefacts (rows differ far more than columns)",
    "streaks": "streaks along the scan lines",
    "saturation": "saturated or blank (height range clipped)",
}


def frame_exclusion(quality: dict, n_frames: int | None) -> tuple[np.ndarray, dict, int]:
    """Flagged frames, the count per reason and the movie's frame count.

    Parameters
    ----------
    quality : dict
        Per-frame table with ``frame`` (int) and ``flagged`` (bool); ``flag_*``
        bool columns name the reasons.
    n_frames : int or None
        Frames of the movie; None: ``max(frame) + 1`` of the table.

    Returns
    -------
    excluded : numpy.ndarray
        Sorted flagged frame numbers (int64).
    reasons : dict
        Reason (flag column without ``flag_``) -> number of frames it flags.
    n_frames : int

    Raises
    ------
    ValueError
        Missing columns, or frames outside ``[0, n_frames)``.
    """
    missing = [k for k in ("frame", "flagged") if k not in quality]
    if missing:
        raise ValueError(f"quality table: missing columns {missing} (frame, flagged, flag_*)")
    frame = as_array(quality["frame"], "quality['frame']", ndim=(1,), dtype=None)
    if not np.issubdtype(frame.dtype, np.integer) and not np.all(frame == np.round(frame)):
        raise ValueError("quality['frame']: frame numbers must be whole numbers")
    frame = frame.astype(np.int64)
    flagged = np.asarray(quality["flagged"]).astype(bool)
    if flagged.shape != frame.shape:
        raise ValueError("quality table: 'flagged' and 'frame' differ in length")
    n_frames = int(frame.max()) + 1 if n_frames is None else int(n_frames)
    if frame.min() < 0 or frame.max() >= n_frames:
        raise ValueError(
            f"quality table: frames {frame.min()}..{frame.max()} outside the movie's "
            f"{n_frames} frames"
        )
    reasons = {
        k.removeprefix("flag_"): int(np.asarray(v).astype(bool).sum())
        for k, v in quality.items()
        if k.startswith("flag_")
    }
    return np.unique(frame[flagged]), reasons, n_frames


def keep_good_frames(latents: dict, quality: dict | None, n_frames: int | None):
    """The latents of the frames a quality table does not flag.

    Parameters
    ----------
    latents : dict
        Table with ``frame``.
    quality : dict or None
        See :func:`frame_exclusion`; None keeps every frame.
    n_frames : int or None
        Frames of the movie; None: the larger of the tables' ``max(frame) + 1``.

    Returns
    -------
    latents : dict
        The rows of kept frames.
    kept : numpy.ndarray
        Kept frame numbers, sorted.
    summary : dict
        ``{}`` without ``quality``; else ``excluded_frames`` (list) and
        ``exclusion_reasons`` (reason -> frames).
    n_frames : int
    """
    frames = np.asarray(latents["frame"]).astype(np.int64)
    last = int(frames.max()) + 1 if frames.size else 0
    if quality is None:
        n_frames = last if n_frames is None else int(n_frames)
        return latents, np.arange(n_frames), {}, n_frames
    if n_frames is None:
        n_frames = max(last, int(np.max(quality["frame"], initial=-1)) + 1)
    excluded, reasons, n_frames = frame_exclusion(quality, n_frames)
    summary = {"excluded_frames": excluded.tolist(), "exclusion_reasons": reasons}
    kept = np.setdiff1d(np.arange(n_frames), excluded)
    return drop_frames(latents, excluded), kept, summary, n_frames


def drop_frames(table: dict, excluded) -> dict:
    """The rows of a table (with ``frame``) whose frame is not in ``excluded``."""
    keep = ~np.isin(np.asarray(table["frame"]), excluded)
    return {k: np.asarray(v)[keep] for k, v in table.items()}


def to_movie_frames(transition: dict, kept: np.ndarray) -> dict:
    """A transition found on the kept frames' rows, in the movie's frame numbers.

    ``frame``, ``end``, ``interval`` and ``bootstrap`` are mapped through
    ``kept``; ``uncertainty`` becomes the standard deviation of the mapped
    bootstrap onsets (frames of the movie).
    """
    boot = kept[np.asarray(transition["bootstrap"], dtype=np.int64)]
    lo, hi = transition["interval"]
    return {
        **transition,
        "frame": int(kept[transition["frame"]]),
        "end": int(kept[transition["end"]]),
        "interval": (int(kept[lo]), int(kept[hi])),
        "bootstrap": boot,
        "uncertainty": float(boot.std()) if boot.size > 1 else float("nan"),
    }


def expand_rows(matrix, kept: np.ndarray, n_frames: int) -> np.ndarray:
    """``(n_frames, ...)`` array with the rows of ``matrix`` at ``kept``, NaN elsewhere."""
    matrix = np.asarray(matrix, dtype=np.float64)
    out = np.full((n_frames, *matrix.shape[1:]), np.nan)
    out[kept] = matrix
    return out


def drop_border_particles(latents: dict, particles: dict) -> tuple[dict, dict]:
    """The latents of the particles that the frame edge does not cut.

    Parameters
    ----------
    latents : dict
        Latent table with ``particle_id`` (one row per crop).
    particles : dict
        The particle table the latents came from; its ``touches_border`` column
        (bool) marks particles cut by the frame edge.

    Returns
    -------
    latents : dict
        The rows of particles with ``touches_border`` False (all rows when the
        particle table has no such column, e.g. one written before it existed).
    summary : dict
        ``border_particles_excluded``: rows left out (None without the column),
        and ``border_particles_total``: rows before.

    Raises
    ------
    ValueError
        A ``touches_border`` column that is not bool or 0/1, or every row left out.
    """
    n = len(latents["frame"])
    if "touches_border" not in particles:
        return latents, {"border_particles_excluded": None, "border_particles_total": n}
    flag = np.asarray(particles["touches_border"])
    if flag.dtype != bool and not (flag.dtype.kind in "iuf" and np.isin(flag, (0, 1)).all()):
        raise ValueError("particles['touches_border']: expected bool values (True/False)")
    row_of = join_on_particle_id(particles, latents, ())["row_of"]
    has = row_of >= 0
    cut = np.zeros(n, dtype=bool)
    cut[row_of[has]] = flag.astype(bool)[has]
    if n and cut.all():
        raise ValueError(
            "every particle touches the frame edge, so none is left for the analysis; "
            "pass AnalyzeConfig(exclude_border=False) to keep them"
        )
    kept = {k: np.asarray(v)[~cut] for k, v in latents.items()}
    return kept, {"border_particles_excluded": int(cut.sum()), "border_particles_total": n}


def rows_to_analyse(latents, particles, quality, n_frames, *, exclude_border=True):
    """The latent rows the analysis uses: kept frames, particles the edge does not cut.

    :func:`keep_good_frames` after :func:`drop_border_particles` (when
    ``exclude_border``); the returned summary has both functions' keys. ``n_frames``
    None: the larger of the latents' and the quality table's ``max(frame) + 1``,
    before any row is left out.
    """
    if n_frames is None:
        n_frames = int(np.max(latents["frame"], initial=-1)) + 1
        if quality is not None:
            n_frames = max(n_frames, int(np.max(quality["frame"], initial=-1)) + 1)
    border = {}
    if exclude_border:
        latents, border = drop_border_particles(latents, particles)
    latents, kept, summary, n_frames = keep_good_frames(latents, quality, n_frames)
    return latents, kept, summary | border, n_frames


def border_caveats(summary: dict) -> list[str]:
    """The report's sentence on particles left out for touching the frame edge (or none)."""
    cut, total = summary.get("border_particles_excluded"), summary.get("border_particles_total")
    if not cut or not total:
        return []
    return [
        f"{cut} of {total} detections ({100 * cut / total:.0f} %) are particles cut by the "
        "frame edge; their visible part gives neither the particle's axis nor its head/tail, "
        "so they are left out of the densities, the transition and the angle peaks (the "
        "trajectories keep them)."
    ]
