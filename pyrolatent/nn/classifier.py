"""A plain-torch image classifier: the y-encoder of the ss-rVAE, exportable.

:class:`ImageClassifier` is an ``nn.Module`` with no Pyro in it. It is the
y-encoder of :class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`.

* :func:`export_classifier` writes it as a ``torch.export`` archive (graph and
  weights, batch size dynamic). A process with only torch loads it with
  ``torch.export.load(path).module()`` (or :func:`load_classifier`); it needs
  neither pyrolatent nor Pyro, and gives the same predictions.
* :meth:`ImageClassifier.export_state` / :meth:`ImageClassifier.from_state`
  round-trip architecture and weights as plain containers, for pyrolatent's
  own checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..primitives import rotation_matrix_2d, warp_images
from .encoders import make_encoder

__all__ = ["ImageClassifier", "PoseCanonicalClassifier", "export_classifier", "load_classifier"]

KIND = "ImageClassifier"


class ImageClassifier(nn.Module):
    """Images ``(B, H, W)`` -> class logits ``(B, n_classes)``.

    Parameters
    ----------
    image_size : (int, int)
    n_classes : int
    hidden : sequence of int
        Encoder widths.
    activation : str
    encoder : {"mlp", "conv"}
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        n_classes: int,
        hidden: Sequence[int] = (128, 128),
        activation: str = "tanh",
        encoder: str = "mlp",
    ):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.config = {
            "image_size": [int(s) for s in image_size],
            "n_classes": int(n_classes),
            "hidden": [int(h) for h in hidden],
            "activation": activation,
            "encoder": encoder,
        }
        self.encoder = make_encoder(encoder, tuple(image_size), hidden, activation)
        self.head = nn.Linear(self.encoder.out_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` for images ``(B, H, W)``."""
        return self.head(self.encoder(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, n_classes)``."""
        return torch.softmax(self(x), dim=-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Most probable class ``(B,)`` int64."""
        return self(x).argmax(-1)

    def export_state(self) -> dict:
        """Architecture and weights as plain containers (for ``save_checkpoint``)."""
        return {
            "kind": KIND,
            "config": dict(self.config),
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
        }

    @classmethod
    def from_state(cls, state: dict) -> ImageClassifier:
        """Rebuild a classifier from :meth:`export_state` output."""
        if not isinstance(state, dict) or state.get("kind") != KIND:
            raise ValueError(f"state does not describe an {KIND} (kind={state.get('kind')!r})")
        cfg = state["config"]
        model = cls(
            image_size=tuple(cfg["image_size"]),
            n_classes=cfg["n_classes"],
            hidden=cfg["hidden"],
            activation=cfg["activation"],
            encoder=cfg["encoder"],
        )
        model.load_state_dict(state["state_dict"])
        model.eval()
        return model


class PoseCanonicalClassifier(nn.Module):
    """Classify images after undoing their inferred pose.

    ``logits = classifier(warp(x, T^{-1}))`` where ``T`` (angle, offset) is the
    posterior-mean pose of the ss-rVAE's class-free pose encoder, decoded by
    the pose heads' own ``mean_pose`` (so it cannot drift from the guide's
    parameterisation). The pose is detached: only the ELBO trains the pose
    encoder. Plain torch.

    Parameters
    ----------
    encoder : nn.Module
        Image features ``(B, H, W) -> (B, F)``.
    pose : nn.Module
        Has ``mean_pose(h) -> {"angle": (B,) radians, "offset": (B, 2) pixels}``
        (either key may be missing), e.g. :class:`~pyrolatent.guides.pose.PoseHeads`.
    classifier : ImageClassifier
    """

    def __init__(self, encoder: nn.Module, pose: nn.Module, classifier: ImageClassifier):
        super().__init__()
        self.encoder, self.pose, self.classifier = encoder, pose, classifier

    def canonicalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, H, W)`` moved back by their inferred pose."""
        with torch.no_grad():
            mean = self.pose.mean_pose(self.encoder(x))
            angle, offset = mean.get("angle"), mean.get("offset")
        if angle is None and offset is None:
            return x
        inv_angle = None if angle is None else -angle
        inv_offset = None
        if offset is not None:
            inv_offset = -offset
            if angle is not None:
                inv_offset = -(rotation_matrix_2d(-angle) @ offset.unsqueeze(-1)).squeeze(-1)
        return warp_images(x, angle=inv_angle, offset=inv_offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)``."""
        return self.classifier(self.canonicalize(x))


def export_classifier(classifier: nn.Module, path, image_size: tuple[int, int]):
    """Write ``classifier`` (images ``(B, H, W)`` -> logits) as a ``torch.export`` archive.

    Parameters
    ----------
    classifier : nn.Module
        Plain-torch module; exported in eval mode, on the CPU.
    path : path-like
        Destination (conventionally ``*.pt2``); written atomically.
    image_size : (int, int)
        ``(H, W)`` of the inputs.

    Returns
    -------
    pathlib.Path
    """
    import copy

    from ..io.atomic import atomic_write

    module = copy.deepcopy(classifier).cpu().eval()
    example = torch.zeros(2, *image_size)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    return atomic_write(path, lambda tmp: torch.export.save(program, tmp))


def load_classifier(path) -> nn.Module:
    """Load a classifier written by :func:`export_classifier`.

    Equivalent to ``torch.export.load(path).module()``: only torch is needed.
    The module maps images ``(B, H, W)`` to logits ``(B, n_classes)``.
    """
    try:
        return torch.export.load(path).module()
    except FileNotFoundError as exc:
        raise ValueError(f"classifier file {path} does not exist") from exc
