"""The second rVAE fit (``TrainConfig.check_seed``, on by default): does the workflow say
when the angles, or the transition they give, depend on the rVAE's seed?"""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.workflow import AnalyzeConfig, TrainConfig, analyze_latents
from pyrolatent.workflow.report_page import caveats, conclusions
from pyrolatent.workflow.seed_check import (
    ONSET_TOLERANCE,
    SEED_AGREEMENT,
    seed_note,
    transition_agreement,
)
from pyrolatent.workflow.steps import encode_crops


def test_the_note_fires_below_the_threshold_only():
    # measured: 0.71 on AFMReader's sample movie (seeds 0 and 1, transitions at frames
    # 72 and 26), 0.995 on the demo movie's crops
    assert seed_note({"angle_agreement": 0.995, "z_r2": 0.98}, 1) is None
    assert seed_note({"angle_agreement": None, "z_r2": 0.9}, 1) is None
    note = seed_note({"angle_agreement": 0.71, "z_r2": 0.98}, 1)
    assert "seed 1" in note and "0.71" in note and "transition" in note
    assert 0.71 < SEED_AGREEMENT < 0.995


def test_encode_crops_trains_a_second_seed_by_default_and_keeps_its_angles():
    rng = np.random.default_rng(0)
    crops = rng.random((64, 16, 16)).astype(np.float32)
    crops[:, 6:10, 4:12] += 2.0  # a bar
    index = {"frame": np.zeros(64, dtype=np.int64), "row": np.ones(64), "col": np.ones(64)}
    out = encode_crops(crops, index, TrainConfig(epochs=1, batch_size=32))
    agreement = out["diagnostics"]["seed_agreement"]
    assert agreement["seed"] == 1 and 0.0 <= agreement["angle_agreement"] <= 1.0
    assert agreement["epochs"] == out["rvae"].epochs_trained == 1
    assert (agreement["note"] is None) == (agreement["angle_agreement"] >= SEED_AGREEMENT)
    assert (agreement["note"] in out["diagnostics"]["warnings"]) or agreement["note"] is None
    second = out["latents"]["angle_check"]
    assert second.shape == (64,) and np.isfinite(second).all()
    assert not np.allclose(second, out["latents"]["angle"])  # another fit's angles
    plain = encode_crops(crops, index, TrainConfig(epochs=1, batch_size=32, check_seed=False))
    assert "seed_agreement" not in plain["diagnostics"] and "angle_check" not in plain["latents"]
    # a fit continued for one more epoch is compared with a second fit of two epochs in all
    more = encode_crops(crops, index, TrainConfig(epochs=1, batch_size=32), rvae=plain["rvae"])
    assert more["diagnostics"]["seed_agreement"]["epochs"] == 2


def _onsets(frame, u, detected=True, change=None):
    """(transition_frame's, detect_transition's) dicts; the change point at ``change`` +- 5."""
    at = frame if change is None else change
    found = {"time": at, "time_interval": (at - 5, at + 5)} if detected else {}
    return {"frame": frame, "uncertainty": u}, {"transition": detected, **found}


@pytest.mark.parametrize(
    ("first", "second", "agrees"),
    [
        (_onsets(30, 0.5), _onsets(30 + ONSET_TOLERANCE, 0.5), True),
        (_onsets(30, 0.5), _onsets(31 + ONSET_TOLERANCE, 0.5), False),
        (_onsets(72, 6.3), _onsets(26, 8.2), False),  # AFMReader's sample movie, seeds 0 / 1
        (_onsets(30, 6.0), _onsets(45, 6.0), True),  # within twice the combined s.d.
        (_onsets(30, 0.5), _onsets(30, 0.5, detected=False), False),
        (_onsets(30, 0.5, detected=False), _onsets(50, 0.5, detected=False), True),
        (_onsets(30, float("nan")), _onsets(32, float("nan")), True),
    ],
)
def test_transition_agreement(first, second, agrees):
    out = transition_agreement(first, second)
    assert out["transition_seed_agrees"] is agrees
    found = second[1]["transition"]
    assert out["transition_frame_check"] == (second[0]["frame"] if found else None)
    assert out["transition_change_frame_check"] == (second[1]["time"] if found else None)


def test_the_change_points_are_compared_too():
    # AFMReader's sample movie, seeds 0 / 1: NMF onsets 72 +- 6.3 and 26 +- 8.2, while the
    # one-regime test put its change point at frame 72 (63-78) and 72 (63-77)
    first = ({"frame": 72, "uncertainty": 6.3}, {"transition": True, "time": 72.0,
                                                  "time_interval": (63.0, 78.0)})  # fmt: skip
    second = ({"frame": 26, "uncertainty": 8.2}, {"transition": True, "time": 72.0,
                                                   "time_interval": (63.0, 77.0)})  # fmt: skip
    out = transition_agreement(first, second)
    assert not out["transition_seed_agrees"] and out["transition_change_seed_agrees"]
    assert out["transition_change_frame_check"] == 72
    assert out["transition_change_interval_check"] == [63, 77]
    # change points outside each other's interval and more than ONSET_TOLERANCE apart
    moved = _onsets(26, 8.2, change=26)
    assert not transition_agreement(first, moved)["transition_change_seed_agrees"]
    near = _onsets(26, 8.2, change=72 + ONSET_TOLERANCE)  # ONSET_TOLERANCE frames apart
    assert transition_agreement(first, near)["transition_change_seed_agrees"]
    assert not transition_agreement(first, _onsets(26, 8.2, detected=False))[
        "transition_change_seed_agrees"
    ]


def _latents(rng, check: str):
    """Angles with 3 peaks (0, 120, 240 deg) before frame 30 and 2 (0, 180 deg) from it on;
    ``angle_check``: the same turned by 1 rad with more noise, or one regime throughout."""
    frames, angles = np.repeat(np.arange(60), 40), []
    for t in range(60):
        peaks = [0.0, 2.0944, 4.1888] if t < 30 else [0.0, np.pi]
        angles.append(rng.choice(peaks, 40) + rng.normal(0, 0.1, 40))
    angle = np.angle(np.exp(1j * np.concatenate(angles)))
    if check == "same":
        second = angle + 1.0 + rng.normal(0, 0.1, angle.size)
    else:
        second = rng.choice([0.0, np.pi / 2], angle.size) + rng.normal(0, 0.1, angle.size)
    n = angle.size
    latents = {"frame": frames, "particle_id": np.arange(n), "angle": angle,
               "angle_check": np.angle(np.exp(1j * second)),
               "z_0": rng.normal(size=n), "z_1": rng.normal(size=n)}  # fmt: skip
    particles = {"frame": frames, "particle_id": np.arange(n), "row": rng.uniform(0, 200, n),
                 "col": rng.uniform(0, 200, n)}  # fmt: skip
    return latents, particles


@pytest.mark.parametrize("check", ["same", "one regime"])
def test_analysis_finds_the_transition_from_the_second_fit_too(check):
    latents, particles = _latents(np.random.default_rng(1), check)
    config = AnalyzeConfig(kde_window=1, nmf_method="map", nmf_steps=200)
    summary = analyze_latents(latents, particles, config=config)["summary"]
    assert summary["transition_detected"] and abs(summary["transition_frame"] - 30) <= 2
    assert abs(summary["transition_change_frame"] - 30) <= 2
    lo, hi = summary["transition_change_interval"]
    assert lo <= summary["transition_change_frame"] <= hi
    text = " ".join(conclusions(summary))
    if check == "same":
        assert summary["transition_seed_agrees"]
        assert abs(summary["transition_frame_check"] - 30) <= 2
        assert "A second rVAE fit (seed + 1) agrees" in text
        assert summary["transition_change_seed_agrees"]
    else:
        assert not summary["transition_seed_agrees"]
        assert summary["transition_frame_check"] is None
        assert "finds no transition: the transition depends on the rVAE's seed" in text
        assert not summary["transition_change_seed_agrees"]
        assert summary["transition_change_frame_check"] is None
    del latents["angle_check"]  # no second fit: no check keys, no sentence
    plain = analyze_latents(latents, particles, config=config)["summary"]
    assert "transition_seed_agrees" not in plain and "second rVAE" not in " ".join(
        conclusions(plain)
    )


def test_the_report_shows_the_seed_note():
    note = seed_note({"angle_agreement": 0.71, "z_r2": 0.98}, 1)
    diagnostics = {"collapsed": False, "warnings": [note], "angle_posterior_spread": 0.0}
    text = " ".join(caveats({"diagnostics": diagnostics}))
    assert "agrees with this one on the angles only 0.71" in text
    moved = {"transition_detected": True, "transition_frame": 72,
             "transition_frame_uncertainty": 6.3, "transition_frame_check": 26,
             "transition_frame_uncertainty_check": 8.2,
             "transition_seed_agrees": False}  # fmt: skip
    text = " ".join(conclusions(moved))
    assert "puts it at frame 26 (+- 8.2) instead: the transition depends" in text
    assert "change point" not in text
    # the one-regime test's change point agreed on that movie: the report says so
    moved |= {"transition_change_frame": 72, "transition_change_interval": [63, 78],
              "transition_change_frame_check": 72,
              "transition_change_seed_agrees": True}  # fmt: skip
    text = " ".join(conclusions(moved))
    assert "puts it at frame 26 (+- 8.2) instead: the NMF onset depends on the rVAE's seed" in text
    assert "change point does not: frame 72 (5-95 %: 63-78) from the first fit and frame 72" in text


def test_the_cli_option():
    from pyrolatent.cli_parser import build_parser, config_from_args

    argv = ["train", "crops.npy", "index.csv", "--out", "o"]
    assert config_from_args(TrainConfig, build_parser().parse_args(argv)).check_seed
    args = build_parser().parse_args([*argv, "--no-check-seed", "--clip-norm", "0"])
    config = config_from_args(TrainConfig, args)
    assert not config.check_seed and config.clip_norm == 0.0
