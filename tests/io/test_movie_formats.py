"""Lazy readers on files written by each format's own library (TIFF, OME-TIFF, HDF5, zarr,
MRC, EMD) and on the sample files that AFMReader ships (asd, spm, ibw, jpk)."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.io.movie_formats import LazyMovie, open_movie


def _movie(t=6, c=None, h=20, w=24, seed=0):
    shape = (t, h, w) if c is None else (t, c, h, w)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_imagej_tiff_stack_is_read_frame_by_frame_with_its_metadata(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    data = _movie()
    path = tmp_path / "m.tif"
    tifffile.imwrite(
        path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "TYX", "finterval": 0.5, "unit": "um"},
    )  # fmt: skip
    movie = open_movie(path)
    assert isinstance(movie, LazyMovie) and movie.shape == data.shape and len(movie) == 6
    np.testing.assert_array_equal(movie[2], data[2])
    np.testing.assert_array_equal(movie[1:4], data[1:4])
    np.testing.assert_array_equal(movie[[5, 0]], data[[5, 0]])
    assert movie.metadata.pixel_size_nm == pytest.approx(250.0)
    assert movie.metadata.frame_time_s == pytest.approx(0.5)


def test_ome_tiff_tcyx_needs_a_channel(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    data = _movie(c=2)
    path = tmp_path / "m.ome.tif"
    tifffile.imwrite(
        path, data, ome=True,
        metadata={"axes": "TCYX", "PhysicalSizeX": 0.1, "PhysicalSizeXUnit": "µm",
                  "TimeIncrement": 2.0, "TimeIncrementUnit": "s"},
    )  # fmt: skip
    with pytest.raises(ValueError, match="channel="):
        open_movie(path)
    movie = open_movie(path, channel=1)
    np.testing.assert_array_equal(movie[3], data[3, 1])
    np.testing.assert_array_equal(np.asarray(movie), data[:, 1])
    assert movie.metadata.pixel_size_nm == pytest.approx(100.0)
    assert movie.metadata.frame_time_s == pytest.approx(2.0)


def test_plain_4d_tiff_without_axes_is_refused_not_guessed(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    data = _movie(c=3)
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, data, metadata=None)
    with pytest.raises(ValueError, match="ambiguous"):
        open_movie(path)
    movie = open_movie(path, axes="TCYX", channel=2)
    np.testing.assert_array_equal(movie[4], data[4, 2])


def test_hdf5_dataset_lazy_with_axes_attribute_and_error_without(tmp_path):
    h5py = pytest.importorskip("h5py")
    data = _movie(c=2)
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["raw/movie"] = data
        f["stated/movie"] = np.moveaxis(data, 1, -1)  # TYXC
        f["stated/movie"].attrs.update({"axes": "TYXC", "pixel_size_nm": 0.8, "frame_time_s": 0.1})
    with pytest.raises(ValueError, match="dataset="):
        open_movie(path)
    with pytest.raises(ValueError, match="ambiguous"):
        open_movie(path, dataset="raw/movie")
    movie = open_movie(path, dataset="stated/movie", channel=0)
    np.testing.assert_array_equal(movie[5], data[5, 0])
    assert (movie.metadata.pixel_size_nm, movie.metadata.frame_time_s) == (0.8, 0.1)
    tcyx = open_movie(path, dataset="raw/movie", axes="TCYX", channel=1)
    np.testing.assert_array_equal(tcyx.block(2, 6, 2), data[2:6:2, 1])


def test_zarr_array_and_group(tmp_path):
    zarr = pytest.importorskip("zarr")
    data = _movie()
    z = zarr.open_array(str(tmp_path / "m.zarr"), mode="w", shape=data.shape, dtype="f4")
    z[:] = data
    z.attrs["pixel_size_nm"] = 2.0
    movie = open_movie(tmp_path / "m.zarr")
    np.testing.assert_array_equal(movie[-1], data[-1])
    assert movie.metadata.pixel_size_nm == 2.0
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("frames", shape=data.shape, dtype="f4")[:] = data
    np.testing.assert_array_equal(open_movie(tmp_path / "g.zarr")[0], data[0])


def test_mrc_stack_memory_mapped_with_voxel_size(tmp_path):
    mrcfile = pytest.importorskip("mrcfile")
    data = _movie()
    path = tmp_path / "m.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 5.0  # angstrom
    movie = open_movie(path)
    assert movie.shape == data.shape
    np.testing.assert_array_equal(movie[3], data[3])
    assert movie.metadata.pixel_size_nm == pytest.approx(0.5)


def test_emd_written_by_rosettasciio(tmp_path):
    emd = pytest.importorskip("rsciio.emd")
    data = _movie(t=4)
    path = tmp_path / "m.emd"
    axes = [
        {"name": name, "units": unit, "index_in_array": i, "size": n, "offset": 0.0,
         "scale": scale, "navigate": i == 0}
        for i, (name, unit, n, scale) in enumerate(
            [("time", "s", 4, 0.05), ("y", "nm", 20, 0.3), ("x", "nm", 24, 0.3)]
        )
    ]  # fmt: skip
    emd.file_writer(
        str(path),
        {
            "data": data,
            "axes": axes,
            "metadata": {"General": {"title": "m"}, "Signal": {}},
            "original_metadata": {},
        },
    )
    movie = open_movie(path)
    assert movie.shape == data.shape
    np.testing.assert_allclose(movie[2], data[2])
    assert movie.metadata.pixel_size_nm == pytest.approx(0.3)
    assert movie.metadata.frame_time_s == pytest.approx(0.05)


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "x.abc").write_text("")
    with pytest.raises(ValueError, match="unknown"):
        open_movie(tmp_path / "x.abc")
    with pytest.raises(FileNotFoundError):
        open_movie(tmp_path / "absent.tif")
