"""Start a volume VAE's decoder from intensities a user already has (e.g. 3D classes).

Fitted to single frames from random weights, the :class:`~pyrolatent.VolumeVAE`
decoder learns the mean intensity first, and with orientations that are a few
degrees off (found by EMC, not known) its latent then follows the deformation
only in part. :func:`fit_decoder_to_volumes` first fits the decoder so that
the volumes it generates at ``C`` latents match ``C`` given intensities (in
order, e.g. the classes of :func:`~pyrolatent.spi.emc.class_chain`): least
squares on the log of the shell-normalised intensities over ``2 <= |q| <=
(S - 1) / 2``, each volume's overall scale free. ``fit`` on the frames goes on
from there.

Measured on 2,000 frames of 4BED stretched by 1-1.25 (10^4 photons, 25^3, the
orientations of an 8-class chain, 2.88 / 2.60 deg from the truth,
``benchmarks/volume_vae_pdb.py``), 250 steps, then ``fit(method="grid")`` 4
epochs and 8 with a 0.06 rad pose ball: ``|Spearman(z, stretch)|`` 0.723 / 0.764
(seeds 0 / 1) against 0.61-0.67 from random weights on 6-class orientations, and
the generated ends correlate 0.943-0.957 with their own truth, 0.867-0.900 with
the other end (from random weights 0.92 with both). True orientations give 0.97.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..primitives.volumes import check_volume, volume_coordinates

__all__ = ["fit_decoder_to_volumes"]


def fit_decoder_to_volumes(vae, patterns, rotations, volumes, z=None, steps: int = 250,
                           lr: float = 3e-3, progress: bool = True) -> list[float]:  # fmt: skip
    """Fit a volume VAE's decoder to given intensities before training it on frames.

    Parameters
    ----------
    vae : VolumeVAE
        With ``latent_dim=1``; untrained or trained (its decoder is updated in place).
    patterns, rotations
        The frames and orientations that ``fit`` will take (``(N, S, S)``
        counts and ``(N, 3, 3)``, or a frame source); used only to fit the
        radial normalisation when ``vae`` has not been fitted yet.
    volumes : array_like
        ``(C, S, S, S)`` non-negative intensities indexed ``[z, y, x]``, in the
        frame of ``rotations``, ordered along the latent.
    z : array_like, optional
        ``(C,)`` latents to generate them at; default evenly spaced on
        ``[-1.75, 1.75]`` (the span of ``fit(method="grid")``'s latent grid).
    steps : int
        Adam steps (each generates the ``C`` volumes); default 250.
    lr : float
        Adam rate; default 3e-3.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of float
        The loss (mean squared log ratio) after each step.

    Raises
    ------
    ValueError
        ``latent_dim != 1``, volumes of the wrong size or negative, fewer than
        2 volumes, or ``z`` of the wrong length.
    """
    if vae.model.latent_dim != 1:
        raise ValueError("fit_decoder_to_volumes: a VolumeVAE with latent_dim=1 is expected")
    vols = check_volume(volumes, name="volumes")
    size = vae.size
    if vols.dim() != 4 or vols.shape[0] < 2 or vols.shape[1:] != (size,) * 3:
        raise ValueError(f"volumes: expected (C >= 2, {size}, {size}, {size}), "
                         f"got {tuple(vols.shape)}")  # fmt: skip
    if bool((vols < 0).any()):
        raise ValueError("volumes: intensities must be non-negative")
    c_num = vols.shape[0]
    z = torch.linspace(-1.75, 1.75, c_num) if z is None else torch.as_tensor(z, dtype=torch.float32)
    if z.shape != (c_num,):
        raise ValueError(f"z: expected ({c_num},), got {tuple(z.shape)}")
    if vae.mean_total is None:
        vae._fit_preprocessing(vae._data(patterns, rotations))
    dev = vae.device
    profile = vae.normalizer.profile_map(ndim=3).double().to(dev)
    r = volume_coordinates(size, dtype=torch.float64, device=dev).norm(dim=-1)
    keep = (r >= 2.0) & (r <= (size - 1) / 2)
    target = (vols.double().to(dev) / profile.clamp_min(1e-12))[:, keep]
    target = (target / target.mean(1, keepdim=True).clamp_min(1e-30)).clamp_min(1e-6).log()
    decoder = vae.model.decoder
    opt = torch.optim.Adam(decoder.parameters(), lr=float(lr))
    zk = z[:, None].to(dev)
    losses = []
    for _ in tqdm(range(int(steps)), disable=not progress, desc="decoder init", unit="step"):
        gen = vae.model.generate(zk).double()[:, keep]
        gen = gen / gen.mean(1, keepdim=True)
        loss = ((gen.clamp_min(1e-6).log() - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
