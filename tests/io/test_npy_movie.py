"""Lazy .npy movies (plain file reads, no memory map) and the workflow's lazy opener."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.checks import InputTypeError
from pyrolatent.io.lazy_movie import LazyMovie
from pyrolatent.io.movie_formats import open_movie
from pyrolatent.io.npy_movie import NpyFrames, open_npy


def _movie(shape=(9, 12, 10), seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, ">f8", np.int16, np.bool_])
def test_npy_frames_read_exactly_what_is_indexed(tmp_path, order, dtype):
    data = np.asarray(_movie() * 10 if dtype != np.bool_ else _movie() > 0, dtype=dtype)
    path = tmp_path / "m.npy"
    np.save(path, np.asfortranarray(data) if order == "F" else data)
    frames = NpyFrames(path)
    assert frames.shape == data.shape and len(frames) == 9 and frames.dtype == data.dtype
    whole = (slice(None), slice(None))
    indices = [slice(2, 5), slice(0, 9), slice(7, 100), slice(5, 2), slice(None, None, 3)]
    for index in [*indices, (slice(1, 3), *whole), 4, (slice(0, 2), slice(3, 5))]:
        np.testing.assert_array_equal(frames[index], data[index])
    movie = open_npy(path)
    assert isinstance(movie, LazyMovie) and movie.shape == data.shape
    np.testing.assert_array_equal(movie.block(3, 6), data[3:6].astype(np.float32))


def test_open_npy_refuses_bad_files_and_ambiguous_layouts(tmp_path):
    path = tmp_path / "c.npy"
    np.save(path, _movie().astype(np.complex64))
    with pytest.raises(InputTypeError, match="complex"):
        open_npy(path)
    np.save(path, _movie((4, 12, 10, 3)))
    with pytest.raises(ValueError, match="ambiguous"):
        open_npy(path)
    movie = open_npy(path, axes="TYXC", channel=1)
    np.testing.assert_array_equal(movie[2], _movie((4, 12, 10, 3))[2, :, :, 1])
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="npy"):
        open_npy(path)
    with pytest.raises(FileNotFoundError):
        open_npy(tmp_path / "missing.npy")


def test_open_movie_reads_npy_frames_on_demand(tmp_path):
    import tifffile

    data = _movie()
    np.save(tmp_path / "m.npy", data)
    tifffile.imwrite(tmp_path / "m.tif", data)
    np.savez(tmp_path / "m.npz", movie=data)
    for name in ("m.npy", "m.tif", "m.npz"):
        movie = open_movie(tmp_path / name)
        assert isinstance(movie, LazyMovie), name
        np.testing.assert_array_equal(movie[1:4], data[1:4])
    assert isinstance(open_movie(tmp_path / "m.npy")._source, NpyFrames)
    np.save(tmp_path / "m4.npy", data[:, None])  # (T, 1, H, W): ambiguous without axes
    with pytest.raises(ValueError, match="axes"):
        open_movie(tmp_path / "m4.npy")
