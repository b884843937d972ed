"""The public 2D classification: :func:`classify2d` and :func:`bootstrap_classify2d`."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...device import resolve_device
from ._em import _em
from ._frames import _check_frames, _region
from .result import Classify2DResult

__all__ = ["bootstrap_classify2d", "classify2d", "rotation_angles"]


def rotation_angles(n_rotations: int, friedel: bool = True, device=None) -> torch.Tensor:
    """``(R,)`` equally spaced angles over ``[0, pi)`` (Friedel) or ``[0, 2 pi)``."""
    if n_rotations < 1:
        raise ValueError(f"n_rotations must be >= 1, got {n_rotations}")
    span = math.pi if friedel else 2 * math.pi
    return torch.arange(n_rotations, dtype=torch.float32, device=device) * (span / n_rotations)


def classify2d(
    frames,
    n_classes: int,
    n_rotations: int = 36,
    n_iterations: int = 30,
    mask=None,
    friedel: bool = True,
    beta: float = 1.0,
    learn_class_prior: bool = True,
    init_averages=None,
    subset=None,
    n_init: int = 3,
    n_align_iterations: int = 5,
    min_class_fraction: float = 0.1,
    reseed_fraction: float = 0.5,
    batch_size: int = 1024,
    seed: int = 0,
    progress: bool = True,
    device=None,
) -> Classify2DResult:
    """Classify sparse photon frames into ``n_classes`` averages with in-plane rotations.

    Parameters
    ----------
    frames : array_like
        ``(N, S, S)`` non-negative photon counts (any numeric dtype; numpy
        arrays are read batch by batch, so e.g. ``uint8`` frames of ``10^5``
        patterns are never converted to float all at once).
    n_classes : int
        Number of classes ``K``.
    n_rotations : int
        Number ``R`` of enumerated in-plane rotations.
    n_iterations : int
        EM iterations.
    mask : array_like, optional
        ``(S, S)`` bool, True on usable pixels (False on the beamstop, gaps).
        Pixels outside the inscribed disc are never used.
    friedel : bool
        Enumerate rotations over ``[0, pi)`` only (diffraction intensities are
        centrosymmetric, so a half-turn changes nothing); else ``[0, 2 pi)``.
    beta : float
        Deterministic-annealing exponent on the likelihood (Dragonfly's beta);
        1 gives the exact posterior.
    learn_class_prior : bool
        Update the class weights ``pi``; otherwise they stay uniform.
    init_averages : array_like, optional
        ``(K, S, S)`` starting averages. Default: k-means++ of rotation-invariant
        features of the frames, each class seeded from its cluster's medoid
        frame (blurred) mixed with the cluster mean; the class weights start
        at the cluster fractions.
    subset : array_like of int, optional
        Classify only ``frames[subset]`` (used by :func:`bootstrap_classify2d`).
    n_init : int
        Independent initialisations (seeds ``seed, seed + 1, ...``); the run
        with the highest final log-likelihood is returned. Ignored when
        ``init_averages`` is given.
    n_align_iterations : int
        With the default initialisation, the first iterations keep every frame
        in its k-means cluster and align rotations only, so that each class
        average is built from its own frames before classes compete.
    min_class_fraction : float
        A class holding less than ``min_class_fraction / K`` of the frames is
        refilled by splitting the most populated class in two (the usual cure
        for EM's empty classes).
    reseed_fraction : float
        Splitting happens only during this first fraction of the iterations,
        so that the last ones are plain EM steps.
    batch_size : int
        Frames per E-step batch.
    seed : int
        Seed of the initialisation.
    progress : bool
        Show a tqdm progress bar over iterations.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.

    Returns
    -------
    Classify2DResult
    """
    device = resolve_device(device)
    n_total, size = _check_frames(frames, n_min=1)
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    index = np.arange(n_total) if subset is None else np.asarray(subset, dtype=np.int64)
    if index.ndim != 1 or (index.size and (index.min() < 0 or index.max() >= n_total)):
        raise ValueError(f"subset: expected 1-D indices in [0, {n_total})")
    if len(index) < n_classes:
        raise ValueError(f"frames: {len(index)} frames cannot fill {n_classes} classes")
    if n_iterations < 1 or batch_size < 1:
        raise ValueError("n_iterations and batch_size must be >= 1")
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, got {n_init}")
    region = _region(size, mask, device)
    pixels = region.reshape(-1).nonzero().squeeze(1)
    angles = rotation_angles(n_rotations, friedel, device)

    best = None
    n_runs = n_init if init_averages is None else 1
    for run in range(n_runs):
        result = _em(
            frames, index, n_classes, size, region, pixels, angles,
            init_averages=init_averages,
            generator=torch.Generator().manual_seed(seed + run),
            n_iterations=n_iterations,
            n_align_iterations=n_align_iterations,
            beta=beta,
            learn_class_prior=learn_class_prior,
            min_class_fraction=min_class_fraction,
            reseed_fraction=reseed_fraction,
            batch_size=batch_size,
            progress=progress,
            device=device,
        )  # fmt: skip
        if best is None or result.log_likelihood[-1] > best.log_likelihood[-1]:
            best = result
    return best


def bootstrap_classify2d(
    frames,
    n_classes: int,
    n_runs: int = 5,
    fraction: float = 0.8,
    n_rotations: int = 36,
    n_iterations: int = 30,
    mask=None,
    friedel: bool = True,
    beta: float = 1.0,
    learn_class_prior: bool = True,
    n_init: int = 3,
    batch_size: int = 1024,
    seed: int = 0,
    progress: bool = True,
    device=None,
) -> list[Classify2DResult]:
    """Run :func:`classify2d` on ``n_runs`` random subsets of the frames.

    The paper runs 5 classifications with 200 classes, each on a random 80% of
    the frames, and pools the ``5 * 200`` averages. Each run ``i`` uses the
    seed ``seed + i`` for both its subset and its initialisation.

    Returns
    -------
    list of Classify2DResult
        One per run; ``result.frame_indices`` holds the subset.
        ``torch.cat([r.averages for r in results])`` pools the averages.
    """
    n_total, _ = _check_frames(frames, n_min=1)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if n_runs < 1:
        raise ValueError(f"n_runs must be >= 1, got {n_runs}")
    n_subset = max(n_classes, int(round(fraction * n_total)))
    results = []
    for run in range(n_runs):
        rng = np.random.default_rng(seed + run)
        subset = np.sort(rng.choice(n_total, size=min(n_subset, n_total), replace=False))
        results.append(
            classify2d(
                frames,
                n_classes,
                n_rotations=n_rotations,
                n_iterations=n_iterations,
                mask=mask,
                friedel=friedel,
                beta=beta,
                learn_class_prior=learn_class_prior,
                n_init=n_init,
                subset=subset,
                batch_size=batch_size,
                seed=seed + run,
                progress=progress,
                device=device,
            )
        )
    return results
