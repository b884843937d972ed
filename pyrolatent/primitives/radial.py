"""Radial averages and radial-average normalisation of centred patterns and volumes.

Diffraction from a compact particle falls by orders of magnitude from the centre
out; dividing each pattern by the dataset's radial-average intensity (Ayyer et
al., appendix B.1) weights the high-q shape information evenly. The profile is
fitted once on a dataset and can be expanded back onto 2D patterns or 3D volumes
(to multiply generated intensities back).
"""

from __future__ import annotations

import torch

from ..checks import as_images, as_tensor

__all__ = ["RadialNormalizer", "radial_profile", "radius_map"]


def radius_map(size: int, ndim: int = 2, dtype=torch.float32, device=None) -> torch.Tensor:
    """Distance in pixels from the central pixel, ``(S, S)`` or ``(S, S, S)``."""
    if ndim not in (2, 3):
        raise ValueError(f"ndim: expected 2 or 3, got {ndim}")
    c = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    if ndim == 2:
        return (c[:, None] ** 2 + c[None] ** 2).sqrt()
    return (c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None] ** 2).sqrt()


def _check_mask(mask, size: int, device) -> torch.Tensor:
    if mask is None:
        return torch.ones(size, size, dtype=torch.bool, device=device)
    m = as_tensor(mask, name="mask", dtype=None, device=device)
    if tuple(m.shape) != (size, size):
        raise ValueError(f"mask: expected shape ({size}, {size}), got {tuple(m.shape)}")
    return m.bool()


def radial_profile(patterns, mask=None) -> torch.Tensor:
    """Mean intensity per integer radius bin over a stack of patterns.

    Parameters
    ----------
    patterns : array_like
        ``(N, S, S)``, centred on pixel ``(S - 1) / 2``.
    mask : array_like, optional
        ``(S, S)`` bool, True = valid pixel.

    Returns
    -------
    torch.Tensor
        ``(n_bins,)`` with ``n_bins = floor(max radius) + 1``; bins without any
        valid pixel are filled from the nearest valid bin.
    """
    x = as_images(patterns, name="patterns")
    size = x.shape[-1]
    if x.shape[-2] != size:
        raise ValueError(f"patterns: expected square patterns, got {tuple(x.shape[-2:])}")
    m = _check_mask(mask, size, x.device)
    r = radius_map(size, device=x.device)
    bins = r.round().long()
    n_bins = int(bins.max()) + 1
    total = torch.zeros(n_bins, dtype=torch.float64, device=x.device)
    count = torch.zeros(n_bins, dtype=torch.float64, device=x.device)
    total.index_add_(0, bins[m], x[:, m].double().sum(0))
    count.index_add_(0, bins[m], torch.full_like(bins[m], x.shape[0], dtype=torch.float64))
    valid = count > 0
    if not bool(valid.any()):
        raise ValueError("mask: no valid pixels")
    prof = torch.where(valid, total / count.clamp_min(1), torch.zeros_like(total))
    idx = torch.arange(n_bins, device=x.device)
    good = idx[valid]
    nearest = good[(idx[:, None] - good[None]).abs().argmin(dim=1)]
    return prof[nearest].to(x.dtype)


class RadialNormalizer:
    """Divide patterns by the dataset's radial-average intensity.

    Parameters
    ----------
    floor : float
        Relative floor on the profile (``floor * max``), so the division stays
        finite where the average is ~0.

    Attributes
    ----------
    profile_ : torch.Tensor
        ``(n_bins,)`` mean intensity per integer radius, after :meth:`fit`.
    size_ : int
        Pattern size seen by :meth:`fit`.
    """

    def __init__(self, floor: float = 1e-6):
        self.floor = float(floor)
        self.profile_: torch.Tensor | None = None
        self.size_: int | None = None

    def fit(self, patterns, mask=None) -> RadialNormalizer:
        """Estimate the radial profile from ``(N, S, S)`` patterns (valid pixels only)."""
        x = as_images(patterns, name="patterns")
        prof = radial_profile(x, mask=mask)
        self.profile_ = prof.clamp_min(self.floor * float(prof.max()))
        self.size_ = int(x.shape[-1])
        return self

    def _require_fit(self, size: int):
        if self.profile_ is None:
            raise ValueError("RadialNormalizer: call fit() first")
        if size != self.size_:
            raise ValueError(f"patterns: size {size} does not match the fitted size {self.size_}")

    def profile_map(self, size: int | None = None, ndim: int = 2, device=None) -> torch.Tensor:
        """The profile on a ``(S, S)`` or ``(S, S, S)`` grid, linearly interpolated in r."""
        if self.profile_ is None:
            raise ValueError("RadialNormalizer: call fit() first")
        size = self.size_ if size is None else int(size)
        prof = self.profile_.to(device) if device is not None else self.profile_
        r = radius_map(size, ndim=ndim, device=prof.device)
        r = r.clamp_max(prof.shape[0] - 1)
        lo = r.floor().long()
        hi = (lo + 1).clamp_max(prof.shape[0] - 1)
        w = r - lo
        return prof[lo] * (1 - w) + prof[hi] * w

    def transform(self, patterns, mask=None) -> torch.Tensor:
        """``patterns / profile``, zero on masked pixels. ``(N, S, S)`` -> ``(N, S, S)``."""
        x = as_images(patterns, name="patterns")
        self._require_fit(x.shape[-1])
        out = x / self.profile_map(device=x.device)
        if mask is not None:
            out = out * _check_mask(mask, x.shape[-1], x.device)
        return out

    def fit_transform(self, patterns, mask=None) -> torch.Tensor:
        """:meth:`fit` then :meth:`transform`."""
        return self.fit(patterns, mask=mask).transform(patterns, mask=mask)

    def inverse_transform(self, normalized, volume: bool = False) -> torch.Tensor:
        """Multiply the profile back.

        Parameters
        ----------
        normalized : array_like
            ``(..., S, S)`` patterns, or ``(..., S, S, S)`` volumes with ``volume=True``
            (the profile is then expanded with the 3D radius).
        """
        x = as_tensor(normalized, name="normalized")
        size = x.shape[-1]
        if size != self.size_:
            raise ValueError(f"normalized: size {size} does not match the fitted size {self.size_}")
        return x * self.profile_map(ndim=3 if volume else 2, device=x.device)

    def state_dict(self) -> dict:
        """Tensors only, for :func:`pyrolatent.io.checkpoint.save_checkpoint`."""
        return {"profile": self.profile_, "size": torch.tensor(self.size_), "floor": self.floor}

    def load_state_dict(self, state: dict) -> RadialNormalizer:
        self.profile_ = state["profile"]
        self.size_ = int(state["size"])
        self.floor = float(state["floor"])
        return self
