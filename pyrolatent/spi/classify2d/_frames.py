"""Frame checks, the detector region and batched reading of photon frames."""

from __future__ import annotations

import numpy as np
import torch

from ...checks import as_tensor, check_finite, check_nonnegative
from ...primitives.grids import pixel_grid


def _check_frames(frames, n_min: int):
    shape = tuple(getattr(frames, "shape", np.shape(frames)))
    if len(shape) != 3:
        raise ValueError(f"frames: expected (N, S, S) photon counts, got shape {shape}")
    n, h, w = shape
    if h != w:
        raise ValueError(f"frames: must be square, got {h} x {w}")
    if n < n_min:
        raise ValueError(f"frames: needs at least {n_min} frames, got {n}")
    return n, h


def _region(size: int, mask, device) -> torch.Tensor:
    """Bool ``(S, S)``: the inscribed disc intersected with the detector mask."""
    grid = pixel_grid(size, size, device=device)
    region = grid.norm(dim=-1) <= (size - 1) / 2
    if mask is not None:
        m = as_tensor(mask, name="mask", dtype=None, device=device)
        if tuple(m.shape) != (size, size):
            raise ValueError(f"mask: expected shape {(size, size)}, got {tuple(m.shape)}")
        region = region & m.bool()
    if int(region.sum()) == 0:
        raise ValueError("mask: leaves no usable pixel")
    return region


def _take(frames, rows: np.ndarray):
    """``frames[rows]`` for a numpy array or a tensor (without converting the rest)."""
    if isinstance(frames, torch.Tensor):
        return frames[torch.as_tensor(rows, device=frames.device)]
    return frames[rows]


def _frame_batches(frames, index: np.ndarray, pixels: torch.Tensor, batch_size: int, device):
    """Yield ``(start, counts (B, P) float32)`` for ``frames[index]`` in batches."""
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        t = as_tensor(_take(frames, rows), name="frames", device=device)
        check_finite(t, "frames")
        check_nonnegative(t, "frames", why="photon counts")
        yield start, t.reshape(t.shape[0], -1)[:, pixels]
