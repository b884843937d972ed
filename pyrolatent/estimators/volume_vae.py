"""The user-facing volume VAE estimator (:class:`VolumeVAE`).

The model is :class:`~pyrolatent.models.volume_vae.VolumeVAEModel`, the guide
:class:`~pyrolatent.guides.volume_vae.VolumeVAEGuide`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checks import as_tensor
from ..device import resolve_device
from ..guides.volume_vae import VolumeVAEGuide
from ..io.checkpoint import (
    CheckpointError,
    check_config,
    check_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from ..models.sites import Z
from ..models.volume_vae import VolumeVAEModel
from ..primitives.groups import canonicalize
from ..primitives.radial import RadialNormalizer
from ..primitives.so3 import check_rotations
from .base import Estimator, build_from_checkpoint, numpy
from .priors import prior_specs, rebuild_priors
from .volume_data import PosedPatterns
from .volume_grid import GridMarginal, to_given_frame

__all__ = ["VolumeVAE"]


class VolumeVAE(Estimator):
    """User-facing volume VAE: preprocessing, training with the shared Trainer, analysis.

    Parameters
    ----------
    size : int
        Odd pattern size ``S`` (the volume is ``S^3``).
    latent_dim : int
    decoder : {"implicit", "voxel"}
    likelihood : {"poisson", "gaussian"}
        ``"poisson"`` (default): raw photon counts (whole numbers, else ``fit``
        refuses) with a per-pattern ``fluence`` latent. ``"gaussian"``: patterns
        are divided by their photon total (relative to the dataset mean) and by
        the dataset's radial average; for intensities that are not counts. On
        2,100 frames of a real ribosome map and its stretched copy at 10^4 photons
        (issue 18) |Spearman(z, stretch)| was 0.96 with Poisson, 0.62 Gaussian.
    group : str, optional
        Point group of the particle. Default None: no symmetry beyond Friedel's
        law ``I(q) = I(-q)`` (a molecule, e.g. a PDB structure); name one for a
        symmetric particle (``"Oh"`` for cubes, exact with the implicit decoder).
    mask : array_like, optional
        ``(S, S)`` bool, True = valid pixel (beamstop and gaps False).
    z_prior, fluence_prior : Distribution or callable, optional
        See :class:`VolumeVAEModel`.
    seed : int
        Seeds parameter initialisation and the estimator's own training stream.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.
    model_options : dict, optional
        Extra keyword arguments of :class:`VolumeVAEModel` (``sigma``,
        ``n_features``, ``fourier_scale``, ``hidden``, ``depth``, ``base_channels``).
    encoder : {"cnn", "points"}
        The guide's encoder (see :class:`VolumeVAEGuide`): ``"cnn"`` (default)
        is a CNN over the image plus the 9 rotation entries; ``"points"`` places
        each pixel at its object-frame ``q`` (on the stretched 4BED neither
        escaped the ELBO's collapse, see ``method`` of :meth:`fit`).
    encoder_channels : tuple of int
        CNN channels (``encoder="cnn"``).
    encoder_hidden : int
    model, guide : PyroModule, optional
        Use these instead of building ``VolumeVAEModel``/``VolumeVAEGuide``.
    """

    def __init__(self, size: int, latent_dim: int = 1, decoder: str = "implicit",
                 likelihood: str = "poisson", group: str | None = None, mask=None,
                 z_prior=None, fluence_prior=None, seed: int = 0, device=None,
                 model_options: dict | None = None,
                 encoder: str = "cnn",
                 encoder_channels: tuple[int, ...] = (16, 32, 64, 64),
                 encoder_hidden: int = 128, model=None, guide=None):  # fmt: skip

        self.device = resolve_device(device)
        self.config = {
            "size": int(size), "latent_dim": int(latent_dim), "decoder": decoder,
            "likelihood": likelihood, "group": group, "seed": int(seed),
            "model_options": dict(model_options or {}), "encoder": encoder,
            "encoder_channels": tuple(encoder_channels), "encoder_hidden": int(encoder_hidden),
        }  # fmt: skip
        self.priors = {"z_prior": z_prior, "fluence_prior": fluence_prior}
        with self._seeded(seed):
            if model is None:
                model = VolumeVAEModel(size, latent_dim=latent_dim, decoder=decoder,
                                       likelihood=likelihood, group=group, mask=mask,
                                       z_prior=z_prior, fluence_prior=fluence_prior,
                                       **self.config["model_options"])  # fmt: skip
            self.model = model.to(self.device)
            if guide is None:
                guide = VolumeVAEGuide(size, latent_dim=latent_dim, likelihood=likelihood,
                                       mask=self.model.mask, channels=tuple(encoder_channels),
                                       hidden=encoder_hidden, encoder=encoder,
                                       symmetry="Oh" if group == "Oh" else None)  # fmt: skip
            self.guide = guide.to(self.device)
        self.normalizer = RadialNormalizer()
        self.mean_total: float | None = None
        self.trainer = None
        #: method="grid": the latent grid, the pose ball, the optimizer and the history
        self.grid: GridMarginal | None = None

    @property
    def history(self) -> dict[str, list]:
        """Per-epoch training history (``epoch``, ``loss``)."""
        return self.grid.history if self.grid is not None else super().history

    @property
    def epochs_trained(self) -> int:
        """Epochs trained so far."""
        return len(self.grid.history["epoch"]) if self.grid is not None else (
            super().epochs_trained)  # fmt: skip

    @property
    def size(self) -> int:
        return self.model.size

    @property
    def mask(self) -> torch.Tensor:
        return self.model.mask

    # ------------------------------------------------------------ preprocessing
    def _data(self, patterns, rotations, block_size: int = 4096) -> PosedPatterns:
        return PosedPatterns(patterns, rotations, self.size, self.model.likelihood == "poisson",
                             block_size, self.device)  # fmt: skip

    def _check(self, patterns, rotations):
        data = self._data(patterns, rotations)
        if data.streamed:
            raise ValueError("patterns: frames on disk are read by fit and encode (method='grid')")
        return data.x, data.r

    def canonical_rotations(self, rotations) -> torch.Tensor:
        """Rotations canonicalised into the group's (Friedel-reduced) fundamental zone."""
        r = check_rotations(rotations, name="rotations", proper=True).to(self.device)
        group = self.model.group or "C1"
        return canonicalize(r, group, friedel=True)

    def _fit_preprocessing(self, data: PosedPatterns) -> None:
        mean, self.mean_total = data.mean_and_total(self.mask)
        self.normalizer.fit(mean[None], mask=self.mask)
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
        return self._transform(*self._check(patterns, rotations))

    def _transform(self, x: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x * self.mask
        if self.model.likelihood == "gaussian":
            totals = (x * self.mask).sum(dim=(-1, -2))
            rel = (totals / self.mean_total).clamp_min(1e-6)
            x = self.normalizer.transform(x / rel[:, None, None], mask=self.mask)
        return x, self.canonical_rotations(r)

    # ------------------------------------------------------------------- fit
    def fit(self, patterns, rotations, epochs: int = 50, batch_size: int = 64,
            lr: float = 1e-3, val_fraction: float = 0.0, callbacks=(),
            checkpoint_path=None, progress: bool = True,
            quiet: bool | None = None, method: str = "elbo", n_grid: int = 8,
            pose_radius: float = 0.0, pose_spacing: float = 0.04,
            block_size: int = 4096) -> VolumeVAE:  # fmt: skip
        """Train ``epochs`` more epochs with :class:`pyrolatent.infer.trainer.Trainer`.

        ``method="elbo"`` (default) fits the model and the amortised guide by
        the ELBO. ``method="grid"`` (Poisson, ``latent_dim=1``) fits the decoder
        by the exact marginal likelihood over ``n_grid`` latents evenly spaced
        on ``[-1.75, 1.75]`` (weighted by the prior), the fluence profiled out,
        and :meth:`encode` then returns each pattern's exact posterior mean and
        standard deviation on that grid (no guide). Per-frame training on a
        stretched 4BED (``benchmarks/volume_vae_pdb.py``, 2,000 frames at 10^4
        photons) collapses with the ELBO (``|Spearman(z, stretch)| < 0.2``: the
        decoder fits the mean first and neither encoder learns to read the
        stretch from one posed frame) but not on the grid: true orientations,
        seeds 0-1, 8 epochs, decoder 128 features and width 128, ``|Spearman|``
        0.969-0.974, the generated ends' CC 0.953-0.963 with their own truth,
        0.878-0.884 with the other end's (the two truths: 0.777).

        With ``pose_radius > 0`` (grid only) the given orientations are the
        centres of a search: each pattern's orientation is summed out exactly
        over the rotations ``R D_j`` of a ball (``pose_radius``, rotation
        vectors on a grid of step ``pose_spacing``, radians; 0.08 / 0.04 gives
        33 candidates), jointly with ``z``. The ball may change between calls;
        :meth:`encode` uses the last one.

        Parameters
        ----------
        patterns : array_like or frame source
            ``(N, S, S)`` photon counts (or intensities), non-negative; or
            (``method="grid"``) frames on disk, an ``EMCFile`` or ``CXIFrames``
            of ``S x S`` frames, read ``block_size`` at a time (each epoch
            visits the blocks in a random order and shuffles inside each).
        rotations : array_like
            ``(N, 3, 3)`` orientations (e.g. from
            :class:`~pyrolatent.spi.orientation.OrientationSearch` or
            :func:`~pyrolatent.spi.emc.local_emc`).
        epochs, batch_size, lr
            Epochs to add to those already trained, mini-batch size, Adam rate.
        val_fraction : float
            Fraction of patterns held out for the validation loss.
        callbacks, checkpoint_path
            Passed to the Trainer. With ``method="grid"`` the estimator is saved to
            ``checkpoint_path`` after every epoch; ``load`` it and ``fit`` to go on.
        progress : bool
            Show the progress bar (``quiet=`` is a deprecated alias).
        method : {"elbo", "grid"}
        n_grid : int
            Latent values of the grid method.
        pose_radius, pose_spacing : float
            The orientation ball of the grid method (radians); see above.
        block_size : int
            Frames per block read from a frame source.

        Returns
        -------
        VolumeVAE
            ``self``; the per-epoch losses are in :attr:`history`.
        """
        if method not in ("elbo", "grid"):
            raise ValueError(f"method: expected 'elbo' or 'grid', got {method!r}")
        data = self._data(patterns, rotations, block_size)
        if data.streamed and method != "grid":
            raise ValueError("patterns: frames on disk (a frame source) need method='grid'")
        if self.mean_total is None:
            self._fit_preprocessing(data)
        if (method == "grid") != (self.grid is not None) and self.epochs_trained > 0:
            raise ValueError(f"method={method!r}: this model was trained with the other method")
        if method != "grid" and pose_radius:
            raise ValueError("pose_radius: only with method='grid'")
        if method == "grid":
            unsupported = [name for name, given in (("val_fraction", val_fraction > 0),
                           ("callbacks", bool(callbacks))) if given]  # fmt: skip
            if unsupported:
                raise ValueError(f"method='grid' does not support {', '.join(unsupported)}")
            settings = dict(n_grid=n_grid, pose_radius=float(pose_radius),
                            pose_spacing=float(pose_spacing))  # fmt: skip
            return self._fit_grid(data, epochs, batch_size, lr, self._progress(progress, quiet),
                                  settings, checkpoint_path)  # fmt: skip
        n = len(data)
        data = self._transform(data.x, data.r)
        val = None
        if val_fraction > 0:
            n_val = max(1, int(round(val_fraction * n)))
            g = torch.Generator().manual_seed(self.config["seed"])
            perm = torch.randperm(n, generator=g).to(self.device)
            val = tuple(t[perm[:n_val]] for t in data)
            data = tuple(t[perm[n_val:]] for t in data)
        trainer = self._trainer(lr=lr, callbacks=callbacks, checkpoint_path=checkpoint_path,
                                progress=self._progress(progress, quiet))  # fmt: skip
        trainer.fit(data, epochs=epochs, batch_size=batch_size, val_data=val)
        return self

    def _fit_grid(self, data, epochs, batch_size, lr, show, settings, path) -> VolumeVAE:
        if self.model.likelihood != "poisson" or self.model.latent_dim != 1:
            raise ValueError("method='grid': the Poisson likelihood and latent_dim=1 only")
        if self.grid is None:
            self.grid = GridMarginal(device=self.device, **settings)
        elif self.grid.settings["n_grid"] != settings["n_grid"]:
            raise ValueError(f"n_grid: this model was trained with {self.grid.settings['n_grid']}")
        else:  # the pose ball may change between calls (e.g. fixed orientations first)
            self.grid.set_pose(settings["pose_radius"], settings["pose_spacing"])
        self.grid.fit(self.model, data, self._transform, epochs, batch_size, lr,
                      seed=self.config["seed"], progress=show,
                      on_epoch=None if path is None else lambda: self.save(path))  # fmt: skip
        return self

    # --------------------------------------------------------------- analysis
    @torch.no_grad()
    def encode(self, patterns, rotations, batch_size: int = 256, block_size: int = 4096) -> dict:
        """Posterior of ``z`` for each pattern: ``{"z": {"loc", "scale"}}``, numpy ``(N, D)``.

        From the guide, or (after ``fit(method="grid")``) the exact posterior
        mean and standard deviation on the latent grid. After a grid fit with
        ``pose_radius > 0`` also ``"rotation"`` ``(N, 3, 3)``, the
        posterior-mean orientation (about the given one), and
        ``"rotation_spread"`` ``(N,)``, its RMS spread in radians.

        ``patterns`` may be a frame source (see :meth:`fit`) after a grid fit.
        """
        if self.mean_total is None:
            raise ValueError("VolumeVAE: call fit() first (it fits the radial normalisation)")
        data = self._data(patterns, rotations, block_size)
        if data.streamed and self.grid is None:
            raise ValueError("patterns: frames on disk (a frame source) need a grid fit")
        self.guide.eval()
        parts: dict[str, list] = {}
        for x_blk, r_blk in data.blocks():
            x, r = self._transform(x_blk, r_blk)
            for i in range(0, x.shape[0], batch_size):
                xb, rb = x[i : i + batch_size], r[i : i + batch_size]
                if self.grid is None:
                    loc, scale = self.guide.encode(xb, rb)
                    out = {"loc": loc, "scale": scale}
                else:
                    out = self.grid.posterior(self.model, xb, rb)
                for k, v in out.items():
                    parts.setdefault(k, []).append(v)
        res = {k: torch.cat(v) for k, v in parts.items()}
        enc = {Z: {"loc": numpy(res["loc"]), "scale": numpy(res["scale"])}}
        if "rotation" in res:  # found about the canonical rotations: back to the given ones
            rot = to_given_frame(res["rotation"], data.r, self.model.group or "C1")
            enc["rotation"], enc["rotation_spread"] = numpy(rot), numpy(res["spread"])
        return enc

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
        loc = torch.as_tensor(self.encode(patterns, rotations)[Z]["loc"])
        _, r = self.prepare(patterns, rotations)
        return self.model.slices(loc.to(r.device), r).cpu()

    # ------------------------------------------------------------ checkpoints
    def save(self, path) -> Path:
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
            "priors": prior_specs(self.priors),
            "mean_total": self.mean_total,
            "grid": None if self.grid is None else self.grid.state_dict(),
        }
        return save_checkpoint(state, Path(path))

    @classmethod
    def load(cls, path, device=None, **priors) -> VolumeVAE:
        """Rebuild a :class:`VolumeVAE` written by :meth:`save`.

        Custom priors stored as a distribution class and its parameters are
        rebuilt; others must be passed again (``z_prior=``, ``fluence_prior=``),
        else a ``CheckpointError`` says which.
        """
        state = load_checkpoint(path)
        if state.get("kind") != "volume_vae":
            raise CheckpointError(f"{path}: not a VolumeVAE checkpoint")
        cfg = dict(check_config(state.get("config"), path))
        cfg["encoder_channels"] = tuple(cfg["encoder_channels"])
        cfg.setdefault("encoder", "cnn")  # checkpoints from before the option
        cfg.update(rebuild_priors(state.get("priors", {}), priors, path))
        vae = build_from_checkpoint(lambda: cls(mask=state["mask"], device=device, **cfg), path)
        check_state_dict(vae.model, state.get("model"), path, "model")
        check_state_dict(vae.guide, state.get("guide"), path, "guide")
        vae.model.load_state_dict(state["model"])
        vae.guide.load_state_dict(state["guide"])
        if state["normalizer"] is not None:
            vae.normalizer.load_state_dict(state["normalizer"])
            vae.mean_total = float(state["mean_total"])
        if state.get("grid") is not None:
            vae.grid = GridMarginal.from_state(state["grid"], vae.device)
        elif state.get("grid_z") is not None:  # checkpoints from before the pose ball
            grid = {"z": state["grid_z"], "history": state["grid_history"]}
            vae.grid = GridMarginal.from_state(grid, vae.device)
        return vae
