"""Starting a volume VAE's decoder from given intensities (``fit_decoder_to_volumes``)."""

import pytest
import torch

from pyrolatent.estimators.volume_init import fit_decoder_to_volumes
from pyrolatent.estimators.volume_vae import VolumeVAE
from pyrolatent.primitives.so3 import random_rotations
from pyrolatent.primitives.volumes import volume_coordinates
from pyrolatent.spi.emc import flat_detector, simulate_frames, structure_intensity

SIZE = 15


def cc(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson CC of the shell-normalised intensities over ``2 <= |q| <= (S - 1) / 2``."""
    x = volume_coordinates(SIZE, dtype=torch.float64).norm(dim=-1)
    keep, shell = (x >= 2) & (x <= (SIZE - 1) / 2), x.round().long()

    def norm(v):
        v = v.double()[keep]
        mean = torch.zeros(SIZE, dtype=torch.float64).index_add_(0, shell[keep], v)
        v = v / (mean / torch.bincount(shell[keep], minlength=SIZE).clamp_min(1))[shell[keep]]
        return v - v.mean()

    x, y = norm(a), norm(b)
    return float((x * y).sum() / (x.norm() * y.norm()))


@pytest.fixture(scope="module")
def three_stretches():
    """A random 40-atom cloud stretched by 1, 1.25 and 1.5 along a short axis (15^3), and
    300 frames of the middle one at 10^4 photons (for the radial normalisation)."""
    gen = torch.Generator().manual_seed(0)
    atoms = torch.randn(40, 3, generator=gen, dtype=torch.float64) * torch.tensor([2.5, 1.2, 1.0])
    atoms = atoms - atoms.mean(0)
    d_max = 2 * float((atoms * torch.tensor([1.0, 1.5, 1.0])).norm(dim=1).max())
    resolution = 2 * d_max / ((SIZE - 1) / 2)
    vols = torch.stack([
        structure_intensity(atoms * torch.tensor([1.0, t, 1.0]), size=SIZE,
                            resolution=resolution, method="direct")[0]
        for t in (1.0, 1.25, 1.5)
    ])  # fmt: skip
    det = flat_detector(SIZE, beamstop=1.5)
    rot = random_rotations(300, generator=gen)
    frames, _, _ = simulate_frames(vols[1], det, 300, 1e4, generator=gen, rotations=rot)
    return vols, frames.to_dense().reshape(-1, SIZE, SIZE), rot, det.mask.reshape(SIZE, SIZE)


def test_decoder_reproduces_the_given_volumes_in_order(three_stretches):
    """Known answer: the three intensities, generated back at z = -1.75, 0, 1.75.

    Seeds 0-2 of the cloud (150 steps, the default decoder): own CC 0.970-0.994;
    the ends' CC with their own truth exceeds that with the other end by 0.08-0.24
    (the two truths: 0.73-0.84); the loss falls 28-67x. This test uses seed 0.
    """
    _check_decoder_init(three_stretches, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_decoder_init_on_cuda_reproduces_the_given_volumes(three_stretches):
    """The same fit with the VAE on the GPU (CPU inputs, as a user gives them)."""
    _check_decoder_init(three_stretches, device="cuda")


def _check_decoder_init(three_stretches, device):
    vols, patterns, rot, mask = three_stretches
    vae = VolumeVAE(SIZE, latent_dim=1, mask=mask, seed=0, device=device)
    z = torch.linspace(-1.75, 1.75, 3)[:, None]
    losses = fit_decoder_to_volumes(vae, patterns, rot, vols, steps=150, progress=False)
    gen = vae.generate(z, normalized=False)
    own = [cc(gen[i], vols[i]) for i in range(3)]
    ends = [cc(gen[0], vols[0]) - cc(gen[0], vols[2]), cc(gen[2], vols[2]) - cc(gen[2], vols[0])]
    print(f"own {own}, end margins {ends}, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert len(losses) == 150 and losses[-1] * 10 <= losses[0]
    assert min(own) >= 0.95
    assert min(ends) >= 0.05
    assert vae.mean_total is not None  # the radial normalisation was fitted on the frames


def test_decoder_init_errors(three_stretches):
    vols, patterns, rot, mask = three_stretches
    vae = VolumeVAE(SIZE, latent_dim=1, mask=mask, seed=0)
    with pytest.raises(ValueError, match="C >= 2"):
        fit_decoder_to_volumes(vae, patterns, rot, vols[:1], steps=1, progress=False)
    with pytest.raises(ValueError, match="non-negative"):
        fit_decoder_to_volumes(vae, patterns, rot, -vols, steps=1, progress=False)
    with pytest.raises(ValueError, match="z"):
        fit_decoder_to_volumes(vae, patterns, rot, vols, z=[0.0, 1.0], steps=1, progress=False)
    with pytest.raises(ValueError, match="even"):
        fit_decoder_to_volumes(vae, patterns, rot, torch.ones(3, 14, 14, 14), steps=1,
                               progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="latent_dim=1"):
        two = VolumeVAE(SIZE, latent_dim=2, mask=mask, seed=0)
        fit_decoder_to_volumes(two, patterns, rot, vols, steps=1, progress=False)
