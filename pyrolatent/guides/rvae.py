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
from ..models.pose import parse_invariances
from ..models.pose_grid import grid_step
from ..models.sites import ANGLE_JITTER, OFFSET, Z
from ..nn.encoders import make_encoder
from ..nn.pooled_encoder import RotationPooledEncoder, he_init
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
        Of the amortised encoder; with ``pose="grid"`` the offset encoder uses
        ``offset_activation`` and the content encoder ``"relu"``, both
        He-initialised.
    encoder : {"mlp", "conv"}
    offset_prior_scale : float
        Pixels (matches the model's default offset prior).
    angle_symmetry : int
        Rotational symmetry order of the objects (see
        :class:`~pyrolatent.guides.pose.PoseHeads`).
    pose : {"amortized", "grid"}
        ``"grid"`` pairs the model's rotation grid (``pose="grid"``): no angle
        head (the model sums the grid index exactly), the grid jitter drawn from
        its prior, and ``z`` from a :class:`~pyrolatent.nn.pooled_encoder.RotationPooledEncoder`
        of the image re-centred by the offset posterior's mean (no gradient flows
        through the re-centring: the offset head learns from the likelihood).
    pose_grid : int
        ``K`` of the model's grid (``pose="grid"``).
    views : int
        Turned copies the content encoder averages (``pose="grid"``).
    offset_activation : str
        Of the offset encoder with ``pose="grid"``.
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
        pose: str = "amortized",
        pose_grid: int = 8,
        views: int = 8,
        offset_activation: str = "leaky_relu",
    ):
        super().__init__()
        grid = pose == "grid" and "rotation" in parse_invariances(invariances)
        # with He initialisation (see RotationPooledEncoder); the offset encoder's units leak
        # below zero: with plain ReLUs every unit of it died on the demo's aligned crops (all
        # three demo fits of 2026-12-07: each image got the same offset, the particles were
        # drawn 1.3 px off along their axis and recon_ratio was 1.10-1.42; 0.73 leaky)
        self.encoder = make_encoder(
            encoder, tuple(image_size), hidden, offset_activation if grid else activation
        )
        self.image_size = tuple(int(s) for s in image_size)
        width = self.encoder.out_features
        invariances = parse_invariances(invariances)
        self.grid_step = None
        if grid:
            self.grid_step = grid_step(pose_grid, angle_symmetry)
            invariances = tuple(i for i in invariances if i != "rotation")
            self.z_encoder = RotationPooledEncoder(
                he_init(make_encoder(encoder, tuple(image_size), hidden, "relu")), views
            )
            he_init(self.encoder)
            width_z = self.z_encoder.out_features
        else:
            self.z_encoder, width_z = None, width
        self.z_head = nn.Linear(width_z, 2 * latent_dim)
        self.pose = PoseHeads(width, invariances, offset_prior_scale, angle_symmetry)

    def posteriors(self, x: torch.Tensor) -> dict[str, dist.Distribution]:
        """All posteriors for images ``x (B, H, W)``, batch shape ``(B,)``."""
        h = self.encoder(x)
        out = self.pose.posteriors(h)
        if self.z_encoder is not None:
            h = self.z_encoder(x, centre=out[OFFSET].mean.detach() if OFFSET in out else None)
            low = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
            out[ANGLE_JITTER] = dist.Uniform(low, low + self.grid_step)
        loc, raw = self.z_head(h).chunk(2, dim=-1)
        out[Z] = dist.Normal(loc, F.softplus(raw) + 1e-4).to_event(1)
        return out

    def forward(self, x: torch.Tensor) -> None:
        posts = self.posteriors(check_observed(x, self.image_size))
        with pyro.plate("data", x.shape[0]):
            for name, d in posts.items():
                pyro.sample(name, d)
