"""The whole self-assembly chain in memory: a movie in, every intermediate result out.

The same steps, in the same order and with the same configs, as
``pyrolatent demo`` (:func:`pyrolatent.workflow.pipeline.run_demo`), without
files: for a notebook that wants to inspect or rerun any step.
"""

from __future__ import annotations

from ..checks import as_images
from . import steps
from .configs import DemoConfig
from .report import summarize
from .segmenter import segmentation_record

__all__ = ["run_chain"]


def run_chain(
    frames,
    *,
    masks=None,
    label_frames=None,
    ensemble=None,
    config: DemoConfig | None = None,
    truth: dict | None = None,
    planted: int | None = None,
    quality: dict | None = None,
    progress: bool = False,
) -> dict:
    """Segment, locate, crop, encode and analyse a movie.

    Parameters
    ----------
    frames : array_like
        ``(T, H, W)`` movie.
    masks : array_like, optional
        ``(T, H, W)`` labels (> 0 is particle): the ensemble is trained on
        ``config.segment.train_frames`` and scored on the others. With
        ``label_frames``: ``(K, H, W)`` label images of those frames, all used
        for training. None (and no ``ensemble``), or ``config.label_free``: the
        ensemble trains on pseudo-masks of the clearest frames
        (:func:`~pyrolatent.workflow.segmenter.training_labels`), and ``masks``,
        when given, only score it on the other frames.
    label_frames : sequence of int, optional
        The frames that ``masks`` label.
    ensemble : DeepEnsemble, optional
        A trained segmentation ensemble, used instead of training (``masks``
        then only score it).
    config : DemoConfig, optional
        The stage configs; default ``DemoConfig()``. ``config.movie`` is not
        used (the movie is given).
    truth : dict, optional
        True particle table of a synthetic movie: adds the angle scores to the
        summary.
    planted : int, optional
        Planted transition frame of a synthetic movie (for the summary).
    quality : dict, optional
        Per-frame quality table (:func:`pyrolatent.data.afm.preprocess_afm`):
        its flagged frames are left out of the analysis (see
        :func:`~pyrolatent.workflow.steps.analyze_latents`).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``ensemble``, ``training`` (the training labels' ``frames``, ``labels``,
        ``source`` and ``polarity``; None for a given ensemble),
        ``probability``/``variance`` ``(T, H, W)``, ``particles``,
        ``crops`` ``(N, w, w)`` and ``crops_index``, ``latents`` (table),
        ``rvae``, ``analysis`` (:func:`~pyrolatent.workflow.steps.analyze_latents`)
        and ``summary`` (the numbers of the demo's ``summary.json``).
    """
    config = config if config is not None else DemoConfig()
    frames = as_images(frames, name="frames", ndim=(3,)).numpy()
    iou = training = None
    trained = config.segment.train_frames  # a given ensemble is scored as if it trained here
    if ensemble is None:
        given = None if config.label_free else masks
        training = steps.training_labels(
            frames, given, config.segment, label_frames=None if given is None else label_frames
        )
        ensemble = steps.train_on_labels(frames, training, config.segment, progress=progress)
        trained = training["frames"].tolist()
    probability, variance = steps.segment(frames, ensemble, progress=progress)
    if masks is not None:
        iou = steps.segmentation_iou(
            probability, masks, train_frames=trained, label_frames=label_frames
        )
    particles = steps.find_particles(probability, variance=variance, config=config.locate)
    crops, index = steps.crop_particles(frames, particles, config.crops)
    encoded = steps.encode_crops(crops, index, config.train, progress=progress)
    analysis = steps.analyze_latents(
        encoded["latents"],
        particles,
        n_frames=len(frames),
        config=config.analyze,
        progress=progress,
        diagnostics=encoded["diagnostics"],
        quality=quality,
    )
    summary = summarize(
        analysis["summary"],
        planted=planted,
        segmentation_iou=iou,
        particles=particles if truth is not None else None,
        truth=truth,
        latents=encoded["latents"],
        segmentation=segmentation_record(training),
        frame_shape=frames.shape[1:],
    )
    return {
        "ensemble": ensemble,
        "training": training,
        "probability": probability,
        "variance": variance,
        "particles": particles,
        "crops": crops,
        "crops_index": index,
        "latents": encoded["latents"],
        "rvae": encoded["rvae"],
        "analysis": analysis,
        "summary": summary,
    }
