"""The one atomic file writer: write to a temporary file in the target folder, then rename.

A crash while writing leaves the previous file (or no file) in place, never a truncated one.
Checkpoints (:mod:`pyrolatent.io.checkpoint`) and the plain npy/csv/json files
(:mod:`pyrolatent.io.files`) both go through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)``, flush the file to disk and move it to ``path``.

    Parameters
    ----------
    path : path-like
        Destination file; its folder is created if needed.
    write : callable
        Called with the temporary path (a ``str`` in the same folder, with the same
        suffix as ``path``, so writers such as ``numpy.save`` keep the name as given).
        It must write the complete file content there.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
