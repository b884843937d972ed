"""Crops around particles (border padding with a valid flag) and movie reading."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from skimage.io import imsave

from pyrolatent.data.crops import extract_crops
from pyrolatent.io.movie import read_movie


def _movie():
    frames = np.zeros((2, 40, 50), np.float32)
    frames[0] = np.arange(40)[:, None] * 100 + np.arange(50)[None]  # value = 100 row + col
    frames[1] = -1.0
    return frames


def test_crops_are_centred_and_border_crops_are_padded_not_dropped():
    frames = _movie()
    table = {
        "frame": np.array([0, 0, 0, 1]),
        "row": np.array([20.2, 1.0, 39.0, 10.0]),
        "col": np.array([25.4, 1.0, 49.0, 10.0]),
    }
    crops, index = extract_crops(frames, table, window=9)
    assert crops.shape == (4, 9, 9) and crops.dtype == np.float32
    assert index["valid"].tolist() == [True, False, False, True]
    assert index["particle"].tolist() == [0, 1, 2, 3]
    # centre pixel is the rounded particle centre; rows go down, columns right
    assert crops[0, 4, 4] == 20 * 100 + 25
    np.testing.assert_array_equal(crops[0, :, 4], (np.arange(16, 25)) * 100 + 25)
    # the corner crop holds the real pixels where they exist and padding elsewhere
    assert crops[1, 4, 4] == 101 and crops[1, 3, 3] == 0
    values = np.sort(frames[0].ravel())
    pad = values[(len(values) - 1) // 2]  # the frame's (lower) median
    assert crops[1, 0, 0] == pad
    assert crops[3].min() == -1 and crops[3].max() == -1
    reflect, _ = extract_crops(frames, table, window=9, pad_mode="reflect")
    assert reflect[1, 2, 4] == 101  # row -1 mirrors row 1
    np.testing.assert_array_equal(reflect[0], crops[0])


def test_crop_errors_and_empty_table():
    frames = _movie()
    table = {"frame": np.array([0]), "row": np.array([5.0]), "col": np.array([5.0])}
    with pytest.raises(ValueError, match="larger than the frame"):
        extract_crops(frames, table, window=41)
    with pytest.raises(ValueError, match="missing"):
        extract_crops(frames, {"frame": np.array([0])}, window=5)
    with pytest.raises(ValueError, match="frame numbers"):
        extract_crops(frames, {**table, "frame": np.array([2])}, window=5)
    bad = frames.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        extract_crops(bad, table, window=5)
    empty = {"frame": np.zeros(0, int), "row": np.zeros(0), "col": np.zeros(0)}
    crops, index = extract_crops(frames, empty, window=8)
    assert crops.shape == (0, 8, 8) and len(index["valid"]) == 0


def test_read_movie_formats(tmp_path):
    movie = np.random.default_rng(0).integers(0, 255, (3, 16, 20)).astype(np.uint8)
    np.save(tmp_path / "m.npy", movie)
    np.savez(tmp_path / "m.npz", images=movie, labels=movie)
    tifffile.imwrite(tmp_path / "m.tif", movie, photometric="minisblack")
    rgba = np.stack([movie[0], movie[1], movie[2], np.full_like(movie[0], 255)], -1)
    imsave(tmp_path / "m.png", rgba, check_contrast=False)
    for name in ("m.npy", "m.tif"):
        out = read_movie(tmp_path / name)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, movie)
    np.testing.assert_array_equal(read_movie(tmp_path / "m.npz", key="labels"), movie)
    with pytest.raises(ValueError, match="key"):
        read_movie(tmp_path / "m.npz")
    np.testing.assert_array_equal(read_movie(tmp_path / "m.png", channel=1), movie[1:2])
    grey = read_movie(tmp_path / "m.png")
    np.testing.assert_allclose(grey[0], movie.astype(float).mean(0), atol=1e-4)
    bad = movie.astype(np.float32)
    bad[1, 2, 3] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match="Inf"):
        read_movie(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match="unsupported"):
        (tmp_path / "m.xyz").write_text("x")
        read_movie(tmp_path / "m.xyz")
