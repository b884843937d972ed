"""The argument parser of the ``pyrolatent`` command line (:mod:`pyrolatent.cli` runs it).

One subcommand per stage of the chain, each with its place in the chain, an
example and its defaults in ``--help``; options that are fields of a stage
config (:mod:`pyrolatent.workflow.configs`) take their defaults from it.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

__all__ = ["CHAIN", "EXAMPLES", "build_parser", "config_from_args", "movie_options"]


CHAIN = "movie -> segment -> locate -> crops -> train -> analyze -> report"

EXAMPLES = {
    "demo": "pyrolatent demo --out demo-report        # whole chain on a generated movie",
    "preprocess": "pyrolatent preprocess movie.asd --level plane --scan-lines median --out run",
    "segment": "pyrolatent segment movie.tif --masks masks.npy --train-frames 0 1 2 --out run",
    "locate": "pyrolatent locate run/probability.npy --variance run/variance.npy --out run",
    "crops": "pyrolatent crops movie.tif run/particles.csv --align --mask auto --out run",
    "train": "pyrolatent train run/crops.npy run/crops_index.csv --epochs 30 --out run",
    "analyze": "pyrolatent analyze run/latents.csv run/particles.csv --out run",
    "report": "pyrolatent report run                    # figures, report.html, summary.json",
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after every option's help; descriptions and epilogs kept as written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.required:
            return action.help  # nothing worth showing (unset, a flag that is off, required)
        return super()._get_help_string(action)


def _option(parser, config_class, field: str, *flags: str, **kwargs) -> None:
    """An option whose destination and default are a field of a stage config."""
    default = {f.name: f.default for f in fields(config_class)}[field]
    if "action" not in kwargs and "type" not in kwargs and default is not None:
        kwargs["type"] = type(default)
    kwargs.setdefault("help", field.replace("_", " "))
    flags = flags or (f"--{field.replace('_', '-')}",)
    parser.add_argument(*flags, dest=field, default=default, **kwargs)


def config_from_args(config_class, args):
    """The stage config from the parsed options (fields without an option keep defaults)."""
    names = {f.name for f in fields(config_class)}
    return config_class(**{k: v for k, v in vars(args).items() if k in names})


def _mask(text: str):
    return text if text == "auto" else float(text)


def _movie_arguments(parser) -> None:
    """The movie file and how to read it (any format of :func:`pyrolatent.io.movie.read_movie`)."""
    from .io.movie_formats import SUFFIXES

    parser.add_argument("movie", help=f"movie (T, H, W) or image: {' '.join(SUFFIXES)}")
    g = parser.add_argument_group("reading the movie")
    g.add_argument(
        "--axes",
        help="layout of the stored array, e.g. TYX, TCYX, TYXC (needed where it is ambiguous)",
    )
    g.add_argument("--channel", type=int, help="channel to keep (C axis, or an image's colour)")
    g.add_argument("--dataset", help="array inside an HDF5, zarr or .npz file")


def movie_options(args) -> dict:
    """The reading options given on the command line (``axes``, ``channel``, ``dataset``)."""
    names = ("axes", "channel", "dataset")
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _command(sub, name: str, help: str, description: str):
    """A subcommand whose help shows its place in the chain, its defaults and an example."""
    parser = sub.add_parser(
        name,
        help=help,
        description=f"{description}\n\nchain: {CHAIN}",
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=_HelpFormatter,
    )
    # every command takes the one progress switch, so a script can pass it to all
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .workflow import emc_command
    from .workflow.configs import (
        LEVEL_ORDERS,
        AnalyzeConfig,
        CropsConfig,
        LocateConfig,
        PreprocessConfig,
        SegmentConfig,
        TrainConfig,
    )

    p = argparse.ArgumentParser(
        prog="pyrolatent",
        description="pyrolatent: particles in microscopy movies -> rotation-invariant latents "
        f"-> transitions.\n\nThe chain: {CHAIN}\n"
        "Each command reads the previous one's files, so you can enter anywhere.",
        epilog="examples:\n"
        + "\n".join(f"  {e}" for e in EXAMPLES.values())
        + "\n\n'pyrolatent COMMAND --help' shows a command's options and defaults.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    d = _command(
        sub,
        "demo",
        "synthetic self-assembly movie -> report",
        "Generate a self-assembly movie with a planted transition and run the whole chain.",
    )
    d.add_argument("--quick", action="store_true", help="small movie, short training (< 3 min)")
    d.add_argument("--out", default="pyrolatent-report", help="output folder")
    d.add_argument("--seed", type=int, default=0, help="seed of the movie and the models")
    d.add_argument(
        "--label-free",
        action="store_true",
        help="train the segmentation on pseudo-masks of the clearest frames, not on the "
        "movie's masks (which then only score it)",
    )

    pp = _command(
        sub,
        "preprocess",
        "AFM: level frames, align scan lines, flag artefact frames",
        "Optional first step for AFM movies: polynomial levelling, scan-line (row) offset "
        "correction and per-frame quality flags -> preprocessed.npy (give it to segment and "
        "crops), frame_quality.csv (analyze leaves its flagged frames out), preprocess.json.",
    )
    pp.add_argument("movie", help="movie: .npy, .tif, .h5, .zarr, .mrc or AFM (.asd, .spm, ...)")
    _option(pp, PreprocessConfig, "level", choices=list(LEVEL_ORDERS), help="background surface")
    _option(
        pp,
        PreprocessConfig,
        "scan_lines",
        choices=["median", "median_diff", "none"],
        help="row-offset correction: row medians, or medians of adjacent-row differences",
    )
    _option(
        pp,
        PreprocessConfig,
        "z_threshold",
        help="robust z-score (vs the movie's median/MAD) above which a quality metric flags "
        "a frame",
    )
    pp.add_argument("--out", required=True, help="output folder")

    s = _command(
        sub,
        "segment",
        "train (or load) a segmentation ensemble, predict frames",
        "Particle probability and ensemble variance of every frame -> probability.npy, "
        "variance.npy.\n\nTraining labels: --masks (labels of the whole movie), --labels with "
        "--label-frames (label images of some frames, e.g. napari Labels layers saved as "
        "TIFF), or none: pseudo-masks of the clearest frames from a classical detector "
        "(--polarity, --pseudo-frames, --background-sigma).",
    )
    _movie_arguments(s)
    s.add_argument("--masks", help=".npy labels (T, H, W) of the whole movie for training")
    _option(
        s,
        SegmentConfig,
        "train_frames",
        type=int,
        nargs="+",
        help="with --masks: labelled frames to train on (the others score the IoU)",
    )
    s.add_argument(
        "--labels",
        nargs="+",
        metavar="IMAGE",
        help="label images of the frames in --label-frames (0 background, > 0 particle): "
        "one 2-D .tif/.npy/.png per frame, or one (K, H, W) stack",
    )
    s.add_argument(
        "--label-frames",
        metavar="FRAMES",
        help="the movie frames --labels label, in order: '0,5,9' or a file of frame indices",
    )
    no_labels = {"polarity": "particles bright or dark", "pseudo_frames": "frames to pseudo-label"}
    no_labels["background_sigma"] = "band-pass background scale, pixels (~particle size)"
    for field, text in no_labels.items():
        choices = ["bright", "dark"] if field == "polarity" else None
        _option(s, SegmentConfig, field, choices=choices, help=f"without labels: {text}")
    s.add_argument("--ensemble", help="a trained ensemble checkpoint instead of training")
    _option(s, SegmentConfig, "n_members", "--members", help="ensemble members")
    _option(s, SegmentConfig, "baseline_steps", "--steps", help="baseline training steps")
    s.add_argument("--out", required=True, help="output folder")
    _option(s, SegmentConfig, "seed")

    loc = _command(
        sub,
        "locate",
        "particles from probability maps -> particles.csv",
        "Connected regions of the probability maps, with centroid, area and orientation.",
    )
    loc.add_argument("probability", help=".npy (T, H, W)")
    loc.add_argument("--variance", help=".npy (T, H, W) ensemble variance")
    _option(loc, LocateConfig, "threshold", help="probability threshold")
    _option(loc, LocateConfig, "min_area", help="smallest particle area (pixels)")
    loc.add_argument("--out", required=True, help="output folder")

    c = _command(
        sub,
        "crops",
        "crops around particles -> crops.npy, crops_index.csv",
        "Square crops centred on every particle, optionally aligned on its ellipse axis.",
    )
    _movie_arguments(c)
    c.add_argument("particles", help="particles.csv (frame, row, col)")
    _option(c, CropsConfig, "window", help="crop side (pixels)")
    _option(
        c,
        CropsConfig,
        "align",
        action="store_true",
        help="rotate each crop so its particle's ellipse axis lies along +x "
        "(train then writes directed angles: axis + rVAE residual + polarity)",
    )
    _option(
        c,
        CropsConfig,
        "mask_half_width",
        "--mask",
        type=_mask,
        help="with --align: keep a band |y| <= MASK pixels around the particle axis "
        "('auto': median minor axis + 1)",
    )
    c.add_argument("--out", required=True, help="output folder")

    t = _command(
        sub,
        "train",
        "train the rVAE -> rvae.pt, latents.csv",
        "Rotationally invariant VAE on the crops: angle, offsets and content latents per particle.",
    )
    t.add_argument("crops", help="crops.npy (N, w, w)")
    t.add_argument("index", help="crops_index.csv")
    _option(
        t,
        TrainConfig,
        "epochs",
        help="epochs to train; after a finished run in --out, this many more "
        "(a stopped run is finished to the total it started with)",
    )
    _option(t, TrainConfig, "batch_size", help="crops per mini-batch")
    _option(t, TrainConfig, "lr", help="learning rate (Adam)")
    _option(t, TrainConfig, "clip_norm", help="clip each step's gradient norm (0: no clipping)")
    _option(t, TrainConfig, "check_seed", action=argparse.BooleanOptionalAction,
            help="train a second rVAE with seed + 1 and say if the angles or the "
            "transition differ (twice the training time)")  # fmt: skip
    _option(t, TrainConfig, "decoder", choices=["warp", "spatial"], help="rVAE decoder")
    t.add_argument("--out", required=True, help="output folder")
    _option(t, TrainConfig, "seed")

    a = _command(
        sub,
        "analyze",
        "KDE(L, t), NMF, transition, peaks, trajectories",
        "Per-frame latent densities, their NMF, the transition (or none), angle peaks "
        "before/after and trajectories.",
    )
    a.add_argument("latents", help="latents.csv")
    a.add_argument("particles", help="particles.csv")
    a.add_argument("--n-frames", type=int, help="frames of the movie (default: last frame + 1)")
    _option(a, AnalyzeConfig, "kde_window", help="frames pooled per KDE row")
    _option(a, AnalyzeConfig, "nmf_method", "--nmf", choices=["svi", "map"], help="NMF fit")
    _option(a, AnalyzeConfig, "nmf_steps", help="NMF optimisation steps")
    _option(a, AnalyzeConfig, "search_radius", help="linking search radius (pixels)")
    a.add_argument(
        "--quality",
        help="frame_quality.csv of 'preprocess': its flagged frames are left out "
        "(default: the one beside the latents, when there)",
    )
    a.add_argument("--keep-flagged", action="store_true", help="analyse flagged frames too")
    a.add_argument(
        "--keep-border",
        dest="exclude_border",
        action="store_false",
        help="analyse particles cut by the frame edge too (touches_border in particles.csv)",
    )
    a.add_argument("--out", required=True, help="output folder")
    _option(a, AnalyzeConfig, "seed")

    r = _command(
        sub,
        "report",
        "figures, report.md/html and summary.json of a folder",
        "The report of an analysed folder: conclusions, numbers with units, figures.",
    )
    r.add_argument("folder", help="folder with the outputs of 'analyze'")
    emc_command.add_parser(sub)
    return p
