"""Exact pose search for the rVAE family: the angle summed over a rotation grid.

With ``pose="grid"`` the angle of each image is written as::

    angle_i = grid[k_i] + u_i,    u_i ~ Uniform(0, step),    k_i ~ Categorical(K)

with ``grid`` the ``K`` angles ``0, step, ..., (K - 1) step`` over one period
``2 pi / n`` (``n`` the declared symmetry, default 1) and ``step = 2 pi / (n K)``.
For the default uniform angle prior this is exactly a uniform angle. The
discrete index ``k`` (site :data:`~pyrolatent.models.sites.ANGLE_INDEX`) is
marked for parallel enumeration, so ``TraceEnum_ELBO`` sums it exactly: the
posterior over the whole circle is computed, never searched by gradient
descent, and cannot get stuck in one basin. The jitter ``u`` (site
:data:`~pyrolatent.models.sites.ANGLE_JITTER`) makes the grid continuous over
training; its guide is its prior.

The decoder draws the canonical image once per item and the differentiable
warp turns it by all ``K`` angles (:func:`render_posed`).
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..primitives import centre_of_mass, rotation_matrix_2d, warp_copies, warp_images
from .sites import ANGLE_INDEX, ANGLE_JITTER

__all__ = [
    "POSES",
    "AngleGrid",
    "canonical_image",
    "centre_of_mass",
    "grid_step",
    "make_angle_grid",
    "render_posed",
]


def grid_step(size: int, symmetry: int = 1) -> float:
    """Spacing of a rotation grid of ``size`` angles over ``2 pi / symmetry``, radians."""
    return 2 * math.pi / (int(symmetry) * int(size))


class AngleGrid(nn.Module):
    """Samples ``angle = grid[k] + u`` inside the data plate (see module docstring).

    Parameters
    ----------
    size : int
        ``K``, angles in the grid (>= 2).
    symmetry : int
        Rotational symmetry order ``n``: the grid covers ``[0, 2 pi / n)``.
    angle_prior : Distribution or callable, optional
        A custom angle prior (see :mod:`pyrolatent.models.pose`); the index
        probabilities are its density at ``grid + u``, normalised over ``k``.
    """

    def __init__(self, size: int, symmetry: int = 1, angle_prior=None):
        super().__init__()
        if int(size) < 2:
            raise ValueError(f"pose_grid must be at least 2, got {size}")
        self.size, self.symmetry = int(size), int(symmetry)
        self.step = grid_step(size, symmetry)
        self.register_buffer("angles", torch.arange(self.size) * self.step)
        # set once the decoder has been started from a reference image (saved with the model,
        # so that a loaded fit is never restarted)
        self.register_buffer("started", torch.tensor(False))
        self.angle_prior = angle_prior

    def jitter_dist(self, n: int) -> dist.Distribution:
        """``Uniform(0, step)``, batch ``(n,)``."""
        low = torch.zeros(n, device=self.angles.device)
        return dist.Uniform(low, low + self.step)

    def index_logits(self, jitter: torch.Tensor) -> torch.Tensor:
        """``(n, K)`` log-probabilities of the grid indices given the jitter."""
        if self.angle_prior is None:
            return torch.zeros(jitter.shape[0], self.size, device=jitter.device)
        prior = self.angle_prior
        angles = (self.angles + jitter.unsqueeze(-1)).t()  # (K, n)
        d = prior if isinstance(prior, dist.Distribution) else prior(jitter.shape[0])
        return d.log_prob(angles).t().log_softmax(-1)

    def sample(self, n: int) -> torch.Tensor:
        """Sample the angle sites; angles ``(n,)``, or ``(K, 1, ..., n)`` when enumerated."""
        u = pyro.sample(ANGLE_JITTER, self.jitter_dist(n))
        k = pyro.sample(
            ANGLE_INDEX,
            dist.Categorical(logits=self.index_logits(u)),
            infer={"enumerate": "parallel"},
        )
        return self.angles[k] + u

    def log_prior(self, angles: torch.Tensor, n: int) -> torch.Tensor:
        """``(K', n)`` log prior density of the angles ``(K',)`` (zeros for the uniform prior)."""
        if self.angle_prior is None:
            return torch.zeros(angles.shape[0], n, device=angles.device)
        prior = self.angle_prior
        d = prior if isinstance(prior, dist.Distribution) else prior(n)
        return d.log_prob(angles.unsqueeze(-1).expand(-1, n))


def render_posed(canonical: torch.Tensor, angle=None, offset=None, scale=None,
                 centre: bool = True) -> torch.Tensor:  # fmt: skip
    """Warp canonical images ``(n, H, W)`` by poses whose angle may carry leading dims.

    With ``centre`` the canonical image's centre of mass is the point that the
    pose turns about and moves to ``offset``: the canonical image's position is
    then no free parameter, so an offset cannot stand in for a half-turn (an
    off-centre canonical lets the offset choose between ``angle`` and
    ``angle + pi``).

    Parameters
    ----------
    canonical : torch.Tensor
        ``(n, H, W)`` unposed images in mean space.
    angle : torch.Tensor, optional
        ``(n,)`` or ``(..., n)`` radians (e.g. ``(K, n)`` under enumeration).
    offset : torch.Tensor, optional
        ``(n, 2)`` pixels.
    scale : torch.Tensor, optional
        ``(n,)``.
    centre : bool
        Turn about (and place) the canonical image's centre of mass.

    Returns
    -------
    torch.Tensor
        ``(..., n, H, W)``.
    """
    if angle is None and offset is None and scale is None:
        return canonical
    lead = angle.shape[:-1] if angle is not None else torch.Size()
    n, h, w = canonical.shape
    m = int(math.prod(lead))
    if centre:
        com = centre_of_mass(canonical).unsqueeze(-1)  # (n, 2, 1)
        moved = com if angle is None else rotation_matrix_2d(angle) @ com  # (..., n, 2, 1)
        moved = moved.squeeze(-1) * (1.0 if scale is None else scale.unsqueeze(-1))
        offset = -moved if offset is None else offset - moved
        offset = offset.expand(*lead, n, 2)

    if not lead:
        return warp_images(canonical, angle=angle, offset=offset, scale=scale)

    def per_item(t, tail=()):  # (*lead, n, *tail) -> (n, m, *tail)
        return None if t is None else t.expand(*lead, n, *tail).reshape(m, n, *tail).transpose(0, 1)

    out = warp_copies(
        canonical,
        angle=per_item(angle),
        offset=per_item(offset, (2,)),
        scale=None if scale is None else scale.unsqueeze(-1).expand(n, m),
    )  # (n, m, H, W)
    return out.transpose(0, 1).unflatten(0, lead)


POSES = ("amortized", "grid")


def make_angle_grid(pose: str, invariances, size: int, symmetry: int, angle_prior=None):
    """The :class:`AngleGrid` of ``pose="grid"`` with rotation on, else None (checked)."""
    if pose not in POSES:
        raise ValueError(f"pose must be one of {POSES}, got {pose!r}")
    if pose == "amortized" or "rotation" not in invariances:
        return None
    return AngleGrid(size, symmetry, angle_prior)


def canonical_image(decoder, z: torch.Tensor) -> torch.Tensor:
    """The unposed image ``(B, H, W)`` of either decoder, in mean space."""
    if hasattr(decoder, "canonical"):
        return decoder.canonical(z)
    return decoder(z)
