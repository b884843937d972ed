"""The one device policy of pyrolatent.

Every component that owns parameters or tensors resolves its device through
:func:`resolve_device`. The rule, in order:

1. an explicit ``device`` argument (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``);
2. the environment variable ``PYROLATENT_DEVICE``;
3. under ``torchrun`` with CUDA, ``cuda:LOCAL_RANK``;
4. ``cuda`` when available, otherwise ``cpu``.

Inputs are moved to the resolved device at the public boundary (``Trainer.fit``,
``encode``, ``predict``); library internals never call ``.cuda()`` themselves.
"""

from __future__ import annotations

import os

import torch

__all__ = ["resolve_device", "to_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device that a component should use.

    Parameters
    ----------
    device : str or torch.device, optional
        Explicit choice. ``None`` applies the policy in the module docstring.

    Returns
    -------
    torch.device
    """
    if device is None:
        device = os.environ.get("PYROLATENT_DEVICE") or None
    if device is None:
        if torch.cuda.is_available():
            local_rank = os.environ.get("LOCAL_RANK")
            return torch.device(f"cuda:{local_rank}" if local_rank is not None else "cuda")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} was requested but CUDA is not available")
    return device


def to_device(tensors, device: torch.device):
    """Move a tensor, or a tuple/list/dict of tensors, to ``device``."""
    if isinstance(tensors, torch.Tensor):
        return tensors.to(device)
    if isinstance(tensors, (tuple, list)):
        return type(tensors)(to_device(t, device) for t in tensors)
    if isinstance(tensors, dict):
        return {k: to_device(v, device) for k, v in tensors.items()}
    return tensors
