"""AFM preprocessing in the workflow: the ``preprocess`` stage and command, flagged
frames left out of ``analyze`` (transition, KDEs) and named in the report's caveats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from afm_samples import synthetic_afm_movie

from pyrolatent.cli import main
from pyrolatent.io.files import load_json, load_npy, load_table, save_table
from pyrolatent.workflow import AnalyzeConfig, PreprocessConfig, analyze_latents

N_FRAMES = 40
ARTEFACTS = list(range(26, 40))  # the last 14 frames: scan artefacts


def _tables(seed: int = 0):
    """One regime (angles near 0 and 180 deg) in every frame, except that the frames
    ``ARTEFACTS`` hold garbage angles near +-90 deg: without exclusion, a 'transition'."""
    rng = np.random.default_rng(seed)
    frames, angles = [], []
    for t in range(N_FRAMES):
        centre = (
            rng.choice([-np.pi / 2, np.pi / 2], 30)
            if t in ARTEFACTS
            else rng.choice([0.0, np.pi], 30)
        )
        frames.append(np.full(30, t))
        angles.append(np.angle(np.exp(1j * (centre + rng.normal(0, 0.25, 30)))))
    frame, angle = np.concatenate(frames), np.concatenate(angles)
    n = frame.size
    pid = np.arange(n)
    particles = {
        "frame": frame,
        "row": rng.uniform(0, 200, n),
        "col": rng.uniform(0, 200, n),
        "particle_id": pid,
    }
    latents = {
        "frame": frame,
        "particle_id": pid,
        "angle": angle,
        "z_0": rng.normal(size=n),
        "z_1": rng.normal(size=n),
    }
    quality = {
        "frame": np.arange(N_FRAMES),
        "flagged": np.isin(np.arange(N_FRAMES), ARTEFACTS),
        "flag_lines": np.isin(np.arange(N_FRAMES), ARTEFACTS),
        "flag_saturation": np.zeros(N_FRAMES, bool),
    }
    return particles, latents, quality


CONFIG = AnalyzeConfig(kde_window=1, nmf_method="map", nmf_steps=50)


def test_flagged_frames_are_left_out_of_the_transition_and_kdes():
    particles, latents, quality = _tables()
    plain = analyze_latents(latents, particles, n_frames=N_FRAMES, config=CONFIG)
    # the artefact frames look like a change where they begin (the test can fail)
    assert plain["summary"]["transition_detected"]
    assert abs(plain["summary"]["transition_frame"] - ARTEFACTS[0]) <= 3
    res = analyze_latents(latents, particles, n_frames=N_FRAMES, config=CONFIG, quality=quality)
    s = res["summary"]
    assert not s["transition_detected"] and s["transition_frame"] is None
    assert s["excluded_frames"] == ARTEFACTS
    assert s["exclusion_reasons"] == {"lines": 14, "saturation": 0}
    assert s["n_frames"] == N_FRAMES
    assert res["kdes"]["angle"].shape[0] == N_FRAMES
    assert np.isnan(res["kdes"]["angle"][ARTEFACTS]).all()
    assert np.isfinite(res["kdes"]["angle"][: ARTEFACTS[0]]).all()
    assert res["loadings"].shape == (N_FRAMES, 2) and np.isnan(res["loadings"][ARTEFACTS]).all()
    assert res["loadings_band"].shape == (2, N_FRAMES, 2)
    # no transition: no onset, spread or interval in the summary; the fitted onset's
    # interval (in the result) is in movie frame numbers of kept frames
    assert s["transition_interval"] is None and s["transition_frame_uncertainty"] is None
    lo, hi = res["transition"]["interval"]
    assert 0 <= lo <= hi < ARTEFACTS[0]
    # trajectories keep every frame and every latent
    assert len(res["trajectories"]["frame"]) == len(particles["frame"])
    # a quality table that flags nothing changes nothing
    none = dict(quality, flagged=np.zeros(N_FRAMES, bool), flag_lines=np.zeros(N_FRAMES, bool))
    same = analyze_latents(latents, particles, n_frames=N_FRAMES, config=CONFIG, quality=none)
    assert same["summary"]["transition_frame"] == plain["summary"]["transition_frame"]
    np.testing.assert_allclose(same["kdes"]["angle"], plain["kdes"]["angle"])
    with pytest.raises(ValueError, match="outside"):
        analyze_latents(latents, particles, n_frames=20, config=CONFIG, quality=quality)


def test_preprocess_command_then_analyze_and_report(tmp_path, capsys):
    import tifffile

    streaky = (4, 13, 17)
    _, raw, _ = synthetic_afm_movie(n_frames=20, size=96, streaks=streaky, seed=5)
    tifffile.imwrite(tmp_path / "movie.tif", raw.astype(np.float32))  # read lazily
    run = tmp_path / "run"
    argv = ["preprocess", str(tmp_path / "movie.tif"), "--level", "quadratic", "--out", str(run)]
    assert main(argv) == 0
    corrected = load_npy(run / "preprocessed.npy")
    assert corrected.shape == raw.shape and corrected.dtype == np.float32
    quality = load_table(run / "frame_quality.csv")
    assert np.flatnonzero(quality["flagged"]).tolist() == list(streaky)
    info = load_json(run / "preprocess.json")
    assert info["flagged_frames"] == list(streaky) and info["config"]["level"] == "quadratic"
    assert info["config"] == {"level": "quadratic", "scan_lines": "median", "z_threshold": 3.5}
    with pytest.raises(ValueError, match="level"):
        PreprocessConfig(level="tilt")

    # analyze picks up frame_quality.csv beside the latents; the report names the frames
    particles, latents, q = _tables()
    save_table(run / "particles.csv", particles)
    save_table(run / "latents.csv", latents)
    save_table(run / "frame_quality.csv", q)
    common = ["--nmf", "map", "--nmf-steps", "50", "--kde-window", "1", "--quiet"]
    lat, par = str(run / "latents.csv"), str(run / "particles.csv")
    assert main(["analyze", lat, par, "--out", str(run), *common]) == 0
    analysis = json.loads((run / "analysis.json").read_text())
    assert analysis["excluded_frames"] == ARTEFACTS and not analysis["transition_detected"]
    assert main(["report", str(run)]) == 0
    text = (run / "report.md").read_text()
    assert "14 frames were excluded from the analysis" in text
    assert "14 scan-line artefacts" in text and "use the other 26 frames" in text
    # --keep-flagged analyses every frame
    keep = tmp_path / "keep"
    assert main(["analyze", lat, par, "--out", str(keep), "--keep-flagged", *common]) == 0
    assert "excluded_frames" not in json.loads((keep / "analysis.json").read_text())
    capsys.readouterr()
