"""The plain-torch image classifier of the ss-rVAE (its y-encoder), with no Pyro in it.

Re-exported by :mod:`pyrolatent.nn.classifier`, which also writes and reads it as a file.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..primitives import particle_centre
from .encoders import make_encoder
from .pooled_encoder import RotationPooledEncoder, he_init

__all__ = ["ImageClassifier", "KIND"]

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
    views : int
        ``1`` (default): the encoder sees the image as it is. ``> 1``: a
        rotation-invariant classifier: each image is re-centred on its particle
        (:func:`~pyrolatent.primitives.particle_centre`, robust to background
        noise) and the features of ``views`` copies turned by ``2 pi j / views``
        are averaged (:class:`~pyrolatent.nn.pooled_encoder.RotationPooledEncoder`,
        ReLU with He initialisation, ``activation`` ignored). It needs no pose estimate, so
        it cannot inherit a pose encoder's errors on images unlike its training set.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        n_classes: int,
        hidden: Sequence[int] = (128, 128),
        activation: str = "tanh",
        encoder: str = "mlp",
        views: int = 1,
    ):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if int(views) < 1:
            raise ValueError(f"views must be at least 1, got {views}")
        self.config = {
            "image_size": [int(s) for s in image_size],
            "n_classes": int(n_classes),
            "hidden": [int(h) for h in hidden],
            "activation": activation,
            "encoder": encoder,
            "views": int(views),
        }
        if views > 1:
            base = he_init(make_encoder(encoder, tuple(image_size), hidden, "relu"))
            self.encoder = RotationPooledEncoder(base, int(views))
        else:
            self.encoder = make_encoder(encoder, tuple(image_size), hidden, activation)
        self.head = nn.Linear(self.encoder.out_features, n_classes)

    @property
    def views(self) -> int:
        """Turned copies averaged per image (1: not rotation-pooled)."""
        return self.config["views"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` for images ``(B, H, W)``."""
        if self.views > 1:
            return self.head(self.encoder(x, centre=particle_centre(x.detach())))
        return self.head(self.encoder(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, n_classes)``."""
        return torch.softmax(self(x), dim=-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Most probable class ``(B,)`` int64."""
        return self(x).argmax(-1)

    def export_config(self) -> dict:
        """The JSON-safe constructor arguments (see :func:`export_classifier`)."""
        return dict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> ImageClassifier:
        """A new (untrained) classifier from :meth:`export_config` output."""
        return cls(
            image_size=tuple(config["image_size"]),
            n_classes=config["n_classes"],
            hidden=config["hidden"],
            activation=config["activation"],
            encoder=config["encoder"],
            views=config.get("views", 1),
        )

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
        model = cls.from_config(state["config"])
        model.load_state_dict(state["state_dict"])
        model.eval()
        return model
