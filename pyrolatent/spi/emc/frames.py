"""Sparse photon frames and detector geometry for 3D EMC.

At a few hundred to a few thousand photons on ``10^4``-``10^5`` pixels almost
every pixel of a frame reads zero, so frames are held as photon lists, in the
layout of a CSR matrix (Dragonfly's ``.emc`` files store the same information):

* ``offsets`` ``(N + 1,)`` int64: frame ``n`` owns entries ``offsets[n]:offsets[n+1]``;
* ``pixels`` ``(nnz,)`` int32: the pixel index (into the detector's flat pixel list)
  of each nonzero count;
* ``counts`` ``(nnz,)`` int32: the photon count there (>= 1).

``10^6`` frames of 1,000 photons take about 8 GB this way; EMC streams them
from disk in blocks instead (see :mod:`pyrolatent.io.emc_photons`), so any object
with ``len()``, ``num_pixels`` and ``block(start, stop) -> PhotonFrames`` is a
frame source.

A :class:`Detector` lists, for every pixel ``t``, its scattering vector ``q_t``
in voxel units of the intensity volume (lab frame, ``(x, y, z)``, beam along z),
a multiplicative correction ``c_t`` (solid angle and polarisation) and whether
the pixel is measured. The volume is sampled at ``R q_t`` for orientation ``R``
(the convention of :func:`pyrolatent.primitives.volumes.slice_volume`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...checks import as_tensor, check_finite

__all__ = ["Detector", "PhotonFrames", "check_detector_mask", "flat_detector"]


def check_detector_mask(mask, num_pixels: int, name: str = "mask") -> torch.Tensor:
    """Validate a detector mask and return it as a flat bool tensor (True = measured).

    Parameters
    ----------
    mask : array_like
        ``(P,)`` or any shape with ``P`` elements in total (e.g. ``(H, W)``).
    num_pixels : int
        The detector's number of pixels ``P``.

    Raises
    ------
    ValueError
        The mask does not have ``P`` elements, or masks every pixel.
    """
    m = as_tensor(mask, name=name, dtype=None)
    if m.numel() != int(num_pixels):
        raise ValueError(
            f"{name}: shape {tuple(m.shape)} ({m.numel()} pixels) does not match the detector's "
            f"{int(num_pixels)} pixels"
        )
    m = m.reshape(-1).bool()
    if not bool(m.any()):
        raise ValueError(f"{name}: masks every pixel; nothing would be measured")
    return m


@dataclass
class Detector:
    """Per-pixel geometry of a detector for EMC.

    Attributes
    ----------
    coords : torch.Tensor
        ``(P, 3)`` float, scattering vectors ``q_t`` in voxels of the volume,
        ``(x, y, z)`` in the lab frame.
    correction : torch.Tensor
        ``(P,)`` positive multiplicative factor of the expected counts
        (solid angle x polarisation); ones for an ideal flat slice.
    mask : torch.Tensor
        ``(P,)`` bool, True = measured pixel (used in the likelihood and in the
        merge). Unmeasured pixels (beamstop, gaps, edges) are ignored.
    shape : tuple of int, optional
        ``(H, W)`` when the pixels form an image (row-major), for display.
    """

    coords: torch.Tensor
    correction: torch.Tensor
    mask: torch.Tensor
    shape: tuple | None = None

    def __post_init__(self):
        c = as_tensor(self.coords, name="coords", dtype=None)
        if not c.is_floating_point():
            c = c.float()
        if c.dim() != 2 or c.shape[1] != 3:
            raise ValueError(f"coords: expected (P, 3) q vectors, got {tuple(c.shape)}")
        check_finite(c, "coords")
        self.coords = c
        corr = as_tensor(self.correction, name="correction", dtype=c.dtype)
        if tuple(corr.shape) != (c.shape[0],):
            raise ValueError(f"correction: expected ({c.shape[0]},), got {tuple(corr.shape)}")
        check_finite(corr, "correction")
        self.mask = check_detector_mask(self.mask, c.shape[0])
        if bool((corr[self.mask] <= 0).any()):
            raise ValueError("correction: must be positive on the measured pixels")
        self.correction = corr
        if self.shape is not None:
            self.shape = tuple(int(s) for s in self.shape)
            if int(np.prod(self.shape)) != c.shape[0]:
                raise ValueError(f"shape {self.shape} does not hold {c.shape[0]} pixels")

    @property
    def num_pixels(self) -> int:
        """Number of pixels ``P``."""
        return int(self.coords.shape[0])

    def q_max(self) -> float:
        """Largest ``|q|`` over the measured pixels, in voxels."""
        return float(self.coords[self.mask].norm(dim=1).max())

    def volume_size(self) -> int:
        """Smallest odd volume size holding every measured ``q`` (``2 ceil(q_max) + 3``)."""
        return 2 * int(np.ceil(self.q_max())) + 3

    def measured(self, dtype=torch.float32, device=None):
        """The measured pixels as EMC uses them.

        Returns
        -------
        pixel_map : torch.Tensor
            ``(P,)`` long (CPU): each pixel's index among the measured ones, -1 if unmeasured.
        coords : torch.Tensor
            ``(M, 3)`` their ``q`` vectors.
        correction : torch.Tensor
            ``(M,)`` their correction factors.
        """
        pixel_map = torch.full((self.num_pixels,), -1, dtype=torch.long)
        pixel_map[self.mask] = torch.arange(int(self.mask.sum()))
        coords = self.coords[self.mask].to(dtype=dtype, device=device)
        return pixel_map, coords, self.correction[self.mask].to(dtype=dtype, device=device)


def flat_detector(size: int, beamstop: float = 2.0, radius: float | None = None) -> Detector:
    """An ideal flat ``size x size`` detector: the central slice of a ``size^3`` volume.

    Pixel ``(i, j)`` (row-major index ``i * size + j``) samples
    ``q = (j - c, i - c, 0)`` voxels with ``c = (size - 1) / 2``, exactly as
    :func:`pyrolatent.primitives.volumes.slice_volume` does (no Ewald curvature).

    Parameters
    ----------
    size : int
        Detector edge in pixels (odd, so ``q = 0`` is a pixel).
    beamstop : float
        Pixels with ``|q| < beamstop`` are unmeasured.
    radius : float, optional
        Pixels with ``|q| > radius`` are unmeasured; default ``(size - 1) / 2``
        (the inscribed disc).

    Returns
    -------
    Detector
    """
    size = int(size)
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size: expected an odd detector size >= 3, got {size}")
    c = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(c, c, indexing="ij")
    coords = torch.stack([x, y, torch.zeros_like(x)], dim=-1).reshape(-1, 3)
    r = coords.norm(dim=1)
    rmax = (size - 1) / 2 if radius is None else float(radius)
    mask = (r >= float(beamstop)) & (r <= rmax)
    return Detector(coords=coords, correction=torch.ones(size * size), mask=mask,
                    shape=(size, size))  # fmt: skip


@dataclass
class PhotonFrames:
    """Photon-count frames held sparsely (CSR layout, see the module notes).

    Attributes
    ----------
    offsets : torch.Tensor
        ``(N + 1,)`` int64, nondecreasing, ``offsets[0] = 0``.
    pixels : torch.Tensor
        ``(nnz,)`` int32 pixel indices in ``[0, num_pixels)``.
    counts : torch.Tensor
        ``(nnz,)`` int32 photon counts, >= 1.
    num_pixels : int
        Pixels per frame ``P``.
    """

    offsets: torch.Tensor
    pixels: torch.Tensor
    counts: torch.Tensor
    num_pixels: int

    def __post_init__(self):
        self.offsets = torch.as_tensor(self.offsets).long().reshape(-1)
        self.pixels = torch.as_tensor(self.pixels).reshape(-1)
        self.counts = torch.as_tensor(self.counts).reshape(-1)
        self.num_pixels = int(self.num_pixels)
        o = self.offsets
        if o.numel() < 1 or int(o[0]) != 0 or bool((o[1:] < o[:-1]).any()):
            raise ValueError("offsets: expected a nondecreasing (N + 1,) array starting at 0")
        nnz = int(o[-1])
        if self.pixels.numel() != nnz or self.counts.numel() != nnz:
            raise ValueError(
                f"pixels/counts: expected {nnz} entries (offsets[-1]), got "
                f"{self.pixels.numel()} and {self.counts.numel()}"
            )
        if self.counts.is_floating_point():
            if not bool((self.counts == self.counts.round()).all()):
                raise ValueError("counts: photon counts must be integers")
        if nnz and bool((self.counts < 0).any()):
            raise ValueError(
                f"counts: photon counts must be nonnegative; found {int((self.counts < 0).sum())} "
                "negative entries"
            )
        if nnz and (int(self.pixels.min()) < 0 or int(self.pixels.max()) >= self.num_pixels):
            raise ValueError(f"pixels: indices must lie in [0, {self.num_pixels})")
        self.pixels = self.pixels.int()
        self.counts = self.counts.int()

    # ----------------------------------------------------------------- build
    @classmethod
    def from_dense(cls, frames) -> PhotonFrames:
        """Sparse frames from dense counts ``(N, P)`` or ``(N, H, W)`` (flattened row-major).

        Raises
        ------
        ValueError
            Negative, non-integer or non-finite counts.
        """
        t = as_tensor(frames, name="frames", dtype=None)
        if t.dim() < 2:
            raise ValueError(f"frames: expected (N, P) or (N, H, W) counts, got {tuple(t.shape)}")
        t = t.reshape(t.shape[0], -1)
        if t.is_floating_point():
            check_finite(t, "frames")
            if not bool((t == t.round()).all()):
                raise ValueError("frames: photon counts must be integers")
        if bool((t < 0).any()):
            raise ValueError(
                f"frames: photon counts must be nonnegative; found {int((t < 0).sum())} "
                "negative values"
            )
        rows, cols = torch.nonzero(t, as_tuple=True)
        offsets = torch.zeros(t.shape[0] + 1, dtype=torch.long)
        offsets[1:] = torch.bincount(rows, minlength=t.shape[0]).cumsum(0)
        return cls(offsets, cols.int(), t[rows, cols].int(), t.shape[1])

    @classmethod
    def concatenate(cls, parts) -> PhotonFrames:
        """Frames of several :class:`PhotonFrames` (same ``num_pixels``) in order."""
        parts = list(parts)
        if not parts:
            raise ValueError("concatenate: no frames given")
        p = parts[0].num_pixels
        if any(f.num_pixels != p for f in parts):
            raise ValueError("concatenate: frames have different numbers of pixels")
        offs, base = [torch.zeros(1, dtype=torch.long)], 0
        for f in parts:
            offs.append(f.offsets[1:] + base)
            base += int(f.offsets[-1])
        return cls(torch.cat(offs), torch.cat([f.pixels for f in parts]),
                   torch.cat([f.counts for f in parts]), p)  # fmt: skip

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return int(self.offsets.numel() - 1)

    def block(self, start: int, stop: int) -> PhotonFrames:
        """Frames ``start:stop`` (a view of the same storage)."""
        start, stop = max(0, int(start)), min(len(self), int(stop))
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        return PhotonFrames(self.offsets[start : stop + 1] - a, self.pixels[a:b],
                            self.counts[a:b], self.num_pixels)  # fmt: skip

    def select(self, rows) -> PhotonFrames:
        """Frames at the given indices, in that order."""
        rows = torch.as_tensor(np.asarray(rows), dtype=torch.long).reshape(-1)
        lens = self.offsets[rows + 1] - self.offsets[rows]
        offsets = torch.zeros(rows.numel() + 1, dtype=torch.long)
        offsets[1:] = lens.cumsum(0)
        idx = torch.repeat_interleave(self.offsets[rows], lens) + (
            torch.arange(int(offsets[-1])) - torch.repeat_interleave(offsets[:-1], lens)
        )
        return PhotonFrames(offsets, self.pixels[idx], self.counts[idx], self.num_pixels)

    def photons_per_frame(self) -> torch.Tensor:
        """``(N,)`` float64 total counts of each frame."""
        sums = torch.zeros(len(self), dtype=torch.float64)
        rows = torch.repeat_interleave(torch.arange(len(self)), self.offsets.diff())
        return sums.index_add_(0, rows, self.counts.double())

    def frame_rows(self) -> torch.Tensor:
        """``(nnz,)`` int64 frame index of every entry."""
        return torch.repeat_interleave(torch.arange(len(self)), self.offsets.diff())

    def to_dense(self, dtype=torch.float32) -> torch.Tensor:
        """``(N, P)`` dense counts (small data only)."""
        out = torch.zeros(len(self), self.num_pixels, dtype=dtype)
        out[self.frame_rows(), self.pixels.long()] = self.counts.to(dtype)
        return out

    def csr(self, dtype=torch.float32, device=None, pixel_map=None, transpose=False):
        """A ``torch.sparse_csr_tensor`` of the counts, ``(N, P')`` or ``(P', N)``.

        ``pixel_map`` ``(P,)`` int64 maps pixel indices to columns (``-1`` drops
        the pixel); ``P'`` is then ``pixel_map.max() + 1``.
        """
        rows = self.frame_rows()
        cols = self.pixels.long()
        vals = self.counts.to(dtype)
        n_cols = self.num_pixels
        if pixel_map is not None:
            cols = pixel_map[cols]
            keep = cols >= 0
            rows, cols, vals = rows[keep], cols[keep], vals[keep]
            n_cols = int(pixel_map.max()) + 1
        if not transpose:
            lens = torch.bincount(rows, minlength=len(self))
            crow = torch.zeros(len(self) + 1, dtype=torch.long)
            crow[1:] = lens.cumsum(0)
            t = torch.sparse_csr_tensor(crow, cols, vals, size=(len(self), n_cols))
        else:
            order = torch.argsort(cols, stable=True)
            lens = torch.bincount(cols, minlength=n_cols)
            crow = torch.zeros(n_cols + 1, dtype=torch.long)
            crow[1:] = lens.cumsum(0)
            t = torch.sparse_csr_tensor(crow, rows[order], vals[order], size=(n_cols, len(self)))
        return t.to(device) if device is not None else t
