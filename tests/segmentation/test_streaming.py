"""Streaming segmentation (predict_movie): equal to a whole-movie prediction, files written
completely and atomically, compact results, clear errors, memory flat in the movie's length."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
import torch

from pyrolatent.io.atomic import current_umask
from pyrolatent.io.movie_formats import open_movie
from pyrolatent.segmentation import DeepEnsemble, DilNet, predict_movie, predict_tiled
from pyrolatent.segmentation.streaming import OUTPUT_NAMES

T, H, W = 7, 40, 36
OPTIONS = {"tile_size": 32, "overlap": 4}  # several tiles per frame, a ragged last tile


def _ensemble(out_channels=1, multiclass=False):
    net = DilNet(filters=2, members=2, out_channels=out_channels)
    with torch.no_grad():  # random weights: outputs vary over pixels and members
        for p in net.parameters():
            p.normal_(0, 0.5)
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return DeepEnsemble(network=net.eval(), multiclass=multiclass)


@pytest.fixture(scope="module")
def ensemble():
    return _ensemble()


@pytest.fixture(scope="module")
def movie():
    return np.random.default_rng(0).normal(2.0, 3.0, size=(T, H, W)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(ensemble, movie):
    mean, var = ensemble.predict(movie, progress=False, **OPTIONS)
    assert var.max() > 1e-4 and mean.std() > 1e-3  # a non-trivial answer to compare with
    return mean[:, 0], var[:, 0]


@pytest.mark.parametrize("block_frames", [1, 3, T, 100])
def test_streamed_files_equal_the_whole_movie_prediction(
    tmp_path, ensemble, movie, reference, block_frames
):
    path = tmp_path / "movie.npy"
    np.save(path, movie)
    out = tmp_path / "out"
    prob, var = predict_movie(path, ensemble, out=out, block_frames=block_frames, **OPTIONS)
    assert isinstance(prob, np.memmap) and prob.shape == (T, H, W) and prob.dtype == np.float32
    np.testing.assert_allclose(prob, reference[0], atol=1e-6)
    np.testing.assert_allclose(var, reference[1], atol=1e-7)
    # the files are complete, alone in the folder (no temporaries) and follow the umask
    assert sorted(os.listdir(out)) == sorted(OUTPUT_NAMES)
    for name, want in zip(OUTPUT_NAMES, reference, strict=True):
        np.testing.assert_allclose(np.load(out / name), want, atol=1e-6)
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~current_umask()
        assert (out / name).stat().st_size == 128 + T * H * W * 4  # header + exactly the data


def test_in_memory_and_lazy_sources_agree_and_results_are_compact(
    tmp_path, ensemble, movie, reference
):
    import tifffile

    tifffile.imwrite(tmp_path / "movie.tif", movie)
    sources = [movie, torch.from_numpy(movie), open_movie(tmp_path / "movie.tif")]
    np.save(tmp_path / "movie.npy", movie)
    sources.append(np.load(tmp_path / "movie.npy", mmap_mode="r"))
    for source in sources:
        prob, var = predict_movie(source, ensemble, block_frames=2, **OPTIONS)
        np.testing.assert_allclose(prob, reference[0], atol=1e-6)
        np.testing.assert_allclose(var, reference[1], atol=1e-7)
        for arr in (prob, var):  # exactly (T, H, W), owning exactly that memory
            assert arr.shape == (T, H, W) and arr.flags.owndata and arr.nbytes == T * H * W * 4


def test_predict_and_predict_tiled_return_no_padded_buffer(ensemble, movie):
    mean, var = ensemble.predict(movie, progress=False, **OPTIONS)
    for arr in (mean, var):
        assert arr.flags.owndata and arr.nbytes == T * H * W * 4  # not a view of mean+var
    frames = torch.randn(2, 1, 70, 45)
    for tile in (32, 256):  # tiled, and whole frames padded to the size multiple
        out = predict_tiled(lambda x: x * 2, frames, tile_size=tile, overlap=4, size_multiple=8)
        assert out.untyped_storage().nbytes() == out.numel() * 4
        torch.testing.assert_close(out, frames * 2)


def test_channels_are_kept_or_chosen(movie):
    ens = _ensemble(out_channels=3, multiclass=True)
    mean, var = ens.predict(movie, progress=False, **OPTIONS)
    prob, pvar = predict_movie(movie, ens, block_frames=4, **OPTIONS)
    assert prob.shape == (T, 3, H, W)
    np.testing.assert_allclose(prob, mean, atol=1e-6)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)  # softmax over classes
    prob2, var2 = predict_movie(movie, ens, block_frames=4, channel=2, **OPTIONS)
    assert prob2.shape == (T, H, W)
    np.testing.assert_allclose(var2, var[:, 2], atol=1e-7)


def test_bad_input_is_refused_and_writes_nothing(tmp_path, ensemble, movie):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        predict_movie(movie[0], ensemble, out=out)
    with pytest.raises(ValueError, match="empty"):
        predict_movie(movie[:0], ensemble, out=out)
    with pytest.raises(ValueError, match="channels"):
        predict_movie(movie[:, None].repeat(2, axis=1), ensemble, out=out)
    with pytest.raises(ValueError, match="block_frames"):
        predict_movie(movie, ensemble, out=out, block_frames=0)
    with pytest.raises(ValueError, match="block_frames"):
        predict_movie(movie, ensemble, out=out, block_frames=2.5)
    with pytest.raises(ValueError, match="channel"):
        predict_movie(movie, ensemble, out=out, channel=1)
    with pytest.raises(ValueError, match="expected an array"):
        predict_movie(object(), ensemble, out=out)
    with pytest.raises(TypeError, match="complex"):
        predict_movie(movie.astype(np.complex64), ensemble, out=out)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        predict_movie(movie, ensemble, out=a_file)
    assert not out.exists() or not os.listdir(out)


def test_a_failing_block_keeps_the_previous_files(tmp_path, ensemble, movie, reference):
    out = tmp_path / "out"
    predict_movie(movie, ensemble, out=out, block_frames=2, **OPTIONS)
    spoiled = movie.copy()
    spoiled[5, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"movie frames 4..5: contains 1 NaN"):
        predict_movie(spoiled, ensemble, out=out, block_frames=2, **OPTIONS)
    assert sorted(os.listdir(out)) == sorted(OUTPUT_NAMES)  # no temporaries left
    np.testing.assert_allclose(np.load(out / OUTPUT_NAMES[0]), reference[0], atol=1e-6)


def test_numpy_memory_does_not_grow_with_the_movie_length(tmp_path, ensemble):
    """tracemalloc sees numpy's allocations (not torch's): the blocks read, the block
    predictions and any whole-movie array. Streaming a lazily read movie 4x longer must
    not raise their peak (threshold: +25 %); a whole-movie copy would raise it 4x."""
    rng = np.random.default_rng(1)
    peaks = []
    for n in (8, 32):
        path = tmp_path / f"movie{n}.npy"
        np.save(path, rng.normal(size=(n, 64, 64)).astype(np.float32))
        tracemalloc.start()
        predict_movie(path, ensemble, out=tmp_path / f"out{n}", block_frames=4)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    block_bytes = 4 * 64 * 64 * 4
    assert peaks[0] > block_bytes  # the block itself is seen
    assert peaks[1] <= 1.25 * peaks[0], peaks
