"""Shared plumbing of the user-facing image-model wrappers (``RVAE``, ``SSRVAE``).

A wrapper owns ``config`` (JSON-safe constructor arguments), ``model`` and
``guide`` (``PyroModule`` s), ``device``, ``trainer`` and the names of any custom
priors; this base gives them input checks, the training history, and
self-describing checkpoints (configuration + weights, written atomically and
read back weights-only).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..infer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..validation import as_images

__all__ = ["ImageModelWrapper", "custom_prior_names"]


def custom_prior_names(angle_prior, offset_prior, scale_prior, z_prior) -> list[str]:
    """Names of the priors the user supplied (they are not stored in checkpoints)."""
    given = {
        "angle_prior": angle_prior,
        "offset_prior": offset_prior,
        "scale_prior": scale_prior,
        "z_prior": z_prior,
    }
    return [name for name, prior in given.items() if prior is not None]


class ImageModelWrapper:
    """Base class; subclasses set ``config``, ``model``, ``guide``, ``device``,
    ``trainer`` and ``custom_priors`` in their constructor."""

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.config["image_size"])

    @property
    def history(self) -> dict:
        """Per-epoch training history (empty before ``fit``)."""
        return self.trainer.history if self.trainer is not None else {}

    def _images(self, images, name: str = "images") -> torch.Tensor:
        """Validated ``(N, H, W)`` float tensor on the model's device."""
        x = as_images(images, name=name, shape=self.image_size, device=self.device)
        self.model.likelihood.check(x, name)
        return x

    def save(self, path) -> Path:
        """Write configuration and weights (atomically) to ``path``."""
        kind = type(self).__name__
        if self.custom_priors:
            warnings.warn(
                f"custom priors ({', '.join(self.custom_priors)}) are not stored; "
                f"pass them again to {kind}.load",
                stacklevel=2,
            )
        state = {
            "kind": kind,
            "config": self.config,
            "model": self.model.state_dict(),
            "guide": self.guide.state_dict(),
        }
        return save_checkpoint(state, path)

    @classmethod
    def _read_checkpoint(cls, path) -> dict:
        """Load a checkpoint written by :meth:`save` of this class."""
        state = load_checkpoint(path)
        if state.get("kind") != cls.__name__:
            raise CheckpointError(f"{path} holds a {state.get('kind')!r}, not a {cls.__name__}")
        return state

    def _load_weights(self, state: dict):
        self.model.load_state_dict(state["model"])
        self.guide.load_state_dict(state["guide"])
        return self
