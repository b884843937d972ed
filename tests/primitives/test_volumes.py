"""Central slices and point-group symmetrisation of volumes."""

import pytest
import torch

from pyrolatent.primitives.groups import point_group
from pyrolatent.primitives.so3 import axis_angle_to_matrix, random_rotations
from pyrolatent.primitives.volumes import slice_volume, symmetrize_volume, symmetrized_slices


def _smooth_volume(size=17, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(1, 1, 5, 5, 5, generator=g, dtype=dtype)
    return torch.nn.functional.interpolate(v, size=(size,) * 3, mode="trilinear")[0, 0]


def test_slice_axis_order():
    S = 11
    c = S // 2
    v = torch.rand(S, S, S, dtype=torch.float64)
    # identity: the central z plane, rows = y, columns = x
    assert torch.allclose(slice_volume(v, torch.eye(3, dtype=torch.float64)[None])[0], v[c])
    # 90 degrees about x maps (x, y, 0) to (x, 0, y): rows now run along z
    rx = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64)
    assert torch.allclose(slice_volume(v, rx[None])[0], v[:, c, :], atol=1e-12)
    # 90 degrees about y maps (x, y, 0) to (0, y, -x): columns run along -z
    ry = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=torch.float64)
    assert torch.allclose(slice_volume(v, ry[None])[0], v[:, :, c].T.flip(-1), atol=1e-12)
    # one bright voxel at (x, y, z) = (3, -2, 0) lands at row c - 2, column c + 3
    d = torch.zeros(S, S, S)
    d[c, c - 2, c + 3] = 1.0
    img = slice_volume(d, torch.eye(3)[None])[0]
    assert img[c - 2, c + 3] == 1.0 and img.sum() == 1.0


def test_slice_of_rotated_smooth_function_matches_analytic():
    S = 33
    r = torch.arange(S, dtype=torch.float64) - S // 2
    z, y, x = torch.meshgrid(r, r, r, indexing="ij")
    a = torch.tensor([0.01, 0.025, 0.05], dtype=torch.float64)
    v = torch.exp(-(a[0] * x**2 + a[1] * y**2 + a[2] * z**2))
    R = random_rotations(8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    p = torch.stack([xx, yy, torch.zeros_like(xx)], -1)
    q = torch.einsum("nab,ijb->nija", R, p)
    truth = torch.exp(-(a * q**2).sum(-1))
    inside = (xx**2 + yy**2) <= (S // 2) ** 2
    err = (slice_volume(v, R) - truth)[:, inside].abs().max()
    assert float(err) < 0.02


def test_batched_volumes_slice_independently():
    v = torch.stack([_smooth_volume(seed=s) for s in range(3)])
    R = random_rotations(3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = slice_volume(v, R)
    for i in range(3):
        assert torch.allclose(out[i], slice_volume(v[i], R[i : i + 1])[0])


@pytest.mark.parametrize("group", ["O", "Oh", "T", "D4"])
def test_slice_symmetrisation_equals_symmetrised_volume(group):
    v = _smooth_volume(seed=2)
    R = random_rotations(6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sym = symmetrize_volume(v, group)
    assert torch.allclose(slice_volume(sym, R), symmetrized_slices(v, R, group), atol=1e-10)
    # batched volumes (one per rotation) too
    vb = torch.stack([_smooth_volume(seed=s) for s in range(6)])
    assert torch.allclose(
        slice_volume(symmetrize_volume(vb, group), R), symmetrized_slices(vb, R, group), atol=1e-10
    )


def test_symmetrised_volume_is_invariant():
    v = _smooth_volume(seed=3)
    sym = symmetrize_volume(v, "O")
    assert not torch.allclose(v, v.permute(1, 0, 2))
    for g in point_group("O", dtype=torch.float64):
        # exact resampling by slicing: V(g R p) = V(R p)
        R = random_rotations(2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        assert torch.allclose(slice_volume(sym, g @ R), slice_volume(sym, R), atol=1e-10)
    assert torch.allclose(symmetrize_volume(sym, "O"), sym, atol=1e-12)
    # a non-permutation group goes through resampling: C5 about z, compare smooth slices
    sym5 = symmetrize_volume(_smooth_volume(size=33, seed=5), "C5")
    rz = axis_angle_to_matrix(
        torch.tensor([0.0, 0, 1], dtype=torch.float64),
        torch.tensor(2 * torch.pi / 5, dtype=torch.float64),
    )
    sym5 = sym5.double()
    R = random_rotations(4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    a, b = slice_volume(sym5, R), slice_volume(sym5, rz @ R)
    r = torch.arange(33) - 16.0
    inside = (r[:, None] ** 2 + r[None] ** 2) <= 12**2  # away from the cube's missing corners
    assert float((a - b)[:, inside].abs().max()) < 0.05 * float(a.abs().max())


def test_bad_inputs():
    v = torch.rand(9, 9, 9)
    with pytest.raises(ValueError, match="not orthonormal"):
        slice_volume(v, torch.rand(2, 3, 3) + 1)
    with pytest.raises(ValueError, match="even"):
        slice_volume(torch.rand(8, 8, 8), torch.eye(3)[None])
    with pytest.raises(ValueError, match="cubic"):
        slice_volume(torch.rand(9, 9, 7), torch.eye(3)[None])
    with pytest.raises(ValueError, match="NaN"):
        slice_volume(torch.full((9, 9, 9), float("nan")), torch.eye(3)[None])
    with pytest.raises(ValueError, match="batch of 2"):
        slice_volume(torch.rand(2, 9, 9, 9), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ValueError, match="unknown point group"):
        symmetrize_volume(v, "X2")
