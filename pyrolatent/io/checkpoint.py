"""Atomic, self-describing checkpoints.

A checkpoint is a dict of plain containers and tensors (configuration, state
dicts, optimiser state, RNG state, history) written with ``torch.save`` to a
temporary file in the target folder, flushed to disk and renamed over the
target (:func:`pyrolatent.io.atomic.atomic_write`). A crash while writing
leaves the previous checkpoint intact. Loading uses ``torch.load(weights_only=True)``,
which never executes code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .atomic import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint"]

FORMAT_KEY = "pyrolatent_format"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupted or of the wrong kind."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` atomically to ``path``.

    Parameters
    ----------
    state : dict
        Tensors, numbers, strings, lists and dicts only (loadable with
        ``weights_only=True``).
    path : path-like
        Destination file; its folder is created if needed.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    payload = dict(state)
    payload[FORMAT_KEY] = FORMAT_VERSION

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)

    return atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        If the file does not exist, cannot be deserialised safely (truncated,
        corrupted, or holding arbitrary Python objects), or was not written by
        pyrolatent.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated, corrupted or unsafe to load "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    if not isinstance(state, dict) or state.get(FORMAT_KEY) != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a pyrolatent checkpoint")
    return state
