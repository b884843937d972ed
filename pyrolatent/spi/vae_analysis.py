"""Analysis of a trained volume VAE: volumes along z, latent histograms, slices.

Plot functions return the matplotlib Figure and never call ``plt.show()``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from .._renamed import progress_from_quiet
from ..checks import as_tensor
from ..primitives.radial import radius_map
from .phasing import particle_volume, phase_retrieval

__all__ = [
    "plot_latent_histogram",
    "plot_volume_along_z",
    "plot_volume_slices",
    "volume_along_z",
]


def volume_along_z(
    vae,
    z_values,
    n_iter: int = 300,
    n_er: int = 100,
    threshold: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
    *,
    quiet: bool | None = None,
) -> dict:
    """Generate intensities along a latent path, phase them and measure the particle volume.

    Parameters
    ----------
    vae : pyrolatent.models.volume_vae.VolumeVAE
        A fitted model.
    z_values : array_like
        ``(K,)`` for a 1D latent or ``(K, D)``.
    n_iter, n_er : int
        Difference-map and error-reduction iterations of
        :func:`~pyrolatent.spi.phasing.phase_retrieval` (intensities beyond the
        detector edge and inside the beamstop are left free).
    threshold : float
        Density threshold as a fraction of the total mass (the paper's 1e-4).
    seed : int
        Seed of the random starting phases.
    progress : bool
        Show a tqdm progress bar over the latent values.
    quiet : bool, optional
        Deprecated: ``progress=not quiet``.

    Returns
    -------
    dict
        ``z`` ``(K, D)``, ``intensities`` ``(K, S, S, S)`` (photon scale),
        ``densities`` ``(K, S, S, S)``, ``particle_volume`` ``(K,)`` voxels,
        ``phasing_error`` ``(K,)``.
    """
    progress = progress_from_quiet(progress, quiet, where="volume_along_z")
    z = as_tensor(z_values, name="z_values")
    if z.dim() == 1:
        z = z[:, None]
    inten = vae.generate(z, normalized=False).detach().cpu().double()
    size = inten.shape[-1]
    r = radius_map(size, ndim=3, dtype=torch.float64)
    measured = (r >= 2) & (r <= (size - 1) / 2)
    densities, volumes, errors = [], [], []
    for k in tqdm(range(inten.shape[0]), disable=not progress, desc="phasing along z"):
        res = phase_retrieval(inten[k].clamp_min(0), mask=measured, n_iter=n_iter, n_er=n_er,
                              seed=seed, progress=False)  # fmt: skip
        densities.append(res["density"])
        volumes.append(particle_volume(res["density"], threshold=threshold))
        errors.append(res["error"])
    return {
        "z": z.cpu(),
        "intensities": inten,
        "densities": torch.stack(densities),
        "particle_volume": torch.tensor(volumes),
        "phasing_error": torch.tensor(errors),
    }


def plot_latent_histogram(z, labels=None, bins: int = 40, label_name: str = "label"):
    """Histogram of a 1D latent, optionally stacked by integer labels.

    Parameters
    ----------
    z : array_like
        ``(N,)`` or ``(N, 1)`` latent values.
    labels : array_like, optional
        ``(N,)`` integer labels (e.g. the morph level); negative = unlabelled.
    bins : int
    label_name : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    zz = as_tensor(z, name="z").reshape(-1).cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if labels is None:
        ax.hist(zz, bins=bins, color="0.3")
    else:
        lab = np.asarray(torch.as_tensor(labels).cpu()).reshape(-1)
        if lab.shape[0] != zz.shape[0]:
            raise ValueError(f"labels: expected {zz.shape[0]} values, got {lab.shape[0]}")
        groups = [k for k in np.unique(lab) if k >= 0]
        edges = np.histogram_bin_edges(zz, bins=bins)
        cmap = plt.get_cmap("viridis", max(len(groups), 2))
        ax.hist([zz[lab == k] for k in groups], bins=edges, stacked=True,
                color=[cmap(i) for i in range(len(groups))],
                label=[f"{label_name} {k}" for k in groups])  # fmt: skip
        if len(groups) <= 12:
            ax.legend(fontsize=6, ncol=2)
    ax.set_xlabel("z")
    ax.set_ylabel("patterns")
    fig.tight_layout()
    return fig


def plot_volume_along_z(result: dict):
    """Particle volume (relative to the first z) against z, from :func:`volume_along_z`."""
    z = result["z"][:, 0].numpy()
    vol = result["particle_volume"].numpy().astype(float)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    axes[0].plot(z, vol / vol[0], "o-")
    axes[0].set_xlabel("z")
    axes[0].set_ylabel("particle volume / first")
    dens = result["densities"]
    c = dens.shape[-1] // 2
    montage = np.concatenate([d[c].numpy() / max(float(d.max()), 1e-12) for d in dens], axis=1)
    axes[1].imshow(montage, cmap="gray")
    axes[1].set_title("central density sections along z")
    axes[1].axis("off")
    fig.tight_layout()
    return fig


def plot_volume_slices(volume, title: str = "", log: bool = True):
    """The three central sections (z, y, x planes) of a ``(S, S, S)`` volume."""
    v = as_tensor(volume, name="volume").cpu()
    if v.dim() != 3:
        raise ValueError(f"volume: expected (S, S, S), got {tuple(v.shape)}")
    c = v.shape[-1] // 2
    sections = [v[c], v[:, c], v[:, :, c]]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, img, name in zip(axes, sections, ["qz = 0", "qy = 0", "qx = 0"], strict=True):
        ax.imshow(torch.log1p(img.clamp_min(0)) if log else img, cmap="magma")
        ax.set_title(name)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
