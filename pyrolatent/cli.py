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


def _option(parser, config_class, field: str, *flags: str, **kwargs) -> None:
    """An option whose destination and default are a field of a stage config."""
    default = {f.name: f.default for f in fields(config_class)}[field]
    if "action" not in kwargs and "type" not in kwargs and default is not None:
        kwargs["type"] = type(default)
    flags = flags or (f"--{field.replace('_', '-')}",)
    parser.add_argument(*flags, dest=field, default=default, **kwargs)


def _config(config_class, args):
    """The stage config from the parsed options (fields without an option keep defaults)."""
    names = {f.name for f in fields(config_class)}
    return config_class(**{k: v for k, v in vars(args).items() if k in names})


def _mask(text: str):
    return text if text == "auto" else float(text)


def build_parser() -> argparse.ArgumentParser:
    from .workflow.configs import (
        AnalyzeConfig,
        CropsConfig,
        LocateConfig,
        SegmentConfig,
        TrainConfig,
    )

    p = argparse.ArgumentParser(prog="pyrolatent", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="synthetic self-assembly movie -> report")
    d.add_argument("--quick", action="store_true", help="small movie, short training (< 3 min)")
    d.add_argument("--out", default="pyrolatent-report", help="output folder")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true")

    s = sub.add_parser("segment", help="train (or load) a segmentation ensemble, predict frames")
    s.add_argument("movie", help=".npy or .tif movie (T, H, W)")
    s.add_argument("--masks", help=".npy labels (T, H, W) for training")
    _option(s, SegmentConfig, "train_frames", type=int, nargs="+")
    s.add_argument("--ensemble", help="a trained ensemble checkpoint instead of training")
    _option(s, SegmentConfig, "n_members", "--members")
    _option(s, SegmentConfig, "baseline_steps", "--steps", help="baseline training steps")
    s.add_argument("--out", required=True)
    _option(s, SegmentConfig, "seed")
    s.add_argument("--quiet", action="store_true")

    loc = sub.add_parser("locate", help="particles from probability maps -> particles.csv")
    loc.add_argument("probability", help=".npy (T, H, W)")
    loc.add_argument("--variance", help=".npy (T, H, W) ensemble variance")
    _option(loc, LocateConfig, "threshold")
    _option(loc, LocateConfig, "min_area")
    loc.add_argument("--out", required=True)

    c = sub.add_parser("crops", help="crops around particles -> crops.npy, crops_index.csv")
    c.add_argument("movie")
    c.add_argument("particles", help="particles.csv (frame, row, col)")
    _option(c, CropsConfig, "window")
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
    c.add_argument("--out", required=True)

    t = sub.add_parser("train", help="train the rVAE -> rvae.pt, latents.csv")
    t.add_argument("crops")
    t.add_argument("index", help="crops_index.csv")
    _option(
        t,
        TrainConfig,
        "epochs",
        help="epochs to train; with a checkpoint in --out (a previous run), this many more",
    )
    _option(t, TrainConfig, "batch_size")
    _option(t, TrainConfig, "lr")
    _option(t, TrainConfig, "decoder", choices=["warp", "spatial"])
    t.add_argument("--out", required=True)
    _option(t, TrainConfig, "seed")
    t.add_argument("--quiet", action="store_true")

    a = sub.add_parser("analyze", help="KDE(L, t), NMF, transition, peaks, trajectories")
    a.add_argument("latents", help="latents.csv")
    a.add_argument("particles", help="particles.csv")
    a.add_argument("--n-frames", type=int, help="frames of the movie (default: last frame + 1)")
    _option(a, AnalyzeConfig, "kde_window")
    _option(a, AnalyzeConfig, "nmf_method", "--nmf", choices=["svi", "map"])
    _option(a, AnalyzeConfig, "nmf_steps")
    _option(a, AnalyzeConfig, "search_radius")
    a.add_argument("--out", required=True)
    _option(a, AnalyzeConfig, "seed")
    a.add_argument("--quiet", action="store_true")

    r = sub.add_parser("report", help="figures, report.md/html and summary.json of a folder")
    r.add_argument("folder")
    return p


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

    t0 = time.perf_counter()
    progress = not getattr(args, "quiet", True)
    if args.command == "demo":
        summary = wf.run_demo(args.out, quick=args.quick, seed=args.seed, quiet=args.quiet)
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
    else:
        paths = wf.write_report(args.folder)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
