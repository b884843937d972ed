"""The particle table: one schema, one checker, and ``particle_id`` as the join key.

A particle table is a dict of equal-length 1-D numpy arrays, one row per
particle (``pandas.DataFrame(table)`` works on it). Coordinates are
``(row, col)`` pixels; ``orientation`` is radians counter-clockwise as
displayed, from +x to the particle's major axis, in ``(-pi/2, pi/2]``.
``touches_border`` is True for a particle cut by the frame edge: its visible part
is not the whole particle, so its centre, axis and head/tail are not the
particle's (the analysis leaves its latents out: :class:`AnalyzeConfig`'s
``exclude_border``).

``particle_id`` (int64, unique) names each particle. Every table derived from
the particles (crops index, latents, trajectories) carries it, and tables are
joined on it (:func:`join_on_particle_id`), never on row numbers. A table
without the column (e.g. a user's old CSV) gets ``particle_id`` = row number
from :func:`check_particles`.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_dtype

__all__ = [
    "PARTICLE_COLUMNS",
    "check_particles",
    "concat_tables",
    "empty_table",
    "join_on_particle_id",
]

PARTICLE_COLUMNS = {
    "particle_id": np.int64,
    "frame": np.int64,
    "label": np.int64,
    "row": np.float64,
    "col": np.float64,
    "area": np.float64,
    "orientation": np.float64,
    "major_axis": np.float64,
    "minor_axis": np.float64,
    "eccentricity": np.float64,
    "mean_probability": np.float64,
    "mean_uncertainty": np.float64,
    "touches_border": np.bool_,
}


def empty_table(columns: dict = PARTICLE_COLUMNS) -> dict:
    """A table with the given columns (name -> dtype) and no rows."""
    return {name: np.zeros(0, dtype=dt) for name, dt in columns.items()}


def concat_tables(tables: list[dict], columns: dict = PARTICLE_COLUMNS) -> dict:
    """Concatenate tables with the same columns (an empty list gives an empty table).

    ``particle_id``, when it is one of ``columns``, is renumbered ``0 .. N-1``
    over the result (the inputs' ids may collide, e.g. per-frame tables).
    """
    if not tables:
        return empty_table(columns)
    out = {}
    for name, dt in columns.items():
        if name == "particle_id":
            continue
        out[name] = np.concatenate([np.asarray(t[name], dtype=dt) for t in tables])
    if "particle_id" in columns:
        n = len(next(iter(out.values()))) if out else sum(len(t["particle_id"]) for t in tables)
        out = {"particle_id": np.arange(n, dtype=np.int64), **out}
    return out


def check_particles(
    particles: dict,
    *,
    name: str = "particles",
    required: tuple[str, ...] = ("frame", "row", "col"),
    n_frames: int | None = None,
) -> dict:
    """Check a particle table once, at a public boundary, and return it normalised.

    Parameters
    ----------
    particles : dict
        Column name -> 1-D array-like, all of one length ``N``.
    name : str
        Name used in error messages.
    required : tuple of str
        Columns that must be present (``frame``, ``row``, ``col`` are the
        minimum for crops and tracking).
    n_frames : int, optional
        Frames of the movie: ``frame`` must lie in ``[0, n_frames - 1]``.

    Returns
    -------
    dict
        A new dict with every column as a numpy array, ``frame`` (and
        ``particle_id``) int64, ``row``/``col`` float64, and ``particle_id``
        added as the row number when it was absent.

    Raises
    ------
    ValueError
        Missing columns, columns of different lengths, NaN/Inf coordinates,
        a frame out of range, or repeated ``particle_id`` values.
    """
    if not isinstance(particles, dict):
        raise ValueError(f"{name}: expected a dict of columns, got {type(particles).__name__}")
    missing = [c for c in required if c not in particles]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}")
    table = {k: np.asarray(v) for k, v in particles.items()}
    for k, v in table.items():
        if k in PARTICLE_COLUMNS or k in required:
            check_dtype(v.dtype, f"{name}[{k!r}]")
    lengths = {k: v.shape[0] if v.ndim else -1 for k, v in table.items()}
    if len(set(lengths.values())) > 1 or -1 in lengths.values():
        raise ValueError(f"{name}: columns must be 1-D of one length, got {lengths}")
    n = next(iter(lengths.values())) if lengths else 0
    for c in ("row", "col"):
        if c in table:
            table[c] = table[c].astype(np.float64)
            if not np.isfinite(table[c]).all():
                raise ValueError(f"{name}: row/col contain NaN or Inf")
    if "frame" in table:
        frame = table["frame"]
        if frame.size and not np.all(np.asarray(frame, dtype=np.float64) % 1 == 0):
            raise ValueError(f"{name}: frame numbers must be integers")
        table["frame"] = frame.astype(np.int64)
        if n_frames is not None and n and (frame.min() < 0 or frame.max() >= n_frames):
            raise ValueError(f"{name}: frame numbers must lie in [0, {n_frames - 1}]")
    if "particle_id" not in table:
        table = {"particle_id": np.arange(n, dtype=np.int64), **table}
    else:
        table["particle_id"] = table["particle_id"].astype(np.int64)
        if np.unique(table["particle_id"]).size != n:
            raise ValueError(f"{name}: particle_id values must be unique")
    return table


def join_on_particle_id(particles: dict, table: dict, columns) -> dict:
    """Columns of ``table`` aligned with the rows of ``particles`` through ``particle_id``.

    Parameters
    ----------
    particles : dict
        Particle table (``particle_id``; see :func:`check_particles`).
    table : dict
        A derived table with a ``particle_id`` column (e.g. the latents), at
        most one row per particle.
    columns : iterable of str
        Columns of ``table`` to join; a column ``table`` lacks is skipped.

    Returns
    -------
    dict
        Column -> ``(N,)`` float64 array in the particle table's row order,
        NaN for particles without a row in ``table``; also ``"row_of"``
        ``(N,)`` int64, the row of ``table`` for each particle (-1 if none).

    Raises
    ------
    ValueError
        A ``particle_id`` of ``table`` that the particle table lacks, or one
        that repeats.
    """
    pid = check_particles(particles, required=())["particle_id"]
    if "particle_id" not in table:
        raise ValueError("table: missing column 'particle_id' (the join key)")
    tid = np.asarray(table["particle_id"], dtype=np.int64)
    if np.unique(tid).size != tid.size:
        raise ValueError("table: particle_id values repeat")
    order = np.argsort(pid, kind="stable")
    pos = np.searchsorted(pid[order], tid)
    if tid.size and (pid.size == 0 or not np.all(pid[order][np.minimum(pos, pid.size - 1)] == tid)):
        raise ValueError("table: particle_id values not in the particle table")
    row_of = np.full(pid.size, -1, dtype=np.int64)
    row_of[order[pos]] = np.arange(tid.size)
    out = {"row_of": row_of}
    for c in columns:
        if c in table:
            v = np.full(pid.size, np.nan)
            v[order[pos]] = np.asarray(table[c], dtype=np.float64)
            out[c] = v
    return out
