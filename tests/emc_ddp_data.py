"""Shared data of the EMC data-parallel test (single process and torchrun workers)."""

import os

import torch

from pyrolatent.spi.emc import flat_detector, simulate_frames, structure_intensity


def make_data():
    """Frames, detector and ``emc`` keyword arguments (sizes from ``EMC_DDP_FRAMES``)."""
    g = torch.Generator().manual_seed(0)
    intensity, _ = structure_intensity(torch.randn(30, 3, generator=g) * 5, size=21)
    det = flat_detector(21, beamstop=1.5)
    n = int(os.environ.get("EMC_DDP_FRAMES", 400))
    frames, _, _ = simulate_frames(intensity, det, n, 800, generator=g, scale_jitter=0.1)
    kwargs = dict(size=21, level=int(os.environ.get("EMC_DDP_LEVEL", 2)),
                  iterations=int(os.environ.get("EMC_DDP_ITERATIONS", 3)), progress=False,
                  seed=0, device="cpu")  # fmt: skip
    return frames, det, kwargs
