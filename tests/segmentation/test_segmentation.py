"""Unit tests of the segmentation nets, losses, augmentation, tiling, ensemble and locate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.draw import ellipse

from pyrolatent.io.checkpoint import CheckpointError
from pyrolatent.segmentation import (
    Augmentation,
    DeepEnsemble,
    DilNet,
    SegmentationLoss,
    UNet,
    foreground_mask,
    locate,
    predict_tiled,
    prepare_training_data,
    split_members,
    stack_members,
)


def _randomise(net):
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize(
    "factory",
    [
        lambda m: DilNet(filters=4, members=m),
        lambda m: UNet(filters=4, depth=2, members=m),
        lambda m: UNet(filters=4, depth=2, dilated_bottleneck=True, out_channels=2, members=m),
    ],
)
def test_stacked_members_equal_separate_networks(factory):
    singles = [_randomise(factory(1)) for _ in range(3)]
    stacked = stack_members(singles).eval()
    x = torch.randn(2, 1, 32, 32)
    out = split_members(stacked(x), 3)
    for k, net in enumerate(singles):
        torch.testing.assert_close(out[:, k], net(x), atol=1e-5, rtol=1e-5)


def test_dilnet_paper_defaults_and_size_checks():
    net = DilNet()
    assert net.dilation_rates == (2, 4, 6) and net.n_cascades == 2 and net.size_multiple == 2
    rates = [m.dilation[0] for m in net.bottleneck.modules() if isinstance(m, torch.nn.Conv2d)]
    assert rates == [2, 4, 6, 2, 4, 6]
    with pytest.raises(ValueError, match="multiples of 2"):
        net(torch.zeros(1, 1, 31, 32))
    with pytest.raises(ValueError, match="channels"):
        net(torch.zeros(1, 3, 32, 32))


def test_losses_are_small_for_right_and_large_for_wrong_answers():
    target = (torch.rand(2, 1, 16, 16) > 0.5).float()
    good = (2 * target - 1) * 8
    for weights in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1)]:
        loss = SegmentationLoss(*weights)
        assert float(loss(good, target)) < 0.01
        assert float(loss(-good, target)) > 0.5
    classes = torch.randint(0, 3, (2, 16, 16))
    logits = torch.nn.functional.one_hot(classes, 3).permute(0, 3, 1, 2).float() * 10
    loss = SegmentationLoss(1, 1, 1, multiclass=True)
    assert float(loss(logits, classes)) < 0.01
    assert float(loss(-logits, classes)) > 1.0
    with pytest.raises(ValueError):
        SegmentationLoss(0, 0, 0)


def test_augmentation_moves_images_and_masks_together():
    torch.manual_seed(1)
    img = torch.zeros(16, 1, 32, 32)
    img[:, :, 4:10, 6:20] = 1.0
    aug = Augmentation(gaussian_noise=0, contrast=(1, 1), gamma=(1, 1), zoom=(0.9, 1.1))
    out, mask = aug(img.clone(), img.clone(), generator=torch.Generator().manual_seed(3))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    # the image content stays registered with the mask
    agree = ((out > 0.5).float() == mask).float().mean()
    assert agree > 0.97
    # and the augmentation did move things
    assert (mask != img).any()


def test_predict_tiled_reassembles_frames_of_any_size():
    frames = torch.randn(2, 1, 70, 45)

    # an identity "network" that requires multiples of 8
    def ident(x):
        assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0
        return x * 2

    for tile in (32, 256):
        out = predict_tiled(ident, frames, tile_size=tile, overlap=4, size_multiple=8)
        torch.testing.assert_close(out, frames * 2)


def test_ensemble_save_load_roundtrip_and_bad_checkpoint(tmp_path):
    net = _randomise(DilNet(filters=4, members=3))
    ens = DeepEnsemble(network=net)
    frames = np.random.default_rng(0).normal(size=(2, 40, 36)).astype(np.float32)
    mean, var = ens.predict(frames, tile_size=32, overlap=4)
    assert mean.shape == (2, 1, 40, 36) and var.shape == mean.shape
    assert (var >= 0).all() and var.max() > 0
    path = ens.save(tmp_path / "ens.pt")
    again = DeepEnsemble.load(path, device="cpu")
    mean2, var2 = again.predict(frames, tile_size=32, overlap=4)
    np.testing.assert_allclose(mean, mean2, atol=1e-6)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        DeepEnsemble.load(path)


def test_test_time_augmentation_pools_the_eight_transforms():
    ens = DeepEnsemble(network=_randomise(DilNet(filters=4, members=3)))
    frames = np.random.default_rng(1).normal(size=(2, 40, 36)).astype(np.float32)
    mean, var = ens.predict(frames, tile_size=64, overlap=4, tta=True)
    assert mean.shape == (2, 1, 40, 36) and var.shape == mean.shape
    # by hand: each transform predicted on its own, mapped back, moments pooled
    firsts, seconds = [], []
    for flip in (False, True):
        for turns in range(4):
            t = frames[..., ::-1] if flip else frames
            t = np.ascontiguousarray(np.rot90(t, turns, axes=(-2, -1)))
            m, v = ens.predict(t, tile_size=64, overlap=4)
            m, v = np.rot90(m, -turns, axes=(-2, -1)), np.rot90(v, -turns, axes=(-2, -1))
            if flip:
                m, v = m[..., ::-1], v[..., ::-1]
            firsts.append(m)
            seconds.append(v + m**2)
    expected_mean = np.mean(firsts, axis=0)
    np.testing.assert_allclose(mean, expected_mean, atol=1e-5)
    np.testing.assert_allclose(var, np.mean(seconds, axis=0) - expected_mean**2, atol=1e-5)
    # the spread between transforms adds to the members' variance
    plain_mean, plain_var = ens.predict(frames, tile_size=64, overlap=4)
    assert np.abs(plain_mean - mean).max() > 1e-3
    assert var.mean() > np.mean(seconds, axis=0).mean() - np.mean(np.square(firsts), axis=0).mean()
    # the pooled prediction commutes with a quarter turn (frames a multiple of the net's size)
    square = frames[:, :36, :36]
    turned, _ = ens.predict(np.ascontiguousarray(np.rot90(square, 1, axes=(-2, -1))), tta=True)
    straight, _ = ens.predict(square, tta=True)
    np.testing.assert_allclose(np.rot90(straight, 1, axes=(-2, -1)), turned, atol=1e-5)


def test_foreground_mask_drops_small_regions_and_thin_parts():
    prob = np.zeros((2, 1, 40, 40), np.float32)
    yy, xx = np.mgrid[:40, :40]
    disk = (yy - 15) ** 2 + (xx - 15) ** 2 <= 36
    prob[0, 0][disk] = 0.9  # disk of 113 pixels, up to column 21
    prob[0, 0, 15, 22:35] = 0.8  # a one-pixel-wide tail of 13 pixels attached to the disk
    prob[0, 0, 30:33, 30:33] = 0.9  # a 9-pixel speck
    prob[0, 0, 5, 30] = 0.4  # below the threshold
    plain = foreground_mask(prob)
    assert plain.shape == prob.shape and plain.dtype == bool
    assert plain.sum() == 113 + 13 + 9 and not plain[1].any()
    no_specks = foreground_mask(prob, min_area=10)
    assert no_specks.sum() == 113 + 13 and not no_specks[0, 0, 31, 31]
    opened = foreground_mask(prob, min_area=10, opening_radius=1)
    assert not opened[0, 0, 15, 25:35].any()  # the tail is gone
    assert opened[0, 0, 15, 15] and opened[0, 0].sum() >= 100  # the disk is kept
    assert foreground_mask(prob, threshold=0.3)[0, 0, 5, 30]
    assert foreground_mask(prob[:, 0]).shape == (2, 40, 40)
    with pytest.raises(ValueError, match="min_area"):
        foreground_mask(prob, min_area=-1)
    prob[1, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        foreground_mask(prob)


def test_bad_input_is_refused():
    ens = DeepEnsemble(network=DilNet(filters=4))
    nan_frames = np.zeros((2, 32, 32), np.float32)
    nan_frames[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ens.predict(nan_frames)
    with pytest.raises(ValueError, match="NaN"):
        locate(nan_frames)
    with pytest.raises(ValueError, match="does not match"):
        prepare_training_data(np.zeros((2, 32, 32)), np.zeros((2, 32, 30)), False, "cpu")
    with pytest.raises(ValueError, match="does not match"):
        prepare_training_data(np.zeros((2, 32, 32)), np.zeros((3, 32, 32)), False, "cpu")
    with pytest.raises(ValueError, match="does not match"):
        locate(np.zeros((2, 32, 32)), uncertainty=np.zeros((2, 32, 31)))


def test_locate_empty_frame_gives_empty_table():
    table = locate(np.zeros((3, 40, 40), np.float32))
    assert all(len(v) == 0 for v in table.values())
    assert "orientation" in table and "mean_uncertainty" in table


def _ellipse_map(size, centre, axes, angle):
    """Binary ellipse; ``angle`` CCW-as-displayed from +x to the major axis."""
    img = np.zeros((size, size), np.float32)
    # skimage.draw.ellipse rotation is measured from the column axis, clockwise in row/col
    rr, cc = ellipse(centre[0], centre[1], axes[1], axes[0], shape=img.shape, rotation=angle)
    img[rr, cc] = 1.0
    return img


def test_locate_recovers_centre_axes_and_orientation():
    rng = np.random.default_rng(0)
    for _ in range(6):
        angle = rng.uniform(-math.pi / 2, math.pi / 2)
        centre = rng.uniform(30, 50, size=2)
        prob = _ellipse_map(80, centre, (12, 3), angle)[None]
        unc = np.full_like(prob, 0.25)
        t = locate(prob, uncertainty=unc)
        assert len(t["row"]) == 1
        assert abs(t["row"][0] - centre[0]) < 0.5 and abs(t["col"][0] - centre[1]) < 0.5
        # major/minor are full axis lengths
        assert abs(t["major_axis"][0] - 24) < 2 and abs(t["minor_axis"][0] - 6) < 1.5
        err = abs(np.angle(np.exp(2j * (t["orientation"][0] - angle)))) / 2
        assert np.rad2deg(err) < 3
        assert t["mean_uncertainty"][0] == pytest.approx(0.25)
        assert t["eccentricity"][0] > 0.9


def test_locate_marks_particles_cut_by_the_frame_edge():
    # one ellipse inside, one cut by each edge, one a pixel short of the right edge
    centres = [(40, 40), (2, 30), (30, 1), (78, 50), (50, 79), (62, 70)]
    prob = sum(_ellipse_map(80, c, (8, 3), 0.0) for c in centres)[None]
    t = locate(np.clip(prob, 0, 1))
    assert t["touches_border"].dtype == bool and len(t["row"]) == 6
    cut = {
        (round(r), round(c))
        for r, c, b in zip(t["row"], t["col"], t["touches_border"], strict=True)
        if b
    }
    assert len(cut) == 4 and all(min(r, c) < 5 or max(r, c) > 75 for r, c in cut)
    assert (40, 40) not in cut and (62, 70) not in cut  # its right end: column 77 of 0-79


def test_locate_orientation_convention_matches_rot90():
    # a horizontal bar (along +x) rotated by rot90 (CCW as displayed) points along +y-up
    bar = np.zeros((41, 41), np.float32)
    bar[19:22, 8:33] = 1
    horiz = locate(bar[None])["orientation"][0]
    vert = locate(np.rot90(bar).copy()[None])["orientation"][0]
    assert abs(horiz) < 1e-6
    assert abs(abs(vert) - math.pi / 2) < 1e-6
    diag = _ellipse_map(61, (30, 30), (15, 3), math.pi / 4)
    # the +45 degree axis goes up and to the right: top-right pixels are set
    assert diag[20, 40] == 1 and diag[20, 20] == 0
    assert abs(locate(diag[None])["orientation"][0] - math.pi / 4) < 0.05


def test_watershed_splits_touching_disks_and_filters():
    img = np.zeros((60, 80), np.float32)
    yy, xx = np.mgrid[:60, :80]
    for c in [(30, 25), (30, 39)]:  # radius 8, centres 14 px apart: they touch
        img[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= 64] = 1
    img[5:7, 70:72] = 1  # a 4-pixel speck
    img[28:33, 76:80] = 1  # a particle at the right edge
    plain = locate(img[None], min_area=10)
    assert len(plain["row"]) == 2  # the touching pair is one region, the speck filtered
    split = locate(img[None], watershed=True, min_distance=5, min_area=10)
    assert len(split["row"]) == 3
    pair = np.sort(split["col"][split["col"] < 60])
    np.testing.assert_allclose(pair, [25, 39], atol=1.0)
    inner = locate(img[None], watershed=True, min_distance=5, min_area=10, border_margin=5)
    assert len(inner["row"]) == 2
    assert len(locate(img[None], min_area=0)["row"]) == 3


def test_locate_multichannel_gives_one_table_per_channel():
    prob = np.zeros((2, 2, 40, 40), np.float32)
    prob[0, 0, 5:10, 5:20] = 1
    prob[1, 1, 20:30, 20:25] = 1
    prob[1, 1, 2:6, 30:38] = 1
    tables = locate(prob, min_area=3, first_frame=10)
    assert isinstance(tables, list) and len(tables) == 2
    assert tables[0]["frame"].tolist() == [10]
    assert sorted(tables[1]["frame"].tolist()) == [11, 11]


def test_poisson_and_intensity_augmentations_keep_masks_and_finite_values():
    img = torch.rand(8, 1, 24, 24) * 5
    mask = (img > 2.5).float()
    aug = Augmentation(
        max_rotation=0,
        zoom=(1, 1),
        rot90=False,
        flips=False,
        poisson_counts=(5, 20),
        gaussian_noise=0.2,
    )
    out, m = aug(img, mask, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()
    assert torch.equal(m, mask)  # intensity transforms leave masks alone
    assert not torch.allclose(out, img)


def test_two_channel_overlap_network_learns_layers():
    # two overlapping layers: channel 0 = horizontal bars, channel 1 = vertical bars
    from pyrolatent.segmentation import train_ensemble

    rng = np.random.default_rng(0)
    images, masks = [], []
    for _ in range(4):
        m = np.zeros((2, 32, 32), np.float32)
        r, c = rng.integers(4, 24, 2)
        m[0, r : r + 4, 2:30] = 1
        m[1, 2:30, c : c + 4] = 1
        images.append(m[0] * 1.0 + m[1] * 2.0 + rng.normal(0, 0.1, (32, 32)))
        masks.append(m)
    images, masks = np.stack(images), np.stack(masks)
    ens = train_ensemble(
        images,
        masks,
        network="unet",
        network_config={"filters": 8, "depth": 2},
        n_members=2,
        baseline_steps=120,
        member_steps=10,
        batch_size=4,
        patch_size=32,
        lr=3e-3,
        patience=None,
        val_fraction=0,
        eval_every=40,
        progress=False,
        augmentation=Augmentation(max_rotation=0, zoom=(1, 1), gaussian_noise=0.05),
    )
    mean, _ = ens.predict(images)
    assert mean.shape == (4, 2, 32, 32)
    for ch in range(2):
        inter = ((mean[:, ch] > 0.5) & (masks[:, ch] > 0)).sum()
        union = ((mean[:, ch] > 0.5) | (masks[:, ch] > 0)).sum()
        assert inter / union > 0.8, (ch, inter / union)


def test_detection_scores_count_edge_particles_only_when_matched():
    from pyrolatent.segmentation.metrics import detection_scores

    def table(rows):
        return {
            "frame": np.zeros(len(rows), int),
            "row": np.array([r for r, _ in rows], float),
            "col": np.array([c for _, c in rows], float),
        }

    truth = table([(50, 50), (30, 70), (2, 50)])  # inside+found, inside+missed, edge+missed
    found = table([(51, 51), (60, 20), (50, 1)])  # match, inside false positive, edge extra
    plain = detection_scores(found, truth, 3)
    assert plain["n_matched"] == 1 and plain["precision"] == pytest.approx(1 / 3)
    edge = detection_scores(found, truth, 3, shape=(100, 100), margin=10)
    # TP 1, FN 1 (the inside miss), FP 1 (the inside extra); edge rows are not scored
    assert edge["precision"] == pytest.approx(0.5) and edge["recall"] == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["dilnet", "unet"])
def test_unstack_inverts_stack_and_member_passes_agree(name):
    from pyrolatent.segmentation import DeepEnsemble, build_network, stack_members, unstack_members

    torch.manual_seed(0)
    config = (
        {"filters": 8, "members": 1}
        if name == "dilnet"
        else {"filters": 8, "depth": 2, "members": 1}
    )
    singles = [build_network(name, config) for _ in range(3)]
    for net in singles:  # distinct BatchNorm statistics per member
        net.train()
        net(torch.randn(4, 1, 32, 32))
        net.eval()
    stacked = stack_members(singles).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        for single, member in zip(singles, unstack_members(stacked), strict=True):
            torch.testing.assert_close(member(x), single(x))
    ens = DeepEnsemble(network=stacked)
    frames = torch.randn(2, 40, 40).numpy()
    grouped = ens.predict(frames, tile_size=32, overlap=4, member_pass="grouped")
    sequential = ens.predict(frames, tile_size=32, overlap=4, member_pass="sequential")
    for a, b in zip(grouped, sequential, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.all(grouped[1] > 0)  # the members differ
    with pytest.raises(ValueError, match="member_pass"):
        ens.predict(frames, member_pass="vmap")
