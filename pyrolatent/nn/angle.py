"""The stereo-pair angle CNN: orientation learned from image pairs, without angle labels.

Laurie (2023) trains a CNN to read the orientation of a particle from pairs of
images taken a known angle ``delta`` apart. Two training signals are used:

* **method 1, pair consistency** (:func:`pair_consistency_loss`): the network's
  angles for the two images must differ by ``delta`` modulo the shape's
  rotational symmetry;
* **method 2, partner rendering** (:class:`PartnerRenderer`): the angle of
  image ``a`` plus ``delta`` renders image ``b`` from a learned canonical
  template (rotated by the shared warp primitive), and the rendering is
  compared with the real partner.

A plain MSE on angles breaks at the symmetry wrap-around (for a square 85 and
95 degrees are 10 degrees apart, not 80), so the networks output the unit
vector ``e^{i n theta}`` of the symmetry-reduced phase, and every loss compares
such vectors (:func:`periodic_loss`). Nothing fixes the zero of the learned
angle; :meth:`AngleCNN.calibrate` sets it from one reference image.

Everything here is plain torch (no Pyro). Angles are radians, counter-clockwise
as displayed, images ``(N, H, W)``, 1D projections ``(N, L)``.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..device import resolve_device
from ..primitives.angles import calibrate_offset, check_order
from ..primitives.grids import pixel_grid
from ..primitives.warp import warp_images
from ..validation import as_images, as_tensor, check_finite

__all__ = [
    "angle_to_phase",
    "phase_to_angle",
    "periodic_loss",
    "pair_consistency_loss",
    "AngleCNN",
    "AngleCNN1d",
    "PartnerRenderer",
    "fit_stereo_pairs",
]


# --------------------------------------------------------------------------- phases and losses
def angle_to_phase(angle: torch.Tensor, order: int = 1) -> torch.Tensor:
    """Unit vectors ``(cos n theta, sin n theta)``, shape ``(..., 2)``."""
    n = check_order(order)
    return torch.stack([torch.cos(n * angle), torch.sin(n * angle)], dim=-1)


def phase_to_angle(phase: torch.Tensor, order: int = 1) -> torch.Tensor:
    """Angles in ``[0, 2 pi / n)`` from ``(..., 2)`` phase vectors (need not be unit)."""
    n = check_order(order)
    return torch.remainder(torch.atan2(phase[..., 1], phase[..., 0]), 2 * math.pi) / n


def _rotate_phase(phase: torch.Tensor, turn: torch.Tensor) -> torch.Tensor:
    """Multiply the complex numbers ``phase`` by ``e^{i turn}``."""
    c, s = torch.cos(turn), torch.sin(turn)
    x, y = phase[..., 0], phase[..., 1]
    return torch.stack([c * x - s * y, s * x + c * y], dim=-1)


def _fold_phase(phase: torch.Tensor) -> torch.Tensor:
    """Identify ``e^{i phi}`` with ``e^{-i phi}`` (complex conjugate): ``(x, |y|)``."""
    return torch.stack([phase[..., 0], phase[..., 1].abs()], dim=-1)


def periodic_loss(pred_angle: torch.Tensor, true_angle: torch.Tensor, order: int = 1):
    """Symmetry-aware angle loss ``mean(1 - cos(n (pred - true)))``.

    It is zero whenever ``pred`` and ``true`` agree modulo ``2 pi / n`` and is
    smooth across the wrap-around, unlike the MSE on angles.
    """
    n = check_order(order)
    return (1 - torch.cos(n * (pred_angle - true_angle))).mean()


def pair_consistency_loss(
    phase_a: torch.Tensor,
    phase_b: torch.Tensor,
    delta: torch.Tensor,
    order: int = 1,
    mirror: bool = False,
) -> torch.Tensor:
    """Method 1: the angles of a pair must differ by ``delta`` modulo ``2 pi / n``.

    Compares ``e^{i n theta_b}`` with ``e^{i n (theta_a + delta)}``:
    ``mean |u_b - u_a e^{i n delta}|^2``, which equals
    ``2 (1 - cos(n (theta_b - theta_a - delta)))`` for unit vectors.

    Parameters
    ----------
    phase_a, phase_b : torch.Tensor
        ``(B, 2)`` network outputs ``e^{i n theta}`` for images ``a`` and ``b``.
    delta : torch.Tensor
        ``(B,)`` known offsets ``theta_b - theta_a`` in radians.
    order : int
        Rotational symmetry order ``n >= 1``.
    mirror : bool
        For inputs that cannot tell ``theta`` from ``-theta`` (1D projections):
        compare the folded phases ``(cos, |sin|)`` and take the better of the
        two sign choices for ``theta_a``.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    n = check_order(order)
    turn = n * delta
    if not mirror:
        return (phase_b - _rotate_phase(phase_a, turn)).pow(2).sum(-1).mean()
    conj_a = torch.stack([phase_a[..., 0], -phase_a[..., 1]], dim=-1)
    target_b = _fold_phase(phase_b)
    plus = (target_b - _fold_phase(_rotate_phase(phase_a, turn))).pow(2).sum(-1)
    minus = (target_b - _fold_phase(_rotate_phase(conj_a, turn))).pow(2).sum(-1)
    return torch.minimum(plus, minus).mean()


# --------------------------------------------------------------------------- networks
class _AngleNet(nn.Module):
    """Shared head, prediction and calibration of the 2D and 1D angle networks."""

    input_ndim = 3  # (N, H, W); the 1D variant uses (N, L)

    def _setup(self, order: int, mirror: bool, device):
        self.order = check_order(order)
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
        out = [phase_to_angle(self(chunk), self.order) for chunk in x.split(batch_size)]
        self.train(was_training)
        return torch.cat(out).cpu()

    @torch.no_grad()
    def predict(self, images, batch_size: int = 512) -> torch.Tensor:
        """Calibrated angles in ``[0, 2 pi / n)`` radians, ``(N,)`` on the CPU.

        Call :meth:`calibrate` first; before that the global offset is zero.
        """
        raw = self.raw_angles(images, batch_size=batch_size)
        return torch.remainder(raw - self.offset.cpu(), 2 * math.pi / self.order)

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
        offset = calibrate_offset(pred, truth, self.order, mirror=self.mirror)
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
    order : int
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
        order: int = 1,
        channels=(32, 64, 64),
        hidden: int = 128,
        mirror: bool = False,
        batch_norm: bool = True,
        device=None,
    ):
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
        self._setup(order, mirror, device)
        self.to(self.device)


class AngleCNN1d(_AngleNet):
    """The 1D-convolution variant for projections (profiles) ``(N, L)``.

    Parameters
    ----------
    length : int
        Profile length ``L``.
    order, channels, hidden, mirror, device
        As in :class:`AngleCNN`. Projections of regular polygons are
        reflection-ambiguous, so ``mirror=True`` is the usual choice.
    """

    input_ndim = 2

    def __init__(
        self,
        length: int = 32,
        order: int = 1,
        channels=(32, 64, 64),
        hidden: int = 128,
        mirror: bool = True,
        device=None,
    ):
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
        self._setup(order, mirror, device)
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
    order : int
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
        order: int = 1,
        content_dim: int = 8,
        hidden: int = 256,
        device=None,
    ):
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = tuple(int(s) for s in image_size)
        self.order = check_order(order)
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

    def template(self, images: torch.Tensor) -> torch.Tensor:
        """``C_n``-symmetric canonical templates ``(B, H, W)`` for images ``(B, H, W)``."""
        b = images.shape[0]
        profile = images.reshape(b, -1) @ self.radial_weights
        canon = self.decoder(self.content(profile)).reshape(b, *self.image_size)
        if self.order == 1:
            return canon
        turns = [canon]
        for k in range(1, self.order):
            angle = canon.new_full((b,), 2 * math.pi * k / self.order)
            turns.append(warp_images(canon, angle=angle, padding_mode="border"))
        return torch.stack(turns).mean(0)

    def forward(self, images: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """Render the particle of ``images`` ``(B, H, W)`` at ``angle`` ``(B,)`` radians."""
        return warp_images(self.template(images), angle=angle, padding_mode="border")


# --------------------------------------------------------------------------- training
def _check_pairs(net, images_a, images_b, delta):
    a = as_images(images_a, name="images_a", ndim=(net.input_ndim,))
    b = as_images(images_b, name="images_b", ndim=(net.input_ndim,))
    if a.shape != b.shape:
        raise ValueError(
            f"images_b: shape {tuple(b.shape)} differs from images_a {tuple(a.shape)};"
            " the two images of a pair must have the same size"
        )
    if tuple(a.shape[1:]) != tuple(net.input_size):
        raise ValueError(
            f"images_a: expected size {tuple(net.input_size)} for this network,"
            f" got {tuple(a.shape[1:])}"
        )
    d = as_tensor(delta, name="delta").reshape(-1)
    check_finite(d, "delta")
    if d.numel() != a.shape[0]:
        raise ValueError(f"delta: expected one offset per pair ({a.shape[0]}), got {d.numel()}")
    return a, b, d


def fit_stereo_pairs(
    net: _AngleNet,
    images_a,
    images_b,
    delta,
    method: str = "pair",
    renderer: PartnerRenderer | None = None,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    rotate_pairs: bool = True,
    spread_weight: float = 1.0,
    seed: int | None = 0,
    progress: bool = True,
) -> dict:
    """Train an angle network on stereo pairs, without angle labels.

    Parameters
    ----------
    net : AngleCNN or AngleCNN1d
        The network; it is trained in place.
    images_a, images_b : array_like
        ``(N, H, W)`` images (``(N, L)`` profiles for :class:`AngleCNN1d`),
        prepared with :func:`pyrolatent.data.preprocess.preprocess`. Pair ``i``
        is ``(images_a[i], images_b[i])``.
    delta : array_like
        ``(N,)`` known offsets ``theta_b - theta_a`` in radians. A single fixed
        offset leaves a ``delta``-periodic ambiguity in the learned map; pairs
        with several offsets remove it.
    method : {"pair", "render"}
        ``"pair"``: method 1, :func:`pair_consistency_loss`. ``"render"``:
        method 2, the partner rendered by ``renderer`` at ``theta_a + delta``
        (and each image at its own angle) compared by MSE with the real one;
        2D images only.
    renderer : PartnerRenderer, optional
        Method 2's generation head (created when omitted); trained jointly.
    epochs, batch_size, lr
        Adam over shuffled mini-batches of pairs; the learning rate decays
        from ``lr`` to ``lr / 20`` on a cosine schedule.
    rotate_pairs : bool
        Augment 2D pairs by turning both images by the same random in-plane
        angle, which keeps ``delta`` (and needs no label). Valid only when the
        pair's rotation is in the image plane (polygons); switch it off for
        tilt pairs (polyhedra turned about an in-plane axis).
    spread_weight : float
        Weight of ``max(0, |mean of the batch's phase vectors|^2 - 1/4)``.
        Particles at random orientations have phases spread over the circle;
        this hinge only acts when the outputs bunch together, and keeps the
        network from settling on a constant output (a local minimum of the
        pair loss when the offsets are small). Set 0 for data whose
        orientations are strongly concentrated.
    seed : int, optional
        Seed for the weights' data order and augmentation.
    progress : bool
        Show a tqdm progress bar over epochs.

    Returns
    -------
    dict
        ``loss`` (mean loss per epoch), ``seconds`` (wall time), ``renderer``
        (the method 2 head or ``None``).
    """
    if method not in ("pair", "render"):
        raise ValueError(
            f"method: expected 'pair' (method 1) or 'render' (method 2), got {method!r}"
        )
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    a, b, d = _check_pairs(net, images_a, images_b, delta)
    is_2d = net.input_ndim == 3
    if method == "render":
        if not is_2d:
            raise ValueError("method 'render' needs 2D images; use method 'pair' for profiles")
        if net.mirror:
            raise ValueError("method 'render' does not support mirror-ambiguous networks")
        if renderer is None:
            renderer = PartnerRenderer(net.input_size, order=net.order, device=net.device)
        elif renderer.order != net.order or renderer.image_size != net.input_size:
            raise ValueError("renderer: its order and image_size must match the network's")
    device = net.device
    a, b, d = a.to(device), b.to(device), d.to(device)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    params = list(net.parameters()) + (list(renderer.parameters()) if renderer is not None else [])
    optimizer = torch.optim.Adam(params, lr=lr)
    steps_per_epoch = -(-a.shape[0] // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * steps_per_epoch, eta_min=lr / 20
    )
    history = []
    net.train()
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=f"angle CNN ({method})", disable=not progress)
    for _ in bar:
        order = torch.randperm(a.shape[0], generator=gen).to(device)
        total, count = 0.0, 0
        for idx in order.split(batch_size):
            xa, xb, dd = a[idx], b[idx], d[idx]
            if rotate_pairs and is_2d:
                turn = (2 * math.pi * torch.rand(idx.shape[0], generator=gen)).to(device)
                xa = warp_images(xa, angle=turn, padding_mode="border")
                xb = warp_images(xb, angle=turn, padding_mode="border")
            ua, ub = net(xa), net(xb)
            if method == "pair":
                loss = pair_consistency_loss(ua, ub, dd, net.order, mirror=net.mirror)
            else:
                # the phase gives theta in [-pi/n, pi/n); any branch renders the same C_n template
                theta_a = torch.atan2(ua[:, 1], ua[:, 0]) / net.order
                theta_b = torch.atan2(ub[:, 1], ub[:, 0]) / net.order
                loss = (
                    F.mse_loss(renderer(xa, theta_a + dd), xb)
                    + F.mse_loss(renderer(xb, theta_b - dd), xa)
                    + F.mse_loss(renderer(xa, theta_a), xa)
                    + F.mse_loss(renderer(xb, theta_b), xb)
                ) / 4
            if spread_weight > 0:
                # a hinge: no pull once the batch's phases are spread (|mean| < 1/2)
                spread = F.relu(ua.mean(0).pow(2).sum() - 0.25) + F.relu(
                    ub.mean(0).pow(2).sum() - 0.25
                )
                loss = loss + spread_weight * spread
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * idx.shape[0]
            count += idx.shape[0]
        history.append(total / count)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    net.eval()
    return {"loss": history, "seconds": time.perf_counter() - start, "renderer": renderer}
