"""File I/O: atomic checkpoints, atomic npy/csv/json files, movie readers, lazy user formats
and SPI formats (CXI, Dragonfly ``.emc``, MRC, PDB).

The submodules are imported on first use (``pyrolatent.io.checkpoint`` needs only
torch; ``pyrolatent.io.files`` also pandas; ``pyrolatent.io.movie`` tifffile or
scikit-image for those formats), so a plain-torch package importing checkpoints
pulls in nothing else.
"""

import importlib

_EXPORTS = {
    "atomic_write": "pyrolatent.io.atomic",
    "CheckpointError": "pyrolatent.io.checkpoint",
    "load_checkpoint": "pyrolatent.io.checkpoint",
    "save_checkpoint": "pyrolatent.io.checkpoint",
    "is_valid_file": "pyrolatent.io.files",
    "load_json": "pyrolatent.io.files",
    "load_npy": "pyrolatent.io.files",
    "load_table": "pyrolatent.io.files",
    "save_json": "pyrolatent.io.files",
    "save_npy": "pyrolatent.io.files",
    "save_table": "pyrolatent.io.files",
    "read_movie": "pyrolatent.io.movie",
    "open_movie": "pyrolatent.io.movie_formats",
    "open_npy": "pyrolatent.io.npy_movie",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pyrolatent.io' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
