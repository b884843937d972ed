"""Change point with uncertainty on time behaviours; angle peak counting."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.analysis.trajectories import latents_along_trajectories, longest_tracks
from pyrolatent.analysis.transitions import (
    angle_peaks_per_window,
    count_angle_peaks,
    transition_frame,
)


@pytest.mark.parametrize("planted,ramp", [(37, 1), (60, 6), (20, 10)])
def test_transition_frame_recovers_planted_onset(planted, ramp):
    rng = np.random.default_rng(planted)
    t = np.arange(100)
    s = np.clip((t - planted + 1) / ramp, 0, 1)
    y = np.abs(np.stack([1 - s, s], 1) + rng.normal(0, 0.05, (100, 2)))
    r = transition_frame(y, seed=1)
    assert abs(r["frame"] - planted) <= 1, r["frame"]
    assert r["interval"][0] <= r["frame"] <= r["interval"][1]
    assert 0 <= r["uncertainty"] < 3


def test_transition_uncertainty_grows_with_noise():
    t = np.arange(80)
    s = (t >= 40).astype(float)
    base = np.stack([1 - s, s], 1)
    sds = []
    for noise in (0.05, 0.6):
        y = np.abs(base + np.random.default_rng(3).normal(0, noise, base.shape))
        sds.append(transition_frame(y, normalise=False, seed=0)["uncertainty"])
    assert sds[1] > sds[0], sds


def test_transition_empty_frames_and_errors():
    t = np.arange(50)
    s = (t >= 25).astype(float)
    y = np.stack([1 - s, s], 1)
    y[10] = 0  # an empty frame is carried, not a crash
    assert abs(transition_frame(y)["frame"] - 25) <= 1
    with pytest.raises(ValueError, match="frames"):
        transition_frame(np.ones((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        transition_frame(np.full((20, 2), np.nan))


def _directions(deg, n, rng, jitter=4.0):
    c = np.deg2rad(rng.choice(deg, n))
    return np.angle(np.exp(1j * (c + np.deg2rad(rng.normal(0, jitter, n)))))


def test_count_angle_peaks_six_and_four():
    rng = np.random.default_rng(0)
    six = _directions(np.arange(0, 360, 60), 600, rng)
    four = _directions(np.arange(0, 360, 90) + 45, 400, rng)
    assert count_angle_peaks(six)["n_peaks"] == 6
    r = count_angle_peaks(four)
    assert r["n_peaks"] == 4
    # the peak near +-180 degrees is not split by the wrap
    assert count_angle_peaks(_directions([180], 200, rng))["n_peaks"] == 1
    assert count_angle_peaks(np.zeros(0))["n_peaks"] == 0


def test_angle_peaks_per_window():
    rng = np.random.default_rng(1)
    frames = np.repeat(np.arange(40), 30)
    ang = np.where(
        frames < 20,
        _directions(np.arange(0, 360, 60), frames.size, rng),
        _directions(np.arange(0, 360, 90), frames.size, rng),
    )
    r = angle_peaks_per_window(ang, frames, window=10)
    assert list(r["n_peaks"]) == [6, 6, 4, 4]
    with pytest.raises(ValueError, match="fewer than the window"):
        angle_peaks_per_window(ang, frames, window=50)


def test_latents_along_trajectories():
    traj = {
        "frame": np.array([0, 0, 1, 1, 2]),
        "track": np.array([0, 1, 1, 0, 0]),
        "particle": np.arange(5),
    }
    out = latents_along_trajectories(traj, {"angle": np.arange(5.0)}, min_length=3)
    assert list(out["frame"]) == [0, 1, 2] and list(out["angle"]) == [0.0, 3.0, 4.0]
    assert list(longest_tracks(traj, 1)) == [0]
    empty = latents_along_trajectories({k: v[:0] for k, v in traj.items()}, {"angle": np.zeros(0)})
    assert empty["track"].size == 0
