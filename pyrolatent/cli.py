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

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
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
    s.add_argument("--train-frames", type=int, nargs="+", default=[0, 1, 2, 3])
    s.add_argument("--ensemble", help="a trained ensemble checkpoint instead of training")
    s.add_argument("--members", type=int, default=3)
    s.add_argument("--steps", type=int, default=150, help="baseline training steps")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true")

    loc = sub.add_parser("locate", help="particles from probability maps -> particles.csv")
    loc.add_argument("probability", help=".npy (T, H, W)")
    loc.add_argument("--variance", help=".npy (T, H, W) ensemble variance")
    loc.add_argument("--threshold", type=float, default=0.5)
    loc.add_argument("--min-area", type=float, default=15)
    loc.add_argument("--out", required=True)

    c = sub.add_parser("crops", help="crops around particles -> crops.npy, crops_index.csv")
    c.add_argument("movie")
    c.add_argument("particles", help="particles.csv (frame, row, col)")
    c.add_argument("--window", type=int, default=32)
    c.add_argument(
        "--align",
        action="store_true",
        help="rotate each crop so its particle's ellipse axis lies along +x "
        "(train then writes directed angles: axis + rVAE residual + polarity)",
    )
    c.add_argument(
        "--mask",
        default=None,
        help="with --align: keep a band |y| <= MASK pixels around the particle axis "
        "('auto': median minor axis + 1)",
    )
    c.add_argument("--out", required=True)

    t = sub.add_parser("train", help="train the rVAE -> rvae.pt, latents.csv")
    t.add_argument("crops")
    t.add_argument("index", help="crops_index.csv")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--decoder", choices=["warp", "spatial"], default="warp")
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true")

    a = sub.add_parser("analyze", help="KDE(L, t), NMF, transition, peaks, trajectories")
    a.add_argument("latents", help="latents.csv")
    a.add_argument("particles", help="particles.csv")
    a.add_argument("--n-frames", type=int, help="frames of the movie (default: last frame + 1)")
    a.add_argument("--kde-window", type=int, default=3)
    a.add_argument("--nmf", choices=["svi", "map"], default="svi")
    a.add_argument("--nmf-steps", type=int, default=1500)
    a.add_argument("--search-radius", type=float, default=21.0)
    a.add_argument("--out", required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--quiet", action="store_true")

    r = sub.add_parser("report", help="figures, report.md/html and summary.json of a folder")
    r.add_argument("folder")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pyrolatent`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    from . import workflow as wf

    t0 = time.perf_counter()
    try:
        if args.command == "demo":
            summary = wf.run_demo(args.out, quick=args.quick, seed=args.seed, quiet=args.quiet)
            print(json.dumps({k: summary.get(k) for k in wf.SUMMARY_KEYS}, indent=2))
            print(f"report written to {args.out}/report.html ({time.perf_counter() - t0:.0f} s)")
            return 0
        if args.command == "segment":
            paths = wf.stage_segment(
                args.out,
                args.movie,
                masks_path=args.masks,
                train_frames=args.train_frames,
                ensemble_path=args.ensemble,
                n_members=args.members,
                baseline_steps=args.steps,
                seed=args.seed,
                quiet=args.quiet,
            )
        elif args.command == "locate":
            paths = wf.stage_locate(
                args.out,
                args.probability,
                variance_path=args.variance,
                threshold=args.threshold,
                min_area=args.min_area,
            )
        elif args.command == "crops":
            mask = args.mask if args.mask in (None, "auto") else float(args.mask)
            paths = wf.stage_crops(
                args.out,
                args.movie,
                args.particles,
                window=args.window,
                align=args.align,
                mask_half_width=mask,
            )
        elif args.command == "train":
            paths = wf.stage_train(
                args.out,
                args.crops,
                args.index,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                decoder=args.decoder,
                seed=args.seed,
                quiet=args.quiet,
            )
        elif args.command == "analyze":
            paths = wf.stage_analyze(
                args.out,
                args.latents,
                args.particles,
                n_frames=args.n_frames,
                kde_window=args.kde_window,
                nmf_method=args.nmf,
                nmf_steps=args.nmf_steps,
                search_radius=args.search_radius,
                seed=args.seed,
                quiet=args.quiet,
            )
        else:
            paths = wf.write_report(args.folder)
    except (ValueError, FileNotFoundError) as exc:
        print(f"pyrolatent {args.command}: error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
