"""AFM levelling, scan-line correction and frame quality flags.

Synthetic frames come from tests/afm_samples.py's generator, written
independently of the correction code: Gaussian particles on a flat background
with white noise (the clean image), plus a tilted (and bowed) plane, one random
offset per scan line and, in chosen frames, streaks (partial lines of large
height). The real frames are AFMReader's sample files (same module).
"""

from __future__ import annotations

import numpy as np
import pytest
from afm_samples import NOISE, samples, synthetic_afm_movie  # noqa: F401  (fixture)

from pyrolatent.data.afm import correct_scan_lines, level_plane, preprocess_afm
from pyrolatent.data.afm_quality import frame_quality, robust_z


def _rms_vs_clean(corrected, clean) -> float:
    """RMS difference after removing each frame's median offset (the background level)."""
    diff = corrected - clean
    diff -= np.median(diff, axis=(-2, -1), keepdims=True)
    return float(np.sqrt(np.mean(diff**2)))


def test_preprocess_recovers_the_clean_frames():
    clean, raw, tilt = synthetic_afm_movie(n_frames=6)
    before = _rms_vs_clean(raw, clean)
    corrected, quality = preprocess_afm(raw, order=1, scan_lines="median")
    after = _rms_vs_clean(corrected, clean)
    assert corrected.shape == raw.shape and corrected.dtype == np.float64
    # planted: slopes over 128 px (tilt range >= 5 nm) and 0.5 nm row offsets
    assert tilt > 5.0 and before > 1.0
    # residual below 1 % of the planted tilt range and below half the pixel noise
    assert after < 0.01 * tilt, (after, tilt)
    assert after < 0.5 * NOISE, after
    assert not quality["flagged"].any()


def test_robust_levelling_beats_plain_least_squares_under_particles():
    clean, raw, tilt = synthetic_afm_movie(n_frames=4, offsets=0.0, jump=0.0, bow=0.5, seed=1)
    levelled = level_plane(raw, order=2)
    # plain least squares on every pixel (particles included), written independently
    size = raw.shape[-1]
    yy, xx = np.mgrid[0:size, 0:size].astype(float).reshape(2, -1)
    design = np.stack([np.ones_like(xx), xx, yy, xx**2, xx * yy, yy**2], 1)
    plain = np.stack(
        [f - (design @ np.linalg.lstsq(design, f.ravel(), rcond=None)[0]).reshape(f.shape)
         for f in raw]
    )  # fmt: skip
    robust_err, plain_err = _rms_vs_clean(levelled, clean), _rms_vs_clean(plain, clean)
    assert robust_err < 0.01 * tilt and robust_err < 0.3 * NOISE, robust_err
    assert robust_err < 0.5 * plain_err, (robust_err, plain_err)


@pytest.mark.parametrize(("method", "max_fraction"), [("median", 0.05), ("median_diff", 0.3)])
def test_scan_line_correction_removes_row_offsets(method, max_fraction):
    clean, raw, _ = synthetic_afm_movie(n_frames=4, seed=2)
    # the planted background of the first column: row offsets and a tilt along y
    # (which row offsets absorb), the same in every column
    rows_only = clean + (raw - clean)[:, :, :1]
    before = _rms_vs_clean(rows_only, clean)
    after = _rms_vs_clean(correct_scan_lines(rows_only, method=method), clean)
    assert after < max_fraction * before, (method, after, before)


def test_quality_flags_the_streak_frames_only():
    streaky = (3, 11, 17)
    _, raw, _ = synthetic_afm_movie(n_frames=20, streaks=streaky, seed=3)
    corrected, quality = preprocess_afm(raw)
    assert np.flatnonzero(quality["flagged"]).tolist() == list(streaky)
    assert quality["flag_lines"][list(streaky)].all()
    assert not quality["flag_saturation"].any()
    assert set(quality) >= {"frame", "line_ratio", "streak_fraction", "saturation_fraction"}
    # block by block (7 frames at a time): the same frames and flags (z against the whole movie)
    blocked, quality_blocked = preprocess_afm(raw, block=7)
    np.testing.assert_allclose(blocked, corrected)
    for key, column in quality.items():
        np.testing.assert_allclose(quality_blocked[key], column, err_msg=key)
    # a frame clipped at its 80th percentile height: 20 % of its pixels saturated
    clipped = raw.copy()
    clipped[7] = np.minimum(clipped[7], np.percentile(clipped[7], 80))
    q = frame_quality(correct_scan_lines(clipped), raw=clipped)
    assert q["flag_saturation"].tolist() == [t == 7 for t in range(20)]
    assert q["saturation_fraction"][7] == pytest.approx(0.2, abs=0.01)


def test_robust_z_and_input_checks():
    z = robust_z([1.0, 1.0, 1.0, 2.0, 1.0])
    assert z.tolist()[:3] == [0.0, 0.0, 0.0] and np.isinf(z[3])
    with pytest.raises(ValueError, match="NaN"):
        level_plane(np.full((2, 8, 8), np.nan))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        level_plane(np.zeros(8))
    with pytest.raises(ValueError, match="order"):
        level_plane(np.zeros((8, 8)), order=4)
    with pytest.raises(ValueError, match="method"):
        correct_scan_lines(np.zeros((8, 8)), method="mean")
    with pytest.raises(ValueError, match="mask"):
        level_plane(np.zeros((2, 8, 8)), mask=np.zeros((4, 4), bool))
    single = level_plane(np.arange(64.0).reshape(8, 8).astype(np.float32))
    assert single.shape == (8, 8) and single.dtype == np.float32
    assert np.abs(single).max() < 1e-4  # a plane is removed exactly


def _slope(frame) -> float:
    """Background slope (per pixel) of a plane fitted to the pixels within 3 MAD."""
    frame = frame[::4, ::4]  # a 4-pixel grid: enough pixels for three numbers
    h, w = frame.shape
    yy, xx = 4.0 * np.mgrid[0:h, 0:w].reshape(2, -1)
    design, z = np.stack([np.ones_like(xx), xx, yy], 1), frame.ravel().astype(float)
    keep = np.ones(z.size, bool)
    for _ in range(5):
        coef = np.linalg.lstsq(design[keep], z[keep], rcond=None)[0]
        r = z - design @ coef
        med = np.median(r[keep])
        keep = np.abs(r - med) < 3 * 1.4826 * np.median(np.abs(r[keep] - med))
    return float(np.hypot(coef[1], coef[2]))


def _row_offset_metric(frame) -> float:
    """RMS of the medians of the differences between adjacent rows."""
    return float(np.sqrt(np.mean(np.median(np.diff(frame.astype(float), axis=0), axis=1) ** 2)))


def test_real_afm_frame_is_levelled(samples):  # noqa: F811
    from pyrolatent.io.movie_formats import open_movie

    frame = open_movie(samples / "sample_0.spm")[0]  # 1024 x 1024, DNA on mica, nm
    corrected, _ = preprocess_afm(frame)
    assert _slope(corrected) < 0.01 * _slope(frame), (_slope(frame), _slope(corrected))
    assert _row_offset_metric(corrected) < 0.4 * _row_offset_metric(frame)


def test_real_hs_afm_movie_flags(samples):  # noqa: F811
    from pyrolatent.io.movie_formats import open_movie

    # sample_0.asd: frames 0-12 and 141 are blank (saturated), 32-34 and 39-42 are
    # smeared by scan-line artefacts (checked by eye), 26-31, 35-38, 43-70 are clean
    movie = open_movie(samples / "sample_0.asd")
    picked = [0, 1, 141, *range(26, 71)]
    _, quality = preprocess_afm(movie[picked])
    flagged = {picked[i] for i in np.flatnonzero(quality["flagged"])}
    assert {0, 1, 141} <= flagged
    smeared = {32, 33, 34, 39, 40, 41, 42}
    assert len(flagged & smeared) >= 6, sorted(flagged)
    assert flagged <= {0, 1, 141} | smeared, sorted(flagged)
