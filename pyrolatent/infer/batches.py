"""Batch sources: what the :class:`~pyrolatent.infer.trainer.Trainer` loops over.

A batch source turns training data into the optimiser steps of one epoch.
Each step is a list of mini-batches (tuples of tensors, passed to the model
and guide as ``fn(*batch)``); the Trainer sums their per-item losses and takes
one optimiser step. :class:`Batches` is the plain source (one shuffled pass,
one mini-batch per step); models with other needs supply their own source
(the ss-rVAE interleaves labelled and unlabelled batches, see
:class:`pyrolatent.estimators.ssrvae.InterleavedBatches`).

A source has ``prepare(device)`` (check and move the data), ``first()`` (a
mini-batch for lazily built guides) and ``epoch(order)`` (the steps of one
epoch, where ``order(n, salt)`` is the Trainer's seeded, sharded permutation, an
:class:`EpochOrder`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..checks import as_tensor

__all__ = ["Batches", "EpochOrder", "as_source", "split"]

Order = Callable[[int, int], torch.Tensor]


class EpochOrder:
    """The seeded permutations of one epoch.

    ``order(n, salt)`` is this process's shard of a permutation of ``n`` items
    (under ``torchrun``: equal sizes on every rank, see
    :class:`~pyrolatent.infer.distributed.DistributedContext`); ``order.full(n,
    salt)`` the whole permutation, the same on every rank. ``salt`` tells the
    permutations of one epoch apart.
    """

    def __init__(self, seed: int, epoch: int, dist=None):
        self.seed, self.epoch, self.dist = int(seed), int(epoch), dist

    @property
    def world_size(self) -> int:
        return 1 if self.dist is None else int(self.dist.world_size)

    def full(self, n: int, salt: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919 + salt)
        return torch.randperm(n, generator=g)

    def __call__(self, n: int, salt: int) -> torch.Tensor:
        perm = self.full(n, salt)
        return perm if self.dist is None else self.dist.shard(perm)


def as_source(data, name: str, device: torch.device) -> tuple[torch.Tensor, ...]:
    """A tensor or tuple of equally long tensors, checked finite, on ``device``."""
    if data is None:
        return ()
    items = data if isinstance(data, (tuple, list)) else (data,)
    if not items:
        raise ValueError(f"{name}: no arrays given")
    out = []
    for i, item in enumerate(items):
        dtype = None if isinstance(item, torch.Tensor) else torch.float32
        t = as_tensor(item, name=f"{name}[{i}]", dtype=dtype, device=device)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}[{i}]: contains NaN or Inf values")
        if t.dim() == 0:
            raise ValueError(f"{name}[{i}]: is a scalar; expected items along the first axis")
        out.append(t)
    n = out[0].shape[0]
    if any(t.shape[0] != n for t in out):
        raise ValueError(
            f"{name}: all arrays must have the same length, got {[t.shape[0] for t in out]}"
        )
    return tuple(out)


def split(source: tuple[torch.Tensor, ...], order: torch.Tensor, batch_size: int) -> list:
    """Mini-batches ``tuple(t[idx] for t in source)`` of consecutive ``batch_size`` indices."""
    idx = [order[i : i + batch_size] for i in range(0, order.numel(), batch_size)]
    return [tuple(t[j.to(t.device)] for t in source) for j in idx]


class Batches:
    """One shuffled pass over ``data`` per epoch, one mini-batch per step.

    Parameters
    ----------
    data : tensor, array or tuple of them
        The first dimension indexes items.
    batch_size : int
        Items per mini-batch (per process under ``torchrun``).
    salt : int
        Distinguishes the shuffles of several sources in one Trainer.
    name : str
        For error messages.
    """

    def __init__(self, data, batch_size: int, salt: int = 0, name: str = "data"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data, self.batch_size, self.salt, self.name = data, int(batch_size), salt, name
        self.source: tuple[torch.Tensor, ...] = ()

    def prepare(self, device: torch.device) -> Batches:
        self.source = as_source(self.data, self.name, device)
        if not self.source:
            raise ValueError(f"{self.name}: no training data")
        return self

    def __len__(self) -> int:
        return self.source[0].shape[0]

    def first(self) -> tuple[torch.Tensor, ...]:
        return tuple(t[: self.batch_size] for t in self.source)

    def batches(self, order: Order) -> list[tuple[torch.Tensor, ...]]:
        """This epoch's mini-batches."""
        return split(self.source, order(len(self), self.salt), self.batch_size)

    def epoch(self, order: Order) -> list[list[tuple[torch.Tensor, ...]]]:
        return [[b] for b in self.batches(order)]
