"""Fuzz entries: common lines, diffraction (SPI) tools, the angle CNNs and stereo fitting."""

from __future__ import annotations

import math

import numpy as np
import torch
from fuzzing import Case, Entry, array_case, bad_numbers, real_arrays
from hypothesis import strategies as st

from pyrolatent.commonlines import (
    AbsoluteEmbedding,
    CommonLinePCA,
    rotation_invariant_features,
    similarity_matrix,
)
from pyrolatent.nn.angle import AngleCNN, AngleCNN1d
from pyrolatent.spi import OrientationSearch, classify2d, phase_retrieval
from pyrolatent.stereo.fit import fit_stereo_pairs

patterns = st.tuples(st.integers(2, 5), st.sampled_from([8, 9, 12]))


def _square(shape):
    n, s = shape
    return (n, s, s)


def _pattern_case(extra=None):
    return array_case(patterns.map(_square), low=0, high=5, name="patterns", extra=extra)


def _similarity(patterns, n_angles):
    return similarity_matrix(patterns, n_angles=n_angles, progress=False).similarity


def _invariant(patterns, mask_radius):
    return rotation_invariant_features(patterns, mask_radius=mask_radius)


def _clpca(patterns, n_components):
    return CommonLinePCA(n_components=n_components, n_angles=12, progress=False).fit_transform(
        patterns
    )


@st.composite
def clpca_case(draw):
    case = draw(_pattern_case())
    k = draw(st.sampled_from([1, 2, 2, 0, -1, 1.5, 50]))
    n = case.args["patterns"].shape[0] if case.args["patterns"].ndim == 3 else 0
    valid = case.valid and k in (1, 2) and k <= n
    return Case({**case.args, "n_components": k}, valid, f"{case.note} k={k}")


@st.composite
def similarity_case(draw):
    case = draw(_pattern_case())
    n_angles = draw(st.sampled_from([4, 12, 0, -3, 2.5]))
    return Case({**case.args, "n_angles": n_angles}, case.valid and n_angles in (4, 12),
                f"{case.note} n_angles={n_angles}")  # fmt: skip


@st.composite
def invariant_case(draw):
    case = draw(_pattern_case())
    r = draw(st.sampled_from([0.0, 1.0, 2.0, math.nan, -1.0]))
    return Case({**case.args, "mask_radius": r}, case.valid and r in (0.0, 1.0, 2.0),
                f"{case.note} mask_radius={r}")  # fmt: skip


def _absolute(features, targets, epochs):
    model = AbsoluteEmbedding(hidden=(8,)).fit(features, targets, epochs=epochs, batch_size=4,
                                               patience=2, progress=False)  # fmt: skip
    return model.predict(features)


@st.composite
def absolute_case(draw):
    n = draw(st.integers(4, 10))
    case = draw(array_case(st.just((n, 5)), low=-2, high=2, name="features"))
    targets = draw(real_arrays((n, 2), -1, 1))
    how = draw(st.sampled_from(["ok"] * 4 + ["len", "nan", "epochs"]))
    epochs = 2
    if how == "len":
        targets = targets[:-1]
    elif how == "nan":
        targets = targets.astype(np.float64)
        targets[0, 0] = np.nan
    elif how == "epochs":
        epochs = draw(st.sampled_from([0, -1, 1.5]))
    args = {**case.args, "targets": targets, "epochs": epochs}
    return Case(args, case.valid and how == "ok", f"{case.note} {how}")


def _classify(frames, n_classes):
    return classify2d(frames, n_classes=n_classes, n_rotations=4, n_iterations=2, n_init=1,
                      n_align_iterations=1, progress=False).averages  # fmt: skip


@st.composite
def classify_case(draw):
    case = draw(array_case(st.tuples(st.integers(3, 6), st.just(8), st.just(8)), low=0, high=3,
                           name="frames"))  # fmt: skip
    k = draw(st.sampled_from([1, 2, 2, 0, -1, 2.5, 100]))
    n = case.args["frames"].shape[0] if case.args["frames"].ndim == 3 else 0
    return Case({**case.args, "n_classes": k}, case.valid and k in (1, 2) and k <= n,
                f"{case.note} k={k}")  # fmt: skip


def _search(reference, patterns, n_orientations):
    search = OrientationSearch(reference, n_orientations=n_orientations, group=None,
                               refine_steps=0, batch_size=8)  # fmt: skip
    return search.search(patterns, progress=False)


@st.composite
def search_case(draw):
    ref = draw(array_case(st.just((8, 8, 8)), low=0, high=2, name="reference"))
    pats = draw(real_arrays((2, 8, 8), 0, 2))
    n = draw(st.sampled_from([8, 24, 0, -5, 2.5]))
    return Case({**ref.args, "patterns": pats, "n_orientations": n},
                ref.valid and n in (8, 24), f"{ref.note} n={n}")  # fmt: skip


def _phase(intensity, n_iter, beta):
    return phase_retrieval(intensity, n_iter=n_iter, n_er=1, beta=beta, shrinkwrap_every=2,
                           progress=False)  # fmt: skip


@st.composite
def phase_case(draw):
    case = draw(array_case(st.sampled_from([(8, 8), (9, 9), (12, 12)]), low=0, high=4,
                           name="intensity"))  # fmt: skip
    n_iter = draw(st.sampled_from([3, 5, 0, -1, 2.5]))
    beta = draw(st.one_of(st.floats(0.1, 1.0), bad_numbers()))
    valid = case.valid and n_iter in (3, 5) and isinstance(beta, float) and math.isfinite(beta)
    return Case({**case.args, "n_iter": n_iter, "beta": beta}, valid,
                f"{case.note} n_iter={n_iter} beta={beta!r}")  # fmt: skip


def _angle_cnn(images, symmetry):
    torch.manual_seed(0)
    net = AngleCNN(image_size=images.shape[-2:] if np.ndim(images) == 3 else (8, 8),
                   symmetry=symmetry, channels=(2, 2), hidden=4)  # fmt: skip
    return net.predict(images)


@st.composite
def angle_cnn_case(draw):
    case = draw(array_case(st.tuples(st.integers(1, 3), st.just(8), st.just(8)), name="images"))
    sym = draw(st.sampled_from([1, 2, 4, 0, -1, 1.5]))
    return Case({**case.args, "symmetry": sym}, case.valid and sym in (1, 2, 4),
                f"{case.note} symmetry={sym}")  # fmt: skip


def _angle_cnn1d(images, symmetry):
    torch.manual_seed(0)
    length = images.shape[-1] if np.ndim(images) == 2 else 16
    net = AngleCNN1d(length=length, symmetry=symmetry, channels=(2, 2), hidden=4)
    return net.predict(images)


@st.composite
def angle_cnn1d_case(draw):
    case = draw(array_case(st.tuples(st.integers(1, 3), st.just(16)), name="images"))
    sym = draw(st.sampled_from([1, 2, 0, 1.5]))
    return Case({**case.args, "symmetry": sym}, case.valid and sym in (1, 2),
                f"{case.note} symmetry={sym}")  # fmt: skip


def _stereo(images_a, images_b, delta, epochs):
    torch.manual_seed(0)
    net = AngleCNN(image_size=(8, 8), channels=(2, 2), hidden=4)
    return fit_stereo_pairs(net, images_a, images_b, delta, epochs=epochs, batch_size=2,
                            progress=False)  # fmt: skip


@st.composite
def stereo_case(draw):
    n = draw(st.integers(2, 4))
    a = draw(array_case(st.just((n, 8, 8)), name="images_a"))
    b = draw(real_arrays((n, 8, 8)))
    delta = draw(real_arrays((n,), -0.5, 0.5))
    how = draw(st.sampled_from(["ok"] * 3 + ["len", "nan", "epochs"]))
    epochs = 1
    if how == "len":
        delta = delta[:-1]
    elif how == "nan":
        delta = delta.astype(np.float64)
        delta[0] = np.nan
    elif how == "epochs":
        epochs = draw(st.sampled_from([0, -1, 1.5]))
    args = {**a.args, "images_b": b, "delta": delta, "epochs": epochs}
    return Case(args, a.valid and how == "ok", f"{a.note} {how}")


ENTRIES = {
    "similarity_matrix": Entry(similarity_case(), _similarity, cost=0.3),
    "rotation_invariant_features": Entry(invariant_case(), _invariant, cost=0.2),
    "CommonLinePCA": Entry(clpca_case(), _clpca, cost=0.4),
    "AbsoluteEmbedding": Entry(absolute_case(), _absolute, cost=0.5),
    "classify2d": Entry(classify_case(), _classify, cost=0.8),
    "OrientationSearch": Entry(search_case(), _search, cost=0.8),
    "phase_retrieval": Entry(phase_case(), _phase, cost=0.3),
    "AngleCNN": Entry(angle_cnn_case(), _angle_cnn, cost=0.2),
    "AngleCNN1d": Entry(angle_cnn1d_case(), _angle_cnn1d, cost=0.2),
    "fit_stereo_pairs": Entry(stereo_case(), _stereo, cost=0.6),
}
