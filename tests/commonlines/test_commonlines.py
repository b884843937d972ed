"""Common lines: geometry, similarity matrix, CLPCA, invariant features, absolute embedding."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from pyrolatent.commonlines import (
    AbsoluteEmbedding,
    CommonLinePCA,
    embed_similarity,
    feature_layout,
    line_angles,
    line_profiles,
    normalize_profiles,
    profile_similarity,
    rotation_invariant_features,
    similarity_matrix,
)
from pyrolatent.commonlines.geometry import true_common_line_angles
from pyrolatent.data.synthetic.densities import blob_density
from pyrolatent.data.synthetic.spi import (
    intensity_volume,
    melting_series,
    shape_density,
    simulate_patterns,
)
from pyrolatent.io.checkpoint import CheckpointError
from pyrolatent.primitives import warp_images
from pyrolatent.primitives.so3 import random_rotations
from pyrolatent.primitives.volumes import slice_volume


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # small matrices on a shared 2-core machine: one thread avoids OpenMP oversubscription
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FOUR_SHAPES = [("cube", None), ("sphere", None), ("rounded_cube", 0.5), ("dimer", None)]


def circular_difference(a, b, period=math.pi):
    d = (a - b).abs() % period
    return torch.minimum(d, period - d)


def four_shape_averages(n_per_shape=40, size=33, photons=1e5):
    patterns, labels = [], []
    for k, (kind, p) in enumerate(FOUR_SHAPES):
        vol = intensity_volume(shape_density(kind, size, p=p))
        patterns.append(simulate_patterns(vol, n_per_shape, photons=photons, seed=k)["patterns"])
        labels += [k] * n_per_shape
    return torch.cat(patterns), np.array(labels)


def test_line_profile_follows_a_rotated_bar():
    img = torch.zeros(1, 33, 33)
    img[0, 16, 4:29] = 1.0  # a bar along +x through the centre
    theta = 5 * math.pi / 18  # 50 degrees, exactly line 25 of 90
    rotated = warp_images(img, angle=torch.tensor([theta]))
    prof = line_profiles(rotated, n_angles=90, mask_radius=2)
    assert prof.shape == (1, 90, 2 * 15)
    assert int(prof[0].mean(dim=1).argmax()) == 25


def test_blocked_similarity_equals_brute_force():
    prof = normalize_profiles(torch.randn(11, 7, 13))
    other = normalize_profiles(torch.randn(5, 7, 13))
    for block in (1, 3, 4, 20):
        sim, ia, ib = profile_similarity(prof, block_size=block, return_indices=True)
        cross = profile_similarity(prof, other, block_size=block)
        for i in range(11):
            for j in range(11):
                cc = prof[i] @ prof[j].t()
                assert float(sim[i, j]) == pytest.approx(float(cc.max()), abs=1e-5)
                assert float(cc[ia[i, j], ib[i, j]]) == pytest.approx(float(cc.max()), abs=1e-5)
            for j in range(5):
                assert float(cross[i, j]) == pytest.approx(
                    float((prof[i] @ other[j].t()).max()), abs=1e-5
                )
        assert torch.equal(sim, sim.t())
        assert torch.equal(ia, ib.t())


def test_friedel_half_lines_equal_full_lines_on_centrosymmetric_patterns():
    x = torch.rand(5, 1, 9, 9, generator=torch.Generator().manual_seed(2))
    x = torch.nn.functional.interpolate(x, size=(33, 33), mode="bicubic")[:, 0].abs()
    x = x + torch.rot90(x, 2, dims=(-2, -1))  # I(q) = I(-q)
    full = similarity_matrix(x, n_angles=60, progress=False)
    half = similarity_matrix(x, n_angles=60, friedel=True, progress=False)
    assert line_profiles(x, n_angles=60, friedel=True).shape[-1] == 15
    assert torch.allclose(full.similarity, half.similarity, atol=1e-5)
    off = ~torch.eye(5, dtype=torch.bool)
    assert torch.equal(full.angle[off], half.angle[off])


def test_rotated_copy_has_similarity_one_at_the_rotation_angle():
    g = torch.Generator().manual_seed(1)
    base = torch.rand(1, 1, 7, 7, generator=g)
    img = torch.nn.functional.interpolate(base, size=(33, 33), mode="bicubic")[:, 0].abs()
    steps = 12
    rotated = warp_images(img, angle=torch.tensor([steps * math.pi / 90]))
    res = similarity_matrix(torch.cat([img, rotated]), n_angles=90, progress=False)
    assert float(res.similarity[0, 1]) > 0.99
    # the shared line sits `steps` lines further round in the rotated copy
    diff = circular_difference(res.angle_other[0, 1] - res.angle[0, 1], steps * math.pi / 90)
    assert float(diff) <= 1 * math.pi / 90 + 1e-6


def test_common_line_geometry_on_an_asymmetric_volume():
    size, n, n_angles = 65, 40, 180
    volume = intensity_volume(blob_density(size), size)
    rotations = random_rotations(n, generator=torch.Generator().manual_seed(1))
    patterns = slice_volume(volume, rotations)
    res = similarity_matrix(patterns, n_angles=n_angles, mask_radius=2, log=True, progress=False)
    err = circular_difference(res.angle, true_common_line_angles(rotations))
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    within = float((err[off_diagonal] <= 2 * math.pi / n_angles + 1e-6).float().mean())
    assert within >= 0.9, f"only {within:.3f} of pairs within two angular steps"


def test_clpca_separates_four_shapes():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    patterns, labels = four_shape_averages()
    clpca = CommonLinePCA(n_components=3, n_angles=90, log=True, progress=False)
    embedding = clpca.fit_transform(patterns)
    assert embedding.shape == (160, 3)
    pred = KMeans(4, n_init=10, random_state=0).fit_predict(embedding)
    ari = adjusted_rand_score(labels, pred)
    assert ari >= 0.9, f"ARI {ari:.3f}"
    # out-of-sample projection reproduces the training embedding exactly
    np.testing.assert_allclose(clpca.transform(patterns[:10]), embedding[:10], atol=1e-4)
    # Isomap of the same matrix separates them too
    other = embed_similarity(clpca.similarity_, n_components=3, method="isomap", n_neighbors=20)
    ari_isomap = adjusted_rand_score(
        labels, KMeans(4, n_init=10, random_state=0).fit_predict(other)
    )
    assert ari_isomap >= 0.9, f"Isomap: ARI {ari_isomap:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("method, n_components", [("tsne", 3), ("spectral", 2)])
def test_alternative_embeddings_separate_four_shapes(method, n_components):
    # measured: spectral embedding separates the shapes in 2 components (ARI 0.98)
    # but its third component mixes them (ARI 0.68 in 3D)
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    patterns, labels = four_shape_averages()
    sim = similarity_matrix(patterns, n_angles=90, log=True, progress=False).similarity
    emb = embed_similarity(sim, n_components=n_components, method=method)
    ari = adjusted_rand_score(labels, KMeans(4, n_init=10, random_state=0).fit_predict(emb))
    assert ari >= 0.9, f"{method}: ARI {ari:.3f}"


def test_clpca_orders_the_cube_to_sphere_morph():
    data = melting_series(220, size=33, photons=1e5, seed=0)
    embedding = CommonLinePCA(n_angles=90, log=True, progress=False).fit_transform(data["patterns"])
    rho = max(abs(spearmanr(embedding[:, k], data["morph"].numpy()).statistic) for k in range(3))
    assert rho >= 0.9, f"|Spearman| {rho:.3f}"


def test_features_are_rotation_invariant():
    size = 65
    volume = intensity_volume(shape_density("rounded_cube", 33, p=0.3), size)
    rotations = random_rotations(12, generator=torch.Generator().manual_seed(3))
    patterns = slice_volume(volume, rotations)
    alpha = torch.rand(12, generator=torch.Generator().manual_seed(4)) * 2 * math.pi
    spin = torch.zeros(12, 3, 3)
    spin[:, 0, 0], spin[:, 0, 1] = torch.cos(alpha), -torch.sin(alpha)
    spin[:, 1, 0], spin[:, 1, 1] = torch.sin(alpha), torch.cos(alpha)
    spin[:, 2, 2] = 1.0
    turned = slice_volume(volume, rotations @ spin)  # the same view, turned in-plane

    def rel(a, b):
        return float(((a - b).norm(dim=1) / b.norm(dim=1)).max())

    for log in (False, True):
        f = rotation_invariant_features(patterns, log=log)
        f90 = rotation_invariant_features(torch.rot90(patterns, 1, dims=(-2, -1)), log=log)
        assert rel(f90, f) <= 1e-4
        bound = 0.05 if log else 0.08  # interpolation of the slices and of the polar grid
        assert rel(rotation_invariant_features(turned, log=log), f) <= bound


def test_feature_layout_keeps_even_resolved_harmonics():
    layout = feature_layout(33, mask_radius=2)
    radius, harmonic = layout[:, 0], layout[:, 1]
    assert torch.all(harmonic % 2 == 0)
    assert torch.all(harmonic <= math.pi * radius)
    # a pattern modulated as cos(4 phi) on every ring has its azimuthal power at m = 4
    grid = torch.stack(
        torch.meshgrid(torch.arange(33.0) - 16, torch.arange(33.0) - 16, indexing="ij")
    )
    phi = torch.atan2(-grid[0], grid[1])
    pattern = (2 + torch.cos(4 * phi)).unsqueeze(0)
    f = rotation_invariant_features(pattern, mask_radius=2)[0]
    ring = radius == 10
    assert int(harmonic[ring][f[ring][1:].argmax() + 1]) == 4


def test_absolute_embedding_reaches_r2_on_new_patterns(tmp_path):
    data = melting_series(
        500, size=33, photons=1e5, seed=0, contaminant="dimer", contaminant_fraction=0.2
    )
    train, test = data["patterns"][:400], data["patterns"][400:]
    clpca = CommonLinePCA(n_angles=90, log=True, progress=False)
    y_train = clpca.fit_transform(train)
    y_test = clpca.transform(test)
    f_train = rotation_invariant_features(train, log=True)
    f_test = rotation_invariant_features(test, log=True)
    model = AbsoluteEmbedding().fit(f_train, y_train, epochs=200, progress=False)
    r2 = model.score(f_test, y_test)
    assert r2[0] >= 0.9, f"held-out R^2 of component 1: {r2[0]:.3f}"
    path = model.save(tmp_path / "absolute.pt")
    again = AbsoluteEmbedding.load(path)
    np.testing.assert_allclose(again.predict(f_test), model.predict(f_test), atol=1e-5)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        AbsoluteEmbedding.load(path)


def test_bad_inputs_get_clear_errors():
    good = torch.rand(3, 33, 33)
    with pytest.raises(ValueError, match="square"):
        similarity_matrix(torch.rand(3, 33, 31), progress=False)
    with pytest.raises(ValueError, match="same size"):
        similarity_matrix([torch.rand(33, 33), torch.rand(31, 31)], progress=False)
    with pytest.raises(ValueError, match="mask_radius"):
        similarity_matrix(good, mask_radius=20, progress=False)
    with pytest.raises(ValueError, match="at least 2"):
        similarity_matrix(good[:1], progress=False)
    with pytest.raises(ValueError, match="at least 2"):
        CommonLinePCA(progress=False).fit(good[:1])
    bad = good.clone()
    bad[1, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        similarity_matrix(bad, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        rotation_invariant_features(bad)
    with pytest.raises(ValueError, match="31 x 31 but 33 x 33"):
        CommonLinePCA(progress=False).fit(good).transform(torch.rand(2, 31, 31))
    with pytest.raises(ValueError, match="features"):
        AbsoluteEmbedding().fit(torch.rand(10, 4), torch.rand(9, 2), progress=False)
    assert line_angles(4).tolist() == pytest.approx([0, math.pi / 4, math.pi / 2, 3 * math.pi / 4])
