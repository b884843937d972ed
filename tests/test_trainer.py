"""The shared SVI Trainer: learning, side-effect-free evaluation, exact resume,
callbacks, atomic checkpoints and the semi-supervised interleaving."""

import pytest
import torch
from pyro import poutine
from toy_models import FactorGuide, FactorModel, factor_data

from pyrolatent.estimators.ssrvae import InterleavedBatches
from pyrolatent.infer import (
    BetaSchedule,
    CheckpointError,
    EarlyStopping,
    LatentScaleMessenger,
    LearningRateDecay,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)
from pyrolatent.infer.batches import Batches


def _params(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()} | {
        "g." + k: v.detach().clone() for k, v in trainer.guide.state_dict().items()
    }


def _trainer(seed=0, **kw):
    torch.manual_seed(seed)
    return Trainer(FactorModel(), FactorGuide(), lr=1e-2, seed=seed, progress=False, **kw)


def test_loss_decreases_and_history_is_kept():
    x = factor_data(n=320)
    t = _trainer()
    h = t.fit(x[:256], epochs=15, batch_size=32, val_data=x[256:])
    assert h["epoch"] == list(range(15))
    assert len(h["loss"]) == len(h["val_loss"]) == 15
    # the per-item negative ELBO of 8-D data with sigma 0.1 starts in the hundreds
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    assert h["val_loss"][-1] < 0.2 * h["val_loss"][0]


def test_evaluation_leaves_parameters_and_rng_bit_identical():
    x = factor_data()
    t = _trainer()
    t.fit(x, epochs=2, batch_size=32)
    before = _params(t)
    opt_before = {
        k: v.clone()
        for k, v in t.optimizer.state_dict()["state"][0].items()
        if isinstance(v, torch.Tensor)
    }
    rng_before = torch.get_rng_state()
    t.evaluate(x, batch_size=50)
    after = _params(t)
    assert all(torch.equal(before[k], after[k]) for k in before)
    opt_after = t.optimizer.state_dict()["state"][0]
    assert all(torch.equal(v, opt_after[k]) for k, v in opt_before.items())
    assert torch.equal(rng_before, torch.get_rng_state())


def test_resume_is_exact(tmp_path):
    x = factor_data()
    full = _trainer()
    full.fit(x, epochs=6, batch_size=32, val_data=x[:64])

    ckpt = tmp_path / "run.pt"
    first = _trainer(checkpoint_path=ckpt)
    first.fit(x, epochs=3, batch_size=32, val_data=x[:64])
    # a new process would build fresh (differently initialised) objects
    resumed = _trainer(seed=0, checkpoint_path=ckpt)
    torch.manual_seed(1234)  # the checkpoint, not the caller's RNG, decides what follows
    resumed.fit(x, epochs=6, batch_size=32, val_data=x[:64])
    a, b = _params(full), _params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history["loss"] == full.history["loss"]
    assert resumed.history["val_loss"] == full.history["val_loss"]


def test_beta_schedule_scales_latent_sites_only():
    sched = BetaSchedule(start=0.0, end=1.0, warmup_epochs=4)
    t = _trainer(callbacks=[sched])
    h = t.fit(factor_data(), epochs=6, batch_size=64)
    assert h["beta"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    x = factor_data(n=4)
    with LatentScaleMessenger(0.3):
        tr = poutine.trace(FactorModel()).get_trace(x)
    assert tr.nodes["z"]["scale"] == pytest.approx(0.3)
    assert tr.nodes["obs"]["scale"] == 1.0


def test_learning_rate_decay_is_geometric_and_survives_resume(tmp_path):
    ckpt = tmp_path / "lr.pt"
    t = _trainer(callbacks=[LearningRateDecay(epochs=4, final_factor=0.01)],
                 checkpoint_path=ckpt)  # fmt: skip
    h = t.fit(factor_data(), epochs=3, batch_size=64)
    assert h["lr"] == pytest.approx([1e-2, 1e-2 * 0.01**0.25, 1e-2 * 0.01**0.5])
    resumed = _trainer(callbacks=[LearningRateDecay(epochs=4, final_factor=0.01)],
                       checkpoint_path=ckpt)  # fmt: skip
    h = resumed.fit(factor_data(), epochs=6, batch_size=64)
    assert h["lr"][3:] == pytest.approx([1e-2 * 0.01**0.75, 1e-4, 1e-4])
    with pytest.raises(ValueError, match="final_factor"):
        LearningRateDecay(epochs=4, final_factor=0.0)


def test_early_stopping_stops_after_patience():
    # monitoring the training loss in "max" mode: it never improves after epoch 0
    t = _trainer(callbacks=[EarlyStopping(monitor="loss", patience=2, mode="max")])
    h = t.fit(factor_data(), epochs=50, batch_size=64)
    assert len(h["epoch"]) == 3


def test_early_stopping_needs_the_monitored_key():
    t = _trainer(callbacks=[EarlyStopping(monitor="val_loss")])
    with pytest.raises(ValueError, match="val_loss"):
        t.fit(factor_data(), epochs=2, batch_size=64)


def test_labelled_data_is_used_when_unlabelled_batches_are_fewer():
    x_u = factor_data(n=32)  # 1 unlabelled batch
    x_l = factor_data(n=160, seed=2)  # 5 labelled batches
    y_l = torch.zeros(160, dtype=torch.long)
    t = _trainer()
    source = InterleavedBatches(Batches(x_u, 32), Batches((x_l, y_l), 32, salt=1))
    t.fit(source, epochs=2)
    assert t.guide.labelled_seen == 2 * 160
    assert t.guide.unlabelled_seen == 2 * 5 * 32  # the single batch is cycled


def test_checkpoint_crash_while_writing_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"kind": "x", "value": torch.arange(3)}, path)

    def exploding_save(obj, f):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"kind": "x", "value": torch.arange(5)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["value"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp files left


def test_truncated_or_foreign_checkpoint_gives_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"kind": "x", "value": torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupted or unsafe"):
        load_checkpoint(path)
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a pyrolatent checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_that_would_execute_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"pyrolatent_format": 1, "payload": Evil()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="lr"):
        Trainer(FactorModel(), FactorGuide(), lr=0)
    t = _trainer()
    with pytest.raises(ValueError, match="NaN"):
        t.fit(torch.full((10, 8), float("nan")), epochs=1)
    with pytest.raises(ValueError, match="same length"):
        t.fit((torch.zeros(10, 8), torch.zeros(9)), epochs=1)


def test_models_with_the_same_parameter_names_do_not_collide():
    # AutoNormal keeps its variational parameters as PyroParams named after the
    # sites; two guides of different sizes share those names in Pyro's global
    # parameter store unless each trainer keeps its own scope.
    from pyro.infer.autoguide import AutoNormal

    trainers = []
    for n in (64, 32):
        model = FactorModel()
        trainers.append(Trainer(model, AutoNormal(model), lr=1e-2, progress=False))
        trainers[-1].fit(factor_data(n=n), epochs=3, batch_size=n)
    history = trainers[0].fit(factor_data(n=64), epochs=6, batch_size=64)
    assert history["loss"][-1] < history["loss"][0]


def test_fit_trains_more_epochs_and_until_epoch_is_the_total():
    t = _trainer()
    t.fit(factor_data(), epochs=3, batch_size=64)
    t.fit(factor_data(), epochs=3, batch_size=64)
    assert t.epoch == 6 and len(t.history["loss"]) == 6
    t.fit(factor_data(), until_epoch=7, batch_size=64)
    assert t.epoch == 7
    with pytest.raises(ValueError, match="exactly one"):
        t.fit(factor_data(), epochs=1, until_epoch=8)


def test_fit_leaves_the_global_rng_alone_and_ignores_it():
    import random

    import numpy as np

    torch.manual_seed(11)
    solo = _trainer(seed=3)
    solo.fit(factor_data(), epochs=2, batch_size=64)
    torch.manual_seed(11)
    t = _trainer(seed=3)
    state = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())  # noqa: NPY002
    t.fit(factor_data(), epochs=1, batch_size=64)
    assert torch.equal(state[0], torch.get_rng_state())
    torch.rand(5)  # the caller draws between two fits
    t.fit(factor_data(), epochs=1, batch_size=64)
    assert np.array_equal(state[1], np.random.get_state()[1]) and state[2] == random.getstate()  # noqa: NPY002
    for a, b in zip(solo.parameters(), t.parameters(), strict=True):
        assert torch.equal(a, b)
