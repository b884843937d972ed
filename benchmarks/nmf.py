"""Pyro NMF (MAP and SVI through the shared Trainer) against scikit-learn's NMF, plus NUTS r_hat.

No arguments; CPU; writes ``benchmarks/results/nmf.json`` with
``reconstruction_error_pyro`` (MAP), ``reconstruction_error_pyro_svi``
(mean-field SVI, posterior mean of ``H W``), ``reconstruction_error_sklearn``,
their ratios ``error_ratio_map`` / ``error_ratio_svi`` (target <= 1.02),
``seconds_pyro`` (MAP), ``seconds_pyro_svi``, ``seconds_sklearn`` and
``nuts_max_rhat``.

The matrix is KDE(angle, t) of synthetic per-frame angles: 6 directions before
a planted transition at frame 60, 4 after (120 frames, 180 grid points, 40
angles per frame, wrapped KDE with a 3-frame window). NUTS runs on a 30 x 40
matrix of the same kind (4 chains of 600 warm-up + 1000 draws, r_hat after ordering).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from pyrolatent.analysis.kde import latent_kde_over_time
from pyrolatent.diagnostics.nmf import nmf_summary, nmf_to_inference_data
from pyrolatent.estimators.nmf import NMF


def kde_matrix(n_frames, n_grid, transition, per_frame=40, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.repeat(np.arange(n_frames), per_frame)
    six, four = np.arange(0, 360, 60), np.arange(0, 360, 90)
    centres = np.where(
        frames < transition, rng.choice(six, frames.size), rng.choice(four, frames.size)
    )
    angles = np.deg2rad(centres + rng.normal(0, 4, frames.size))
    grid = np.linspace(-np.pi, np.pi, n_grid, endpoint=False)
    return latent_kde_over_time(angles, frames, grid, circular=True, window=3)


def main() -> dict:
    from sklearn.decomposition import NMF as SkNMF

    torch.set_num_threads(1)
    x = kde_matrix(120, 180, 60)
    t0 = time.perf_counter()
    sk = SkNMF(n_components=2, init="nndsvda", max_iter=2000, tol=1e-6).fit(x)
    t_sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    nmf = NMF(n_components=2, seed=0).fit(x, method="map", epochs=1500, lr=0.03)
    t_py = time.perf_counter() - t0
    t0 = time.perf_counter()
    svi = NMF(n_components=2, seed=0).fit(x, method="svi", epochs=1500, lr=0.03)
    t_svi = time.perf_counter() - t0
    small = kde_matrix(30, 40, 15, seed=1)
    nuts = NMF(n_components=2, seed=0).fit(
        small, method="nuts", num_samples=1000, warmup_steps=600, num_chains=4
    )
    summ = nmf_summary(nmf_to_inference_data(nuts.samples_, observed=small))
    result = {
        "reconstruction_error_pyro": nmf.reconstruction_error(x),
        "reconstruction_error_sklearn": float(sk.reconstruction_err_),
        "reconstruction_error_pyro_svi": svi.reconstruction_error(x),
        "error_ratio_map": nmf.reconstruction_error(x) / float(sk.reconstruction_err_),
        "error_ratio_svi": svi.reconstruction_error(x) / float(sk.reconstruction_err_),
        "seconds_pyro": t_py,
        "seconds_pyro_svi": t_svi,
        "seconds_sklearn": t_sk,
        "nuts_max_rhat": summ["max_rhat"],
    }
    out = Path(__file__).resolve().parent / "results" / "nmf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
