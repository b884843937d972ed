"""The ``pyrolatent`` command line.

``pyrolatent demo [--quick] [--out DIR] [--seed N]`` runs the whole
self-assembly chain on a generated movie and writes a report. The
subcommands run single stages on a user's own files (npy/tif movies,
npy/csv/json tables, checkpoints), so the chain can be entered anywhere::

    pyrolatent segment movie.tif --masks masks.npy --train-frames 0 1 2 --out run
    pyrolatent locate run/probability.npy --out run
    pyrolatent crops movie.tif run/particles.csv --window 32 --align --mask auto --out run
    pyrolatent train run/crops.npy run/crops_index.csv --epochs 30 --out run
    pyrolatent analyze run/latents.csv run/particles.csv --out run
    pyrolatent report run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields

__all__ = ["main", "build_parser"]


CHAIN = "movie -> segment -> locate -> crops -> train -> analyze -> report"

EXAMPLES = {
    "demo": "pyrolatent demo --out demo-report        # whole chain on a generated movie",
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


def _config(config_class, args):
    """The stage config from the parsed options (fields without an option keep defaults)."""
    names = {f.name for f in fields(config_class)}
    return config_class(**{k: v for k, v in vars(args).items() if k in names})


def _mask(text: str):
    return text if text == "auto" else float(text)


def _command(sub, name: str, help: str, description: str):
    """A subcommand whose help shows its place in the chain, its defaults and an example."""
    return sub.add_parser(
        name,
        help=help,
        description=f"{description}\n\nchain: {CHAIN}",
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=_HelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .workflow import emc_command
    from .workflow.configs import (
        AnalyzeConfig,
        CropsConfig,
        LocateConfig,
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
    d.add_argument("--quiet", action="store_true", help="no progress bars")

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
    s.add_argument("movie", help=".npy or .tif movie (T, H, W)")
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
    s.add_argument("--quiet", action="store_true", help="no progress bars")

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
    c.add_argument("movie", help=".npy or .tif movie (T, H, W)")
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
        help="epochs to train; with a checkpoint in --out (a previous run), this many more",
    )
    _option(t, TrainConfig, "batch_size", help="crops per mini-batch")
    _option(t, TrainConfig, "lr", help="learning rate (Adam)")
    _option(t, TrainConfig, "decoder", choices=["warp", "spatial"], help="rVAE decoder")
    t.add_argument("--out", required=True, help="output folder")
    _option(t, TrainConfig, "seed")
    t.add_argument("--quiet", action="store_true", help="no progress bars")

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
    a.add_argument("--out", required=True, help="output folder")
    _option(a, AnalyzeConfig, "seed")
    a.add_argument("--quiet", action="store_true", help="no progress bars")

    r = _command(
        sub,
        "report",
        "figures, report.md/html and summary.json of a folder",
        "The report of an analysed folder: conclusions, numbers with units, figures.",
    )
    r.add_argument("folder", help="folder with the outputs of 'analyze'")
    emc_command.add_parser(sub)
    return p


def _configure_threads() -> None:
    """The library's thread policy; its oversubscription warning as one plain stderr line."""
    import warnings

    from .device import configure_threads

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        configure_threads()
    for w in caught:
        print(f"warning: {str(w.message).removeprefix('pyrolatent: ')}", file=sys.stderr)


#: Exit status of a user error (bad file, bad value) and of Ctrl-C (128 + SIGINT).
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (an OSError names its file)."""
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in str(exc):
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _resume_hint(args) -> str:
    """What to run after an interruption: the same command resumes from its outputs."""
    out = getattr(args, "out", None) or getattr(args, "folder", None)
    if args.command == "train":
        return (
            f"run the same command again to resume from {out}/rvae_checkpoint.pt "
            "(its epochs are kept)"
        )
    if args.command == "demo":
        return f"run the same command again to resume: finished stages in {out} are kept"
    return "run the same command again; files already written are complete"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pyrolatent`` console script; returns the exit status.

    A user error (a missing, empty, unreadable or wrongly shaped input file, a
    value out of range, a checkpoint that does not fit, an output path that is
    a file or not writable) prints one line
    ``pyrolatent <command>: error: <file>: <what was expected>`` on stderr and
    returns 2. Ctrl-C prints one line with the resume hint and returns 130.
    Any other exception is an internal error and propagates with its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"\npyrolatent {args.command}: interrupted; {_resume_hint(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        if (
            isinstance(exc, OSError)
            and exc.filename is None
            and not isinstance(exc, FileNotFoundError)
        ):
            raise  # not about a user's path: an internal error
        print(f"pyrolatent {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _run(args) -> int:
    from . import workflow as wf
    from .workflow import emc_command

    _configure_threads()
    t0 = time.perf_counter()
    progress = not getattr(args, "quiet", True)
    if args.command == "demo":
        summary = wf.run_demo(
            args.out,
            quick=args.quick,
            seed=args.seed,
            progress=not args.quiet,
            label_free=args.label_free,
        )
        print(json.dumps({k: summary.get(k) for k in wf.SUMMARY_KEYS}, indent=2))
        print(f"report written to {args.out}/report.html ({time.perf_counter() - t0:.0f} s)")
        return 0
    if args.command == "segment":
        paths = wf.stage_segment(
            args.out,
            args.movie,
            _config(wf.SegmentConfig, args),
            masks_path=args.masks,
            ensemble_path=args.ensemble,
            labels_path=args.labels,
            label_frames=args.label_frames,
            progress=progress,
        )
    elif args.command == "locate":
        config = _config(wf.LocateConfig, args)
        paths = wf.stage_locate(args.out, args.probability, config, variance_path=args.variance)
    elif args.command == "crops":
        config = _config(wf.CropsConfig, args)
        paths = wf.stage_crops(args.out, args.movie, args.particles, config)
    elif args.command == "train":
        config = _config(wf.TrainConfig, args)
        paths = wf.stage_train(
            args.out, args.crops, args.index, config, resume="more", progress=progress
        )
    elif args.command == "analyze":
        paths = wf.stage_analyze(
            args.out,
            args.latents,
            args.particles,
            _config(wf.AnalyzeConfig, args),
            n_frames=args.n_frames,
            progress=progress,
        )
    elif args.command == "emc":
        print(json.dumps(emc_command.run(args), indent=2, default=str))
        paths = []
    else:
        paths = wf.write_report(args.folder)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
