"""Tiled inference for frames of any size: pad, cut overlapping tiles, crop back."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = ["predict_tiled", "standardize_frames"]


def standardize_frames(frames: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit standard deviation per frame (and channel).

    Parameters
    ----------
    frames : torch.Tensor
        ``(N, C, H, W)``. A one-pixel frame has standard deviation 0 (not NaN).
    """
    mean = frames.mean(dim=(-2, -1), keepdim=True)
    correction = 1 if frames.shape[-2] * frames.shape[-1] > 1 else 0
    std = frames.std(dim=(-2, -1), keepdim=True, correction=correction).clamp_min(1e-8)
    return (frames - mean) / std


def _pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
    return F.pad(x, (left, right, top, bottom), mode=mode)


def predict_tiled(
    predict: Callable[[torch.Tensor], torch.Tensor],
    frames: torch.Tensor,
    tile_size: int = 256,
    overlap: int = 16,
    size_multiple: int = 1,
    batch_size: int = 4,
    progress: bool = False,
) -> torch.Tensor:
    """Apply a fully convolutional ``predict`` to frames of any size.

    Each frame is padded (reflection) by ``overlap`` pixels and up to a whole
    number of tiles; tiles of ``tile_size`` pixels overlap by ``2 * overlap``,
    and only the central ``tile_size - 2 * overlap`` pixels of each tile are kept,
    so tile seams see full context.

    Parameters
    ----------
    predict : callable
        Maps ``(b, C, h, w)`` to ``(b, ..., h, w)``; ``h, w`` are multiples of
        ``size_multiple``.
    frames : torch.Tensor
        ``(N, C, H, W)``.
    tile_size : int
        Tile edge in pixels (rounded up to a multiple of ``size_multiple``).
        Frames smaller than a tile are processed whole.
    overlap : int
        Context margin on each side of a tile, in pixels.
    size_multiple : int
        The network's required size multiple.
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Show a progress bar over batches of tiles.

    Returns
    -------
    torch.Tensor
        ``(N, ..., H, W)``, a compact tensor of exactly that size (never a view
        of a padded buffer).
    """
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    n, _, h, w = frames.shape
    m = max(1, int(size_multiple))
    tile = int(math.ceil(tile_size / m) * m)
    if tile - 2 * overlap < m:
        raise ValueError(f"tile_size {tile_size} leaves no core with overlap {overlap}")
    # frames that fit in one tile: process whole, padded to the size multiple
    if h + 2 * overlap <= tile and w + 2 * overlap <= tile:
        ph = int(math.ceil((h + 2 * overlap) / m) * m)
        pw = int(math.ceil((w + 2 * overlap) / m) * m)
        top, left = overlap, overlap
        out = None
        for i in range(0, n, batch_size):
            x = _pad(frames[i : i + batch_size], top, ph - h - top, left, pw - w - left)
            pred = predict(x)[..., top : top + h, left : left + w]
            if out is None:
                out = pred.new_empty((n, *pred.shape[1:]))
            out[i : i + len(pred)] = pred
        return out
    core = tile - 2 * overlap
    ny, nx = math.ceil(h / core), math.ceil(w / core)
    x = _pad(frames, overlap, ny * core - h + overlap, overlap, nx * core - w + overlap)
    origins = [(f, i * core, j * core) for f in range(n) for i in range(ny) for j in range(nx)]
    out = None
    batches = range(0, len(origins), batch_size)
    for start in tqdm(batches, disable=not progress, desc="tiles"):
        chunk = origins[start : start + batch_size]
        tiles = torch.stack([x[f, :, r : r + tile, c : c + tile] for f, r, c in chunk])
        pred = predict(tiles)[..., overlap : overlap + core, overlap : overlap + core]
        if out is None:
            out = pred.new_empty((n, *pred.shape[1:-2], h, w))
        for k, (f, r, c) in enumerate(chunk):
            # the last row and column of tiles reach into the padding: keep what lies inside
            out[f, ..., r : r + core, c : c + core] = pred[k, ..., : h - r, : w - c]
    return out
