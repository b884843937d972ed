"""``read_movie``: one entry for every format ``open_movie`` reads, in memory, with the
same ``axes=``/``channel=`` rules and the file's pixel size and frame time."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.io.movie import read_movie
from pyrolatent.io.movie_formats import SUFFIXES


def _movie(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_4d_array_without_axes_is_refused_and_read_with_them(tmp_path):
    data = _movie((5, 2, 12, 10))  # (T, C, H, W): was read as (T, C, H) with colour = W
    np.save(tmp_path / "tcyx.npy", data)
    with pytest.raises(ValueError, match="ambiguous.*axes="):
        read_movie(tmp_path / "tcyx.npy")
    with pytest.raises(ValueError, match="channel="):
        read_movie(tmp_path / "tcyx.npy", axes="TCYX")
    out = read_movie(tmp_path / "tcyx.npy", axes="TCYX", channel=1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, data[:, 1])
    np.save(tmp_path / "tyxc.npy", np.moveaxis(data, 1, -1)[..., :1].repeat(3, -1))
    with pytest.raises(ValueError, match="ambiguous"):  # a colour-like last axis: not guessed
        read_movie(tmp_path / "tyxc.npy")
    np.testing.assert_array_equal(
        read_movie(tmp_path / "tyxc.npy", axes="TYXC", channel=2), data[:, 0]
    )


def test_every_lazy_format_reads_into_memory_with_its_metadata(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    mrcfile = pytest.importorskip("mrcfile")
    data = _movie((4, 16, 18))
    tifffile.imwrite(
        tmp_path / "m.tif", data, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
        metadata={"axes": "TYX", "finterval": 0.25, "unit": "um"},
    )  # fmt: skip
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f["a/frames"] = data
        f["a/frames"].attrs.update({"pixel_size_nm": 1.5, "frame_time_s": 2.0})
        f["b/other"] = data[:2]
    z = zarr.open_array(str(tmp_path / "m.zarr"), mode="w", shape=data.shape, dtype="f4")
    z[:] = data
    with mrcfile.new(tmp_path / "m.mrc") as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 4.0  # angstrom
    np.savez(tmp_path / "m.npz", frames=data, other=data[:1])
    cases = [  # file, options, pixel size (nm), frame time (s)
        ("m.tif", {}, 500.0, 0.25),
        ("m.h5", {"dataset": "a/frames"}, 1.5, 2.0),
        ("m.zarr", {}, None, None),
        ("m.mrc", {}, 0.4, None),
        ("m.npz", {"dataset": "frames"}, None, None),
        ("m.npz", {"key": "frames"}, None, None),
    ]
    for name, options, pixel, dt in cases:
        frames, meta = read_movie(tmp_path / name, return_metadata=True, **options)
        assert isinstance(frames, np.ndarray) and frames.dtype == np.float32, name
        np.testing.assert_array_equal(frames, data, err_msg=name)
        assert meta.pixel_size_nm == (None if pixel is None else pytest.approx(pixel)), name
        assert meta.frame_time_s == (None if dt is None else pytest.approx(dt)), name
    with pytest.raises(ValueError, match="dataset="):
        read_movie(tmp_path / "m.h5")
    with pytest.raises(TypeError, match="datset"):
        read_movie(tmp_path / "m.h5", datset="a/frames")


def test_every_suffix_is_dispatched_and_errors_name_the_file(tmp_path):
    assert {".npy", ".npz", ".png", ".tif", ".h5", ".zarr", ".mrc", ".asd", ".dm4", ".ser"} <= set(
        SUFFIXES
    )
    (tmp_path / "m.xyz").write_text("x")
    with pytest.raises(ValueError, match=r"unsupported file type '\.xyz'.*\.dm3"):
        read_movie(tmp_path / "m.xyz")
    (tmp_path / "fake.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ValueError, match=r"fake\.h5: not a readable \.h5 movie"):
        read_movie(tmp_path / "fake.h5")
    (tmp_path / "dir.tif").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        read_movie(tmp_path / "dir.tif")
