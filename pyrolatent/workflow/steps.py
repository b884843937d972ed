"""The self-assembly workflow as in-memory functions: arrays and tables in, arrays and tables out.

``frames -> (probability, variance) -> particles -> crops -> latents -> analysis``.
Each step takes its stage's frozen config (:mod:`pyrolatent.workflow.configs`)
and touches no file, so a notebook can run, inspect and rerun any step; the
``pyrolatent`` command and :func:`~pyrolatent.workflow.pipeline.run_demo` wrap
the same functions with file reading and writing (:mod:`~pyrolatent.workflow.stages`).
Tables are dicts of equal-length 1-D numpy arrays joined on ``particle_id``
(:mod:`pyrolatent.data.particles`).
"""

from __future__ import annotations

import numpy as np

from ..analysis.dynamics import angle_peaks_around, latent_kdes
from ..analysis.polarity import latent_table
from ..analysis.tracking import link
from ..analysis.transitions import count_angle_peaks
from ..checks import as_array
from ..data.crops import aligned_crops, extract_crops
from ..data.particles import check_particles, join_on_particle_id
from ..data.preprocess import scale_crops
from ..estimators.rvae import RVAE
from ..segmentation import DeepEnsemble, locate, predict_movie
from ..segmentation.metrics import pixel_iou
from .angle_transition import angle_transition, change_keys, onset_keys, peak_keys
from .configs import AnalyzeConfig, CropsConfig, LocateConfig, TrainConfig
from .exclusion import expand_rows, rows_to_analyse
from .latents import check_latents, collapse_summary
from .particle_symmetry import crop_symmetry
from .seed_check import crop_rvae, second_seed_fit, transition_agreement
from .segmenter import train_on_labels, train_segmenter, training_labels

__all__ = [
    "train_segmenter",
    "train_on_labels",
    "training_labels",
    "segment",
    "segmentation_iou",
    "find_particles",
    "crop_particles",
    "encode_crops",
    "analyze_latents",
    "check_latents",
]


def segment(
    frames,
    ensemble: DeepEnsemble,
    *,
    out=None,
    block_frames: int | None = None,
    progress: bool = False,
):
    """Ensemble mean and variance of every frame, predicted block by block.

    Parameters
    ----------
    frames : numpy.ndarray, LazyMovie or path-like
        ``(T, H, W)`` movie; a :class:`~pyrolatent.io.lazy_movie.LazyMovie` or a
        file is read one block at a time
        (:func:`~pyrolatent.segmentation.streaming.predict_movie`).
    ensemble : DeepEnsemble
    out : path-like, optional
        Folder for ``probability.npy`` and ``variance.npy``, written block by block
        (memory: one block plus a constant, whatever ``T``). Default: in memory.
    block_frames : int, optional
        Frames per block (default: about 64 MiB of input per block).
    progress : bool
        Show a progress bar.

    Returns
    -------
    probability, variance : numpy.ndarray
        ``(T, H, W)`` float32 each: the ensemble's particle probability (output
        channel 0) and its variance over members; read-only memory maps of the
        files with ``out``.
    """
    return predict_movie(
        frames, ensemble, out=out, block_frames=block_frames, channel=0, progress=progress
    )


def segmentation_iou(probability, masks, *, train_frames, label_frames=None) -> float | None:
    """Pixel IoU of ``probability > 0.5`` on the labelled frames not used for training.

    Parameters
    ----------
    probability : numpy.ndarray
        ``(T, H, W)`` ensemble probability.
    masks : array_like
        ``(T, H, W)`` labels, or ``(K, H, W)`` label images of ``label_frames``.
    train_frames : sequence of int
        Frames the ensemble trained on (left out of the score).
    label_frames : sequence of int, optional
        The frames ``masks`` label (default: every frame).

    Returns
    -------
    float or None
        None when every labelled frame was used for training.
    """
    masks = np.asarray(masks)
    label_frames = range(len(probability)) if label_frames is None else label_frames
    trained = {int(t) for t in train_frames}
    held_out = [i for i, t in enumerate(label_frames) if int(t) not in trained]
    if not held_out:
        return None
    frames = [int(label_frames[i]) for i in held_out]
    return float(pixel_iou(np.asarray(probability[frames]) > 0.5, masks[held_out] > 0))


def find_particles(probability, *, variance=None, config: LocateConfig | None = None) -> dict:
    """The particle table of probability maps (:func:`pyrolatent.segmentation.locate`).

    Parameters
    ----------
    probability : numpy.ndarray
        ``(T, H, W)`` maps.
    variance : numpy.ndarray, optional
        ``(T, H, W)`` ensemble variance (fills ``mean_uncertainty``).
    config : LocateConfig, optional
        Default ``LocateConfig()``.

    Returns
    -------
    dict
        Particle table (:mod:`pyrolatent.data.particles`) with ``particle_id``;
        frames without particles contribute no rows.
    """
    config = config if config is not None else LocateConfig()
    probability = as_array(probability, "probability", ndim=(3,), dtype=np.float32)
    if variance is not None:
        variance = as_array(variance, "variance", ndim=(3,), dtype=np.float32)
        if variance.shape != probability.shape:
            raise ValueError(
                f"variance: shape {variance.shape} differs from probability {probability.shape}"
            )
    return locate(
        probability, uncertainty=variance, threshold=config.threshold, min_area=config.min_area
    )


def crop_particles(frames, particles: dict, config: CropsConfig | None = None):
    """Crops around every particle, optionally pre-aligned by its ellipse axis.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` movie.
    particles : dict
        Particle table.
    config : CropsConfig, optional
        Default ``CropsConfig()``.

    Returns
    -------
    crops : numpy.ndarray
        ``(N, w, w)`` float32, one per particle.
    index : dict
        ``frame``, ``particle``, ``particle_id``, ``row``, ``col``, ``valid``
        (and ``orientation`` when aligned): see :func:`pyrolatent.data.crops.extract_crops`.
    """
    config = config if config is not None else CropsConfig()
    particles = check_particles(particles, n_frames=len(frames))
    if not config.align:
        return extract_crops(frames, particles, config.window)
    return aligned_crops(frames, particles, config.window, mask_half_width=config.mask_half_width)


def _fit_more(rvae: RVAE, x, *, epochs: int, done: int, **kwargs):
    """Train ``epochs`` more epochs after ``done`` (those of a checkpoint being resumed).

    ``fit(epochs=n)`` fixes its target, ``epochs_trained + n``, before it reads the
    checkpoint, so a model that has not yet loaded the ``done`` epochs asks for them too.
    """
    n = epochs + max(0, done - rvae.epochs_trained)
    return rvae.fit(x, epochs=n, **kwargs)


def encode_crops(
    crops,
    index: dict,
    config: TrainConfig | None = None,
    *,
    rvae: RVAE | None = None,
    train: bool = True,
    checkpoint_path=None,
    check_checkpoint_path=None,
    done_epochs: int = 0,
    progress: bool = False,
) -> dict:
    """Train (or continue) an rVAE on the crops and encode them: the latent table.

    Crops are rescaled to ``[0, 1]`` (:func:`pyrolatent.data.preprocess.scale_crops`)
    and modelled with a Bernoulli likelihood and no angle symmetry.

    Parameters
    ----------
    crops : numpy.ndarray
        ``(N, w, w)`` crops, ``N >= 2``.
    index : dict
        Their index (:func:`crop_particles`).
    config : TrainConfig, optional
        Default ``TrainConfig()``; ``config.epochs`` epochs are trained (more
        epochs, for a given ``rvae``).
    rvae : RVAE, optional
        A model to continue; default: a new one from ``config``.
    train : bool
        False encodes with ``rvae`` as it is.
    checkpoint_path : path-like, optional
        The trainer checkpoint, written every epoch; a fit resumes from it
        when it exists (then ``done_epochs`` must be its epoch count).
    check_checkpoint_path : path-like, optional
        The same for the seed check's second fit (``config.check_seed``).
    done_epochs : int
        Epochs already in ``checkpoint_path``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``latents`` (table: see :func:`pyrolatent.analysis.polarity.latent_table`),
        ``rvae``, ``scale`` (``(lo, hi)`` of the crop rescaling), ``history`` and
        ``diagnostics`` (:meth:`pyrolatent.RVAE.diagnostics` of the crops: did the
        fit collapse?; ``particle_symmetry``: round or n-fold symmetric particles?, from
        :func:`pyrolatent.workflow.particle_symmetry.crop_symmetry`; with
        ``config.check_seed`` also ``seed_agreement``, from
        :func:`pyrolatent.workflow.seed_check.second_seed_fit`, whose note joins
        the warnings, and the second fit's angles as the column ``angle_check``).
    """
    config = config if config is not None else TrainConfig()
    crops = as_array(crops, "crops", ndim=(3,), dtype=np.float32)
    if len(crops) < 2:
        raise ValueError(f"need at least 2 crops to train the rVAE, got {len(crops)}")
    index = check_particles(index, name="index", required=("frame",))
    if len(index["frame"]) != len(crops):
        raise ValueError(f"index: {len(index['frame'])} rows for {len(crops)} crops")
    index.setdefault("valid", np.ones(len(crops), dtype=bool))  # a user's own index
    x, scale = scale_crops(crops)
    if rvae is None:
        rvae = crop_rvae(crops.shape[1:], config, seed=config.seed)
    if train:
        _fit_more(
            rvae,
            x,
            epochs=config.epochs,
            done=done_epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            clip_norm=config.clip_norm or None,
            checkpoint_path=checkpoint_path,
            progress=progress,
        )
    enc = rvae.encode(x)
    recon = None
    if "orientation" in index:
        recon = rvae.decode(enc["z"]["loc"], angle=enc["angle"]["loc"])
    diagnostics = rvae.diagnostics(x)
    diagnostics["particle_symmetry"] = crop_symmetry(x, aligned="orientation" in index)
    latents = latent_table(index, enc, reconstructions=recon)
    if train and config.check_seed:
        check, latents["angle_check"] = second_seed_fit(
            rvae,
            x,
            index,
            config,
            encoding=enc,
            checkpoint_path=check_checkpoint_path,
            progress=progress,
        )
        diagnostics["seed_agreement"] = check
        if check["note"]:
            diagnostics["warnings"].append(check["note"])
    return {
        "latents": latents,
        "rvae": rvae,
        "scale": scale,
        "history": rvae.history,
        "diagnostics": diagnostics,
    }


def analyze_latents(
    latents: dict,
    particles: dict,
    *,
    n_frames: int | None = None,
    config: AnalyzeConfig | None = None,
    progress: bool = False,
    diagnostics: dict | None = None,
    quality: dict | None = None,
) -> dict:
    """KDE(L, t) of the latents, NMF, transition, angle peaks and trajectories.

    Parameters
    ----------
    latents : dict
        Latent table (:func:`encode_crops`): ``frame``, ``particle_id``,
        ``angle`` (radians), ``z_0``, ``z_1`` (or a 2-D ``z``).
    particles : dict
        The particle table the latents came from (joined on ``particle_id``).
    n_frames : int, optional
        Frames of the movie; default ``max(frame) + 1``.
    config : AnalyzeConfig, optional
        Default ``AnalyzeConfig()``.
    progress : bool
        Show a progress bar (NMF).
    diagnostics : dict, optional
        The rVAE diagnostics (:func:`encode_crops`): they go into the summary
        as ``diagnostics``, with ``rvae_collapsed`` (bool) and ``collapse_note``
        (None, or what a collapsed rVAE means for the peaks and the transition,
        in words).
    quality : dict, optional
        Per-frame quality table (:func:`pyrolatent.data.afm.frame_quality`:
        ``frame``, ``flagged``, ``flag_*``): flagged frames are left out of the
        KDEs, the NMF, the transition and the angle peaks (their KDE and loading
        rows are NaN; frame numbers stay the movie's); the trajectories keep
        every frame and every latent. The summary lists them in ``excluded_frames`` with
        ``exclusion_reasons`` (reason -> frames flagged for it).

    Returns
    -------
    dict
        ``kdes`` / ``grids`` (key -> ``(T, G)`` / ``(G,)``), ``nmf`` (the fitted
        :class:`~pyrolatent.estimators.nmf.NMF`, on the kept frames), ``loadings``
        and ``loadings_band`` (its time behaviours ``(T, K)`` and 5-95 % band
        ``(2, T, K)`` in movie frames, NaN on excluded frames), ``transition``
        (:func:`~pyrolatent.analysis.transitions.transition_frame`), ``peaks``
        (``before``/``after``), ``trajectories`` (the linked particle table with
        ``track`` and the joined ``angle``, ``z_0``, ``z_1``), ``change``
        (:func:`~pyrolatent.analysis.change_detection.detect_transition` on one
        angle-KDE row per frame: whether the movie changes at all, at a 1 %
        false-alarm level) and ``summary`` (the JSON-ready numbers written to
        ``analysis.json``; ``transition_frame`` is None when no change is detected;
        with an ``angle_check`` column, also the keys of
        :func:`~pyrolatent.workflow.seed_check.transition_agreement`).
    """
    config = config if config is not None else AnalyzeConfig()
    latents = check_latents(latents)
    particles = check_particles(particles)
    all_latents = latents
    latents, kept, excluded, n_frames = rows_to_analyse(
        latents, particles, quality, n_frames, exclude_border=config.exclude_border
    )
    frames = np.asarray(latents["frame"]).astype(np.int64)
    kdes, grids = latent_kdes(latents, n_frames=n_frames, window=config.kde_window)
    nmf, tr, change = angle_transition(kdes["angle"], latents, kept, n_frames, config, progress)
    check = {}
    if "angle_check" in latents:  # the second seed's angles (TrainConfig.check_seed)
        second = {"frame": latents["frame"], "angle": latents["angle_check"]}
        rows, _ = latent_kdes(second, n_frames=n_frames, window=config.kde_window, content=())
        _, *found = angle_transition(rows["angle"], second, kept, n_frames, config, progress)
        check = transition_agreement((tr, change), tuple(found))
    peaks = angle_peaks_around(
        latents["angle"], frames, onset=tr["frame"], end=tr["end"], margin=config.peak_margin
    )
    peaks["all"] = count_angle_peaks(latents["angle"])
    band = nmf.time_courses_band_
    band = [nmf.time_courses_] * 2 if band is None else band
    loadings = expand_rows(nmf.time_courses_, kept, n_frames)
    loadings_band = np.stack([expand_rows(b, kept, n_frames) for b in band])
    kdes = {k: expand_rows(v[kept], kept, n_frames) if excluded else v for k, v in kdes.items()}
    traj = link(particles, search_radius=config.search_radius, max_gap=config.max_gap)
    joined = join_on_particle_id(particles, all_latents, ("angle", "z_0", "z_1"))
    for k in ("angle", "z_0", "z_1"):
        traj[k] = joined.get(k, np.full(len(particles["frame"]), np.nan))
    summary = {
        "n_frames": int(n_frames),
        "n_particles": int(len(particles["frame"])),
        "n_trajectories": int(np.unique(traj["track"]).size),
        "transition_detected": bool(change["transition"]),
        "transition_p_value": float(change["p_value"]),
        "transition_false_alarm": 0.01,
        **onset_keys(tr, change["transition"]),
        **change_keys(change),
        **peak_keys(peaks, change["transition"]),
        "nmf_method": config.nmf_method,
        "nmf_reconstruction_error": nmf.reconstruction_error(kdes["angle"][kept]),
        "kde_window": config.kde_window,
    }
    summary |= check | excluded
    if diagnostics is not None:
        summary |= collapse_summary(diagnostics, aligned="polarity" in latents)
    return {
        "kdes": kdes,
        "grids": grids,
        "nmf": nmf,
        "loadings": loadings,
        "loadings_band": loadings_band,
        "transition": tr,
        "change": change,
        "peaks": peaks,
        "trajectories": traj,
        "summary": summary,
    }
