"""One SVI trainer for every Pyro model/guide pair of pyrolatent.

The trainer owns the epoch loop, mini-batches, the progress bar, the history,
side-effect-free evaluation, callbacks, atomic checkpoints with exact resume,
seeding, the device policy and data-parallel training under ``torchrun``.

Models and guides are ``torch.nn.Module`` objects (``PyroModule`` in practice)
whose parameters are their ``parameters()``; mini-batches are passed to them
positionally: ``model(*batch)`` and ``guide(*batch)``. The objective is any
Pyro ELBO (``Trace_ELBO``, ``TraceEnum_ELBO``, ``TraceMeanField_ELBO``, ...);
its ``differentiable_loss`` drives a plain ``torch.optim`` optimiser, so the
optimiser state is an ordinary ``state_dict`` that checkpoints cleanly.

Semi-supervised training passes a second, labelled source. Interleaving rule:
an epoch has ``max(U, L)`` steps, where ``U`` and ``L`` are the numbers of
unlabelled and labelled mini-batches; step ``i`` takes unlabelled batch
``i mod U`` and labelled batch ``i mod L`` and minimises the sum of the two
per-item losses in one optimiser step. Every labelled and every unlabelled
item is therefore used at least once per epoch, whatever the ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pyro
import torch
from pyro.infer import Trace_ELBO
from tqdm.auto import tqdm

from ..checks import as_tensor
from ..device import resolve_device
from .callbacks import Callback
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .distributed import DistributedContext
from .scaling import LatentScaleMessenger

__all__ = ["Trainer"]


def _as_source(data, name: str, device: torch.device) -> tuple[torch.Tensor, ...]:
    """A tensor or tuple of equally long tensors, on ``device``."""
    if data is None:
        return ()
    items = data if isinstance(data, (tuple, list)) else (data,)
    out = []
    for i, item in enumerate(items):
        dtype = None if isinstance(item, torch.Tensor) else torch.float32
        t = as_tensor(item, name=f"{name}[{i}]", dtype=dtype, device=device)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}[{i}]: contains NaN or Inf values")
        out.append(t)
    n = out[0].shape[0]
    if any(t.shape[0] != n for t in out):
        raise ValueError(
            f"{name}: all arrays must have the same length, got {[t.shape[0] for t in out]}"
        )
    return tuple(out)


class Trainer:
    """Stochastic variational inference for a (model, guide) pair.

    Parameters
    ----------
    model, guide : torch.nn.Module
        Pyro model and guide (``PyroModule``). Called as ``fn(*batch)``.
    loss : pyro.infer.ELBO, optional
        Defaults to ``model.default_loss()`` when the model defines it, else
        ``Trace_ELBO()``.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam weight decay.
    clip_norm : float, optional
        Clip the global gradient norm to this value.
    seed : int
        Seeds parameter initialisation draws, the ELBO's samples and shuffling.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.
    callbacks : sequence of Callback
        E.g. :class:`~pyrolatent.infer.callbacks.BetaSchedule`,
        :class:`~pyrolatent.infer.callbacks.EarlyStopping`.
    checkpoint_path : path-like, optional
        Where to write a checkpoint after every ``checkpoint_every`` epochs (and
        at the end). ``fit`` resumes from it when it exists.
    checkpoint_every : int
        Epochs between checkpoints.
    quiet : bool
        Hide the progress bar.

    Attributes
    ----------
    history : dict of list
        ``epoch``, ``loss`` (per item, training) and, with validation data,
        ``val_loss``; callbacks add more keys (``beta``, ``val_accuracy``, ...).
    beta : float
        Current KL weight (1 = plain ELBO).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        guide: torch.nn.Module,
        loss=None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        callbacks: Sequence[Callback] = (),
        checkpoint_path: str | Path | None = None,
        checkpoint_every: int = 1,
        quiet: bool = False,
    ):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.guide = guide.to(self.device)
        if loss is None:
            loss = model.default_loss() if hasattr(model, "default_loss") else Trace_ELBO()
        self.loss = loss
        self.lr, self.weight_decay, self.clip_norm = lr, weight_decay, clip_norm
        self.seed = seed
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_every = checkpoint_every
        self.quiet = quiet
        self.dist = DistributedContext(self.device)
        self.history: dict[str, list] = {"epoch": [], "loss": []}
        self.beta = 1.0
        self.epoch = 0
        self.stop_training = False
        self.optimizer: torch.optim.Optimizer | None = None
        self._seeded = False
        # PyroModule parameters are mirrored in Pyro's global parameter store
        # under their attribute names; two models with the same names (two
        # NMFs of different sizes, two AutoGuides) would overwrite each other.
        # Each trainer therefore works in a parameter-store scope of its own.
        self._param_scope: dict = {"params": {}, "constraints": {}}
        self._in_scope = False

    def _scope(self):
        """Context manager: this trainer's own Pyro parameter-store scope."""
        from contextlib import nullcontext

        if self._in_scope:
            return nullcontext()
        trainer = self

        class _Scope:
            def __enter__(self):
                self._ctx = pyro.get_param_store().scope(trainer._param_scope)
                self._ctx.__enter__()
                trainer._in_scope = True

            def __exit__(self, *exc):
                trainer._in_scope = False
                return self._ctx.__exit__(*exc)

        return _Scope()

    # ------------------------------------------------------------------ setup
    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters of the model and guide, each once."""
        seen, out = set(), []
        for p in list(self.model.parameters()) + list(self.guide.parameters()):
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def _setup(self, first_batch: tuple[torch.Tensor, ...]) -> None:
        if not self._seeded:
            pyro.set_rng_seed(self.seed)
            self._seeded = True
        if self.optimizer is not None:
            return
        # lazily built guides (AutoGuides) create their parameters on first call
        with torch.no_grad(), pyro.poutine.block():
            self.guide(*first_batch)
        params = self.parameters()
        if not params:
            raise ValueError("the model and guide have no trainable parameters")
        self.dist.broadcast_parameters(params)
        self.optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    # ------------------------------------------------------------- objective
    def _scaled(self, fn):
        beta = self.beta

        def scaled(*args):
            with LatentScaleMessenger(beta):
                return fn(*args)

        return scaled

    def _batch_loss(self, batch) -> torch.Tensor:
        """Per-item loss of one mini-batch (differentiable)."""
        model, guide = self.model, self.guide
        if self.beta != 1.0:
            model, guide = self._scaled(model), self._scaled(guide)
        return self.loss.differentiable_loss(model, guide, *batch) / batch[0].shape[0]

    def _permutation(self, n: int, epoch: int, salt: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 7919 + salt)
        return self.dist.shard(torch.randperm(n, generator=g))

    @staticmethod
    def _batches(source, order: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, ...]]:
        idx = [order[i : i + batch_size] for i in range(0, order.numel(), batch_size)]
        return [tuple(t[j.to(t.device)] for t in source) for j in idx]

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        data,
        epochs: int,
        batch_size: int = 100,
        val_data=None,
        labelled_data=None,
        labelled_batch_size: int | None = None,
        resume: bool = True,
    ) -> dict[str, list]:
        """Train for ``epochs`` epochs in total (counting epochs already done).

        Parameters
        ----------
        data : tensor, array or tuple of them
            Training data; the first dimension indexes items. ``None`` is
            allowed when ``labelled_data`` is given.
        epochs : int
            Total number of epochs; a resumed run continues up to this number.
        batch_size : int
            Items per mini-batch (per process under ``torchrun``).
        val_data : tensor, array or tuple, optional
            Evaluated after every epoch without touching the parameters.
        labelled_data : tuple, optional
            Second source, e.g. ``(images, labels)`` for semi-supervised models,
            interleaved as described in the module docstring.
        labelled_batch_size : int, optional
            Defaults to ``batch_size``.
        resume : bool
            Continue from ``checkpoint_path`` when that file exists.

        Returns
        -------
        dict of list
            The history.
        """
        with self._scope():
            return self._fit(
                data, epochs, batch_size, val_data, labelled_data, labelled_batch_size, resume
            )

    def _fit(
        self, data, epochs, batch_size, val_data, labelled_data, labelled_batch_size, resume
    ) -> dict[str, list]:
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        unlab = _as_source(data, "data", self.device)
        lab = _as_source(labelled_data, "labelled_data", self.device)
        val = _as_source(val_data, "val_data", self.device)
        if not unlab and not lab:
            raise ValueError("fit needs data, labelled_data or both")
        lbs = labelled_batch_size or batch_size
        first = unlab or lab
        self._setup(tuple(t[:batch_size] for t in first))
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.load_checkpoint(self.checkpoint_path)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        self.stop_training = False
        bar = tqdm(
            total=epochs,
            initial=min(self.epoch, epochs),
            desc="training",
            unit="epoch",
            disable=self.quiet or not self.dist.is_main,
        )
        try:
            while self.epoch < epochs and not self.stop_training:
                epoch = self.epoch
                for cb in self.callbacks:
                    cb.on_epoch_start(self, epoch)
                self.model.train()
                self.guide.train()
                ub = (
                    self._batches(unlab, self._permutation(len(unlab[0]), epoch, 0), batch_size)
                    if unlab
                    else []
                )
                lb = (
                    self._batches(lab, self._permutation(len(lab[0]), epoch, 1), lbs) if lab else []
                )
                steps = max(len(ub), len(lb))
                total, count = 0.0, 0
                for i in range(steps):
                    loss = 0.0
                    if ub:
                        loss = loss + self._batch_loss(ub[i % len(ub)])
                    if lb:
                        loss = loss + self._batch_loss(lb[i % len(lb)])
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"loss became {float(loss)} at epoch {epoch}, step {i}; "
                            "try a lower learning rate or check the data scale"
                        )
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    params = self.optimizer.param_groups[0]["params"]
                    self.dist.average_gradients(params)
                    if self.clip_norm is not None:
                        torch.nn.utils.clip_grad_norm_(params, self.clip_norm)
                    self.optimizer.step()
                    total += float(loss.detach())
                    count += 1
                total, count = self.dist.sum([total, float(count)])
                logs = {"epoch": epoch, "loss": total / max(count, 1)}
                if val:
                    logs["val_loss"] = self.evaluate(val, batch_size=batch_size)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, epoch, logs)
                self._record(logs)
                self.epoch = epoch + 1
                if self.checkpoint_path is not None and (
                    self.epoch % self.checkpoint_every == 0 or self.epoch >= epochs
                ):
                    self.save_checkpoint(self.checkpoint_path)
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "epoch"})
        finally:
            bar.close()
        return self.history

    def _record(self, logs: dict) -> None:
        n_before = len(self.history["epoch"])
        for key, value in logs.items():
            column = self.history.setdefault(key, [math.nan] * n_before)
            column.append(value)
        for column in self.history.values():
            if len(column) < n_before + 1:
                column.append(math.nan)

    # -------------------------------------------------------------- evaluate
    def evaluate(self, data, batch_size: int = 256) -> float:
        """Per-item loss on ``data`` without side effects.

        Parameters, optimiser state, the global RNG state and train/eval modes
        are left exactly as they were.
        """
        with self._scope():
            return self._evaluate(data, batch_size)

    def _evaluate(self, data, batch_size: int) -> float:
        source = (
            data
            if isinstance(data, tuple) and data and isinstance(data[0], torch.Tensor)
            else _as_source(data, "data", self.device)
        )
        if self.optimizer is None:
            self._setup(tuple(t[:batch_size] for t in source))
        modes = (self.model.training, self.guide.training)
        self.model.eval()
        self.guide.eval()
        total, count = 0.0, 0
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(self.seed + 104729)
                for start in range(0, source[0].shape[0], batch_size):
                    batch = tuple(t[start : start + batch_size] for t in source)
                    total += float(self._batch_loss(batch)) * batch[0].shape[0]
                    count += batch[0].shape[0]
        finally:
            self.model.train(modes[0])
            self.guide.train(modes[1])
        return total / count

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue training exactly."""
        state = {
            "kind": "trainer",
            "epoch": self.epoch,
            "beta": self.beta,
            "seed": self.seed,
            "model": self.model.state_dict(),
            "guide": self.guide.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "history": self.history,
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "trainer":
            raise CheckpointError("checkpoint was not written by Trainer.save_checkpoint")
        self.model.load_state_dict(state["model"])
        self.guide.load_state_dict(state["guide"])
        if state["optimizer"] is not None:
            if self.optimizer is None:
                raise CheckpointError("call fit (or _setup) before loading optimiser state")
            self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.beta = float(state["beta"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        for cb, cb_state in zip(self.callbacks, state["callbacks"], strict=False):
            cb.load_state_dict(cb_state)
        # RNG states are CPU byte tensors, whatever map_location moved them to
        torch.set_rng_state(state["torch_rng"].cpu())
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
        self._seeded = True

    def save_checkpoint(self, path: str | Path) -> None:
        """Atomically write :meth:`state_dict` (rank 0 only under ``torchrun``)."""
        if self.dist.is_main:
            save_checkpoint(self.state_dict(), path)
        self.dist.barrier()

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint`."""
        self.load_state_dict(load_checkpoint(path, map_location=self.device))
