"""The stereo-pair angle networks: a CNN (2D images) or 1D CNN (projections) that outputs
the phase ``e^{i n theta}`` of a particle's orientation, and the partner-rendering head.

The method that trains them on image pairs without angle labels (Laurie 2023: pair
consistency and partner rendering) lives in :mod:`pyrolatent.stereo`; this module holds
the ``nn.Module`` building blocks only. The networks output the unit vector of the
symmetry-reduced phase so that angles compare smoothly across the symmetry wrap-around;
nothing fixes the zero of the learned angle, and :meth:`AngleCNN.calibrate` sets it from
one reference image.

Everything here is plain torch (no Pyro). Angles are radians, counter-clockwise
as displayed, images ``(N, H, W)``, 1D projections ``(N, L)``.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn as nn

from .._deprecated import forward
from .._renamed import renamed_argument
from ..checks import as_images, as_tensor, check_finite
from ..device import resolve_device
from ..primitives.angles import calibrate_offset, check_symmetry, phase_to_angle
from ..primitives.grids import pixel_grid
from ..primitives.warp import warp_images

__all__ = ["AngleCNN", "AngleCNN1d", "PartnerRenderer"]


class _AngleNet(nn.Module):
    """Shared head, prediction and calibration of the 2D and 1D angle networks."""

    input_ndim = 3  # (N, H, W); the 1D variant uses (N, L)

    @property
    def order(self) -> int:
        """Deprecated name of :attr:`symmetry`."""
        warnings.warn(
            "order is deprecated, use symmetry (the old name will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.symmetry

    def _setup(self, symmetry: int, mirror: bool, device):
        self.symmetry = check_symmetry(symmetry)
        self.mirror = bool(mirror)
        self.register_buffer("offset", torch.zeros(()))
        self.device = resolve_device(device)

    def _check_input(self, images, name: str = "images") -> torch.Tensor:
        x = as_images(images, name=name, ndim=(self.input_ndim,))
        if tuple(x.shape[1:]) != tuple(self.input_size):
            raise ValueError(
                f"{name}: expected size {tuple(self.input_size)}, got {tuple(x.shape[1:])}"
            )
        return x.to(self.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Phase vectors ``e^{i n theta}``, shape ``(N, 2)``, unit length."""
        raw = self.head(self.features(x.unsqueeze(1)).flatten(1))
        return raw / raw.norm(dim=-1, keepdim=True).clamp_min(1e-6)

    @torch.no_grad()
    def raw_angles(self, images, batch_size: int = 512) -> torch.Tensor:
        """Uncalibrated angles in ``[0, 2 pi / n)`` radians, ``(N,)`` on the CPU."""
        x = self._check_input(images)
        was_training = self.training
        self.eval()
        out = [phase_to_angle(self(chunk), self.symmetry) for chunk in x.split(batch_size)]
        self.train(was_training)
        return torch.cat(out).cpu()

    @torch.no_grad()
    def predict(self, images, batch_size: int = 512) -> torch.Tensor:
        """Calibrated angles in ``[0, 2 pi / n)`` radians, ``(N,)`` on the CPU.

        Call :meth:`calibrate` first; before that the global offset is zero.
        """
        raw = self.raw_angles(images, batch_size=batch_size)
        return torch.remainder(raw - self.offset.cpu(), 2 * math.pi / self.symmetry)

    def calibrate(self, reference_images, reference_angles) -> float:
        """Fix the global offset from reference image(s) of known angle.

        Parameters
        ----------
        reference_images : array_like
            One image ``(H, W)`` (or profile ``(L,)``), or a stack of them,
            prepared like the training images.
        reference_angles : float or array_like
            Their true angles in radians.

        Returns
        -------
        float
            The offset (radians) now subtracted by :meth:`predict`.
        """
        x = as_tensor(reference_images, name="reference_images")
        if x.dim() == self.input_ndim - 1:
            x = x.unsqueeze(0)
        truth = as_tensor(reference_angles, name="reference_angles", dtype=torch.float64)
        check_finite(truth, "reference_angles")
        truth = truth.reshape(-1)
        if truth.numel() != x.shape[0]:
            raise ValueError(
                f"reference_angles: expected {x.shape[0]} angles for the reference images,"
                f" got {truth.numel()}"
            )
        pred = self.raw_angles(x)
        offset = calibrate_offset(pred, truth, self.symmetry, mirror=self.mirror)
        self.offset.fill_(offset)
        return offset


class AngleCNN(_AngleNet):
    """CNN mapping a particle image to the phase ``e^{i n theta}`` of its orientation.

    Three stride-2 convolution stages and a two-layer head, as in the paper
    (which used three conv/max-pool/dropout stages).

    Parameters
    ----------
    image_size : (int, int)
        ``(H, W)`` of the (preprocessed) input images.
    symmetry : int
        Rotational symmetry order ``n`` of the particles (4 for squares).
    channels : tuple of int
        Channels of the convolution stages.
    hidden : int
        Width of the fully connected layer.
    mirror : bool
        The inputs cannot tell ``theta`` from ``-theta`` (calibration then
        only chooses between the two fold points, see
        :func:`pyrolatent.primitives.angles.calibrate_offset`).
    batch_norm : bool
        Batch normalisation after each strided convolution (faster escape
        from the initial plateau of the pair loss).
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.
    """

    def __init__(
        self,
        image_size=(32, 32),
        symmetry: int = 1,
        channels=(32, 64, 64),
        hidden: int = 128,
        mirror: bool = False,
        batch_norm: bool = True,
        device=None,
        *,
        order: int | None = None,
    ):
        symmetry = renamed_argument(symmetry, order, old="order", new="symmetry", where="AngleCNN")
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.input_size = tuple(int(s) for s in image_size)
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            raise ValueError(f"image_size: expected (H, W) of at least 8x8, got {image_size}")
        layers, c_in = [nn.Conv2d(1, channels[0], 3, padding=1), nn.ReLU()], channels[0]
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)]
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers += [nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        h, w = self.input_size
        for _ in channels:
            h, w = (h + 1) // 2, (w + 1) // 2
        self.head = nn.Sequential(nn.Linear(c_in * h * w, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self._setup(symmetry, mirror, device)
        self.to(self.device)


class AngleCNN1d(_AngleNet):
    """The 1D-convolution variant for projections (profiles) ``(N, L)``.

    Parameters
    ----------
    length : int
        Profile length ``L``.
    symmetry, channels, hidden, mirror, device
        As in :class:`AngleCNN`. Projections of regular polygons are
        reflection-ambiguous, so ``mirror=True`` is the usual choice.
    """

    input_ndim = 2

    def __init__(
        self,
        length: int = 32,
        symmetry: int = 1,
        channels=(32, 64, 64),
        hidden: int = 128,
        mirror: bool = True,
        device=None,
        *,
        order: int | None = None,
    ):
        symmetry = renamed_argument(
            symmetry, order, old="order", new="symmetry", where="AngleCNN1d"
        )
        super().__init__()
        self.input_size = (int(length),)
        if self.input_size[0] < 8:
            raise ValueError(f"length: expected at least 8 samples, got {length}")
        layers, c_in = [nn.Conv1d(1, channels[0], 5, padding=2), nn.ReLU()], channels[0]
        for c_out in channels:
            layers += [
                nn.Conv1d(c_in, c_out, 3, stride=2, padding=1),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        n = self.input_size[0]
        for _ in channels:
            n = (n + 1) // 2
        self.head = nn.Sequential(nn.Linear(c_in * n, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self._setup(symmetry, mirror, device)
        self.to(self.device)


class PartnerRenderer(nn.Module):
    """Method 2's image-generation head: render the stereo partner from an angle.

    A rotation-invariant description of image ``a`` (its radial intensity
    profile about the centre) is mapped to a content code, the code is decoded
    to a canonical template, the template is symmetrised over the cyclic group
    ``C_n``, and :func:`pyrolatent.primitives.warp.warp_images` turns it to the
    requested angle. Because the content cannot carry orientation, the only
    way to render the partner at ``theta_a + delta`` is a correct ``theta_a``.

    Parameters
    ----------
    image_size : (int, int)
        ``(H, W)``.
    symmetry : int
        Rotational symmetry order.
    content_dim : int
        Size of the content code.
    hidden : int
        Width of the MLPs.
    device : str or torch.device, optional
    """

    def __init__(
        self,
        image_size=(32, 32),
        symmetry: int = 1,
        content_dim: int = 8,
        hidden: int = 256,
        device=None,
        *,
        order: int | None = None,
    ):
        symmetry = renamed_argument(
            symmetry, order, old="order", new="symmetry", where="PartnerRenderer"
        )
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = tuple(int(s) for s in image_size)
        self.symmetry = check_symmetry(symmetry)
        h, w = self.image_size
        radius = pixel_grid(h, w).norm(dim=-1).reshape(-1)
        n_bins = max(4, min(h, w) // 2)
        centres = torch.linspace(0, float(radius.max()), n_bins)
        weights = torch.relu(1 - (radius.unsqueeze(-1) - centres).abs() / (centres[1] - centres[0]))
        self.register_buffer("radial_weights", weights / weights.sum(0, keepdim=True))
        self.content = nn.Sequential(
            nn.Linear(n_bins, hidden), nn.ReLU(), nn.Linear(hidden, content_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(content_dim, hidden), nn.ReLU(), nn.Linear(hidden, h * w)
        )
        self.device = resolve_device(device)
        self.to(self.device)

    @property
    def order(self) -> int:
        """Deprecated name of :attr:`symmetry`."""
        warnings.warn(
            "order is deprecated, use symmetry (the old name will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.symmetry

    def template(self, images: torch.Tensor) -> torch.Tensor:
        """``C_n``-symmetric canonical templates ``(B, H, W)`` for images ``(B, H, W)``."""
        b = images.shape[0]
        profile = images.reshape(b, -1) @ self.radial_weights
        canon = self.decoder(self.content(profile)).reshape(b, *self.image_size)
        if self.symmetry == 1:
            return canon
        turns = [canon]
        for k in range(1, self.symmetry):
            angle = canon.new_full((b,), 2 * math.pi * k / self.symmetry)
            turns.append(warp_images(canon, angle=angle, padding_mode="border"))
        return torch.stack(turns).mean(0)

    def forward(self, images: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """Render the particle of ``images`` ``(B, H, W)`` at ``angle`` ``(B,)`` radians."""
        return warp_images(self.template(images), angle=angle, padding_mode="border")


__getattr__ = forward(
    __name__,
    {
        "angle_to_phase": "pyrolatent.primitives.angles",
        "phase_to_angle": "pyrolatent.primitives.angles",
        "periodic_loss": "pyrolatent.stereo.losses",
        "pair_consistency_loss": "pyrolatent.stereo.losses",
        "fit_stereo_pairs": "pyrolatent.stereo.fit",
    },
)
