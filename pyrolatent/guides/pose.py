"""Amortised variational posteriors of the pose sites (angle, offset, scale).

* angle: :class:`~pyrolatent.distributions.ProjectedNormalAngle` (circular,
  reparameterised) whose concentration vector the encoder emits;
* offset: diagonal Normal, pixels;
* scale: LogNormal.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F

from ..distributions import ProjectedNormalAngle
from ..models.pose import parse_invariances
from ..models.sites import ANGLE, OFFSET, SCALE
from ..nn.classifier import PoseMean

__all__ = ["PoseHeads", "IDENTITY_CONCENTRATION"]

#: Norm of the initial angle concentration with ``identity_init`` (spread ~0.2 rad).
IDENTITY_CONCENTRATION = 5.0
IDENTITY_RAW_SCALE = -3.0


class PoseHeads(PoseMean):
    """Linear heads from encoder features to pose posteriors.

    The heads and their posterior-mean decoding (``mean_pose``, used by the
    exported classifier) are :class:`~pyrolatent.nn.classifier.PoseMean`'s;
    this class adds the Pyro posteriors.

    Parameters
    ----------
    in_features : int
        Width of the encoder features.
    invariances : iterable of str
    offset_prior_scale : float
        Pixels; sets the natural unit of the offset head.
    angle_symmetry : int
        Rotational symmetry order n of the objects: the angle posterior lives
        on ``[-pi/n, pi/n)`` and the encoder predicts the direction of
        ``n * angle``, which is a continuous function of the image.
    identity_init : bool
        Start every pose posterior concentrated at the identity, as a spatial
        transformer's localisation net is initialised: the heads' weights are
        zero and their biases give angle 0 with spread about
        ``1 / IDENTITY_CONCENTRATION`` radians (0.2), offset 0 with a standard
        deviation of 0.05 offset units, scale 1. Default ``False`` (PyTorch's
        default initialisation: a nearly uniform initial angle posterior).
    """

    def __init__(
        self,
        in_features: int,
        invariances,
        offset_prior_scale: float = 2.0,
        angle_symmetry: int = 1,
        identity_init: bool = False,
    ):
        super().__init__(in_features, parse_invariances(invariances), offset_prior_scale,
                         angle_symmetry)  # fmt: skip
        if identity_init:
            self.reset_to_identity()

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        """Zero the heads' weights; biases give the identity pose (see ``identity_init``)."""
        # softplus(IDENTITY_RAW_SCALE) ~ 0.049: a small initial posterior spread
        biases = {
            "angle": [IDENTITY_CONCENTRATION, 0.0],
            "offset": [0.0, 0.0, IDENTITY_RAW_SCALE, IDENTITY_RAW_SCALE],
            "scale": [0.0, IDENTITY_RAW_SCALE],
        }
        for name, bias in biases.items():
            head = getattr(self, name, None)
            if head is not None:
                head.weight.zero_()
                head.bias.copy_(torch.tensor(bias, dtype=head.bias.dtype))

    def posteriors(self, h: torch.Tensor) -> dict[str, dist.Distribution]:
        """Posterior distributions of the active pose sites, batch ``(B,)``."""
        out = {}
        if "rotation" in self.invariances:
            out[ANGLE] = ProjectedNormalAngle(self.angle(h), symmetry=self.angle_symmetry)
        if "translation" in self.invariances:
            loc, raw = self.offset(h).chunk(2, dim=-1)
            out[OFFSET] = dist.Normal(
                loc * self.offset_unit, F.softplus(raw) * self.offset_unit + 1e-4
            ).to_event(1)
        if "scale" in self.invariances:
            loc, raw = self.scale(h).unbind(-1)
            out[SCALE] = dist.LogNormal(0.1 * loc, 0.1 * F.softplus(raw) + 1e-4)
        return out

    def sample(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sample every active pose site; call inside the data plate."""
        return {name: pyro.sample(name, d) for name, d in self.posteriors(h).items()}

    @staticmethod
    def summary(posteriors: dict[str, dist.Distribution]) -> dict[str, dict[str, torch.Tensor]]:
        """``loc``/``scale`` of each pose posterior (angle in radians, offset in pixels)."""
        out = {}
        if ANGLE in posteriors:
            d = posteriors[ANGLE]
            out[ANGLE] = {"loc": d.mean_direction, "scale": d.circular_scale}
        if OFFSET in posteriors:
            base = posteriors[OFFSET].base_dist
            out[OFFSET] = {"loc": base.loc, "scale": base.scale}
        if SCALE in posteriors:
            d = posteriors[SCALE]
            out[SCALE] = {"loc": d.loc.exp(), "scale": d.scale}
        return out
