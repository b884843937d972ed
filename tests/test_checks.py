"""The one input-checking layer (pyrolatent.checks) and the issue-16 examples it fixes."""

import numpy as np
import pytest
import torch

from pyrolatent.analysis.kde import gaussian_kde_1d, latent_kde_over_time, wrapped_kde
from pyrolatent.analysis.tracking import link
from pyrolatent.checks import (
    as_array,
    as_images,
    as_tensor,
    check_count,
    check_number,
    check_same_length,
    check_weights,
)


def test_complex_is_refused_with_a_clear_message():
    z = np.ones((2, 4, 4), np.complex64)
    for f in (as_tensor, as_images, as_array):
        with pytest.raises(TypeError, match="complex values"):
            f(z)
    with pytest.raises(TypeError, match="complex values"):
        as_tensor(torch.ones(3, dtype=torch.complex64))


def test_dtypes_bool_object_strings():
    assert as_images(np.ones((1, 2, 2), bool)).dtype == torch.float32
    with pytest.raises(TypeError, match="bool"):
        as_array(np.ones(3, bool), allow_bool=False)
    with pytest.raises(TypeError, match="numeric"):
        as_array(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="numeric"):
        as_tensor(np.array([object()], dtype=object))
    assert as_tensor(np.arange(3, dtype=np.uint16)).tolist() == [0.0, 1.0, 2.0]


def test_numbers_and_counts():
    assert check_number(2, "r", low=0, low_open=True) == 2.0
    for bad, err in [(float("nan"), ValueError), (float("inf"), ValueError), (0, ValueError),
                     ("1", TypeError), (1j, TypeError), (True, TypeError)]:  # fmt: skip
        with pytest.raises(err):
            check_number(bad, "r", low=0, low_open=True)
    assert check_count(3.0, "n") == 3
    for bad in (2.5, 0, -1, float("nan")):
        with pytest.raises(ValueError):
            check_count(bad, "n")
    with pytest.raises(ValueError, match="lengths must match"):
        check_same_length(a=[1, 2], b=[1])


def test_kde_bandwidth_nan_and_bad_weights_are_refused():
    x, g = np.array([0.0, 1.0, 2.0]), np.linspace(-1, 3, 9)
    for bw in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ValueError, match="bandwidth"):
            gaussian_kde_1d(x, g, bandwidth=bw)
    for w, why in [([1.0, np.nan, 1.0], "NaN"), ([1.0, -1.0, 1.0], "negative"),
                   ([1.0, 1.0], "shape"), ([0.0, 0.0, 0.0], "sum to 0")]:  # fmt: skip
        with pytest.raises(ValueError, match=why):
            gaussian_kde_1d(x, g, bandwidth=0.5, weights=w)
    d = gaussian_kde_1d(x, g, bandwidth=0.5, weights=[1.0, 0.0, 3.0])
    assert np.isfinite(d).all() and d.sum() > 0
    with pytest.raises(ValueError, match="bandwidth"):
        wrapped_kde(x, g, bandwidth=float("nan"))
    with pytest.raises(TypeError, match="complex"):
        latent_kde_over_time(x.astype(complex), [0, 0, 1], g)
    with pytest.raises(ValueError, match="window"):
        latent_kde_over_time(x, [0, 0, 1], g, window=1.5)


def test_link_refuses_nan_radius_and_fractional_frames():
    table = {"frame": np.array([0, 1]), "row": np.array([1.0, 1.5]), "col": np.array([1.0, 1.0])}
    for r in (float("nan"), float("inf"), 0.0, -2.0):
        with pytest.raises(ValueError, match="search_radius"):
            link(table, search_radius=r)
    with pytest.raises(ValueError, match="max_gap"):
        link(table, max_gap=0.5)
    frac = dict(table, frame=np.array([0.0, 0.5]))
    with pytest.raises(ValueError, match="integers"):
        link(frac)
    with pytest.raises(TypeError, match="complex"):
        link(dict(table, row=table["row"].astype(complex)))
    assert link(table, search_radius=2.0)["track"].tolist() == [0, 0]


def test_deep_ensemble_predict_is_finite_on_one_pixel_frames():
    from pyrolatent.segmentation import DeepEnsemble
    from pyrolatent.segmentation.nets import DilNet

    torch.manual_seed(0)
    ens = DeepEnsemble(DilNet(filters=4, members=2))
    for shape in [(1, 1, 1), (2, 1, 1), (1, 1, 5)]:
        mean, var = ens.predict(np.random.default_rng(0).random(shape), progress=False)
        assert mean.shape == (shape[0], 1, *shape[1:])
        assert np.isfinite(mean).all() and np.isfinite(var).all(), shape


def test_check_weights_normalises():
    np.testing.assert_allclose(check_weights([1, 3], 2), [0.25, 0.75])


def test_rvae_decode_takes_a_scalar_angle_and_refuses_nan_and_complex():
    from pyrolatent import RVAE

    m = RVAE((8, 8), encoder_hidden=(8,), decoder_hidden=(8,), decoder="warp", seed=0)
    z = np.zeros((3, 2), np.float32)
    one = m.decode(z, angle=0.3)
    assert one.shape == (3, 8, 8) and np.isfinite(one).all()
    np.testing.assert_allclose(one, m.decode(z, angle=np.full(3, 0.3)), atol=1e-6)
    with pytest.raises(ValueError, match="angle"):
        m.decode(z, angle=float("nan"))
    with pytest.raises(TypeError, match="complex"):
        m.decode(z, angle=0.3 + 1j)
    with pytest.raises(TypeError, match="complex"):
        m.encode(np.ones((2, 8, 8), np.complex64))


def test_nmf_component_number_and_all_zero_matrix():
    from pyrolatent import NMF

    x = np.random.default_rng(0).random((6, 4))
    with pytest.raises(ValueError, match="n_components=5 exceeds"):
        NMF(n_components=5).fit(x, epochs=2, progress=False)
    with pytest.raises(ValueError, match="all zero"):
        NMF(n_components=2).fit(np.zeros((6, 4)), epochs=2, progress=False)
    with pytest.raises(ValueError, match="n_components"):
        NMF(n_components=2.5)
    nmf = NMF(n_components=2, seed=0).fit(x, epochs=5, progress=False)
    assert np.isfinite(nmf.components_).all() and np.isfinite(nmf.time_courses_).all()
