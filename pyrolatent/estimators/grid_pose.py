"""The exact angle posterior of a ``pose="grid"`` fit, on a grid finer than training's."""

from __future__ import annotations

import torch

from ..checks import check_count
from ..distributions import GridAngle
from ..models.pose_grid import POSES, canonical_image, centre_of_mass, render_posed
from ..models.sites import ANGLE, OFFSET, SCALE, Z
from ..primitives import warp_images

__all__ = [
    "ANGLE_CHUNK",
    "grid_posteriors",
    "guide_pose_options",
    "model_pose_options",
    "pose_config",
    "start_from_template",
]

#: Pixels (angles x images x H x W) rendered at once when scoring the fine grid (~128 MB).
ANGLE_CHUNK = 2**25


@torch.no_grad()
def grid_posteriors(model, guide, x: torch.Tensor, refine: int = 8, *given) -> dict:
    """The guide's posteriors with the angle's exact posterior on a ``refine``-times finer grid.

    The content code and the offset (and scale) are set at their posterior
    means; every angle of the fine grid is then scored by the model's
    likelihood plus the log prior, and normalised.

    Parameters
    ----------
    model : RVAEModel or SSRVAEModel
        With ``angle_grid`` (``pose="grid"``).
    guide : RVAEGuide or SSRVAEGuide
    x : torch.Tensor
        ``(B, H, W)`` images.
    refine : int
        The fine grid has ``refine * K`` angles.
    *given : torch.Tensor
        What the posteriors are conditioned on besides the image (the ss-rVAE's
        classes ``(B,)``), passed to ``guide.posteriors`` and ``model.canonical``.

    Returns
    -------
    dict
        The guide's posteriors, with ``"angle"`` a
        :class:`~pyrolatent.distributions.GridAngle` of batch ``(B,)``.
    """
    grid = model.angle_grid
    posts = guide.posteriors(x, *given)
    z = posts[Z].mean
    offset = posts[OFFSET].mean if OFFSET in posts else None
    scale = posts[SCALE].mean if SCALE in posts else None
    k = grid.size * int(refine)
    angles = torch.arange(k, device=x.device, dtype=x.dtype) * (grid.step / int(refine))
    canonical = model.canonical(z, *given)
    logits = []
    per_angle = max(1, ANGLE_CHUNK // x[0].numel() // max(1, x.shape[0]))
    for start in range(0, k, per_angle):
        chunk = angles[start : start + per_angle]
        mean = render_posed(canonical, chunk.unsqueeze(-1).expand(-1, x.shape[0]), offset, scale)
        logits.append(model.likelihood.dist(mean).log_prob(x))
    logits = torch.cat(logits) + grid.log_prior(angles, x.shape[0])
    posts[ANGLE] = GridAngle(angles, logits.t(), symmetry=grid.symmetry)
    return posts


def pose_config(pose: str, pose_grid: int, pose_refine: int, views: int) -> dict:
    """The checked, JSON-safe pose-inference settings of an image estimator's config."""
    if pose not in POSES:
        raise ValueError(f"pose must be one of {POSES}, got {pose!r}")
    return {
        "pose": pose,
        "pose_grid": check_count(pose_grid, "pose_grid", low=2, high=4096),
        "pose_refine": check_count(pose_refine, "pose_refine", high=64),
        "views": check_count(views, "views", high=256),
    }


def model_pose_options(config: dict) -> dict:
    """``pose``, ``pose_grid``, ``symmetry`` for the model (older configs: amortised)."""
    return {
        "pose": config.get("pose", "amortized"),
        "pose_grid": config.get("pose_grid", 8),
        "symmetry": config.get("symmetry", 1),
    }


def guide_pose_options(config: dict) -> dict:
    """``pose``, ``pose_grid``, ``views`` for the guide (older configs: amortised)."""
    return {
        "pose": config.get("pose", "amortized"),
        "pose_grid": config.get("pose_grid", 8),
        "views": config.get("views", 8),
    }


def start_from_template(model, images: torch.Tensor, seed: int, steps: int = 100) -> int:
    """Teach the decoder one real image as its canonical image before the first fit.

    An untrained decoder draws a round blob: every grid angle then fits every
    image equally, and which way the symmetry breaks is left to chance (a
    half-turn flip of part of the data, or the angle put into ``z``, are stable
    fits). Starting from one particle as the reference, as reference-based
    alignment does, the first posteriors already turn every image towards it.
    The image is drawn from ``images`` with ``seed``; it is re-centred on its
    centre of mass, and the decoder is fitted to it for ``steps`` Adam steps
    (mean squared error in mean space, codes drawn from N(0, 1)).

    Returns
    -------
    int
        Index of the image used.
    """
    gen = torch.Generator().manual_seed(int(seed))
    index = int(torch.randint(images.shape[0], (1,), generator=gen))
    template = images[index : index + 1]
    template = warp_images(template, offset=-centre_of_mass(template))
    decoder = model.decoder
    opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    z = torch.randn(16, model.latent_dim, generator=gen).to(images.device)
    with torch.enable_grad():
        for _ in range(int(steps)):
            loss = ((canonical_image(decoder, z) - template) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return index
