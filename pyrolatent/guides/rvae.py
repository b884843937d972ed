"""Amortised guide of the rotationally invariant VAE."""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from torch import nn

from ..checks import check_observed
from ..models.sites import Z
from ..nn.encoders import make_encoder
from .pose import PoseHeads

__all__ = ["RVAEGuide"]


class RVAEGuide(PyroModule):
    """q(angle, offset, scale, z | x) from one shared image encoder.

    Parameters
    ----------
    image_size : (int, int)
    latent_dim : int
    invariances : iterable of str
    hidden : sequence of int
        Encoder widths.
    activation : str
    encoder : {"mlp", "conv"}
    offset_prior_scale : float
        Pixels (matches the model's default offset prior).
    angle_symmetry : int
        Rotational symmetry order of the objects (see
        :class:`~pyrolatent.guides.pose.PoseHeads`).
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        latent_dim: int = 2,
        invariances=("rotation", "translation"),
        hidden: Sequence[int] = (128, 128),
        activation: str = "tanh",
        encoder: str = "mlp",
        offset_prior_scale: float = 2.0,
        angle_symmetry: int = 1,
    ):
        super().__init__()
        self.encoder = make_encoder(encoder, tuple(image_size), hidden, activation)
        self.image_size = tuple(int(s) for s in image_size)
        width = self.encoder.out_features
        self.z_head = nn.Linear(width, 2 * latent_dim)
        self.pose = PoseHeads(width, invariances, offset_prior_scale, angle_symmetry)

    def posteriors(self, x: torch.Tensor) -> dict[str, dist.Distribution]:
        """All posteriors for images ``x (B, H, W)``, batch shape ``(B,)``."""
        h = self.encoder(x)
        loc, raw = self.z_head(h).chunk(2, dim=-1)
        out = self.pose.posteriors(h)
        out[Z] = dist.Normal(loc, F.softplus(raw) + 1e-4).to_event(1)
        return out

    def forward(self, x: torch.Tensor) -> None:
        posts = self.posteriors(check_observed(x, self.image_size))
        with pyro.plate("data", x.shape[0]):
            for name, d in posts.items():
                pyro.sample(name, d)
