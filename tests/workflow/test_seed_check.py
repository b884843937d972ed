"""``TrainConfig(check_seed=True)``: a second rVAE fit says if the angles depend on the seed."""

from __future__ import annotations

import numpy as np

from pyrolatent.workflow import TrainConfig
from pyrolatent.workflow.report_page import caveats
from pyrolatent.workflow.seed_check import SEED_AGREEMENT, seed_note
from pyrolatent.workflow.steps import encode_crops


def test_the_note_fires_below_the_threshold_only():
    # measured: 0.71 on AFMReader's sample movie (seeds 0 and 1, transitions at frames
    # 72 and 26), 0.995 on the demo movie's crops
    assert seed_note({"angle_agreement": 0.995, "z_r2": 0.98}, 1) is None
    assert seed_note({"angle_agreement": None, "z_r2": 0.9}, 1) is None
    note = seed_note({"angle_agreement": 0.71, "z_r2": 0.98}, 1)
    assert "seed 1" in note and "0.71" in note and "transition" in note
    assert 0.71 < SEED_AGREEMENT < 0.995


def test_encode_crops_trains_a_second_seed_and_reports_it():
    rng = np.random.default_rng(0)
    crops = rng.random((64, 16, 16)).astype(np.float32)
    crops[:, 6:10, 4:12] += 2.0  # a bar
    index = {"frame": np.zeros(64, dtype=np.int64), "row": np.ones(64), "col": np.ones(64)}
    out = encode_crops(crops, index, TrainConfig(epochs=1, batch_size=32, check_seed=True))
    agreement = out["diagnostics"]["seed_agreement"]
    assert agreement["seed"] == 1 and 0.0 <= agreement["angle_agreement"] <= 1.0
    assert agreement["epochs"] == out["rvae"].epochs_trained == 1
    assert (agreement["note"] is None) == (agreement["angle_agreement"] >= SEED_AGREEMENT)
    assert (agreement["note"] in out["diagnostics"]["warnings"]) or agreement["note"] is None
    plain = encode_crops(crops, index, TrainConfig(epochs=1, batch_size=32))
    assert "seed_agreement" not in plain["diagnostics"]
    # a fit continued for one more epoch is compared with a second fit of two epochs in all
    more = encode_crops(crops, index, TrainConfig(epochs=1, batch_size=32, check_seed=True),
                        rvae=plain["rvae"])  # fmt: skip
    assert more["diagnostics"]["seed_agreement"]["epochs"] == 2


def test_the_report_shows_the_seed_note():
    note = seed_note({"angle_agreement": 0.71, "z_r2": 0.98}, 1)
    diagnostics = {"collapsed": False, "warnings": [note], "angle_posterior_spread": 0.0}
    text = " ".join(caveats({"diagnostics": diagnostics}))
    assert "agrees with this one on the angles only 0.71" in text


def test_the_cli_option():
    from pyrolatent.cli_parser import build_parser, config_from_args

    argv = ["train", "crops.npy", "index.csv", "--out", "o"]
    assert not config_from_args(TrainConfig, build_parser().parse_args(argv)).check_seed
    args = build_parser().parse_args([*argv, "--check-seed", "--clip-norm", "0"])
    config = config_from_args(TrainConfig, args)
    assert config.check_seed and config.clip_norm == 0.0
