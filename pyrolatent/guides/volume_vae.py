"""Amortised guide of the volume VAE: q(z, fluence | pattern, orientation)."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule

from ..models.sites import FLUENCE, PLATE, Z
from ..nn.volume import PatternEncoder, SliceSetEncoder

__all__ = ["VolumeVAEGuide"]


class VolumeVAEGuide(PyroModule):
    """An encoder of the log pattern and its orientation gives q(z) (and q(fluence)).

    The encoder sees ``log(1 + x / (input_scale * t))`` on valid pixels, where
    ``t`` is the pattern's total over valid pixels relative to the dataset mean
    (so a fluence change does not move ``z``), the orientation (canonicalised
    into the fundamental zone by the caller) and ``log t``. ``encoder="cnn"``: a
    CNN over the image, its features joined with the 9 entries of the rotation
    (:class:`~pyrolatent.nn.volume.PatternEncoder`). ``encoder="points"``: each
    pixel at its object-frame ``q = R p``
    (:class:`~pyrolatent.nn.volume.SliceSetEncoder`), which sees a deformation of
    an asymmetric object the same way in every pose.

    Parameters
    ----------
    size : int
        Pattern size ``S``.
    latent_dim : int
    likelihood : {"gaussian", "poisson"}
        ``"poisson"`` adds the per-pattern ``fluence`` site (LogNormal).
    mask : array_like, optional
        ``(S, S)`` bool, True = valid pixel.
    channels : tuple of int
        Encoder convolution channels.
    hidden : int
        Encoder MLP width.
    encoder : {"cnn", "points"}
        See above.
    symmetry : {None, "Oh"}
        Point group of the ``"points"`` encoder's features (as the decoder's).
    """

    def __init__(self, size: int, latent_dim: int = 1, likelihood: str = "gaussian",
                 mask=None, channels: tuple[int, ...] = (16, 32, 64, 64),
                 hidden: int = 128, encoder: str = "cnn",
                 symmetry: str | None = None):  # fmt: skip
        super().__init__()
        if likelihood not in ("gaussian", "poisson"):
            raise ValueError(f"likelihood: expected 'gaussian' or 'poisson', got {likelihood!r}")
        if encoder not in ("cnn", "points"):
            raise ValueError(f"encoder: expected 'cnn' or 'points', got {encoder!r}")
        self.size = int(size)
        self.latent_dim = int(latent_dim)
        self.likelihood = likelihood
        self.encoder_kind = encoder
        n_out = 2 * self.latent_dim + (2 if likelihood == "poisson" else 0)
        if encoder == "cnn":
            self.encoder = PatternEncoder(n_out, orientation_dim=10, channels=tuple(channels),
                                          hidden=int(hidden))  # fmt: skip
        else:
            self.encoder = SliceSetEncoder(n_out, self.size, extra_dim=1, symmetry=symmetry,
                                           hidden=int(hidden))  # fmt: skip
        m = torch.ones(size, size, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
        self.register_buffer("mask", m.bool().clone())
        self.register_buffer("input_scale", torch.ones(size, size))
        self.register_buffer("mean_total", torch.tensor(1.0))

    def _encode(self, x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
        m = self.mask.to(x.dtype)
        total = (x * m).sum(dim=(-1, -2)).clamp_min(1e-6) / self.mean_total
        img = torch.log1p((x / (self.input_scale * total[:, None, None])).clamp_min(0)) * m
        if self.encoder_kind == "points":
            return self.encoder(img, rotations, total.log()[:, None], mask=self.mask)
        feats = torch.cat([rotations.reshape(-1, 9), total.log()[:, None]], dim=-1)
        return self.encoder(img, feats)

    def encode(self, x: torch.Tensor, rotations: torch.Tensor):
        """``(loc, scale)`` of q(z), each ``(B, latent_dim)``."""
        out = self._encode(x, rotations)
        d = self.latent_dim
        return out[:, :d], self._scale(out[:, d : 2 * d])

    @staticmethod
    def _scale(raw: torch.Tensor) -> torch.Tensor:
        return F.softplus(raw) + 1e-4

    def forward(self, x: torch.Tensor, rotations: torch.Tensor):
        out = self._encode(x, rotations)
        d = self.latent_dim
        loc, scale = out[:, :d], self._scale(out[:, d : 2 * d])
        with pyro.plate(PLATE, x.shape[0]):
            z = pyro.sample(Z, dist.Normal(loc, scale).to_event(1))
            if self.likelihood == "poisson":
                f_loc = 0.1 * out[:, 2 * d]
                f_scale = 0.1 * F.softplus(out[:, 2 * d + 1]) + 1e-4
                pyro.sample(FLUENCE, dist.LogNormal(f_loc, f_scale))
        return z
