"""Keep the caller's global random state: a decorator for seeded plain-torch code.

Plain-torch training code (segmentation ensembles, the common-line
regressor) seeds torch's global generator with its ``seed`` so that parameter
initialisation and dropout are reproducible. :func:`restores_global_rng` runs
such a function inside :func:`torch.random.fork_rng`, so that seeding stays
local: the caller's torch random state (CPU and CUDA) is the same afterwards.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["restores_global_rng"]


def restores_global_rng(fn):
    """Run ``fn`` with torch's global random state saved before and restored after."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng():
            return fn(*args, **kwargs)

    return wrapper
