"""The report of a workflow folder: figures (PNG), a Markdown/HTML page and ``summary.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.files import atomic_write, is_valid_file, load_json, load_npy, load_table, save_json
from .report_page import render_html, render_markdown
from .units import UNIT_KEYS

__all__ = [
    "FIGURES",
    "SUMMARY_KEYS",
    "TRUTH_KEYS",
    "angle_vs_truth",
    "particles_vs_truth",
    "summarize",
    "write_report",
]

_PAPER = "in Ziatdinov et al., HS-AFM self-assembly; see Methods"
FIGURES = {
    "joint_latents.png": "Joint distributions of the latents (angle in deg, offsets in pixels, "
    f"content z unitless) with KDE contours; circular KDE for the angle (cf. Fig. 4 {_PAPER})",
    "kde_over_time.png": "KDE(L, t): density of the angle (per deg) and of z0, z1 in every frame; "
    f"dashed line: detected transition (cf. Fig. 5a-c {_PAPER})",
    "nmf_components.png": "NMF components w_i(angle) and their time behaviours e_i(t) with "
    f"5-95 % bands; detected and planted transitions marked (cf. Fig. 5d-g {_PAPER})",
    "frames_by_angle.png": "First frame, transition frame and last frame with particles coloured "
    f"by the encoded angle (deg) (cf. Fig. 6a-c {_PAPER})",
    "trajectory_latents.png": "Angle (deg, unwrapped) and z0 along the longest trajectories "
    f"(cf. Fig. 6d-e {_PAPER})",
}
SUMMARY_KEYS = (
    "planted_transition_frame",
    "transition_frame",
    "transition_frame_uncertainty",
    "angle_peaks_before",
    "angle_peaks_after",
    "n_particles",
    "n_trajectories",
    "segmentation_iou",
)

TRUTH_KEYS = ("angle_error_median_deg", "angle_polarity_accuracy", "angle_n_matched")
PARTICLE_KEYS = ("particle_f1", "particle_precision", "particle_recall")

# analysis.json entries the summary carries as they are when present (the transition
# test's outcome and evidence, peak positions, excluded frames and edge-cut particles,
# units, fit diagnostics)
PASSED_THROUGH_PREFIXES = ("transition_", "angle_peak_positions_", "border_particles_")
PASSED_THROUGH_KEYS = (
    "angle_peaks_all",
    "excluded_frames",
    "exclusion_reasons",
    "diagnostics",
    "rvae_collapsed",
    "collapse_note",
    "frame_time_s",
    "pixel_size_nm",
)


def angle_vs_truth(particles: dict, truth: dict, latents: dict, max_distance: float = 3.0) -> dict:
    """Encoded directed angles scored against a synthetic movie's ground truth.

    An evaluation only (nothing in the analysis uses the truth). Found
    particles are matched one-to-one to true ones within ``max_distance``
    pixels, and to their latents through ``particle_id``; the angles' global
    offset (which an unsupervised angle leaves open) is removed by the
    circular mean of the differences.

    Returns
    -------
    dict
        ``angle_error_median_deg`` (median absolute error after the offset,
        degrees), ``angle_polarity_accuracy`` (fraction of matched particles
        within 90 degrees of the truth: the head/tail direction is right) and
        ``angle_n_matched``; values are None when nothing matches.
    """
    from ..data.particles import check_particles, join_on_particle_id
    from ..segmentation.metrics import match_particles

    particles = check_particles(particles)
    fi, ti = match_particles(particles, truth, max_distance=max_distance)
    row_of = join_on_particle_id(particles, latents, ())["row_of"]
    keep = row_of[fi] >= 0
    fi, ti = fi[keep], ti[keep]
    if fi.size == 0:
        return {k: None for k in TRUTH_KEYS}
    angle, true_angle = np.asarray(latents["angle"]), np.asarray(truth["angle"])
    diff = np.angle(np.exp(1j * (angle[row_of[fi]] - true_angle[ti])))
    diff = np.angle(np.exp(1j * (diff - np.angle(np.mean(np.exp(1j * diff))))))
    return {
        "angle_error_median_deg": float(np.rad2deg(np.median(np.abs(diff)))),
        "angle_polarity_accuracy": float(np.mean(np.abs(diff) < np.pi / 2)),
        "angle_n_matched": int(fi.size),
    }


def particles_vs_truth(
    particles: dict, truth: dict, *, shape=None, max_distance: float = 3.0
) -> dict:
    """Found particles scored against a synthetic movie's ground truth (an evaluation only).

    Found and true particles are matched one-to-one within ``max_distance``
    pixels in each frame (:func:`pyrolatent.segmentation.metrics.detection_scores`).
    With the frame ``shape`` and a ``length`` column in ``truth``, particles
    whose centre lies within half the longest particle of the frame edge are
    left out of the scores (a particle cut by the edge has the centroid of its
    visible part).

    Returns
    -------
    dict
        ``particle_f1``, ``particle_precision``, ``particle_recall`` (0 to 1),
        ``particle_match_px`` (``max_distance``) and ``particle_edge_margin_px``.
    """
    from ..segmentation.metrics import detection_scores

    margin = 0.0
    if shape is not None and "length" in truth and len(truth["length"]):
        margin = float(np.ceil(np.max(truth["length"]) / 2))
    scores = detection_scores(
        particles, truth, max_distance=max_distance, shape=shape, margin=margin
    )
    out = {f"particle_{k}": float(scores[k]) for k in ("f1", "precision", "recall")}
    return out | {"particle_match_px": max_distance, "particle_edge_margin_px": margin}


def summarize(
    analysis: dict,
    *,
    planted: int | None = None,
    segmentation_iou: float | None = None,
    particles: dict | None = None,
    truth: dict | None = None,
    latents: dict | None = None,
    segmentation: dict | None = None,
    frame_shape: tuple[int, int] | None = None,
) -> dict:
    """The report's summary (``summary.json``) from the analysis numbers.

    Parameters
    ----------
    analysis : dict
        ``analysis.json`` (``summary`` of :func:`pyrolatent.workflow.steps.analyze_latents`).
    planted : int, optional
        The planted transition frame of a synthetic movie.
    segmentation_iou : float, optional
        Held-out pixel IoU of the segmentation.
    particles, truth, latents : dict, optional
        Found particles, true particles and latents: with all three, the
        particle scores of :func:`particles_vs_truth` and the angle scores of
        :func:`angle_vs_truth` are added.
    segmentation : dict, optional
        What the segmentation trained on (``segment.json``,
        :func:`pyrolatent.workflow.segmenter.segmentation_record`): adds
        ``label_source``, ``train_frames`` and, for pseudo-masks,
        ``particle_polarity``.
    frame_shape : (int, int), optional
        ``(H, W)`` of the movie's frames: the particle scores leave out the edge band.
    """
    summary = {
        "planted_transition_frame": planted,
        "transition_frame": analysis["transition_frame"],
        "transition_frame_uncertainty": analysis["transition_frame_uncertainty"],
        "angle_peaks_before": analysis["angle_peaks_before"],
        "angle_peaks_after": analysis["angle_peaks_after"],
        "n_particles": analysis["n_particles"],
        "n_trajectories": analysis["n_trajectories"],
        "segmentation_iou": segmentation_iou,
        "transition_interval": analysis.get("transition_interval"),
        "n_frames": int(analysis["n_frames"]),
    }
    for key, value in analysis.items():
        if key not in summary and (
            key.startswith(PASSED_THROUGH_PREFIXES) or key in PASSED_THROUGH_KEYS
        ):
            summary[key] = value
    if segmentation and segmentation.get("label_source") is not None:
        summary["label_source"] = segmentation["label_source"]
        summary["train_frames"] = segmentation.get("train_frames")
        if segmentation.get("polarity") is not None:
            summary["particle_polarity"] = segmentation["polarity"]
    if particles is not None and truth is not None and latents is not None:
        summary.update(particles_vs_truth(particles, truth, shape=frame_shape))
        summary.update(angle_vs_truth(particles, truth, latents))
    return summary


def _save_figure(fig, path: Path) -> Path:
    return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=90))


def write_report(folder, *, timings: dict | None = None) -> list[Path]:
    """Figures, ``report.md``, ``report.html`` and ``summary.json`` of a workflow folder.

    Needs the outputs of ``locate``, ``train`` and ``analyze`` in ``folder``;
    ``movie.npy`` (frames for Fig. 6), ``movie.json`` (planted transition) and
    ``segment.json`` (IoU; the movie's pixel size and frame time) are used when
    present (null otherwise).

    Returns
    -------
    list of Path
        The written files.
    """
    from ..analysis.trajectories import latents_along_trajectories, longest_tracks
    from ..plot.dynamics import (
        plot_frames_by_latent,
        plot_joint_latents,
        plot_kde_over_time,
        plot_nmf_components,
        plot_trajectory_latents,
    )

    folder = Path(folder)
    for name in ("analysis.json", "latents.csv", "trajectories.csv", "kde_grids.json"):
        if not is_valid_file(folder / name):
            raise ValueError(f"{folder / name} is missing or invalid: run 'analyze' first")
    analysis = load_json(folder / "analysis.json")
    movie_meta = load_json(folder / "movie.json") if is_valid_file(folder / "movie.json") else {}
    seg = load_json(folder / "segment.json") if is_valid_file(folder / "segment.json") else {}
    planted = movie_meta.get("planted_transition_frame")
    lat = load_table(folder / "latents.csv")
    traj = load_table(folder / "trajectories.csv")
    grids = {k: np.asarray(v) for k, v in load_json(folder / "kde_grids.json").items()}
    figdir = folder / "figures"
    paths = []

    latents = {"angle": lat["angle"], "z_0": lat.get("z_0"), "z_1": lat.get("z_1")}
    latents = {k: v for k, v in latents.items() if v is not None}
    if "offset_0" in lat:
        latents["offset_0"] = lat["offset_0"]
    paths.append(_save_figure(plot_joint_latents(latents), figdir / "joint_latents.png"))
    kdes = {k: load_npy(folder / f"kde_{k}.npy") for k in grids}
    paths.append(
        _save_figure(
            plot_kde_over_time(kdes, grids, transition=analysis["transition_frame"]),
            figdir / "kde_over_time.png",
        )
    )
    paths.append(
        _save_figure(
            plot_nmf_components(
                load_npy(folder / "nmf_weights.npy"),
                load_npy(folder / "nmf_loadings.npy"),
                grids["angle"],
                weights_band=load_npy(folder / "nmf_weights_band.npy"),
                loadings_band=load_npy(folder / "nmf_loadings_band.npy"),
                transition=analysis["transition_frame"],
                planted=planted,
            ),
            figdir / "nmf_components.png",
        )
    )
    n_frames = int(analysis["n_frames"])
    if is_valid_file(folder / "movie.json") and is_valid_file(folder / "movie.npy"):
        movie = load_npy(folder / "movie.npy", mmap=True)
    else:
        movie = None
    onset = analysis["transition_frame"]
    middle = n_frames // 2 if onset is None else min(onset, n_frames - 1)
    shown = sorted({0, middle, n_frames - 1})
    if movie is not None:
        fig = plot_frames_by_latent(
            movie,
            traj,
            np.rad2deg(traj["angle"]),
            shown,
            label="angle (deg)",
            vmin=-180,
            vmax=180,
        )
    else:  # no frames in the folder: positions on a blank background
        size = int(max(traj["row"].max(initial=1), traj["col"].max(initial=1))) + 1
        fig = plot_frames_by_latent(
            np.zeros((n_frames, size, size)),
            traj,
            np.rad2deg(traj["angle"]),
            shown,
            label="angle (deg)",
            vmin=-180,
            vmax=180,
        )
    paths.append(_save_figure(fig, figdir / "frames_by_angle.png"))
    traces = latents_along_trajectories(
        traj, {k: traj[k] for k in ("angle", "z_0", "z_1") if k in traj}, min_length=2
    )
    tracks = longest_tracks(traces, 4)
    names = [k for k in ("angle", "z_0") if k in traces]
    paths.append(
        _save_figure(
            plot_trajectory_latents(traces, tracks, names), figdir / "trajectory_latents.png"
        )
    )

    particles = truth = None
    if is_valid_file(folder / "truth.csv") and is_valid_file(folder / "particles.csv"):
        particles, truth = load_table(folder / "particles.csv"), load_table(folder / "truth.csv")
    summary = summarize(
        analysis,
        planted=planted,
        segmentation_iou=seg.get("segmentation_iou"),
        particles=particles,
        truth=truth,
        latents=lat,
        segmentation=seg,
        frame_shape=None if movie is None else tuple(movie.shape[1:]),
    )
    for key in UNIT_KEYS:  # the movie file's units, as segment read them
        if summary.get(key) is None and seg.get(key) is not None:
            summary[key] = seg[key]
    if timings:
        summary["stage_seconds"] = timings
    paths.append(save_json(folder / "summary.json", summary))

    markdown, page = render_markdown(summary, FIGURES), render_html(summary, FIGURES)
    paths.append(atomic_write(folder / "report.md", lambda p: Path(p).write_text(markdown)))
    paths.append(atomic_write(folder / "report.html", lambda p: Path(p).write_text(page)))
    return paths
