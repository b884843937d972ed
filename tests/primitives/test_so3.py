"""SO(3): quaternions, uniform sampling, grids, point groups, fundamental zones."""

import math

import pytest
import torch

from pyrolatent.primitives.groups import canonicalize, misorientation, orientation_grid, point_group
from pyrolatent.primitives.so3 import (
    axis_angle_to_matrix,
    check_rotations,
    in_plane_rotations,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_rotations,
    rotation_angle,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_quaternion_matrix_round_trip_and_known_values():
    R = random_rotations(500, generator=_gen(), dtype=torch.float64)
    q = matrix_to_quaternion(R)
    assert torch.allclose(quaternion_to_matrix(q), R, atol=1e-12)
    assert bool((q[:, 0] >= 0).all())
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45) maps x -> y
    h = math.sqrt(0.5)
    Rz = quaternion_to_matrix(torch.tensor([h, 0.0, 0.0, h], dtype=torch.float64))
    assert torch.allclose(
        Rz @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0], dtype=torch.float64),
        atol=1e-12,
    )
    # rotations of 180 degrees (w = 0) go through the stable branches
    R180 = axis_angle_to_matrix(
        torch.randn(50, 3, dtype=torch.float64), torch.full((50,), math.pi, dtype=torch.float64)
    )
    assert torch.allclose(quaternion_to_matrix(matrix_to_quaternion(R180)), R180, atol=1e-9)


def test_random_rotations_are_uniform():
    R = random_rotations(20000, generator=_gen(1), dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(R @ R.transpose(-1, -2), eye.expand_as(R), atol=1e-10)
    assert torch.allclose(torch.linalg.det(R), torch.ones(20000, dtype=torch.float64))
    # Haar measure: E[R] = 0, and the angle density is (1 - cos t) / pi, so E[t] = pi/2 + 2/pi
    assert R.mean(0).abs().max() < 0.02
    t = rotation_angle(R)
    assert abs(float(t.mean()) - (math.pi / 2 + 2 / math.pi)) < 0.02
    # each rotated axis is uniform on the sphere: E[z^2] = 1/3
    assert abs(float((R[:, 2, 0] ** 2).mean()) - 1 / 3) < 0.01
    same = random_rotations(10, generator=_gen(3))
    assert torch.equal(same, random_rotations(10, generator=_gen(3)))


@pytest.mark.parametrize(
    "name,order",
    [
        ("C1", 1),
        ("C4", 4),
        ("C7", 7),
        ("D3", 6),
        ("D6", 12),
        ("T", 12),
        ("O", 24),
        ("Oh", 48),
        ("I", 60),
        ("Ih", 120),
    ],
)
def test_point_groups_are_closed_groups(name, order):
    G = point_group(name, dtype=torch.float64)
    assert G.shape == (order, 3, 3)
    assert torch.allclose(G[0], torch.eye(3, dtype=torch.float64))
    prod = (G[:, None] @ G[None]).reshape(-1, 3, 3)
    dist = (prod[:, None] - G[None]).abs().amax(dim=(-1, -2)).min(dim=1).values
    assert float(dist.max()) < 1e-9  # closure
    distinct = (G[:, None] - G[None]).abs().amax(dim=(-1, -2)) + torch.eye(order) * 9
    assert float(distinct.min()) > 1e-3  # no duplicates
    det = torch.linalg.det(G)
    assert int((det < 0).sum()) == {"Oh": 24, "Ih": 60}.get(name, 0)
    assert torch.allclose(G.transpose(-1, -2) @ G, torch.eye(3, dtype=torch.float64).expand_as(G))


def test_icosahedral_group_axes_and_subgroups():
    ico = point_group("I", dtype=torch.float64)
    assert torch.allclose(torch.linalg.det(ico), torch.ones(60, dtype=torch.float64))
    # rotation angles of I: identity, 15 two-fold, 20 three-fold, 24 five-fold (+-72, +-144)
    angles = torch.round(torch.rad2deg(rotation_angle(ico))).long().tolist()
    counts = {a: angles.count(a) for a in sorted(set(angles))}
    assert counts == {0: 1, 72: 12, 120: 20, 144: 12, 180: 15}

    # T (same two-fold axes along x, y, z) is a subgroup of I; O is not
    def contains(big, small):
        d = (small[:, None] - big[None]).abs().amax(dim=(-1, -2)).min(dim=1).values
        return float(d.max()) < 1e-9

    assert contains(ico, point_group("T", dtype=torch.float64))
    assert not contains(ico, point_group("O", dtype=torch.float64))
    # a five-fold axis lies along (0, 1, phi)
    phi = (1 + math.sqrt(5)) / 2
    axis = torch.tensor([0.0, 1.0, phi], dtype=torch.float64)
    fixes_axis = ((ico @ axis) - axis).norm(dim=-1) < 1e-9
    assert int(fixes_axis.sum()) == 5
    ih = point_group("Ih", dtype=torch.float64)
    assert contains(ih, ico) and contains(ih, -ico)


def test_point_group_unknown_name():
    with pytest.raises(ValueError, match="unknown point group"):
        point_group("Q5")
    with pytest.raises(ValueError, match="unknown point group"):
        point_group("Icosa")


def test_canonicalize_and_misorientation_modulo_group():
    R = random_rotations(400, generator=_gen(2), dtype=torch.float64)
    octa = point_group("O", dtype=torch.float64)
    g = octa[torch.randint(0, 24, (400,), generator=_gen(4))]
    c1 = canonicalize(R, "O")
    c2 = canonicalize(g @ R, "O")
    assert torch.allclose(c1, c2, atol=1e-9)  # same class -> same representative
    assert torch.allclose(canonicalize(c1, "O"), c1, atol=1e-12)  # idempotent
    # the fundamental zone of O: rotation angle at most 62.8 degrees (its corner)
    assert float(rotation_angle(c1).max()) < math.radians(62.81)
    assert float(misorientation(R, g @ R, "O").max()) < 1e-6
    # Friedel: R and R Rz(pi) are the same slice orientation
    rz = axis_angle_to_matrix(
        torch.tensor([0.0, 0, 1], dtype=torch.float64), torch.tensor(math.pi, dtype=torch.float64)
    )
    assert float(misorientation(R, R @ rz, "O").min()) > 1e-3
    assert float(misorientation(R, R @ rz, "O", friedel=True).max()) < 1e-6
    assert torch.allclose(
        canonicalize(R @ rz, "Oh", friedel=True), canonicalize(g @ R, "O", friedel=True), atol=1e-9
    )
    # a small perturbation is measured correctly through the symmetry
    d = axis_angle_to_matrix(
        torch.randn(400, 3, dtype=torch.float64), torch.full((400,), 0.05, dtype=torch.float64)
    )
    m = misorientation(g @ R @ d, R, "Oh")
    assert torch.allclose(m, torch.full_like(m, 0.05), atol=1e-6)
    # with Friedel, a two-fold axis near the beam can make the pair even closer
    m = misorientation(g @ R @ d, R, "Oh", friedel=True)
    assert float(m.max()) < 0.05 + 1e-6 and float((m > 0.05 - 1e-6).float().mean()) > 0.9


@pytest.mark.parametrize("name", ["I", "Ih"])
def test_canonicalize_modulo_icosahedral_group(name):
    R = random_rotations(400, generator=_gen(6), dtype=torch.float64)
    proper = point_group("I", dtype=torch.float64)
    g = proper[torch.randint(0, 60, (400,), generator=_gen(7))]
    c1, c2 = canonicalize(R, name), canonicalize(g @ R, name)
    assert torch.allclose(c1, c2, atol=1e-9)
    assert torch.allclose(canonicalize(c1, name), c1, atol=1e-12)
    assert float(misorientation(R, g @ R, name).max()) < 1e-6
    # the fundamental zone of I is small: measured max rotation angle 44.12 deg over 200 000
    # random rotations (62.8 deg for O)
    assert float(rotation_angle(c1).max()) < math.radians(44.5)
    # |SO(3)| / 60: the zone holds 1/60 of random rotations' probability mass
    inside = (canonicalize(R, name) - R).abs().amax(dim=(-1, -2)) < 1e-9
    assert abs(float(inside.double().mean()) - 1 / 60) < 0.02


@pytest.mark.parametrize(
    "group,friedel", [(None, False), ("O", False), ("O", True), ("D4", False), ("I", False)]
)
def test_orientation_grid_is_near_uniform(group, friedel):
    n = 3000
    grid = orientation_grid(n, group=group, friedel=friedel, dtype=torch.float64)
    assert abs(grid.shape[0] - n) < 0.05 * n
    if group is not None:
        assert torch.allclose(canonicalize(grid, group, friedel=friedel), grid, atol=1e-9)
    # covering radius: every random orientation has a grid point within the spacing
    # of a uniform grid of that density (|SO(3)| = 8 pi^2 reduced by the symmetry)
    order = 1 if group is None else point_group(group).shape[0]
    order *= 2 if friedel else 1
    spacing = (8 * math.pi**2 / (order * n)) ** (1 / 3)
    probe = random_rotations(300, generator=_gen(5), dtype=torch.float64)
    d = misorientation(probe[:, None], grid[None], group, friedel=friedel).min(dim=1).values
    # (measured: grid max 0.79-0.84, median 0.49-0.52; random sets of the same size
    # reach max 1.02-1.29, median 0.54-0.55)
    assert float(d.max()) < 0.9 * spacing
    assert float(d.median()) < 0.53 * spacing


def test_bad_rotations_raise():
    with pytest.raises(ValueError, match="not orthonormal"):
        check_rotations(torch.eye(3) * 2)
    with pytest.raises(ValueError, match="3, 3"):
        check_rotations(torch.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        check_rotations(torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match="proper"):
        matrix_to_quaternion(-torch.eye(3))
    with pytest.raises(ValueError, match="not orthonormal"):
        misorientation(torch.eye(3), torch.ones(3, 3), "O")


def test_in_plane_rotations_turn_about_the_beam():
    alpha = torch.tensor([0.3, -1.2, 2.5])
    z = torch.tensor([0.0, 0.0, 1.0]).expand(3, 3)
    assert torch.allclose(in_plane_rotations(alpha), axis_angle_to_matrix(z, alpha), atol=1e-6)


def test_offset_posterior_mean_of_a_posterior_all_on_the_centre():
    """At 10^5 photons a frame's local posterior can sit entirely on the centre candidate
    (zero rotation vector): the mean is the centre itself, not NaN (it was, before)."""
    from pyrolatent.primitives.so3 import local_offsets, offset_posterior_mean

    centres = random_rotations(3, generator=torch.Generator().manual_seed(0))
    _, vectors = local_offsets(0.06, 0.03)
    prob = torch.zeros(3, vectors.shape[0])
    prob[0, 0] = 1.0  # all on the centre (vectors[0] is 0)
    prob[1, 0], prob[1, 1] = 0.5, 0.5
    prob[2] = 1.0 / vectors.shape[0]  # symmetric ball: mean 0 as well
    rot, spread = offset_posterior_mean(centres, prob, vectors)
    assert torch.isfinite(rot).all() and torch.isfinite(spread).all()
    assert torch.allclose(rot[0], centres[0], atol=1e-6) and float(spread[0]) == 0.0
    assert torch.allclose(rot[2], centres[2], atol=1e-5)
    turned = centres[1] @ axis_angle_to_matrix(
        vectors[1] / vectors[1].norm(), vectors[1].norm() / 2
    )
    assert torch.allclose(rot[1], turned, atol=1e-5)
    assert abs(float(spread[1]) - float(vectors[1].norm()) / 2) < 1e-6
