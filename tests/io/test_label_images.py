"""Label images and frame lists as annotation tools save them (napari Labels layers as TIFF)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from pyrolatent.io.label_images import read_frame_list, read_label_images


def _labels(k: int, shape=(12, 16)) -> np.ndarray:
    rng = np.random.default_rng(k)
    return rng.integers(0, 5, size=(k, *shape)).astype(np.uint16)


def test_one_2d_tiff_per_frame_is_stacked_in_order(tmp_path):
    images = _labels(3)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"frame_{i}.tif")
        tifffile.imwrite(paths[-1], image)
    read = read_label_images(paths)
    assert read.shape == (3, 12, 16) and read.dtype == np.uint16
    assert np.array_equal(read, images)
    # one 2-D image alone is K = 1
    assert np.array_equal(read_label_images(paths[1]), images[1:2])


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_a_stack_file_is_read_as_k_images(tmp_path, suffix):
    images = _labels(4).astype(np.int32)
    path = tmp_path / f"labels{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, images, photometric="minisblack")
    else:
        np.save(path, images)
    read = read_label_images(path)
    assert np.array_equal(read, images)


def test_png_label_image(tmp_path):
    from skimage.io import imsave

    image = _labels(1)[0].astype(np.uint8)
    imsave(tmp_path / "f.png", image, check_contrast=False)
    assert np.array_equal(read_label_images(tmp_path / "f.png"), image[None])


def test_label_files_that_do_not_fit_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", _labels(1)[0])
    tifffile.imwrite(tmp_path / "b.tif", _labels(1, shape=(12, 15))[0])
    tifffile.imwrite(tmp_path / "stack.tif", _labels(2), photometric="minisblack")
    with pytest.raises(ValueError, match="differ in shape"):
        read_label_images([tmp_path / "a.tif", tmp_path / "b.tif"])
    with pytest.raises(ValueError, match="each must be one"):
        read_label_images([tmp_path / "a.tif", tmp_path / "stack.tif"])
    with pytest.raises(FileNotFoundError):
        read_label_images(tmp_path / "missing.tif")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="unsupported"):
        read_label_images(tmp_path / "x.csv")
    from skimage.io import imsave

    imsave(tmp_path / "rgb.png", np.zeros((8, 8, 3), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="colour"):
        read_label_images(tmp_path / "rgb.png")
    np.save(tmp_path / "four.npy", np.zeros((1, 2, 8, 8)))
    with pytest.raises(ValueError, match="expected a"):
        read_label_images(tmp_path / "four.npy")
    with pytest.raises(ValueError, match="no label image"):
        read_label_images([])


def test_frame_lists_from_text_sequences_and_files(tmp_path):
    assert read_frame_list("0,5,9") == [0, 5, 9]
    assert read_frame_list(" 9 5, 0 ") == [9, 5, 0]  # order kept: it pairs with the images
    assert read_frame_list([3, np.int64(4), 5.0]) == [3, 4, 5]
    text = tmp_path / "frames.txt"
    text.write_text("# frames I labelled\n0\n5  # the clearest\n9\n")
    assert read_frame_list(text) == [0, 5, 9]
    assert read_frame_list(str(text)) == [0, 5, 9]
    (tmp_path / "frames.json").write_text("[2, 7]")
    assert read_frame_list(tmp_path / "frames.json") == [2, 7]


@pytest.mark.parametrize("bad", ["1.5", "a,b", "", "0;5", [True], [1.5], ["3"]])
def test_frame_lists_that_are_not_integers_are_refused(bad):
    with pytest.raises(ValueError, match="frame index"):
        read_frame_list(bad)
