"""The report's words: conclusions first, caveats, rounded numbers with units, methods."""

import re

from pyrolatent.workflow.report import FIGURES, summarize
from pyrolatent.workflow.report_page import (
    caveats,
    conclusions,
    format_quantity,
    render_html,
    render_markdown,
)

SUMMARY = {
    "planted_transition_frame": 90,
    "transition_frame": 91,
    "transition_frame_uncertainty": 1.2345678,
    "transition_interval": [89, 93],
    "angle_peaks_before": 6,
    "angle_peaks_after": 4,
    "angle_peak_positions_before_deg": [-179.6, -120.2, -60.1, 0.4, 59.8, 120.3],
    "angle_peak_positions_after_deg": [-179.1, -90.4, 0.2, 89.7],
    "n_particles": 9000,
    "n_trajectories": 75,
    "segmentation_iou": 0.8765432,
    "n_frames": 150,
    "angle_error_median_deg": 0.51234,
    "angle_polarity_accuracy": 0.987654,
    "angle_n_matched": 8700,
}


def test_numbers_are_rounded_with_units():
    assert format_quantity("transition_frame_uncertainty", 1.2345678) == (
        "transition onset uncertainty (1 s.d.)",
        "1.2 frames",
    )
    assert format_quantity("transition_frame", 91)[1] == "frame 91"
    assert format_quantity("transition_interval", [89, 93])[1] == "89-93 frames"
    assert format_quantity("angle_polarity_accuracy", 0.987654)[1] == "98.8 %"
    assert format_quantity("segmentation_iou", 0.8765432)[1] == "0.877"
    assert format_quantity("angle_peak_positions_after_deg", [-179.1, 89.7])[1] == "-179, 90 deg"
    assert format_quantity("segmentation_iou", None)[1] == "n/a"
    assert format_quantity("angle_peak_positions_after_deg", [])[1] == "none"
    assert format_quantity("some_new_number", 0.123456789)[1] == "0.123"


def test_conclusions_state_the_transition_peaks_and_uncertainty():
    text = " ".join(conclusions(SUMMARY))
    assert "transition begins at frame 91" in text and "+- 1.2 frames" in text
    assert "frames 89-93" in text and "planted at frame 90" in text and "1 frame from it" in text
    assert "6 peaks before at -180, -120, -60, 0, 60, 120 deg" in text
    assert "4 peaks after at -179, -90, 0, 90 deg" in text
    assert caveats(SUMMARY) == []


def test_no_transition_is_said_in_plain_words():
    summary = dict(SUMMARY, transition_detected=False, transition_frame=None)
    text = " ".join(conclusions(summary))
    assert text.startswith("No transition")
    assert "transition begins" not in text


def test_caveats_excluded_frames_diagnostics_and_weak_evidence():
    summary = dict(
        SUMMARY,
        excluded_frames=[16, 17, 18],
        diagnostics={
            "collapsed": True,
            "warnings": ["z carries no information"],
            "angle_latent_std_deg": 0.0123456,
        },
        transition_frame_uncertainty=20.0,
        segmentation_iou=None,
    )
    text = " ".join(caveats(summary))
    assert "3 frames were excluded" in text and "16, 17, 18" in text
    assert "collapse (z carries no information)" in text
    # a concentrated residual angle alone (pre-aligned crops) is no collapse
    aligned = dict(SUMMARY, diagnostics={"collapsed": False, "angle_collapsed": True})
    assert "collapse" not in " ".join(caveats(aligned))
    # notes of a fit that did not collapse are shown as notes, not as a failed fit
    noted = dict(SUMMARY, diagnostics={"collapsed": False, "warnings": ["MSE ratio 1.1"]})
    said = " ".join(caveats(noted))
    assert "MSE ratio 1.1" in said and "latents do carry information" in said
    assert "collapse" not in said and "may not follow" not in said
    noted["diagnostics"] |= {"angle_posterior_spread": 1.8}  # the angle undetermined
    assert "angle peaks, may not follow the particles" in " ".join(caveats(noted))
    assert "poorly constrained" in text
    assert "not scored" in text
    page = render_html(summary, FIGURES)
    assert "rVAE diagnostics" in page and "angle_latent_std_deg" in page and "0.012" in page


def test_page_opens_with_conclusions_names_the_papers_and_rounds_numbers():
    for page in (render_html(SUMMARY, FIGURES), render_markdown(SUMMARY, FIGURES)):
        order = [page.index(h) for h in ("Conclusions", "Numbers", "Methods", "figures/")]
        assert order == sorted(order)
        assert "Ziatdinov et al." in page and "Bepler et al." in page
        assert not re.search(r"\d\.\d{4,}", page), re.findall(r"\d\.\d{4,}", page)
        assert all(f"figures/{n}" in page for n in FIGURES)
    assert "Fig. 4" in FIGURES["joint_latents.png"] and "Ziatdinov" in FIGURES["joint_latents.png"]


def test_summary_carries_the_transition_test_and_caveat_inputs():
    analysis = {
        "transition_frame": None,
        "transition_frame_uncertainty": None,
        "transition_detected": False,
        "transition_log_evidence_ratio": -3.2,
        "angle_peaks_before": 6,
        "angle_peaks_after": 6,
        "angle_peak_positions_before_deg": [0.0],
        "n_particles": 10,
        "n_trajectories": 2,
        "n_frames": 12,
        "excluded_frames": [3],
        "diagnostics": {"angle_collapsed": False},
        "nmf_reconstruction_error": 0.1,
    }
    summary = summarize(analysis)
    for key in ("transition_detected", "transition_log_evidence_ratio", "excluded_frames"):
        assert summary[key] == analysis[key]
    assert summary["diagnostics"] == {"angle_collapsed": False}
    assert "nmf_reconstruction_error" not in summary
    assert " ".join(conclusions(summary)).startswith("No transition")
