"""Data-parallel helpers for runs under ``torchrun`` (``torch.distributed``).

The Trainer keeps one replica of the parameters per process, starts them equal
by broadcasting rank 0's values, feeds each rank a disjoint shard of every
epoch's permutation (the ``DistributedSampler`` rule: pad by wrapping, then
take every ``world_size``-th index) and averages gradients with one all-reduce
per step, so replicas stay identical. The backend is ``gloo`` on CPU and
``nccl`` on CUDA.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as tdist

__all__ = ["DistributedContext"]


class DistributedContext:
    """Rank, world size and collective operations; a no-op outside ``torchrun``."""

    def __init__(self, device: torch.device):
        world = int(os.environ.get("WORLD_SIZE", "1"))
        self.enabled = world > 1 and tdist.is_available()
        self.device = device
        self.owns_group = False
        if self.enabled and not tdist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            tdist.init_process_group(backend=backend)
            self.owns_group = True
        self.rank = tdist.get_rank() if self.enabled else 0
        self.world_size = tdist.get_world_size() if self.enabled else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's share of an epoch's permutation (equal sizes on every rank)."""
        if not self.enabled:
            return indices
        n = indices.numel()
        total = -(-n // self.world_size) * self.world_size
        if total > n:
            indices = torch.cat([indices, indices[: total - n]])
        return indices[self.rank : total : self.world_size]

    def broadcast_parameters(self, params) -> None:
        if self.enabled:
            for p in params:
                tdist.broadcast(p.data, src=0)

    def average_gradients(self, params) -> None:
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        tdist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()
