"""Validation loss for the ss-rVAE (issue 16): Trainer.evaluate and fit(val_data=...) work with
the enumerated ELBO, and SSRVAE.fit(val_data=...) records ``val_loss``."""

import numpy as np
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from pyrolatent import SSRVAE, Trainer

pytestmark = pytest.mark.filterwarnings("ignore:TraceEnum_ELBO found no sample sites")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8), dtype=np.float32)
    return {"x": x, "y": np.array([0, 1] * 3), "val": x[:4], "val_y": np.array([0, 1, 1, 0])}


def _model():
    return SSRVAE((8, 8), n_classes=2, encoder_hidden=(16,), decoder_hidden=(16,), seed=0)


def test_ssrvae_fit_records_a_validation_loss(data):
    m = _model()
    m.fit(data["x"][6:], data["x"][:6], data["y"], epochs=2, batch_size=4, progress=False,
          val_data=data["val"])  # fmt: skip
    val = m.history["val_loss"]
    assert len(val) == 2 and np.isfinite(val).all()
    # the recorded number is the side-effect-free evaluation of the final parameters
    assert m.trainer.evaluate(torch.as_tensor(data["val"])) == pytest.approx(val[-1], rel=1e-6)
    m.fit(data["x"][6:], data["x"][:6], data["y"], epochs=1, batch_size=4, progress=False,
          val_data=(data["val"], data["val_y"]))  # fmt: skip
    assert len(m.history["val_loss"]) == 3 and np.isfinite(m.history["val_loss"][-1])


@pytest.mark.parametrize("loss", [None, TraceEnum_ELBO(max_plate_nesting=1)])
def test_trainer_evaluate_and_val_data_with_the_enumerated_elbo(data, loss):
    m = _model()
    trainer = Trainer(m.model, m.guide, loss=loss, progress=False)
    history = trainer.fit(data["x"], epochs=1, batch_size=4, val_data=data["val"])
    assert np.isfinite(history["val_loss"]).all()
    before = {k: v.clone() for k, v in m.model.state_dict().items()}
    state = torch.get_rng_state()
    first = trainer.evaluate(data["val"])
    assert trainer.evaluate(data["val"]) == first and np.isfinite(first)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(v, m.model.state_dict()[k]) for k, v in before.items())


def test_val_data_is_checked(data):
    m = _model()
    with pytest.raises(ValueError, match="val_data"):
        m.fit(data["x"][6:], data["x"][:6], data["y"], epochs=1, progress=False,
              val_data=(data["val"], [0, 1]))  # fmt: skip
    with pytest.raises(TypeError, match="complex"):
        m.fit(data["x"][6:], data["x"][:6], data["y"], epochs=1, progress=False,
              val_data=data["val"].astype(np.complex64))  # fmt: skip
