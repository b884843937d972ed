"""Benchmark of common lines, CLPCA, invariant features, absolute embedding and classify2d.

Runs on the CPU with no arguments and writes ``benchmarks/results/commonlines.json``.
Speed is stated against a plain torch matmul measured in the same run with the
same number of threads (``PYROLATENT_BENCH_THREADS``, default 1, so that the
ratio is not distorted by other processes competing for the cores).

Keys
----
similarity_s_1000x180
    Seconds for the common-line similarity matrix (with best line angles) of
    1000 patterns of 65 x 65 pixels, 180 lines each (best of 2 runs).
similarity_gflops
    Useful GFLOP/s of that computation: ``N (N + 1) / 2`` pattern pairs times
    ``L^2`` line pairs times ``2 P`` (``P`` samples per line).
matmul_gflops
    GFLOP/s of a 2048 x 2048 float32 ``torch.matmul`` (best of 5), same run.
ari_clpca
    Adjusted Rand index of k-means (4 clusters) on the 3D CLPCA embedding of
    averaged patterns (10^5 photons, log transform) of a cube, sphere, rounded
    cube (rounding 0.5) and dimer, 100 random orientations each, 65 x 65.
spearman_morph_pc
    Largest ``|Spearman|`` between a CLPCA component (of 3) and the morph
    parameter of a cube-to-sphere melting series (400 patterns, 10^5 photons).
common_line_within_2_steps
    Fraction of pattern pairs of an asymmetric volume (Gaussian blobs, known
    orientations, 100 patterns, 180 lines) whose best line lies within two
    angular steps of the true common line ``R_i^T (n_i x n_j)``.
feature_rot90_rel_change, feature_arbitrary_rel_change
    Largest relative change ``|f(x') - f(x)| / |f(x)|`` of the rotation-invariant
    features (log intensities) under a right-angle turn of the pattern, and
    under arbitrary in-plane turns (the volume sliced at ``R Rz(alpha)``).
absolute_embedding_r2_pc1
    Held-out R^2 of the MLP (512, 128, 64, 32) on the first CLPCA component:
    1000 patterns of a melting series with 20 % dimers, CLPCA fitted on 800,
    the other 200 projected into it and predicted from their features.
classify2d_accuracy, classify2d_average_cc
    2000 frames of 2000 photons (4 particles, random in-plane turns):
    fraction of frames in the right class (best matching of classes), and
    the smallest Pearson correlation between a class average and its true
    noise-free pattern after the best in-plane rotation.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from pyrolatent.commonlines import (
    AbsoluteEmbedding,
    CommonLinePCA,
    rotation_invariant_features,
    similarity_matrix,
)
from pyrolatent.commonlines.geometry import true_common_line_angles
from pyrolatent.commonlines.profiles import line_radii
from pyrolatent.data.synthetic.classes2d import sparse_class_frames
from pyrolatent.data.synthetic.densities import blob_density
from pyrolatent.data.synthetic.spi import (
    intensity_volume,
    melting_series,
    shape_density,
    simulate_patterns,
)
from pyrolatent.primitives import warp_images
from pyrolatent.primitives.so3 import in_plane_rotations, random_rotations
from pyrolatent.primitives.volumes import slice_volume
from pyrolatent.spi.classify2d import classify2d

RESULTS = Path(__file__).resolve().parent / "results" / "commonlines.json"
SHAPES = [("cube", None), ("sphere", None), ("rounded_cube", None), ("dimer", None)]
# CLPCA shapes: a clearly rounded cube (rounding 0.5); with the generator's default
# rounding 0.3 the cube and rounded cube clusters overlap in 3D CLPCA (ARI ~0.75)
CLPCA_SHAPES = [("cube", None), ("sphere", None), ("rounded_cube", 0.5), ("dimer", None)]


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def bench_similarity(n=1000, size=65, n_angles=180, repeats=2, friedel=False):
    volume = intensity_volume(shape_density("rounded_cube", 33), size)
    patterns = simulate_patterns(volume, n, photons=1e5, seed=0)["patterns"]
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        similarity_matrix(patterns, n_angles=n_angles, log=True, friedel=friedel, progress=False)
        best = min(best, time.perf_counter() - t)
    p = len(line_radii(2.0, (size - 1) / 2)) // (2 if friedel else 1)
    flops = n * (n + 1) / 2 * n_angles**2 * 2 * p
    return best, flops / best / 1e9


def bench_clpca_shapes(n_per_shape=100, size=65):
    patterns, labels = [], []
    for k, (kind, p) in enumerate(CLPCA_SHAPES):
        volume = intensity_volume(shape_density(kind, 33, p=p), size)
        patterns.append(simulate_patterns(volume, n_per_shape, photons=1e5, seed=k)["patterns"])
        labels += [k] * n_per_shape
    emb = CommonLinePCA(n_angles=180, log=True, progress=False).fit_transform(torch.cat(patterns))
    pred = KMeans(4, n_init=10, random_state=0).fit_predict(emb)
    return adjusted_rand_score(labels, pred)


def bench_morph(n=400, size=65):
    data = melting_series(n, size=size, photons=1e5, seed=0)
    emb = CommonLinePCA(n_angles=180, log=True, progress=False).fit_transform(data["patterns"])
    return max(abs(spearmanr(emb[:, k], data["morph"].numpy()).statistic) for k in range(3))


def bench_geometry(n=100, size=65, n_angles=180):
    volume = intensity_volume(blob_density(size), size)
    rot = random_rotations(n, generator=torch.Generator().manual_seed(1))
    res = similarity_matrix(slice_volume(volume, rot), n_angles=n_angles, log=True, progress=False)
    truth = true_common_line_angles(rot)
    err = (res.angle - truth).abs() % math.pi
    err = torch.minimum(err, math.pi - err)
    off = ~torch.eye(n, dtype=torch.bool)
    return float((err[off] <= 2 * math.pi / n_angles + 1e-6).float().mean())


def bench_features(n=100, size=65):
    volume = intensity_volume(shape_density("rounded_cube", 33), size)
    rot = random_rotations(n, generator=torch.Generator().manual_seed(3))
    alpha = torch.rand(n, generator=torch.Generator().manual_seed(4)) * 2 * math.pi
    patterns = slice_volume(volume, rot)
    turned = slice_volume(volume, rot @ in_plane_rotations(alpha))
    out = {}
    for log in (True, False):
        f = rotation_invariant_features(patterns, log=log)
        f90 = rotation_invariant_features(torch.rot90(patterns, 1, dims=(-2, -1)), log=log)
        fa = rotation_invariant_features(turned, log=log)
        out[log] = (
            float(((f90 - f).norm(dim=1) / f.norm(dim=1)).max()),
            float(((fa - f).norm(dim=1) / f.norm(dim=1)).max()),
            float(((fa - f).norm(dim=1) / f.norm(dim=1)).mean()),
        )
    return out


def bench_absolute_embedding(n=1000, size=33):
    data = melting_series(
        n, size=size, photons=1e5, seed=1, contaminant="dimer", contaminant_fraction=0.2
    )
    n_train = int(0.8 * n)
    train, test = data["patterns"][:n_train], data["patterns"][n_train:]
    clpca = CommonLinePCA(n_angles=180, log=True, progress=False)
    y_train = clpca.fit_transform(train)
    y_test = clpca.transform(test)
    f_train = rotation_invariant_features(train, log=True)
    f_test = rotation_invariant_features(test, log=True)
    model = AbsoluteEmbedding().fit(f_train, y_train, epochs=300, progress=False)
    return model.score(f_test, y_test)


def bench_classify2d(n=2000, photons=2000, size=65):
    data = sparse_class_frames(n, photons=photons, size=size, seed=0, classes=SHAPES)
    frames, labels, truth, mask = data["frames"], data["labels"], data["truth"], data["mask"]
    res = classify2d(frames, 4, n_rotations=36, n_iterations=30, mask=mask, progress=False)
    confusion = np.zeros((4, 4))
    for a, b in zip(labels.numpy(), res.best_class.numpy(), strict=True):
        confusion[a, b] += 1
    rows, cols = linear_sum_assignment(-confusion)
    accuracy = confusion[rows, cols].sum() / n
    angles = torch.arange(180) * (math.pi / 180)
    ccs = []
    for k in range(4):
        turned = warp_images(res.averages[cols[k]].expand(180, -1, -1), angle=angles)[:, res.mask]
        t = truth[k][res.mask] - truth[k][res.mask].mean()
        turned = turned - turned.mean(dim=1, keepdim=True)
        ccs.append(float(((turned @ t) / (turned.norm(dim=1) * t.norm())).max()))
    return accuracy, ccs, float(frames.sum(dim=(1, 2)).max())


def main():
    threads = int(os.environ.get("PYROLATENT_BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"threads: {threads}")
    t0 = time.perf_counter()
    mm_before = matmul_gflops()
    sim_s, sim_gflops = bench_similarity()
    mm = max(mm_before, matmul_gflops())
    print(f"similarity 1000x180: {sim_s:.1f} s, {sim_gflops:.1f} GFLOP/s; matmul {mm:.1f} GFLOP/s")
    half_s, half_gflops = bench_similarity(repeats=1, friedel=True)
    print(f"  with friedel=True (half-lines): {half_s:.1f} s, {half_gflops:.1f} GFLOP/s")
    ari = bench_clpca_shapes()
    print(f"ARI (CLPCA, k-means, 4 shapes): {ari:.3f}")
    rho = bench_morph()
    print(f"|Spearman| best PC vs morph: {rho:.3f}")
    within = bench_geometry()
    print(f"common line within 2 steps: {within:.3f}")
    feats = bench_features()
    for log, (r90, arb_max, arb_mean) in feats.items():
        print(f"features log={log}: rot90 {r90:.2e}, arbitrary {arb_max:.4f} (mean {arb_mean:.4f})")
    r2 = bench_absolute_embedding()
    print(f"absolute embedding held-out R^2 per component: {np.round(r2, 3)}")
    accuracy, ccs, max_photons = bench_classify2d()
    print(f"classify2d: accuracy {accuracy:.4f}, aligned CC {np.round(ccs, 4)}, "
          f"max photons/frame {max_photons:.0f}")  # fmt: skip
    results = {
        "similarity_s_1000x180": sim_s,
        "similarity_gflops": sim_gflops,
        "matmul_gflops": mm,
        "ari_clpca": ari,
        "spearman_morph_pc": rho,
        "common_line_within_2_steps": within,
        "feature_rot90_rel_change": feats[True][0],
        "feature_arbitrary_rel_change": feats[True][1],
        "absolute_embedding_r2_pc1": float(r2[0]),
        "classify2d_accuracy": accuracy,
        "classify2d_average_cc": min(ccs),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"total {time.perf_counter() - t0:.0f} s; wrote {RESULTS}")


if __name__ == "__main__":
    main()
