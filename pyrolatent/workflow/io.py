"""Moved to :mod:`pyrolatent.io.files`; this path forwards for one release."""

from .._deprecated import forward

__getattr__ = forward(
    __name__,
    {
        name: "pyrolatent.io.files"
        for name in (
            "atomic_write",
            "save_npy",
            "load_npy",
            "save_table",
            "load_table",
            "save_json",
            "load_json",
            "is_valid_file",
        )
    },
)
