"""Training the segmentation ensemble on full-length masks, label images of some frames, or none.

Three sources of training labels, chosen by what the user has:

- ``"masks"``: a ``(T, H, W)`` label array as long as the movie (the demo's
  synthetic masks); the ensemble trains on ``config.train_frames``.
- ``"label_images"``: one label image per labelled frame, as an annotation tool
  saves them (e.g. a napari Labels layer), plus the list of those frames; never
  a full-length array padded with zeros. All of them train the ensemble.
- ``"pseudo_masks"``: no labels at all. The ``config.pseudo_frames`` frames whose
  particles stand out most (:func:`~pyrolatent.segmentation.label_free.clearest_frames`)
  get pseudo-masks from the classical band-pass + Otsu detector
  (:func:`~pyrolatent.segmentation.label_free.pseudo_masks`, particles
  ``config.polarity``, edges at :data:`PSEUDO_EDGE_FRACTION` of each particle's
  height), and the ensemble trains on those.

:func:`training_labels` returns the frames, their labels and where they came
from, which ``segment.json`` and the report record.
"""

from __future__ import annotations

import numpy as np

from ..checks import as_array
from ..io.files import load_array
from ..io.label_images import read_frame_list, read_label_images
from ..segmentation import DeepEnsemble, train_ensemble
from ..segmentation.label_free import clearest_frames, pseudo_masks
from .configs import SegmentConfig

__all__ = [
    "LABEL_SOURCES",
    "PSEUDO_EDGE_FRACTION",
    "check_label_images",
    "training_labels",
    "train_on_labels",
    "train_segmenter",
    "segmentation_record",
    "user_labels",
]

#: Where the training labels came from (``segment.json`` ``label_source``).
LABEL_SOURCES = ("masks", "label_images", "pseudo_masks")

#: Pseudo-mask edges at this fraction of each particle's own height
#: (:func:`~pyrolatent.segmentation.label_free.local_foreground`). On the synthetic
#: rods (a bright wide head, a dim thin tail) it raised the pixel IoU against the true
#: masks from 0.82 to 0.88 and moved the mask centroids from 2.5 to 1.6 px off the rod
#: centres (the true masks' own centroids: 1.2 px), where one global threshold cut the tail.
PSEUDO_EDGE_FRACTION = 0.4


def _frames_at(frames, indices) -> np.ndarray:
    """``(K, H, W)`` frames at ``indices``, read one by one (``frames`` may be a lazy reader)."""
    return np.stack([np.asarray(frames[int(i)]) for i in indices])


def check_label_images(labels, label_frames, *, movie_shape) -> tuple[np.ndarray, np.ndarray]:
    """Match label images of some frames to a movie.

    Parameters
    ----------
    labels : array_like
        ``(K, H, W)`` label images (0 background, > 0 particle; integer or bool,
        or floats holding whole numbers); a single ``(H, W)`` image is ``K = 1``.
    label_frames : sequence of int
        The ``K`` movie frames they label, in the same order.
    movie_shape : tuple of int
        ``(T, H, W)`` of the movie.

    Returns
    -------
    labels : numpy.ndarray
        ``(K, H, W)`` int32.
    frames : numpy.ndarray
        ``(K,)`` int64 frame indices.

    Raises
    ------
    ValueError
        A different number of label images and frames, a frame index out of
        ``[0, T)`` or listed twice, a label image of another size than the
        movie's frames, negative or fractional labels, NaN/Inf.
    """
    t, h, w = (int(s) for s in movie_shape)
    try:
        labels = as_array(labels, "label images", ndim=(2, 3), dtype=None)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    if labels.ndim == 2:
        labels = labels[None]
    frames = np.asarray(list(label_frames))
    if frames.ndim != 1 or frames.size == 0 or not np.issubdtype(frames.dtype, np.integer):
        raise ValueError(f"label frames: expected a non-empty list of integers, got {frames}")
    frames = frames.astype(np.int64)
    if len(labels) != len(frames):
        raise ValueError(
            f"{len(labels)} label images for {len(frames)} listed frames {frames.tolist()}: "
            "give one label image per listed frame"
        )
    if labels.shape[1:] != (h, w):
        raise ValueError(
            f"label images are {labels.shape[1]} x {labels.shape[2]} pixels, the movie's "
            f"frames {h} x {w}"
        )
    outside = frames[(frames < 0) | (frames >= t)]
    if outside.size:
        raise ValueError(
            f"label frames {outside.tolist()} outside the movie's frames 0..{t - 1} ({t} frames)"
        )
    values, counts = np.unique(frames, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"label frames listed more than once: {values[counts > 1].tolist()}")
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise ValueError(
            "label images hold fractional values: expected integer particle ids "
            "(0 background), as a Labels layer saves them"
        )
    if labels.dtype.kind != "b" and labels.min() < 0:
        raise ValueError(f"label images hold negative values (min {labels.min()}): expected >= 0")
    return labels.astype(np.int32), frames


def training_labels(
    frames, masks=None, config: SegmentConfig | None = None, *, label_frames=None,
    exclude_frames=None,
) -> dict:  # fmt: skip
    """The frames the ensemble trains on, their labels and where the labels came from.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` movie.
    masks : array_like, optional
        Without ``label_frames``: ``(T, H, W)`` labels of the whole movie (only
        ``config.train_frames`` train). With ``label_frames``: ``(K, H, W)``
        label images of those frames (all train). None: pseudo-masks.
    config : SegmentConfig, optional
        Default ``SegmentConfig()``: ``train_frames``, and for pseudo-masks
        ``pseudo_frames``, ``polarity`` and ``background_sigma``.
    label_frames : sequence of int, optional
        The frames that ``masks`` label.
    exclude_frames : sequence of int, optional
        Frames pseudo-masks are never taken from (e.g. those flagged by the
        AFM frame quality check); flat frames are left out in any case
        (:func:`~pyrolatent.segmentation.label_free.clearest_frames`).

    Returns
    -------
    dict
        ``frames`` (``(K,)`` int64 movie frames, ascending for pseudo-masks),
        ``labels`` (``(K, H, W)``, > 0 is particle), ``source`` (one of
        :data:`LABEL_SOURCES`) and ``polarity`` (the particles' polarity for
        pseudo-masks, else None).

    Raises
    ------
    ValueError
        Labels that do not fit the movie (see :func:`check_label_images`),
        ``train_frames`` outside the movie, ``label_frames`` without label images.
    """
    config = config if config is not None else SegmentConfig()
    shape = np.shape(frames)
    if masks is None:
        if label_frames is not None:
            raise ValueError("label frames given without label images")
        n = min(config.pseudo_frames, shape[0])
        sigma = {"background_sigma": config.background_sigma}
        picked = np.sort(
            clearest_frames(frames, n=n, polarity=config.polarity, exclude=exclude_frames, **sigma)
        )
        labels, _ = pseudo_masks(
            _frames_at(frames, picked),
            polarity=config.polarity,
            local_fraction=PSEUDO_EDGE_FRACTION,
            **sigma,
        )
        if not (labels > 0).any():
            raise ValueError(
                f"the pseudo-masks of frames {picked.tolist()} hold no particle: check the "
                f"polarity ({config.polarity!r}) and background_sigma "
                f"({config.background_sigma} pixels, about the particle size), or give labels"
            )
        return {
            "frames": picked.astype(np.int64),
            "labels": labels,
            "source": "pseudo_masks",
            "polarity": config.polarity,
        }
    if label_frames is not None:
        labels, picked = check_label_images(masks, label_frames, movie_shape=shape)
        return {"frames": picked, "labels": labels, "source": "label_images", "polarity": None}
    masks = np.asarray(masks)
    if masks.shape != shape:
        raise ValueError(
            f"masks: shape {masks.shape} differs from the movie {shape}; labels of some "
            "frames only go with their frame list (label_frames)"
        )
    train = np.asarray(config.train_frames, dtype=np.int64)
    if not train.size or train.max() >= shape[0] or train.min() < 0:
        raise ValueError(f"train_frames must lie in [0, {shape[0] - 1}]")
    return {"frames": train, "labels": masks[train], "source": "masks", "polarity": None}


def train_segmenter(
    frames,
    masks=None,
    config: SegmentConfig | None = None,
    *,
    label_frames=None,
    progress: bool = False,
) -> DeepEnsemble:
    """Train the segmentation ensemble on labels, label images of some frames, or pseudo-masks.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` movie.
    masks : numpy.ndarray, optional
        ``(T, H, W)`` labels (> 0 is particle; only ``config.train_frames`` are
        used); with ``label_frames``, ``(K, H, W)`` label images of those frames;
        None: pseudo-masks of the clearest frames (no labels needed). See
        :func:`pyrolatent.workflow.segmenter.training_labels`.
    config : SegmentConfig, optional
        Default ``SegmentConfig()``.
    label_frames : sequence of int, optional
        The ``K`` frames that ``masks`` label.
    progress : bool
        Show progress bars.

    Returns
    -------
    DeepEnsemble
    """
    training = training_labels(frames, masks, config, label_frames=label_frames)
    return train_on_labels(frames, training, config, progress=progress)


def train_on_labels(
    frames, training: dict, config: SegmentConfig | None = None, *, progress: bool = False
) -> DeepEnsemble:
    """Train the segmentation ensemble on the frames and labels of :func:`training_labels`.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` movie.
    training : dict
        ``frames`` (``(K,)`` indices) and ``labels`` (``(K, H, W)``, > 0 is particle).
    config : SegmentConfig, optional
        Default ``SegmentConfig()``.
    progress : bool
        Show progress bars.

    Returns
    -------
    DeepEnsemble
    """
    config = config if config is not None else SegmentConfig()
    return train_ensemble(
        _frames_at(frames, training["frames"]),
        np.asarray(training["labels"]) > 0,
        network_config={"filters": config.filters},
        n_members=config.n_members,
        baseline_steps=config.baseline_steps,
        member_steps=config.member_steps,
        batch_size=config.batch_size,
        patch_size=config.patch_size,
        lr=config.lr,
        eval_every=25,
        patience=None,
        seed=config.seed,
        progress=progress,
    )


def segmentation_record(training: dict | None, *, label_frames=None) -> dict:
    """What ``segment.json`` and the report say about the training labels.

    Parameters
    ----------
    training : dict or None
        :func:`training_labels`; None for an ensemble trained elsewhere.
    label_frames : sequence of int, optional
        For a given ensemble: the frames of label images that score it.

    Returns
    -------
    dict
        ``label_source`` (one of :data:`LABEL_SOURCES`, or ``"trained_ensemble"``),
        ``train_frames`` (the frames trained on; empty for a given ensemble),
        ``label_frames`` (the frames of label images or pseudo-masks; None for
        whole-movie masks or no labels) and ``polarity`` (of the pseudo-masks,
        else None).
    """
    if training is None:
        frames = None if label_frames is None else [int(f) for f in label_frames]
        return {
            "label_source": "trained_ensemble",
            "train_frames": [],
            "label_frames": frames,
            "polarity": None,
        }
    trained = [int(f) for f in training["frames"]]
    return {
        "label_source": training["source"],
        "train_frames": trained,
        "label_frames": None if training["source"] == "masks" else trained,
        "polarity": training["polarity"],
    }


def user_labels(movie_shape, masks_path, labels_path, label_frames):
    """The user's labels from files as ``(labels, label_frames)``.

    Parameters
    ----------
    movie_shape : tuple of int
        ``(T, H, W)`` of the movie.
    masks_path : path-like or None
        ``.npy`` labels of the whole movie, ``(T, H, W)``.
    labels_path : path-like, sequence of path-like or None
        Label images (:func:`pyrolatent.io.label_images.read_label_images`).
    label_frames : str, path-like, sequence of int or None
        The frames the label images label (:func:`pyrolatent.io.label_images.read_frame_list`).

    Returns
    -------
    labels : numpy.ndarray or None
        ``(T, H, W)`` masks, or ``(K, H, W)`` label images, or None.
    label_frames : list of int or None
        The labelled frames of label images; None for masks or no labels.
    """
    if masks_path is not None and labels_path is not None:
        raise ValueError(
            "give either masks (labels of the whole movie) or label images with their "
            "frame list, not both"
        )
    if (labels_path is None) != (label_frames is None):
        raise ValueError(
            "label images need their frame list and a frame list needs its label images: "
            "give both (e.g. --labels labels.tif --label-frames 0,5,9)"
        )
    if labels_path is not None:
        images, frames = check_label_images(
            read_label_images(labels_path), read_frame_list(label_frames), movie_shape=movie_shape
        )
        return images, frames.tolist()
    if masks_path is None:
        return None, None
    masks = load_array(masks_path, ndim=(3,), what="labels (T, H, W)", dtype=None)
    if masks.shape != tuple(movie_shape):
        raise ValueError(
            f"{masks_path}: labels of shape {masks.shape} for a movie of shape "
            f"{tuple(movie_shape)}; labels of some frames go in label images with their "
            "frame list (--labels, --label-frames)"
        )
    return masks, None
