"""RotationPooledEncoder: re-centred, turned copies, one sampling grid per turn."""

import math

import torch

from pyrolatent.nn.pooled_encoder import RotationPooledEncoder
from pyrolatent.primitives import turn_copies, warp_images


class _Capture(torch.nn.Module):
    out_features = 12 * 12

    def forward(self, copies):
        self.copies = copies
        return copies.flatten(1)


def _l_shapes():
    x = torch.zeros(2, 12, 12)
    x[:, 3:8, 4:6] = 1.0
    x[:, 3:5, 4:9] = 1.0
    return x


def test_turn_copies_equal_warping_each_image():
    x = torch.rand(3, 10, 12, generator=torch.Generator().manual_seed(0))
    turns = torch.tensor([0.0, 0.4, 2.0])
    got = turn_copies(x, turns)
    assert got.shape == (3, 3, 10, 12)
    for k in range(3):
        assert torch.allclose(got[k], warp_images(x, angle=turns[k].expand(3)), atol=1e-6)


def test_copies_are_the_recentred_image_turned():
    x = _l_shapes()
    centre = torch.tensor([[2.0, -1.0], [1.0, 1.0]])
    enc = RotationPooledEncoder(_Capture(), views=4).eval()  # quarter turns: exact
    feats = enc(x, centre=centre)
    assert feats.shape == (2, 144)
    copies = enc.base.copies.reshape(4, 2, 12, 12)  # (views, images)
    centred = warp_images(x, offset=-centre)
    for k in range(4):
        assert torch.allclose(copies[k], torch.rot90(centred, k, dims=(-2, -1)), atol=1e-5)
    # the pooled features do not change when the input turns by a quarter
    turned = enc(torch.rot90(x, 1, dims=(-2, -1)), centre=None)
    assert torch.allclose(turned, enc(x, centre=None), atol=1e-4)
    assert math.isfinite(float(feats.sum()))


def test_a_batch_of_one_trains():
    """The last mini-batch may hold one image: it is normalised by the running statistics."""
    from pyrolatent.data.synthetic.cards import make_cards
    from pyrolatent.estimators.rvae import RVAE
    from pyrolatent.estimators.ssrvae import SSRVAE
    from pyrolatent.nn.encoders import make_encoder
    from pyrolatent.nn.pooled_encoder import RotationPooledEncoder

    enc = RotationPooledEncoder(make_encoder("mlp", (8, 8), (16,), "relu"), views=4).train()
    enc(torch.rand(5, 8, 8))
    one = enc(torch.rand(1, 8, 8))
    assert one.shape == (1, 16) and torch.isfinite(one).all()
    x = make_cards(3, image_size=12, seed=0)  # 12 images: batches of 11 and 1
    RVAE((12, 12), encoder_hidden=(8,), decoder_hidden=(8,), seed=0).fit(
        x["images"], epochs=1, batch_size=11, progress=False, diagnose=False
    )
    SSRVAE((12, 12), 4, encoder_hidden=(8,), decoder_hidden=(8,), seed=0).fit(
        x["images"], x["images"][:5], x["labels"][:5], epochs=1, batch_size=11,
        labelled_batch_size=4, progress=False, diagnose=False,
    )  # fmt: skip
