"""Synthetic single-particle diffraction data: shapes, intensities, noisy patterns."""

import math

import pytest
import torch

from pyrolatent.data.synthetic.spi import (
    SHAPE_KINDS,
    detector_mask,
    intensity_volume,
    melting_series,
    morph_to_exponent,
    shape_density,
    simulate_patterns,
)
from pyrolatent.primitives.so3 import random_rotations
from pyrolatent.primitives.volumes import slice_volume


def _corr(a, b):
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_shapes_have_equal_volume_and_are_centred(kind):
    d = shape_density(kind, 33, p=4.0 if kind == "superellipsoid" else None)
    assert d.shape == (33, 33, 33)
    assert abs(float(d.sum()) / 11**3 - 1) < 0.01  # all enclose edge^3 = 11^3 voxels
    c = torch.arange(33.0) - 16
    com = [float((d.sum(dim=dims) * c).sum() / d.sum()) for dims in [(1, 2), (0, 2), (0, 1)]]
    assert max(abs(x) for x in com) < 1e-3


def test_superellipsoid_morphs_cube_to_sphere():
    cube, sphere = shape_density("cube", 33), shape_density("sphere", 33)
    p_big = shape_density("superellipsoid", 33, p=float(morph_to_exponent(0.0)))
    p_two = shape_density("superellipsoid", 33, p=2.0)
    assert torch.allclose(p_two, sphere, atol=1e-6)
    assert _corr(p_big, cube) > 0.97 and _corr(p_big, sphere) < _corr(p_big, cube) - 0.05
    assert abs(float(cube.sum()) - 11**3) < 1e-3


def test_intensity_volume_is_centred_and_axis_ordered():
    # a box 11 voxels long in x and 3 in y, z: fringes along qx every 33/11 = 3 voxels
    d = torch.zeros(33, 33, 33)
    d[15:18, 15:18, 11:22] = 1.0
    inten = intensity_volume(d)
    c = 16
    assert int(inten.argmax()) == c * 33 * 33 + c * 33 + c
    assert abs(float(inten[c, c, c]) - float(d.sum()) ** 2) < 1e-2 * float(d.sum()) ** 2
    assert float(inten[c, c, c + 3]) < 1e-8 * float(inten[c, c, c])  # zero of the x box
    assert float(inten[c, c + 3, c]) > 0.5 * float(inten[c, c, c])  # y box is narrow
    assert torch.allclose(inten, inten.flip(0, 1, 2), rtol=1e-4, atol=1e-3)  # Friedel
    # zero padding samples q more finely: 65 has the x zero at 65/11 voxels
    fine = intensity_volume(d, size=65)
    assert fine.shape == (65, 65, 65) and int(fine.argmax()) == 32 * 65 * 65 + 32 * 65 + 32


def test_simulated_patterns_are_poisson_scaled_and_deterministic():
    vol = intensity_volume(shape_density("cube", 33))
    a = simulate_patterns(vol, 300, photons=1e4, seed=3)
    b = simulate_patterns(vol, 300, photons=1e4, seed=3)
    c = simulate_patterns(vol, 300, photons=1e4, seed=4)
    assert torch.equal(a["patterns"], b["patterns"])
    assert not torch.equal(a["patterns"], c["patterns"])
    total = a["patterns"].sum(dim=(-1, -2))
    assert abs(float(total.mean()) / 1e4 - 1) < 0.03
    assert abs(float(a["fluence"].std()) - 0.1) < 0.02
    mask = a["mask"]
    assert mask.dtype == torch.bool and not mask[16, 16] and not mask[16, 17] and mask[16, 19]
    assert float(a["patterns"][:, ~mask].abs().sum()) == 0
    # Poisson: standardised residuals have unit variance where counts are high
    e = a["expected"]
    sel = e > 20
    z = (a["patterns"][sel] - e[sel]) / e[sel].sqrt()
    assert abs(float(z.mean())) < 0.05 and abs(float(z.var()) - 1) < 0.05
    # the noise-free mean is the central slice at the stored rotation, scaled
    scale = a["intensity_scale"] * a["fluence"]
    slc = slice_volume(vol, a["rotations"][:5]) * mask * scale[:5, None, None]
    assert torch.allclose(e[:5], slc, rtol=1e-4, atol=1e-6)


def test_melting_series_ground_truth():
    s = melting_series(
        400, size=33, photons=1e4, seed=1, n_levels=5, contaminant="dimer", contaminant_fraction=0.1
    )
    assert s["patterns"].shape == (400, 33, 33) and s["volumes"].shape == (5, 33, 33, 33)
    main = s["cls"] == 0
    assert 0.05 < float((~main).float().mean()) < 0.15
    assert torch.isnan(s["morph"][~main]).all() and (s["level"][~main] == -1).all()
    assert torch.allclose(s["p"][main], s["level_p"][s["level"][main]])
    assert torch.allclose(s["morph"][main], s["level_morph"][s["level"][main]])
    assert float(s["level_p"][0]) == pytest.approx(32.0) and float(s["level_p"][-1]) == 2.0
    # all levels have the same volume, so the same forward scattering I(0) = V^2
    c = 16
    i0 = s["volumes"][:, c, c, c]
    assert float(i0.max() / i0.min()) < 1.02
    # cube patterns carry the requested photons on average
    cube = s["level"] == 0
    assert abs(float(s["patterns"][cube].sum(dim=(-1, -2)).mean()) / 1e4 - 1) < 0.1
    again = melting_series(
        400, size=33, photons=1e4, seed=1, n_levels=5, contaminant="dimer", contaminant_fraction=0.1
    )
    assert torch.equal(again["patterns"], s["patterns"])


def test_oversample_one_is_the_default_and_fine_grids_contain_the_coarse_one():
    d = shape_density("superellipsoid", 33, p=4.0)
    vol = intensity_volume(d)
    assert torch.equal(intensity_volume(d, oversample=1), vol)
    a = simulate_patterns(vol, 20, photons=1e4, seed=2)
    b = simulate_patterns(vol, 20, photons=1e4, seed=2, oversample=1)
    assert all(torch.equal(a[key], b[key]) for key in ("patterns", "expected", "mask"))
    s = melting_series(60, size=33, photons=1e4, seed=1, n_levels=3)
    t = melting_series(60, size=33, photons=1e4, seed=1, n_levels=3, oversample=1)
    assert torch.equal(s["patterns"], t["patterns"]) and torch.equal(s["volumes"], t["volumes"])
    # a 3x finer q grid over the same range: every third voxel is a voxel of the 33 grid
    fine = intensity_volume(d, oversample=3)
    assert fine.shape == (97, 97, 97)
    assert torch.allclose(fine[::3, ::3, ::3], vol, rtol=1e-5, atol=1e-6 * float(vol.max()))
    # at R = I every pixel lands on a voxel of both grids: the same noise-free pattern
    eye = torch.eye(3)[None]
    c = simulate_patterns(fine, 1, rotations=eye, fluence_jitter=0.0, oversample=3, seed=0)
    e = simulate_patterns(vol, 1, rotations=eye, fluence_jitter=0.0, seed=0)
    assert c["patterns"].shape == (1, 33, 33) and torch.equal(c["mask"], e["mask"])
    # (float32 grid positions are off by ~1e-6 voxel: tiny mixing with the neighbours)
    atol = 1e-5 * float(e["expected"].max())
    assert torch.allclose(c["expected"], e["expected"], rtol=1e-4, atol=atol)


def test_oversampled_patterns_follow_the_continuous_sphere_intensity():
    # the sphere's |F(q)|^2 is analytic: (V 3 (sin x - x cos x) / x^3)^2, x = 2 pi |q| r,
    # |q| = (pixel radius) / 33 cycles per voxel (intensity_volume's units), r from
    # shape_density: the radius of the sphere of volume 11^3 voxels
    d = shape_density("sphere", 33)
    radius = (3 * 11**3 / (4 * math.pi)) ** (1 / 3)
    c = torch.arange(33, dtype=torch.float64) - 16
    pix = (c[:, None] ** 2 + c[None] ** 2).sqrt()
    x = (2 * math.pi * radius / 33 * pix).clamp_min(1e-9)
    analytic = (float(d.sum()) * 3 * (torch.sin(x) - x * torch.cos(x)) / x**3) ** 2
    rot = random_rotations(20, generator=torch.Generator().manual_seed(0))
    ccs = {}
    for k in (1, 3):
        sim = simulate_patterns(intensity_volume(d, oversample=k), 20, rotations=rot,
                                fluence_jitter=0.0, seed=0, oversample=k)  # fmt: skip
        m = sim["mask"]
        w = pix**4  # Porod weighting (I ~ q^-4) so high-q rings count, not just q ~ 0
        ref = (analytic * w)[m].expand(20, -1)
        ccs[k] = _corr((sim["expected"] * w)[:, m], ref)
    # trilinear interpolation between samples 2.4 voxels per ring apart fills the minima
    assert ccs[3] > ccs[1] + 0.1, ccs
    assert ccs[3] > 0.85, ccs


def test_melting_series_oversampled_keeps_ground_truth_size():
    s = melting_series(120, size=33, photons=1e4, seed=1, n_levels=3)
    t = melting_series(120, size=33, photons=1e4, seed=1, n_levels=3, oversample=3)
    assert t["patterns"].shape == (120, 33, 33) and t["volumes"].shape == (3, 33, 33, 33)
    assert torch.equal(t["volumes"], s["volumes"]) and torch.equal(t["level"], s["level"])
    assert torch.equal(t["rotations"], s["rotations"]) and torch.equal(t["mask"], s["mask"])
    assert not torch.equal(t["patterns"], s["patterns"])
    cube = t["level"] == 0
    assert abs(float(t["patterns"][cube].sum(dim=(-1, -2)).mean()) / 1e4 - 1) < 0.1


@pytest.mark.parametrize("bad", [0, -2, 1.5, "3", True, None])
def test_bad_oversample(bad):
    d = shape_density("cube", 33)
    with pytest.raises(ValueError, match="oversample"):
        intensity_volume(d, oversample=bad)
    with pytest.raises(ValueError, match="oversample"):
        simulate_patterns(intensity_volume(d), 2, oversample=bad)
    with pytest.raises(ValueError, match="oversample"):
        melting_series(4, size=33, oversample=bad)


def test_oversample_must_match_the_volume():
    vol = intensity_volume(shape_density("cube", 33))  # 33 = 3 (S - 1) + 1 has no integer S
    with pytest.raises(ValueError, match="oversample"):
        simulate_patterns(vol, 2, oversample=3)
    with pytest.raises(ValueError, match="odd pattern size"):  # 33 = 32 (2 - 1) + 1: S even
        simulate_patterns(vol, 2, oversample=32)
    with pytest.raises(ValueError, match="pattern_size"):
        slice_volume(vol, torch.eye(3)[None], pattern_size=16)


def test_detector_mask_gap():
    m = detector_mask(33, beamstop_radius=3, gap=2)
    assert not m[16].any() and m[10, 16] and not m[0, 0]
    assert int((~detector_mask(33, beamstop_radius=3, circular=False)).sum()) == 25  # r^2 < 9


def test_bad_inputs():
    vol = intensity_volume(shape_density("cube", 33))
    with pytest.raises(ValueError, match="unknown shape"):
        shape_density("pyramid", 33)
    with pytest.raises(ValueError, match="exponent"):
        shape_density("superellipsoid", 33)
    with pytest.raises(ValueError, match="even"):
        intensity_volume(torch.rand(32, 32, 32))
    with pytest.raises(ValueError, match="even"):
        simulate_patterns(torch.rand(32, 32, 32), 4)
    with pytest.raises(ValueError, match="even"):
        melting_series(10, size=32)
    with pytest.raises(ValueError, match="NaN"):
        simulate_patterns(vol * float("nan"), 4)
    with pytest.raises(ValueError, match="not orthonormal"):
        simulate_patterns(vol, 2, rotations=torch.rand(2, 3, 3))
    with pytest.raises(ValueError, match=r"\(3, 3, 3\)"):
        simulate_patterns(vol, 3, rotations=random_rotations(2))
    assert math.isfinite(float(vol.sum()))
