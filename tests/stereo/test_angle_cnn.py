"""Stereo-pair angle CNN, periodic losses and angle evaluation (issue 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyrolatent.data.preprocess import preprocess
from pyrolatent.data.synthetic.polygons import make_polygons, reference_polygon
from pyrolatent.data.synthetic.stereo import make_stereo_pairs
from pyrolatent.nn.angle import AngleCNN, AngleCNN1d, PartnerRenderer
from pyrolatent.primitives.angles import (
    angle_errors,
    angle_to_phase,
    apply_calibration,
    calibrate_offset,
    check_order,
    check_symmetry,
    evaluate_angles,
    fraction_within,
    phase_to_angle,
)
from pyrolatent.stereo import fit_stereo_pairs, pair_consistency_loss, periodic_loss

DEG = math.pi / 180


# --------------------------------------------------------------------------- metric and calibration
def test_errors_are_taken_modulo_the_symmetry():
    # a square at 89 deg and one at 1 deg are 2 deg apart, not 88
    err = angle_errors([89 * DEG], [1 * DEG], symmetry=4)
    assert float(err[0]) == pytest.approx(2 * DEG, abs=1e-9)
    assert float(angle_errors([89 * DEG], [1 * DEG], symmetry=1)[0]) == pytest.approx(88 * DEG)
    # 85 vs 95 deg for a square: 10 deg
    assert float(angle_errors([85 * DEG], [95 * DEG], symmetry=4)[0]) == pytest.approx(10 * DEG)
    # with the reflection, theta and -theta are the same projection
    assert float(angle_errors([-20 * DEG], [20 * DEG], symmetry=4, mirror=True)[0]) < 1e-9
    assert float(angle_errors([-20 * DEG], [20 * DEG], symmetry=4)[0]) == pytest.approx(40 * DEG)
    frac = fraction_within(np.array([0.0, 2.0, 4.0]) * DEG, np.zeros(3), symmetry=3)
    assert frac == pytest.approx(2 / 3)


def test_calibration_recovers_a_planted_offset():
    g = torch.Generator().manual_seed(0)
    true = 2 * math.pi * torch.rand(300, generator=g, dtype=torch.float64)
    offset = 1.1
    pred = torch.remainder(true + offset + 0.5 * DEG * torch.randn(300, generator=g), math.pi / 3)
    c = calibrate_offset(pred[:1], true[:1], symmetry=6)
    # offsets are only defined modulo 2 pi / n
    assert abs(math.remainder(c - offset, math.pi / 3)) < 2.5 * DEG
    c_all = calibrate_offset(pred, true, symmetry=6)
    assert abs(math.remainder(c_all - offset, math.pi / 3)) < 0.2 * DEG
    calibrated = apply_calibration(pred, c_all, symmetry=6)
    assert fraction_within(calibrated, true, symmetry=6, tolerance_deg=2.0) > 0.99
    report = evaluate_angles(pred, true, symmetry=6, reference_index=5)
    assert report["frac_within"] > 0.9 and report["median_error_deg"] < 1.5
    # mirror calibration chooses between the two fold points
    mirrored = -true + math.pi / 4
    assert calibrate_offset(mirrored[:3], true[:3], symmetry=4, mirror=True) == pytest.approx(
        math.pi / 4
    )


def test_symmetry_order_below_one_is_rejected():
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="symmetry"):
            check_symmetry(bad)
    with pytest.raises(ValueError, match="symmetry"):
        AngleCNN((32, 32), symmetry=0, device="cpu")
    with pytest.raises(ValueError, match="symmetry"):
        pair_consistency_loss(torch.ones(2, 2), torch.ones(2, 2), torch.zeros(2), symmetry=0)
    with pytest.raises(ValueError, match="symmetry"):
        angle_errors([0.0], [0.0], symmetry=0)


# --------------------------------------------------------------------------- losses
def test_pair_loss_is_periodic_across_the_wrap_around():
    # square: theta_a = 85 deg, delta = 10 deg, theta_b = 95 deg == 5 deg
    theta_a = torch.tensor([85 * DEG])
    delta = torch.tensor([10 * DEG])
    good = pair_consistency_loss(
        angle_to_phase(theta_a, 4), angle_to_phase(torch.tensor([5 * DEG]), 4), delta, symmetry=4
    )
    bad = pair_consistency_loss(
        angle_to_phase(theta_a, 4), angle_to_phase(torch.tensor([50 * DEG]), 4), delta, symmetry=4
    )
    assert float(good) < 1e-10 and float(bad) > 1.0
    # the naive MSE on angles punishes the correct answer (the paper's failure)
    naive = float(((torch.tensor([5 * DEG]) - theta_a) - delta) ** 2)
    assert naive > 1.0
    assert float(periodic_loss(torch.tensor([5 * DEG]), torch.tensor([95 * DEG]), 4)) < 1e-10
    angles = torch.tensor([0.1, 1.0, 1.5])
    assert torch.allclose(phase_to_angle(angle_to_phase(angles, 4), 4), angles, atol=1e-6)


def test_mirror_pair_loss_accepts_either_sign():
    theta_a, theta_b = torch.tensor([0.3]), torch.tensor([0.5])
    delta = theta_b - theta_a
    # a projection network may report -theta for one image and +theta for the other
    ua, ub = angle_to_phase(-theta_a, 4), angle_to_phase(theta_b, 4)
    assert float(pair_consistency_loss(ua, ub, delta, symmetry=4, mirror=True)) < 1e-10
    assert float(pair_consistency_loss(ua, ub, delta, symmetry=4, mirror=False)) > 0.5
    wrong = angle_to_phase(torch.tensor([0.9]), 4)  # neither 0.5 nor -0.3 + 0.2 = -0.1
    assert float(pair_consistency_loss(ua, wrong, delta, symmetry=4, mirror=True)) > 0.1


# --------------------------------------------------------------------------- input checks
def test_bad_pairs_get_clear_errors():
    net = AngleCNN((32, 32), symmetry=4, device="cpu")
    a = torch.zeros(6, 32, 32)
    with pytest.raises(ValueError, match="images_b.*differs"):
        fit_stereo_pairs(net, a, torch.zeros(6, 30, 32), torch.zeros(6), epochs=1, progress=False)
    with pytest.raises(ValueError, match="delta.*one offset per pair"):
        fit_stereo_pairs(net, a, a, torch.zeros(5), epochs=1, progress=False)
    with pytest.raises(ValueError, match="images_a.*size"):
        fit_stereo_pairs(
            net, torch.zeros(6, 16, 16), torch.zeros(6, 16, 16), torch.zeros(6), progress=False
        )
    with pytest.raises(ValueError, match="method"):
        fit_stereo_pairs(net, a, a, torch.zeros(6), method="mse", progress=False)
    with pytest.raises(ValueError, match="NaN"):
        fit_stereo_pairs(net, a, a, torch.full((6,), float("nan")), progress=False)
    with pytest.raises(ValueError, match="2D images"):
        fit_stereo_pairs(
            AngleCNN1d(32, symmetry=4, device="cpu"),
            torch.zeros(6, 32),
            torch.zeros(6, 32),
            torch.zeros(6),
            method="render",
            progress=False,
        )
    with pytest.raises(ValueError, match="reference_angles"):
        net.calibrate(torch.zeros(2, 32, 32), [0.0])


def test_partner_renderer_template_is_symmetric():
    renderer = PartnerRenderer((32, 32), symmetry=4, device="cpu")
    x = torch.randn(3, 32, 32)
    with torch.no_grad():
        t = renderer.template(x)
        turned = renderer(x, torch.full((3,), math.pi / 2))
    inner = (slice(None), slice(6, 26), slice(6, 26))  # away from the border padding
    assert float((turned[inner] - t[inner]).abs().max()) < 0.05 * float(t.abs().max())


# --------------------------------------------------------------------------- end to end
def _reference(shape):
    """One noise-free, centred image of the shape at angle 0 (the calibration image)."""
    return preprocess(reference_polygon(shape))[0]


def test_method1_learns_square_angles_without_labels():
    """Fast end-to-end: >= 90% of test squares within 3 deg after one-image calibration.

    6 epochs: measured on an AMD EPYC with seeds 0-4 (torch seed, data seeds 1 + 10 s and
    2 + 10 s): 1.0, 1.0, 1.0, 0.955, 0.9975. With 4 epochs a change of the warp's sampling
    grid in the last float bit moved seed 0 from above 0.90 to 0.8925 (others 0.99-1.0).
    """
    torch.manual_seed(0)
    train = make_stereo_pairs(2000, "square", generator=torch.Generator().manual_seed(1))
    test = make_polygons(400, "square", generator=torch.Generator().manual_seed(2))
    net = AngleCNN((32, 32), symmetry=4, device="cpu")
    history = fit_stereo_pairs(
        net,
        preprocess(train["images_a"]),
        preprocess(train["images_b"]),
        train["delta"],
        epochs=6,
        batch_size=64,
        progress=False,
    )
    assert history["loss"][-1] < 0.2 * history["loss"][0]
    net.calibrate(_reference("square"), 0.0)
    pred = net.predict(preprocess(test["images"]))
    frac = fraction_within(pred, test["angle"], symmetry=4, tolerance_deg=3.0)
    assert frac >= 0.90, f"only {frac:.3f} of the squares within 3 deg"


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["triangle", "square", "hexagon"])
def test_method1_reaches_95_percent_on_polygons(shape):
    """The issue's acceptance criterion (the benchmark's configuration)."""
    torch.manual_seed(0)
    train = make_stereo_pairs(4000, shape, generator=torch.Generator().manual_seed(1))
    test = make_polygons(500, shape, generator=torch.Generator().manual_seed(2))
    symmetry = train["symmetry"]
    net = AngleCNN((32, 32), symmetry=symmetry, device="cpu")
    fit_stereo_pairs(
        net,
        preprocess(train["images_a"]),
        preprocess(train["images_b"]),
        train["delta"],
        method="pair",
        epochs=10,
        progress=False,
    )
    net.calibrate(_reference(shape), 0.0)
    pred = net.predict(preprocess(test["images"]))
    frac = fraction_within(pred, test["angle"], symmetry=symmetry, tolerance_deg=3.0)
    assert frac >= 0.95, f"{shape}: only {frac:.3f} within 3 deg"


def test_order_keyword_is_a_deprecated_alias_of_symmetry():
    with pytest.warns(DeprecationWarning, match="symmetry="):
        old = angle_errors([89 * DEG], [1 * DEG], order=4)
    assert torch.equal(old, angle_errors([89 * DEG], [1 * DEG], symmetry=4))
    with pytest.warns(DeprecationWarning, match="symmetry="):
        net = AngleCNN((32, 32), order=4, device="cpu")
    assert net.symmetry == 4
    with pytest.warns(DeprecationWarning, match="symmetry"):
        assert net.order == 4
    with pytest.warns(DeprecationWarning, match="check_symmetry"):
        assert check_order(3) == 3
