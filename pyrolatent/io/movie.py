"""Reading a user's movie or image into memory, from any format :func:`open_movie` reads.

:func:`read_movie` is the one entry for the workflow and the command line: it
opens the file with :func:`pyrolatent.io.movie_formats.open_movie` (TIFF/OME-TIFF,
HDF5, zarr, MRC, AFM and TEM/STEM files, ``.npy``, ``.npz``, images), reads every
frame and checks the result: a validated ``(T, H, W)`` float32 array (a single
image becomes ``T = 1``), with the file's pixel size and frame time on request.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import as_images
from .movie_formats import SUFFIXES, MovieMetadata, open_movie
from .paths import check_file, describe

__all__ = ["read_movie"]


def read_movie(
    path,
    *,
    key: str | None = None,
    channel: int | None = None,
    axes: str | None = None,
    return_metadata: bool = False,
    **options,
) -> np.ndarray | tuple[np.ndarray, MovieMetadata]:
    """Read a movie or image file as a ``(T, H, W)`` float32 array.

    Parameters
    ----------
    path : str or path-like
        Any suffix of :data:`pyrolatent.io.movie_formats.SUFFIXES`: ``.npy``,
        ``.npz`` (array ``key``, or the only array), ``.tif``/``.tiff`` (incl.
        OME-TIFF and ImageJ stacks), ``.h5``/``.hdf5``, ``.zarr`` (a folder),
        ``.mrc``, AFM files (``.asd``, ``.spm``, ``.jpk``, ``.ibw``), TEM/STEM
        files (``.dm3``, ``.dm4``, ``.emd``, ``.ser``, ``.emi``) or an image
        (``.png``, ``.jpg``, ...).
    key : str, optional
        Array name inside an ``.npz`` file.
    channel : int, optional
        For an RGB(A) image: the colour to keep (by default R, G, B are
        averaged, alpha ignored). For an array with a ``C`` axis (stated by the
        file or in ``axes``): the channel to keep (required when there are several).
    axes : str, optional
        Layout of the stored array, e.g. ``"TCYX"`` or ``"TYXC"`` (letters T, C,
        Z, Y, X). Required where the layout is ambiguous: an array of 4 or more
        dimensions, or 3 ending in 3 or 4, gets an error without it, never a guess.
    return_metadata : bool
        Also return the file's :class:`~pyrolatent.io.movie_formats.MovieMetadata`
        (``pixel_size_nm``, ``frame_time_s``; None where the file does not say).
    **options
        ``dataset=`` (HDF5, zarr), ``afm_channel=`` (AFM), ``signal=`` (TEM files
        with several signals): see :func:`~pyrolatent.io.movie_formats.open_movie`.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, MovieMetadata)
        ``(T, H, W)`` float32 frames (and the metadata with ``return_metadata``).

    Raises
    ------
    ValueError
        Unknown suffix, missing ``key``, ambiguous layout without ``axes``, a
        missing or wrong ``channel``, wrong dimensions, empty or non-finite
        data, or a file its reader cannot read (the message names the file).
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        When the format's optional reader is not installed (the message says
        what to install).
    """
    path = Path(path)
    if not (path.is_dir() and path.suffix.lower() == ".zarr"):  # a zarr store is a folder
        check_file(path, f"a movie ({', '.join(SUFFIXES)})")
    try:
        movie = open_movie(path, key=key, channel=channel, axes=axes, **options)
        frames = movie.block(0, len(movie))
    except (ValueError, TypeError, FileNotFoundError, ImportError):
        raise
    except Exception as exc:  # the readers' own errors: truncated, corrupted, wrong type
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        looks = f"it looks like {describe(path)}; " if path.is_file() else ""
        raise ValueError(
            f"{path}: not a readable {path.suffix.lower()} movie "
            f"({looks}{type(exc).__name__}: {first})"
        ) from None
    frames = as_images(frames, name=str(path), ndim=(3,)).numpy()
    return (frames, movie.metadata) if return_metadata else frames
