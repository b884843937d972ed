"""Diagnostic: how far the C2C12 test labels (frames 7-9) can be reached at all.

Issue 4 asks for IoU >= 0.7 on frames 7-9 after training on frames 0-6. This
script runs the segmentation benchmark's recipe (``c2c12_masks``) on other frame
splits, to separate what the model cannot learn from what the labels allow:

* ``recipe``: train 0-6, segment all ten frames. ``held_out_iou`` pools frames 7-9
  (the criterion); ``in_sample_iou_per_frame`` scores frames 0-6, which the model
  was trained on;
* ``train_5_6_test_9`` and ``train_7_8_test_9``: two training frames each, from
  before and from inside the test block, scored on frame 9;
* ``in_sample_7_9``: trained on frames 7-9 themselves and scored on them, an
  upper bound for this recipe that no honest split can reach.

Also written: each frame's labelled foreground fraction, and for every split the
ratio of predicted to labelled area. None of these runs feeds a choice of the
recipe; they only measure the labels. Run ``python benchmarks/c2c12_label_ceiling.py``
(CPU; ``OMP_NUM_THREADS`` torch threads, default 1). It writes
``benchmarks/results/c2c12_label_ceiling.json``; without ``../shared`` it exits
with a message.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from segmentation import C2C12, c2c12_masks  # noqa: E402

from pyrolatent.segmentation.metrics import pixel_iou  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "c2c12_label_ceiling.json"

SPLITS = {
    "recipe": (tuple(range(7)), tuple(range(10))),
    "train_5_6_test_9": ((5, 6), (9,)),
    "train_7_8_test_9": ((7, 8), (9,)),
    "in_sample_7_9": ((7, 8, 9), (7, 8, 9)),
}


def score(masks: np.ndarray, labels: np.ndarray, frames: tuple[int, ...]) -> dict:
    """Pooled IoU, per-frame IoU and predicted/labelled area over ``frames``.

    ``masks`` and ``labels`` are ``(len(frames), H, W)`` booleans, in that order.
    """
    return {
        "frames": list(frames),
        "iou": pixel_iou(masks, labels),
        "iou_per_frame": [pixel_iou(m, t) for m, t in zip(masks, labels, strict=True)],
        "area_ratio": float(masks.sum() / labels.sum()),
    }


def main() -> dict:
    if not C2C12.is_file():
        sys.exit(f"{C2C12} not found: this diagnostic needs ../shared/data beside the checkout")
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 1)))
    data = np.load(C2C12)
    images = data["images"].astype(np.float32)
    labels = data["labels"] > 0
    results = {"label_foreground_fraction": labels.mean(axis=(1, 2)).tolist()}
    for name, (train, predict) in SPLITS.items():
        start = time.perf_counter()
        masks = c2c12_masks(images, labels, train_frames=train, predict_frames=predict)
        row = {"train_frames": list(train), "seconds": time.perf_counter() - start}
        if name == "recipe":
            row["held_out"] = score(masks[7:], labels[7:], (7, 8, 9))
            row["in_sample"] = score(masks[:7], labels[:7], train)
        else:
            row["test"] = score(masks, labels[list(predict)], predict)
        results[name] = row
        print(name, json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
