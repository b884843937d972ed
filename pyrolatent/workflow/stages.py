"""The stages of the self-assembly workflow, each from plain files to plain files.

``movie -> segment -> locate -> crops -> train -> analyze -> report``. Every
stage is load -> step (:mod:`pyrolatent.workflow.steps`) -> save: it reads its
inputs from paths, runs the in-memory step with its stage config
(:mod:`pyrolatent.workflow.configs`), writes its outputs atomically into an
output folder under fixed names (listed in :data:`OUTPUTS`) and returns the
paths, so a user can enter the chain anywhere with their own files.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from .._deprecated import forward
from ..analysis.dynamics import ANGLE_GRID_SIZE
from ..data.particles import check_particles
from ..io.files import load_array, load_json, load_table, save_json, save_npy, save_table
from ..io.movie import read_movie
from ..io.movie_formats import open_movie
from ..segmentation import DeepEnsemble
from . import steps
from .afm_stage import PREPROCESS_OUTPUTS, QUALITY_FILE, flagged_frames
from .configs import (
    AnalyzeConfig,
    CropsConfig,
    LocateConfig,
    MovieConfig,
    SegmentConfig,
    TrainConfig,
)
from .segmenter import segmentation_record, user_labels
from .train_resume import CHECK_CHECKPOINT, TRAIN_CHECKPOINT, finish_training, plan_training
from .units import movie_units, units_beside, with_units

__all__ = [
    "OUTPUTS",
    "stage_movie",
    "stage_segment",
    "stage_locate",
    "stage_crops",
    "stage_train",
    "stage_analyze",
    "ANGLE_GRID_SIZE",
]

OUTPUTS = {
    "movie": ["movie.npy", "masks.npy", "truth.csv", "movie.json"],
    "preprocess": PREPROCESS_OUTPUTS,
    "segment": ["ensemble.pt", "probability.npy", "variance.npy", "segment.json"],
    "locate": ["particles.csv"],
    "crops": ["crops.npy", "crops_index.csv"],
    "train": ["rvae.pt", "latents.csv", "rvae_history.json", "rvae_diagnostics.json"],
    "analyze": [
        "kde_angle.npy",
        "kde_z0.npy",
        "kde_z1.npy",
        "kde_grids.json",
        "nmf_weights.npy",
        "nmf_loadings.npy",
        "nmf_weights_band.npy",
        "nmf_loadings_band.npy",
        "trajectories.csv",
        "analysis.json",
    ],
}


def stage_movie(out, config: MovieConfig | None = None) -> list[Path]:
    """Generate the synthetic self-assembly movie with its planted transition.

    Writes ``movie.npy`` ``(T, H, W)``, ``masks.npy`` (instance labels, the
    "manual labels"), ``truth.csv`` (true particles) and ``movie.json``
    (``planted_transition_frame`` and the generator's parameters).
    """
    config = config if config is not None else MovieConfig()
    from ..data.synthetic.self_assembly import make_self_assembly_movie

    out = Path(out)
    movie = make_self_assembly_movie(
        n_frames=config.n_frames,
        size=config.size,
        n_particles=config.n_particles,
        transition_frame=config.transition_frame,
        head_width_ratio=config.head_width_ratio,
        head_contrast=config.head_contrast,
        seed=config.seed,
    )
    paths = [
        save_npy(out / "movie.npy", movie.frames),
        save_npy(out / "masks.npy", movie.masks),
        save_table(out / "truth.csv", movie.particles),
    ]
    meta = {"planted_transition_frame": movie.transition_frame, **movie.params}
    paths.append(save_json(out / "movie.json", meta))
    return paths


def stage_segment(
    out,
    movie_path,
    config: SegmentConfig | None = None,
    *,
    masks_path=None,
    ensemble_path=None,
    labels_path=None,
    label_frames=None,
    label_free: bool = False,
    progress: bool = False,
    movie_options: dict | None = None,
) -> list[Path]:
    """Train (or load) a segmentation ensemble and predict every frame.

    Training labels, by what the user has (:func:`pyrolatent.workflow.segmenter.training_labels`):
    ``masks_path`` (labels of the whole movie), ``labels_path`` with
    ``label_frames`` (label images of some frames, as an annotation tool saves
    them), or nothing: pseudo-masks of the ``config.pseudo_frames`` clearest
    frames (particles ``config.polarity``), no labels needed.

    Parameters
    ----------
    out : path-like
        Output folder.
    movie_path : path-like
        A movie in any format :func:`~pyrolatent.io.movie_formats.open_movie` reads,
        ``(T, H, W)``, opened lazily and read block by block.
    config : SegmentConfig, optional
        Default ``SegmentConfig()``.
    masks_path : path-like, optional
        ``.npy`` labels ``(T, H, W)`` (> 0 is particle) for training; only
        ``config.train_frames`` are used for training, the others score the
        pixel IoU.
    ensemble_path : path-like, optional
        A trained :class:`~pyrolatent.segmentation.DeepEnsemble` checkpoint
        used instead of training (labels, when given, only score it).
    labels_path : path-like or sequence of path-like, optional
        Label images of the frames in ``label_frames``: one ``(H, W)`` image per
        frame (``.tif``, ``.npy``, ``.png``) or one ``(K, H, W)`` stack
        (:func:`pyrolatent.io.label_images.read_label_images`); all of them train.
    label_frames : str, path-like or sequence of int, optional
        The frames ``labels_path`` label, in the same order: integers, a text
        like ``"0,5,9"`` or a frames file (:func:`pyrolatent.io.label_images.read_frame_list`).
    label_free : bool
        Train on pseudo-masks even when labels are given; the labels then only
        score the ensemble (how well a label-free start does).
    progress : bool
        Show progress bars.
    movie_options : dict, optional
        Options of :func:`~pyrolatent.io.movie_formats.open_movie` (``axes``, ``channel``,
        ``dataset``, ...).

    Writes ``ensemble.pt``, ``probability.npy`` and ``variance.npy`` (``(T, H, W)``
    float32 ensemble mean and variance, written block by block: memory is one block
    of frames plus a constant, whatever the movie's length) and ``segment.json``:
    ``label_source`` (``"masks"``, ``"label_images"``, ``"pseudo_masks"`` or
    ``"trained_ensemble"``), ``train_frames`` (the frames trained on, empty for a given
    ensemble), ``label_frames`` (the frames of label images or pseudo-masks; null for
    whole-movie masks or none), ``polarity`` (of the pseudo-masks, else null),
    ``segmentation_iou`` (on labelled frames not used for training, or null; see
    :func:`pyrolatent.workflow.segmenter.segmentation_record`) and the movie file's
    ``pixel_size_nm`` and ``frame_time_s``, or null (:mod:`~pyrolatent.workflow.units`).
    """
    config = config if config is not None else SegmentConfig()
    out = Path(out)
    frames = open_movie(movie_path, **(movie_options or {}))  # read block by block
    labels, labelled = user_labels(frames.shape, masks_path, labels_path, label_frames)
    training = None
    if ensemble_path is not None:
        ensemble = DeepEnsemble.load(ensemble_path)
    else:
        given = None if label_free else labels
        training = steps.training_labels(
            frames,
            given,
            config,
            label_frames=None if given is None else labelled,
            exclude_frames=flagged_frames(
                Path(movie_path).with_name(QUALITY_FILE), n_frames=frames.shape[0]
            ),
        )
        ensemble = steps.train_on_labels(frames, training, config, progress=progress)
    info = segmentation_record(training, label_frames=labelled)
    paths = [ensemble.save(out / "ensemble.pt")]
    probability, variance = steps.segment(frames, ensemble, out=out, progress=progress)
    paths += [out / "probability.npy", out / "variance.npy"]
    iou = None
    if labels is not None:
        trained = info["train_frames"]
        if ensemble_path is not None and labelled is None:  # scored as if it trained here
            trained = list(config.train_frames)
        iou = steps.segmentation_iou(
            probability, labels, train_frames=trained, label_frames=labelled
        )
    paths.append(
        save_json(
            out / "segment.json", {"segmentation_iou": iou, **info, **movie_units(frames.metadata)}
        )
    )
    return paths


def stage_locate(
    out, probability_path, config: LocateConfig | None = None, *, variance_path=None
) -> list[Path]:
    """Particles from probability maps: ``particles.csv`` (one row per particle).

    Frames without particles contribute no rows; the frame count is kept by
    the probability maps. With a ``segment.json`` beside ``probability_path``
    that states the movie's pixel size and frame time, the table also has
    ``row_nm``, ``col_nm`` and ``time_s``.
    """
    config = config if config is not None else LocateConfig()
    prob = load_array(probability_path, ndim=(3,), what="probability maps (T, H, W)")
    var = None
    if variance_path is not None:
        var = load_array(variance_path, ndim=(3,), what="ensemble variance (T, H, W)")
    table = steps.find_particles(prob, variance=var, config=config)
    table = with_units(table, units_beside(probability_path))
    return [save_table(Path(out) / "particles.csv", table)]


def stage_crops(
    out, movie_path, particles_path, config: CropsConfig | None = None, *, movie_options=None
) -> list[Path]:
    """Crops around every particle: ``crops.npy`` ``(N, w, w)`` and ``crops_index.csv``.

    ``movie_path`` is read by :func:`~pyrolatent.io.movie.read_movie` with
    ``movie_options`` (``axes``, ``channel``, ``dataset``, ...).

    With ``config.align`` the crops are pre-aligned by each particle's ellipse
    axis (:func:`pyrolatent.data.crops.aligned_crops`) and the index gets an
    ``orientation`` column, which :func:`stage_train` combines with the rVAE
    latents into directed angles (:mod:`pyrolatent.analysis.polarity`).
    """
    config = config if config is not None else CropsConfig()
    frames = read_movie(movie_path, **(movie_options or {}))
    particles = check_particles(load_table(particles_path), name=str(particles_path))
    crops, index = steps.crop_particles(frames, particles, config)
    out = Path(out)
    return [save_npy(out / "crops.npy", crops), save_table(out / "crops_index.csv", index)]


def stage_train(
    out,
    crops_path,
    index_path,
    config: TrainConfig | None = None,
    *,
    resume: str = "more",
    progress: bool = False,
    log=None,
) -> list[Path]:
    """Train the rVAE on the crops and encode them.

    Crops are rescaled to ``[0, 1]`` and modelled with a Bernoulli likelihood
    (:func:`pyrolatent.workflow.steps.encode_crops`). The trainer checkpoint
    ``rvae_checkpoint.pt`` in ``out`` is written every epoch. Writes ``rvae.pt``,
    ``rvae_history.json``, ``rvae_diagnostics.json`` (:meth:`pyrolatent.RVAE.diagnostics`
    of the crops: did the fit collapse?) and ``latents.csv`` (``frame``, ``particle_id``,
    ``angle`` (radians), ``offset_0``/``offset_1`` (dx, dy pixels), ``z_0``..,
    ``valid``; with pre-aligned crops the directed ``angle`` plus
    ``angle_latent``, ``polarity`` and ``polarity_moment``).

    Parameters
    ----------
    config : TrainConfig, optional
        Default ``TrainConfig()``.
    resume : {"more", "total", "fresh"}
        What an existing ``rvae_checkpoint.pt`` means
        (:func:`~pyrolatent.workflow.train_resume.plan_training`). ``"more"``
        (the ``pyrolatent train`` command): continue a finished fit for
        ``config.epochs`` more epochs, and an interrupted one to the total it
        was started with. ``"total"`` (the demo): continue up to
        ``config.epochs`` epochs in total (past it, start over). ``"fresh"``:
        start over. The seed check's second fit resumes from its own
        checkpoint, ``rvae_check_checkpoint.pt``, in every mode but ``"fresh"``.
    progress : bool
        Show a progress bar.
    log : callable, optional
        Called with one line saying what is resumed (default: print to stderr).
    """
    config = config if config is not None else TrainConfig()
    out = Path(out)
    crops = load_array(crops_path, ndim=(3,), what="crops (N, H, W)")
    index = check_particles(load_table(index_path), name=str(index_path), required=("frame",))
    done, more, line = plan_training(out, config.epochs, resume)
    if line:
        (log or (lambda s: print(s, file=sys.stderr)))(line)
    result = steps.encode_crops(
        crops,
        index,
        replace(config, epochs=more),
        checkpoint_path=out / TRAIN_CHECKPOINT,
        check_checkpoint_path=out / CHECK_CHECKPOINT,
        done_epochs=done,
        progress=progress,
    )
    lo, hi = result["scale"]
    paths = [
        result["rvae"].save(out / "rvae.pt"),
        save_table(out / "latents.csv", result["latents"]),
        save_json(out / "rvae_history.json", {**result["history"], "scale": [lo, hi]}),
        save_json(out / "rvae_diagnostics.json", result["diagnostics"]),
    ]
    return [*paths, finish_training(out)]


def stage_analyze(
    out,
    latents_path,
    particles_path,
    config: AnalyzeConfig | None = None,
    *,
    n_frames: int | None = None,
    progress: bool = False,
    quality_path=None,
    exclude_flagged: bool = True,
) -> list[Path]:
    """KDE(L, t) of the angle and the content latents, NMF, transition, peaks, trajectories.

    See :func:`pyrolatent.workflow.steps.analyze_latents`; ``n_frames`` is the
    movie's frame count (default ``max(frame) + 1``). The rVAE diagnostics
    ``rvae_diagnostics.json`` next to ``latents_path``, when there, go into
    ``analysis.json`` (``diagnostics``, ``rvae_collapsed``). With
    ``exclude_flagged``, the frames flagged in ``quality_path`` (default:
    ``frame_quality.csv`` of the ``preprocess`` stage next to ``latents_path``,
    when there) are left out of the analysis and listed in ``analysis.json``
    (``excluded_frames``, ``exclusion_reasons``). With ``config.exclude_border``
    (the default), so are the particles ``particles.csv`` marks as cut by the
    frame edge (``touches_border``; ``border_particles_excluded``).

    Writes the KDE matrices ``kde_<latent>.npy`` ``(T, G)`` with their grids in
    ``kde_grids.json``, the NMF factors (``nmf_weights.npy`` ``(K, G)``,
    ``nmf_loadings.npy`` ``(T, K)``, and 5-95 % bands), ``trajectories.csv``
    (the particle table with ``track`` and the latents) and ``analysis.json``.
    """
    config = config if config is not None else AnalyzeConfig()
    out = Path(out)
    diag_path = Path(latents_path).with_name("rvae_diagnostics.json")
    if quality_path is None and Path(latents_path).with_name(QUALITY_FILE).exists():
        quality_path = Path(latents_path).with_name(QUALITY_FILE)
    quality = load_table(quality_path) if exclude_flagged and quality_path is not None else None
    res = steps.analyze_latents(
        steps.check_latents(load_table(latents_path), name=str(latents_path)),
        check_particles(load_table(particles_path), name=str(particles_path)),
        n_frames=n_frames,
        config=config,
        progress=progress,
        diagnostics=load_json(diag_path) if diag_path.exists() else None,
        quality=quality,
    )
    nmf = res["nmf"]
    paths = [save_npy(out / f"kde_{k}.npy", v) for k, v in res["kdes"].items()]
    grids = {k: v.tolist() for k, v in res["grids"].items()}
    paths.append(save_json(out / "kde_grids.json", grids))
    w, h, lb = nmf.components_, res["loadings"], res["loadings_band"]  # loadings: movie frames
    wb = nmf.components_band_ if nmf.components_band_ is not None else [w] * 2
    paths += [
        save_npy(out / "nmf_weights.npy", w),
        save_npy(out / "nmf_loadings.npy", h),
        save_npy(out / "nmf_weights_band.npy", wb),
        save_npy(out / "nmf_loadings_band.npy", lb),
        save_table(out / "trajectories.csv", res["trajectories"]),
        save_json(out / "analysis.json", res["summary"]),
    ]
    return paths


def read_analysis(out) -> dict:
    """``analysis.json`` of a folder."""
    return load_json(Path(out) / "analysis.json")


__getattr__ = forward(__name__, {"scale_crops": "pyrolatent.data.preprocess"})
