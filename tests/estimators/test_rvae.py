"""The rVAE learns what it should: angles (up to a global offset, reflection and
symmetry), offsets, rotation-invariant content; and it behaves as a Pyro model."""

import math

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Predictive, Trace_ELBO, TraceEnum_ELBO

from pyrolatent.analysis.circular import circular_correlation
from pyrolatent.data.synthetic.shapes import make_rotated_shapes, render_shapes
from pyrolatent.distributions import ProjectedNormalAngle, VonMises
from pyrolatent.estimators.rvae import RVAE
from pyrolatent.infer import CheckpointError
from pyrolatent.models.pose_grid import centre_of_mass
from pyrolatent.models.sites import ANGLE, ANGLE_INDEX, ANGLE_JITTER, OBS, OFFSET, Z

# acceptance thresholds (issue 2)
ANGLE_CORR = 0.95
OFFSET_PEARSON = 0.9
# Mean |z(rotated) - z| over the spread of z. Measured on an AMD EPYC (seeds 0-4 of
# sized_l_warp): 0.126, 0.092, 0.095, 0.129, 0.102; two images of other sizes differ by
# 1.14-1.15, a non-invariant encoder by about as much. 0.10 had no margin across machines.
Z_INVARIANCE = 0.20


def _offset_pearson(enc, data, pose="grid"):
    # pose="grid" places the canonical image's centre of mass at the offset: the truth
    # is then the centre of mass of each image, not the generator's reference point
    truth = data["offsets"]
    if pose == "grid":
        truth = centre_of_mass(torch.as_tensor(data["images"])).numpy()
    return [np.corrcoef(enc["offset"]["loc"][:, i], truth[:, i])[0, 1] for i in (0, 1)]


@pytest.fixture(scope="module")
def sized_l_warp():
    """A warp-decoder rVAE fitted to L shapes of random size, angle and offset.

    The size is the content a rotation-invariant model should keep in ``z``.
    """
    data = make_rotated_shapes(
        4000, shapes=("L",), image_size=32, max_offset=2.0, size_jitter=0.25, seed=1
    )
    rvae = RVAE((32, 32), latent_dim=2, decoder="warp", seed=0)
    rvae.fit(data["images"], epochs=40, batch_size=100, lr=3e-3, progress=False)
    return rvae, data


def test_warp_decoder_recovers_angles_and_offsets(sized_l_warp):
    rvae, data = sized_l_warp
    enc = rvae.encode(data["images"])
    rho = circular_correlation(enc["angle"]["loc"], data["angles"])
    assert abs(rho) >= ANGLE_CORR, rho
    assert min(_offset_pearson(enc, data)) >= OFFSET_PEARSON


def test_content_latent_is_rotation_invariant(sized_l_warp):
    rvae, data = sized_l_warp
    enc = rvae.encode(data["images"])
    z = enc["z"]["loc"]
    # active dimensions carry information: their posterior is much narrower than the
    # N(0, 1) prior; a collapsed dimension (scale ~ 1) has a loc that is pure noise
    active = enc["z"]["scale"].mean(0) < 0.5
    assert active.any()
    # the content latent encodes the size
    assert max(abs(np.corrcoef(z[:, d], data["sizes"])[0, 1]) for d in np.flatnonzero(active)) > 0.9
    g = torch.Generator().manual_seed(7)
    new_angles = (torch.rand(len(z), generator=g) * 2 - 1) * math.pi
    rotated = render_shapes(
        "L", new_angles, torch.as_tensor(data["offsets"]), 32, scales=torch.as_tensor(data["sizes"])
    )
    z_rot = rvae.encode(rotated)["z"]["loc"]
    moved = np.abs(z_rot - z).mean(0)[active] / z.std(0)[active]
    assert moved.max() < Z_INVARIANCE, moved


def test_n_fold_symmetric_shape_angle_modulo_2pi_over_n():
    data = make_rotated_shapes(2000, shapes=("ngon3",), image_size=32, max_offset=2.0, seed=2)
    rvae = RVAE((32, 32), decoder="warp", symmetry=3, seed=0)
    rvae.fit(data["images"], epochs=30, batch_size=100, lr=3e-3, progress=False)
    enc = rvae.encode(data["images"])
    assert np.all(np.abs(enc["angle"]["loc"]) <= math.pi / 3 + 1e-5)
    rho = circular_correlation(enc["angle"]["loc"], data["angles"], symmetry=3)
    assert abs(rho) >= ANGLE_CORR, rho


@pytest.mark.parametrize("compute_dtype", ["float32", "bfloat16"])
def test_spatial_decoder_recovers_angles_and_offsets(compute_dtype):
    data = make_rotated_shapes(1000, shapes=("L",), image_size=24, max_offset=1.5, seed=3)
    rvae = RVAE((24, 24), decoder="spatial", compute_dtype=compute_dtype, seed=0)
    rvae.fit(data["images"], epochs=30, batch_size=25, lr=3e-3, progress=False)
    enc = rvae.encode(data["images"])
    rho = circular_correlation(enc["angle"]["loc"], data["angles"])
    assert abs(rho) >= ANGLE_CORR, rho
    assert min(_offset_pearson(enc, data)) >= OFFSET_PEARSON


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["spatial", "warp"])
def test_acceptance_size_angle_recovery(decoder):
    data = make_rotated_shapes(2000, shapes=("L",), image_size=32, max_offset=2.0, seed=1)
    rvae = RVAE((32, 32), decoder=decoder, seed=0)
    rvae.fit(data["images"], epochs=30, batch_size=100, lr=3e-3, progress=False)
    enc = rvae.encode(data["images"])
    assert abs(circular_correlation(enc["angle"]["loc"], data["angles"])) >= ANGLE_CORR
    assert min(_offset_pearson(enc, data)) >= OFFSET_PEARSON


@pytest.mark.slow
def test_spatial_decoder_n_fold_symmetry():
    data = make_rotated_shapes(2000, shapes=("ngon4",), image_size=32, max_offset=2.0, seed=4)
    rvae = RVAE((32, 32), decoder="spatial", symmetry=4, seed=0)
    rvae.fit(data["images"], epochs=40, batch_size=50, lr=3e-3, progress=False)
    enc = rvae.encode(data["images"])
    assert abs(circular_correlation(enc["angle"]["loc"], data["angles"], 4)) >= ANGLE_CORR


# ----------------------------------------------------------------- pose decoding
@pytest.mark.parametrize("decoder", ["spatial", "warp"])
def test_decode_with_per_sample_pose(decoder):
    # the amortised model turns about the image centre (pose="grid" turns about the
    # canonical image's centre of mass: test_grid_pose.py)
    rvae = RVAE((16, 16), decoder=decoder, seed=0, pose="amortized")
    z = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    base = rvae.decode(z)
    turned = rvae.decode(z, angle=np.array([math.pi / 2, math.pi, 0.0], dtype=np.float32))
    np.testing.assert_allclose(turned[0], np.rot90(base[0], 1), atol=1e-5)
    np.testing.assert_allclose(turned[1], np.rot90(base[1], 2), atol=1e-5)
    np.testing.assert_allclose(turned[2], base[2], atol=1e-6)
    shifted = rvae.decode(z[:1], offset=np.array([[2.0, 0.0]], dtype=np.float32))
    if decoder == "warp":
        np.testing.assert_allclose(shifted[0][:, 2:], base[0][:, :-2], atol=1e-5)
    else:  # the coordinate MLP extrapolates beyond the field of view
        np.testing.assert_allclose(shifted[0][:, 4:], base[0][:, 2:-2], atol=1e-5)
    with pytest.raises(ValueError, match="angle"):
        rvae.decode(z, angle=np.zeros(2, dtype=np.float32))


# ----------------------------------------------------------- Pyro compatibility
def test_model_and_guide_run_under_plain_pyro():
    pyro.clear_param_store()
    rvae = RVAE((16, 16), decoder="warp", invariances=("r", "t", "s"), seed=0, pose="amortized")
    x = torch.as_tensor(make_rotated_shapes(8, image_size=16, seed=0)["images"])
    svi = SVI(rvae.model, rvae.guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
    assert math.isfinite(svi.step(x))
    tr = poutine.trace(rvae.model).get_trace(x)
    assert {Z, ANGLE, OFFSET, "scale", OBS} <= set(tr.nodes)
    assert tr.nodes[OBS]["is_observed"]
    pred = Predictive(rvae.model, guide=rvae.guide, num_samples=4)(x)
    assert pred[Z].shape == (4, 8, 2) and pred[ANGLE].shape == (4, 8)
    fixed = poutine.condition(rvae.model, data={ANGLE: torch.zeros(8)})
    assert torch.equal(poutine.trace(fixed).get_trace(x).nodes[ANGLE]["value"], torch.zeros(8))
    # generating without data
    gen = Predictive(rvae.model, num_samples=2)(None, num_items=5)
    assert gen[OBS].shape == (2, 5, 16, 16)


def test_grid_model_and_guide_run_under_plain_pyro():
    pyro.clear_param_store()
    rvae = RVAE((16, 16), decoder="warp", invariances=("r", "t", "s"), seed=0)  # pose="grid"
    x = torch.as_tensor(make_rotated_shapes(8, image_size=16, seed=0)["images"])
    loss = rvae.model.default_loss()
    assert isinstance(loss, TraceEnum_ELBO)
    svi = SVI(rvae.model, rvae.guide, pyro.optim.Adam({"lr": 1e-3}), loss)
    assert math.isfinite(svi.step(x))
    tr = poutine.trace(rvae.model).get_trace(x)
    assert {Z, ANGLE_INDEX, ANGLE_JITTER, OFFSET, "scale", OBS} <= set(tr.nodes)
    gen = Predictive(rvae.model, num_samples=2)(None, num_items=5)
    assert gen[OBS].shape == (2, 5, 16, 16) and gen[ANGLE_INDEX].shape == (2, 5)


@pytest.mark.parametrize("pose", ["amortized", "grid"])
def test_priors_are_arguments(pose):
    vm = VonMises(torch.tensor(0.0), torch.tensor(2.0))
    x = torch.as_tensor(make_rotated_shapes(4, image_size=16, seed=0)["images"])
    if pose == "grid":  # the index is weighted by the prior's density at the grid angles
        rvae = RVAE((16, 16), decoder="warp", angle_prior=vm, seed=0)
        tr = poutine.trace(rvae.model).get_trace(x)
        angles = rvae.model.angle_grid.angles + tr.nodes[ANGLE_JITTER]["value"].unsqueeze(-1)
        nearest = torch.atan2(angles.sin(), angles.cos()).abs().argmin(-1)  # to 0, per item
        assert torch.equal(tr.nodes[ANGLE_INDEX]["fn"].logits.argmax(-1), nearest)
        return
    rvae = RVAE((16, 16), decoder="warp", angle_prior=vm, seed=0, pose="amortized")
    tr = poutine.trace(rvae.model).get_trace(x)
    assert isinstance(tr.nodes[ANGLE]["fn"], VonMises)
    pn = RVAE(
        (16, 16), angle_prior=ProjectedNormalAngle(torch.tensor([2.0, 0.0])), pose="amortized"
    )
    assert isinstance(poutine.trace(pn.model).get_trace(x).nodes[ANGLE]["fn"], ProjectedNormalAngle)
    with pytest.raises(ValueError, match="event_shape"):
        bad = RVAE((16, 16), z_prior=pyro.distributions.Normal(0.0, 1.0))
        poutine.trace(bad.model).get_trace(x)


@pytest.mark.parametrize("likelihood", ["gaussian", "poisson"])
def test_other_likelihoods_train(likelihood):
    data = make_rotated_shapes(200, image_size=16, seed=0)["images"] * 5
    rvae = RVAE((16, 16), decoder="warp", likelihood=likelihood, learn_sigma=True, seed=0)
    h = rvae.fit(data, epochs=3, batch_size=50, progress=False).history
    assert h["loss"][-1] < h["loss"][0]


# ---------------------------------------------------------------- save / load
def test_save_load_round_trip_and_corruption(tmp_path):
    data = make_rotated_shapes(50, image_size=16, seed=0)["images"]
    rvae = RVAE((16, 16), decoder="warp", seed=0)
    rvae.fit(data, epochs=1, batch_size=25, progress=False)
    path = rvae.save(tmp_path / "rvae.pt")
    again = RVAE.load(path)
    a, b = rvae.encode(data), again.encode(data)
    for site in a:
        np.testing.assert_array_equal(a[site]["loc"], b[site]["loc"])
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        RVAE.load(path)


# ------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_clear_errors():
    rvae = RVAE((16, 16), decoder="warp")
    good = np.zeros((4, 16, 16), dtype=np.float32)
    nan = good.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rvae.fit(nan, epochs=1, progress=False)
    with pytest.raises(ValueError, match="3-D"):
        rvae.encode(np.zeros((16, 16)))
    with pytest.raises(ValueError, match="empty"):
        rvae.encode(np.zeros((0, 16, 16)))
    with pytest.raises(ValueError, match="does not match"):
        rvae.encode(np.zeros((2, 20, 20)))
    with pytest.raises(ValueError, match="negative"):
        rvae.fit(good - 1, epochs=1, progress=False)
    with pytest.raises(ValueError, match="unknown invariance"):
        RVAE((16, 16), invariances=("rotate",))
    with pytest.raises(ValueError, match="unknown decoder"):
        RVAE((16, 16), decoder="conv")
