"""The volume VAE's data: posed patterns in memory, or frames streamed from disk in blocks.

:class:`PosedPatterns` gives :class:`~pyrolatent.estimators.volume_vae.VolumeVAE`
one interface to both: an ``(N, S, S)`` array with its ``(N, 3, 3)``
orientations is a single block; a frame source (``EMCFile``, ``CXIFrames``,
``PhotonFrames``, see :mod:`pyrolatent.io.frame_source`) is read
``block_size`` frames at a time, so only the orientations and one block of
dense frames are in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..checks import as_images, check_nonnegative
from ..io.frame_source import image_blocks, is_frame_source, source_image_size
from ..primitives.so3 import check_rotations

__all__ = ["PosedPatterns"]


class PosedPatterns:
    """Patterns and their orientations, checked once, handed out in blocks.

    Parameters
    ----------
    patterns : array_like or frame source
        ``(N, S, S)`` non-negative patterns, or a frame source of ``S x S`` frames.
    rotations : array_like
        ``(N, 3, 3)`` proper rotations.
    size : int
        The model's ``S``.
    counts : bool
        The patterns must be whole photon counts (the Poisson likelihood).
    block_size : int
        Frames per block read from a frame source.
    device : torch.device
    """

    def __init__(self, patterns, rotations, size: int, counts: bool, block_size: int, device):
        self.device, self.block_size = device, int(block_size)
        if is_frame_source(patterns):
            s = source_image_size(patterns)
            self.source, self.x, n = patterns, None, len(patterns)
            shape = (s, s)
        else:
            self.source = None
            self.x = as_images(patterns, name="patterns", device=device)
            shape, n = tuple(self.x.shape[-2:]), int(self.x.shape[0])
        if shape != (size, size):
            raise ValueError(
                f"patterns: size {shape} does not match the model's volume ({size}, {size})"
            )
        if self.x is not None:
            check_nonnegative(self.x, "patterns", why="diffraction intensities/photon counts")
            if counts and not bool((self.x == self.x.round()).all()):
                raise ValueError(
                    "patterns: the Poisson likelihood (the default) needs photon counts (whole "
                    "numbers); pass likelihood='gaussian' for intensities that are not counts"
                )
        self.r = check_rotations(rotations, name="rotations", proper=True).to(device)
        if self.r.shape != (n, 3, 3):
            raise ValueError(f"rotations: expected ({n}, 3, 3), got {tuple(self.r.shape)}")

    def __len__(self) -> int:
        return int(self.r.shape[0])

    @property
    def streamed(self) -> bool:
        return self.source is not None

    @property
    def num_blocks(self) -> int:
        """Blocks :meth:`blocks` yields (1 for patterns in memory)."""
        return 1 if self.source is None else -(-len(self) // self.block_size)

    def blocks(self, generator: torch.Generator | None = None, order=None) -> Iterator[tuple]:
        """``(x, r)`` blocks: ``(n, S, S)`` float32 patterns on the device and their rotations.

        With a ``generator``, a frame source's blocks come in a random order;
        ``order`` (block indices) gives the order instead (the frames inside a
        block keep theirs; the caller shuffles them).
        """
        if self.source is None:
            yield self.x, self.r
            return
        starts = torch.arange(0, len(self), self.block_size)
        if order is not None:
            starts = starts[torch.as_tensor(order, dtype=torch.long).cpu()]
        elif generator is not None:
            starts = starts[torch.randperm(starts.numel(), generator=generator)]
        for a in starts.tolist():
            _, x = next(image_blocks(self.source, self.block_size, start=a,
                                     stop=a + self.block_size))  # fmt: skip
            yield x.to(self.device), self.r[a : a + x.shape[0]]

    def mean_and_total(self, mask: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The mean of the fluence-normalised patterns ``x_n / (T_n / mean T)`` ``(S, S)``
        and the mean photon total ``mean T`` over the valid pixels, in one pass."""
        m = mask.to(torch.float64)
        acc = torch.zeros(mask.shape, dtype=torch.float64, device=self.device)
        total = 0.0
        for x, _ in self.blocks():
            xm = x.double() * m
            t = xm.sum((-1, -2))
            total += float(t.sum())
            acc += (xm / t.clamp_min(1e-30)[:, None, None]).sum(0)
        mean_total = total / len(self)
        return (acc * mean_total / len(self)).float(), mean_total
