"""half_turn_sync: the half-turn of particles decided again from their images."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pyrolatent.analysis.circular import circular_correlation
from pyrolatent.analysis.half_turns import half_turn_sync, upright_parts
from pyrolatent.data.synthetic.glyph_cards import make_glyph_cards
from pyrolatent.data.synthetic.shapes import make_rotated_shapes
from pyrolatent.primitives import warp_images


def turned_copies(images, share: float, noise_deg: float, seed: int):
    """Angles turned by pi on ``share`` of the images, with Gaussian angle noise."""
    rng = np.random.default_rng(seed)
    turned = rng.random(len(images)) < share
    noise = rng.normal(0.0, np.radians(noise_deg), len(images))
    return turned, noise


@pytest.mark.parametrize("shape", ["L", "arrow"])
def test_recovers_the_half_turns_of_an_asymmetric_shape(shape):
    # 40% of the angles are turned by pi and every angle is off by ~N(0, 4 deg)
    data = make_rotated_shapes(300, shapes=(shape,), image_size=32, max_offset=2.0, seed=0)
    turned, noise = turned_copies(data["images"], 0.4, 4.0, seed=1)
    given = data["angles"] + np.pi * turned + noise
    out = half_turn_sync(data["images"], given)
    # measured: every half-turn recovered (L and arrow), separation 40 / 36
    assert (out["turned"] == turned).mean() >= 0.98
    assert out["groups"][0]["separation"] > 10
    assert abs(circular_correlation(out["angles"], data["angles"])) > 0.98
    assert np.all(out["agreement"] >= 0.5)


def test_a_half_turn_symmetric_shape_has_a_small_separation():
    # a bar looks the same either way up: no direction separates the two ways
    bar = make_rotated_shapes(300, shapes=("bar",), image_size=32, max_offset=2.0, seed=0)
    ell = make_rotated_shapes(300, shapes=("L",), image_size=32, max_offset=2.0, seed=0)
    sep_bar = half_turn_sync(bar["images"], bar["angles"])["groups"][0]["separation"]
    sep_l = half_turn_sync(ell["images"], ell["angles"])["groups"][0]["separation"]
    # measured: 3.5 against 51 (median over the fits)
    assert sep_bar < 5 < 10 < sep_l


def test_glyph_suits_of_the_independent_renderer():
    # font glyphs (not the library's shapes), sheared, scaled, shifted, noisy; 40% of
    # the angles turned by pi, each off by ~N(0, 4 deg); suits given as groups
    d = make_glyph_cards(100, image_size=32, angle_range=np.pi, shear=0.3, scale_jitter=0.1,
                         max_offset=0.05, noise=0.1, seed=0)  # fmt: skip
    turned, noise = turned_copies(d["images"], 0.4, 4.0, seed=20)
    out = half_turn_sync(d["images"], d["angles"] + np.pi * turned + noise, d["labels"])
    separation = {g["group"]: g["separation"] for g in out["groups"]}
    # measured over seeds 0-4: clubs, hearts and spades all recovered (separation
    # 25-35); the diamond looks the same either way up (separation 3.3-3.5)
    for suit in (0, 2, 3):
        k = d["labels"] == suit
        assert (out["turned"][k] == turned[k]).mean() >= 0.97
        assert separation[suit] > 15
    assert separation[1] < 5


def rotated_digits(classes, seed: int, size: int = 32, digit: int = 24):
    """Real handwritten digits (scikit-learn's 8x8 set) upsampled, padded and rotated."""
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    keep = np.isin(d.target, classes)
    x = torch.as_tensor(d.images[keep] / 16.0, dtype=torch.float32)
    x = F.interpolate(x[:, None], size=(digit, digit), mode="bicubic", align_corners=False)
    pad = (size - digit) // 2
    x = F.pad(x[:, 0].clamp(0, 1), (pad, pad, pad, pad))
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-np.pi, np.pi, len(x))
    offsets = rng.uniform(-2, 2, (len(x), 2))
    rotated = warp_images(x, angle=torch.as_tensor(angles, dtype=torch.float32),
                          offset=torch.as_tensor(offsets, dtype=torch.float32))  # fmt: skip
    return rotated.numpy(), angles, d.target[keep]


@pytest.mark.parametrize("seed", [0, 1])
def test_real_digits_get_their_half_turns_back_by_class(seed):
    # 2s and 5s are nearly symmetric under a half-turn at this resolution; the
    # rVAE gets part of them upside down (issue 17). Here 40% of the true
    # angles are turned by pi and each is off by ~N(0, 3 deg).
    x, angles, labels = rotated_digits((2, 5), seed)
    turned, noise = turned_copies(x, 0.4, 3.0, seed=seed + 10)
    out = half_turn_sync(x, angles + np.pi * turned + noise, labels)
    # the given half-turns are right for 60%; measured over data seeds 0-4: class 2
    # 0.921-0.994 (its styles pull the mixture the wrong way in part), class 5 0.989-0.995
    for c, least in ((2, 0.88), (5, 0.95)):
        k = labels == c
        accuracy = (out["turned"][k] == turned[k]).mean()
        assert accuracy >= least, (c, accuracy)
    assert np.all((out["agreement"] >= 0.5) & (out["agreement"] <= 1.0))


def test_upright_parts_change_sign_under_a_half_turn():
    data = make_rotated_shapes(20, shapes=("L",), image_size=32, max_offset=0.0, seed=3)
    a = upright_parts(data["images"], data["angles"])
    b = upright_parts(data["images"], data["angles"] + np.pi)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert np.all(cos < -0.9)


def test_large_images_are_binned():
    for size, side in ((128, 64), (130, 44)):
        data = make_rotated_shapes(4, shapes=("L",), image_size=size, seed=0)
        assert upright_parts(data["images"], data["angles"]).shape == (4, side * side)


def test_bad_input_is_refused():
    data = make_rotated_shapes(10, shapes=("L",), image_size=16, seed=0)
    x, a = data["images"], data["angles"]
    with pytest.raises(ValueError, match="angles"):
        half_turn_sync(x, a[:5])
    with pytest.raises(ValueError, match="groups"):
        half_turn_sync(x, a, groups=np.zeros(3))
    with pytest.raises(ValueError, match="NaN|finite"):
        half_turn_sync(x, np.where(np.arange(10) == 2, np.nan, a))
    with pytest.raises(ValueError, match="components"):
        half_turn_sync(x, a, components=0)
    with pytest.raises(ValueError, match="images"):
        half_turn_sync(x[0], a[:1])
    with pytest.raises(ValueError, match="ridge"):
        half_turn_sync(x, a, ridge=0)


def test_blank_images_turn_nothing():
    out = half_turn_sync(np.zeros((30, 16, 16)), np.linspace(-3, 3, 30))
    assert not out["turned"].any()
    assert out["groups"][0]["separation"] == 0.0


def test_the_same_seed_gives_the_same_answer():
    data = make_rotated_shapes(60, shapes=("L",), image_size=24, max_offset=1.0, seed=4)
    turned, noise = turned_copies(data["images"], 0.3, 5.0, seed=2)
    given = data["angles"] + np.pi * turned + noise
    a = half_turn_sync(data["images"], given, styles=(1, 2), components=(3, 5), seed=7)
    b = half_turn_sync(data["images"], given, styles=(1, 2), components=(3, 5), seed=7)
    np.testing.assert_array_equal(a["turned"], b["turned"])
    np.testing.assert_array_equal(a["agreement"], b["agreement"])
