"""The volume VAE of X-ray single-particle imaging (Ayyer et al., ``spi-clpca-volume-vae``).

Generative model, for each pattern ``x_i`` (``S x S`` pixels) with known
orientation ``R_i``::

    z_i       ~ z_prior                         (default Normal(0, I), dim latent_dim)
    fluence_i ~ fluence_prior                   (Poisson only; default LogNormal(0, 0.2))
    V(. | z)  = decoder(z_i)                    (3D intensity in units of the radial average,
                                                 Friedel- and point-group symmetric)
    m_i       = central slice of V at R_i       (see primitives.volumes.slice_volume)
    x_i       ~ Normal(m_i, sigma)              ("gaussian": radially normalised intensities)
             or Poisson(fluence_i * profile * m_i)   ("poisson": photon counts)

restricted to valid detector pixels (``mask``). Decoders: ``"voxel"`` (3D
transposed convolutions, symmetrised exactly by averaging the slices at
``g R`` over the group) and ``"implicit"`` (a coordinate MLP over random
Fourier features, exactly Friedel-symmetric, ``I(q) = I(-q)``; with
``group="Oh"`` over canonical coordinates, exactly O_h-symmetric with no
averaging). The default ``group=None`` assumes no point group.

Site names: :data:`Z`, :data:`FLUENCE`, :data:`OBS`; plate :data:`PLATE`.
:class:`VolumeVAEModel` and :class:`~pyrolatent.guides.volume_vae.VolumeVAEGuide`
are plain ``PyroModule`` objects called as ``fn(x, rotations)``;
:class:`VolumeVAE` is the user-facing wrapper (``fit``, ``encode``, ``generate``,
``reconstruct``, ``save``, ``load``).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam

from .._deprecated import forward
from ..checks import check_count, check_observed
from ..nn.volume import ImplicitDecoder, VoxelDecoder
from ..primitives.volumes import (
    sample_volumes,
    slice_coordinates,
    symmetrize_volume,
    symmetrized_slices,
)
from .pose import expand_prior
from .sites import FLUENCE, OBS, PLATE, Z

__all__ = ["FLUENCE", "OBS", "PLATE", "Z", "VolumeVAEModel"]

_DECODERS = ("implicit", "voxel")
_LIKELIHOODS = ("gaussian", "poisson")


class VolumeVAEModel(PyroModule):
    """p(x, z, fluence | R) of the volume VAE.

    Parameters
    ----------
    size : int
        Odd pattern/volume size ``S``.
    latent_dim : int
    decoder : {"implicit", "voxel"}
    likelihood : {"gaussian", "poisson"}
    group : str, optional
        Point group of the particle. Default None: no symmetry beyond Friedel's
        law (a molecule); name one for a symmetric particle (``"Oh"`` for
        cubes). The implicit decoder supports ``None`` or ``"Oh"`` (exact); the
        voxel decoder any group.
    mask : array_like, optional
        ``(S, S)`` bool, True = valid detector pixel.
    z_prior : Distribution or callable, optional
        Default ``Normal(0, 1)`` per latent dimension. The contract of
        :func:`~pyrolatent.models.pose.expand_prior`: event shape
        ``(latent_dim,)`` (use ``.to_event(1)``), batch ``()`` or a callable
        ``n -> Distribution`` with batch ``(n,)``.
    fluence_prior : Distribution or callable, optional
        Default ``LogNormal(0, 0.2)`` (Poisson only); event shape ``()``.
    sigma : float
        Gaussian noise (normalised intensity units), initial value when learned.
    learn_sigma : bool
    n_features, fourier_scale, hidden, depth : implicit-decoder options
        See :class:`~pyrolatent.nn.volume.ImplicitDecoder`.
    base_channels : int
        Voxel-decoder seed channels (see :class:`~pyrolatent.nn.volume.VoxelDecoder`).
    """

    def __init__(self, size: int, latent_dim: int = 1, decoder: str = "implicit",
                 likelihood: str = "gaussian", group: str | None = None, mask=None,
                 z_prior=None, fluence_prior=None, sigma: float = 0.5,
                 learn_sigma: bool = True, n_features: int = 32,
                 fourier_scale: float = 0.15, hidden: int = 64, depth: int = 3,
                 base_channels: int = 64):  # fmt: skip
        super().__init__()
        if decoder not in _DECODERS:
            raise ValueError(f"decoder: expected one of {_DECODERS}, got {decoder!r}")
        if likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood: expected one of {_LIKELIHOODS}, got {likelihood!r}")
        size, latent_dim = (
            check_count(size, "size", high=255),
            check_count(latent_dim, "latent_dim"),
        )
        if size % 2 == 0:
            raise ValueError(f"size: {size} is even; the centre (q = 0) must be a pixel")
        self.size = int(size)
        self.latent_dim = int(latent_dim)
        self.decoder_kind = decoder
        self.likelihood = likelihood
        self.group = group
        if decoder == "implicit":
            if group not in ("Oh", None):
                raise ValueError(
                    f"group: the implicit decoder is exact for None or 'Oh', got {group!r}; "
                    "use decoder='voxel' for other groups"
                )
            self.decoder = ImplicitDecoder(self.latent_dim, self.size, symmetry=group,
                                           n_features=n_features, fourier_scale=fourier_scale,
                                           hidden=hidden, depth=depth)  # fmt: skip
        else:
            self.decoder = VoxelDecoder(self.latent_dim, self.size, base_channels=base_channels)
        m = torch.ones(size, size, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
        if tuple(m.shape) != (self.size, self.size):
            raise ValueError(f"mask: expected ({self.size}, {self.size}), got {tuple(m.shape)}")
        self.register_buffer("mask", m.bool().clone())
        # photons per unit normalised intensity at each pixel (Poisson), set by the wrapper
        self.register_buffer("profile", torch.ones(size, size))
        self.z_prior = z_prior
        self.fluence_prior = fluence_prior
        if learn_sigma:
            self.sigma = PyroParam(torch.tensor(float(sigma)), constraint=constraints.positive)
        else:
            self.register_buffer("sigma", torch.tensor(float(sigma)))

    # --------------------------------------------------------- distributions
    def z_dist(self, n: int):
        """Prior of ``z`` with batch shape ``(n,)`` and event shape ``(latent_dim,)``."""
        if self.z_prior is None:
            loc = self.mask.new_zeros((n, self.latent_dim), dtype=torch.float32)
            return dist.Normal(loc, 1.0).to_event(1)
        return expand_prior(self.z_prior, n, (self.latent_dim,), Z)

    def fluence_dist(self, n: int):
        """Prior of the per-pattern fluence scale, batch shape ``(n,)``."""
        if self.fluence_prior is None:
            return dist.LogNormal(self.mask.new_zeros(n, dtype=torch.float32), 0.2)
        return expand_prior(self.fluence_prior, n, (), FLUENCE)

    def obs_dist(self, mean: torch.Tensor, fluence: torch.Tensor | None = None):
        """Pixel distribution given normalised slices ``(B, S, S)``; event shape ``(S, S)``."""
        if self.likelihood == "gaussian":
            d = dist.Normal(mean, self.sigma)
        else:
            rate = mean * self.profile * fluence[:, None, None]
            d = dist.Poisson(rate.clamp_min(1e-8))
        return d.mask(self.mask).to_event(2)

    # ------------------------------------------------------------ decoding
    def slices(self, z: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
        """Normalised, symmetrised central slices ``(B, S, S)`` of the volumes of ``z``.

        The implicit decoder evaluates only valid pixels (``mask``) and is 0 on
        the others, which the likelihood ignores.
        """
        if self.decoder_kind == "implicit":  # only valid pixels (0 on masked ones)
            return self.decoder.slices(z, rotations, mask=self.mask)
        vol = self.decoder(z)
        if self.group is None:
            return symmetrized_slices(vol, rotations, "C1")
        return symmetrized_slices(vol, rotations, self.group)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Symmetric normalised intensity volumes ``(B, S, S, S)`` for latents ``(B, D)``."""
        if self.decoder_kind == "implicit":
            return self.decoder.volume(z)
        vol = self.decoder(z)
        return vol if self.group is None else symmetrize_volume(vol, self.group)

    def grid_log_likelihood(self, x: torch.Tensor, rotations: torch.Tensor,
                            z_grid: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """``log p(x | z_k, R)`` ``(B, K)`` at each of ``K`` latents ``z_grid`` ``(K, D)``.

        Poisson only: the per-pattern fluence is profiled out (its maximum
        likelihood value, ``sum x / sum rate`` over valid pixels, held fixed in
        the gradient); the ``log x!`` term, the same for every ``z_k``, is left out.
        """
        if self.likelihood != "poisson":
            raise ValueError("grid_log_likelihood: the Poisson likelihood only")
        b, k = x.shape[0], z_grid.shape[0]
        z = z_grid.to(x.dtype).repeat(b, 1)
        mean = self.slices(z, rotations.repeat_interleave(k, dim=0)) * self.profile
        mean = mean.reshape(b, k, self.size, self.size)
        m = self.mask.to(x.dtype)
        xx = (x * m)[:, None]
        f = xx.sum((-1, -2), keepdim=True) / (mean * m).sum((-1, -2), keepdim=True).clamp_min(1e-8)
        rate = (mean * f.detach()).clamp_min(1e-8)
        return ((xx * rate.log() - rate) * m).sum((-1, -2))

    def posed_grid_log_likelihood(
        self, x: torch.Tensor, rotations: torch.Tensor, z_grid: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor:
        """``log p(x | z_k, R D_j)`` ``(B, K, J)``: every latent at every turned orientation.

        As :meth:`grid_log_likelihood`, with each pattern's orientation ``R``
        replaced by the ``J`` candidates ``R D_j`` (``offsets`` ``(J, 3, 3)``,
        e.g. :func:`~pyrolatent.primitives.so3.local_offsets`). The ``K``
        volumes are generated once and sliced by trilinear interpolation
        (:func:`~pyrolatent.primitives.volumes.sample_volumes`), so the cost
        is one volume per latent plus ``B J K P`` samples (``P`` valid pixels).

        Parameters
        ----------
        x : torch.Tensor
            ``(B, S, S)`` photon counts.
        rotations : torch.Tensor
            ``(B, 3, 3)`` centres of the searches.
        z_grid : torch.Tensor
            ``(K, D)``.
        offsets : torch.Tensor
            ``(J, 3, 3)``.
        """
        if self.likelihood != "poisson":
            raise ValueError("posed_grid_log_likelihood: the Poisson likelihood only")
        valid = self.mask.reshape(-1)
        plane = slice_coordinates(self.size, dtype=x.dtype, device=x.device).reshape(-1, 3)
        cand = rotations.to(x.dtype)[:, None] @ offsets.to(x.dtype)[None]  # (B, J, 3, 3)
        pts = torch.einsum("bjac,pc->bjpa", cand, plane[valid])  # (B, J, P, 3)
        vols = self.generate(z_grid.to(x.dtype))  # (K, S, S, S)
        mean = sample_volumes(vols, pts) * self.profile.reshape(-1)[valid]  # (K, B, J, P)
        xx = x.reshape(x.shape[0], -1)[:, valid][None, :, None]  # (1, B, 1, P)
        f = xx.sum(-1, keepdim=True) / mean.sum(-1, keepdim=True).clamp_min(1e-8)
        rate = (mean * f.detach()).clamp_min(1e-8)
        return (xx * rate.log() - rate).sum(-1).permute(1, 0, 2)

    def forward(self, x: torch.Tensor, rotations: torch.Tensor):
        """``x`` ``(B, S, S)``, ``rotations`` ``(B, 3, 3)``."""
        n = check_observed(x, (self.size, self.size)).shape[0]
        with pyro.plate(PLATE, n):
            z = pyro.sample(Z, self.z_dist(n))
            fluence = None
            if self.likelihood == "poisson":
                fluence = pyro.sample(FLUENCE, self.fluence_dist(n))
            mean = self.slices(z, rotations)
            pyro.sample(OBS, self.obs_dist(mean, fluence), obs=x)
        return mean


__getattr__ = forward(__name__, {"VolumeVAE": "pyrolatent.estimators.volume_vae"})
