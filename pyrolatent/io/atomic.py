"""The one atomic file writer: write to a temporary file in the target folder, then rename.

A crash while writing leaves the previous file (or no file) in place, never a truncated one.
Checkpoints (:mod:`pyrolatent.io.checkpoint`) and the plain npy/csv/json files
(:mod:`pyrolatent.io.files`) both go through :func:`atomic_write`.

Temporary files are named ``.<name>.<pid>.<random>.tmp<suffix>`` (``<suffix>`` is the
target's, so writers such as ``numpy.save`` keep the name as given). A process killed while
writing (``kill -9``) cannot remove its temporary file; the next save of the same target
removes every temporary file of that target whose writing process no longer exists.

Written files get the permissions of a plain ``open(path, "w")``: ``0666`` less the
process umask (``tempfile.mkstemp`` alone would leave them ``0600``, unreadable to
colleagues on a shared server); created folders get ``0777`` less the umask.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "current_umask", "stale_temporaries"]


def current_umask() -> int:
    """The process umask (e.g. ``0o022``), read without changing it where the OS allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no read-only query elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (owned by someone else) or cannot tell: keep its file
    return True


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporary files of earlier, interrupted saves of ``path`` whose writer has exited.

    Parameters
    ----------
    path : path-like
        The target file.

    Returns
    -------
    list of pathlib.Path
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp{re.escape(path.suffix)}$")
    stale = []
    for candidate in path.parent.iterdir():
        match = pattern.match(candidate.name)
        if match and not _process_alive(int(match.group(1))):
            stale.append(candidate)
    return stale


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)``, flush the file to disk and move it to ``path``.

    Temporary files left by earlier saves of ``path`` that were killed (their process
    no longer exists) are removed first.

    Parameters
    ----------
    path : path-like
        Destination file; its folder is created if needed.
    write : callable
        Called with the temporary path (a ``str`` in the same folder, ending with the
        suffix of ``path``). It must write the complete file content there.

    Returns
    -------
    pathlib.Path
        The written path, with mode ``0o666 & ~umask``.
    """
    path = Path(path)
    path.parent.mkdir(mode=0o777, parents=True, exist_ok=True)  # the umask applies
    for old in stale_temporaries(path):
        try:
            old.unlink()
        except FileNotFoundError:  # another save removed it first
            pass
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
