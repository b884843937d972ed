"""The volume VAE of X-ray single-particle imaging (Ayyer et al., ``spi-clpca-volume-vae``).

Generative model, for each pattern ``x_i`` (``S x S`` pixels) with known
orientation ``R_i``::

    z_i       ~ z_prior                         (default Normal(0, I), dim latent_dim)
    fluence_i ~ fluence_prior                   (Poisson only; default LogNormal(0, 0.2))
    V(. | z)  = decoder(z_i)                    (3D intensity in units of the radial average,
                                                 point-group symmetric)
    m_i       = central slice of V at R_i       (see primitives.volumes.slice_volume)
    x_i       ~ Normal(m_i, sigma)              ("gaussian": radially normalised intensities)
             or Poisson(fluence_i * profile * m_i)   ("poisson": photon counts)

restricted to valid detector pixels (``mask``). Decoders: ``"voxel"`` (3D
transposed convolutions, symmetrised exactly by averaging the slices at
``g R`` over the group) and ``"implicit"`` (a coordinate MLP over canonical
coordinates, exactly O_h-symmetric with no averaging).

Site names: :data:`Z`, :data:`FLUENCE`, :data:`OBS`; plate :data:`PLATE`.
:class:`VolumeVAEModel` and :class:`~pyrolatent.guides.volume_vae.VolumeVAEGuide`
are plain ``PyroModule`` objects called as ``fn(x, rotations)``;
:class:`VolumeVAE` is the user-facing wrapper (``fit``, ``encode``, ``generate``,
``reconstruct``, ``save``, ``load``).
"""

from __future__ import annotations

from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam

from ..checks import as_images, as_tensor, check_nonnegative
from ..device import resolve_device
from ..infer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..nn.volume import ImplicitDecoder, VoxelDecoder
from ..primitives.so3 import canonicalize, check_rotations
from ..primitives.volumes import symmetrize_volume, symmetrized_slices
from ..spi.radial import RadialNormalizer

__all__ = ["FLUENCE", "OBS", "PLATE", "Z", "VolumeVAE", "VolumeVAEModel"]

Z = "z"
FLUENCE = "fluence"
OBS = "obs"
PLATE = "patterns"

_DECODERS = ("implicit", "voxel")
_LIKELIHOODS = ("gaussian", "poisson")


def _expand_prior(prior, n: int, event_dim: int | None):
    """A prior with batch shape ``(n,)``: a callable ``n -> Distribution`` or a Distribution."""
    if callable(prior) and not isinstance(prior, dist.Distribution):
        return prior(n)
    if event_dim is not None and prior.event_shape == ():
        return prior.expand([n, event_dim]).to_event(1)
    return prior.expand([n])


class VolumeVAEModel(PyroModule):
    """p(x, z, fluence | R) of the volume VAE.

    Parameters
    ----------
    size : int
        Odd pattern/volume size ``S``.
    latent_dim : int
    decoder : {"implicit", "voxel"}
    likelihood : {"gaussian", "poisson"}
    group : str
        Point group of the particle (``"Oh"`` for cubes). The implicit decoder
        supports ``"Oh"`` (exact) or ``None``; the voxel decoder any group.
    mask : array_like, optional
        ``(S, S)`` bool, True = valid detector pixel.
    z_prior : Distribution or callable, optional
        Default ``Normal(0, 1)`` per latent dimension.
    fluence_prior : Distribution or callable, optional
        Default ``LogNormal(0, 0.2)`` (Poisson only).
    sigma : float
        Gaussian noise (normalised intensity units), initial value when learned.
    learn_sigma : bool
    n_features, fourier_scale, hidden, depth : implicit-decoder options
        See :class:`~pyrolatent.nn.volume.ImplicitDecoder`.
    base_channels : int
        Voxel-decoder seed channels (see :class:`~pyrolatent.nn.volume.VoxelDecoder`).
    """

    def __init__(self, size: int, latent_dim: int = 1, decoder: str = "implicit",
                 likelihood: str = "gaussian", group: str | None = "Oh", mask=None,
                 z_prior=None, fluence_prior=None, sigma: float = 0.5,
                 learn_sigma: bool = True, n_features: int = 32,
                 fourier_scale: float = 0.15, hidden: int = 64, depth: int = 3,
                 base_channels: int = 64):  # fmt: skip
        super().__init__()
        if decoder not in _DECODERS:
            raise ValueError(f"decoder: expected one of {_DECODERS}, got {decoder!r}")
        if likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood: expected one of {_LIKELIHOODS}, got {likelihood!r}")
        if int(size) % 2 == 0:
            raise ValueError(f"size: {size} is even; the centre (q = 0) must be a pixel")
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim: expected >= 1, got {latent_dim}")
        self.size = int(size)
        self.latent_dim = int(latent_dim)
        self.decoder_kind = decoder
        self.likelihood = likelihood
        self.group = group
        if decoder == "implicit":
            if group not in ("Oh", None):
                raise ValueError(
                    f"group: the implicit decoder is exact for 'Oh' (or None), got {group!r}; "
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
        return _expand_prior(self.z_prior, n, self.latent_dim)

    def fluence_dist(self, n: int):
        """Prior of the per-pattern fluence scale, batch shape ``(n,)``."""
        if self.fluence_prior is None:
            return dist.LogNormal(self.mask.new_zeros(n, dtype=torch.float32), 0.2)
        return _expand_prior(self.fluence_prior, n, None)

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

    def forward(self, x: torch.Tensor, rotations: torch.Tensor):
        """``x`` ``(B, S, S)``, ``rotations`` ``(B, 3, 3)``."""
        n = x.shape[0]
        with pyro.plate(PLATE, n):
            z = pyro.sample(Z, self.z_dist(n))
            fluence = None
            if self.likelihood == "poisson":
                fluence = pyro.sample(FLUENCE, self.fluence_dist(n))
            mean = self.slices(z, rotations)
            pyro.sample(OBS, self.obs_dist(mean, fluence), obs=x)
        return mean


class VolumeVAE:
    """User-facing volume VAE: preprocessing, training with the shared Trainer, analysis.

    Parameters
    ----------
    size : int
        Odd pattern size ``S`` (the volume is ``S^3``).
    latent_dim : int
    decoder : {"implicit", "voxel"}
    likelihood : {"gaussian", "poisson"}
        ``"gaussian"``: patterns are divided by their photon total (relative to
        the dataset mean) and by the dataset's radial average; ``"poisson"``:
        raw photon counts with a per-pattern ``fluence`` latent.
    group : str
        Point group (``"Oh"``).
    mask : array_like, optional
        ``(S, S)`` bool, True = valid pixel (beamstop and gaps False).
    z_prior, fluence_prior : Distribution or callable, optional
        See :class:`VolumeVAEModel`.
    seed : int
        Seeds parameter initialisation and training.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.
    model_options : dict, optional
        Extra keyword arguments of :class:`VolumeVAEModel` (``sigma``,
        ``n_features``, ``fourier_scale``, ``hidden``, ``depth``, ``base_channels``).
    encoder_channels : tuple of int
    encoder_hidden : int
    """

    def __init__(self, size: int, latent_dim: int = 1, decoder: str = "implicit",
                 likelihood: str = "gaussian", group: str | None = "Oh", mask=None,
                 z_prior=None, fluence_prior=None, seed: int = 0, device=None,
                 model_options: dict | None = None,
                 encoder_channels: tuple[int, ...] = (16, 32, 64, 64),
                 encoder_hidden: int = 128):  # fmt: skip
        from ..guides.volume_vae import VolumeVAEGuide

        self.device = resolve_device(device)
        self.config = {
            "size": int(size), "latent_dim": int(latent_dim), "decoder": decoder,
            "likelihood": likelihood, "group": group, "seed": int(seed),
            "model_options": dict(model_options or {}),
            "encoder_channels": tuple(encoder_channels), "encoder_hidden": int(encoder_hidden),
        }  # fmt: skip
        torch.manual_seed(int(seed))
        self.model = VolumeVAEModel(size, latent_dim=latent_dim, decoder=decoder,
                                    likelihood=likelihood, group=group, mask=mask,
                                    z_prior=z_prior, fluence_prior=fluence_prior,
                                    **self.config["model_options"]).to(self.device)  # fmt: skip
        self.guide = VolumeVAEGuide(size, latent_dim=latent_dim, likelihood=likelihood,
                                    mask=self.model.mask, channels=tuple(encoder_channels),
                                    hidden=encoder_hidden).to(self.device)  # fmt: skip
        self.normalizer = RadialNormalizer()
        self.mean_total: float | None = None
        self.trainer = None
        self.history: dict | None = None

    @property
    def size(self) -> int:
        return self.model.size

    @property
    def mask(self) -> torch.Tensor:
        return self.model.mask

    # ------------------------------------------------------------ preprocessing
    def _check(self, patterns, rotations):
        x = as_images(patterns, name="patterns", device=self.device)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(
                f"patterns: size {tuple(x.shape[-2:])} does not match the model's volume "
                f"({self.size}, {self.size})"
            )
        check_nonnegative(x, "patterns", why="diffraction intensities/photon counts")
        r = check_rotations(rotations, name="rotations", proper=True).to(self.device)
        if r.shape != (x.shape[0], 3, 3):
            raise ValueError(f"rotations: expected ({x.shape[0]}, 3, 3), got {tuple(r.shape)}")
        return x, r

    def canonical_rotations(self, rotations) -> torch.Tensor:
        """Rotations canonicalised into the group's (Friedel-reduced) fundamental zone."""
        r = check_rotations(rotations, name="rotations", proper=True).to(self.device)
        group = self.model.group or "C1"
        return canonicalize(r, group, friedel=True)

    def _fit_preprocessing(self, x: torch.Tensor) -> None:
        m = self.mask.to(x.dtype)
        totals = (x * m).sum(dim=(-1, -2))
        self.mean_total = float(totals.mean())
        rel = (totals / self.mean_total).clamp_min(1e-6)
        self.normalizer.fit(x / rel[:, None, None], mask=self.mask)
        prof = self.normalizer.profile_map(device=self.device).to(torch.float32)
        self.model.profile.copy_(prof)
        self.guide.mean_total.fill_(self.mean_total)
        self.guide.input_scale.copy_(prof if self.model.likelihood == "poisson" else
                                     torch.ones_like(prof))  # fmt: skip

    def prepare(self, patterns, rotations) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(x, rotations)`` that the model and guide take.

        ``x`` is the radially normalised, fluence-corrected pattern (Gaussian) or the
        raw counts (Poisson), zero on masked pixels; the rotations are canonical.
        """
        if self.mean_total is None:
            raise ValueError("VolumeVAE: call fit() first (it fits the radial normalisation)")
        x, r = self._check(patterns, rotations)
        x = x * self.mask
        if self.model.likelihood == "gaussian":
            totals = (x * self.mask).sum(dim=(-1, -2))
            rel = (totals / self.mean_total).clamp_min(1e-6)
            x = self.normalizer.transform(x / rel[:, None, None], mask=self.mask)
        return x, self.canonical_rotations(r)

    # ------------------------------------------------------------------- fit
    def fit(self, patterns, rotations, epochs: int = 50, batch_size: int = 64,
            lr: float = 1e-3, val_fraction: float = 0.0, callbacks=(),
            checkpoint_path=None, quiet: bool = False) -> dict:  # fmt: skip
        """Train with :class:`pyrolatent.infer.trainer.Trainer`.

        Parameters
        ----------
        patterns : array_like
            ``(N, S, S)`` photon counts (or intensities), non-negative.
        rotations : array_like
            ``(N, 3, 3)`` orientations (e.g. from
            :class:`~pyrolatent.spi.orientation.OrientationSearch`).
        epochs, batch_size, lr
            Training schedule.
        val_fraction : float
            Fraction of patterns held out for the validation loss.
        callbacks, checkpoint_path
            Passed to the Trainer.
        quiet : bool
            Hide progress bars.

        Returns
        -------
        dict
            The Trainer's history.
        """
        from ..infer.trainer import Trainer

        x, r = self._check(patterns, rotations)
        if self.mean_total is None:
            self._fit_preprocessing(x * self.mask)
        data = self.prepare(x, r)
        val = None
        if val_fraction > 0:
            n_val = max(1, int(round(val_fraction * x.shape[0])))
            g = torch.Generator().manual_seed(self.config["seed"])
            perm = torch.randperm(x.shape[0], generator=g).to(self.device)
            val = tuple(t[perm[:n_val]] for t in data)
            data = tuple(t[perm[n_val:]] for t in data)
        if self.trainer is None:
            self.trainer = Trainer(self.model, self.guide, lr=lr, seed=self.config["seed"],
                                   device=self.device, callbacks=callbacks,
                                   checkpoint_path=checkpoint_path, quiet=quiet)  # fmt: skip
        self.history = self.trainer.fit(data, epochs=epochs, batch_size=batch_size, val_data=val)
        return self.history

    # --------------------------------------------------------------- analysis
    @torch.no_grad()
    def encode(self, patterns, rotations, batch_size: int = 256):
        """``(loc, scale)`` of q(z) for each pattern, each ``(N, latent_dim)``, on the CPU."""
        x, r = self.prepare(patterns, rotations)
        self.guide.eval()
        locs, scales = [], []
        for i in range(0, x.shape[0], batch_size):
            loc, scale = self.guide.encode(x[i : i + batch_size], r[i : i + batch_size])
            locs.append(loc)
            scales.append(scale)
        return torch.cat(locs).cpu(), torch.cat(scales).cpu()

    @torch.no_grad()
    def generate(self, z, normalized: bool = True) -> torch.Tensor:
        """Intensity volumes ``(K, S, S, S)`` for latents ``(K, D)``, on the CPU.

        Volumes are indexed ``[z, y, x]``.

        ``normalized=False`` multiplies the radial profile back (photons per pixel
        at the dataset's mean fluence; the paper's final intensities).
        """
        z = as_tensor(z, name="z", device=self.device)
        if z.dim() == 1:
            z = z[:, None] if self.model.latent_dim == 1 else z[None]
        if z.shape[-1] != self.model.latent_dim:
            raise ValueError(f"z: expected (K, {self.model.latent_dim}), got {tuple(z.shape)}")
        vol = self.model.generate(z)
        if not normalized:
            if self.mean_total is None:
                raise ValueError("VolumeVAE: call fit() first (the radial profile is fitted)")
            vol = self.normalizer.inverse_transform(vol, volume=True)
        return vol.cpu()

    @torch.no_grad()
    def reconstruct(self, patterns, rotations) -> torch.Tensor:
        """Normalised slices ``(N, S, S)`` (on the CPU) of the volumes at the encoded ``z``."""
        loc, _ = self.encode(patterns, rotations)
        _, r = self.prepare(patterns, rotations)
        return self.model.slices(loc.to(r.device), r).cpu()

    # ------------------------------------------------------------ checkpoints
    def save(self, path) -> None:
        """Write architecture, weights and preprocessing atomically."""
        state = {
            "kind": "volume_vae",
            "config": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in self.config.items()
            },  # fmt: skip
            "mask": self.mask.cpu(),
            "model": self.model.state_dict(),
            "guide": self.guide.state_dict(),
            "normalizer": self.normalizer.state_dict() if self.mean_total is not None else None,
            "mean_total": self.mean_total,
        }
        save_checkpoint(state, Path(path))

    @classmethod
    def load(cls, path, device=None) -> VolumeVAE:
        """Rebuild a :class:`VolumeVAE` written by :meth:`save` (default priors)."""
        state = load_checkpoint(path)
        if state.get("kind") != "volume_vae":
            raise CheckpointError(f"{path}: not a VolumeVAE checkpoint")
        cfg = dict(state["config"])
        cfg["encoder_channels"] = tuple(cfg["encoder_channels"])
        vae = cls(mask=state["mask"], device=device, **cfg)
        vae.model.load_state_dict(state["model"])
        vae.guide.load_state_dict(state["guide"])
        if state["normalizer"] is not None:
            vae.normalizer.load_state_dict(state["normalizer"])
            vae.mean_total = float(state["mean_total"])
        return vae
