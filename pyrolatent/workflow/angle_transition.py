"""The transition in a movie's angle densities: NMF, its onset and the one-regime test.

Used by :func:`pyrolatent.workflow.steps.analyze_latents` for the rVAE's angles
and, with the seed check, for a second fit's angles too.
"""

from __future__ import annotations

from ..analysis.change_detection import detect_transition
from ..analysis.dynamics import latent_kdes
from ..analysis.transitions import transition_frame
from ..estimators.nmf import NMF
from .exclusion import to_movie_frames

__all__ = ["angle_transition"]


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
