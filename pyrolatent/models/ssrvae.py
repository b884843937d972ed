"""The semi-supervised rotationally invariant VAE (ss-rVAE, the M2 model).

Generative model, for each image ``x_i`` (``H x W`` pixels)::

    y_i      ~ Categorical(class_prior)          observed for labelled items
    z_i      ~ z_prior                           content, default Normal(0, I)
    angle_i  ~ angle_prior                       radians, default projected normal
    offset_i ~ offset_prior                      (dx, dy) pixels, Normal(0, s)
    x_i      ~ likelihood(decoder([z_i, onehot(y_i)], angle_i, offset_i))

For unlabelled items the class is summed out exactly: the guide marks its
``y`` site for parallel enumeration and :meth:`SSRVAEModel.default_loss` is
``TraceEnum_ELBO(max_plate_nesting=1)``. The model is pure: the auxiliary
classification term ``alpha log q(y | x)`` of labelled items is an observed,
``is_auxiliary`` site of the guide (:data:`AUX`) that
:class:`~pyrolatent.infer.elbo.AuxiliaryTraceEnum_ELBO` adds to the one loss
each optimiser step minimises (the ``pyro.contrib.cevae`` pattern).
``invariances=()`` gives the plain ss-VAE.

Site names are the constants :data:`Y`, :data:`Z`, :data:`ANGLE`,
:data:`OFFSET`, :data:`SCALE`, :data:`OBS` and :data:`AUX`; the plate is
``"data"``. :class:`SSRVAE` is the user-facing wrapper.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import TraceEnum_ELBO
from pyro.nn import PyroModule

from .._deprecated import forward
from ..checks import as_tensor, check_count, check_number, check_observed
from ..distributions import ProjectedNormalAngle, VonMises
from ..nn.decoders import make_decoder
from .likelihoods import make_likelihood
from .pose import PosePrior, expand_prior, parse_invariances
from .pose_grid import canonical_image, make_angle_grid, render_posed
from .sites import ANGLE, AUX, OBS, OFFSET, SCALE, Y, Z  # noqa: F401 - re-exported

__all__ = [
    "Y",
    "Z",
    "ANGLE",
    "OFFSET",
    "SCALE",
    "OBS",
    "AUX",
    "ANGLE_PRIORS",
    "SSRVAEModel",
]

ANGLE_PRIORS = ("projected_normal", "von_mises", "uniform", "normal")


def _check_class_prior(class_prior, n_classes: int) -> torch.Tensor:
    if class_prior is None:
        return torch.full((n_classes,), 1.0 / n_classes)
    p = as_tensor(class_prior, "class_prior").flatten()
    if p.numel() != n_classes:
        raise ValueError(f"class_prior: expected {n_classes} values, got {p.numel()}")
    if not bool(torch.isfinite(p).all()) or bool((p <= 0).any()):
        raise ValueError("class_prior: all class probabilities must be finite and > 0")
    return p / p.sum()


class SSRVAEModel(PyroModule):
    """p(x, y, z, pose) of the ss-rVAE.

    Parameters
    ----------
    image_size : (int, int)
        ``(H, W)``.
    n_classes : int
    latent_dim : int
        Dimension of the content latent ``z``.
    invariances : iterable of {"rotation", "translation", "scale"}
        ``()`` gives the plain ss-VAE.
    decoder : {"warp", "spatial"}
        Its input code is ``cat([z, onehot(y)])``.
    likelihood : {"bernoulli", "gaussian", "poisson"}
    hidden : sequence of int
        Decoder widths.
    activation : str
    angle_prior : str, Distribution or callable
        ``"projected_normal"`` (default), ``"von_mises"``, ``"uniform"`` or
        ``"normal"``, centred at 0 with spread ``angle_prior_scale``; or a
        custom prior (see :mod:`pyrolatent.models.pose`).
    angle_prior_scale : float
        Radians: projected-normal concentration ``1 / scale``, von Mises
        ``kappa = 1 / scale**2``, Normal standard deviation ``scale``.
    offset_prior, scale_prior, z_prior : Distribution or callable, optional
    offset_prior_scale : float
        Pixels; standard deviation of the default offset prior.
    class_prior : array_like, optional
        ``(n_classes,)`` prior class probabilities (default uniform).
    sigma, learn_sigma
        Gaussian likelihood options.
    compute_dtype : {"float32", "bfloat16"}
        Precision of the spatial decoder's hidden-layer products (see
        :class:`~pyrolatent.nn.decoders.SpatialDecoder`); the warp decoder
        stays float32.
    pose : {"amortized", "grid"}
        A continuous ``angle`` site, or the angle summed exactly over a
        rotation grid of ``pose_grid`` angles (as in
        :class:`~pyrolatent.models.rvae.RVAEModel`; the grid index is
        enumerated beside the class, so each item costs ``n_classes *
        pose_grid`` warps of ``n_classes`` canonical images). The grid's index
        probabilities follow ``angle_prior``.
    pose_grid : int
        ``K``, angles of the grid (``pose="grid"``).
    symmetry : int
        Rotational symmetry order: the grid covers ``[0, 2 pi / symmetry)``.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        n_classes: int,
        latent_dim: int = 2,
        invariances=("rotation", "translation"),
        decoder: str = "warp",
        likelihood: str = "bernoulli",
        hidden: Sequence[int] = (128, 128),
        activation: str = "tanh",
        angle_prior="projected_normal",
        angle_prior_scale: float = 1.0,
        offset_prior=None,
        scale_prior=None,
        z_prior=None,
        offset_prior_scale: float = 2.0,
        class_prior=None,
        sigma: float = 0.1,
        learn_sigma: bool = False,
        compute_dtype: str = "float32",
        pose: str = "amortized",
        pose_grid: int = 8,
        symmetry: int = 1,
    ):
        super().__init__()
        n_classes = check_count(n_classes, "n_classes", low=2, high=100_000)
        latent_dim = check_count(latent_dim, "latent_dim", high=1024)
        angle_prior_scale = check_number(angle_prior_scale, "angle_prior_scale", low=0,
                                         low_open=True)  # fmt: skip
        self.image_size = tuple(check_count(s, "image_size", low=2, high=4096) for s in image_size)
        if len(self.image_size) != 2 or min(self.image_size) < 2:
            raise ValueError(f"image_size must be (H, W) with H, W >= 2, got {image_size}")
        self.n_classes = int(n_classes)
        self.latent_dim = int(latent_dim)
        self.invariances = parse_invariances(invariances)
        self.likelihood = make_likelihood(likelihood, sigma=sigma, learn_sigma=learn_sigma)
        self.decoder = make_decoder(
            decoder,
            self.image_size,
            latent_dim + n_classes,
            hidden,
            activation,
            self.likelihood.link,
            compute_dtype=compute_dtype,
        )
        self.register_buffer("_zero", torch.tensor(0.0))
        self.register_buffer("_angle_scale", torch.tensor(float(angle_prior_scale)))
        self.register_buffer("class_probs", _check_class_prior(class_prior, n_classes))
        self.pose_prior = PosePrior(
            self.invariances,
            self._angle_prior(angle_prior),
            offset_prior,
            scale_prior,
            offset_prior_scale,
        )
        self.z_prior = z_prior
        self.angle_grid = make_angle_grid(
            pose, self.invariances, pose_grid, symmetry, self.pose_prior.angle_prior
        )

    # ----------------------------------------------------------- priors
    def _angle_prior(self, prior):
        if not isinstance(prior, str):
            return prior
        if prior == "uniform":
            return None  # PosePrior's default: uniform on the circle
        if prior == "projected_normal":
            return self.projected_normal_angle
        if prior == "von_mises":
            return lambda n: VonMises(self._zero.expand(n), self._angle_scale.pow(-2).expand(n))
        if prior == "normal":
            return lambda n: dist.Normal(self._zero.expand(n), self._angle_scale.expand(n))
        raise ValueError(f"unknown angle_prior {prior!r}; choose from {ANGLE_PRIORS}")

    def projected_normal_angle(self, n: int) -> ProjectedNormalAngle:
        """Default angle prior: projected normal centred at 0, batch ``(n,)``."""
        conc = torch.stack([1.0 / self._angle_scale, self._zero])
        return ProjectedNormalAngle(conc.expand(n, 2))

    def y_dist(self, n: int) -> dist.Categorical:
        """Class prior, batch ``(n,)``."""
        return dist.Categorical(probs=self.class_probs).expand([n])

    def z_dist(self, n: int) -> dist.Distribution:
        """Content prior, batch ``(n,)``, event ``(latent_dim,)``."""
        if self.z_prior is None:
            loc = self._zero.expand(n, self.latent_dim)
            return dist.Normal(loc, torch.ones_like(loc)).to_event(1)
        return expand_prior(self.z_prior, n, (self.latent_dim,), Z)

    def default_loss(self):
        """Exact enumeration of the unlabelled class (no auxiliary term, see the module doc)."""
        return TraceEnum_ELBO(max_plate_nesting=1)

    # ----------------------------------------------------------- render
    def render(self, z, y, angle=None, offset=None, scale=None) -> torch.Tensor:
        """Mean images for codes, classes and poses.

        ``z (..., D)``, ``y (...)`` integer classes and the pose tensors
        (``angle (...)``, ``offset (..., 2)``, ``scale (...)``) broadcast against
        each other; under enumeration ``y`` is ``(K, 1)`` and the batch shape
        ``(K, B)``. The decoder runs once on all flattened codes; with
        ``pose="grid"`` it draws the canonical image once per code and the warp
        poses it at every angle (angles may carry more leading dimensions, e.g.
        ``(K_angle, 1, 1)`` under enumeration, giving ``(K_angle, K, B, H, W)``).

        Returns
        -------
        torch.Tensor
            ``(..., H, W)`` in mean space.
        """
        onehot = F.one_hot(y.long(), self.n_classes).to(z.dtype)
        shapes = [z.shape[:-1], onehot.shape[:-1]]
        if scale is not None:
            shapes.append(scale.shape)
        if offset is not None:
            shapes.append(offset.shape[:-1])
        batch = torch.broadcast_shapes(*shapes)
        # with pose="grid" the angle's leading dims (its grid index) stay out of the codes:
        # each canonical image is drawn once and warped to every angle
        if angle is not None:
            full = torch.broadcast_shapes(angle.shape, batch)
            if self.angle_grid is None or full[len(full) - len(batch) :] != batch:
                batch = full
        code = torch.cat([z.expand(*batch, -1), onehot.expand(*batch, -1)], dim=-1)

        def flat(t, tail=()):
            return None if t is None else t.expand(*batch, *tail).reshape(-1, *tail)

        if self.angle_grid is not None:
            return self._render_grid(code, batch, angle, flat(offset, (2,)), flat(scale))
        mean = self.decoder(
            code.reshape(-1, code.shape[-1]),
            angle=flat(angle),
            offset=flat(offset, (2,)),
            scale=flat(scale),
        )
        return mean.reshape(*batch, *self.image_size)

    def canonical(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Unposed images ``(B, H, W)`` of codes ``z (B, D)`` and classes ``y (B,)``."""
        code = torch.cat([z, F.one_hot(y.long(), self.n_classes).to(z.dtype)], dim=-1)
        return canonical_image(self.decoder, code)

    def _render_grid(self, code, batch, angle, offset, scale) -> torch.Tensor:
        """Canonical images of ``code (*batch, D + K)``, posed by angles ``(..., *batch)``."""
        canonical = canonical_image(self.decoder, code.reshape(-1, code.shape[-1]))
        if angle is None:
            posed = render_posed(canonical, None, offset, scale)
            return posed.reshape(*batch, *self.image_size)
        full = torch.broadcast_shapes(angle.shape, batch)
        lead = full[: len(full) - len(batch)]
        flat_angle = angle.expand(full).reshape(*lead, canonical.shape[0])
        posed = render_posed(canonical, flat_angle, offset, scale)
        return posed.reshape(*lead, *batch, *self.image_size)

    def forward(
        self,
        x: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
        num_items: int | None = None,
    ):
        """Run the model on images ``x (B, H, W)`` and optional labels ``y (B,)``."""
        if x is None and num_items is None:
            raise ValueError("give images x or num_items")
        n = check_observed(x, self.image_size).shape[0] if x is not None else num_items
        with pyro.plate("data", n):
            yv = pyro.sample(Y, self.y_dist(n), obs=y)
            z = pyro.sample(Z, self.z_dist(n))
            pose = self.pose_prior.sample(n, angle_grid=self.angle_grid)
            mean = self.render(z, yv, **pose)
            return pyro.sample(OBS, self.likelihood.dist(mean), obs=x)


__getattr__ = forward(__name__, {"SSRVAE": "pyrolatent.estimators.ssrvae"})
