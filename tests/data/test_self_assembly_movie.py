"""The synthetic HS-AFM self-assembly movie matches its ground truth and its design."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie, true_links


@pytest.fixture(scope="module")
def movie():
    return make_self_assembly_movie(n_frames=60, size=192, n_particles=30, seed=3)


def _peaks(angles_deg, period, n_bins):
    hist, _ = np.histogram(np.mod(angles_deg, period), bins=n_bins, range=(0, period))
    return hist


def test_shapes_types_and_determinism(movie):
    assert movie.frames.shape == (60, 192, 192) and movie.frames.dtype == np.float32
    assert movie.masks.shape == movie.frames.shape and movie.masks.dtype == np.int32
    assert movie.transition_frame == 30
    again = make_self_assembly_movie(n_frames=60, size=192, n_particles=30, seed=3)
    np.testing.assert_array_equal(again.frames, movie.frames)
    other = make_self_assembly_movie(n_frames=60, size=192, n_particles=30, seed=4)
    assert not np.array_equal(other.frames, movie.frames)
    counts = np.bincount(movie.particles["frame"], minlength=60)
    assert 15 <= counts.mean() <= 45


def test_masks_centres_and_angles_agree_with_the_table(movie):
    p = movie.particles
    errors, aspect = [], []
    for f in (0, 45):
        for region in regionprops(movie.masks[f]):
            row = np.flatnonzero((p["frame"] == f) & (p["id"] == region.label))
            assert len(row) == 1, "every mask label is one particle of that frame"
            r, c = region.centroid
            r0, c0 = p["row"][row[0]], p["col"][row[0]]
            if min(r0, c0, 191 - r0, 191 - c0) < 13:  # may be truncated at the frame edge
                continue
            # the centroid is shifted towards the wider head by < 1 px
            assert np.hypot(r - r0, c - c0) < 1.5
            axis = region.orientation - np.pi / 2  # skimage -> CCW from +x
            d = np.angle(np.exp(2j * (axis - p["axis_angle"][row[0]]))) / 2
            errors.append(abs(np.rad2deg(d)))
            aspect.append(region.axis_major_length / region.axis_minor_length)
    assert np.median(errors) < 2.0
    assert 4.0 < np.median(aspect) < 6.5


def test_head_is_wider_and_brighter_than_tail(movie):
    p = movie.particles
    sel = np.flatnonzero(p["frame"] == 5)[:10]
    for k in sel:
        a, r0, c0 = p["angle"][k], p["row"][k], p["col"][k]
        direction = np.array([-np.sin(a), np.cos(a)])  # (row, col) of the CCW angle
        head = np.rint(np.array([r0, c0]) + 7 * direction).astype(int)
        tail = np.rint(np.array([r0, c0]) - 7 * direction).astype(int)
        if not (
            np.all(head >= 0) and np.all(head < 192) and np.all(tail >= 0) and np.all(tail < 192)
        ):
            continue
        assert movie.clean[5][tuple(head)] > movie.clean[5][tuple(tail)] + 0.15


def test_six_directions_before_and_four_after_the_transition():
    m = make_self_assembly_movie(n_frames=80, size=256, seed=0)
    p, t = m.particles, m.transition_frame
    before = np.rad2deg(p["angle"][p["frame"] < t])
    after = np.rad2deg(p["angle"][p["frame"] >= t + 20])
    # 30-degree bins centred on multiples of 30: bin k covers [30k - 15, 30k + 15)
    hist_b = _peaks(before + 15, 360, 12)
    hist_a = _peaks(after + 15, 360, 12)
    on_60 = hist_b[::2].sum() / hist_b.sum()
    on_90 = hist_a[[0, 3, 6, 9]].sum() / hist_a.sum()
    assert on_60 > 0.9, f"{on_60:.2f} of the angles near 0, 60, ..., 300 before T"
    assert on_90 > 0.9, f"{on_90:.2f} of the angles near 0, 90, 180, 270 after T"
    assert np.all(hist_b[::2] > 0.05 * hist_b.sum()), "all 6 directions are populated"
    assert np.all(hist_a[[0, 3, 6, 9]] > 0.05 * hist_a.sum()), "all 4 directions populated"
    # 90 and 270 are empty before T; 60 and 120 are empty well after T
    assert (hist_b[3] + hist_b[9]) / hist_b.sum() < 0.05
    assert (hist_a[2] + hist_a[4]) / hist_a.sum() < 0.05


def test_particles_land_leave_and_move_little_between_frames(movie):
    p = movie.particles
    first = {i: f for f, i in zip(p["frame"][::-1], p["id"][::-1], strict=True)}
    assert any(f > 0 for f in first.values()), "some particles land after frame 0"
    last = {i: f for f, i in zip(p["frame"], p["id"], strict=True)}
    assert any(f < 59 for f in last.values()), "some particles leave before the end"
    links = true_links(p)
    assert len(links) > 0.9 * len(p["frame"]) * 0.9
    key = {(f, i): k for k, (f, i) in enumerate(zip(p["frame"], p["id"], strict=True))}
    steps = [
        np.hypot(
            p["row"][key[(f + 1, i)]] - p["row"][key[(f, i)]],
            p["col"][key[(f + 1, i)]] - p["col"][key[(f, i)]],
        )
        for f, i, _ in links
    ]
    assert np.percentile(steps, 99) < 5.0


def test_afm_artefacts_are_present(movie):
    background = movie.masks[0] == 0
    resid = (movie.frames[0] - movie.clean[0])[background]
    assert 0.05 < resid.std() < 0.2  # Gaussian noise plus scan-line offsets
    # scan-line offsets: rows differ in their mean background level
    row_means = np.array(
        [(movie.frames[0] - movie.clean[0])[r][background[r]].mean() for r in range(192)]
    )
    assert row_means.std() > 0.03
    with pytest.raises(ValueError):
        make_self_assembly_movie(n_frames=10, transition_frame=20)


def test_head_contrast_sets_how_visible_the_polarity_is():
    def head_minus_tail(contrast):
        m = make_self_assembly_movie(
            n_frames=2,
            size=128,
            n_particles=10,
            seed=2,
            head_width_ratio=2.0,
            head_contrast=contrast,
        )
        p, diffs = m.particles, []
        for k in np.flatnonzero(p["frame"] == 0):
            a, r0, c0 = p["angle"][k], p["row"][k], p["col"][k]
            direction = np.array([-np.sin(a), np.cos(a)])
            head = np.rint(np.array([r0, c0]) + 7 * direction).astype(int)
            tail = np.rint(np.array([r0, c0]) - 7 * direction).astype(int)
            if (
                np.all(head >= 0)
                and np.all(head < 128)
                and np.all(tail >= 0)
                and np.all(tail < 128)
            ):
                diffs.append(m.clean[0][tuple(head)] - m.clean[0][tuple(tail)])
        return np.median(diffs)

    weak, strong = head_minus_tail(0.45), head_minus_tail(0.9)
    assert strong > weak + 0.2 and weak > 0.1
    with pytest.raises(ValueError, match="head_contrast"):
        make_self_assembly_movie(n_frames=2, size=64, head_contrast=-0.1)
