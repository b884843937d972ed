"""``.npy`` movies read frame by frame.

:func:`open_npy` reads a ``.npy`` movie with plain file reads of the requested
frames (no memory map: pages read through a map stay in the process's resident
memory until it is unmapped, so a map over a long movie grows to the movie's
size). :func:`pyrolatent.io.movie_formats.open_movie` opens ``.npy`` files with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import check_dtype
from .files import load_npy
from .lazy_movie import LazyMovie, MovieMetadata, resolve_axes

__all__ = ["NpyFrames", "open_npy"]


class NpyFrames:
    """The array of a ``.npy`` file as an array-like that reads only what is indexed.

    A C-ordered array indexed by a range of its first axis (the rest whole) is read
    with one ``seek`` and one read; any other index goes through a memory map that
    is closed again at once.

    Parameters
    ----------
    path : path-like
        A ``.npy`` file (checked: magic, no pickled objects, numeric dtype).

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
    """

    def __init__(self, path):
        self.path = Path(path)
        mapped = load_npy(self.path, mmap=True)
        check_dtype(mapped.dtype, str(self.path))
        self.shape, self.dtype = tuple(mapped.shape), mapped.dtype
        self._offset = int(getattr(mapped, "offset", 0))
        self._c_order = mapped.flags.c_contiguous and isinstance(mapped, np.memmap)
        del mapped

    def __len__(self) -> int:
        return self.shape[0]

    def _range(self, index) -> tuple[int, int] | None:
        """``(start, stop)`` when ``index`` is one contiguous run of whole leading rows."""
        index = index if isinstance(index, tuple) else (index,)
        if not self._c_order or not index or len(index) > len(self.shape):
            return None
        first, rest = index[0], index[1:]
        if any(r != slice(None) for r in rest) or not isinstance(first, slice):
            return None
        start, stop, step = first.indices(self.shape[0])
        return (start, max(start, stop)) if step == 1 else None

    def __getitem__(self, index) -> np.ndarray:
        rows = self._range(index)
        if rows is None:
            mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
            out = np.array(mapped[index])
            del mapped
            return out
        start, stop = rows
        row = int(np.prod(self.shape[1:], dtype=np.int64))
        with open(self.path, "rb") as fh:
            fh.seek(self._offset + start * row * self.dtype.itemsize)
            data = np.fromfile(fh, dtype=self.dtype, count=(stop - start) * row)
        if data.size != (stop - start) * row:
            raise ValueError(f"{self.path}: truncated .npy array (rows {start}..{stop - 1})")
        return data.reshape((stop - start, *self.shape[1:]))


def open_npy(path, *, axes: str | None = None, channel: int | None = None) -> LazyMovie:
    """Open a ``.npy`` movie lazily: frames are read from the file when asked for.

    Parameters
    ----------
    path : path-like
        ``.npy`` file, ``(T, H, W)`` or ``(H, W)`` (or any layout named by ``axes``).
    axes, channel
        As for :func:`pyrolatent.io.movie_formats.open_movie`.

    Returns
    -------
    LazyMovie
        ``(T, H, W)`` float32 frames on demand.

    Raises
    ------
    ValueError
        Not a readable ``.npy`` array, a non-numeric dtype, or an ambiguous layout
        without ``axes``. ``FileNotFoundError`` if absent.
    """
    source = NpyFrames(path)
    layout = resolve_axes(source.shape, axes)
    return LazyMovie(source, layout, MovieMetadata(axes=layout, source=str(path)), channel)
