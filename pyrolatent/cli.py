"""The ``pyrolatent`` command line.

``pyrolatent demo [--quick] [--out DIR] [--seed N]`` runs the whole
self-assembly chain on a generated movie and writes a report. The
subcommands run single stages on a user's own files (npy/tif movies,
npy/csv/json tables, checkpoints), so the chain can be entered anywhere::

    pyrolatent preprocess movie.asd --level plane --scan-lines median --out run  # AFM only
    pyrolatent segment movie.tif --masks masks.npy --train-frames 0 1 2 --out run
    pyrolatent locate run/probability.npy --out run
    pyrolatent crops movie.tif run/particles.csv --window 32 --align --mask auto --out run
    pyrolatent train run/crops.npy run/crops_index.csv --epochs 30 --out run
    pyrolatent analyze run/latents.csv run/particles.csv --out run
    pyrolatent report run
"""

from __future__ import annotations

import json
import sys
import time

from .cli_parser import build_parser, config_from_args, movie_options

__all__ = ["main", "build_parser"]


def _configure_cpu() -> None:
    """The library's CPU policies (threads, allocator); the thread warning as one stderr line."""
    import warnings

    from .device import configure_cpu

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        configure_cpu()
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

    _configure_cpu()
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
    if args.command == "preprocess":
        paths = wf.stage_preprocess(
            args.out, args.movie, config_from_args(wf.PreprocessConfig, args)
        )
    elif args.command == "segment":
        paths = wf.stage_segment(
            args.out,
            args.movie,
            config_from_args(wf.SegmentConfig, args),
            masks_path=args.masks,
            ensemble_path=args.ensemble,
            labels_path=args.labels,
            label_frames=args.label_frames,
            progress=progress,
            movie_options=movie_options(args),
        )
    elif args.command == "locate":
        config = config_from_args(wf.LocateConfig, args)
        paths = wf.stage_locate(args.out, args.probability, config, variance_path=args.variance)
    elif args.command == "crops":
        config = config_from_args(wf.CropsConfig, args)
        paths = wf.stage_crops(
            args.out, args.movie, args.particles, config, movie_options=movie_options(args)
        )
    elif args.command == "train":
        config = config_from_args(wf.TrainConfig, args)
        paths = wf.stage_train(
            args.out, args.crops, args.index, config, resume="more", progress=progress
        )
    elif args.command == "analyze":
        paths = wf.stage_analyze(
            args.out,
            args.latents,
            args.particles,
            config_from_args(wf.AnalyzeConfig, args),
            n_frames=args.n_frames,
            progress=progress,
            quality_path=args.quality,
            exclude_flagged=not args.keep_flagged,
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
