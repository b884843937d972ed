"""Training of segmentation networks (one or many stacked members) on random patches.

Every member of a stacked network (see :mod:`pyrolatent.segmentation.nets`)
draws its own mini-batches from its own random generator, so the members of a
deep ensemble follow different training trajectories while they are trained
in one batched pass. Member parameters are disjoint and Adam acts per element,
so training ``M`` stacked members equals training them one after the other.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._rng import restores_global_rng
from ..device import configure_cpu, resolve_device
from ..io.checkpoint import save_checkpoint
from .augment import Augmentation
from .ensemble import DeepEnsemble
from .losses import SegmentationLoss
from .members import _replicate
from .nets import build_network, split_members
from .sampling import (
    _foreground_pixels,
    _sample_batch,
    _targets_as_channels,
    prepare_training_data,
)

__all__ = ["train_ensemble", "train_network", "validation_split"]


def validation_split(n_images: int, val_fraction: float, seed: int) -> tuple[list, list]:
    """Split image indices into (train, validation) lists; no validation for one image."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(n_images * val_fraction))
    if n_images < 2 or val_fraction == 0:
        return list(range(n_images)), []
    n_val = min(max(n_val, 1), n_images - 1)
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[n_val:]), sorted(order[:n_val])


def _loss_per_member(network, loss_fn, x, y_channels, multiclass):
    """Loss summed over members; ``x`` ``(B, M*C, H, W)``, ``y`` ``(B, M, K, H, W)``."""
    m = network.members
    logits = split_members(network(x), m).flatten(0, 1).float()
    y = y_channels.flatten(0, 1)
    target = y.argmax(dim=1) if multiclass else y
    return loss_fn(logits, target) * m


@torch.no_grad()
def _validation_loss(network, loss_fn, images, targets, index, multiclass, batch_size=2):
    """Mean loss per member on whole validation images (cropped to the size multiple)."""
    network.eval()
    mult = network.size_multiple
    h = images.shape[-2] // mult * mult
    w = images.shape[-1] // mult * mult
    total, count = 0.0, 0
    for start in range(0, len(index), batch_size):
        idx = index[start : start + batch_size]
        x = images[idx, :, :h, :w]
        y = targets[idx, :, :h, :w]
        y = y.unsqueeze(1).expand(-1, network.members, -1, -1, -1)
        total += float(_loss_per_member(network, loss_fn, x, y, multiclass)) / network.members
        count += 1
    network.train()
    return total / max(count, 1)


def train_network(
    network: torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    multiclass: bool = False,
    loss: SegmentationLoss | None = None,
    steps: int = 500,
    batch_size: int = 8,
    patch_size: int = 64,
    lr: float = 1e-3,
    augmentation: Augmentation | None = None,
    foreground_fraction: float = 0.0,
    bfloat16: bool = False,
    train_index: list[int] | None = None,
    val_index: list[int] | None = None,
    eval_every: int = 50,
    patience: int | None = None,
    seeds: list[int] | None = None,
    checkpoint_path: str | None = None,
    checkpoint_extra: dict | None = None,
    progress: bool = True,
) -> dict:
    """Train a (possibly stacked) segmentation network with Adam on augmented patches.

    Parameters
    ----------
    network : DilNet or UNet
        Trained in place, on the device of its parameters.
    images : torch.Tensor
        ``(N, C, H, W)`` standardised images, on the network's device.
    masks : torch.Tensor
        ``(N, K, H, W)`` binary targets, or ``(N, H, W)`` class indices when ``multiclass``.
    multiclass : bool
        Softmax over output channels (else independent sigmoids).
    loss : SegmentationLoss, optional
        Defaults to cross-entropy + Dice.
    steps : int
        Maximum number of optimiser steps.
    batch_size : int
        Patches per member per step.
    patch_size : int
        Patch edge in pixels (reduced to fit the images, rounded to the size multiple).
    lr : float
        Adam learning rate.
    augmentation : Augmentation, optional
        Defaults to :class:`Augmentation` ``()``; pass ``Augmentation(...)`` to change it.
    foreground_fraction : float
        Probability in ``[0, 1]`` that a patch is placed to contain a randomly drawn
        foreground pixel (the rest are uniform over the image). Sparse particles
        (a few percent of the pixels) otherwise leave most patches empty.
    bfloat16 : bool
        Run the training forward passes under ``torch.autocast`` with bfloat16
        (convolutions in bfloat16, losses in float32). Faster on CPUs with AMX
        and on recent GPUs; validation and the returned weights stay float32.
    train_index, val_index : list of int, optional
        Images used for training and validation (default: all for training, none held out).
    eval_every : int
        Steps between validation evaluations (and checkpoints).
    patience : int, optional
        Stop after this many evaluations without a lower validation loss, and restore
        the best weights. ``None`` trains for ``steps``.
    seeds : list of int, optional
        One shuffling seed per member (default ``0, 1, ...``).
    checkpoint_path : str, optional
        Where to write an atomic checkpoint at every evaluation.
    checkpoint_extra : dict, optional
        Extra entries for the checkpoint (architecture description).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``{"step": [...], "train_loss": [...], "val_loss": [...], "best_step": int,
        "images_per_s": float}``; ``val_loss`` holds ``nan`` without validation images.
    """
    import time

    m = network.members
    device = next(network.parameters()).device
    loss_fn = loss if loss is not None else SegmentationLoss(1.0, 1.0, multiclass=multiclass)
    augment = augmentation if augmentation is not None else Augmentation()
    seeds = list(seeds) if seeds is not None else list(range(m))
    if len(seeds) != m:
        raise ValueError(f"seeds: need one per member ({m}), got {len(seeds)}")
    train_index = list(range(images.shape[0])) if train_index is None else list(train_index)
    val_index = list(val_index or [])
    if not train_index:
        raise ValueError("train_network: no training images")
    if not 0 <= foreground_fraction <= 1:
        raise ValueError(f"foreground_fraction must be in [0, 1], got {foreground_fraction}")
    n_out = network.out_channels
    targets = _targets_as_channels(masks, n_out, multiclass).to(device)
    mult = network.size_multiple
    patch = min(patch_size, images.shape[-2], images.shape[-1]) // mult * mult
    if patch < mult:
        raise ValueError(f"images {tuple(images.shape[-2:])} are smaller than {mult} pixels")
    foreground = _foreground_pixels(targets, multiclass) if foreground_fraction > 0 else None
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    aug_generator = torch.Generator(device=device).manual_seed(int(seeds[0]) + 10_007)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    history = {"step": [], "train_loss": [], "val_loss": [], "best_step": 0}
    best = (math.inf, copy.deepcopy(network.state_dict()), 0)
    bad_evals, running, n_running = 0, 0.0, 0
    network.train()
    start_time = time.perf_counter()
    bar = tqdm(range(1, steps + 1), disable=not progress, desc=f"train x{m}")
    step = 0
    for step in bar:
        batches = [
            _sample_batch(
                images, targets, train_index, patch, batch_size, g, foreground, foreground_fraction
            )
            for g in generators
        ]
        xs, ys = zip(*batches, strict=True)
        x = torch.stack(xs).flatten(0, 1).to(device)  # (M*B, C, P, P), member-major
        y = torch.stack(ys).flatten(0, 1).to(device)
        x, y = augment(x, y, generator=aug_generator)
        b = batch_size
        x = x.reshape(m, b, *x.shape[1:]).transpose(0, 1).flatten(1, 2)  # (B, M*C, P, P)
        y = y.reshape(m, b, *y.shape[1:]).transpose(0, 1)  # (B, M, K, P, P)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            value = _loss_per_member(network, loss_fn, x, y, multiclass)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        running += float(value.detach()) / m
        n_running += 1
        if step % eval_every == 0 or step == steps:
            val = (
                _validation_loss(network, loss_fn, images, targets, val_index, multiclass)
                if val_index
                else math.nan
            )
            history["step"].append(step)
            history["train_loss"].append(running / n_running)
            history["val_loss"].append(val)
            bar.set_postfix(train=f"{running / n_running:.4f}", val=f"{val:.4f}")
            running, n_running = 0.0, 0
            score = val if val_index else history["train_loss"][-1]
            if score < best[0]:
                best = (score, copy.deepcopy(network.state_dict()), step)
                bad_evals = 0
            else:
                bad_evals += 1
            if checkpoint_path is not None:
                state = {"state_dict": network.state_dict(), "step": step, "history": history}
                state.update(checkpoint_extra or {})
                save_checkpoint(state, checkpoint_path)
            if patience is not None and bad_evals >= patience:
                break
    elapsed = time.perf_counter() - start_time
    if patience is not None:
        network.load_state_dict(best[1])
        history["best_step"] = best[2]
    else:
        history["best_step"] = step
    history["images_per_s"] = step * batch_size * m / max(elapsed, 1e-9)
    network.eval()
    return history


@restores_global_rng  # its torch.manual_seed(seed) stays local
def train_ensemble(
    images,
    masks,
    *,
    network: str = "dilnet",
    network_config: dict | None = None,
    n_members: int = 12,
    baseline_steps: int = 1000,
    member_steps: int = 100,
    patience: int | None = 5,
    eval_every: int = 50,
    batch_size: int = 8,
    patch_size: int = 96,
    lr: float = 1e-3,
    multiclass: bool = False,
    loss: SegmentationLoss | None = None,
    augmentation: Augmentation | None = None,
    foreground_fraction: float = 0.0,
    bfloat16: bool = False,
    val_fraction: float = 0.2,
    seed: int = 0,
    checkpoint_dir: str | None = None,
    device=None,
    progress: bool = True,
) -> DeepEnsemble:
    """Train a baseline network, then ``n_members`` members fine-tuned from it.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` or ``(N, C, H, W)`` training frames (raw; standardised per frame).
    masks : array_like
        ``(N, H, W)`` binary (> 0 is particle) or class indices with ``multiclass``;
        ``(N, K, H, W)`` multi-label (e.g. layer 1 / layer 2 for overlaps).
    network : {"dilnet", "unet"}
        Architecture.
    network_config : dict, optional
        Extra constructor arguments (``filters``, ``depth``, ...); channel counts
        are set from the data.
    n_members : int
        Ensemble size (12 in the paper).
    baseline_steps, member_steps : int
        Maximum optimiser steps of the baseline and of each member (``member_steps``
        much smaller than ``baseline_steps``).
    patience : int, optional
        Baseline early stopping on the validation loss, in evaluations.
    eval_every, batch_size, patch_size, lr, loss, augmentation, foreground_fraction, bfloat16
        See :func:`~pyrolatent.segmentation.train.train_network`.
    multiclass : bool
        Softmax classes instead of independent sigmoid channels.
    val_fraction : float
        Fraction of frames held out for validation (none with a single frame).
    seed : int
        Seed of the baseline; members use ``seed + 1, ..., seed + n_members``.
    checkpoint_dir : str, optional
        Folder for ``baseline.pt`` and ``ensemble.pt`` checkpoints.
    device : str or torch.device, optional
        Resolved through :func:`pyrolatent.device.resolve_device`.
    progress : bool
        Show progress bars.

    Returns
    -------
    DeepEnsemble
    """
    if n_members < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members}")
    dev = resolve_device(device)
    configure_cpu()
    x, y = prepare_training_data(images, masks, multiclass, dev)
    config = dict(network_config or {})
    if multiclass:
        n_out = int(config.get("out_channels", int(y.max()) + 1))
        if n_out < int(y.max()) + 1:
            raise ValueError(f"masks: class {int(y.max())} needs out_channels > {n_out}")
    else:
        n_out = y.shape[1]
    config.update({"in_channels": x.shape[1], "out_channels": n_out, "members": 1})
    torch.manual_seed(seed)
    baseline = build_network(network, config).to(dev)
    train_idx, val_idx = validation_split(x.shape[0], val_fraction, seed)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    describe = {"network": network.lower(), "config": config, "multiclass": multiclass}
    common = {
        "multiclass": multiclass,
        "loss": loss,
        "batch_size": batch_size,
        "patch_size": patch_size,
        "lr": lr,
        "augmentation": augmentation,
        "foreground_fraction": foreground_fraction,
        "bfloat16": bfloat16,
        "train_index": train_idx,
        "val_index": val_idx,
        "eval_every": eval_every,
        "progress": progress,
    }
    history = {
        "baseline": train_network(
            baseline,
            x,
            y,
            steps=baseline_steps,
            patience=patience,
            seeds=[seed],
            checkpoint_path=None if ckpt is None else ckpt / "baseline.pt",
            checkpoint_extra=describe,
            **common,
        )
    }
    stacked = _replicate(baseline, n_members)
    if member_steps > 0:
        member_describe = dict(describe, config=stacked.config())
        history["members"] = train_network(
            stacked,
            x,
            y,
            steps=member_steps,
            patience=None,
            seeds=[seed + 1 + k for k in range(n_members)],
            checkpoint_path=None if ckpt is None else ckpt / "members.pt",
            checkpoint_extra=member_describe,
            **common,
        )
    ensemble = DeepEnsemble(network=stacked.eval(), multiclass=multiclass, history=history)
    if ckpt is not None:
        ensemble.save(ckpt / "ensemble.pt")
    return ensemble
