"""Reading users' movies and images: npy, npz, tif stacks, png/jpg.

Every reader returns a validated ``(T, H, W)`` float32 array (a single image
becomes ``T = 1``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import as_images
from .paths import check_file, describe

__all__ = ["read_movie"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
_TIFF_SUFFIXES = {".tif", ".tiff"}


def _to_grey(array: np.ndarray, channel: int | None, colour_axis: bool) -> np.ndarray:
    """Select one colour channel (or average RGB) of ``(..., C)`` images."""
    if not colour_axis:
        if channel is not None:
            raise ValueError("channel: this file has no colour channels")
        return array
    n_colours = array.shape[-1]
    if channel is not None:
        if not 0 <= channel < n_colours:
            raise ValueError(f"channel {channel} out of range for {n_colours} colour channels")
        return array[..., channel]
    return array[..., : min(3, n_colours)].astype(np.float64).mean(axis=-1)


def read_movie(
    path,
    *,
    key: str | None = None,
    channel: int | None = None,
) -> np.ndarray:
    """Read a movie or image file as a ``(T, H, W)`` float32 array.

    Parameters
    ----------
    path : str or path-like
        ``.npy``, ``.npz`` (array ``key``, or the only array), ``.tif``/``.tiff``
        (a stack of pages), or an image (``.png``, ``.jpg``, ...).
    key : str, optional
        Array name inside an ``.npz`` file.
    channel : int, optional
        Colour channel to keep for RGB(A) images or ``(T, H, W, C)`` arrays;
        by default RGB channels are averaged (alpha ignored).

    Returns
    -------
    numpy.ndarray
        ``(T, H, W)`` float32.

    Raises
    ------
    ValueError
        Unknown suffix, missing ``key``, wrong dimensions, empty or non-finite data.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = check_file(path, "a movie (.npy, .npz, .tif or an image)")
    suffix = path.suffix.lower()
    try:
        array = _read(path, suffix, key)
    except (ValueError, FileNotFoundError):
        raise
    except Exception as exc:  # the readers' own errors: truncated, corrupted, wrong type
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ValueError(
            f"{path}: not a readable {suffix} movie (it looks like {describe(path)}; "
            f"{type(exc).__name__}: {first})"
        ) from None
    if suffix in _IMAGE_SUFFIXES:
        colour = array.ndim == 3 and array.shape[-1] in (3, 4)
        array = _to_grey(array, channel, colour)[None]
        channel = None
    array = np.asarray(array)
    if array.ndim == 4:
        array = _to_grey(array, channel, True)
    elif array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{path}: expected (T, H, W) or (H, W) data, got shape {array.shape}")
    return as_images(array, name=str(path), ndim=(3,)).numpy()


def _read(path: Path, suffix: str, key: str | None) -> np.ndarray:
    """The raw array of a movie file (no checks of its shape or values)."""
    if suffix == ".npy":
        from .files import load_npy

        return load_npy(path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            names = list(data.keys())
            if key is None:
                if len(names) != 1:
                    raise ValueError(f"{path}: holds arrays {names}; choose one with key=")
                key = names[0]
            if key not in names:
                raise ValueError(f"{path}: no array {key!r} (has {names})")
            return data[key]
    if suffix in _TIFF_SUFFIXES:
        import tifffile

        return tifffile.imread(path)
    if suffix in _IMAGE_SUFFIXES:
        from skimage.io import imread

        return imread(path)
    raise ValueError(
        f"{path}: unsupported file type {suffix!r} (expected .npy, .npz, .tif, .tiff, "
        f"{', '.join(sorted(_IMAGE_SUFFIXES))})"
    )
