"""Pose latents (angle, offset, scale) shared by the rVAE family of models.

Site names are module constants. Priors are arguments: a Pyro distribution
(batch shape ``()``; it is expanded over the items) or a callable
``prior(n) -> Distribution`` with batch shape ``(n,)``. Defaults:

* ``angle``: uniform on the circle (:class:`~pyrolatent.distributions.CircularUniform`),
  radians;
* ``offset``: ``Normal(0, offset_prior_scale)`` on ``(dx, dy)``, pixels;
* ``scale``: ``LogNormal(0, 0.1)``, dimensionless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..distributions import CircularUniform
from .sites import ANGLE, OFFSET, SCALE

__all__ = [
    "ANGLE",
    "OFFSET",
    "SCALE",
    "INVARIANCES",
    "parse_invariances",
    "expand_prior",
    "PosePrior",
]

INVARIANCES = ("rotation", "translation", "scale")
_SHORT = {"r": "rotation", "t": "translation", "s": "scale"}

PriorLike = dist.Distribution | Callable[[int], dist.Distribution]


def parse_invariances(invariances: Iterable[str]) -> tuple[str, ...]:
    """Normalise invariance names (``"r"``/``"t"``/``"s"`` accepted), in canonical order."""
    names = set()
    for inv in invariances:
        full = _SHORT.get(inv, inv)
        if full not in INVARIANCES:
            raise ValueError(f"unknown invariance {inv!r}; choose from {INVARIANCES}")
        names.add(full)
    return tuple(i for i in INVARIANCES if i in names)


def expand_prior(prior: PriorLike, n: int, event_shape: tuple[int, ...], site: str):
    """Batch a prior over ``n`` items and check its event shape."""
    d = prior(n) if not isinstance(prior, dist.Distribution) and callable(prior) else prior
    if not isinstance(d, dist.Distribution):
        raise ValueError(f"prior of {site!r} must be a Pyro distribution or a callable")
    if tuple(d.event_shape) != tuple(event_shape):
        raise ValueError(
            f"prior of {site!r} must have event_shape {tuple(event_shape)}, "
            f"got {tuple(d.event_shape)} (use .to_event(1) for vector sites)"
        )
    if tuple(d.batch_shape) != (n,):
        d = d.expand(torch.Size([n]))
    return d


class PosePrior(nn.Module):
    """Samples the pose sites that the chosen invariances switch on.

    Parameters
    ----------
    invariances : iterable of str
    angle_prior, offset_prior, scale_prior : Distribution or callable, optional
        Custom priors (see module docstring); ``None`` gives the default.
    offset_prior_scale : float
        Standard deviation of the default offset prior, pixels.
    """

    def __init__(
        self,
        invariances: Iterable[str],
        angle_prior: PriorLike | None = None,
        offset_prior: PriorLike | None = None,
        scale_prior: PriorLike | None = None,
        offset_prior_scale: float = 2.0,
    ):
        super().__init__()
        self.invariances = parse_invariances(invariances)
        if offset_prior_scale <= 0:
            raise ValueError(f"offset_prior_scale must be positive, got {offset_prior_scale}")
        self.register_buffer("_offset_scale", torch.tensor(float(offset_prior_scale)))
        self.register_buffer("_zero", torch.tensor(0.0))
        self.angle_prior, self.offset_prior, self.scale_prior = (
            angle_prior,
            offset_prior,
            scale_prior,
        )

    def angle_dist(self, n: int):
        if self.angle_prior is None:
            return CircularUniform(torch.Size([n]))
        return expand_prior(self.angle_prior, n, (), ANGLE)

    def offset_dist(self, n: int):
        if self.offset_prior is None:
            loc = self._zero.expand(n, 2)
            return dist.Normal(loc, self._offset_scale.expand(n, 2)).to_event(1)
        return expand_prior(self.offset_prior, n, (2,), OFFSET)

    def scale_dist(self, n: int):
        if self.scale_prior is None:
            return dist.LogNormal(self._zero.expand(n), (self._zero + 0.1).expand(n))
        return expand_prior(self.scale_prior, n, (), SCALE)

    def sample(self, n: int, angle_grid=None) -> dict[str, torch.Tensor | None]:
        """Sample the active pose sites; call inside the data plate.

        With an :class:`~pyrolatent.models.pose_grid.AngleGrid` the angle is its
        grid index and jitter (summed exactly by enumeration) instead of ``angle``.
        """
        angle = offset = scale = None
        if "rotation" in self.invariances and angle_grid is not None:
            angle = angle_grid.sample(n)
        elif "rotation" in self.invariances:
            angle = pyro.sample(ANGLE, self.angle_dist(n))
            if angle.device != self._zero.device:  # CircularUniform samples on the CPU
                angle = angle.to(self._zero.device)
        if "translation" in self.invariances:
            offset = pyro.sample(OFFSET, self.offset_dist(n))
        if "scale" in self.invariances:
            scale = pyro.sample(SCALE, self.scale_dist(n))
        return {"angle": angle, "offset": offset, "scale": scale}
