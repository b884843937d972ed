"""Image encoders that turn ``(B, H, W)`` images into feature vectors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .mlp import MLP, make_activation

__all__ = ["MLPEncoder", "ConvEncoder", "make_encoder"]


class MLPEncoder(nn.Module):
    """Flatten, then an MLP. Output ``(B, hidden[-1])``."""

    def __init__(self, image_size: tuple[int, int], hidden: Sequence[int], activation: str):
        super().__init__()
        self.net = MLP(image_size[0] * image_size[1], hidden, activation=activation)
        self.out_features = self.net.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1))


class ConvEncoder(nn.Module):
    """Strided 3x3 convolutions, then an MLP. Output ``(B, hidden[-1])``.

    Parameters
    ----------
    image_size : (int, int)
    hidden : sequence of int
        Widths of the MLP after the convolutions.
    activation : str
    channels : sequence of int
        Output channels of each stride-2 convolution.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        hidden: Sequence[int],
        activation: str,
        channels: Sequence[int] = (16, 32, 64),
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, h, w = 1, image_size[0], image_size[1]
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), make_activation(activation)]
            c_in, h, w = c, (h + 1) // 2, (w + 1) // 2
        self.conv = nn.Sequential(*layers)
        self.mlp = MLP(c_in * h * w, hidden, activation=activation)
        self.out_features = self.mlp.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x.unsqueeze(1))
        return self.mlp(f.reshape(f.shape[0], -1))


def make_encoder(
    kind: str, image_size: tuple[int, int], hidden: Sequence[int], activation: str
) -> nn.Module:
    """``kind`` is ``"mlp"`` or ``"conv"``.

    The module's ``config`` holds these arguments (JSON-safe), so that an
    exported classifier can rebuild it (:func:`pyrolatent.nn.classifier.export_classifier`).
    """
    if kind == "mlp":
        module = MLPEncoder(image_size, hidden, activation)
    elif kind == "conv":
        module = ConvEncoder(image_size, hidden, activation)
    else:
        raise ValueError(f"unknown encoder {kind!r}; choose 'mlp' or 'conv'")
    module.config = {
        "kind": kind,
        "image_size": [int(s) for s in image_size],
        "hidden": [int(h) for h in hidden],
        "activation": activation,
    }
    return module
