"""The movie file's pixel size (nm) and frame time (s), carried through the workflow's files.

``segment`` reads them from the movie (:class:`~pyrolatent.io.movie_formats.MovieMetadata`)
and writes them into ``segment.json``; ``locate`` adds ``row_nm``, ``col_nm`` and
``time_s`` columns to the particle table when the ``segment.json`` beside the
probability maps states them; the report states them and gives the transition in
seconds. A value the file does not state stays null, and its columns are left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.files import is_valid_file, load_json

__all__ = ["UNIT_KEYS", "movie_units", "units_beside", "with_units"]

UNIT_KEYS = ("pixel_size_nm", "frame_time_s")


def movie_units(metadata) -> dict:
    """``{"pixel_size_nm": float or None, "frame_time_s": float or None}`` of a movie's metadata."""
    values = {k: getattr(metadata, k, None) for k in UNIT_KEYS}
    return {k: None if v is None else float(v) for k, v in values.items()}


def units_beside(path) -> dict:
    """The units stated in the ``segment.json`` next to ``path`` (only those not null)."""
    seg = Path(path).with_name("segment.json")
    if not is_valid_file(seg):
        return {}
    stated = load_json(seg)
    if not isinstance(stated, dict):
        return {}
    return {k: float(stated[k]) for k in UNIT_KEYS if stated.get(k) is not None}


def with_units(table: dict, units: dict) -> dict:
    """A particle table with positions in nm and times in s added where ``units`` allow.

    Parameters
    ----------
    table : dict
        Particle table with ``row``, ``col`` (pixels) and ``frame``.
    units : dict
        ``pixel_size_nm`` and/or ``frame_time_s`` (absent or None: not added).

    Returns
    -------
    dict
        A new table with ``row_nm``, ``col_nm`` (``row``, ``col`` times the pixel
        size, nm) and ``time_s`` (``frame`` times the frame time, s) when known.
    """
    out = dict(table)
    pixel, dt = units.get("pixel_size_nm"), units.get("frame_time_s")
    if pixel is not None:
        out["row_nm"] = np.asarray(table["row"], dtype=np.float64) * pixel
        out["col_nm"] = np.asarray(table["col"], dtype=np.float64) * pixel
    if dt is not None:
        out["time_s"] = np.asarray(table["frame"], dtype=np.float64) * dt
    return out
