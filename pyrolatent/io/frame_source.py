"""Frame sources: photon frames that are read block by block, not held in memory.

A frame source is any object with ``len(source)``, ``source.num_pixels`` and
``source.block(start, stop)`` returning :class:`~pyrolatent.spi.emc.PhotonFrames`:
:class:`~pyrolatent.io.emc_photons.EMCFile` (Dragonfly's sparse ``.emc``),
:class:`~pyrolatent.io.cxi.CXIFrames` (CXI/HDF5) and ``PhotonFrames`` itself.
EMC reads them directly; the functions here give square images, block by block,
to the image-based methods (common lines, the volume VAE).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

__all__ = ["image_blocks", "is_frame_source", "source_image_size"]


def is_frame_source(obj) -> bool:
    """True for an object with ``__len__``, ``num_pixels`` and ``block(start, stop)``."""
    return hasattr(obj, "num_pixels") and callable(getattr(obj, "block", None)) and (
        hasattr(obj, "__len__"))  # fmt: skip


def source_image_size(source, name: str = "patterns") -> int:
    """Side ``S`` of the square images of a frame source (``num_pixels = S^2``).

    Raises
    ------
    ValueError
        The frames' pixels do not form a square image (e.g. a Dragonfly
        detector with an arbitrary pixel list).
    """
    p = int(source.num_pixels)
    s = math.isqrt(p)
    if s * s != p:
        raise ValueError(
            f"{name}: frames of {p} pixels are not square images; image methods need an "
            "S x S detector (pixels in row-major order)"
        )
    return s


def image_blocks(
    source, block_size: int = 4096, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Dense float32 images of a frame source, ``block_size`` frames at a time.

    Parameters
    ----------
    source : frame source
        See the module notes.
    block_size : int
        Frames read per block (memory ``4 block_size S^2`` bytes).
    start, stop : int
        The frames ``start:stop`` (default all).

    Yields
    ------
    (int, torch.Tensor)
        The block's first frame index and its ``(n, S, S)`` counts.
    """
    size = source_image_size(source)
    stop = len(source) if stop is None else min(int(stop), len(source))
    for a in range(int(start), stop, int(block_size)):
        frames = source.block(a, min(a + int(block_size), stop))
        yield a, frames.to_dense(torch.float32).reshape(-1, size, size)
