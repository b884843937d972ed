"""The maths of the 2D spatial primitives."""

import math

import pytest
import torch

from pyrolatent.primitives import (
    affine_theta,
    normalized_to_pixel,
    pixel_grid,
    pixel_to_normalized,
    transform_points,
    warp_copies,
    warp_images,
)
from pyrolatent.primitives.warp import sampling_grid


def _smooth_image(n=32, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(n, 1, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(img, size=(h, w), mode="bicubic").squeeze(1)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_warp_by_right_angles_equals_rot90(k):
    img = torch.rand(3, 17, 17)
    out = warp_images(img, angle=torch.full((3,), k * math.pi / 2))
    assert torch.allclose(out, torch.rot90(img, k, dims=(-2, -1)), atol=1e-5)


def test_warp_rot90_even_sized_and_channels():
    img = torch.rand(2, 3, 16, 16)
    out = warp_images(img, angle=torch.full((2,), math.pi / 2))
    assert torch.allclose(out, torch.rot90(img, 1, dims=(-2, -1)), atol=1e-5)


def test_integer_shift_moves_content_right_and_down():
    img = torch.rand(1, 10, 10)
    out = warp_images(img, offset=torch.tensor([[2.0, 3.0]]))
    assert torch.allclose(out[0, 3:, 2:], img[0, :-3, :-2], atol=1e-6)
    assert torch.all(out[0, :3] == 0)


def test_transform_then_inverse_is_identity():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(50, 2, generator=g) * 10
    angle = torch.rand(4, generator=g) * 2 * math.pi
    offset = torch.randn(4, 2, generator=g) * 3
    scale = torch.rand(4, generator=g) + 0.5
    fwd = transform_points(pts, angle, offset, scale)
    back = transform_points(fwd, angle, offset, scale, inverse=True)
    assert torch.allclose(back, pts.expand(4, -1, -1), atol=1e-5)


def test_warp_then_inverse_warp_recovers_smooth_image():
    img = _smooth_image(4, 48, 48)  # bilinear resampling twice: error is interpolation only
    angle = torch.tensor([0.3, 1.1, 2.5, -0.7])
    offset = torch.tensor([[1.5, -0.5], [0.0, 2.0], [-1.0, 1.0], [0.3, 0.3]])
    fwd = warp_images(img, angle=angle, offset=offset)
    # inverse similarity: angle -a, offset -R(-a) d
    inv_offset = -transform_points(offset.unsqueeze(1), angle=-angle).squeeze(1)
    back = warp_images(fwd, angle=-angle, offset=inv_offset)
    inner = (slice(None), slice(12, 36), slice(12, 36))  # away from padded corners
    err = (back[inner] - img[inner]).abs()
    # a wrong inverse (e.g. offset not rotated back) gives a mean error of ~0.1 here
    assert err.mean() < 0.02 and err.max() < 0.1


def test_pixel_grid_and_normalisation_round_trip():
    g = pixel_grid(5, 8)
    assert g.shape == (5, 8, 2)
    assert g[0, 0].tolist() == [-3.5, -2.0]
    n = pixel_to_normalized(g, 5, 8)
    assert torch.allclose(n[0, 0], torch.tensor([-7 / 8, -4 / 5]))
    assert torch.allclose(normalized_to_pixel(n, 5, 8), g)


def test_points_rotate_counter_clockwise_as_displayed():
    # the +x (right) axis turned by +90 degrees points up, i.e. to negative rows
    p = torch.tensor([[1.0, 0.0]])
    out = transform_points(p, angle=torch.tensor([math.pi / 2]))
    assert torch.allclose(out[0, 0], torch.tensor([0.0, -1.0]), atol=1e-6)


def test_warp_gradient_wrt_angle_matches_finite_differences():
    img = _smooth_image(1, 24, 24).double()
    angle = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    weights = torch.rand(24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def f(a):
        return (warp_images(img, angle=a) * weights).sum()

    (grad,) = torch.autograd.grad(f(angle), angle)
    eps = 1e-5
    with torch.no_grad():
        fd = (f(angle + eps) - f(angle - eps)) / (2 * eps)
    assert torch.allclose(grad, fd.reshape(1), rtol=1e-4, atol=1e-6)
    assert torch.autograd.gradcheck(f, (angle,), eps=1e-6, atol=1e-5)


def test_warp_copies_equals_warping_repeated_images():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 10, 12, generator=gen, requires_grad=True)
    angle = torch.rand(3, 4, generator=gen)
    offset = torch.randn(3, 4, 2, generator=gen)
    scale = torch.rand(3, 4, generator=gen) + 0.5
    got = warp_copies(x, angle, offset, scale)
    ref = warp_images(
        x.repeat_interleave(4, 0), angle.reshape(-1), offset.reshape(-1, 2), scale.reshape(-1)
    ).reshape(3, 4, 10, 12)
    assert torch.allclose(got, ref, atol=1e-6)
    (g_got,) = torch.autograd.grad(got.square().sum(), x)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
    assert torch.allclose(g_got, g_ref, atol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        warp_copies(x)


@pytest.mark.parametrize("live_share", [0.0, 0.15, 0.6, 1.0])
def test_warp_copies_backward_skips_dead_copies_with_the_same_gradients(live_share):
    """Copies whose gradient is exactly zero (poses an enumerated posterior rules out) are
    skipped in the backward; every gradient equals the plain autograd path's bit for bit
    (H W = 192, a multiple of the CPU kernels' 16- or 8-float vectors; see the next test)."""
    gen = torch.Generator().manual_seed(1)
    b, k, h, w = 9, 6, 16, 12
    x = torch.rand(b, h, w, generator=gen, requires_grad=True)
    angle = (torch.rand(b, k, generator=gen) * 6).requires_grad_()
    offset = torch.randn(b, k, 2, generator=gen).requires_grad_()
    scale = (torch.rand(b, k, generator=gen) * 0.4 + 0.8).requires_grad_()
    weight = torch.randn(b, k, h, w, generator=gen)
    weight *= (torch.rand(b, k, 1, 1, generator=gen) < live_share).float()
    weight[0, 1, 2, 3] = 1e-30  # one pixel keeps a copy live
    inputs = (x, angle, offset, scale)
    got = torch.autograd.grad(warp_copies(*inputs), inputs, weight)
    theta = affine_theta(angle.reshape(-1), offset.reshape(-1, 2), scale.reshape(-1), h, w)
    grid = sampling_grid(theta, h, w).reshape(b, k * h, w, 2)
    ref = torch.nn.functional.grid_sample(x.unsqueeze(1), grid, align_corners=False)
    want = torch.autograd.grad(ref.reshape(b, k, h, w), inputs, weight)
    assert torch.equal(warp_copies(*inputs), ref.reshape(b, k, h, w))
    for g, r in zip(got, want, strict=True):
        assert torch.equal(g, r)
    weight[0, 1] = float("nan")  # a NaN gradient is passed on, not skipped
    assert bool(torch.autograd.grad(warp_copies(*inputs), x, weight)[0][0].isnan().any())


def test_warp_copies_backward_works_on_the_live_copies_only(monkeypatch):
    """The skip itself: grid_sample's backward sees the live copies and no others."""
    from pyrolatent.primitives import copy_warp

    seen = []
    inner = copy_warp._backward

    def spy(grad, images, theta, need):
        seen.append(grad.shape[0] * grad.shape[1])
        return inner(grad, images, theta, need)

    monkeypatch.setattr(copy_warp, "_backward", spy)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(20, 16, 16, generator=gen, requires_grad=True)
    angle = (torch.rand(20, 8, generator=gen) * 6).requires_grad_()
    weight = torch.randn(20, 8, 16, 16, generator=gen)
    live = torch.rand(20, 8, generator=gen) < 0.2
    weight *= live[..., None, None].float()
    torch.autograd.grad(warp_copies(x, angle), (x, angle), weight)
    assert sum(seen) == int(live.sum()) < 20 * 8


def test_warp_copies_backward_of_any_image_size_equals_autograd_to_rounding():
    """With H W = 154 (no whole number of vectors) the image gradient adds the same terms
    in another order: measured differences up to 2.4e-7 here, float32 rounding."""
    gen = torch.Generator().manual_seed(1)
    b, k, h, w = 9, 6, 14, 11
    x = torch.rand(b, h, w, generator=gen, requires_grad=True)
    angle = torch.rand(b, k, generator=gen) * 6
    weight = torch.randn(b, k, h, w, generator=gen)
    weight *= (torch.rand(b, k, 1, 1, generator=gen) < 0.3).float()
    (got,) = torch.autograd.grad(warp_copies(x, angle), x, weight)
    rep = warp_images(x.repeat_interleave(k, 0), angle.reshape(-1)).reshape(b, k, h, w)
    (want,) = torch.autograd.grad(rep, x, weight)
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-6)


def test_particle_centre_holds_under_background_noise():
    """Noise of std 0.2 pulls the plain centre of mass most of the way to the image centre
    (measured (0.1, -0.6) for a particle at (1, -3)); the particle centre stays within 0.6 px."""
    from pyrolatent.primitives import centre_of_mass, particle_centre

    x = torch.zeros(3, 32, 32)
    x[:, 10:20, 12:16] = 1.0
    x = warp_images(x, offset=torch.tensor([[3.0, -2.0]] * 3))
    truth = centre_of_mass(x)
    assert torch.allclose(particle_centre(x), truth, atol=1e-4)
    noisy = x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert (particle_centre(noisy) - truth).norm(dim=1).max() < 0.6
    assert (centre_of_mass(noisy) - truth).norm(dim=1).min() > 1.5
