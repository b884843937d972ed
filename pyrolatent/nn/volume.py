"""Building blocks of the volume VAE: a 2D pattern encoder and two 3D intensity decoders.

* :class:`PatternEncoder`: a small CNN over a (log) pattern, whose features are
  joined with an orientation descriptor (the 9 entries of the rotation
  canonicalised into the fundamental zone) in an MLP head.
* :class:`SliceSetEncoder`: the pattern as a set of pixels placed at their
  object-frame ``q`` (``R p``): a per-pixel MLP of Fourier features of ``R q``
  weights each pixel's (log) count, the sum over pixels feeds an MLP head. It
  can represent the log-likelihood-ratio statistics ``sum_p x_p h(R p)`` by
  which a posed frame tells a deformation of the object, whatever the pose.
* :class:`VoxelDecoder`: ``z`` -> a ``(S, S, S)`` volume by 3D transposed
  convolutions (sizes ``5 -> 9 -> 17 -> 33 -> 65 -> ...``, cropped to ``S``).
* :class:`ImplicitDecoder`: a coordinate MLP ``(z, q) -> I(q)`` over random
  Fourier features of the *canonicalised* coordinate. With ``symmetry="Oh"`` the
  coordinate is ``sort(|q|)``, which is invariant under all 48 signed
  permutations, so the intensity is exactly O_h-symmetric with no averaging.
  With ``symmetry=None`` (no point group) only Friedel's law ``I(q) = I(-q)``,
  which every diffraction intensity obeys, is imposed (exactly, in the first
  layer; see :meth:`ImplicitDecoder.forward`).

Intensities are positive (softplus) and are meant in units of the dataset's
radial average (see :class:`pyrolatent.primitives.radial.RadialNormalizer`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..primitives.volumes import slice_coordinates, volume_coordinates

__all__ = [
    "ImplicitDecoder",
    "PatternEncoder",
    "SliceSetEncoder",
    "VoxelDecoder",
    "canonical_coordinates",
]

_SYMMETRIES = ("Oh", None)


def canonical_coordinates(points: torch.Tensor, symmetry: str | None = "Oh") -> torch.Tensor:
    """Map ``(..., 3)`` points into the fundamental domain of a symmetry.

    ``"Oh"``: ``sort(|p|)`` in descending order, invariant under every signed
    permutation of the axes (the 48 elements of O_h). ``None``: unchanged.
    """
    if symmetry is None:
        return points
    if symmetry != "Oh":
        raise ValueError(f"symmetry: expected one of {_SYMMETRIES}, got {symmetry!r}")
    return points.abs().sort(dim=-1, descending=True).values


class PatternEncoder(nn.Module):
    """CNN over ``(B, S, S)`` patterns plus ``(B, F)`` orientation features.

    Parameters
    ----------
    out_dim : int
        Output width (e.g. ``2 * latent_dim`` for a location and a scale).
    orientation_dim : int
        Width of the orientation descriptor (9 for a flattened rotation).
    channels : tuple of int
        Channels of the stride-2 convolutions.
    hidden : int
        Width of the MLP head.
    """

    def __init__(self, out_dim: int, orientation_dim: int = 9,
                 channels: tuple[int, ...] = (16, 32, 64, 64), hidden: int = 128):  # fmt: skip
        super().__init__()
        layers = []
        c_in = 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, kernel_size=3, stride=2, padding=1), nn.SiLU()]
            c_in = c
        self.conv = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(c_in * 9 + orientation_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, images: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
        """``(B, S, S)``, ``(B, F)`` -> ``(B, out_dim)``."""
        h = self.conv(images.unsqueeze(1))
        return self.head(torch.cat([h, orientation], dim=-1))


class SliceSetEncoder(nn.Module):
    """Posed patterns ``(B, S, S)`` as sets of pixels at object-frame ``q`` -> ``(B, out_dim)``.

    Pixel ``p`` of a pattern with orientation ``R`` samples the object at
    ``q = R p`` (voxels). Its features are Fourier features of ``q`` (cosines only
    without a point group, so a pixel and its Friedel mate agree; sines and
    cosines of the canonical coordinate with ``symmetry="Oh"``) and ``|q|``; an
    MLP maps them to ``(a_p, b_p)`` and the pooled ``mean_p (c_p a_p + b_p)`` over
    valid pixels (``c_p`` the pixel's input value), joined with ``extra``
    features, goes through the head MLP.

    Parameters
    ----------
    out_dim : int
    size : int
        Odd pattern size ``S``.
    extra_dim : int
        Width of the per-pattern features joined after pooling.
    symmetry : {None, "Oh"}
        See :class:`ImplicitDecoder`.
    n_features : int
        Random 3D frequencies.
    fourier_scale : float
        Their standard deviation, cycles per voxel.
    hidden : int
        Width of the point MLP's output and of the head.
    seed : int
        Seed of the fixed random frequencies.
    """

    def __init__(self, out_dim: int, size: int, extra_dim: int = 1,
                 symmetry: str | None = None, n_features: int = 64,
                 fourier_scale: float = 0.15, hidden: int = 128, seed: int = 1):  # fmt: skip
        super().__init__()
        if symmetry not in _SYMMETRIES:
            raise ValueError(f"symmetry: expected one of {_SYMMETRIES}, got {symmetry!r}")
        self.size, self.symmetry, self.hidden = int(size), symmetry, int(hidden)
        g = torch.Generator().manual_seed(int(seed))
        n = int(n_features) * (2 if symmetry is None else 1)  # cosines only: twice as many
        self.register_buffer("frequencies", torch.randn(3, n, generator=g) * fourier_scale)
        self.register_buffer("plane", slice_coordinates(self.size).reshape(-1, 3))
        w = 2 * int(n_features) + 1
        self.point = nn.Sequential(nn.Linear(w, hidden), nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.head = nn.Sequential(
            nn.Linear(hidden + int(extra_dim), hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, out_dim),
        )  # fmt: skip

    def forward(self, images: torch.Tensor, rotations: torch.Tensor, extra: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """``images`` ``(B, S, S)``, ``rotations`` ``(B, 3, 3)``, ``extra`` ``(B, E)``."""
        keep = (torch.ones(self.size**2, dtype=torch.bool, device=images.device)
                if mask is None else mask.reshape(-1).bool())  # fmt: skip
        q = self.plane[keep] @ rotations.transpose(-1, -2)  # (B, P, 3)
        phase = 2 * math.pi * canonical_coordinates(q, self.symmetry) @ self.frequencies
        parts = [phase.cos()] if self.symmetry is None else [phase.sin(), phase.cos()]
        feats = torch.cat(parts + [q.norm(dim=-1, keepdim=True) / ((self.size - 1) / 2)], -1)
        a, b = self.point(feats).split(self.hidden, dim=-1)
        c = images.reshape(images.shape[0], -1)[:, keep, None]
        return self.head(torch.cat([(c * a + b).mean(1), extra], dim=-1))


class VoxelDecoder(nn.Module):
    """``z`` -> ``(B, S, S, S)`` positive intensity volume by 3D transposed convolutions.

    Each ``ConvTranspose3d(kernel 3, stride 2, padding 1)`` maps ``n`` voxels to
    ``2 n - 1``, so from a ``5^3`` seed the sizes are ``9, 17, 33, 65, 129``; the
    first of them ``>= size`` is centre-cropped to ``size`` (odd).

    Parameters
    ----------
    latent_dim : int
    size : int
        Odd output size.
    base_channels : int
        Channels of the ``5^3`` seed; halved at each upsampling (min 4).
    """

    def __init__(self, latent_dim: int, size: int, base_channels: int = 64):
        super().__init__()
        if size % 2 == 0:
            raise ValueError(f"size: {size} is even; volumes need an odd size")
        self.size = int(size)
        n, n_up = 5, 0
        while n < size:
            n, n_up = 2 * n - 1, n_up + 1
        self.full = n
        self.base_channels = int(base_channels)
        self.seed = nn.Linear(latent_dim, self.base_channels * 125)
        layers = []
        c = self.base_channels
        for _ in range(n_up):
            c_out = max(c // 2, 4)
            layers += [
                nn.ConvTranspose3d(c, c_out, kernel_size=3, stride=2, padding=1),
                nn.SiLU(),
            ]
            c = c_out
        layers.append(nn.Conv3d(c, 1, kernel_size=3, padding=1))
        self.up = nn.Sequential(*layers)
        with torch.no_grad():  # start near a flat volume of 1 (normalised intensity)
            self.up[-1].bias.fill_(math.log(math.e - 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` -> ``(B, S, S, S)``."""
        h = F.silu(self.seed(z)).reshape(-1, self.base_channels, 5, 5, 5)
        v = F.softplus(self.up(h)).squeeze(1)
        lo = (self.full - self.size) // 2
        return v[:, lo : lo + self.size, lo : lo + self.size, lo : lo + self.size]


class ImplicitDecoder(nn.Module):
    """Coordinate MLP ``I(q | z)`` with random Fourier features of the canonical ``q``.

    Parameters
    ----------
    latent_dim : int
    size : int
        Odd volume size; coordinates are in voxels from the centre.
    symmetry : {None, "Oh"}
        ``"Oh"``: exact O_h symmetry by canonical coordinates (see
        :func:`canonical_coordinates`). ``None`` (default): no point group, only
        Friedel's law ``I(q) = I(-q)`` (exact).
    n_features : int
        Number of random 3D frequencies (``2 n_features`` sine/cosine features).
    fourier_scale : float
        Standard deviation of the 3D frequencies, in cycles per voxel.
    n_radial : int
        Radial features: sine/cosine of ``|q|`` at ``n_radial`` frequencies evenly
        spaced up to ``radial_max`` cycles per voxel (rings of spheres, envelopes),
        plus ``|q|`` itself.
    radial_max : float
    hidden : int
    depth : int
        Hidden layers.
    seed : int
        Seed of the fixed random frequencies.
    """

    def __init__(self, latent_dim: int, size: int, symmetry: str | None = None,
                 n_features: int = 64, fourier_scale: float = 0.15, n_radial: int = 16,
                 radial_max: float = 0.5, hidden: int = 128, depth: int = 3,
                 seed: int = 0):  # fmt: skip
        super().__init__()
        if symmetry not in _SYMMETRIES:
            raise ValueError(f"symmetry: expected one of {_SYMMETRIES}, got {symmetry!r}")
        self.size = int(size)
        self.symmetry = symmetry
        g = torch.Generator().manual_seed(int(seed))
        freqs = torch.randn(3, int(n_features), generator=g) * float(fourier_scale)
        self.register_buffer("frequencies", freqs)
        radial = torch.arange(1, int(n_radial) + 1, dtype=torch.float32) * (
            float(radial_max) / max(int(n_radial), 1)
        )
        self.register_buffer("radial_frequencies", radial)
        self.radius = (self.size - 1) / 2
        layers = []
        w = 2 * int(n_features) + 2 * int(n_radial) + 1 + latent_dim
        for _ in range(int(depth)):
            layers += [nn.Linear(w, hidden), nn.SiLU()]
            w = hidden
        layers.append(nn.Linear(w, 1))
        self.mlp = nn.Sequential(*layers)
        with torch.no_grad():
            self.mlp[-1].bias.fill_(math.log(math.e - 1))

    def encode_points(self, points: torch.Tensor) -> torch.Tensor:
        """``(..., 3)`` voxel coordinates -> ``(..., 2 F + 2 F_r + 1)`` features."""
        q = canonical_coordinates(points, self.symmetry)
        phase = 2 * math.pi * q @ self.frequencies
        r = points.norm(dim=-1, keepdim=True)
        radial = 2 * math.pi * r * self.radial_frequencies
        return torch.cat(
            [phase.sin(), phase.cos(), radial.sin(), radial.cos(), r / self.radius], dim=-1
        )

    def forward(self, z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Intensities at ``points`` ``(B, P, 3)`` (voxels) for latents ``(B, D)`` -> ``(B, P)``.

        With ``symmetry="Oh"`` every feature is even in ``q`` already. Without
        (``None``) the sine features are the only odd ones: the first layer is
        evaluated at ``q`` and ``-q`` (its pre-activation ``a + s`` and
        ``a - s``, ``s`` the sines' part) and the activations averaged, so the
        output is exactly Friedel-symmetric for one extra matrix product.
        """
        feats = self.encode_points(points)
        zz = z[:, None, :].expand(-1, points.shape[1], -1)
        h = torch.cat([feats, zz], dim=-1)
        if self.symmetry is not None:
            return F.softplus(self.mlp(h)).squeeze(-1)
        first, act = self.mlp[0], self.mlp[1]
        n_odd = self.frequencies.shape[1]
        pre = first(h)
        odd = feats[..., :n_odd] @ first.weight[:, :n_odd].T
        h = 0.5 * (act(pre) + act(pre - 2 * odd))
        return F.softplus(self.mlp[2:](h)).squeeze(-1)

    def slice_pixels(self, mask: torch.Tensor | None = None, device=None):
        """Which plane pixels :meth:`slices` evaluates, and where each pixel reads its value.

        The intensity is centrosymmetric exactly (Friedel's law, imposed with
        or without a point group), so only one pixel of each Friedel pair
        ``(i, j) <-> (S-1-i, S-1-j)`` is evaluated.

        Parameters
        ----------
        mask : torch.Tensor, optional
            ``(S, S)`` bool; only these pixels (and their Friedel mates) are needed.
        device : torch.device, optional

        Returns
        -------
        evaluated : torch.Tensor
            ``(P,)`` long, flat indices (into ``S * S``) of the evaluated pixels.
        source : torch.Tensor
            ``(S * S,)`` long, for each pixel the position in ``evaluated`` of the
            value it takes, or ``-1`` (not needed: the slice is 0 there).
        """
        n = self.size * self.size
        if mask is None:
            need = torch.ones(n, dtype=torch.bool, device=device)
        else:
            m = torch.as_tensor(mask, device=device).bool()
            if tuple(m.shape) != (self.size, self.size):
                raise ValueError(f"mask: expected ({self.size}, {self.size}), got {tuple(m.shape)}")
            need = (m | m.flip(0, 1)).reshape(-1)
        idx = torch.arange(n, device=device)
        # representative of each pixel: itself, or its Friedel mate n - 1 - k (the smaller index)
        rep = torch.minimum(idx, n - 1 - idx)
        evaluated = torch.unique(rep[need])
        source = torch.full((n,), -1, dtype=torch.long, device=device)
        source[need] = torch.searchsorted(evaluated, rep[need])
        return evaluated, source

    def slices(self, z: torch.Tensor, rotations: torch.Tensor, mask=None) -> torch.Tensor:
        """Central slices ``(B, S, S)`` at ``(B, 3, 3)`` rotations, evaluated directly.

        Parameters
        ----------
        z : torch.Tensor
            ``(B, latent_dim)``.
        rotations : torch.Tensor
            ``(B, 3, 3)``.
        mask : torch.Tensor, optional
            ``(S, S)`` bool: evaluate only these pixels (and their Friedel
            mates); the slice is 0 elsewhere. Default: every pixel. Each
            Friedel pair is evaluated once either way (see
            :meth:`slice_pixels`), which halves the cost exactly.
        """
        plane = slice_coordinates(self.size, dtype=z.dtype, device=z.device).reshape(-1, 3)
        evaluated, source = self.slice_pixels(mask, device=z.device)
        pts = plane[evaluated] @ rotations.transpose(-1, -2)  # (B, P, 3): R p for each p
        vals = self.forward(z, pts)  # (B, P)
        out = vals[:, source.clamp_min(0)] * (source >= 0).to(vals.dtype)
        return out.reshape(-1, self.size, self.size)

    def volume(self, z: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """Full volumes ``(B, S, S, S)`` (indexed ``[z, y, x]``)."""
        pts = volume_coordinates(self.size, dtype=z.dtype, device=z.device).reshape(1, -1, 3)
        out = [self.forward(z[i : i + chunk], pts.expand(z[i : i + chunk].shape[0], -1, -1))
               for i in range(0, z.shape[0], chunk)]  # fmt: skip
        return torch.cat(out).reshape(-1, self.size, self.size, self.size)
