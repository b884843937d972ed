"""Synthetic polygons/polyhedra (issue 7) and the preprocessing used on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyrolatent.data.preprocess import (
    center_by_mass,
    center_of_mass,
    denoise,
    normalize_intensity,
    preprocess,
)
from pyrolatent.data.synthetic.polygons import (
    add_stem_noise,
    make_polygons,
    regular_polygon_vertices,
    render_polygons,
    symmetry_order,
)
from pyrolatent.data.synthetic.stereo import (
    make_polyhedron_pairs,
    make_projection_pairs,
    make_stereo_pairs,
    project_1d,
    render_polyhedra,
)
from pyrolatent.primitives.warp import warp_images


def _render(shape_sides, angle, offset=(0.0, 0.0), size=10.0, image_size=48):
    n = len(angle)
    return render_polygons(
        regular_polygon_vertices(shape_sides),
        torch.tensor(angle, dtype=torch.float32),
        torch.tensor([offset] * n, dtype=torch.float32),
        torch.full((n,), size),
        image_size=image_size,
    )


def test_square_is_invariant_under_quarter_turn_only():
    imgs = _render(4, [0.3, 0.3 + math.pi / 2, 0.3 + math.pi / 4])
    assert float((imgs[0] - imgs[1]).abs().max()) < 1e-4
    assert float((imgs[0] - imgs[2]).abs().max()) > 0.5
    assert symmetry_order("square") == 4 and symmetry_order("irregular") == 1


def test_rendered_angle_matches_the_warp_primitive():
    # a triangle rendered at theta equals the canonical one turned by warp_images
    theta = torch.tensor([0.7])
    direct = _render(3, [0.7], size=14.0, image_size=64)
    canon = _render(3, [0.0], size=14.0, image_size=64)
    turned = warp_images(canon, angle=theta)
    assert float((direct - turned).abs().mean()) < 0.01
    # the canonical vertex is on +x; at angle pi it points left and the right side is an edge
    # at x = +size/2 (pixel (row, col) = (31.5 + y, 31.5 + x) for a 64x64 image)
    canon_row = canon[0, 31:33]
    flipped = _render(3, [math.pi], size=14.0, image_size=64)[0, 31:33]
    assert float(canon_row[:, 31 + 12].min()) > 0.9 and float(canon_row[:, 31 - 12].max()) < 0.1
    assert float(flipped[:, 32 - 12].min()) > 0.9 and float(flipped[:, 32 + 12].max()) < 0.1


def test_polygon_area_and_offset_are_right():
    size = 12.0
    img = _render(4, [0.2], offset=(3.0, -5.0), size=size, image_size=64)
    area = float(img.sum())
    assert area == pytest.approx(2 * size**2, rel=0.02)  # square with circumradius r: 2 r^2
    com = center_of_mass(img, background=None)[0]
    assert torch.allclose(com, torch.tensor([3.0, -5.0]), atol=0.05)


def test_noise_model_mean_and_dose():
    clean = _render(6, [0.0], size=10.0, image_size=32).expand(400, -1, -1)
    g = torch.Generator().manual_seed(0)
    low = add_stem_noise(
        clean, dose=20.0, background=0.1, read_noise=0.0, blur_sigma=0.0, generator=g
    )
    high = add_stem_noise(
        clean, dose=2000.0, background=0.1, read_noise=0.0, blur_sigma=0.0, generator=g
    )
    # shot noise is unbiased and its variance scales as intensity / dose
    assert float((low.mean(0) - clean[0] - 0.1).abs().mean()) < 0.03
    inside = clean[0] > 0.99
    var_low = float(low[:, inside].var(0).mean())
    var_high = float(high[:, inside].var(0).mean())
    assert var_low == pytest.approx(1.1 / 20.0, rel=0.15)
    assert var_high == pytest.approx(1.1 / 2000.0, rel=0.15)


def test_stereo_pairs_ground_truth_and_offsets():
    g = torch.Generator().manual_seed(1)
    pairs = make_stereo_pairs(50, "hexagon", delta=0.2, generator=g)
    assert torch.allclose(pairs["angle_b"] - pairs["angle_a"], torch.full((50,), 0.2))
    assert pairs["images_a"].shape == pairs["images_b"].shape == (50, 32, 32)
    assert pairs["symmetry"] == 6
    # default offsets span one symmetry period so that n * delta covers the circle
    free = make_stereo_pairs(2000, "square", generator=g)
    assert float(free["delta"].abs().max()) == pytest.approx(math.pi / 4, abs=0.01)
    # the partner image is the first one turned by delta (noise-free, after centring)
    a = center_by_mass(pairs["clean_a"], background=None)
    b = center_by_mass(pairs["clean_b"], background=None)
    turned = warp_images(a, angle=pairs["delta"])
    assert float((turned - b).abs().mean()) < 0.02
    with pytest.raises(ValueError, match="delta"):
        make_stereo_pairs(5, "square", delta=[0.1, 0.2], generator=g)
    with pytest.raises(ValueError, match="shape"):
        make_stereo_pairs(5, "circle", generator=g)
    with pytest.raises(ValueError, match="shape"):
        make_stereo_pairs(5, 2, generator=g)


def test_irregular_shapes_share_vertices_within_a_pair():
    g = torch.Generator().manual_seed(2)
    pairs = make_stereo_pairs(8, "irregular", delta=0.0, max_offset=0.0, generator=g)
    assert pairs["symmetry"] == 1 and pairs["vertices"].shape == (8, 5, 2)
    assert float((pairs["clean_a"] - pairs["clean_b"]).abs().max()) < 1e-5
    assert float((pairs["clean_a"][0] - pairs["clean_a"][1]).abs().max()) > 0.5


def test_projections_of_a_square_cannot_tell_the_sign_of_the_angle():
    imgs = _render(4, [0.3, -0.3, 0.5], size=10.0, image_size=40)
    prof = project_1d(imgs)
    assert prof.shape == (3, 40)
    assert float((prof[0] - prof[1]).abs().max()) < 1e-3
    assert float((prof[0] - prof[2]).abs().max()) > 0.3
    pairs = make_projection_pairs(4, "square", generator=torch.Generator().manual_seed(0))
    assert pairs["profiles_a"].shape == (4, 32)
    with pytest.raises(ValueError, match="axis"):
        project_1d(imgs, axis=2)


@pytest.mark.parametrize(
    "name, volume",
    [
        ("cube", (2 / math.sqrt(3)) ** 3),
        ("tetrahedron", 8 / (9 * math.sqrt(3))),
        ("octahedron", 4 / 3),
    ],
)
def test_polyhedron_projections_integrate_to_the_volume(name, volume):
    size = 12.0
    rot = torch.from_numpy(np.eye(3, dtype=np.float32)).unsqueeze(0)
    img = render_polyhedra(name, rot, torch.tensor([size]), torch.zeros(1, 2), image_size=48)
    # thickness is in units of the diameter 2 * size; pixel area 1
    assert float(img.sum()) * 2 * size == pytest.approx(volume * size**3, rel=0.03)


def test_polyhedron_pairs_are_tilts_about_the_axis():
    g = torch.Generator().manual_seed(3)
    pairs = make_polyhedron_pairs(6, "cube", axis=(0, 1, 0), delta=0.3, wobble=0.2, generator=g)
    assert pairs["symmetry"] == 1  # a tilt turns the projection over: no symmetry in the angle
    rel = pairs["rotations_b"] @ pairs["rotations_a"].transpose(-1, -2)
    # the relative rotation is 0.3 rad about y
    assert torch.allclose(rel[:, 1, 1], torch.ones(6), atol=1e-5)
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    assert torch.allclose(cos, torch.full((6,), math.cos(0.3)), atol=1e-5)
    assert pairs["images_a"].shape == (6, 32, 32)
    # about the beam, a cube's projection is centrosymmetric: the angle is defined modulo pi
    beam = make_polyhedron_pairs(
        4, "cube", delta=math.pi, max_offset=0.0, dose=0.0, read_noise=0.0, generator=g
    )
    assert beam["symmetry"] == 2
    assert float((beam["clean_a"] - beam["clean_b"]).abs().max()) < 1e-4
    tetra = make_polyhedron_pairs(4, "tetrahedron", delta=math.pi, max_offset=0.0, generator=g)
    assert tetra["symmetry"] == 1
    assert float((tetra["clean_a"] - tetra["clean_b"]).abs().max()) > 0.1
    with pytest.raises(ValueError, match="axis"):
        make_polyhedron_pairs(2, "cube", axis=(0, 0, 0))
    with pytest.raises(ValueError, match="name"):
        make_polyhedron_pairs(2, "dodecahedron")


def test_preprocess_centres_and_denoises():
    g = torch.Generator().manual_seed(4)
    data = make_polygons(64, "square", max_offset=4.0, dose=100.0, generator=g)
    com = center_of_mass(denoise(data["images"], sigma=1.0))
    # centre of mass of a square is its centre; background noise is removed by the median
    assert float((com - data["offset"]).norm(dim=-1).mean()) < 0.35
    centred = center_by_mass(data["clean"], background=None)
    assert float(center_of_mass(centred, background=None).norm(dim=-1).max()) < 0.15
    blurred_clean = denoise(data["clean"], sigma=1.0)
    err_raw = float((data["images"] - data["clean"] - 0.05).pow(2).mean())
    err_denoised = float((denoise(data["images"], sigma=1.0) - blurred_clean - 0.05).pow(2).mean())
    assert err_denoised < 0.3 * err_raw
    med = denoise(data["images"], method="median", sigma=1.0)
    assert med.shape == data["images"].shape
    out = preprocess(data["images"])
    assert torch.allclose(out.mean(dim=(1, 2)), torch.zeros(64), atol=1e-4)
    assert torch.allclose(
        normalize_intensity(data["clean"], "max").amax(dim=(1, 2)), torch.ones(64)
    )
    # 1D profiles are centred too
    prof = project_1d(data["clean"])
    assert (
        float(center_of_mass(center_by_mass(prof, background=None), background=None).abs().max())
        < 0.15
    )


def test_preprocess_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        preprocess(np.full((2, 8, 8), np.nan))
    with pytest.raises(ValueError, match="images"):
        preprocess(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match="sigma"):
        denoise(np.zeros((2, 8, 8)), sigma=0.0)
    with pytest.raises(ValueError, match="method"):
        denoise(np.zeros((2, 8, 8)), method="wiener")
