"""A plain-torch image classifier: the y-encoder of the ss-rVAE, exportable.

:class:`ImageClassifier` is an ``nn.Module`` with no Pyro in it. It is the
y-encoder of :class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`, and
:meth:`ImageClassifier.export_state` / :func:`load_classifier` move it to a
process that has only torch: the file is a dict of plain containers and tensors
(``kind``, ``config``, ``state_dict``) readable with
``torch.load(path, weights_only=True)``; importing this module imports only
torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .encoders import make_encoder

__all__ = ["ImageClassifier", "load_classifier"]

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


def load_classifier(path, map_location="cpu") -> ImageClassifier:
    """Load a classifier exported by ``SSRVAE.export_classifier`` (torch only).

    The file is read with ``torch.load(weights_only=True)``, which never runs
    code from it. The returned module is in eval mode.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise ValueError(f"classifier file {path} does not exist") from exc
    return ImageClassifier.from_state(state)
