"""One SVI trainer for every Pyro model/guide pair of pyrolatent.

The trainer owns the epoch loop, mini-batches, the progress bar, the history, side-effect-free
evaluation, callbacks, atomic checkpoints with exact resume, seeding, the device policy and
data-parallel training under ``torchrun``. Models and guides are ``torch.nn.Module`` objects
(``PyroModule`` in practice) whose parameters are their ``parameters()``; mini-batches are
passed to them positionally: ``model(*batch)`` and ``guide(*batch)``. The objective is any Pyro
ELBO; its ``differentiable_loss`` drives a plain ``torch.optim`` optimiser, so the optimiser
state is an ordinary ``state_dict`` that checkpoints cleanly. The data come as a batch source
(:mod:`pyrolatent.infer.batches`): each epoch is a list of optimiser steps, each step a list of
mini-batches whose per-item losses are summed; a plain tensor or tuple is wrapped in
:class:`~pyrolatent.infer.batches.Batches`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import pyro
import torch
from pyro.infer import Trace_ELBO
from tqdm.auto import tqdm

from ..checks import check_count, check_number
from ..device import configure_cpu, resolve_device
from ..io.checkpoint import CheckpointError, check_state_dict, load_checkpoint, save_checkpoint
from .batches import Batches, EpochOrder, as_source
from .callbacks import Callback
from .distributed import DistributedContext
from .rng import LocalRNG
from .scaling import LatentScaleMessenger

__all__ = ["Trainer"]


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
        Seeds the trainer's own random stream (the ELBO's samples, lazily built
        guides) and the shuffling; the caller's global random state is never
        read or changed (see :class:`~pyrolatent.infer.rng.LocalRNG`).
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
    progress : bool
        Show the progress bar.
    quiet : bool, optional
        Deprecated: ``progress=not quiet``.

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
        progress: bool = True,
        quiet: bool | None = None,
    ):
        lr, weight_decay = check_number(lr, "lr", low=0, low_open=True), float(weight_decay)
        checkpoint_every = check_count(checkpoint_every, "checkpoint_every")
        clip_norm = None if clip_norm is None else check_number(clip_norm, "clip_norm", low=0)
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
        if quiet is not None:
            warnings.warn("quiet= is deprecated; use progress=", DeprecationWarning, stacklevel=2)
            progress = not quiet
        self.progress = bool(progress)
        self.rng = LocalRNG(seed, self.device)
        self.dist = DistributedContext(self.device)
        self.history: dict[str, list] = {"epoch": [], "loss": []}
        self.beta, self.epoch, self.stop_training = 1.0, 0, False
        self.optimizer: torch.optim.Optimizer | None = None
        # PyroModule parameters are mirrored in Pyro's global parameter store under their
        # attribute names; two models with the same names (two NMFs of different sizes, two
        # AutoGuides) would overwrite each other, so each trainer has a scope of its own.
        self._param_scope: dict = {"params": {}, "constraints": {}}
        self._in_scope = False

    @contextmanager
    def _scope(self):
        """This trainer's own Pyro parameter-store scope (re-entrant)."""
        if self._in_scope:
            yield
            return
        with pyro.get_param_store().scope(self._param_scope):
            self._in_scope = True
            try:
                yield
            finally:
                self._in_scope = False

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

    def _batch_loss(self, batch, differentiable: bool = True):
        """Per-item loss of one mini-batch: a tensor to differentiate, or (evaluation) a float."""
        model, guide = self.model, self.guide
        if self.beta != 1.0:
            model, guide = self._scaled(model), self._scaled(guide)
        loss = self.loss.differentiable_loss if differentiable else self.loss.loss
        return loss(model, guide, *batch) / batch[0].shape[0]

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        data,
        epochs: int | None = None,
        batch_size: int = 100,
        val_data=None,
        resume: bool = True,
        until_epoch: int | None = None,
    ) -> dict[str, list]:
        """Train ``epochs`` more epochs, or up to epoch ``until_epoch`` in total.

        Parameters
        ----------
        data : batch source, tensor, array or tuple of them
            A batch source (see :mod:`pyrolatent.infer.batches`), or training
            data whose first dimension indexes items (wrapped in
            :class:`~pyrolatent.infer.batches.Batches` with ``batch_size``).
        epochs : int, optional
            Epochs to train on top of those this trainer has done. The target
            (``epoch + epochs``) is fixed before a checkpoint is read, so a
            fresh trainer that resumes an interrupted ``fit(epochs=N)`` stops
            at epoch ``N``, exactly where the uninterrupted run stops.
        batch_size : int
            Items per mini-batch (per process under ``torchrun``) for plain
            data, and for the validation loss.
        val_data : tensor, array or tuple, optional
            Evaluated after every epoch without touching the parameters.
        resume : bool
            Continue from ``checkpoint_path`` when that file exists.
        until_epoch : int, optional
            Instead of ``epochs``: train until this many epochs are done in all.

        Returns
        -------
        dict of list
            The history.
        """
        if (epochs is None) == (until_epoch is None):
            raise ValueError("give exactly one of epochs (more epochs) and until_epoch (total)")
        epochs = None if epochs is None else check_count(epochs, "epochs", low=0)
        until_epoch = (
            None if until_epoch is None else check_count(until_epoch, "until_epoch", low=0)
        )
        batch_size = check_count(batch_size, "batch_size")
        target = self.epoch + epochs if epochs is not None else until_epoch
        source = data if hasattr(data, "epoch") else Batches(data, batch_size)
        configure_cpu()
        with self._scope(), self.rng.active():
            return self._fit(source.prepare(self.device), target, batch_size, val_data, resume)

    def _step(self, batches, epoch: int, i: int) -> float:
        """One optimiser step on the summed per-item losses of ``batches``."""
        loss = sum(self._batch_loss(b) for b in batches)
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
        return float(loss.detach())

    def _fit(self, source, target: int, batch_size: int, val_data, resume) -> dict[str, list]:
        val = as_source(val_data, "val_data", self.device)
        self._setup(source.first())
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.load_checkpoint(self.checkpoint_path)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        self.stop_training = False
        bar = None  # one bar over batches (known with the first epoch's steps)
        try:
            while self.epoch < target and not self.stop_training:
                epoch = self.epoch
                for cb in self.callbacks:
                    cb.on_epoch_start(self, epoch)
                self.model.train()
                self.guide.train()
                steps = source.epoch(EpochOrder(self.seed, epoch, self.dist))
                if bar is None:
                    bar = tqdm(
                        total=target * len(steps),
                        initial=epoch * len(steps),
                        unit="batch",
                        disable=not self.progress or not self.dist.is_main,
                    )
                bar.set_description(f"training epoch {epoch + 1}/{target}")
                losses = []
                for i, batches in enumerate(steps):
                    losses.append(self._step(batches, epoch, i))
                    bar.update(1)
                    bar.set_postfix(loss=f"{sum(losses) / len(losses):.4g}", refresh=False)
                total, count = self.dist.sum([sum(losses), float(len(losses))])
                logs = {"epoch": epoch, "loss": total / max(count, 1)}
                if val:
                    logs["val_loss"] = self.evaluate(val, batch_size=batch_size)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, epoch, logs)
                self._record(logs)
                self.epoch = epoch + 1
                if self.checkpoint_path is not None and (
                    self.epoch % self.checkpoint_every == 0 or self.epoch >= target
                ):
                    self.save_checkpoint(self.checkpoint_path)
                for cb in self.callbacks:
                    cb.on_epoch_recorded(self, epoch)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "epoch"})
        finally:
            if bar is not None:
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
            else as_source(data, "data", self.device)
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
                    total += float(self._batch_loss(batch, False)) * batch[0].shape[0]
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
            "rng": self.rng.state_dict(),
        }
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
        if "rng" in state:
            self.rng.load_state_dict(state["rng"])
        else:  # checkpoints written before LocalRNG
            self.rng.load_state_dict({"cpu": state["torch_rng"], "cuda": state.get("cuda_rng")})

    def save_checkpoint(self, path: str | Path) -> None:
        """Atomically write :meth:`state_dict` (rank 0 only under ``torchrun``)."""
        if self.dist.is_main:
            save_checkpoint(self.state_dict(), path)
        self.dist.barrier()

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` (``CheckpointError``: what is
        wrong, e.g. weights that do not fit this model; checked before anything is loaded)."""
        state = load_checkpoint(path, map_location=self.device)
        if state.get("kind") != "trainer":
            raise CheckpointError(f"checkpoint {path} was not written by Trainer.save_checkpoint")
        check_state_dict(self.model, state.get("model"), path, "model")
        check_state_dict(self.guide, state.get("guide"), path, "guide")
        self.load_state_dict(state)
