"""Trainer callbacks: KL (beta) and learning-rate schedules, and early stopping.

A callback may implement any of ``on_fit_start(trainer)``,
``on_epoch_start(trainer, epoch)`` and ``on_epoch_end(trainer, epoch, logs)``,
where ``logs`` is the dict of this epoch's numbers (it may add entries, which
go into the history). Callbacks with state implement ``state_dict`` and
``load_state_dict`` so that resumed runs continue exactly.
"""

from __future__ import annotations

import math

from ..checks import check_count, check_number

__all__ = ["Callback", "BetaSchedule", "EarlyStopping", "LearningRateDecay"]


class Callback:
    """Base class; every hook is optional."""

    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer, epoch: int) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_epoch_recorded(self, trainer, epoch: int) -> None:
        """After the epoch is in ``trainer.history`` and counted (and checkpointed): the place
        to save a whole estimator that holds the trainer."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class BetaSchedule(Callback):
    """Anneal the KL weight ``beta`` from ``start`` to ``end``.

    Parameters
    ----------
    start, end : float
        Weights at epoch 0 and from ``warmup_epochs`` on.
    warmup_epochs : int
        Length of the ramp in epochs.
    shape : {"linear", "cosine"}
        Ramp shape.
    """

    def __init__(
        self, start: float = 0.0, end: float = 1.0, warmup_epochs: int = 10, shape: str = "linear"
    ):
        start, end = check_number(start, "start"), check_number(end, "end")
        warmup_epochs = check_count(warmup_epochs, "warmup_epochs", low=1)
        if shape not in ("linear", "cosine"):
            raise ValueError(f"shape must be 'linear' or 'cosine', got {shape!r}")
        self.start, self.end, self.warmup_epochs, self.shape = start, end, warmup_epochs, shape

    def value(self, epoch: int) -> float:
        t = min(epoch / self.warmup_epochs, 1.0)
        if self.shape == "cosine":
            t = 0.5 - 0.5 * math.cos(math.pi * t)
        return self.start + (self.end - self.start) * t

    def on_epoch_start(self, trainer, epoch: int) -> None:
        trainer.beta = self.value(epoch)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        logs["beta"] = trainer.beta


class LearningRateDecay(Callback):
    """Decay the Adam learning rate geometrically from the Trainer's ``lr``.

    At epoch ``e`` the rate is ``lr * final_factor ** min(e / epochs, 1)``: a
    straight line in log scale down to ``lr * final_factor`` at ``epochs``,
    then constant. Useful where Monte-Carlo gradient noise keeps a constant
    rate from settling (mean-field SVI). The rate depends on the epoch only,
    so resumed runs continue exactly.

    Parameters
    ----------
    epochs : int
        Length of the decay, in epochs.
    final_factor : float
        Final rate as a fraction of the initial one, in ``(0, 1]``.
    """

    def __init__(self, epochs: int, final_factor: float = 0.01):
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if not 0 < final_factor <= 1:
            raise ValueError(f"final_factor must be in (0, 1], got {final_factor}")
        self.epochs, self.final_factor = epochs, final_factor

    def value(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.final_factor ** min(epoch / self.epochs, 1.0)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        lr = self.value(trainer.lr, epoch)
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        logs["lr"] = trainer.optimizer.param_groups[0]["lr"]


class EarlyStopping(Callback):
    """Stop when a monitored number has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        History key, e.g. ``"val_loss"`` or ``"loss"``.
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        Smallest decrease that counts as an improvement.
    mode : {"min", "max"}
        Whether lower or higher is better.
    """

    def __init__(
        self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0, mode="min"
    ):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        patience = check_count(patience, "patience", low=0)
        min_delta = check_number(min_delta, "min_delta", low=0)
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best = math.inf
        self.wait = 0

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which is not among {sorted(logs)}"
            )
        value = logs[self.monitor] if self.mode == "min" else -logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_training = True

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state["best"], state["wait"]
