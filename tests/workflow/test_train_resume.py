"""An interrupted train stage, run again, finishes the run it started (issue 17, seed check).

Before ``workflow/train_resume.py``, ``pyrolatent train --epochs 3`` stopped at
epoch 2 went on to 5 epochs when run again (the "more" rule for a finished fit),
and one stopped in the seed check's second fit trained the first model 3 more
epochs and the second from scratch. The interruption's own message says "run
the same command again to resume".
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyrolatent.infer.trainer import Trainer
from pyrolatent.io.files import load_json, load_npy, load_table, save_npy
from pyrolatent.workflow import MovieConfig, TrainConfig, stage_crops, stage_locate, stage_movie
from pyrolatent.workflow.stages import stage_train
from pyrolatent.workflow.train_resume import (
    CHECK_CHECKPOINT,
    TRAIN_CHECKPOINT,
    TRAIN_TARGET,
    plan_training,
)


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    src = tmp_path_factory.mktemp("movie")
    stage_movie(src, MovieConfig(n_frames=4, size=96, n_particles=8, transition_frame=2, seed=1))
    save_npy(src / "probability.npy", (load_npy(src / "masks.npy") > 0).astype(np.float32))
    stage_locate(src, src / "probability.npy")
    stage_crops(src, src / "movie.npy", src / "particles.csv")
    return src


def _train(crops, out, epochs, lines, resume="more"):
    return stage_train(out, crops / "crops.npy", crops / "crops_index.csv",
                       TrainConfig(epochs=epochs, batch_size=64), resume=resume,
                       log=lines.append)  # fmt: skip


@pytest.fixture
def trained_epochs(monkeypatch):
    """Record (checkpoint file, epoch) of every epoch trained; stop at a planted one."""
    record, stop = [], {}
    save = Trainer.save_checkpoint

    def saving(self, path):
        save(self, path)
        record.append((path.name, self.epoch))
        if stop.get(path.name) == self.epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save_checkpoint", saving)
    return record, stop


def test_a_stop_in_the_first_fit_is_finished_to_its_total(crops, tmp_path, trained_epochs):
    record, stop = trained_epochs
    lines = []
    stop[TRAIN_CHECKPOINT] = 2
    with pytest.raises(KeyboardInterrupt):
        _train(crops, tmp_path, 3, lines)
    assert json.loads((tmp_path / TRAIN_TARGET).read_text()) == {"epochs": 3, "finished": False}
    assert not (tmp_path / "latents.csv").exists()
    stop.clear()
    record.clear()
    _train(crops, tmp_path, 3, lines)  # the same command again
    # the first fit trains its third epoch only (before: 3 more, to 5), then the second fit
    assert [e for f, e in record if f == TRAIN_CHECKPOINT] == [3]
    assert [e for f, e in record if f == CHECK_CHECKPOINT] == [1, 2, 3]
    assert load_json(tmp_path / "rvae_history.json")["epoch"] == [0, 1, 2]
    assert "finishing an interrupted run" in lines[-1] and "(2 of 3 epochs trained)" in lines[-1]
    assert load_json(tmp_path / TRAIN_TARGET) == {"epochs": 3, "finished": True}
    assert load_json(tmp_path / "rvae_diagnostics.json")["seed_agreement"]["epochs"] == 3
    # a finished run keeps the documented meaning: --epochs 2 trains 2 more
    record.clear()
    _train(crops, tmp_path, 2, lines)
    assert lines[-1].endswith("(3 epochs trained); training 2 more (to 5)")
    assert [e for f, e in record if f == CHECK_CHECKPOINT] == [4, 5]  # the second fit continues


def test_a_stop_in_the_second_fit_keeps_both_fits(crops, tmp_path, trained_epochs):
    record, stop = trained_epochs
    lines = []
    _train(crops, tmp_path / "whole", 3, lines)  # the uninterrupted run, for comparison
    whole = load_table(tmp_path / "whole" / "latents.csv")
    out = tmp_path / "stopped"
    stop[CHECK_CHECKPOINT] = 1
    with pytest.raises(KeyboardInterrupt):
        _train(crops, out, 3, lines)
    stop.clear()
    record.clear()
    _train(crops, out, 3, lines)
    assert [e for f, e in record if f == TRAIN_CHECKPOINT] == []  # the first fit is kept
    assert [e for f, e in record if f == CHECK_CHECKPOINT] == [2, 3]  # the second resumes
    assert lines[-1].endswith("(3 of 3 epochs trained); training 0 more (to 3), as started")
    again = load_table(out / "latents.csv")
    # the resumed run gives the uninterrupted run's angles (resume is exact on one machine)
    for key in ("angle", "angle_check"):
        np.testing.assert_allclose(again[key], whole[key], atol=1e-5)


def test_plan_training_modes(tmp_path):
    assert plan_training(tmp_path, 4, "more") == (0, 4, None)
    assert load_json(tmp_path / TRAIN_TARGET) == {"epochs": 4, "finished": False}
    # no checkpoint yet: an earlier stop before the first epoch does not hold the new total
    assert plan_training(tmp_path, 2, "more") == (0, 2, None)
    (tmp_path / CHECK_CHECKPOINT).write_bytes(b"stale")
    assert plan_training(tmp_path, 2, "fresh") == (0, 2, None)
    assert not (tmp_path / CHECK_CHECKPOINT).exists()
    (tmp_path / TRAIN_TARGET).write_text("not json")  # unreadable: a plain start
    assert plan_training(tmp_path, 5, "total") == (0, 5, None)
    with pytest.raises(ValueError, match="resume"):
        plan_training(tmp_path, 5, "again")
