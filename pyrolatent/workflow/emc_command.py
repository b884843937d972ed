"""The ``pyrolatent emc`` command: 3D EMC on a Dragonfly ``.emc`` or a CXI file.

Inputs: sparse photons (``.emc``, with Dragonfly's detector file) or CXI patterns
(``.cxi``/``.h5``, square odd-sized, treated as a flat detector with the file's
mask). Outputs in ``--out``: ``intensity.mrc`` (the 3D intensity),
``measured.mrc`` (1 where voxels received data), ``orientations.npz`` (per frame:
best quaternion, rotation, probability, spread, scale), ``emc.json`` (settings,
per-iteration log-likelihood, mutual information and beta) and ``state.pt``
(the resumable state; ``--resume`` continues from it).
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register the ``emc`` sub-command on an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser(
        "emc", help="3D EMC reconstruction from unoriented sparse photon frames (.emc or CXI)"
    )
    p.add_argument("photons", help="Dragonfly .emc photon file, or a CXI (.cxi/.h5) file")
    p.add_argument("--detector", help="Dragonfly detector .h5 (required with .emc input)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--level", type=int, default=4, help="quaternion refinement level (>= 1)")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--size", type=int, default=None, help="odd volume size (default: from q)")
    p.add_argument("--group", default=None, help="point group to symmetrise with (default none)")
    p.add_argument("--beta", default="anneal", help="'anneal' (default) or a fixed exponent")
    p.add_argument("--no-scaling", action="store_true", help="no per-frame scale factors")
    p.add_argument("--frame-chunk", type=int, default=4096)
    p.add_argument("--orientation-chunk", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _load(args):
    from ..io.cxi import CXIFrames
    from ..io.emc_photons import EMCFile, read_dragonfly_detector
    from ..spi.emc import Detector, flat_detector

    path = args.photons
    if not os.path.exists(path):
        raise ValueError(f"photons: {path} does not exist")
    if path.lower().endswith((".cxi", ".h5", ".hdf5")):
        frames = CXIFrames(path)
        h, w = frames.shape[1:]
        if args.detector:
            det = read_dragonfly_detector(args.detector)
        else:
            if h != w or h % 2 == 0:
                raise ValueError(f"{path}: patterns {h}x{w}; a flat detector needs square odd "
                                 "patterns (or pass --detector)")  # fmt: skip
            flat = flat_detector(h, beamstop=0.0)
            mask = flat.mask & torch.from_numpy(frames.mask.reshape(-1))
            det = Detector(coords=flat.coords, correction=flat.correction, mask=mask,
                           shape=(h, w))  # fmt: skip
        return frames, det
    if path.lower().endswith(".emc"):
        if not args.detector:
            raise ValueError("--detector: a Dragonfly detector file is required with .emc input")
        return EMCFile(path), read_dragonfly_detector(args.detector)
    raise ValueError(f"photons: unsupported file type {path!r}; expected .emc, .cxi or .h5")


def run(args) -> dict:
    """Run EMC as described by parsed ``args``; returns the summary written to ``emc.json``."""
    from ..io.mrc import write_mrc
    from ..spi.emc import emc

    frames, det = _load(args)
    os.makedirs(args.out, exist_ok=True)
    beta = args.beta if args.beta == "anneal" else float(args.beta)
    state = os.path.join(args.out, "state.pt")
    if not args.resume and os.path.exists(state):
        os.remove(state)
    res = emc(
        frames, det, size=args.size, level=args.level, iterations=args.iterations, beta=beta,
        scaling=not args.no_scaling, group=args.group, frame_chunk=args.frame_chunk,
        orientation_chunk=args.orientation_chunk, checkpoint=state, resume=args.resume,
        progress=not args.quiet, seed=args.seed, device=args.device,
    )  # fmt: skip
    write_mrc(os.path.join(args.out, "intensity.mrc"), res.volume.numpy())
    write_mrc(os.path.join(args.out, "measured.mrc"), res.measured.numpy().astype(np.int16))
    np.savez(
        os.path.join(args.out, "orientations.npz"),
        quaternion=res.quaternions[res.best_index].numpy(), rotation=res.best_rotation.numpy(),
        probability=res.best_probability.numpy(), spread=res.spread.numpy(),
        scale=res.scales.numpy(),
    )  # fmt: skip
    summary = {
        "photons": args.photons, "frames": len(frames), "level": args.level,
        "iterations": res.iterations, "size": int(res.volume.shape[0]), "group": args.group,
        "log_likelihood": res.log_likelihood, "mutual_information": res.mutual_information,
        "beta": res.beta,
    }  # fmt: skip
    with open(os.path.join(args.out, "emc.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    return summary
