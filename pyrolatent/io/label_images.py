"""Reading hand labels as annotation tools save them: label images and their frame list.

An annotation tool (a napari Labels layer, Fiji, ilastik) saves the frames a
person labelled: one 2-D label image per frame (TIFF, ``.npy`` or PNG), or
those frames stacked as one ``(K, H, W)`` file, beside the list of the movie
frames they belong to. :func:`read_label_images` reads the images as they are
(integer particle ids, 0 background) and :func:`read_frame_list` the frame
list; :func:`pyrolatent.workflow.segmenter.check_label_images` matches them to a
movie.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .paths import check_file

__all__ = ["read_label_images", "read_frame_list"]

_SUFFIXES = (".tif", ".tiff", ".npy", ".png")


def _read_one(path: Path) -> np.ndarray:
    """The raw array of one label file: ``(H, W)`` or ``(K, H, W)``."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            from .files import load_npy

            array = load_npy(path)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
        elif suffix == ".png":
            from skimage.io import imread

            array = imread(path)
        else:
            raise ValueError(
                f"{path}: unsupported label file type {suffix!r} (expected {', '.join(_SUFFIXES)})"
            )
    except ValueError:
        raise
    except Exception as exc:  # the readers' own errors: truncated, corrupted, wrong type
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ValueError(
            f"{path}: not a readable {suffix} label image ({type(exc).__name__}: {first})"
        ) from None
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (3, 4) and suffix == ".png":
        raise ValueError(
            f"{path}: a colour image {array.shape}; label images hold one integer "
            "particle id per pixel (save the Labels layer, not a screenshot)"
        )
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{path}: expected a (H, W) label image or a (K, H, W) stack, got shape {array.shape}"
        )
    return array


def read_label_images(paths) -> np.ndarray:
    """Label images of the labelled frames, as saved by an annotation tool.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        One file holding a ``(K, H, W)`` stack or a single ``(H, W)`` image, or
        one ``(H, W)`` image per labelled frame, in the order of the frame list.
        ``.tif``/``.tiff`` (e.g. a napari Labels layer), ``.npy`` or ``.png``.

    Returns
    -------
    numpy.ndarray
        ``(K, H, W)`` label images in their own integer (or bool) dtype:
        0 is background, > 0 a particle.

    Raises
    ------
    ValueError
        No path, an unreadable file, a colour image, a stack among several
        files, images of different shapes.
    FileNotFoundError
        A path that does not exist.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [check_file(p, "a label image (.tif, .npy or .png)") for p in paths]
    if not paths:
        raise ValueError("no label image given")
    arrays = [_read_one(p) for p in paths]
    if len(arrays) == 1:
        return arrays[0] if arrays[0].ndim == 3 else arrays[0][None]
    for p, a in zip(paths, arrays, strict=True):
        if a.ndim != 2:
            raise ValueError(
                f"{p}: shape {a.shape}; with several label files each must be one (H, W) "
                "image (give a (K, H, W) stack as the only file)"
            )
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        listed = ", ".join(f"{p.name} {a.shape}" for p, a in zip(paths, arrays, strict=True))
        raise ValueError(f"label images differ in shape: {listed}")
    return np.stack(arrays)


def read_frame_list(spec) -> list[int]:
    """The labelled frames' indices from a list, a text like ``"0,5,9"`` or a frames file.

    Parameters
    ----------
    spec : str, path-like or sequence of int
        Integers; a string of integers separated by commas or spaces; or the
        path of a file holding them (separated by commas, spaces or newlines;
        ``#`` starts a comment) or a JSON list of them. A string that names an
        existing file is read as that file.

    Returns
    -------
    list of int
        The frame indices, in the order given (not checked against a movie:
        see :func:`pyrolatent.workflow.segmenter.check_label_images`).

    Raises
    ------
    ValueError
        Anything that is not a list of integers, or an empty list.
    """
    if isinstance(spec, Path) or (isinstance(spec, str) and Path(spec).is_file()):
        path = check_file(spec, "a frames file (integers)")
        text = path.read_text()
        source = str(path)
        if text.lstrip().startswith("["):
            try:
                return _integers(json.loads(text), source)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{source}: not a JSON list of frame indices ({exc})") from None
        text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    elif isinstance(spec, str):
        text, source = spec, "label frames"
    else:
        return _integers(spec, "label frames")
    tokens = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    bad = [t for t in tokens if not re.fullmatch(r"[+-]?\d+", t)]
    if bad:
        raise ValueError(
            f"{source}: {bad[0]!r} is not a frame index; give integers such as '0,5,9' "
            "or the path of a frames file"
        )
    return _integers([int(t) for t in tokens], source)


def _integers(values, source: str) -> list[int]:
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"{source}: expected a list of frame indices, got {values!r}") from None
    out = []
    for v in values:
        try:
            whole = not isinstance(v, (bool, str)) and float(v).is_integer()
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise ValueError(f"{source}: {v!r} is not an integer frame index")
        out.append(int(v))
    if not out:
        raise ValueError(f"{source}: no frame index given")
    return out
