"""The transition in a movie's angle densities: NMF, its onset and the one-regime test.

Used by :func:`pyrolatent.workflow.steps.analyze_latents` for the rVAE's angles
and, with the seed check, for a second fit's angles too.
"""

from __future__ import annotations

import numpy as np

from ..analysis.change_detection import detect_transition
from ..analysis.dynamics import latent_kdes
from ..analysis.transitions import transition_frame
from ..estimators.nmf import NMF
from .exclusion import to_movie_frames

__all__ = ["angle_transition", "change_keys", "onset_keys", "peak_keys"]


def angle_transition(angle_kde, latents: dict, kept, n_frames: int, config, progress: bool = False):
    """NMF of the kept frames' angle-KDE rows, its transition and the one-regime test.

    Parameters
    ----------
    angle_kde : numpy.ndarray
        ``(n_frames, G)`` angle density per frame (pooled over ``config.kde_window``).
    latents : dict
        Latent table (``frame``, ``angle``) of the kept frames.
    kept : numpy.ndarray
        Movie frame numbers the analysis keeps, sorted.
    n_frames : int
        Frames of the movie.
    config : AnalyzeConfig
        NMF components, method, steps and seed.
    progress : bool
        Show the NMF's progress bar.

    Returns
    -------
    nmf : NMF
        Fitted on ``angle_kde[kept]``.
    transition : dict
        :func:`~pyrolatent.analysis.transitions.transition_frame` of its time
        behaviours, in movie frames.
    change : dict
        :func:`~pyrolatent.analysis.change_detection.detect_transition` on one
        angle-KDE row per kept frame: does the movie change at all?
    """
    nmf = NMF(n_components=config.n_components, seed=config.seed).fit(
        angle_kde[kept], method=config.nmf_method, epochs=config.nmf_steps, progress=progress
    )
    tr = to_movie_frames(transition_frame(nmf.time_courses_, seed=config.seed), kept)
    # does the movie change at all? one regime against one change, on one KDE row per frame
    per_frame, _ = latent_kdes(latents, n_frames=n_frames, window=1, content=())
    change = detect_transition(per_frame["angle"][kept], frame_times=kept, seed=config.seed)
    return nmf, tr, change


def peak_keys(peaks: dict, detected: bool) -> dict:
    """Summary keys of the angle peaks: before and after a detected transition, else all frames.

    Parameters
    ----------
    peaks : dict
        ``before``, ``after`` (around the fitted onset) and ``all`` (every kept
        frame): :func:`~pyrolatent.analysis.transitions.count_angle_peaks` results.
    detected : bool
        Whether the one-regime test found a transition. Without one, the
        fitted onset splits nothing real (on 10 frames of C2C12 cells it left 3
        frames "before": 0 peaks before and 6 after), so only ``all`` counts.

    Returns
    -------
    dict
        ``angle_peaks_before``/``_after`` and their ``angle_peak_positions_*_deg``
        (None without a transition), ``angle_peaks_all`` and
        ``angle_peak_positions_all_deg`` (None with one).
    """
    out = {}
    for when in ("before", "after", "all"):
        used = detected != (when == "all")
        out[f"angle_peaks_{when}"] = peaks[when]["n_peaks"] if used else None
        positions = np.rad2deg(peaks[when]["positions"]).tolist() if used else None
        out[f"angle_peak_positions_{when}_deg"] = positions
    return out


def onset_keys(transition: dict, detected: bool) -> dict:
    """Summary keys of the onset: ``transition_frame``, ``_end``, ``_frame_uncertainty``
    and ``_interval`` of :func:`angle_transition`'s transition, or all None when the
    one-regime test found none (a fitted onset, its spread and its ramp then mean nothing)."""
    if not detected:
        return dict.fromkeys(("transition_frame", "transition_end",
                              "transition_frame_uncertainty", "transition_interval"))  # fmt: skip
    return {
        "transition_frame": transition["frame"],
        "transition_end": transition["end"],
        "transition_frame_uncertainty": transition["uncertainty"],
        "transition_interval": list(transition["interval"]),
    }


def change_keys(change: dict) -> dict:
    """Summary keys of the one-regime test's own change point (movie frames).

    ``transition_change_frame`` (the onset of its fitted ramp) and
    ``transition_change_interval`` (its 5-95 % range), both None when the test
    finds no change. A second estimate of the onset beside the NMF's: on
    AFMReader's HS-AFM movie it was frame 72 (63-78) from both rVAE seeds
    while the NMF onset moved from 72 to 26. ``transition_isolated_frame`` and
    ``transition_p_value_without_isolated``: the frame that stands out most from
    its neighbours and the test's p-value without it (None unless the test with
    it rejected); when only that frame made the test reject, ``transition_reason``
    says so (the report's "No transition" sentence quotes it).
    """
    isolated, p_without = change.get("isolated_frame"), change.get("p_value_without_isolated")
    out = {
        "transition_change_frame": None,
        "transition_change_interval": None,
        "transition_isolated_frame": None if isolated is None else int(round(isolated)),
        "transition_p_value_without_isolated": p_without,
    }
    if not change["transition"]:
        if isolated is not None:
            out["transition_reason"] = (
                f"frame {int(round(isolated))} stands out from its neighbours: with it the "
                f"test finds a change (p = {change['p_value']:.3f}), without it one regime "
                f"(p = {p_without:.2f})"
            )
        return out
    lo, hi = change["time_interval"]
    out["transition_change_frame"] = int(change["time"])
    out["transition_change_interval"] = [int(lo), int(hi)]
    return out
