"""Classical feature maps for movies without training labels.

A band-pass (difference of Gaussians) map scaled to ``[0, 1]`` per frame can
stand in for a network's probability map in :func:`~pyrolatent.segmentation.locate`,
with a threshold from Otsu's method.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from ..checks import as_images

__all__ = ["bandpass_map", "otsu_threshold"]


def bandpass_map(
    frames,
    *,
    noise_sigma: float = 1.0,
    background_sigma: float = 10.0,
    dark_particles: bool = False,
) -> np.ndarray:
    """Difference-of-Gaussians map of particles, scaled to ``[0, 1]`` per frame.

    Parameters
    ----------
    frames : array_like
        ``(N, H, W)`` frames.
    noise_sigma : float
        Smoothing that removes pixel noise, pixels (0 disables).
    background_sigma : float
        Scale of the background subtracted, pixels (larger than the particles).
    dark_particles : bool
        Particles darker than the background (bright-field, TEM); the map is inverted.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` float32: 0 for background and below, 1 for the strongest particle
        pixel of each frame.
    """
    x = as_images(frames, "frames", ndim=(3,)).numpy().astype(np.float64)
    if background_sigma <= noise_sigma:
        raise ValueError("background_sigma must be larger than noise_sigma")
    if dark_particles:
        x = -x
    out = np.empty(x.shape, np.float32)
    for i, frame in enumerate(x):
        smooth = ndi.gaussian_filter(frame, noise_sigma) if noise_sigma > 0 else frame
        band = np.clip(smooth - ndi.gaussian_filter(frame, background_sigma), 0, None)
        top = band.max()
        out[i] = band / top if top > 0 else band
    return out


def otsu_threshold(maps) -> float:
    """Otsu's threshold of all values of ``maps`` (a single number for a movie)."""
    values = np.asarray(maps, dtype=np.float64).ravel()
    if not np.isfinite(values).all():
        raise ValueError("maps: contain NaN or Inf")
    if values.min() == values.max():
        return float(values.max())
    return float(threshold_otsu(values))
