"""The latent table at the workflow's boundary: checks, 2-D columns, the collapse note."""

from __future__ import annotations

import numpy as np

from ..checks import as_array
from ..data.particles import check_particles

__all__ = ["check_latents", "collapse_summary", "split_columns"]


def check_latents(latents: dict, *, name: str = "latents") -> dict:
    """A latent table with ``frame`` and finite ``angle`` (2-D ``z`` split into ``z_0``..).

    Raises
    ------
    ValueError
        Missing columns, columns of different lengths, NaN/Inf angles,
        fractional or negative frames.
    """
    table = check_particles(split_columns(latents), name=name, required=("frame", "angle"))
    table["angle"] = as_array(table["angle"], f"{name}['angle']", allow_empty=True)
    if table["frame"].size and table["frame"].min() < 0:
        raise ValueError(f"{name}: frame numbers must be >= 0")
    return table


def collapse_summary(diagnostics: dict, aligned: bool) -> dict:
    """``diagnostics``, ``rvae_collapsed`` and ``collapse_note`` for the analysis summary."""
    collapsed = bool(diagnostics.get("collapsed", False))
    note = None
    if collapsed and aligned:
        note = (
            "The rVAE collapsed (see diagnostics.warnings): its polarity (head/tail) and "
            "content latents carry no information. The angles are the crop-alignment axes "
            "with one arbitrary direction, so the angle peaks and the transition reflect the "
            "axis orientation only."
        )
    elif collapsed:
        note = (
            "The rVAE collapsed (see diagnostics.warnings): its angles and content latents "
            "carry no information, so the angle peaks and the transition are not findings."
        )
    return {"diagnostics": diagnostics, "rvae_collapsed": collapsed, "collapse_note": note}


def split_columns(table: dict) -> dict:
    """2-D columns (``z`` ``(N, D)``) as ``z_0 .. z_{D-1}``, as in a CSV round trip."""
    out = {}
    for k, v in table.items():
        v = np.asarray(v)
        if v.ndim == 2:
            out.update({f"{k}_{j}": v[:, j] for j in range(v.shape[1])})
        else:
            out[k] = v
    return out
