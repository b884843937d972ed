"""The fast decoder paths compute exactly the textbook functions and gradients."""

import pytest
import torch

from pyrolatent.nn.coordinate_mlp import coordinate_mlp
from pyrolatent.nn.decoders import SpatialDecoder
from pyrolatent.primitives import transform_points


def _textbook(dec, z, angle, offset, scale):
    coords = transform_points(dec.grid, angle, offset, scale, inverse=True) * dec.coord_scale
    h = dec.act(dec.fc_coord(coords) + dec.fc_latent(z).unsqueeze(1))
    return dec.link(dec.rest(h).squeeze(-1)).reshape(z.shape[0], *dec.image_size)


@pytest.mark.parametrize("chunked", [False, True])
def test_spatial_decoder_matches_textbook_evaluation_and_gradients(chunked):
    torch.manual_seed(0)
    dec = SpatialDecoder((12, 10), 3, (16, 16, 16), "tanh", torch.sigmoid, chunked=chunked)
    dec = dec.double()
    z = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    angle = torch.rand(5, dtype=torch.float64, requires_grad=True)
    offset = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    scale = (torch.rand(5, dtype=torch.float64) + 0.5).requires_grad_()
    fast = dec(z, angle, offset, scale)
    ref = _textbook(dec, z, angle, offset, scale)
    assert torch.allclose(fast, ref, atol=1e-12)
    inputs = [z, angle, offset, scale, *dec.parameters()]
    w = torch.randn_like(fast)
    g_fast = torch.autograd.grad((fast * w).sum(), inputs)
    g_ref = torch.autograd.grad((ref * w).sum(), inputs)
    for a, b in zip(g_fast, g_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


def test_coordinate_mlp_gradcheck_relu_and_tanh():
    torch.manual_seed(1)
    grid = torch.randn(7, 2, dtype=torch.float64)
    for act in ("tanh", "relu"):
        a = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
        c = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        w1 = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
        b1 = torch.randn(4, dtype=torch.float64, requires_grad=True)
        w2 = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
        b2 = torch.randn(1, dtype=torch.float64, requires_grad=True)

        def f(a, c, w1, b1, w2, b2, act=act):
            return coordinate_mlp(grid, a, c, [w1, w2], [b1, b2], activation=act, chunk=2)

        assert torch.autograd.gradcheck(f, (a, c, w1, b1, w2, b2))


def test_bfloat16_kernel_is_close_to_float32_and_keeps_float32_outputs():
    torch.manual_seed(2)
    dec = SpatialDecoder((24, 24), 3, (64, 64, 64), "tanh", torch.sigmoid)
    fast = SpatialDecoder(
        (24, 24), 3, (64, 64, 64), "tanh", torch.sigmoid, compute_dtype="bfloat16"
    )
    fast.load_state_dict(dec.state_dict())
    z = torch.randn(6, 3)
    angle, offset = torch.rand(6), torch.randn(6, 2)
    ref, out = dec(z, angle, offset), fast(z, angle, offset)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 1e-2
    w = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * w).sum(), list(dec.parameters()))
    g_out = torch.autograd.grad((out * w).sum(), list(fast.parameters()))
    for a, b in zip(g_ref, g_out, strict=True):
        # bfloat16 keeps ~3 significant digits: gradients agree to a few percent
        assert (a - b).norm() <= 0.03 * a.norm() + 1e-6
        assert b.dtype == torch.float32


def test_bad_compute_dtype_is_refused():
    with pytest.raises(ValueError, match="compute_dtype"):
        SpatialDecoder((8, 8), 2, (8, 8), "tanh", torch.sigmoid, compute_dtype="float16")
    with pytest.raises(ValueError, match="tanh or relu"):
        SpatialDecoder((8, 8), 2, (8, 8), "elu", torch.sigmoid, compute_dtype="bfloat16")
