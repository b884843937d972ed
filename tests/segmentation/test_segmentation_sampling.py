"""Foreground-biased patch sampling and bfloat16 autocast training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyrolatent.segmentation import Augmentation, UNet
from pyrolatent.segmentation.sampling import _foreground_pixels, _sample_batch
from pyrolatent.segmentation.train import train_network


def _sparse_masks():
    # one 3x3 particle per 64x64 image, at a different place in each image
    masks = torch.zeros(3, 1, 64, 64)
    for i, (r, c) in enumerate([(5, 7), (40, 50), (62, 1)]):
        masks[i, 0, r : r + 3, c : c + 3] = 1
    return masks


@pytest.mark.parametrize("multiclass", [False, True])
def test_foreground_fraction_one_puts_a_particle_in_every_patch(multiclass):
    masks = _sparse_masks()
    targets = torch.cat([1 - masks, masks], dim=1) if multiclass else masks
    images = torch.randn(3, 1, 64, 64)
    fg = _foreground_pixels(targets, multiclass)
    assert [len(f) for f in fg] == [9, 9, 6]  # the third particle is cut by the border
    g = torch.Generator().manual_seed(0)
    _, y = _sample_batch(images, targets, [0, 1, 2], 16, 200, g, fg, 1.0)
    particle = y[:, 1] if multiclass else y[:, 0]
    assert (particle.sum(dim=(-2, -1)) > 0).all()
    # uniform patches mostly miss a particle covering 0.2% of the image
    _, y0 = _sample_batch(images, targets, [0, 1, 2], 16, 200, torch.Generator().manual_seed(0))
    hit = ((y0[:, 1] if multiclass else y0[:, 0]).sum(dim=(-2, -1)) > 0).float().mean()
    assert hit < 0.2, hit
    # a fraction in between mixes the two
    _, yh = _sample_batch(images, targets, [0, 1, 2], 16, 400, g, fg, 0.5)
    hit = ((yh[:, 1] if multiclass else yh[:, 0]).sum(dim=(-2, -1)) > 0).float().mean()
    assert 0.4 < hit < 0.75, hit


def test_foreground_patches_place_the_particle_anywhere_in_the_patch():
    masks = torch.zeros(1, 1, 64, 64)
    masks[0, 0, 32, 32] = 1
    g = torch.Generator().manual_seed(1)
    fg = _foreground_pixels(masks, False)
    _, y = _sample_batch(torch.zeros(1, 1, 64, 64), masks, [0], 16, 400, g, fg, 1.0)
    rows, cols = torch.nonzero(y[:, 0], as_tuple=True)[1:]
    assert len(rows) == 400
    assert rows.min() == 0 and rows.max() == 15 and cols.min() == 0 and cols.max() == 15


def test_foreground_fraction_out_of_range_is_refused():
    net = UNet(filters=4, depth=1)
    with pytest.raises(ValueError, match="foreground_fraction"):
        train_network(
            net,
            torch.randn(2, 1, 16, 16),
            torch.zeros(2, 1, 16, 16),
            steps=1,
            foreground_fraction=1.5,
            progress=False,
        )


def test_bfloat16_training_learns_and_keeps_float32_weights():
    rng = np.random.default_rng(0)
    masks = np.zeros((4, 1, 32, 32), np.float32)
    for i in range(4):
        r, c = rng.integers(4, 24, 2)
        masks[i, 0, r : r + 6, c : c + 6] = 1
    images = torch.from_numpy(masks * 2 + rng.normal(0, 0.3, masks.shape).astype(np.float32))
    masks = torch.from_numpy(masks)
    torch.manual_seed(0)
    net = UNet(filters=8, depth=2)
    history = train_network(
        net,
        images,
        masks,
        steps=120,
        batch_size=4,
        patch_size=32,
        lr=3e-3,
        eval_every=40,
        bfloat16=True,
        augmentation=Augmentation(max_rotation=0, zoom=(1, 1)),
        progress=False,
    )
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert history["train_loss"][-1] < 0.6 * history["train_loss"][0]
    with torch.no_grad():
        pred = torch.sigmoid(net(images)) > 0.5
    iou = (pred & (masks > 0)).sum() / (pred | (masks > 0)).sum()
    assert iou > 0.9, iou
