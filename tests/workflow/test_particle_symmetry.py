"""Round and n-fold symmetric particles are said before their angles are read
(:mod:`pyrolatent.workflow.particle_symmetry`), on crops drawn here (not by the
library's generators), crowded ones included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk, polygon

from pyrolatent.workflow.particle_symmetry import crop_symmetry, particle_radius
from pyrolatent.workflow.report_page import caveats, conclusions

SIDE = 32


def _template(kind: str) -> np.ndarray:
    img = np.zeros((SIDE, SIDE))
    c = (SIDE - 1) / 2
    if kind == "disc":
        img[disk((c, c), 5, shape=img.shape)] = 1.0
    elif kind == "L":
        img[10:22, 11:15] = 1.0
        img[18:22, 11:21] = 1.0
    elif kind == "bar":
        img[14:18, 9:23] = 1.0
    else:  # "triangle", "square"
        n = {"triangle": 3, "square": 4}[kind]
        t = np.pi / 2 + 2 * np.pi * np.arange(n) / n
        img[polygon(c + 8 * np.sin(t), c + 8 * np.cos(t), shape=img.shape)] = 1.0
    return img


def _crops(kind: str, n: int = 300, crowded: bool = False, seed: int = 0) -> np.ndarray:
    """``n`` crops of ``kind`` turned uniformly, shifted <= 0.5 px, noise 0.05; crowded:
    two to four more discs (radius 5) 1-4 px beyond touching the particle (a dense layer)."""
    rng = np.random.default_rng(seed)
    base = _template(kind)
    reach = 5 + (5 if kind == "disc" else 8)  # centre to centre when touching
    out = np.empty((n, SIDE, SIDE))
    for i in range(n):
        img = ndimage.rotate(base, rng.uniform(0, 360), reshape=False, order=1)
        img = ndimage.shift(img, rng.uniform(-0.5, 0.5, 2), order=1)
        if crowded:
            for _ in range(rng.integers(2, 5)):
                a, d = rng.uniform(0, 2 * np.pi), reach + rng.uniform(1, 4)
                centre = ((SIDE - 1) / 2 + d * np.sin(a), (SIDE - 1) / 2 + d * np.cos(a))
                img[disk(centre, 5, shape=img.shape)] = 1.0
        out[i] = img + rng.normal(0, 0.05, img.shape)
    return out


def test_particle_radius():
    assert abs(particle_radius(_crops("disc")) - 5) <= 1
    # the neighbours of a crowded crop are not the particle
    assert abs(particle_radius(_crops("disc", crowded=True)) - 5) <= 1.5


@pytest.mark.parametrize(
    ("kind", "crowded", "aligned", "order", "noted"),
    [
        ("disc", False, False, None, True),
        ("disc", True, False, None, True),  # scored over the whole crop: order 1, no note
        ("L", False, False, 1, False),
        ("L", True, False, 1, False),
        ("triangle", False, False, 3, True),
        ("square", True, False, 4, True),
        ("bar", False, False, 2, True),
        ("bar", False, True, 2, False),  # aligned crops: the polarity step decides head/tail
    ],
)
def test_crop_symmetry(kind, crowded, aligned, order, noted):
    found = crop_symmetry(_crops(kind, crowded=crowded), aligned=aligned)
    assert found["order"] == order, found
    assert (found["note"] is not None) == noted, found
    if order is None:
        assert "round" in found["note"] and "not findings" in found["note"]
    elif noted:
        assert f"{order}-fold" in found["note"] and f"modulo {360 // order} deg" in found["note"]


def test_the_report_says_round_first_and_symmetric_as_a_caveat():
    round_ = crop_symmetry(_crops("disc", crowded=True))
    summary = {"diagnostics": {"collapsed": False, "particle_symmetry": round_},
               "transition_detected": True, "transition_frame": 6}  # fmt: skip
    said = conclusions(summary)
    assert said[0] == round_["note"] + "." and "A transition begins at frame 6" in said[1]
    assert round_["note"] + "." not in caveats(summary)
    three = crop_symmetry(_crops("triangle"))
    summary["diagnostics"]["particle_symmetry"] = three
    assert three["note"] + "." in caveats(summary)
    assert all("round" not in line for line in conclusions(summary))


def test_encode_crops_scores_the_crops_symmetry():
    from pyrolatent.workflow import TrainConfig
    from pyrolatent.workflow.steps import encode_crops

    crops = _crops("disc", n=64, crowded=True).astype(np.float32)
    index = {"frame": np.zeros(64, dtype=np.int64), "row": np.ones(64), "col": np.ones(64)}
    config = TrainConfig(epochs=1, batch_size=32, check_seed=False)
    found = encode_crops(crops, index, config)["diagnostics"]["particle_symmetry"]
    assert found["order"] is None and "round" in found["note"], found
