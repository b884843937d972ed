"""Moved to :mod:`pyrolatent.io.checkpoint`; this path forwards for one release."""

from .._deprecated import forward

__getattr__ = forward(
    __name__,
    {
        name: "pyrolatent.io.checkpoint"
        for name in (
            "CheckpointError",
            "save_checkpoint",
            "load_checkpoint",
            "FORMAT_KEY",
            "FORMAT_VERSION",
        )
    },
)
