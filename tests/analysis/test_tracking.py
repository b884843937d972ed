"""Tests of trajectory linking and track statistics on tables with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.analysis.tracking import link, mean_squared_displacement, track_statistics


def _table(rows):
    frame, row, col, truth = zip(*rows, strict=True)
    return {
        "frame": np.array(frame),
        "row": np.array(row, float),
        "col": np.array(col, float),
        "truth": np.array(truth),
    }


def _same_partition(tracks, truth):
    pairs = set(zip(tracks.tolist(), truth.tolist(), strict=True))
    return len(pairs) == len(set(tracks.tolist())) == len(set(truth.tolist()))


def test_optimal_assignment_beats_greedy_and_is_exclusive():
    # Greedy nearest-neighbour would give B's particle to A (distance 2 < 3) and then
    # leave B unlinked; the optimal assignment links both (total 3 + 3 < 2 + far).
    rows = [
        (0, 10, 10, "A"),
        (0, 10, 15, "B"),
        (1, 10, 13, "A"),  # 3 from A, 2 from B
        (1, 10, 18, "B"),  # 3 from B, 8 from A
    ]
    t = link(_table(rows), search_radius=6)
    assert _same_partition(t["track"], t["truth"])
    # each particle belongs to exactly one track, each track has one particle per frame
    for f in (0, 1):
        sel = t["frame"] == f
        assert len(set(t["track"][sel].tolist())) == sel.sum()


def test_tracks_start_in_any_frame_and_radius_is_respected():
    rows = [(0, 5, 5, 0), (1, 5, 6, 0), (2, 5, 7, 0), (1, 50, 50, 1), (2, 51, 50, 1)]
    rows += [(2, 5, 40, 2)]  # far from everything: its own track
    t = link(_table(rows), search_radius=5)
    assert _same_partition(t["track"], t["truth"])
    stats = track_statistics(t)
    assert sorted(stats["length"].tolist()) == [1, 2, 3]
    assert sorted(stats["start"].tolist()) == [0, 1, 2]


def test_gap_closing_bridges_missing_frames_only_when_allowed():
    rows = [(0, 5, 5, 0), (1, 5, 6, 0), (3, 5, 8, 0), (4, 5, 9, 0)]  # frame 2 missing
    no_gap = link(_table(rows), search_radius=4, max_gap=0)
    assert len(set(no_gap["track"].tolist())) == 2
    with_gap = link(_table(rows), search_radius=4, max_gap=1)
    assert len(set(with_gap["track"].tolist())) == 1
    stats = track_statistics(with_gap)
    assert stats["n_gaps"].tolist() == [1] and stats["length"].tolist() == [4]


def test_random_walkers_are_linked_and_msd_is_diffusive():
    rng = np.random.default_rng(0)
    n, frames, sigma = 60, 40, 0.7
    # walkers start on a grid (40-60 px apart) so that they never come close
    start = np.stack(np.meshgrid(np.arange(6) * 60.0, np.arange(10) * 40.0), -1).reshape(-1, 2)
    steps = rng.normal(0, sigma, size=(frames, n, 2))
    steps[0] = 0
    pos = start[None] + np.cumsum(steps, axis=0)
    f, i = np.meshgrid(np.arange(frames), np.arange(n), indexing="ij")
    keep = rng.random(f.shape) > 0.05  # 5% missed detections
    table = {
        "frame": f[keep],
        "row": pos[..., 0][keep],
        "col": pos[..., 1][keep],
        "truth": i[keep],
    }
    shuffle = rng.permutation(len(table["frame"]))
    table = {k: v[shuffle] for k, v in table.items()}
    t = link(table, search_radius=10, max_gap=2)
    assert _same_partition(t["track"], t["truth"])
    msd = mean_squared_displacement(t, max_lag=5)
    # steps of std sigma in row and col: MSD(lag) = 2 sigma^2 lag
    expected = 2 * sigma**2 * msd["lag"]
    np.testing.assert_allclose(msd["msd"], expected, rtol=0.15)
    stats = track_statistics(t)
    assert np.nanmean(stats["msd1"]) == pytest.approx(2 * sigma**2, rel=0.15)


def test_link_refuses_bad_tables_and_handles_empty():
    with pytest.raises(ValueError, match="missing"):
        link({"frame": np.array([0]), "row": np.array([1.0])})
    with pytest.raises(ValueError, match="NaN"):
        link({"frame": np.array([0]), "row": np.array([np.nan]), "col": np.array([1.0])})
    empty = {"frame": np.zeros(0, int), "row": np.zeros(0), "col": np.zeros(0)}
    t = link(empty)
    assert len(t["track"]) == 0
    assert len(track_statistics(t)["track"]) == 0
