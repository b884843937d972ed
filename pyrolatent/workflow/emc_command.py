"""The ``pyrolatent emc`` command: 3D EMC on a Dragonfly ``.emc`` or a CXI file.

Inputs: sparse photons (``.emc``, with Dragonfly's detector file) or CXI patterns
(``.cxi``/``.h5``, square odd-sized, treated as a flat detector with the file's
mask). Outputs in ``--out``: ``intensity.mrc`` (the 3D intensity),
``measured.mrc`` (1 where voxels received data), ``orientations.npz`` (per frame:
best quaternion, rotation, probability, spread, scale), ``emc.json`` (settings,
per-iteration log-likelihood, mutual information and beta) and ``state.pt``
(the resumable state; ``--resume`` continues from it).

After the global EMC, ``--local-iterations`` (default 4) iterations of
:func:`~pyrolatent.spi.emc.local_emc` refine the intensity and each frame's
orientation on a grid that follows the frame (``--local-radius``,
``--local-spacing``, radians); the outputs are then the local result (orientations
the posterior mean, ``spread`` about it; no grid ``probability``) and its state is
``state_local.pt``. ``--local-iterations 0`` keeps the global result.

``--classes C`` (default 1) then classifies the frames into ``C`` intensities
(3D classification, ``local_emc(classes=C)``, ``--class-iterations`` iterations,
default 20, search radius half of ``--local-radius``, state
``state_classes.pt``): ``intensity_class<c>.mrc`` per class, ``intensity.mrc``
the most populated one, and ``class_probability`` ``(N, C)`` in
``orientations.npz``; ``emc.json`` gets the class weights.
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
    p.add_argument("--local-iterations", type=int, default=4,
                   help="local EMC iterations after the global ones (0: none)")  # fmt: skip
    p.add_argument("--local-radius", type=float, default=0.12, help="local search radius (rad)")
    p.add_argument("--local-spacing", type=float, default=0.03, help="local grid step (rad)")
    p.add_argument("--classes", type=int, default=1,
                   help="3D classes after local EMC (default 1: no classification)")  # fmt: skip
    p.add_argument("--class-iterations", type=int, default=20,
                   help="iterations of the classification (>= 15: its annealing)")  # fmt: skip
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
    from ..primitives.so3 import matrix_to_quaternion
    from ..spi.emc import emc, local_emc

    frames, det = _load(args)
    os.makedirs(args.out, exist_ok=True)
    beta = args.beta if args.beta == "anneal" else float(args.beta)
    if args.local_iterations < 0:
        raise ValueError(f"--local-iterations: expected >= 0, got {args.local_iterations}")
    state = os.path.join(args.out, "state.pt")
    if args.classes < 1 or (args.classes > 1 and args.local_iterations < 1):
        raise ValueError(f"--classes: expected >= 1 (and > 1 only after --local-iterations "
                         f">= 1), got {args.classes}")  # fmt: skip
    state_local = os.path.join(args.out, "state_local.pt")
    state_classes = os.path.join(args.out, "state_classes.pt")
    for path in (state, state_local, state_classes):
        if not args.resume and os.path.exists(path):
            os.remove(path)
    res = emc(
        frames, det, size=args.size, level=args.level, iterations=args.iterations, beta=beta,
        scaling=not args.no_scaling, group=args.group, frame_chunk=args.frame_chunk,
        orientation_chunk=args.orientation_chunk, checkpoint=state, resume=args.resume,
        progress=not args.quiet, seed=args.seed, device=args.device,
    )  # fmt: skip
    out = res
    if args.local_iterations > 0:
        out = local_emc(
            frames, det, res, iterations=args.local_iterations, radius=args.local_radius,
            spacing=args.local_spacing, group=args.group, checkpoint=state_local,
            resume=args.resume, progress=not args.quiet, device=args.device,
        )  # fmt: skip
    if args.classes > 1:
        out = local_emc(
            frames, det, out, iterations=args.class_iterations, radius=args.local_radius / 2,
            spacing=args.local_spacing, classes=args.classes, group=args.group,
            checkpoint=state_classes, resume=args.resume, progress=not args.quiet,
            seed=args.seed, device=args.device,
        )  # fmt: skip
    if out is not res:
        orientations = {"quaternion": matrix_to_quaternion(out.rotation).numpy(),
                        "rotation": out.rotation.numpy()}  # fmt: skip
    else:
        orientations = {"quaternion": res.quaternions[res.best_index].numpy(),
                        "rotation": res.best_rotation.numpy(),
                        "probability": res.best_probability.numpy()}  # fmt: skip
    volume, measured = out.volume, out.measured
    if args.classes > 1:
        orientations["class_probability"] = out.class_probability.numpy()
        for c, v in enumerate(volume):
            write_mrc(os.path.join(args.out, f"intensity_class{c}.mrc"), v.numpy())
        top = int(out.class_weights.argmax())
        volume, measured = volume[top], measured[top]
    write_mrc(os.path.join(args.out, "intensity.mrc"), volume.numpy())
    write_mrc(os.path.join(args.out, "measured.mrc"), measured.numpy().astype(np.int16))
    np.savez(os.path.join(args.out, "orientations.npz"), **orientations,
             spread=out.spread.numpy(), scale=out.scales.numpy())  # fmt: skip
    summary = {
        "photons": args.photons, "frames": len(frames), "level": args.level,
        "iterations": res.iterations, "size": int(res.volume.shape[0]), "group": args.group,
        "log_likelihood": res.log_likelihood, "mutual_information": res.mutual_information,
        "beta": res.beta, "local_iterations": args.local_iterations,
        "local_log_likelihood": out.log_likelihood if out is not res else [],
        "classes": args.classes,
        "class_weights": out.class_weights.tolist() if args.classes > 1 else [1.0],
    }  # fmt: skip
    with open(os.path.join(args.out, "emc.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    return summary
