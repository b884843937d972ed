"""The words of the report: conclusions, caveats, rounded numbers with units, methods.

:func:`pyrolatent.workflow.report.write_report` computes the figures and the
summary; this module turns a summary (``summary.json``) into the Markdown and
HTML pages. It reads only the summary, so any key it does not know is still
shown (raw, in the numbers table), and a ``diagnostics`` dict (e.g. the rVAE's
collapse diagnostics) is rendered as it is.
"""

from __future__ import annotations

import html
import math

from ..estimators.diagnostics import ANGLE_BROAD_RAD
from .exclusion import EXCLUSION_REASONS, border_caveats

__all__ = [
    "QUANTITIES",
    "METHODS",
    "format_quantity",
    "conclusions",
    "caveats",
    "render_markdown",
    "render_html",
]

# key -> (label, unit, decimals)
QUANTITIES = {
    "transition_detected": ("transition detected", "", None),
    "transition_frame": ("transition onset", "frame", 0),
    "transition_frame_uncertainty": ("transition onset uncertainty (1 s.d.)", "frames", 1),
    "transition_interval": ("transition onset 5-95 % interval", "frames", 0),
    "transition_end": ("transition ramp end", "frame", 0),
    "transition_frame_check": ("transition onset from a second rVAE fit (seed + 1)", "frame", 0),
    "transition_frame_uncertainty_check": ("its uncertainty (1 s.d.)", "frames", 1),
    "transition_seed_agrees": ("the two fits agree on the transition", "", None),
    "transition_change_frame": ("one-regime test's change point", "frame", 0),
    "transition_change_interval": ("its 5-95 % interval", "frames", 0),
    "transition_change_frame_check": ("the same from the second fit", "frame", 0),
    "transition_change_seed_agrees": ("the two fits agree on the change point", "", None),
    "transition_isolated_frame": ("frame that stands out most from its neighbours", "frame", 0),
    "transition_p_value_without_isolated": ("the test's p-value without it", "", 3),
    "planted_transition_frame": ("planted transition (synthetic movie)", "frame", 0),
    "angle_peaks_before": ("angle peaks before the transition", "", 0),
    "angle_peaks_after": ("angle peaks after the transition", "", 0),
    "angle_peak_positions_before_deg": ("angle peak positions before", "deg", 0),
    "angle_peak_positions_after_deg": ("angle peak positions after", "deg", 0),
    "angle_peaks_all": ("angle peaks over all frames (no transition)", "", 0),
    "angle_peak_positions_all_deg": ("angle peak positions over all frames", "deg", 0),
    "n_frames": ("frames", "", 0),
    "n_particles": ("particles (all frames)", "", 0),
    "n_trajectories": ("trajectories", "", 0),
    "border_particles_total": ("detections with latents", "", 0),
    "border_particles_excluded": ("of them cut by the frame edge, left out", "", 0),
    "segmentation_iou": ("segmentation IoU on held-out labelled frames", "", 3),
    "label_source": ("segmentation trained on", "", None),
    "train_frames": ("segmentation training frames", "", 0),
    "particle_polarity": ("particles against the background (pseudo-masks)", "", None),
    "particle_f1": ("particles found: F1 against the truth", "", 3),
    "particle_match_px": ("particles found: largest matched distance", "px", 1),
    "particle_edge_margin_px": ("particles found: edge band left out", "px", 0),
    "particle_precision": ("particles found: precision against the truth", "", 3),
    "particle_recall": ("particles found: recall against the truth", "", 3),
    "angle_error_median_deg": ("median angle error against the truth", "deg", 1),
    "angle_polarity_accuracy": ("head/tail direction right (within 90 deg)", "%", 1),
    "angle_n_matched": ("particles matched to the truth", "", 0),
    "frame_time_s": ("frame time", "s", 3),
    "pixel_size_nm": ("pixel size", "nm", 3),
}

METHODS = (
    "Particles are segmented by a deep ensemble of dilated convolutional networks (a baseline "
    "network, then members fine-tuned with different seeds; mean and variance of their "
    "probabilities) and located as connected regions. Each particle's crop is encoded by a "
    "rotationally invariant variational autoencoder (rVAE: one angle, two offsets and two "
    "content latents; Bepler et al., NeurIPS 2019, spatial-VAE), fitted with Pyro by stochastic "
    "variational inference. The per-frame kernel density of the angle, KDE(angle, t), uses a "
    "wrapped-Gaussian (circular) kernel, so peaks at +-180 deg are one peak; it is factorised by "
    "non-negative matrix factorisation (NMF, two components) and the transition is the onset of "
    "the change in the NMF time behaviours, with a moving-block bootstrap for its uncertainty. "
    "Particles are linked into trajectories by nearest neighbours between frames. The workflow "
    "follows Ziatdinov et al., the rVAE analysis of protein (DHR10-mica18) self-assembly in "
    "high-speed AFM movies (papers/rvae-protein-self-assembly-hsafm.txt); figure captions "
    "refer to that paper's figures."
)


def _number(value, decimals: int | None) -> str:
    if isinstance(value, bool) or decimals is None:
        return "yes" if value is True else "no" if value is False else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{round(float(value), decimals):.{decimals}f}"


def _rounded(value) -> str:
    """Text of a number, or of a list / dict of them, with floats to 3 decimals or 3 digits."""
    if isinstance(value, float):
        return f"{value:.3f}" if 1e-3 <= abs(value) < 1e3 else f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_rounded(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_rounded(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_quantity(key: str, value) -> tuple[str, str]:
    """``(label, text)`` of one summary entry: rounded, with its unit.

    Unknown keys keep their name; floats are shown with 3 significant digits.
    """
    if value is None:
        return QUANTITIES.get(key, (key, "", None))[0], "n/a"
    label, unit, decimals = QUANTITIES.get(key, (key, "", None))
    if key not in QUANTITIES:
        return key, _rounded(value)
    if unit == "%":
        return label, f"{_number(100 * value, decimals)} %"
    if isinstance(value, (list, tuple)):
        parts = [_number(v, decimals) for v in value]
        if not parts:
            return label, "none"
        text = "-".join(parts) if key == "transition_interval" else ", ".join(parts)
    else:
        text = _number(value, decimals)
    if unit == "frame":
        return label, f"frame {text}"
    return label, f"{text} {unit}".strip()


def _detected(summary: dict) -> bool:
    return bool(summary.get("transition_detected", summary.get("transition_frame") is not None))


def _seconds(summary: dict, frames: float) -> str:
    dt = summary.get("frame_time_s")
    return f" ({frames * dt:.3g} s)" if dt else ""


def _peaks_text(summary: dict, when: str) -> str:
    n = summary.get(f"angle_peaks_{when}")
    pos = summary.get(f"angle_peak_positions_{when}_deg")
    if n is None:
        return f"not counted {when}"
    at = f" at {', '.join(f'{round(p):d}' for p in pos)} deg" if pos else ""
    return f"{n} peak{'s' if n != 1 else ''}{'' if when == 'all' else ' ' + when}{at}"


def _seed_text(summary: dict) -> str:
    """Whether a second rVAE fit (another seed) finds the same transition."""
    frame = summary.get("transition_frame_check")
    u = summary.get("transition_frame_uncertainty_check")
    at = f"frame {frame}" + (f" (+- {u:.1f})" if u is not None and math.isfinite(u) else "")
    first = _detected(summary) and summary.get("transition_frame") is not None
    if summary["transition_seed_agrees"]:
        return f"A second rVAE fit (seed + 1) agrees: {at if first else 'no transition either'}."
    found = f"puts it at {at} instead" if frame is not None else "finds no transition"
    if not first:
        found = f"finds one at {at}"
    change = summary.get("transition_change_frame")
    interval = summary.get("transition_change_interval")
    if summary.get("transition_change_seed_agrees") and change is not None and interval:
        return (
            f"A second rVAE fit (seed + 1) {found}: the NMF onset depends on the rVAE's "
            f"seed. The one-regime test's own change point does not: frame {change} "
            f"(5-95 %: {interval[0]}-{interval[-1]}) from the first fit and frame "
            f"{summary.get('transition_change_frame_check')} from the second, so the change "
            f"near frame {change} holds across the two seeds, while the NMF onset is not a "
            "finding until more fits or the images confirm it."
        )
    return (
        f"A second rVAE fit (seed + 1) {found}: the transition depends on the rVAE's seed, "
        "so it is not a finding until more fits or the images confirm it."
    )


def _symmetry(summary: dict) -> dict:
    """The crops' ``particle_symmetry`` (:mod:`pyrolatent.workflow.particle_symmetry`), or {}."""
    diag = summary.get("diagnostics")
    found = diag.get("particle_symmetry") if isinstance(diag, dict) else None
    return found if isinstance(found, dict) else {}


def conclusions(summary: dict) -> list[str]:
    """The report's conclusions in plain sentences (most important first)."""
    out = []
    if summary.get("rvae_collapsed"):
        out.append(
            "The rVAE fit failed (posterior collapse): "
            + (summary.get("collapse_note") or "its latents carry no information.")
            + " Read the results below as the crop alignment's, not as findings."
        )
    symmetry = _symmetry(summary)
    if symmetry.get("note") and symmetry.get("order") is None:  # round: no orientation at all
        out.append(symmetry["note"] + ".")
    t_frame = summary.get("transition_frame")
    if _detected(summary) and t_frame is not None:
        u = summary.get("transition_frame_uncertainty")
        interval = summary.get("transition_interval")
        text = f"A transition begins at frame {t_frame}{_seconds(summary, t_frame)}"
        if u is not None and math.isfinite(u):
            text += f", +- {u:.1f} frames (1 s.d.)"
        if interval:
            text += f"; 90 % of bootstrap refits put it in frames {interval[0]}-{interval[-1]}"
        out.append(text + ".")
    else:
        reason = summary.get("transition_reason")
        out.append(
            "No transition: the angle distributions are described as well by one regime "
            "as by a change" + (f" ({reason})" if reason else "") + "."
        )
    if "transition_seed_agrees" in summary:
        out.append(_seed_text(summary))
    planted = summary.get("planted_transition_frame")
    if planted is not None:
        if _detected(summary) and t_frame is not None:
            d = abs(t_frame - planted)
            out.append(
                f"The movie is synthetic with a transition planted at frame {planted}: the "
                f"detected onset is {d} frame{'s' if d != 1 else ''} from it."
            )
        else:
            out.append(f"The movie is synthetic with a transition planted at frame {planted}.")
    if summary.get("angle_peaks_before") is not None:
        out.append(
            "Particle orientations (circular KDE of the encoded angle): "
            f"{_peaks_text(summary, 'before')}, {_peaks_text(summary, 'after')}."
        )
    elif summary.get("angle_peaks_all") is not None:
        out.append(
            "Particle orientations (circular KDE of the encoded angle, all frames: no "
            f"transition splits them): {_peaks_text(summary, 'all')}."
        )
    n, t = summary.get("n_particles"), summary.get("n_frames")
    if n is not None and t:
        out.append(
            f"{n} particles were found in {t} frames ({n / t:.1f} per frame) and linked into "
            f"{summary.get('n_trajectories', 'n/a')} trajectories."
        )
    err = summary.get("angle_error_median_deg")
    if err is not None:
        out.append(f"Against the ground truth, the median angle error is {err:.1f} deg.")
    return out


def caveats(summary: dict) -> list[str]:
    """What limits the conclusions: excluded frames, rVAE diagnostics, weak evidence."""
    out = []
    excluded = summary.get("excluded_frames")
    if excluded:
        shown = ", ".join(str(f) for f in list(excluded)[:20])
        more = f" and {len(excluded) - 20} more" if len(excluded) > 20 else ""
        why = "scan artefacts or other quality flags"
        reasons = {k: v for k, v in (summary.get("exclusion_reasons") or {}).items() if v}
        if reasons:
            why = "flagged by the frame quality check: " + ", ".join(
                f"{n} {EXCLUSION_REASONS.get(k, k)}" for k, n in reasons.items()
            )
        rest = ""
        if summary.get("n_frames"):
            rest = " The densities, the transition and the angle peaks use the other "
            rest += f"{int(summary['n_frames']) - len(excluded)} frames."
        out.append(
            f"{len(excluded)} frames were excluded from the analysis ({why}): {shown}{more}.{rest}"
        )
    out += border_caveats(summary)
    diag = summary.get("diagnostics")
    if isinstance(diag, dict):
        # the overall verdict only: in the aligned workflow a concentrated residual angle
        # (``angle_collapsed``) is expected, since the crops are pre-aligned by their axis
        if diag.get("collapsed") is True:
            out.append(
                "The rVAE diagnostics flag a collapse ("
                + "; ".join(str(w) for w in diag.get("warnings", [])[:3])
                + "): the encoded angles may not follow the particles, so the angle peaks "
                "and the transition should not be trusted without a look at the reconstructions."
            )
        elif diag.get("warnings"):
            broad = (diag.get("angle_posterior_spread") or 0.0) > ANGLE_BROAD_RAD
            out.append(
                "The rVAE diagnostics add (its latents do carry information): "
                + "; ".join(str(w) for w in diag["warnings"][:3])
                + (
                    ". The encoded angles, and so the head/tail direction and the angle peaks, "
                    "may not follow the particles."
                    if broad
                    else "."
                )
            )
    elif diag:
        out.append(f"rVAE diagnostics: {_rounded(diag)}.")
    symmetry = _symmetry(summary)
    if symmetry.get("note") and symmetry.get("order") is not None:
        out.append(symmetry["note"] + ".")
    u, t = summary.get("transition_frame_uncertainty"), summary.get("n_frames")
    if _detected(summary) and u is not None and t and math.isfinite(u) and u > 0.05 * t:
        out.append(
            f"The onset is poorly constrained (+- {u:.1f} frames, {100 * u / t:.0f} % of "
            "the movie)."
        )
    n = summary.get("n_particles")
    if n is not None and t and n / t < 5:
        out.append("Fewer than 5 particles per frame: the per-frame densities are noisy.")
    if summary.get("label_source") == "pseudo_masks":
        frames = ", ".join(str(f) for f in summary.get("train_frames") or [])
        polarity = summary.get("particle_polarity", "bright")
        out.append(
            "No hand labels: the segmentation was trained on pseudo-masks of the clearest "
            f"frames ({frames}) from a classical detector (band-pass, Otsu threshold, edges "
            f"at a fraction of each particle's height; {polarity} particles), so it inherits "
            "that detector's errors."
        )
    if summary.get("segmentation_iou") is None:
        out.append("The segmentation was not scored: no labelled frame was held out.")
    return out


def _table_keys(summary: dict) -> list[str]:
    skip = {
        "diagnostics",
        "stage_seconds",
        "excluded_frames",
        "exclusion_reasons",
        "transition_reason",
    }
    known = [k for k in QUANTITIES if k in summary]
    return known + [k for k in summary if k not in QUANTITIES and k not in skip]


def render_markdown(summary: dict, figures: dict) -> str:
    """The report as Markdown (``figures``: file name -> caption, under ``figures/``)."""
    md = ["# pyrolatent self-assembly report", "", "## Conclusions", ""]
    md += [f"- {c}" for c in conclusions(summary)]
    cav = caveats(summary)
    if cav:
        md += ["", "## Caveats", ""] + [f"- {c}" for c in cav]
    md += ["", "## Numbers", "", "| quantity | value |", "|---|---|"]
    md += ["| {} | {} |".format(*format_quantity(k, summary[k])) for k in _table_keys(summary)]
    if isinstance(summary.get("diagnostics"), dict):
        md += ["", "## rVAE diagnostics", "", "| diagnostic | value |", "|---|---|"]
        md += [
            "| {} | {} |".format(*format_quantity(k, v)) for k, v in summary["diagnostics"].items()
        ]
    md += ["", "## Methods", "", METHODS, ""]
    for name, caption in figures.items():
        md += [f"## {caption}", "", f"![{caption}](figures/{name})", ""]
    return "\n".join(md)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.45}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em}"
    ".box{background:#eef5ee;border-left:4px solid #4a8a4a;padding:.6em 1em}"
    ".warn{background:#fbf3e4;border-left:4px solid #c08a2a;padding:.6em 1em}"
    "table{border-collapse:collapse}td{border-bottom:1px solid #ddd;padding:.25em .8em}"
    "td.v{text-align:right;font-variant-numeric:tabular-nums}"
    "figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:.9em;color:#555}"
)


def _rows(items) -> str:
    return "".join(
        f"<tr><td>{html.escape(label)}</td><td class='v'>{html.escape(text)}</td></tr>"
        for label, text in items
    )


def render_html(summary: dict, figures: dict) -> str:
    """The report as one HTML page (``figures``: file name -> caption, under ``figures/``)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>pyrolatent report</title>",
        f"<style>{_CSS}</style></head><body><h1>pyrolatent self-assembly report</h1>",
        "<h2>Conclusions</h2><div class='box'><ul>",
        "".join(f"<li>{esc(c)}</li>" for c in conclusions(summary)),
        "</ul></div>",
    ]
    cav = caveats(summary)
    if cav:
        parts += ["<h2>Caveats</h2><div class='warn'><ul>"]
        parts += [f"<li>{esc(c)}</li>" for c in cav] + ["</ul></div>"]
    table = _rows(format_quantity(k, summary[k]) for k in _table_keys(summary))
    parts += [f"<h2>Numbers</h2><table>{table}</table>"]
    if isinstance(summary.get("diagnostics"), dict):
        diag = _rows(format_quantity(k, v) for k, v in summary["diagnostics"].items())
        parts += [f"<h2>rVAE diagnostics</h2><table>{diag}</table>"]
    parts += [f"<h2>Methods</h2><p>{esc(METHODS)}</p><h2>Figures</h2>"]
    parts += [
        f"<figure><img src='figures/{esc(n)}' alt='{esc(c)}'><figcaption>{esc(c)}"
        "</figcaption></figure>"
        for n, c in figures.items()
    ]
    parts += ["</body></html>"]
    return "".join(parts)
