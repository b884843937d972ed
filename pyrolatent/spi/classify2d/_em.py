"""One EM run of the 2D classification: rotated models, the exact E-step, the EMC M-step."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ...checks import as_tensor, check_finite, check_nonnegative
from ...primitives.warp import warp_images
from ._frames import _frame_batches
from ._init import _initial_averages, _split_into_empty_classes
from .result import Classify2DResult


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
