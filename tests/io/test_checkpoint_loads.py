"""Every estimator/Trainer load failure is a CheckpointError that says what is wrong (issue 16):
empty, truncated, wrong kind, wrong architecture, config values out of range (bounded
before anything is allocated)."""

import time

import numpy as np
import pytest
import torch

from pyrolatent import RVAE, SSRVAE, AbsoluteEmbedding, DeepEnsemble, DilNet, Trainer
from pyrolatent.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    x = np.random.default_rng(0).random((8, 8, 8), dtype=np.float32)
    m = RVAE((8, 8), encoder_hidden=(16,), decoder_hidden=(16,), decoder="warp", seed=0)
    m.fit(x, epochs=1, batch_size=4, progress=False, checkpoint_path=d / "trainer.pt")
    return {"x": x, "rvae": m.save(d / "rvae.pt"), "trainer": d / "trainer.pt", "dir": d}


def _variant(src, dst, **config):
    state = load_checkpoint(src)
    state["config"] = {**state["config"], **config}
    return save_checkpoint(state, dst)


def test_empty_and_truncated_estimator_checkpoints(saved, tmp_path):
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        RVAE.load(tmp_path / "e.pt")
    raw = saved["rvae"].read_bytes()
    (tmp_path / "t.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated|corrupted"):
        RVAE.load(tmp_path / "t.pt")


def test_wrong_kind(saved):
    with pytest.raises(CheckpointError, match="not a SSRVAE"):
        SSRVAE.load(saved["rvae"])
    with pytest.raises(CheckpointError, match="DeepEnsemble"):
        DeepEnsemble.load(saved["rvae"])


def test_huge_image_size_is_refused_before_allocation(saved, tmp_path):
    path = _variant(saved["rvae"], tmp_path / "huge.pt", image_size=[200000, 200000])
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"image_size=\[200000, 200000\].*out of range"):
        RVAE.load(path)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    "config,why",
    [
        ({"latent_dim": 3}, "does not fit this architecture"),
        ({"image_size": [16, 16]}, "does not fit this architecture"),
        ({"latent_dim": -2}, "out of range"),
        ({"encoder_hidden": [0]}, "out of range"),
        ({"decoder": "nonsense"}, "configuration is invalid"),
        ({"sigma": float("nan")}, "not finite"),
    ],
)
def test_wrong_architecture_or_config(saved, tmp_path, config, why):
    path = _variant(saved["rvae"], tmp_path / "v.pt", **config)
    with pytest.raises(CheckpointError, match=why):
        RVAE.load(path)


def test_trainer_resume_with_another_architecture(saved):
    other = RVAE((8, 8), latent_dim=3, encoder_hidden=(16,), decoder_hidden=(16,),
                 decoder="warp", seed=0)  # fmt: skip
    trainer = Trainer(other.model, other.guide, checkpoint_path=saved["trainer"], progress=False)
    before = {k: v.clone() for k, v in other.model.state_dict().items()}
    with pytest.raises(CheckpointError, match="does not fit this architecture"):
        trainer.fit(saved["x"], epochs=1, batch_size=4)
    after = other.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing half-loaded


def test_deep_ensemble_and_regressor_configs(tmp_path):
    ens = DeepEnsemble(DilNet(filters=2, members=2))
    path = ens.save(tmp_path / "ens.pt")
    state = load_checkpoint(path)
    for change, why in [({"filters": 10**7}, "out of range"), ({"filters": 4}, "does not fit")]:
        bad = dict(state, config={**state["config"], **change})
        save_checkpoint(bad, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=why):
            DeepEnsemble.load(tmp_path / "bad.pt")
    rng = np.random.default_rng(0)
    reg = AbsoluteEmbedding(hidden=(4,)).fit(rng.random((12, 3)), rng.random((12, 2)), epochs=2,
                                             progress=False)  # fmt: skip
    state = reg.state_dict()
    state["config"] = {**state["config"], "n_features": 5}
    save_checkpoint(state, tmp_path / "reg.pt")
    with pytest.raises(CheckpointError, match="scaler|does not fit"):
        AbsoluteEmbedding.load(tmp_path / "reg.pt")
