"""Sparse diffraction frames of a few particle classes, with ground truth for 2D classification.

Each class is one particle seen in one fixed orientation and turned in-plane at
random, so a 2D classification with in-plane rotations should recover the
classes and their noise-free patterns.
"""

from __future__ import annotations

import math

import torch

from ...primitives.so3 import in_plane_rotations, random_rotations
from ...primitives.volumes import slice_volume
from .densities import shape_density
from .spi import intensity_volume, simulate_patterns

__all__ = ["FOUR_CLASSES", "sparse_class_frames"]

#: The default classes: ``(kind, p)`` arguments of :func:`~.densities.shape_density`.
FOUR_CLASSES = (("cube", None), ("sphere", None), ("rounded_cube", None), ("dimer", None))


def sparse_class_frames(
    n: int = 400,
    photons: float = 2000,
    size: int = 65,
    seed: int = 0,
    classes=FOUR_CLASSES,
    particle_size: int = 33,
) -> dict:
    """Sparse photon frames of several particles, each in one orientation turned in-plane.

    Parameters
    ----------
    n : int
        Number of frames.
    photons : float
        Mean photon count per frame.
    size : int
        Detector size ``S`` (odd).
    seed : int
        Seed of the labels, views and in-plane angles (a private generator); class
        ``k``'s photon noise uses the seed ``10 seed + k``.
    classes : sequence of (str, float or None)
        ``(kind, p)`` of each class (see :func:`~.densities.shape_density`).
    particle_size : int
        Particle grid size; padded to ``size`` so that the patterns are sampled
        about ``size / particle_size * 3`` times finer than the fringes.

    Returns
    -------
    dict
        ``frames`` ``(n, S, S)`` photon counts, ``labels`` ``(n,)`` true classes,
        ``angles`` ``(n,)`` in-plane turns (radians), ``truth`` ``(K, S, S)`` the
        noise-free class patterns (times the mask), ``mask`` ``(S, S)`` bool
        detector mask, ``views`` ``(K, 3, 3)`` the class orientations.
    """
    g = torch.Generator().manual_seed(seed)
    views = random_rotations(len(classes), generator=g)
    labels = torch.randint(0, len(classes), (n,), generator=g)
    alpha = torch.rand(n, generator=g) * 2 * math.pi
    frames = torch.zeros(n, size, size)
    truth = []
    mask = None
    for k, (kind, p) in enumerate(classes):
        volume = intensity_volume(shape_density(kind, particle_size, p=p), size)
        rows = (labels == k).nonzero().squeeze(1)
        sim = simulate_patterns(
            volume,
            len(rows),
            photons=photons,
            rotations=views[k] @ in_plane_rotations(alpha[rows]),
            seed=10 * seed + k,
        )
        frames[rows] = sim["patterns"]
        mask = sim["mask"]
        truth.append(slice_volume(volume, views[k : k + 1])[0] * mask)
    return {
        "frames": frames,
        "labels": labels,
        "angles": alpha,
        "truth": torch.stack(truth),
        "mask": mask,
        "views": views,
    }
