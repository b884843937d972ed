"""Training an angle network on stereo pairs, without angle labels (Laurie 2023).

Two training signals:

* **method 1, pair consistency** (:func:`pyrolatent.stereo.losses.pair_consistency_loss`):
  the network's angles for the two images must differ by ``delta`` modulo the
  shape's rotational symmetry;
* **method 2, partner rendering** (:class:`pyrolatent.nn.angle.PartnerRenderer`):
  the angle of image ``a`` plus ``delta`` renders image ``b`` from a learned
  canonical template (rotated by the shared warp primitive), and the rendering
  is compared with the real partner.

Plain torch (no Pyro); images ``(N, H, W)``, 1D projections ``(N, L)``, radians.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..checks import as_images, as_tensor, check_finite
from ..nn.angle import AngleCNN, AngleCNN1d, PartnerRenderer
from ..primitives.warp import warp_images
from .losses import pair_consistency_loss

__all__ = ["fit_stereo_pairs"]


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
    net: AngleCNN | AngleCNN1d,
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
            renderer = PartnerRenderer(net.input_size, symmetry=net.symmetry, device=net.device)
        elif renderer.symmetry != net.symmetry or renderer.image_size != net.input_size:
            raise ValueError("renderer: its symmetry and image_size must match the network's")
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
                loss = pair_consistency_loss(ua, ub, dd, net.symmetry, mirror=net.mirror)
            else:
                # the phase gives theta in [-pi/n, pi/n); any branch renders the same C_n template
                theta_a = torch.atan2(ua[:, 1], ua[:, 0]) / net.symmetry
                theta_b = torch.atan2(ub[:, 1], ub[:, 0]) / net.symmetry
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
