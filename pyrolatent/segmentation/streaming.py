"""Segmentation of movies of any length: blocks of frames from a lazy reader into ``.npy`` files.

:func:`predict_movie` reads ``block_frames`` frames at a time, predicts them with
:meth:`DeepEnsemble.predict <pyrolatent.segmentation.ensemble.DeepEnsemble.predict>`
and writes the ensemble mean and variance of the block into ``probability.npy``
and ``variance.npy`` before reading the next block. Frames are standardised one
by one, so blocks are independent and the result equals a prediction of the whole
movie at once (to float rounding).

Memory: one block of input frames, its predictions and the temporaries of one
chunk of :data:`~pyrolatent.segmentation.ensemble.CHUNK_PIXELS` pixels, whatever
the movie's length. Each block is written through a memory map that is closed
after the block, so the written pages leave the process's resident memory (a map
kept open over the whole output would grow to the output's size). The files are
written under temporary names in the output folder and renamed when complete
(:func:`pyrolatent.io.atomic.atomic_write`, permissions from the umask): an
interrupted run leaves the previous files, or none, never a partial one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from ..checks import check_count, check_dtype, check_finite
from ..io.atomic import atomic_write
from ..io.files import load_npy
from ..io.movie_formats import open_movie
from .ensemble import DeepEnsemble

__all__ = ["predict_movie", "OUTPUT_NAMES", "BLOCK_BYTES"]

#: File names of the ensemble mean and variance in the output folder.
OUTPUT_NAMES = ("probability.npy", "variance.npy")

#: Input bytes per block (float32) when ``block_frames`` is not given: 64 MiB
#: (256 frames of 256 x 256 pixels, at least one frame).
BLOCK_BYTES = 64 * 2**20


def _check_movie(movie, in_channels: int) -> tuple[int, ...]:
    """The movie's shape, checked: ``(T, H, W)`` or ``(T, C, H, W)``, non-empty, numeric."""
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        raise ValueError(
            f"movie: expected an array, a memory map, a LazyMovie or a path, "
            f"got {type(movie).__name__}"
        )
    if hasattr(movie, "dtype"):
        check_dtype(movie.dtype, "movie")
    shape = tuple(int(s) for s in movie.shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"movie: expected (T, H, W) or (T, C, H, W) frames, got shape {shape}")
    if 0 in shape:
        raise ValueError(f"movie: is empty (shape {shape})")
    channels = shape[1] if len(shape) == 4 else 1
    if channels != in_channels:
        raise ValueError(f"movie: {channels} channels, the ensemble expects {in_channels}")
    return shape


def _check_out(out) -> Path:
    """``out`` as a folder (created when missing); ``ValueError`` if it is something else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} exists and is not a directory")
    out.mkdir(mode=0o777, parents=True, exist_ok=True)  # the umask applies
    return out


def _write_block(path: str, start: int, values: np.ndarray) -> None:
    """Write ``values`` at frame ``start`` of the ``.npy`` file ``path`` and unmap it again."""
    mapped = open_memmap(path, mode="r+")
    mapped[start : start + len(values)] = values
    mapped.flush()
    del mapped


def predict_movie(
    movie,
    ensemble: DeepEnsemble,
    *,
    out=None,
    block_frames: int | None = None,
    channel: int | None = None,
    tile_size: int = 256,
    overlap: int = 16,
    batch_size: int = 4,
    tta: bool = False,
    member_pass: str = "auto",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble mean and variance of every frame, predicted block by block.

    Parameters
    ----------
    movie : path-like, LazyMovie, numpy.ndarray, numpy.memmap or torch.Tensor
        ``(T, H, W)`` frames (``(T, C, H, W)`` for a network of ``C > 1`` input
        channels), any object with ``shape`` that slices by frame ranges
        (``movie[a:b]``). A path is opened with :func:`pyrolatent.io.movie_formats.open_movie`
        (frames read on demand). A ``numpy.memmap`` keeps the pages it has read
        mapped (they count in resident memory until the map is closed); a path or a
        :class:`~pyrolatent.io.lazy_movie.LazyMovie` reads each block with plain
        file reads.
    ensemble : DeepEnsemble
    out : path-like, optional
        Folder for ``probability.npy`` and ``variance.npy`` (created when missing).
        Without it the results are in-memory arrays (for movies that fit in memory
        twice).
    block_frames : int, optional
        Frames read and predicted at a time, ``>= 1`` (a block longer than the movie
        is the whole movie). Default: :data:`BLOCK_BYTES` of float32 input per block.
    channel : int, optional
        Keep only this output channel. Default: all channels, the channel axis
        dropped for a one-channel network.
    tile_size, overlap, batch_size, tta, member_pass
        As for :meth:`DeepEnsemble.predict
        <pyrolatent.segmentation.ensemble.DeepEnsemble.predict>`.
    progress : bool
        Show a progress bar over frames.

    Returns
    -------
    probability, variance : numpy.ndarray
        Float32 ensemble mean and variance, ``(T, H, W)`` (one channel, or
        ``channel`` given) or ``(T, K, H, W)``; each exactly that size. With ``out``:
        read-only memory maps of the written files.

    Raises
    ------
    ValueError
        Wrong dimensions or channels, an empty movie, NaN/Inf frames (naming the
        frames), ``block_frames < 1``, ``channel`` out of range, or ``out`` an
        existing file. No output file is written then.
    """
    if isinstance(movie, (str, os.PathLike)):
        movie = open_movie(movie)
    shape = _check_movie(movie, ensemble.network.in_channels)
    n_frames, frame_pixels = shape[0], int(np.prod(shape[1:]))
    if block_frames is None:
        block_frames = max(1, BLOCK_BYTES // (4 * frame_pixels))
    block_frames = check_count(block_frames, "block_frames", low=1)
    k = ensemble.network.out_channels
    if channel is not None:
        channel = check_count(channel, "channel", low=0, high=k - 1)
    keep = channel if channel is not None else (0 if k == 1 else None)
    result_shape = (n_frames, *(() if keep is not None else (k,)), *shape[-2:])
    options = {"tile_size": tile_size, "overlap": overlap, "batch_size": batch_size}
    options |= {"tta": tta, "member_pass": member_pass, "progress": False}

    def predict_block(start: int) -> tuple[np.ndarray, np.ndarray]:
        stop = min(n_frames, start + block_frames)
        frames = movie[start:stop]
        if isinstance(frames, np.ndarray):
            check_finite(frames, f"movie frames {start}..{stop - 1}")
        mean, var = ensemble.predict(frames, **options)
        return (mean[:, keep], var[:, keep]) if keep is not None else (mean, var)

    def run(write) -> None:
        """``write(start, mean, var)`` for each block; nothing of a block outlives it."""
        with tqdm(total=n_frames, disable=not progress, unit="frame", desc="segment") as bar:
            for start in range(0, n_frames, block_frames):
                write(start, *predict_block(start))
                bar.update(min(block_frames, n_frames - start))

    if out is None:
        probability = np.empty(result_shape, dtype=np.float32)
        variance = np.empty(result_shape, dtype=np.float32)

        def store(start: int, mean: np.ndarray, var: np.ndarray) -> None:
            probability[start : start + len(mean)] = mean
            variance[start : start + len(var)] = var

        run(store)
        return probability, variance

    paths = [_check_out(out) / name for name in OUTPUT_NAMES]

    def write_both(tmp_probability: str) -> None:
        def write(tmp_variance: str) -> None:
            for tmp in (tmp_probability, tmp_variance):
                created = open_memmap(tmp, mode="w+", dtype=np.float32, shape=result_shape)
                del created

            def write_block(start: int, mean: np.ndarray, var: np.ndarray) -> None:
                _write_block(tmp_probability, start, mean)
                _write_block(tmp_variance, start, var)

            run(write_block)

        atomic_write(paths[1], write)

    atomic_write(paths[0], write_both)
    return load_npy(paths[0], mmap=True), load_npy(paths[1], mmap=True)
