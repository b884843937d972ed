"""Batched augmentation of image/mask pairs on tensors (on any device).

Geometric transforms (right-angle rotations, flips, arbitrary rotations and
zoom) are applied identically to images and masks; intensity transforms
(contrast, gamma, Gaussian and Poisson noise) only to images. Arbitrary
rotation and zoom go through the shared warp,
:func:`pyrolatent.primitives.warp.warp_images`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..primitives.warp import warp_images

__all__ = ["Augmentation"]


@dataclass
class Augmentation:
    """Random augmentation settings.

    Attributes
    ----------
    rot90 : bool
        Random multiples of 90 degrees.
    flips : bool
        Random horizontal and vertical flips.
    max_rotation : float
        Arbitrary rotation drawn uniformly in ``[-max_rotation, max_rotation]`` radians
        (0 disables it).
    zoom : tuple of float
        Range of magnification; ``(1, 1)`` disables zoom.
    gaussian_noise : float
        Upper bound of the noise standard deviation, in units of the (standardised) image.
    poisson_counts : tuple of float
        Range of the mean photon count per pixel for Poisson noise; ``None`` disables it.
    contrast : tuple of float
        Range of the multiplicative contrast factor about the image mean.
    gamma : tuple of float
        Range of the gamma exponent applied to min-max rescaled intensities.
    """

    rot90: bool = True
    flips: bool = True
    max_rotation: float = math.pi
    zoom: tuple[float, float] = (0.9, 1.1)
    gaussian_noise: float = 0.1
    poisson_counts: tuple[float, float] | None = None
    contrast: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.8, 1.25)

    def __call__(
        self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch.

        Parameters
        ----------
        images : torch.Tensor
            ``(B, C, H, W)`` float.
        masks : torch.Tensor
            ``(B, K, H, W)`` float in {0, 1} (one-hot for multi-class targets).
        generator : torch.Generator, optional
            Source of randomness (on the images' device for CUDA).

        Returns
        -------
        images, masks : torch.Tensor
            Same shapes; masks stay binary.
        """
        b = images.shape[0]
        dev, dt = images.device, images.dtype

        def rand(*shape):
            return torch.rand(*shape, generator=generator, device=dev, dtype=dt)

        if self.rot90 and images.shape[-1] == images.shape[-2]:
            k = torch.randint(0, 4, (b,), generator=generator, device=dev)
            imgs, msks = images.clone(), masks.clone()
            for q in range(1, 4):
                sel = k == q
                if bool(sel.any()):
                    imgs[sel] = torch.rot90(images[sel], q, dims=(-2, -1))
                    msks[sel] = torch.rot90(masks[sel], q, dims=(-2, -1))
            images, masks = imgs, msks
        if self.flips:
            for dim in (-1, -2):
                sel = rand(b) < 0.5
                if bool(sel.any()):
                    images = torch.where(sel.view(b, 1, 1, 1), images.flip(dim), images)
                    masks = torch.where(sel.view(b, 1, 1, 1), masks.flip(dim), masks)
        rotate = self.max_rotation > 0
        zoom = self.zoom[0] != 1 or self.zoom[1] != 1
        if rotate or zoom:
            angle = (2 * rand(b) - 1) * self.max_rotation if rotate else None
            scale = self.zoom[0] + (self.zoom[1] - self.zoom[0]) * rand(b) if zoom else None
            images = warp_images(images, angle=angle, scale=scale, padding_mode="reflection")
            masks = warp_images(masks, angle=angle, scale=scale, padding_mode="reflection")
            masks = (masks > 0.5).to(masks.dtype)
        if self.contrast[0] != 1 or self.contrast[1] != 1:
            factor = self.contrast[0] + (self.contrast[1] - self.contrast[0]) * rand(b, 1, 1, 1)
            mean = images.mean(dim=(-2, -1), keepdim=True)
            images = (images - mean) * factor + mean
        if self.gamma[0] != 1 or self.gamma[1] != 1:
            lo = images.amin(dim=(-2, -1), keepdim=True)
            hi = images.amax(dim=(-2, -1), keepdim=True)
            span = (hi - lo).clamp_min(1e-6)
            g = self.gamma[0] + (self.gamma[1] - self.gamma[0]) * rand(b, 1, 1, 1)
            images = ((images - lo) / span).clamp(0, 1) ** g * span + lo
        if self.poisson_counts is not None:
            lo = images.amin(dim=(-2, -1), keepdim=True)
            hi = images.amax(dim=(-2, -1), keepdim=True)
            span = (hi - lo).clamp_min(1e-6)
            c0, c1 = self.poisson_counts
            counts = c0 + (c1 - c0) * rand(b, 1, 1, 1)
            rate = (images - lo) / span * counts
            images = torch.poisson(rate, generator=generator) / counts * span + lo
        if self.gaussian_noise > 0:
            sigma = self.gaussian_noise * rand(b, 1, 1, 1)
            noise = torch.randn(images.shape, generator=generator, device=dev, dtype=dt)
            images = images + sigma * images.std(dim=(-2, -1), keepdim=True) * noise
        return images, masks
