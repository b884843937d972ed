"""Atomic writing and validated reading of the workflow's plain files (npy, csv, json).

Every writer goes through :func:`pyrolatent.io.atomic.atomic_write` (a temporary file in
the same folder, then ``os.replace``), so a file either holds complete content or does not
exist.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .checkpoint import load_checkpoint
from .paths import NPY_MAGIC, check_file, describe, signature

__all__ = [
    "atomic_write",
    "save_npy",
    "load_npy",
    "load_array",
    "save_table",
    "load_table",
    "save_json",
    "load_json",
    "is_valid_file",
    "check_file",
]


def save_npy(path, array) -> Path:
    arr = np.asarray(array)
    return atomic_write(path, lambda p: np.save(p, arr))


def load_npy(path, mmap: bool = False) -> np.ndarray:
    """Read a ``.npy`` array without unpickling anything.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        A directory, an empty file, a file that is not ``.npy`` (the message says
        what it looks like), a truncated array, or an object (pickled) array.
    """
    path = check_file(path, "a .npy array")
    with open(path, "rb") as fh:
        head = fh.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        raise ValueError(f"{path}: is not a .npy array (it looks like {describe(path)})")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(
                f"{path}: holds Python objects (dtype object), not numbers; "
                "pyrolatent never unpickles files"
            ) from None
        raise ValueError(f"{path}: unreadable .npy array ({exc})") from None
    except (EOFError, OSError) as exc:
        raise ValueError(f"{path}: truncated or corrupted .npy array ({exc})") from None


def load_array(
    path,
    *,
    ndim: tuple[int, ...],
    what: str,
    allow_bool: bool = True,
    dtype=np.float32,
) -> np.ndarray:
    """Read a ``.npy`` array and check it at the file boundary, naming the file.

    Parameters
    ----------
    path : path-like
    ndim : tuple of int
        Accepted numbers of dimensions.
    what : str
        What the file should hold, e.g. ``"probability maps (T, H, W)"``.
    allow_bool : bool
        Accept bool arrays (as 0/1).
    dtype : numpy dtype
        Result dtype.

    Raises
    ------
    ValueError
        Every :func:`load_npy` failure; a wrong number of dimensions, an empty
        array, NaN/Inf, complex or non-numeric data (the message names the file
        and ``what`` was expected).
    """
    from ..checks import as_array

    arr = load_npy(path)
    try:
        return as_array(arr, str(path), ndim=ndim, dtype=dtype, allow_bool=allow_bool)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{exc} (expected {what})") from None


def save_table(path, table: dict) -> Path:
    """A dict of equal-length 1-D arrays as CSV (2-D columns split as ``name_0, name_1``)."""
    cols = {}
    for k, v in table.items():
        v = np.asarray(v)
        if v.ndim == 2:
            for j in range(v.shape[1]):
                cols[f"{k}_{j}"] = v[:, j]
        else:
            cols[k] = v
    frame = pd.DataFrame(cols)
    return atomic_write(path, lambda p: frame.to_csv(p, index=False))


def load_table(path) -> dict:
    """Read a CSV written by :func:`save_table` as a dict of numpy arrays.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        A directory, an empty or binary file, or text that is not a CSV table.
    """
    path = check_file(path, "a CSV table")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head or signature(head) is not None:
        raise ValueError(f"{path}: is not a CSV text table (it looks like {describe(path)})")
    try:
        frame = pd.read_csv(path)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: is not a CSV text table (not UTF-8 text)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no columns"
        raise ValueError(f"{path}: is not a readable CSV table ({first})") from None
    return {k: frame[k].to_numpy() for k in frame.columns}


def _default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_json(path, obj) -> Path:
    text = json.dumps(obj, indent=2, default=_default)
    return atomic_write(path, lambda p: Path(p).write_text(text))


def load_json(path) -> dict:
    """Read a JSON file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        A directory, an empty file, or content that is not UTF-8 JSON.
    """
    path = check_file(path, "JSON")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: is not JSON (it looks like {describe(path)})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: is not valid JSON ({exc})") from None


def is_valid_file(path) -> bool:
    """The file exists, is not empty and parses (npy header, json, csv, png signature)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        if path.suffix == ".npy":
            load_npy(path, mmap=True)
        elif path.suffix == ".json":
            load_json(path)
        elif path.suffix == ".csv":
            pd.read_csv(path, nrows=1)
        elif path.suffix == ".png":
            return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        elif path.suffix == ".pt":
            load_checkpoint(path)
    except Exception:
        return False
    return True
