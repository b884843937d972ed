"""Checks of user-given paths before a reader opens them, with messages that say what the file is.

A directory, a missing or empty file, or a file of another type (a TIFF where a
``.npy`` is expected, a ``.npy`` where a CSV is expected) is reported by name
and with what was expected, instead of the reader's own low-level error.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["check_file", "describe", "signature", "NPY_MAGIC", "SIGNATURES"]

NPY_MAGIC = b"\x93NUMPY"
SIGNATURES = {
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"PK\x03\x04": "a zip archive (.npz or .pt)",
    b"\x89PNG": "a PNG image",
    b"\x89HDF": "an HDF5 file",
    b"\x80": "a Python pickle",
}


def check_file(path, what: str) -> Path:
    """``path`` as a Path if it is an existing, non-empty regular file.

    Parameters
    ----------
    path : path-like
    what : str
        What the file should hold, for the message (e.g. ``"a .npy array"``).

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ValueError
        If ``path`` is a directory, not a regular file, or empty.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file with {what}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: does not exist (expected a file with {what})")
    if not path.is_file():
        raise ValueError(f"{path}: is not a regular file, expected {what}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: is empty (0 bytes), expected {what}")
    return path


def signature(head: bytes) -> str | None:
    """The kind of binary file ``head`` (its first bytes) starts, or None."""
    for magic, name in SIGNATURES.items():
        if head.startswith(magic):
            return name
    if head.startswith(NPY_MAGIC):
        return "a .npy array"
    return None


def describe(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(8)
    return signature(head) or f"a file starting with {head!r}"
