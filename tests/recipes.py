"""Small end-to-end recipes that several test modules run the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def fit_cards_fast_split(*, input_noise: float = 0.0):
    """Fit the fast ss-rVAE on the small cards split (50 labelled, 300 unlabelled, 32x32).

    The default ``pose="grid"``, 8 epochs (about 40 s on one thread).

    Returns the fitted ``SSRVAE`` and the split (``paper_split(50, 300, 100, ...)``).
    The device is the default one (``PYROLATENT_DEVICE``).
    """
    from pyrolatent.data.synthetic.cards import paper_split
    from pyrolatent.estimators.ssrvae import SSRVAE

    split = paper_split(50, 300, 100, image_size=32, seed=0)
    model = SSRVAE((32, 32), 4, encoder_hidden=(128, 128), input_noise=input_noise, seed=0)
    model.fit(
        split["unlabelled"]["images"],
        split["labelled"]["images"],
        split["labelled"]["labels"],
        epochs=8,
        batch_size=32,
        lr=3e-3,
        progress=False,
    )
    return model, split


def run_tiny_workflow(out: Path, *, empty_frame: int | None = None) -> Path:
    """Run every workflow stage on a 24-frame, 128x128 movie into ``out``.

    The ground-truth masks stand in for the segmentation probabilities (the
    networks have their own tests); ``empty_frame`` blanks one frame's map.
    """
    from pyrolatent.io.files import load_npy, save_npy
    from pyrolatent.workflow import (
        AnalyzeConfig,
        CropsConfig,
        MovieConfig,
        TrainConfig,
        stage_analyze,
        stage_crops,
        stage_locate,
        stage_movie,
        stage_train,
        write_report,
    )

    stage_movie(out, MovieConfig(n_frames=24, size=128, n_particles=16, transition_frame=12))
    probability = (load_npy(out / "masks.npy") > 0).astype(np.float32)
    if empty_frame is not None:
        probability[empty_frame] = 0
    save_npy(out / "probability.npy", probability)
    stage_locate(out, out / "probability.npy")
    stage_crops(out, out / "movie.npy", out / "particles.csv", CropsConfig(window=32))
    stage_train(
        out, out / "crops.npy", out / "crops_index.csv", TrainConfig(epochs=2, batch_size=128)
    )
    stage_analyze(
        out,
        out / "latents.csv",
        out / "particles.csv",
        AnalyzeConfig(kde_window=1, nmf_method="map", nmf_steps=200),
        n_frames=24,
    )
    write_report(out)
    return out


def stretched_cloud(*, size: int, levels: int, frames: int, seed: int = 0, t_max: float = 1.5):
    """Posed Poisson frames of a random 40-atom cloud stretched continuously along a short axis.

    The cloud (``(2.5, 1.2, 1.0)`` times a standard normal, no symmetry) is
    stretched by ``t`` on ``levels`` values evenly spaced in ``[1, t_max]``;
    ``|F|^2`` on one ``q`` grid for all ``t`` (Nyquist for the most stretched),
    each frame at a random level and orientation, 10^4 photons.

    Returns
    -------
    dict
        ``patterns`` ``(N, S, S)``, ``rotations`` ``(N, 3, 3)``, ``level`` ``(N,)``,
        ``volumes`` ``(L, S, S, S)``, ``mask`` ``(S, S)``, ``detector`` and
        ``generator`` (the stream the data came from, to draw more).
    """
    import torch

    from pyrolatent.primitives.so3 import random_rotations
    from pyrolatent.spi.emc import flat_detector, simulate_frames, structure_intensity

    gen = torch.Generator().manual_seed(seed)
    atoms = torch.randn(40, 3, generator=gen, dtype=torch.float64) * torch.tensor([2.5, 1.2, 1.0])
    atoms = atoms - atoms.mean(0)
    ts = torch.linspace(1.0, t_max, levels, dtype=torch.float64)
    d_max = 2 * float((atoms * torch.tensor([1.0, ts[-1], 1.0])).norm(dim=1).max())
    resolution = 2 * d_max / ((size - 1) / 2)
    vols = torch.stack([
        structure_intensity(atoms * torch.tensor([1.0, t, 1.0]), size=size,
                            resolution=resolution, method="direct")[0]
        for t in ts
    ])  # fmt: skip
    det = flat_detector(size, beamstop=1.5)
    level = torch.randint(0, levels, (frames,), generator=gen)
    rot = random_rotations(frames, generator=gen)
    counts = torch.zeros(frames, size * size)
    for k in range(levels):
        idx = (level == k).nonzero()[:, 0]
        fr, _, _ = simulate_frames(vols[k], det, idx.numel(), 1e4, generator=gen,
                                   rotations=rot[idx])  # fmt: skip
        counts[idx] = fr.to_dense()
    return {"patterns": counts.reshape(-1, size, size), "rotations": rot, "level": level,
            "volumes": vols, "mask": det.mask.reshape(size, size), "detector": det,
            "generator": gen}  # fmt: skip


def run_two_processes(worker: str, out: Path, timeout: int = 300) -> None:
    """Run ``tests/<worker> OUT`` as 2 CPU processes under ``torchrun`` (gloo, one thread each).

    The launch itself (rendezvous on a free local port) can fail on a busy
    machine; one retry covers that. Fails the test with the end of stderr.
    """
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", PYROLATENT_DEVICE="cpu")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).resolve().parent / worker), str(out)]  # fmt: skip
    for _attempt in range(2):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 0:
            return
    raise AssertionError(proc.stderr[-3000:])
