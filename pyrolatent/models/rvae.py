"""The rotationally invariant variational autoencoder (rVAE).

Generative model, for each image ``x_i`` (``H x W`` pixels)::

    z_i      ~ z_prior                       (content, default Normal(0, I))
    angle_i  ~ angle_prior                   (radians, default uniform on the circle)
    offset_i ~ offset_prior                  ((dx, dy) pixels, default Normal(0, s))
    scale_i  ~ scale_prior                   (only with the "scale" invariance)
    x_i      ~ likelihood(decoder(z_i, angle_i, offset_i, scale_i))

Site names are the constants :data:`Z`, :data:`ANGLE`, :data:`OFFSET`,
:data:`SCALE` and :data:`OBS`; the plate is ``"data"``. :class:`RVAEModel` and
:class:`~pyrolatent.guides.rvae.RVAEGuide` are plain ``PyroModule`` objects
that any Pyro inference runs unchanged; :class:`RVAE` is the user-facing
wrapper with ``fit``, ``encode``, ``decode``, ``reconstruct``, ``manifold``,
``save`` and ``load``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.nn import PyroModule

from .._deprecated import forward
from ..checks import check_count, check_observed
from ..nn.decoders import make_decoder
from .likelihoods import make_likelihood
from .pose import PosePrior, expand_prior, parse_invariances
from .pose_grid import canonical_image, make_angle_grid, render_posed
from .sites import ANGLE, OBS, OFFSET, SCALE, Z

__all__ = ["Z", "ANGLE", "OFFSET", "SCALE", "OBS", "RVAEModel"]


class RVAEModel(PyroModule):
    """p(x, z, pose) of the rVAE.

    Parameters
    ----------
    image_size : (int, int)
        ``(H, W)`` of the images.
    latent_dim : int
        Dimension of the content latent ``z``.
    invariances : iterable of {"rotation", "translation", "scale"}
        Pose sites to infer (``"r"``, ``"t"``, ``"s"`` accepted).
    decoder : {"spatial", "warp"}
        Coordinate MLP or canonical image + differentiable warp.
    likelihood : {"bernoulli", "gaussian", "poisson"}
    hidden : sequence of int
        Decoder widths.
    activation : str
    angle_prior, offset_prior, scale_prior, z_prior : Distribution or callable, optional
        Custom priors: a Pyro distribution with batch shape ``()`` (``z_prior``
        with event shape ``(latent_dim,)``, ``offset_prior`` ``(2,)``) or a
        callable ``n -> Distribution`` with batch shape ``(n,)``.
    offset_prior_scale : float
        Pixels; standard deviation of the default offset prior.
    sigma, learn_sigma
        Gaussian likelihood noise (image units) and whether it is learned.
    compute_dtype : {"float32", "bfloat16"}
        Precision of the spatial decoder's hidden-layer products
        (see :class:`~pyrolatent.nn.decoders.SpatialDecoder`).
    pose : {"amortized", "grid"}
        How the angle is inferred: a continuous ``angle`` site (the guide
        amortises it), or ``"grid"``: the angle summed exactly over a rotation
        grid of ``pose_grid`` angles (:mod:`pyrolatent.models.pose_grid`; train
        with :meth:`default_loss`, ``TraceEnum_ELBO``). With ``"grid"`` every
        decoder draws the canonical image once and the warp poses it.
    pose_grid : int
        ``K``, angles of the grid (``pose="grid"``).
    symmetry : int
        Rotational symmetry order ``n`` of the particles (``pose="grid"``): the
        grid covers ``[0, 2 pi / n)``.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        latent_dim: int = 2,
        invariances=("rotation", "translation"),
        decoder: str = "spatial",
        likelihood: str = "bernoulli",
        hidden: Sequence[int] = (128, 128),
        activation: str = "tanh",
        angle_prior=None,
        offset_prior=None,
        scale_prior=None,
        z_prior=None,
        offset_prior_scale: float = 2.0,
        sigma: float = 0.1,
        learn_sigma: bool = False,
        compute_dtype: str = "float32",
        pose: str = "amortized",
        pose_grid: int = 8,
        symmetry: int = 1,
    ):
        super().__init__()
        latent_dim = check_count(latent_dim, "latent_dim", high=1024)
        self.image_size = tuple(check_count(s, "image_size", low=2, high=4096) for s in image_size)
        if len(self.image_size) != 2 or min(self.image_size) < 2:
            raise ValueError(f"image_size must be (H, W) with H, W >= 2, got {image_size}")
        self.latent_dim = latent_dim
        self.invariances = parse_invariances(invariances)
        self.likelihood = make_likelihood(likelihood, sigma=sigma, learn_sigma=learn_sigma)
        self.decoder = make_decoder(
            decoder,
            self.image_size,
            latent_dim,
            hidden,
            activation,
            self.likelihood.link,
            compute_dtype=compute_dtype,
        )
        self.pose_prior = PosePrior(
            self.invariances, angle_prior, offset_prior, scale_prior, offset_prior_scale
        )
        self.z_prior = z_prior
        self.register_buffer("_zero", torch.tensor(0.0))
        self.angle_grid = make_angle_grid(pose, self.invariances, pose_grid, symmetry, angle_prior)

    def default_loss(self):
        """``TraceEnum_ELBO`` (grid index summed) for ``pose="grid"``, else ``Trace_ELBO``."""
        if self.angle_grid is not None:
            return TraceEnum_ELBO(max_plate_nesting=1)
        return Trace_ELBO()

    def z_dist(self, n: int) -> dist.Distribution:
        """Prior of the content latent, batch ``(n,)``, event ``(latent_dim,)``."""
        if self.z_prior is None:
            loc = self._zero.expand(n, self.latent_dim)
            return dist.Normal(loc, torch.ones_like(loc)).to_event(1)
        return expand_prior(self.z_prior, n, (self.latent_dim,), Z)

    def canonical(self, z: torch.Tensor) -> torch.Tensor:
        """Unposed images ``(B, H, W)`` of codes ``z (B, D)``, in mean space."""
        return canonical_image(self.decoder, z)

    def render(self, z, angle=None, offset=None, scale=None) -> torch.Tensor:
        """Mean images ``(B, H, W)``; ``(..., B, H, W)`` for angles ``(..., B)``."""
        if self.angle_grid is None:
            return self.decoder(z, angle=angle, offset=offset, scale=scale)
        return render_posed(canonical_image(self.decoder, z), angle, offset, scale)

    def forward(self, x: torch.Tensor | None = None, num_items: int | None = None):
        """Run the generative model on images ``x (B, H, W)`` (or sample ``num_items``)."""
        if x is None and num_items is None:
            raise ValueError("give images x or num_items")
        n = check_observed(x, self.image_size).shape[0] if x is not None else num_items
        with pyro.plate("data", n):
            z = pyro.sample(Z, self.z_dist(n))
            pose = self.pose_prior.sample(n, angle_grid=self.angle_grid)
            mean = self.render(z, **pose)
            return pyro.sample(OBS, self.likelihood.dist(mean), obs=x)


__getattr__ = forward(__name__, {"RVAE": "pyrolatent.estimators.rvae"})
