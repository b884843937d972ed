"""A private random stream for code that draws from torch's global generator.

Pyro samples with torch's global generator. :class:`LocalRNG` keeps a stream
of its own (seeded from ``seed``) and, inside :meth:`LocalRNG.active`, installs
it as the global state, then stores how far it advanced and puts the caller's
state back. So an estimator's fit neither reads nor changes the caller's
random state, and two estimators trained alternately draw exactly what they
draw alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["LocalRNG"]


class LocalRNG:
    """Own torch random state (CPU, plus the CUDA device in use), swapped in on demand.

    Parameters
    ----------
    seed : int
        Seed of the stream (the state ``torch.manual_seed(seed)`` gives).
    device : torch.device, optional
        A CUDA device whose generator is also kept; CPU otherwise.
    """

    def __init__(self, seed: int, device: torch.device | None = None):
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._depth = 0
        self.cpu = torch.Generator().manual_seed(int(seed)).get_state()
        self.cuda = None
        if self.device.type == "cuda":
            with self._cuda_fork():
                torch.cuda.manual_seed(int(seed))
                self.cuda = torch.cuda.get_rng_state(self.device)

    def _index(self) -> int:
        return self.device.index if self.device.index is not None else torch.cuda.current_device()

    def _cuda_fork(self):
        return torch.random.fork_rng(devices=[self._index()])

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the body with this stream as torch's global generator (re-entrant)."""
        if self._depth:
            yield
            return
        devices = [self._index()] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                self.cpu = torch.get_rng_state()
                if self.cuda is not None:
                    self.cuda = torch.cuda.get_rng_state(self.device)

    def state_dict(self) -> dict:
        """``{"cpu": ByteTensor, "cuda": ByteTensor or None}`` (the live state while active)."""
        if self._depth:
            self.cpu = torch.get_rng_state()
            if self.cuda is not None:
                self.cuda = torch.cuda.get_rng_state(self.device)
        return {"cpu": self.cpu.clone(), "cuda": None if self.cuda is None else self.cuda.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (also into the global generator while active)."""
        self.cpu = state["cpu"].cpu().clone()
        if self.cuda is not None and state.get("cuda") is not None:
            self.cuda = state["cuda"].cpu().clone()
        if self._depth:
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
