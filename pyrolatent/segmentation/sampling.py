"""Training data for segmentation networks: input checks, target channels, random patches."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import as_images, as_tensor
from .tiling import standardize_frames

__all__ = ["prepare_training_data"]


def prepare_training_data(images, masks, multiclass: bool, device) -> tuple:
    """Validate and convert images ``(N, [C,] H, W)`` and masks for training.

    Binary masks ``(N, H, W)`` (any value > 0 is particle) become ``(N, 1, H, W)``;
    multi-label masks ``(N, K, H, W)`` are kept; multi-class masks are ``(N, H, W)``
    integer labels.

    Raises
    ------
    ValueError
        NaN/Inf images, wrong dimensions, or masks whose shape does not match the images.
    """
    x = as_images(images, "images", ndim=(3, 4), device=device)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    y = as_tensor(masks, "masks", dtype=None, device=device)
    if y.dim() not in (3, 4):
        raise ValueError(f"masks: expected (N, H, W) or (N, K, H, W), got {tuple(y.shape)}")
    if y.shape[0] != x.shape[0] or y.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"masks: shape {tuple(y.shape)} does not match images {tuple(x.shape)} "
            "(need the same number of images and the same height and width)"
        )
    if multiclass:
        if y.dim() != 3:
            raise ValueError("masks: multi-class targets must be (N, H, W) class indices")
        y = y.long()
    else:
        y = (y > 0).float()
        if y.dim() == 3:
            y = y.unsqueeze(1)
    return standardize_frames(x), y


def _targets_as_channels(masks: torch.Tensor, n_out: int, multiclass: bool) -> torch.Tensor:
    """Masks as ``(N, K, H, W)`` float channels (one-hot for multi-class)."""
    if multiclass:
        return F.one_hot(masks.long(), n_out).permute(0, 3, 1, 2).float()
    return masks.float()


def _foreground_pixels(targets: torch.Tensor, multiclass: bool) -> list[torch.Tensor]:
    """Per image, the ``(n, 2)`` (row, col) indices of foreground pixels (on the CPU).

    Foreground is any positive channel for binary/multi-label targets, and any
    class other than 0 (background) for one-hot multi-class targets.
    """
    fg = targets[:, 1:] if multiclass else targets
    fg = (fg > 0).any(dim=1).cpu()
    return [torch.nonzero(f) for f in fg]


def _sample_batch(
    images, targets, index, patch, batch_size, generator, foreground=None, foreground_fraction=0.0
):
    """Random patches ``(B, C, P, P)`` and ``(B, K, P, P)`` from the listed images.

    With probability ``foreground_fraction`` (per patch, when the picked image has
    foreground pixels) the patch contains a uniformly drawn foreground pixel at a
    uniformly drawn position; otherwise its corner is uniform over the image.
    """
    h, w = images.shape[-2:]
    pick = torch.randint(0, len(index), (batch_size,), generator=generator)
    rows = torch.randint(0, h - patch + 1, (batch_size,), generator=generator)
    cols = torch.randint(0, w - patch + 1, (batch_size,), generator=generator)
    if foreground is not None and foreground_fraction > 0:
        centred = torch.rand(batch_size, generator=generator) < foreground_fraction
        u = torch.rand(batch_size, generator=generator)
        offset = torch.randint(0, patch, (batch_size, 2), generator=generator)
        for b in torch.nonzero(centred).flatten().tolist():
            pixels = foreground[index[int(pick[b])]]
            if len(pixels) == 0:
                continue
            r, c = pixels[min(int(u[b] * len(pixels)), len(pixels) - 1)].tolist()
            rows[b] = min(max(r - int(offset[b, 0]), 0), h - patch)
            cols[b] = min(max(c - int(offset[b, 1]), 0), w - patch)
    xs, ys = [], []
    for p, r, c in zip(pick.tolist(), rows.tolist(), cols.tolist(), strict=True):
        i = index[p]
        xs.append(images[i, :, r : r + patch, c : c + patch])
        ys.append(targets[i, :, r : r + patch, c : c + patch])
    return torch.stack(xs), torch.stack(ys)
