"""The volume VAE: building blocks, Pyro model/guide contract, and a fast end-to-end fit."""

import math

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine

from pyrolatent.data.synthetic.spi import melting_series
from pyrolatent.estimators.volume_vae import VolumeVAE
from pyrolatent.guides.volume_vae import VolumeVAEGuide
from pyrolatent.models.sites import FLUENCE, OBS, Z
from pyrolatent.models.volume_vae import VolumeVAEModel
from pyrolatent.nn.volume import ImplicitDecoder, VoxelDecoder, canonical_coordinates
from pyrolatent.primitives.groups import point_group
from pyrolatent.primitives.so3 import random_rotations
from pyrolatent.primitives.volumes import slice_coordinates, slice_volume


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_canonical_coordinates_are_oh_invariant():
    p = torch.randn(100, 3)
    c = canonical_coordinates(p)
    for g in point_group("Oh"):
        assert torch.allclose(canonical_coordinates(p @ g.T), c)
    assert bool((c[:, 0] >= c[:, 1]).all() and (c[:, 1] >= c[:, 2]).all() and (c >= 0).all())
    with pytest.raises(ValueError, match="symmetry"):
        canonical_coordinates(p, "D6")


def test_implicit_decoder_is_exactly_symmetric_and_slices_match_its_volume():
    dec = ImplicitDecoder(2, 17, symmetry="Oh", n_features=8, hidden=16, depth=2)
    dec.requires_grad_(False)
    z = torch.randn(3, 2)
    vol = dec.volume(z)
    assert vol.shape == (3, 17, 17, 17) and bool((vol > 0).all())
    # O_h: all 48 axis permutations/flips of the voxel grid leave it unchanged
    assert torch.allclose(vol, vol.flip(1), atol=1e-6)
    assert torch.allclose(vol, vol.permute(0, 3, 1, 2), atol=1e-6)
    # its direct slices equal interpolated slices of its volume at axis-aligned rotations
    R = point_group("O")[[0, 3, 7]]
    assert torch.allclose(dec.slices(z, R), slice_volume(vol, R), atol=1e-5)
    # arbitrary rotations: direct evaluation is smooth, interpolation is close
    R = random_rotations(3, generator=_gen())
    direct, interp = dec.slices(z, R), slice_volume(vol, R)
    r = torch.arange(17.0) - 8
    inside = (r[:, None] ** 2 + r[None] ** 2) <= 7**2
    assert float((direct - interp)[:, inside].abs().max()) < 0.05 * float(direct.max())


def test_implicit_slices_evaluate_valid_pixels_once_per_friedel_pair():
    size = 17
    dec = ImplicitDecoder(1, size, symmetry="Oh", n_features=8, hidden=16, depth=2)
    dec.requires_grad_(False)
    z, R = torch.randn(4, 1), random_rotations(4, generator=_gen(3))
    plane = slice_coordinates(size).reshape(-1, 3)
    full = dec(z, plane @ R.transpose(-1, -2)).reshape(-1, size, size)  # every pixel directly
    assert torch.allclose(dec.slices(z, R), full, atol=1e-6)
    evaluated, _ = dec.slice_pixels()
    assert evaluated.numel() == (size * size + 1) // 2  # one of each pair, plus the centre
    # a mask: valid pixels match, the others are 0 (and not evaluated unless a mate is valid)
    c = torch.arange(size) - (size - 1) / 2
    mask = (c[:, None] ** 2 + c[None] ** 2 >= 4) & (c[None] >= -3)
    out = dec.slices(z, R, mask=mask)
    assert torch.allclose(out[:, mask], full[:, mask], atol=1e-6)
    need = mask | mask.flip(0, 1)
    assert bool((out[:, ~need] == 0).all())
    evaluated, source = dec.slice_pixels(mask)
    assert evaluated.numel() < int(need.sum()) and bool((source[need.flatten()] >= 0).all())
    # without a point group (the default) only Friedel's law holds, exactly: I(q) = I(-q),
    # not the O_h mirrors/permutations, and each pair is still evaluated once
    plain = ImplicitDecoder(1, size, n_features=8, hidden=16).requires_grad_(False)
    assert plain.symmetry is None
    vol = plain.volume(z)
    assert torch.allclose(vol, vol.flip(1, 2, 3), atol=1e-6)
    assert float((vol - vol.flip(1)).abs().max()) > 1e-3 * float(vol.abs().max())
    assert float((vol - vol.transpose(-1, -2)).abs().max()) > 1e-3 * float(vol.abs().max())
    assert plain.slice_pixels(mask)[0].numel() == evaluated.numel()
    ref = plain(z, plane @ R.transpose(-1, -2)).reshape(-1, size, size)
    assert torch.allclose(plain.slices(z, R, mask=mask)[:, mask], ref[:, mask], atol=1e-6)
    with pytest.raises(ValueError, match="mask"):
        dec.slices(z, R, mask=torch.ones(5, 5, dtype=torch.bool))


def test_voxel_decoder_sizes():
    for size, full in [(17, 17), (33, 33), (21, 33)]:
        dec = VoxelDecoder(1, size, base_channels=8)
        assert dec.full == full
        assert dec(torch.randn(2, 1)).shape == (2, size, size, size)
    with pytest.raises(ValueError, match="even"):
        VoxelDecoder(1, 32)


@pytest.mark.parametrize("decoder", ["implicit", "voxel"])
@pytest.mark.parametrize("likelihood", ["gaussian", "poisson"])
def test_model_and_guide_are_plain_pyro(decoder, likelihood):
    size = 17
    opts = {"hidden": 16, "n_features": 8} if decoder == "implicit" else {"base_channels": 8}
    model = VolumeVAEModel(size, latent_dim=2, decoder=decoder, likelihood=likelihood, **opts)
    guide = VolumeVAEGuide(size, latent_dim=2, likelihood=likelihood, channels=(4, 8))
    x = torch.poisson(torch.full((5, size, size), 3.0))
    R = random_rotations(5, generator=_gen(1))
    tr = poutine.trace(guide).get_trace(x, R)
    sites = {
        n
        for n, s in tr.nodes.items()
        if s["type"] == "sample" and not poutine.util.site_is_subsample(s)
    }
    assert sites == ({Z, FLUENCE} if likelihood == "poisson" else {Z})
    mtr = poutine.trace(poutine.replay(model, trace=tr)).get_trace(x, R)
    assert mtr.nodes[OBS]["is_observed"] and mtr.nodes[Z]["value"].shape == (5, 2)
    assert mtr.nodes[OBS]["fn"].event_shape == (size, size)
    pyro.clear_param_store()
    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), pyro.infer.Trace_ELBO())
    assert np.isfinite(svi.step(x, R))
    pred = pyro.infer.Predictive(model, guide=guide, num_samples=2)(x, R)
    assert pred[Z].shape == (2, 5, 2)


def test_custom_prior_and_masking():
    size = 17
    mask = torch.ones(size, size, dtype=torch.bool)
    mask[8] = False
    model = VolumeVAEModel(
        size,
        latent_dim=1,
        hidden=16,
        n_features=8,
        mask=mask,
        z_prior=pyro.distributions.Laplace(torch.zeros(1), 2.0).to_event(1),
    )
    x = torch.rand(4, size, size)
    R = random_rotations(4, generator=_gen(2))
    tr = poutine.trace(model).get_trace(x, R)
    assert isinstance(tr.nodes[Z]["fn"].base_dist, pyro.distributions.Laplace)
    tr.compute_log_prob()
    lp = tr.nodes[OBS]["log_prob"]
    # masked pixels do not count: changing them leaves the likelihood unchanged
    x2 = x.clone()
    x2[:, 8] = 1e3
    tr2 = poutine.trace(poutine.replay(model, trace=tr)).get_trace(x2, R)
    tr2.compute_log_prob()
    assert torch.allclose(tr2.nodes[OBS]["log_prob"], lp)
    # priors follow the one strict contract: the event shape must match the site
    scalar = VolumeVAEModel(size, latent_dim=2, z_prior=pyro.distributions.Laplace(0.0, 2.0))
    with pytest.raises(ValueError, match="event_shape"):
        scalar.z_dist(3)


@pytest.fixture(scope="module")
def two_shape_series():
    # cubes and spheres only (two morph levels), Poisson noise, 10^5 photons, beamstop
    return melting_series(256, size=33, photons=1e5, seed=3, n_levels=2)


def test_fast_end_to_end_latent_separates_cubes_from_spheres(two_shape_series, tmp_path):
    s = two_shape_series
    vae = VolumeVAE(
        33,
        latent_dim=1,
        decoder="implicit",
        likelihood="gaussian",
        group="Oh",
        mask=s["mask"],
        seed=0,
    )
    hist = vae.fit(
        s["patterns"], s["rotations"], epochs=5, batch_size=32, lr=5e-3, progress=False
    ).history
    assert hist["loss"][-1] < 0.6 * hist["loss"][0]
    assert vae.epochs_trained == 5
    loc = torch.as_tensor(vae.encode(s["patterns"], s["rotations"])["z"]["loc"])
    z = loc[:, 0]
    cube = s["level"] == 0
    # z separates the two shapes: a threshold between the class medians classifies well
    thr = (z[cube].median() + z[~cube].median()) / 2
    side = (z > thr) == (z[cube].median() > thr)
    acc = float((side == cube).float().mean())
    assert acc > 0.95, acc
    # the generated volume is O_h symmetric and its slices reconstruct the input
    vol = vae.generate(z[:1])
    assert torch.allclose(vol, vol.transpose(-1, -2), atol=1e-5)
    assert vae.generate(z[:1], normalized=False).shape == (1, 33, 33, 33)
    # a checkpoint round trip gives identical encodings
    vae.save(tmp_path / "vae.pt")
    back = VolumeVAE.load(tmp_path / "vae.pt")
    loc2 = torch.as_tensor(back.encode(s["patterns"][:20], s["rotations"][:20])["z"]["loc"])
    assert torch.allclose(loc2, loc[:20], atol=1e-5)


def test_bad_inputs(two_shape_series):
    s = two_shape_series
    vae = VolumeVAE(33, mask=s["mask"], model_options={"hidden": 16, "n_features": 8})
    with pytest.raises(ValueError, match="call fit"):
        vae.encode(s["patterns"][:2], s["rotations"][:2])
    with pytest.raises(ValueError, match="does not match the model"):
        vae.fit(torch.rand(4, 31, 31), random_rotations(4), epochs=1)
    with pytest.raises(ValueError, match="NaN"):
        vae.fit(torch.full((4, 33, 33), float("nan")), random_rotations(4), epochs=1)
    with pytest.raises(ValueError, match="not orthonormal"):
        vae.fit(s["patterns"][:4], torch.rand(4, 3, 3) + 1, epochs=1)
    with pytest.raises(ValueError, match="even"):
        VolumeVAE(32)
    with pytest.raises(ValueError, match="decoder"):
        VolumeVAE(33, decoder="mesh")
    with pytest.raises(ValueError, match="unknown point group"):
        VolumeVAE(33, decoder="voxel", group="Y7").fit(
            s["patterns"][:4], s["rotations"][:4], epochs=1, progress=False
        )


def test_poisson_is_the_default_and_refuses_non_counts(two_shape_series):
    s = two_shape_series
    vae = VolumeVAE(33, mask=s["mask"], model_options={"hidden": 16, "n_features": 8})
    assert vae.model.likelihood == "poisson" and vae.guide.likelihood == "poisson"
    with pytest.raises(ValueError, match="likelihood='gaussian'"):
        vae.fit(s["patterns"][:4] + 0.5, s["rotations"][:4], epochs=1, progress=False)
    vae.fit(s["patterns"][:8], s["rotations"][:8], epochs=1, batch_size=4, progress=False)
    assert vae.epochs_trained == 1 and math.isfinite(vae.history["loss"][-1])
    gauss = VolumeVAE(33, likelihood="gaussian", mask=s["mask"],
                      model_options={"hidden": 16, "n_features": 8})  # fmt: skip
    gauss.fit(s["patterns"][:8] + 0.5, s["rotations"][:8], epochs=1, batch_size=4, progress=False)
    assert gauss.epochs_trained == 1
