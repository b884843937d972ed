"""The ``preprocess`` stage: AFM levelling, scan-line correction and frame flags, file to file.

``movie -> preprocess -> segment -> ...``: an optional first stage for AFM
movies. It writes the corrected movie, which the later stages read in place
of the recording, and ``frame_quality.csv``, whose flagged frames ``segment``
takes no pseudo-masks from and ``analyze`` leaves out
(:func:`pyrolatent.workflow.steps.analyze_latents`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.afm import preprocess_afm
from ..io.files import load_table, save_json, save_npy, save_table
from ..io.movie_formats import open_movie
from .configs import LEVEL_ORDERS, PreprocessConfig, config_dict
from .exclusion import frame_exclusion
from .units import movie_units

__all__ = ["PREPROCESS_OUTPUTS", "QUALITY_FILE", "stage_preprocess", "flagged_frames"]

QUALITY_FILE = "frame_quality.csv"
PREPROCESS_OUTPUTS = ["preprocessed.npy", QUALITY_FILE, "preprocess.json"]


def stage_preprocess(out, movie_path, config: PreprocessConfig | None = None) -> list[Path]:
    """Level every frame, correct its scan lines and flag the frames with scan artefacts.

    See :func:`pyrolatent.data.afm.preprocess_afm`. Writes ``preprocessed.npy``
    (``(T, H, W)`` float32, heights relative to the background, in the file's
    unit: nm for AFM files), ``frame_quality.csv`` (one row per frame: the
    metrics, their robust z-scores, ``flag_*`` and ``flagged``) and
    ``preprocess.json`` (the config, ``n_frames``, ``flagged_frames``, and the
    pixel size / frame time when the file states them).

    Parameters
    ----------
    out : path-like
        Output folder.
    movie_path : path-like
        A movie in any format :func:`~pyrolatent.io.movie_formats.open_movie` reads
        (opened lazily).
    config : PreprocessConfig, optional
        Default ``PreprocessConfig()``.
    """
    config = config if config is not None else PreprocessConfig()
    out = Path(out)
    frames = open_movie(movie_path)
    meta = movie_units(frames.metadata)
    corrected, quality = preprocess_afm(
        frames,
        order=LEVEL_ORDERS[config.level],
        scan_lines=None if config.scan_lines == "none" else config.scan_lines,
        z_threshold=config.z_threshold,
    )
    flagged = np.flatnonzero(quality["flagged"]).tolist()
    info = {
        "config": config_dict(config),
        "n_frames": int(len(corrected)),
        "flagged_frames": flagged,
        **{k: v for k, v in meta.items() if v is not None},
    }
    return [
        save_npy(out / "preprocessed.npy", corrected.astype(np.float32, copy=False)),
        save_table(out / QUALITY_FILE, quality),
        save_json(out / "preprocess.json", info),
    ]


def flagged_frames(path, n_frames: int | None = None) -> np.ndarray | None:
    """The frames flagged in a ``frame_quality.csv`` table, or None where there is no file.

    Parameters
    ----------
    path : path-like
        The table :func:`stage_preprocess` writes (columns ``frame`` and ``flagged``).
    n_frames : int, optional
        Frames of the movie the table must fit.

    Returns
    -------
    numpy.ndarray or None
        ``(K,)`` sorted int64 frame indices.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return frame_exclusion(load_table(path), n_frames)[0]
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
