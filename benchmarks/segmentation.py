"""Segmentation benchmark: ensemble speed, training throughput, synthetic and real accuracy.

Run with no arguments (CPU; one torch thread unless ``OMP_NUM_THREADS`` says
otherwise, which also avoids OpenMP spin-waiting on a shared machine).
Writes ``benchmarks/results/segmentation.json``:

* ``frames_per_s_single``: 512x512 frames per second through ``DeepEnsemble.predict``
  with a one-member dilnet (the reference, measured in this run);
* ``frames_per_s_ensemble12``: the same with the 12-member ensemble as
  ``DeepEnsemble.predict`` runs it by default (``member_pass="auto"``: on the CPU
  the members one after another as views of the stacked weights, channels-last;
  on CUDA one grouped pass; never any weight reloading), and
  ``frames_per_s_ensemble12_grouped``, the one grouped pass, on this device;
* ``ensemble_overhead`` = 12 * (single time) / (ensemble time); 1 means no overhead;
* ``frames_per_s_ensemble12_vmap``: the alternative ``torch.func.stack_module_state``
  + ``vmap`` over 12 separate networks, for comparison;
* ``train_images_per_s``: training patches per second (baseline, 64x64 patches) and
  ``train_images_per_s_members12`` (12 stacked members);
* ``iou_synthetic``, ``f1_synthetic``, ``orientation_median_error_deg``, ``link_recall``:
  a 12-member ensemble trained on 4 frames of the synthetic movie, scored on 10 others;
* ``iou_c2c12`` (and ``iou_c2c12_per_frame``): trained on frames 0-6 of the real C2C12
  movie, scored on frames 7-9, with the slow test's recipe (8-fold test-time
  rotation/flip average, threshold 0.5, regions of at least 40 pixels), reported;
* ``iou_c2c12_lofo_0_6`` (issue 15's restated criterion, >= 0.72): leave-one-frame-out
  IoU over frames 0-6, pooled over the seven held-out frames, with
  ``iou_c2c12_lofo_0_6_mean``, ``iou_c2c12_lofo_per_frame``
  and the folds (:func:`c2c12_lofo`).

``python benchmarks/segmentation.py --only c2c12_lofo [--folds 0,1,2]`` runs the
leave-one-frame-out part alone (seven trainings, about 12 minutes each on one idle CPU
thread), one file per finished fold, resumable and shareable between processes
(:func:`lofo_only`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie
from pyrolatent.segmentation import (
    DeepEnsemble,
    DilNet,
    foreground_mask,
    stack_members,
    train_ensemble,
)
from pyrolatent.segmentation.evaluate import score_on_movie
from pyrolatent.segmentation.metrics import (
    pixel_iou,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "segmentation.json"
C2C12 = ROOT.parent / "shared" / "data" / "c2c12_cells" / "data_small.npz"


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def speed(n_frames: int = 2, repeats: int = 3) -> dict:
    frames = np.random.default_rng(0).normal(size=(n_frames, 512, 512)).astype(np.float32)
    singles = [DilNet().eval() for _ in range(12)]
    single = DeepEnsemble(network=singles[0])
    ensemble = DeepEnsemble(network=stack_members(singles).eval())

    def run(ens):
        return lambda: ens.predict(frames, tile_size=512, overlap=0, batch_size=1, progress=False)

    t_single = _best_time(run(single), repeats) / n_frames
    t_ensemble = _best_time(run(ensemble), max(1, repeats - 1)) / n_frames
    t_grouped = (
        _best_time(
            lambda: ensemble.predict(
                frames,
                tile_size=512,
                overlap=0,
                batch_size=1,
                member_pass="grouped",
                progress=False,
            ),
            1,
        )
        / n_frames
    )

    params, buffers = torch.func.stack_module_state(singles)
    template = copy.deepcopy(singles[0]).to("meta")

    def one(p, b, x):
        return torch.func.functional_call(template, (p, b), (x,))

    batched = torch.func.vmap(one, in_dims=(0, 0, None))
    x = torch.from_numpy(frames[:1, None])
    t_vmap = _best_time(lambda: torch.sigmoid(batched(params, buffers, x)), 1)
    return {
        "frames_per_s_single": 1.0 / t_single,
        "frames_per_s_ensemble12": 1.0 / t_ensemble,
        "frames_per_s_ensemble12_grouped": 1.0 / t_grouped,
        "ensemble_overhead": 12 * t_single / t_ensemble,
        "frames_per_s_ensemble12_vmap": 1.0 / t_vmap,
    }


#: The synthetic-movie acceptance recipe (this benchmark and the slow end-to-end test).
#: No early stop: with patience 6 a noisy validation loss stopped the baseline at step 500
#: on CPU (IoU 0.877); trained 1500 steps it measured IoU 0.925, F1 1.0, axis error 0.46 deg,
#: link recall 1.0 (CPU, 213 s, 2026-11-22).
SYNTHETIC_RECIPE = dict(
    network_config={"filters": 16},
    n_members=12,
    baseline_steps=1500,
    member_steps=60,
    batch_size=8,
    patch_size=64,
    lr=3e-3,
    eval_every=50,
    patience=None,
)


def synthetic() -> dict:
    movie = make_self_assembly_movie(n_frames=30, size=256, seed=1)
    train, test = [0, 5, 10, 15], list(range(20, 30))
    ensemble = train_ensemble(
        movie.frames[train], movie.masks[train], **SYNTHETIC_RECIPE, progress=False
    )
    mean, var = ensemble.predict(movie.frames[test])
    score = score_on_movie(movie, mean, var, test)
    history = ensemble.history
    return {
        "iou_synthetic": score["iou"],
        "f1_synthetic": score["f1"],
        "f1_synthetic_all_particles": score["f1_all_particles"],
        "orientation_median_error_deg": score["orientation_median_error_deg"],
        "link_recall": score["link_recall"],
        "train_images_per_s": history["baseline"]["images_per_s"],
        "train_images_per_s_members12": history["members"]["images_per_s"],
        "baseline_best_step": history["baseline"]["best_step"],
    }


def c2c12_masks(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    train_frames: tuple[int, ...] = tuple(range(7)),
    predict_frames: tuple[int, ...] = (7, 8, 9),
) -> np.ndarray:
    """Train the C2C12 recipe on some frames and return foreground masks of others.

    The one copy of the recipe; ``c2c12_held_out_iou`` (and through it
    ``tests/real/test_real_segmentation.py``) and ``benchmarks/c2c12_label_ceiling.py``
    run it. Every choice was made on frames 0-6 only (GPU exploration): with frame 6
    held out, 16 variants x 2 seeds (width, depth, dilated bottleneck, CE/Dice/focal
    losses, weaker/stronger augmentation, foreground sampling, learning rate, patch
    size, 600-3000 steps, opened training masks) stayed within seed noise of this
    recipe (held-out IoU 0.68-0.72); then leave-one-frame-out runs (frames 3-6)
    picked the post-processing by their mean held-out IoU: the 8-fold rotation/flip
    test-time average, threshold 0.5, regions of >= 40 pixels (0.748, against 0.728
    for a plain threshold; openings of the mask did not help). Training uses all
    training frames (no validation frame, as there is no early stopping).

    Parameters
    ----------
    images : numpy.ndarray
        ``(10, H, W)`` float32 frames.
    labels : numpy.ndarray
        ``(10, H, W)`` boolean foreground.
    train_frames, predict_frames : tuple of int
        Frame indices to train on and to segment.

    Returns
    -------
    numpy.ndarray
        ``(len(predict_frames), H, W)`` boolean masks.
    """
    train, predict = list(train_frames), list(predict_frames)
    ensemble = train_ensemble(
        images[train],
        labels[train],
        network="unet",
        network_config={"filters": 16, "depth": 4},
        n_members=12,
        baseline_steps=1200,
        member_steps=40,
        batch_size=8,
        patch_size=96,
        eval_every=100,
        patience=None,
        foreground_fraction=0.5,
        bfloat16=True,
        val_fraction=0,
        seed=0,
        progress=False,
    )
    mean, _ = ensemble.predict(images[predict], tta=True)
    return foreground_mask(mean[:, 0], threshold=0.5, min_area=40)


def c2c12_held_out_iou(images: np.ndarray, labels: np.ndarray) -> tuple[float, list[float]]:
    """Pooled and per-frame IoU on frames 7-9 of :func:`c2c12_masks` trained on 0-6.

    ``images`` and ``labels`` are as for :func:`c2c12_masks`.
    """
    mask = c2c12_masks(images, labels)
    per_frame = [pixel_iou(m, t) for m, t in zip(mask, labels[7:], strict=True)]
    return pixel_iou(mask, labels[7:]), per_frame


LOFO_DIR = RESULTS.parent / "c2c12_lofo"


def c2c12_lofo_fold(images: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """One fold: the unchanged recipe trained on frames 0-6 but ``k``, scored on ``k``.

    Returns the held-out frame, its IoU, intersection and union pixel counts and
    the seconds taken.
    """
    start = time.perf_counter()
    train = tuple(t for t in range(7) if t != k)
    mask = c2c12_masks(images, labels, train_frames=train, predict_frames=(k,))[0]
    inter, union = int((mask & labels[k]).sum()), int((mask | labels[k]).sum())
    return {
        "held_out": k,
        "iou": inter / union,
        "intersection": inter,
        "union": union,
        "seconds": time.perf_counter() - start,
    }


def combine_lofo(rows: list[dict]) -> dict:
    """The criterion from the folds: IoU pooled over the held-out frames, and per frame.

    ``iou_c2c12_lofo_0_6`` pools intersections and unions of the held-out frames;
    ``iou_c2c12_lofo_0_6_mean`` is the mean of their per-frame IoUs.
    """
    rows = sorted(rows, key=lambda r: r["held_out"])
    return {
        "iou_c2c12_lofo_0_6": sum(r["intersection"] for r in rows) / sum(r["union"] for r in rows),
        "iou_c2c12_lofo_0_6_mean": float(np.mean([r["iou"] for r in rows])),
        "iou_c2c12_lofo_per_frame": [r["iou"] for r in rows],
        "c2c12_lofo_folds": rows,
    }


def c2c12_lofo(images: np.ndarray, labels: np.ndarray, *, folds=tuple(range(7))) -> dict:
    """Leave-one-frame-out IoU over frames 0-6 (issue 15's restated C2C12 criterion).

    For each frame ``k`` of ``folds`` the unchanged recipe (:func:`c2c12_masks`) is
    trained on the other frames of 0-6 and segments frame ``k``
    (:func:`c2c12_lofo_fold`); :func:`combine_lofo` pools the folds. Frames 7-9,
    labelled in a tighter style, are reported beside it by :func:`c2c12`
    (``iou_c2c12``), not asserted.

    Parameters
    ----------
    images, labels : numpy.ndarray
        As for :func:`c2c12_masks`.
    folds : tuple of int
        Held-out frames (default all of 0-6).

    Returns
    -------
    dict
        ``iou_c2c12_lofo_0_6``, ``iou_c2c12_lofo_0_6_mean``, ``iou_c2c12_lofo_per_frame``
        and ``c2c12_lofo_folds``.
    """
    return combine_lofo([c2c12_lofo_fold(images, labels, k) for k in folds])


def c2c12() -> dict:
    if not C2C12.is_file():
        return {"iou_c2c12": None}
    data = np.load(C2C12)
    images, labels = data["images"].astype(np.float32), data["labels"] > 0
    iou, per_frame = c2c12_held_out_iou(images, labels)
    results = {"iou_c2c12": iou, "iou_c2c12_per_frame": per_frame}
    results.update(c2c12_lofo(images, labels))
    return results


def lofo_only(folds=tuple(range(7))) -> dict:
    """Run the leave-one-frame-out folds alone, resumably, one file per fold.

    A finished fold is written to ``benchmarks/results/c2c12_lofo/fold_<k>.json`` and
    skipped when run again, so several processes can share the folds and a crash
    loses one fold at most. When all seven are there, their combined keys are merged
    into ``segmentation.json``.
    """
    data = np.load(C2C12)
    images, labels = data["images"].astype(np.float32), data["labels"] > 0
    LOFO_DIR.mkdir(parents=True, exist_ok=True)
    for k in folds:
        path = LOFO_DIR / f"fold_{k}.json"
        if path.is_file():
            continue
        row = c2c12_lofo_fold(images, labels, k)
        path.write_text(json.dumps(row, indent=2))
        print(json.dumps(row), flush=True)
    rows = [json.loads(p.read_text()) for p in sorted(LOFO_DIR.glob("fold_*.json"))]
    if len(rows) < 7:
        print(f"{len(rows)} of 7 folds done", flush=True)
        return {}
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results.update(combine_lofo(rows))
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if "lofo" in k}, indent=2))
    return results


def main() -> dict:
    torch.manual_seed(0)
    threads = int(os.environ.get("OMP_NUM_THREADS", 1))
    torch.set_num_threads(threads)
    start = time.perf_counter()
    results = {"torch_threads": threads}
    results.update(speed())
    print({k: round(v, 4) for k, v in results.items()}, flush=True)
    results.update(synthetic())
    print({k: v for k, v in results.items()}, flush=True)
    results.update(c2c12())
    results["wall_s"] = time.perf_counter() - start
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["c2c12_lofo"], help="run one part alone")
    parser.add_argument(
        "--folds", default="0,1,2,3,4,5,6", help="held-out frames for --only c2c12_lofo"
    )
    args = parser.parse_args()
    if args.only == "c2c12_lofo":
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 1)))
        lofo_only(tuple(int(k) for k in args.folds.split(",")))
    else:
        main()
