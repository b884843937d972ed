"""The lazy movie type shared by the readers: frames on demand, layout, metadata.

:class:`LazyMovie` is a ``(T, H, W)`` float32 view of an array-like source whose
frames are read only when asked for; :class:`MovieMetadata` carries the pixel
size (nm) and frame time (s); :func:`resolve_axes` states the layout rules
(see :mod:`pyrolatent.io.movie_formats`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["AXIS_LETTERS", "MovieMetadata", "LazyMovie", "resolve_axes", "require", "to_nm", "to_s"]

AXIS_LETTERS = set("TCZYX")


def require(module: str, extra: str = "formats"):
    """Import an optional dependency, or raise an ImportError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reading this format needs the package '{module.split('.')[0]}': "
            f"pip install 'pyrolatent[{extra}]' (or pip install {module.split('.')[0]})"
        ) from exc


@dataclass(frozen=True)
class MovieMetadata:
    """What a file says about its movie.

    Attributes
    ----------
    pixel_size_nm : float or None
        Size of one pixel, nanometres (None when the file does not say).
    frame_time_s : float or None
        Time between frames, seconds (None when the file does not say).
    axes : str
        Layout of the stored array (e.g. ``"TCYX"``).
    source : str
        The file (and dataset) read.
    extra : dict
        Format-specific metadata kept as read.
    """

    pixel_size_nm: float | None = None
    frame_time_s: float | None = None
    axes: str = "TYX"
    source: str = ""
    extra: dict = field(default_factory=dict)


def resolve_axes(shape: tuple[int, ...], axes: str | None, stated: str | None = None) -> str:
    """The layout of an array: ``axes`` if given, else what the file states, else a safe default.

    Raises
    ------
    ValueError
        ``axes`` of the wrong length, unknown or repeated letters, no ``Y``/``X``,
        or an ambiguous array (4-D or larger, or 3-D ending in 3 or 4) without axes.
    """
    if axes is None and stated:
        axes = stated
    if axes is None:
        if len(shape) == 2:
            return "YX"
        if len(shape) == 3 and shape[-1] not in (3, 4):
            return "TYX"
        raise ValueError(
            f"ambiguous layout: an array of shape {shape} could be several things "
            "(time, channels, colour, z); pass axes=, e.g. axes='TCYX' or 'TYXC'"
        )
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ValueError(f"axes={axes!r} has {len(axes)} letters for a {len(shape)}-D array")
    if set(axes) - AXIS_LETTERS or len(set(axes)) != len(axes):
        raise ValueError(f"axes={axes!r}: use each of T, C, Z, Y, X at most once")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes={axes!r}: must contain Y and X")
    if "T" in axes and "Z" in axes:
        raise ValueError(f"axes={axes!r}: T and Z together are not a movie")
    return axes


class LazyMovie:
    """A ``(T, H, W)`` float32 movie read frame by frame from an array-like source.

    Parameters
    ----------
    source : array-like
        Supports ``shape`` and numpy-style basic indexing that reads only the
        requested part (``numpy.memmap``, ``h5py.Dataset``, ``zarr.Array``,
        ``dask.array``, or an object of this package with ``__getitem__``).
    axes : str
        Layout of ``source`` (see :func:`resolve_axes`).
    metadata : MovieMetadata
    channel : int, optional
        Index on the ``C`` axis (required when it is longer than 1).

    Raises
    ------
    ValueError
        A layout that does not fit, a missing or wrong ``channel``, or a
        ``source`` whose values are not real numbers (complex, records).
    """

    def __init__(self, source, axes: str, metadata: MovieMetadata, channel: int | None = None):
        shape = tuple(int(s) for s in source.shape)
        axes = resolve_axes(shape, axes)
        kind = np.dtype(getattr(source, "dtype", np.float32)).kind
        if kind not in "biuf":  # complex would lose its imaginary part; records, text
            raise ValueError(
                f"{metadata.source}: {np.dtype(source.dtype)} data is not an intensity movie "
                "(complex: save its modulus or phase; colour records: save as grey)"
            )
        self._source, self._axes, self.metadata = source, axes, metadata
        sizes = dict(zip(axes, shape, strict=True))
        if "C" in axes:
            n_c = sizes["C"]
            if channel is None and n_c > 1:
                raise ValueError(
                    f"{metadata.source}: {n_c} channels (axes {axes!r}); "
                    f"pass channel= (0..{n_c - 1})"
                )
            channel = 0 if channel is None else int(channel)
            if not 0 <= channel < n_c:
                raise ValueError(f"channel={channel} out of range for {n_c} channels")
        elif channel not in (None, 0):
            raise ValueError(f"channel={channel} given but the array has no C axis ({axes!r})")
        self._channel = channel
        self._time = "T" if "T" in axes else ("Z" if "Z" in axes else None)
        n_t = sizes[self._time] if self._time else 1
        self.shape = (n_t, sizes["Y"], sizes["X"])

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def dtype(self):
        return np.dtype(np.float32)

    def _read(self, t_index) -> np.ndarray:
        index, kept = [], []
        for letter in self._axes:
            if letter == self._time:
                index.append(t_index)
                kept.append("T")
            elif letter == "C":
                index.append(self._channel)
            else:
                index.append(slice(None))
                kept.append(letter)
        block = self._source[tuple(index)]
        if hasattr(block, "compute"):  # dask
            block = block.compute()
        block = np.asarray(block, dtype=np.float32)
        if self._time is None:
            block, kept = block[None], ["T", *kept]
        block = np.ascontiguousarray(np.transpose(block, [kept.index(a) for a in "TYX"]))
        if isinstance(self._source, np.ndarray) and np.may_share_memory(block, self._source):
            block = block.copy()  # a view of the source (memory map, in-memory array)
        return block

    def __getitem__(self, item) -> np.ndarray:
        """``movie[i]`` -> ``(H, W)``; ``movie[a:b]`` or ``movie[[i, j]]`` -> ``(n, H, W)``."""
        if isinstance(item, (int, np.integer)):
            i = int(item) + (len(self) if item < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"frame {item} out of range for {len(self)} frames")
            return self.block(i, i + 1)[0]
        if isinstance(item, slice):
            return self.block(*item.indices(len(self))[:2], step=item.indices(len(self))[2])
        idx = np.asarray(item, dtype=np.int64)
        return np.stack([self[int(i)] for i in idx]) if idx.size else self.block(0, 0)

    def block(self, start: int, stop: int, step: int = 1) -> np.ndarray:
        """Frames ``start:stop:step`` as a ``(n, H, W)`` float32 array (read now)."""
        if self._time is None:
            return self._read(None)[slice(start, stop, step)]
        return self._read(slice(start, stop, step))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        out = self.block(0, len(self))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"LazyMovie(shape={self.shape}, axes={self._axes!r}, pixel_size_nm={m.pixel_size_nm}, "
            f"frame_time_s={m.frame_time_s}, source={m.source!r})"
        )


def to_nm(value, unit) -> float | None:
    """``value`` in ``unit`` (nm, µm/um, mm, m, Å/angstrom) as nanometres, else None."""
    scale = {"nm": 1.0, "nanometer": 1.0, "µm": 1e3, "um": 1e3, "micron": 1e3}
    scale |= {"micrometer": 1e3, "mm": 1e6, "m": 1e9, "å": 0.1, "angstrom": 0.1, "a": 0.1}
    if value is None or unit is None:
        return None
    factor = scale.get(str(unit).strip().lower().replace("\\u00b5", "µ"))
    return None if factor is None else float(value) * factor


def to_s(value, unit) -> float | None:
    """``value`` in ``unit`` (s, ms, µs/us, ns, min) as seconds, else None."""
    scale = {"s": 1.0, "sec": 1.0, "second": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}
    scale |= {"min": 60.0, "ns": 1e-9}
    if value is None or unit is None:
        return None
    factor = scale.get(str(unit).strip().lower())
    return None if factor is None else float(value) * factor
