"""Every component on CUDA, through the one device policy (skipped without a GPU).

The rest of the suite runs on the CPU (``tests/conftest.py``). Here
``PYROLATENT_DEVICE=cuda`` makes every component resolve to the GPU, inputs are
given as CPU arrays as a user would, and each test checks what the component
learns, with the thresholds of its CPU test, plus that user-facing outputs come
back on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyrolatent.device import resolve_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def _on_cuda(monkeypatch):
    monkeypatch.setenv("PYROLATENT_DEVICE", "cuda")


def test_trainer_resume_on_cuda_continues_the_same_run(tmp_path):
    from toy_models import FactorGuide, FactorModel, factor_data

    from pyrolatent.infer import Trainer

    def trainer(**kw):
        torch.manual_seed(0)
        return Trainer(FactorModel(), FactorGuide(), lr=1e-2, seed=0, progress=False, **kw)

    x = factor_data()
    full = trainer()
    full.fit(x, epochs=6, batch_size=32)
    assert next(full.model.parameters()).device.type == resolve_device().type
    ckpt = tmp_path / "run.pt"
    trainer(checkpoint_path=ckpt).fit(x, epochs=3, batch_size=32)
    resumed = trainer(checkpoint_path=ckpt)
    torch.manual_seed(1234)
    resumed.fit(x, epochs=6, batch_size=32)  # restores CPU and CUDA RNG states
    np.testing.assert_allclose(resumed.history["loss"], full.history["loss"], rtol=1e-5)
    assert full.history["loss"][-1] < 0.7 * full.history["loss"][0]  # 0.48 measured (CPU)


def test_rvae_on_cuda_recovers_angles():
    from pyrolatent.analysis.circular import circular_correlation
    from pyrolatent.data.synthetic.shapes import make_rotated_shapes
    from pyrolatent.estimators.rvae import RVAE

    data = make_rotated_shapes(2000, shapes=("L",), image_size=32, max_offset=2.0, seed=1)
    for decoder in ("warp", "spatial"):
        rvae = RVAE((32, 32), latent_dim=2, decoder=decoder, seed=0)
        assert rvae.device.type == resolve_device().type
        rvae.fit(data["images"], epochs=30, batch_size=100, lr=3e-3, progress=False)
        enc = rvae.encode(data["images"])
        assert isinstance(enc["angle"]["loc"], np.ndarray)
        rho = circular_correlation(enc["angle"]["loc"], data["angles"])
        assert abs(rho) >= 0.95, (decoder, rho)


def test_ssrvae_on_cuda_classifies_and_exports_to_cpu(tmp_path):
    from recipes import fit_cards_fast_split

    from pyrolatent.nn.classifier import load_classifier

    m, sp = fit_cards_fast_split()
    pred = m.predict(sp["test"]["images"])
    assert (pred == sp["test"]["labels"]).mean() >= 0.75
    path = m.export_classifier(tmp_path / "clf.pt")
    clf = load_classifier(path)  # a plain torch module on the CPU
    with torch.no_grad():
        logits = clf(torch.as_tensor(sp["test"]["images"]))
    np.testing.assert_allclose(
        torch.softmax(logits, -1).numpy(), m.predict_proba(sp["test"]["images"]), atol=1e-4
    )


def test_nmf_on_cuda_matches_sklearn():
    import pyro.distributions as dist
    from sklearn.decomposition import NMF as SkNMF
    from test_nmf import planted_kde_matrix

    from pyrolatent.estimators.nmf import NMF

    x = planted_kde_matrix()
    ref = SkNMF(n_components=2, init="nndsvda", max_iter=5000, tol=1e-8).fit(x)
    for method in ("map", "svi"):
        nmf = NMF(n_components=2, seed=0).fit(x, method=method, epochs=1500)
        assert isinstance(nmf.time_courses_, np.ndarray)
        assert nmf.reconstruction_error(x) <= 1.02 * ref.reconstruction_err_, method
    # a user's prior built with CPU parameters is moved with the model
    custom = NMF(n_components=2, weights_prior=dist.Gamma(1.5, 1.0), seed=0)
    assert custom.fit(x, method="map", epochs=300).reconstruction_error(x) < 2 * (
        ref.reconstruction_err_
    )


def test_volume_vae_on_cuda_orders_cubes_and_spheres():
    from pyrolatent.data.synthetic.spi import melting_series
    from pyrolatent.estimators.volume_vae import VolumeVAE

    s = melting_series(256, size=33, photons=1e5, seed=3, n_levels=2)
    vae = VolumeVAE(
        33,
        latent_dim=1,
        decoder="implicit",
        likelihood="gaussian",
        group="Oh",
        mask=s["mask"],
        seed=0,
    )
    hist = vae.fit(
        s["patterns"], s["rotations"], epochs=5, batch_size=32, lr=5e-3, progress=False
    ).history
    assert hist["loss"][-1] < 0.6 * hist["loss"][0]
    loc = torch.as_tensor(vae.encode(s["patterns"], s["rotations"])["z"]["loc"])
    z, cube = loc[:, 0], torch.as_tensor(s["level"]) == 0
    thr = (z[cube].median() + z[~cube].median()) / 2
    side = (z > thr) == (z[cube].median() > thr)
    assert float((side == cube).float().mean()) >= 0.9
    assert vae.generate(z[:1]).device.type == "cpu"


def test_volume_vae_pose_ball_on_cuda_matches_the_cpu():
    from pyrolatent.estimators.volume_vae import VolumeVAE
    from pyrolatent.primitives.so3 import random_rotations

    gen = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((16, 15, 15), 3.0), generator=gen)
    rot = random_rotations(16, generator=gen)
    out = {}
    for device in ("cpu", "cuda"):
        vae = VolumeVAE(15, model_options={"hidden": 16, "n_features": 8}, device=device)
        vae.fit(x, rot, epochs=1, batch_size=16, progress=False, method="grid",
                pose_radius=0.08, pose_spacing=0.04)  # fmt: skip
        out[device] = vae.encode(x, rot)
    assert isinstance(out["cuda"]["rotation"], np.ndarray)
    assert np.allclose(out["cuda"]["z"]["loc"], out["cpu"]["z"]["loc"], atol=1e-3)
    assert np.allclose(out["cuda"]["rotation"], out["cpu"]["rotation"], atol=1e-3)


def test_segmentation_on_cuda_learns_the_movie():
    from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie
    from pyrolatent.segmentation import locate, train_ensemble
    from pyrolatent.segmentation.metrics import pixel_iou

    movie = make_self_assembly_movie(n_frames=8, size=128, seed=1)
    ens = train_ensemble(
        movie.frames[:4],
        movie.masks[:4],
        network_config={"filters": 16},
        n_members=3,
        baseline_steps=300,
        member_steps=20,
        batch_size=8,
        patch_size=64,
        lr=3e-3,
        patience=None,
        progress=False,
    )
    mean, var = ens.predict(movie.frames[4:], tta=True)
    assert isinstance(mean, np.ndarray)
    assert pixel_iou(mean[:, 0] > 0.5, movie.masks[4:] > 0) >= 0.8
    found = locate(mean[:, 0], uncertainty=var[:, 0], min_area=15)
    assert len(found["frame"]) > 0


def test_common_lines_on_cuda_match_the_cpu():
    from pyrolatent.commonlines import CommonLinePCA, embed_similarity
    from pyrolatent.data.synthetic.spi import melting_series

    s = melting_series(64, size=33, photons=1e5, seed=3, n_levels=2)
    on_gpu = CommonLinePCA(n_components=2, n_angles=60, log=True, progress=False)
    emb = on_gpu.fit_transform(s["patterns"])
    on_cpu = CommonLinePCA(n_components=2, n_angles=60, log=True, progress=False, device="cpu")
    ref = on_cpu.fit_transform(s["patterns"])
    assert on_gpu.similarity_.device.type == resolve_device().type
    np.testing.assert_allclose(np.abs(emb), np.abs(ref), atol=2e-3 * np.abs(ref).max())
    assert embed_similarity(on_gpu.similarity_, n_components=2).shape == (64, 2)


def test_workflow_stages_on_cuda(tmp_path):
    """The CLI/workflow chain (rVAE and NMF inside) on the GPU, as in test_workflow."""
    from recipes import run_tiny_workflow

    from pyrolatent.io.files import load_json
    from pyrolatent.workflow import FIGURES

    out = run_tiny_workflow(tmp_path)
    summary = load_json(out / "summary.json")
    assert summary["n_particles"] > 100
    assert all((out / "figures" / name).stat().st_size > 1000 for name in FIGURES)
