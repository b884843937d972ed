"""Classification metrics and the validation-accuracy callback."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .callbacks import Callback

__all__ = ["accuracy", "confusion_matrix", "ValidationAccuracy"]


def _as_labels(a, name: str) -> np.ndarray:
    arr = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class indices, got shape {arr.shape}")
    return arr.astype(np.int64)


def accuracy(predicted, true) -> float:
    """Fraction of ``predicted`` equal to ``true`` (both ``(N,)`` class indices)."""
    p, t = _as_labels(predicted, "predicted"), _as_labels(true, "true")
    if p.shape != t.shape or p.size == 0:
        raise ValueError(
            f"predicted and true must be non-empty and equally long, got {p.size}, {t.size}"
        )
    return float((p == t).mean())


def confusion_matrix(predicted, true, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of items of true class ``i`` predicted as ``j``, ``(K, K)`` int64."""
    p, t = _as_labels(predicted, "predicted"), _as_labels(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"predicted and true must be equally long, got {p.size}, {t.size}")
    for name, a in (("predicted", p), ("true", t)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name}: class indices must lie in [0, {n_classes})")
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (t, p), 1)
    return out


class ValidationAccuracy(Callback):
    """Add the accuracy on held-out labelled data to each epoch's history.

    Parameters
    ----------
    predict : callable
        ``images (N, H, W) tensor -> (N,)`` predicted classes; it must not
        change parameters or RNG state (e.g. ``SSRVAE._predict_tensor``).
    images : torch.Tensor
        ``(N, H, W)`` validation images.
    labels : torch.Tensor
        ``(N,)`` true classes.
    key : str
        History key.
    """

    def __init__(
        self,
        predict: Callable[[torch.Tensor], torch.Tensor],
        images: torch.Tensor,
        labels: torch.Tensor,
        key: str = "val_accuracy",
    ):
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images and labels must be equally long, got {images.shape[0]}, {labels.shape[0]}"
            )
        self.predict, self.images, self.labels, self.key = predict, images, labels, key

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        logs[self.key] = accuracy(self.predict(self.images), self.labels)
