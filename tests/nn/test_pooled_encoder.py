"""RotationPooledEncoder: re-centring and turning are one resampling."""

import torch

from pyrolatent.nn.pooled_encoder import RotationPooledEncoder
from pyrolatent.primitives import warp_images


class _Capture(torch.nn.Module):
    out_features = 12 * 12

    def forward(self, copies):
        self.copies = copies
        return copies.flatten(1)


def test_centre_equals_moving_the_image_first():
    x = torch.zeros(2, 12, 12)
    x[:, 3:8, 4:6] = 1.0
    x[:, 3:5, 4:9] = 1.0
    centre = torch.tensor([[2.0, -1.0], [0.5, 1.5]])
    enc = RotationPooledEncoder(_Capture(), views=4).eval()  # quarter turns: exact
    enc(x, centre=centre)
    fused = enc.base.copies
    enc(warp_images(x, offset=-centre))
    two_step = enc.base.copies
    # integer centres: both are exact; half-pixel ones differ by one bilinear pass at most
    assert torch.allclose(fused[:4], two_step[:4], atol=1e-5)
    assert float((fused - two_step).abs().mean()) < 0.02
