"""Labelled data of the ss-rVAE: label checks, the interleaved batch source, the classifier.

:class:`LabelledMixin` gives :class:`~pyrolatent.estimators.ssrvae.SSRVAE` its
label checks and its plain-torch classifier (``predict``, ``predict_proba``,
``export_classifier``); :class:`InterleavedBatches` is its Trainer batch source.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..checks import check_dtype
from ..infer.batches import Batches
from ..nn.classifier import export_classifier
from .base import numpy

__all__ = ["InterleavedBatches", "LabelledMixin"]


class InterleavedBatches:
    """Batch source of the ss-rVAE: labelled and unlabelled mini-batches in one step.

    An epoch has ``max(U, L)`` steps (``U``/``L``: unlabelled/labelled
    mini-batches); step ``i`` takes unlabelled batch ``i mod U`` and labelled
    batch ``i mod L`` and the Trainer minimises the sum of the two per-item
    losses in one optimiser step. Every labelled and every unlabelled item is
    therefore used at least once per epoch, whatever the ratio.

    Parameters
    ----------
    unlabelled : Batches or None
        Source of ``(x,)`` batches (shuffle salt 0).
    labelled : Batches
        Source of ``(x, y)`` batches (shuffle salt 1).
    """

    def __init__(self, unlabelled: Batches | None, labelled: Batches):
        self.unlabelled, self.labelled = unlabelled, labelled

    def prepare(self, device: torch.device) -> InterleavedBatches:
        if self.unlabelled is not None:
            self.unlabelled.prepare(device)
        self.labelled.prepare(device)
        return self

    def first(self) -> tuple[torch.Tensor, ...]:
        return (self.unlabelled or self.labelled).first()

    def epoch(self, order) -> list[list[tuple[torch.Tensor, ...]]]:
        ub = self.unlabelled.batches(order) if self.unlabelled is not None else []
        lb = self.labelled.batches(order)
        steps = max(len(ub), len(lb))
        return [([ub[i % len(ub)]] if ub else []) + [lb[i % len(lb)]] for i in range(steps)]


class LabelledMixin:
    """Label checks and the classifier of an estimator with ``guide.y_encoder``."""

    @property
    def n_classes(self) -> int:
        return self.config["n_classes"]

    def _labels(self, labels, n: int, name: str = "labels") -> torch.Tensor:
        arr = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
        check_dtype(arr.dtype, name, allow_bool=False)
        if arr.ndim != 1:
            raise ValueError(f"{name}: expected 1-D class indices, got shape {arr.shape}")
        if arr.shape[0] != n:
            raise ValueError(f"{name}: {arr.shape[0]} labels for {n} images; lengths must match")
        if not (np.issubdtype(arr.dtype, np.integer) or np.all(np.mod(arr, 1) == 0)):  # NaN too
            raise ValueError(f"{name}: class indices must be integers")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.n_classes)
        if bad.any():
            raise ValueError(
                f"{name}: {int(bad.sum())} labels outside [0, {self.n_classes}) "
                f"(min {arr.min()}, max {arr.max()})"
            )
        return torch.from_numpy(arr).to(self.device)

    def _labelled(self, labelled_images, labels) -> tuple[torch.Tensor, torch.Tensor]:
        if labelled_images is None or labels is None:
            raise ValueError("give both labelled_images and labels")
        if np.size(labelled_images) == 0 or np.size(labels) == 0:
            raise ValueError("the labelled set is empty: give at least one labelled image")
        x = self._images(labelled_images, "labelled_images")
        y = self._labels(labels, x.shape[0])
        missing = sorted(set(range(self.n_classes)) - set(y.tolist()))
        if missing:
            warnings.warn(
                f"classes {missing} have no labelled examples; the model can still "
                "assign them only through the unlabelled data",
                stacklevel=3,
            )
        return x, y

    # --------------------------------------------------------------- predict
    @torch.no_grad()
    def _proba_tensor(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        clf = self.guide.y_encoder
        was_training = clf.training
        clf.eval()
        try:
            out = [
                torch.softmax(clf(x[i : i + batch_size]), dim=-1)
                for i in range(0, x.shape[0], batch_size)
            ]
        finally:
            clf.train(was_training)
        return torch.cat(out)

    def _predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return self._proba_tensor(x).argmax(-1)

    def predict_proba(self, images, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities ``q(y | x)``, ``(N, n_classes)``."""
        return numpy(self._proba_tensor(self._images(images), batch_size))

    def predict(self, images, batch_size: int = 1024) -> np.ndarray:
        """Most probable class, ``(N,)`` int64."""
        return self.predict_proba(images, batch_size).argmax(-1)

    def export_classifier(self, path, format: str | None = None) -> Path:
        """Write the y-encoder as a standalone file: images ``(B, H, W)`` -> logits.

        By default a ``safetensors`` file (weights) with the architecture as JSON
        in its header, which :func:`pyrolatent.nn.classifier.load_classifier`
        rebuilds without unpickling anything and without Pyro, with the same
        predictions as :meth:`predict`. ``format="pt2"`` (or a ``.pt2`` path)
        writes a ``torch.export`` archive instead; see
        :func:`~pyrolatent.nn.classifier.export_classifier` for why loading one
        needs ``allow_pt2=True``.
        """
        return export_classifier(self.guide.y_encoder, path, self.image_size, format=format)

    @property
    def classifier(self):
        """The y-encoder, a plain-torch ``nn.Module`` (images -> logits)."""
        return self.guide.y_encoder
