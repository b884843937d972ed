"""Particles cut by the frame edge are left out of the angle analysis.

A particle cut by the edge shows a part of itself; which part, and so its
centroid, axis and head/tail, changes as it moves. In the transitions benchmark
(``benchmarks/transitions.py``, seed 3, no planted transition) the rods cut by
the left and bottom edges flipped head/tail from frame 15 on and made the
one-regime test reject (p 0.001); without them p 0.31.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.workflow import steps
from pyrolatent.workflow.configs import AnalyzeConfig
from pyrolatent.workflow.exclusion import drop_border_particles
from pyrolatent.workflow.report_page import caveats

CONFIG = dict(nmf_steps=200, nmf_method="map")


def _movie_with_cut_particles(n_frames=60, inside=40, cut=6, seed=0):
    """One regime of 6 orientations inside the frame; ``cut`` particles per frame on the
    edge whose angles turn by 180 deg at frame 30 (the other end became visible)."""
    rng = np.random.default_rng(seed)
    six = np.deg2rad(np.arange(-180, 180, 60))
    rows = []
    for f in range(n_frames):
        a_in = rng.choice(six, inside) + rng.normal(0, 0.12, inside)
        a_cut = np.linspace(0.2, 1.4, cut) + (np.pi if f >= 30 else 0.0)
        a_cut = a_cut + rng.normal(0, 0.05, cut)
        rows.append(
            (np.full(inside + cut, f), np.r_[a_in, a_cut], np.r_[[False] * inside, [True] * cut])
        )
    frames, angle, border = (np.concatenate(c) for c in zip(*rows, strict=True))
    n = frames.size
    particles = {"particle_id": np.arange(n), "frame": frames, "touches_border": border}
    particles["row"], particles["col"] = rng.uniform(0, 500, (2, n))
    latents = {"particle_id": np.arange(n), "frame": frames, "angle": np.angle(np.exp(1j * angle))}
    latents["z_0"], latents["z_1"] = rng.normal(size=(2, n))
    return latents, particles


def test_cut_particles_do_not_make_a_transition():
    # seeds 0-4 of this recipe (no training; only the SVD, the KDE and the null's draws):
    # without the cut particles p 0.009 (frame 0 isolated; not detected) / 0.85 / 0.68 / 0.53 /
    # 0.91; with them p 0.000 and a change point at frames 27 / 30 / 30 / 30 / 28
    latents, particles = _movie_with_cut_particles(seed=1)
    kept = steps.analyze_latents(latents, particles, config=AnalyzeConfig(**CONFIG))
    summary = kept["summary"]
    assert not summary["transition_detected"] and summary["transition_p_value"] > 0.05
    assert summary["angle_peaks_all"] == 6
    assert (summary["border_particles_excluded"], summary["border_particles_total"]) == (360, 2760)
    assert "360 of 2760 detections (13 %) are particles cut by the frame edge" in " ".join(
        caveats(summary)
    )
    # the trajectories keep every particle and its angle
    assert np.isfinite(kept["trajectories"]["angle"]).sum() == 2760
    # with the cut particles, their flip at frame 30 is taken for a transition
    config = AnalyzeConfig(**CONFIG, exclude_border=False)
    summary = steps.analyze_latents(latents, particles, config=config)["summary"]
    assert summary["transition_detected"] and abs(summary["transition_change_frame"] - 30) <= 3
    assert "border_particles_excluded" not in summary


def test_drop_border_particles_rows_and_bad_input():
    latents = {"particle_id": np.array([5, 3, 9]), "frame": np.array([0, 0, 1])}
    particles = {
        "particle_id": np.array([3, 5, 7, 9]),
        "touches_border": [True, False, True, False],
    }
    kept, summary = drop_border_particles(latents, particles)
    assert kept["particle_id"].tolist() == [5, 9]  # joined on particle_id, not row order
    assert summary == {"border_particles_excluded": 1, "border_particles_total": 3}
    old = {k: v for k, v in particles.items() if k != "touches_border"}  # a table from before
    kept, summary = drop_border_particles(latents, old)
    assert kept is latents and summary["border_particles_excluded"] is None
    assert caveats(summary) == [] or "cut by the frame edge" not in " ".join(caveats(summary))
    with pytest.raises(ValueError, match="expected bool"):
        drop_border_particles(latents, {**particles, "touches_border": [2, 0, 0, 0]})
    with pytest.raises(ValueError, match="exclude_border=False"):
        drop_border_particles(latents, {**particles, "touches_border": [True] * 4})


def test_cli_analyze_leaves_cut_particles_out_unless_told(tmp_path):
    from pyrolatent.cli import main
    from pyrolatent.io.files import load_json, save_table

    latents, particles = _movie_with_cut_particles(seed=1)
    lat, par = str(tmp_path / "latents.csv"), str(tmp_path / "particles.csv")
    save_table(lat, latents)
    save_table(par, particles)  # touches_border as True/False
    common = ["--nmf", "map", "--nmf-steps", "200"]
    detected = {}
    for name, extra in (("default", []), ("keep", ["--keep-border"])):
        out = tmp_path / name
        assert main(["analyze", lat, par, "--out", str(out), "--quiet", *common, *extra]) == 0
        detected[name] = load_json(out / "analysis.json")["transition_detected"]
    assert detected == {"default": False, "keep": True}


def test_frames_keep_their_count_when_only_cut_particles_are_in_the_last():
    from pyrolatent.workflow.exclusion import rows_to_analyse

    latents = {"particle_id": np.arange(4), "frame": np.array([0, 1, 1, 2])}
    particles = {"particle_id": np.arange(4), "touches_border": [False, False, False, True]}
    quality = {"frame": np.arange(3), "flagged": [True, False, False], "flag_lines": [1, 0, 0]}
    kept_rows, kept, summary, n_frames = rows_to_analyse(latents, particles, quality, None)
    # frame 2 holds only a cut particle: still a frame of the movie (an empty row), not dropped
    assert n_frames == 3 and kept.tolist() == [1, 2]
    assert kept_rows["particle_id"].tolist() == [1, 2]
    assert summary["excluded_frames"] == [0] and summary["border_particles_excluded"] == 1
    _, kept, _, n_frames = rows_to_analyse(latents, particles, None, None)
    assert n_frames == 3 and kept.tolist() == [0, 1, 2]
    rows, _, summary, n_frames = rows_to_analyse(
        latents, particles, None, None, exclude_border=False
    )
    assert n_frames == 3 and len(rows["frame"]) == 4 and "border_particles_excluded" not in summary
