"""EMC-style 2D classification of sparse photon frames with in-plane rotations.

Generative model of frame ``n`` (photon counts ``K_n`` on the pixels ``p`` of
the detector region: the inscribed disc minus the masked pixels)::

    class     c_n ~ Categorical(pi)                     (K classes)
    rotation  r_n ~ Uniform{theta_0 .. theta_{R-1}}       (R in-plane angles)
    K_np      ~ Poisson(phi_n * W_{c_n}(R(-theta_{r_n}) p))

``W_k`` are the class averages and ``phi_n`` a per-frame fluence scale. The
latents ``(c_n, r_n)`` are discrete and few, so their posterior is computed
*exactly* by enumerating all ``K * R`` combinations (the E-step); the M-step
then maximises the expected complete-data log-likelihood in closed form, as in
the EMC algorithm of Dragonfly (Ayyer et al. 2016):

* ``W_k(x) = sum_{n,r} P_nkr K_n(R(theta_r) x) / sum_{n,r} P_nkr phi_n M(R(theta_r) x)``
  (frames rotated back into the class frame, ``M`` the detector mask), which
  also fills the beamstop and gaps from other rotations;
* ``phi_n = sum_p K_np / sum_{k,r} P_nkr sum_p W_kr,p``;
* ``pi_k = mean_n sum_r P_nkr``.

The E-step is the exact posterior of the Pyro model :func:`classify2d_model`
(whose ``"class"`` and ``"rotation"`` sites ``TraceEnum_ELBO`` enumerates; the
tests check the two agree); the M-step is the closed-form EMC update, exact up
to the bilinear interpolation of the rotations. EM is used rather than SVI
because it converges in tens of iterations and scales to ``10^5`` frames.
Frames are streamed in batches (the input array is never converted to float as
a whole), so the working memory is ``O(batch_size K R + K R S^2 + N K)``. The
rotated class averages are precomputed once per iteration with the shared
:func:`~pyrolatent.primitives.warp.warp_images`.

EM finds local optima, so the start matters: frames are first clustered by
k-means++ on rotation-invariant features (a few alignment-only iterations keep
each frame in its cluster), the best of ``n_init`` starts is kept, and a class
that empties is refilled by splitting the most populated one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from tqdm.auto import tqdm

from ..commonlines.features import rotation_invariant_features
from ..device import resolve_device
from ..primitives.grids import pixel_grid
from ..primitives.warp import warp_images
from ..validation import as_tensor, check_finite, check_nonnegative

__all__ = [
    "Classify2DResult",
    "bootstrap_classify2d",
    "classify2d",
    "classify2d_model",
    "rotation_angles",
]


@dataclass
class Classify2DResult:
    """Output of :func:`classify2d`.

    Attributes
    ----------
    averages : torch.Tensor
        ``(K, S, S)`` class averages, in photons per pixel at fluence 1
        (zero where no rotated frame ever covered the pixel).
    class_probabilities : torch.Tensor
        ``(N, K)`` posterior class probabilities of every classified frame.
    best_class : torch.Tensor
        ``(N,)`` most probable class.
    best_rotation : torch.Tensor
        ``(N,)`` radians: the most probable in-plane rotation within the best
        class. Frame ``n`` looks like ``averages[best_class[n]]`` rotated
        counter-clockwise by this angle.
    fluence : torch.Tensor
        ``(N,)`` per-frame fluence scale (mean 1).
    class_prior : torch.Tensor
        ``(K,)`` class weights.
    angles : torch.Tensor
        ``(R,)`` the enumerated rotation angles (radians).
    frame_indices : numpy.ndarray
        ``(N,)`` indices of the classified frames in the input.
    log_likelihood : list of float
        Mean per-frame log marginal likelihood (up to the constant
        ``-sum log K_np!``) at every iteration (a pre-update value: the E-step of
        iteration ``i`` scores the averages of iteration ``i - 1``).
    mask : torch.Tensor
        ``(S, S)`` bool, the pixels used (inscribed disc and detector mask).
    """

    averages: torch.Tensor
    class_probabilities: torch.Tensor
    best_class: torch.Tensor
    best_rotation: torch.Tensor
    fluence: torch.Tensor
    class_prior: torch.Tensor
    angles: torch.Tensor
    frame_indices: np.ndarray
    log_likelihood: list = field(default_factory=list)
    mask: torch.Tensor | None = None


def rotation_angles(n_rotations: int, friedel: bool = True, device=None) -> torch.Tensor:
    """``(R,)`` equally spaced angles over ``[0, pi)`` (Friedel) or ``[0, 2 pi)``."""
    if n_rotations < 1:
        raise ValueError(f"n_rotations must be >= 1, got {n_rotations}")
    span = math.pi if friedel else 2 * math.pi
    return torch.arange(n_rotations, dtype=torch.float32, device=device) * (span / n_rotations)


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


def _rotated_models(averages, angles, pixels, floor):
    """``(K R, P)`` class averages rotated by every angle, restricted to the pixels."""
    k, size, _ = averages.shape
    r = angles.shape[0]
    rotated = warp_images(averages.repeat_interleave(r, dim=0), angle=angles.repeat(k))
    return rotated.reshape(k * r, size * size)[:, pixels].clamp_min(floor)


def _e_step(counts, fluence, log_w, w_sum, log_prior, beta, fixed=None):
    """Exact posterior over (class, rotation) of a batch; returns (post (B, KR), loglik (B,)).

    ``fixed = (class_of_column (KR,), class_of_frame (B,))`` restricts every frame
    to one class (the alignment-only start).
    """
    log_like = counts @ log_w.t() - fluence[:, None] * w_sum[None, :]
    log_joint = beta * log_like + log_prior[None, :]
    if fixed is not None:
        allowed = fixed[0][None, :] == fixed[1][:, None]
        log_joint = log_joint.masked_fill(~allowed, -math.inf)
    log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)
    return torch.exp(log_joint - log_norm), log_norm.squeeze(1)


def _kmeans(x: torch.Tensor, k: int, generator, n_init: int = 5, n_iter: int = 50):
    """Plain k-means with k-means++ seeding; returns the labels of the best of ``n_init``."""
    best_labels, best_inertia = None, math.inf
    for _ in range(n_init):
        first = int(torch.randint(x.shape[0], (1,), generator=generator))
        centres = x[first : first + 1]
        for _ in range(1, k):
            d2 = torch.cdist(x, centres).amin(dim=1) ** 2
            probs = (d2 / d2.sum().clamp_min(1e-30)).cpu()
            nxt = int(torch.multinomial(probs + 1e-30, 1, generator=generator))
            centres = torch.cat([centres, x[nxt : nxt + 1]])
        for _ in range(n_iter):
            labels = torch.cdist(x, centres).argmin(dim=1)
            new = torch.stack(
                [
                    x[labels == j].mean(0) if bool((labels == j).any()) else centres[j]
                    for j in range(k)
                ]
            )
            if torch.allclose(new, centres):
                break
            centres = new
        inertia = float((torch.cdist(x, centres).amin(dim=1) ** 2).sum())
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    return best_labels


def _frame_features(counts_full: torch.Tensor, region: torch.Tensor, max_harmonic: int):
    """Rotation-invariant low-harmonic features of sparse frames ``(B, S, S)``."""
    width = max(3, (counts_full.shape[-1] // 13) | 1)  # 3 px at 33^2, 5 px at 65^2
    blurred = torch.nn.functional.avg_pool2d(
        counts_full.unsqueeze(1), width, stride=1, padding=width // 2, count_include_pad=False
    ).squeeze(1)
    feats = rotation_invariant_features(
        blurred * region, mask_radius=1.0, max_harmonic=max_harmonic, device=counts_full.device
    )
    return feats / counts_full.sum(dim=(1, 2)).clamp_min(1).unsqueeze(1)


def _initial_averages(frames, index, size, n_classes, region, generator, device):
    """Cluster frames by rotation-invariant features, then seed each class from its medoid.

    Features: ``|FFT|`` along the azimuth (harmonics 0, 2, 4) of the blurred
    frames, per photon (:func:`~pyrolatent.commonlines.rotation_invariant_features`),
    standardised; k-means++ groups them. Class ``k`` starts as the blurred frame
    nearest its cluster centre, mixed half and half with the cluster's mean
    frame. Returns the averages, the cluster fractions and the cluster labels.
    """
    region_f = region.float()

    def batches():
        for start in range(0, len(index), 4096):
            rows = index[start : start + 4096]
            yield start, as_tensor(_take(frames, rows), name="frames", device=device) * region_f

    feats = [_frame_features(full, region_f, max_harmonic=4) for _, full in batches()]
    x = torch.cat(feats)
    x = torch.log(x + 1e-3 * x.mean(0).clamp_min(1e-12))
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    labels = _kmeans(x, n_classes, generator)
    # cluster means, streamed (frames are never all held as float)
    sums = torch.zeros(n_classes, size, size, device=device)
    for start, full in batches():
        sums.index_add_(0, labels[start : start + full.shape[0]], full)
    counts = torch.bincount(labels, minlength=n_classes).to(sums.dtype)
    averages, fractions = [], []
    for j in range(n_classes):
        members = (labels == j).nonzero().squeeze(1)
        if members.numel() == 0:
            members = torch.randint(len(index), (1,), generator=generator).to(device)
        centre = x[members].mean(0, keepdim=True)
        medoid = members[torch.cdist(x[members], centre).argmin()]
        seed = _seed_images(frames, index[[int(medoid)]], device)[0] * region_f
        mean = sums[j] / counts[j] if counts[j] > 0 else seed
        scale = mean.sum() / seed.sum().clamp_min(1e-12)
        averages.append(0.5 * mean + 0.5 * seed * scale)
        fractions.append(float(counts[j]) / len(index))
    return torch.stack(averages) * region_f, torch.tensor(fractions, device=device), labels


def _split_into_empty_classes(averages, class_mass, region, threshold, generator):
    """Refill nearly empty classes by splitting the most populated ones.

    The largest class ``j`` and an empty class ``e`` get ``W_j exp(+-eps)``,
    with ``eps`` a smooth random field of 10% amplitude (the k-means split);
    EM then separates the sub-populations the largest class had merged.
    Returns the new averages and class masses.
    """
    total = class_mass.sum()
    empty = (class_mass < threshold * total).nonzero().squeeze(1).tolist()
    if not empty:
        return averages, class_mass
    averages, class_mass = averages.clone(), class_mass.clone()
    size = averages.shape[-1]
    for e in empty:
        j = int(class_mass.argmax())
        coarse = torch.randn(1, 1, 5, 5, generator=generator).to(averages.device)
        field = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")[0, 0]
        eps = 0.1 * field / field.std().clamp_min(1e-12)
        base = averages[j]
        averages[j] = base * torch.exp(eps) * region
        averages[e] = base * torch.exp(-eps) * region
        class_mass[j] = class_mass[e] = 0.5 * (class_mass[j] + class_mass[e])
    return averages, class_mass


def _seed_images(frames, rows, device):
    seeds = as_tensor(_take(frames, rows), name="frames", device=device)
    kernel = torch.ones(1, 1, 3, 3, device=device) / 9.0
    return torch.nn.functional.conv2d(seeds.unsqueeze(1), kernel, padding=1).squeeze(1)


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


def _em(
    frames,
    index,
    n_classes,
    size,
    region,
    pixels,
    angles,
    init_averages,
    generator,
    n_iterations,
    n_align_iterations,
    beta,
    learn_class_prior,
    min_class_fraction,
    reseed_fraction,
    batch_size,
    progress,
    device,
) -> Classify2DResult:
    """One EM run of :func:`classify2d` from one initialisation."""
    n_rotations = angles.shape[0]
    log_prior_class = torch.full((n_classes,), -math.log(n_classes), device=device)
    init_labels = None
    if init_averages is None:
        averages, fractions, init_labels = _initial_averages(
            frames, index, size, n_classes, region, generator, device
        )
        if learn_class_prior:
            log_prior_class = torch.log(fractions.clamp_min(1.0 / (10 * len(index))))
    else:
        averages = as_tensor(init_averages, name="init_averages", device=device)
        if tuple(averages.shape) != (n_classes, size, size):
            raise ValueError(
                f"init_averages: expected {(n_classes, size, size)}, got {tuple(averages.shape)}"
            )
        check_finite(averages, "init_averages")
        check_nonnegative(averages, "init_averages")

    n = len(index)
    photons = torch.empty(n, device=device)
    for start, counts in _frame_batches(frames, index, pixels, batch_size, device):
        photons[start : start + counts.shape[0]] = counts.sum(1)
    fluence = photons / photons.mean().clamp_min(1e-12)

    # un-rotated detector region for every angle: the denominator's geometry
    region_f = region.float().expand(n_rotations, size, size)
    back_mask = warp_images(region_f, angle=-angles)  # (R, S, S)
    history = []
    reseed_until = int(reseed_fraction * n_iterations)
    class_of_column = torch.arange(n_classes, device=device).repeat_interleave(n_rotations)
    bar = tqdm(range(n_iterations + 1), desc="classify2d", disable=not progress, leave=False)
    for iteration in bar:
        final = iteration == n_iterations
        floor = 1e-6 * float(averages[:, region].mean().clamp_min(1e-12))
        w = _rotated_models(averages, angles, pixels, floor)  # (KR, P)
        log_w, w_sum = torch.log(w), w.sum(1)
        log_prior = (log_prior_class - math.log(n_rotations)).repeat_interleave(n_rotations)
        acc = torch.zeros_like(w)
        acc_fluence = torch.zeros(w.shape[0], device=device)
        expected_sum = torch.empty(n, device=device)
        if final:
            class_prob = torch.empty(n, n_classes, device=device)
            best_rot = torch.empty(n, dtype=torch.long, device=device)
        total_ll = 0.0
        for start, counts in _frame_batches(frames, index, pixels, batch_size, device):
            stop = start + counts.shape[0]
            phi = fluence[start:stop]
            fixed = None
            if init_labels is not None and iteration < n_align_iterations:
                fixed = (class_of_column, init_labels[start:stop])
            post, log_norm = _e_step(counts, phi, log_w, w_sum, log_prior, beta, fixed)
            total_ll += float(log_norm.sum())
            if final:
                post_kr = post.reshape(-1, n_classes, n_rotations)
                class_prob[start:stop] = post_kr.sum(2)
                top = class_prob[start:stop].argmax(1)
                best_rot[start:stop] = post_kr[torch.arange(len(top)), top].argmax(1)
                continue
            acc += post.t() @ counts
            acc_fluence += post.t() @ phi
            expected_sum[start:stop] = post @ w_sum
            log_prior_update = post.reshape(-1, n_classes, n_rotations).sum((0, 2))
            if start == 0:
                class_mass = log_prior_update
            else:
                class_mass = class_mass + log_prior_update
        history.append(total_ll / n)
        bar.set_postfix(loglik=f"{history[-1]:.2f}")
        if final:
            break
        # M-step: rotate the accumulated frames back into each class frame
        full = torch.zeros(w.shape[0], size * size, device=device)
        full[:, pixels] = acc
        back = warp_images(full.reshape(-1, size, size), angle=(-angles).repeat(n_classes))
        numerator = back.reshape(n_classes, n_rotations, size, size).sum(1)
        weight = torch.einsum("kr,rhw->khw", acc_fluence.reshape(n_classes, n_rotations), back_mask)
        covered = weight > 1e-3 * weight.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        averages = torch.where(covered, numerator / weight.clamp_min(1e-12), 0.0) * region
        if iteration < reseed_until:
            averages, class_mass = _split_into_empty_classes(
                averages, class_mass, region, min_class_fraction / n_classes, generator
            )
        fluence = photons / expected_sum.clamp_min(1e-12)
        scale = fluence.mean()
        fluence, averages = fluence / scale, averages * scale
        if learn_class_prior:
            log_prior_class = torch.log((class_mass / n).clamp_min(1e-12))
    return Classify2DResult(
        averages=averages,
        class_probabilities=class_prob,
        best_class=class_prob.argmax(1),
        best_rotation=angles[best_rot],
        fluence=fluence,
        class_prior=torch.exp(log_prior_class),
        angles=angles,
        frame_indices=index,
        log_likelihood=history,
        mask=region,
    )


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


def classify2d_model(counts, rotated_averages, fluence, class_prior=None):
    """The generative model of :func:`classify2d` as a Pyro model.

    Parameters
    ----------
    counts : torch.Tensor
        ``(N, P)`` photon counts on the used pixels.
    rotated_averages : torch.Tensor
        ``(K, R, P)`` class averages rotated by every enumerated angle, on the
        same pixels (positive).
    fluence : torch.Tensor
        ``(N,)`` fluence scales.
    class_prior : torch.Tensor, optional
        ``(K,)`` class weights; default uniform.

    Notes
    -----
    Sites: ``"class"`` (``Categorical(K)``) and ``"rotation"``
    (``Categorical(R)``), both marked for parallel enumeration, and the
    observed ``"frames"`` (``Poisson``). ``TraceEnum_ELBO`` sums the latents
    exactly; ``pyro.infer.infer_discrete`` or
    ``TraceEnum_ELBO.compute_marginals`` give the same posterior as the E-step
    of :func:`classify2d`.
    """
    k, r, _ = rotated_averages.shape
    if class_prior is None:
        class_prior = torch.full((k,), 1.0 / k, device=counts.device)
    with pyro.plate("frames_plate", counts.shape[0]):
        c = pyro.sample("class", dist.Categorical(class_prior), infer={"enumerate": "parallel"})
        rot = pyro.sample(
            "rotation",
            dist.Categorical(torch.full((r,), 1.0 / r, device=counts.device)),
            infer={"enumerate": "parallel"},
        )
        rate = fluence.unsqueeze(-1) * rotated_averages[c, rot]
        pyro.sample("frames", dist.Poisson(rate).to_event(1), obs=counts)
