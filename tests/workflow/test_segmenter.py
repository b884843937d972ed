"""Training labels of the segmentation: whole-movie masks, label images of some frames, none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie
from pyrolatent.segmentation.metrics import pixel_iou
from pyrolatent.workflow import SegmentConfig, steps
from pyrolatent.workflow.segmenter import (
    check_label_images,
    segmentation_record,
    training_labels,
)


@pytest.fixture(scope="module")
def movie():
    return make_self_assembly_movie(
        n_frames=8, size=96, n_particles=10, transition_frame=4, head_contrast=0.9, seed=4
    )


def test_label_images_of_some_frames_are_matched_to_the_movie():
    labels = np.zeros((2, 8, 10), np.uint16)
    labels[1, 2:4, 3:6] = 7
    images, frames = check_label_images(labels, [5, 0], movie_shape=(6, 8, 10))
    assert images.dtype == np.int32 and images.shape == (2, 8, 10)
    assert frames.tolist() == [5, 0] and frames.dtype == np.int64
    assert (images[1] == 7).sum() == 6
    # one (H, W) image is one frame; whole-number floats and bools are labels too
    assert check_label_images(labels[1].astype(float), [3], movie_shape=(6, 8, 10))[0].shape == (
        1,
        8,
        10,
    )
    assert check_label_images(labels > 0, [1, 2], movie_shape=(6, 8, 10))[0].max() == 1


@pytest.mark.parametrize(
    ("frames", "labels", "message"),
    [
        ([0, 1, 2], np.zeros((2, 8, 10)), "2 label images for 3 listed frames"),
        ([0, 1], np.zeros((2, 8, 9)), "8 x 9 pixels, the movie's frames 8 x 10"),
        ([0, 6], np.zeros((2, 8, 10)), r"frames \[6\] outside the movie's frames 0..5"),
        ([-1, 2], np.zeros((2, 8, 10)), r"frames \[-1\] outside"),
        ([3, 3], np.zeros((2, 8, 10)), r"listed more than once: \[3\]"),
        ([0, 1], np.full((2, 8, 10), 0.5), "fractional"),
        ([0, 1], np.full((2, 8, 10), -1), "negative"),
        ([0, 1], np.full((2, 8, 10), np.nan), "NaN"),
        ([], np.zeros((0, 8, 10)), "empty|non-empty"),
        ([0.5, 1], np.zeros((2, 8, 10)), "integers"),
    ],
)
def test_label_images_that_do_not_fit_get_clear_errors(frames, labels, message):
    with pytest.raises(ValueError, match=message):
        check_label_images(labels, frames, movie_shape=(6, 8, 10))


def test_without_labels_the_clearest_frames_get_pseudo_masks(movie):
    config = SegmentConfig(pseudo_frames=3, background_sigma=6.0)
    frames = movie.frames.copy()
    rng = np.random.default_rng(0)
    frames[2] = rng.normal(frames[2].mean(), frames[2].std(), frames[2].shape)  # noise only
    training = training_labels(frames, None, config)
    assert training["source"] == "pseudo_masks" and training["polarity"] == "bright"
    picked = training["frames"]
    assert len(picked) == 3 and 2 not in picked and np.all(np.diff(picked) > 0)
    iou = pixel_iou(training["labels"] > 0, movie.masks[picked] > 0)
    assert iou >= 0.75, iou  # measured 0.82-0.86 on the synthetic rods
    # dark particles: the inverted movie gives the same frames and masks
    dark = training_labels(-frames, None, replace(config, polarity="dark"))
    assert dark["polarity"] == "dark" and dark["frames"].tolist() == picked.tolist()
    assert np.array_equal(dark["labels"] > 0, training["labels"] > 0)
    # the wrong polarity finds the gaps between particles, not the particles
    wrong = training_labels(-frames, None, config)
    assert pixel_iou(wrong["labels"] > 0, movie.masks[wrong["frames"]] > 0) < 0.3


def test_training_labels_from_masks_and_from_label_images(movie):
    config = SegmentConfig(train_frames=(1, 3))
    full = training_labels(movie.frames, movie.masks, config)
    assert full["source"] == "masks" and full["frames"].tolist() == [1, 3]
    assert np.array_equal(full["labels"], movie.masks[[1, 3]])
    some = training_labels(movie.frames, movie.masks[[6, 2]], config, label_frames=[6, 2])
    assert some["source"] == "label_images" and some["frames"].tolist() == [6, 2]
    assert np.array_equal(some["labels"] > 0, movie.masks[[6, 2]] > 0)
    with pytest.raises(ValueError, match="label_frames"):  # labels of some frames, no list
        training_labels(movie.frames, movie.masks[[6, 2]], config)
    with pytest.raises(ValueError, match="without label images"):
        training_labels(movie.frames, None, config, label_frames=[1])
    with pytest.raises(ValueError, match="train_frames"):
        training_labels(movie.frames, movie.masks, SegmentConfig(train_frames=(8,)))


def test_segment_config_checks_the_label_free_options():
    with pytest.raises(ValueError, match="polarity"):
        SegmentConfig(polarity="grey")
    with pytest.raises(ValueError, match="pseudo_frames"):
        SegmentConfig(pseudo_frames=0)
    with pytest.raises(ValueError, match="background_sigma"):
        SegmentConfig(background_sigma=1)


def test_pseudo_masks_without_particles_are_refused():
    flat = np.ones((3, 32, 32), np.float32)
    with pytest.raises(ValueError, match="3 of 3 frames are flat"):
        training_labels(flat, None, SegmentConfig(pseudo_frames=2))
    specks = np.zeros((3, 32, 32), np.float32)
    specks[:, 8, 8] = specks[:, 20, 24] = 1.0  # single hot pixels: below the minimum area
    with pytest.raises(ValueError, match="hold no particle: check the polarity"):
        training_labels(specks, None, SegmentConfig(pseudo_frames=2))


def test_segmentation_record_and_iou_on_label_images():
    training = {"frames": np.array([2, 5]), "labels": None, "source": "pseudo_masks"}
    record = segmentation_record({**training, "polarity": "dark"})
    assert record == {
        "label_source": "pseudo_masks",
        "train_frames": [2, 5],
        "label_frames": [2, 5],
        "polarity": "dark",
    }
    masks = {**training, "source": "masks", "polarity": None}
    assert segmentation_record(masks)["label_frames"] is None
    given = segmentation_record(None, label_frames=np.array([1]))
    assert given["label_source"] == "trained_ensemble" and given["label_frames"] == [1]
    # IoU on the label images of frames not trained on: frame 4 right, frame 1 half right
    prob = np.zeros((6, 4, 4), np.float32)
    labels = np.zeros((2, 4, 4), np.int32)
    prob[4, :2], labels[1, :2] = 1.0, 3
    prob[1, :2], labels[0, :1] = 1.0, 1
    assert steps.segmentation_iou(prob, labels, train_frames=[1], label_frames=[1, 4]) == 1.0
    iou = steps.segmentation_iou(prob, labels, train_frames=[], label_frames=[1, 4])
    assert iou == pytest.approx((4 + 8) / (8 + 8))
    assert steps.segmentation_iou(prob, labels, train_frames=[1, 4], label_frames=[1, 4]) is None
