"""detect_transition: says "no" on one regime, finds a planted change, checks inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.analysis.change_detection import detect_transition

GRID = np.linspace(-np.pi, np.pi, 90, endpoint=False)


def _rows(weights, centres, width=0.15):
    """``(T, G)`` mixtures of wrapped bumps with per-frame weights ``(T, P)``."""
    d = np.angle(np.exp(1j * (GRID[None] - np.asarray(centres)[:, None])))
    bumps = np.exp(-0.5 * (d / width) ** 2)  # (P, G)
    return weights @ bumps


def _ar1(rng, t, k, phi=0.6):
    z = np.zeros((t, k))
    for i in range(1, t):
        z[i] = phi * z[i - 1] + rng.normal(0, 1, k)
    return z


def _one_regime(seed, t=60):
    rng = np.random.default_rng(seed)
    weights = np.exp(0.3 * _ar1(rng, t, 6))  # fluctuating populations of 6 directions
    return _rows(weights, np.deg2rad(np.arange(0, 360, 60)))


def test_one_regime_is_reported_as_no_transition_at_the_stated_rate():
    alarms = [
        detect_transition(_one_regime(s), false_alarm=0.05, seed=s, n_null=300)["transition"]
        for s in range(20)
    ]
    # nominal 5% (measured 4 of 100 such series): 1 of 20 expected; 5 or more would
    # have probability 0.3% under the nominal rate
    assert sum(alarms) <= 4, sum(alarms)


@pytest.mark.parametrize("onset", [18, 35])
def test_planted_change_is_found_at_its_onset(onset):
    rng = np.random.default_rng(onset)
    t = 60
    weights = np.exp(0.3 * _ar1(rng, t, 10))
    ramp = np.clip((np.arange(t) - onset + 1) / 6, 0, 1)[:, None]  # over 6 frames
    weights[:, :6] *= 1 - ramp  # six directions fade ...
    weights[:, 6:] *= ramp  # ... four appear
    centres = np.deg2rad(np.r_[np.arange(0, 360, 60), np.arange(0, 360, 90) + 45])
    res = detect_transition(_rows(weights, centres), frame_times=0.5 * np.arange(t))
    assert res["transition"] and res["statistic"] > res["threshold"]
    assert abs(res["frame"] - onset) <= 2, res["frame"]
    lo, hi = res["interval"]
    assert lo <= res["frame"] <= hi
    assert res["time"] == pytest.approx(0.5 * res["frame"])
    assert res["p_value"] < 0.01


def test_empty_frames_are_skipped_and_inputs_checked():
    x = _one_regime(0, t=30)
    x[5] = 0.0
    res = detect_transition(x)
    assert set(res) >= {"transition", "frame", "interval", "statistic", "threshold"}
    assert res["transition"] is False and res["frame"] is None
    with pytest.raises(ValueError, match="non-negative"):
        detect_transition(-x)
    with pytest.raises(ValueError, match="frames with mass"):
        detect_transition(x[:5])
    with pytest.raises(ValueError, match="false_alarm"):
        detect_transition(x, false_alarm=0.0)
    with pytest.raises(ValueError, match="frame_times"):
        detect_transition(x, frame_times=np.arange(3))


@pytest.mark.parametrize("seed", [2, 5])
def test_one_odd_frame_is_not_a_transition(seed):
    # one regime whose first frame is one direction only (a bad first frame): the test
    # without its isolated-frame check rejects (p 0.000 / 0.006 for seeds 2 / 5; of seeds
    # 0-5 with the odd frame at 0, 1, 15 or 29 these two are the ones it rejects)
    x = _one_regime(seed, t=30)
    odd = _rows(np.ones((1, 1)), [np.deg2rad(30)])[0]
    x[0] = odd * x[0].sum() / odd.sum()
    assert detect_transition(x, isolated=False)["transition"]
    res = detect_transition(x, frame_times=np.arange(30) + 100)
    assert not res["transition"] and res["frame"] is None
    assert res["isolated_frame"] == 100 and res["p_value_without_isolated"] > 0.05
    assert res["p_value"] <= 0.01  # the full test's own p-value is kept


def test_a_planted_change_survives_the_isolated_frame_check():
    rng = np.random.default_rng(7)
    t, onset = 40, 20
    weights = np.exp(0.3 * _ar1(rng, t, 10))
    step = (np.arange(t) >= onset)[:, None]
    weights[:, :6] *= ~step
    weights[:, 6:] *= step
    centres = np.deg2rad(np.r_[np.arange(0, 360, 60), np.arange(0, 360, 90) + 45])
    res = detect_transition(_rows(weights, centres))
    assert res["transition"] and abs(res["frame"] - onset) <= 1
    assert res["isolated_frame"] is not None and res["p_value_without_isolated"] < 0.01


def test_the_isolated_frame_search_in_blocks_matches_one_block():
    from pyrolatent.analysis.change_detection import _isolated_row

    rng = np.random.default_rng(0)
    for t, odd in ((9, 0), (37, 12), (300, 299), (300, 150)):
        x = rng.random((t, 40))
        x[odd] += 3.0
        assert _isolated_row(x, block=7) == _isolated_row(x, block=10**6) == odd
