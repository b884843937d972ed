"""Bounded memory and constant time per frame of the streaming segment stage (issue 15, item 4).

No arguments; CPU, one thread; writes ``benchmarks/results/streaming.json``.

This measures memory and scaling, not segmentation quality: the ensemble is a
2-member DilNet with ``filters=2`` and untrained (random) weights, so that 2,000
frames of 256 x 256 take minutes on one thread; the work per frame of a
convolutional network does not depend on its weights.

Two movies of random float32 frames, 200 and 2,000 frames of 256 x 256 (50 and
500 MiB), are written to ``.npy`` files first, so the input is on disk, not in
memory. Each run is a fresh child process (its own baseline) that imports the
package, then records its resident memory (``VmRSS``), resets its peak
(``/proc/self/clear_refs``) and runs the workflow's segment stage
(:func:`pyrolatent.workflow.stages.stage_segment` with a saved ensemble: the movie
opened lazily, the maps written block by block into the output folder with the
default block size), and reports its peak resident memory (``VmHWM``) and the
stage's seconds. The 200-frame run is made before and after the 2,000-frame run
and its seconds per frame averaged, so a change of the machine's load during the
benchmark shows in both.

Keys: ``peak_rss_above_block_gib`` (the 2,000-frame run's peak resident memory
above its baseline, less one input block, GiB; acceptance <= 1.0) and
``time_per_frame_ratio_2000_vs_200`` (seconds per frame at 2,000 frames over
those at 200, wall clock; acceptance in [0.8, 1.2]); with the same ratio of the
process's CPU seconds (less sensitive to other jobs on a shared machine), the
block size, the input block (GiB), every run's numbers (with the 1-minute load
average before and after it) and torch's thread count.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = 256
FRAMES = (200, 2000, 200)  # the short run brackets the long one
WRITE_BLOCK = 100  # frames per write of the input movie
GIB = 2.0**30


def _status_kib(key: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of ``/proc/self/status``, KiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status (Linux only)")


def child(movie_path: str, ensemble_path: str, out: str) -> dict:
    """One run of the segment stage in this (fresh) process; memory in bytes."""
    import torch

    from pyrolatent.segmentation.streaming import BLOCK_BYTES
    from pyrolatent.workflow.stages import stage_segment

    baseline = _status_kib("VmRSS") * 1024
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current resident memory
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    stage_segment(out, movie_path, ensemble_path=ensemble_path)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = _status_kib("VmHWM") * 1024
    prob = np.load(Path(out) / "probability.npy", mmap_mode="r")
    n_frames = int(prob.shape[0])
    assert prob.shape == (n_frames, SIZE, SIZE) and np.isfinite(prob[-1]).all()
    block_frames = max(1, BLOCK_BYTES // (4 * SIZE * SIZE))
    return {
        "frames": n_frames,
        "seconds": seconds,
        "seconds_per_frame": seconds / n_frames,
        "cpu_seconds_per_frame": cpu_seconds / n_frames,
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "baseline_rss_gib": baseline / GIB,
        "peak_rss_gib": peak / GIB,
        "peak_rss_above_baseline_gib": (peak - baseline) / GIB,
        "block_frames": block_frames,
        "input_block_gib": block_frames * SIZE * SIZE * 4 / GIB,
        "torch_threads": torch.get_num_threads(),
    }


def write_movie(path: Path, n_frames: int, seed: int) -> Path:
    """Random float32 frames ``(n_frames, SIZE, SIZE)`` written block by block."""
    rng = np.random.default_rng(seed)
    movie = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float32, shape=(n_frames, SIZE, SIZE)
    )
    for start in range(0, n_frames, WRITE_BLOCK):
        stop = min(n_frames, start + WRITE_BLOCK)
        movie[start:stop] = rng.normal(size=(stop - start, SIZE, SIZE))
    movie.flush()
    del movie
    return path


def main() -> dict:
    from pyrolatent.io.files import save_json
    from pyrolatent.segmentation import DeepEnsemble, DilNet

    work = Path(tempfile.mkdtemp(prefix="pyrolatent-streaming-"))
    try:
        ensemble_path = DeepEnsemble(DilNet(filters=2, members=2)).save(work / "ensemble.pt")
        movies = {n: write_movie(work / f"movie{n}.npy", n, seed=n) for n in set(FRAMES)}
        runs = []
        for n in FRAMES:
            out = work / f"out{n}"
            argv = [sys.executable, __file__, "--child", str(movies[n]), str(ensemble_path)]
            done = subprocess.run([*argv, str(out)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"child run of {n} frames failed:\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    long = next(r for r in runs if r["frames"] == max(FRAMES))
    short = [r["seconds_per_frame"] for r in runs if r["frames"] == min(FRAMES)]
    short_cpu = [r["cpu_seconds_per_frame"] for r in runs if r["frames"] == min(FRAMES)]
    result = {
        "peak_rss_above_block_gib": long["peak_rss_above_baseline_gib"] - long["input_block_gib"],
        "time_per_frame_ratio_2000_vs_200": long["seconds_per_frame"] / float(np.mean(short)),
        "cpu_time_per_frame_ratio_2000_vs_200": long["cpu_seconds_per_frame"]
        / float(np.mean(short_cpu)),
        "frame_size": [SIZE, SIZE],
        "block_frames": long["block_frames"],
        "input_block_gib": long["input_block_gib"],
        "movie_gib": max(FRAMES) * SIZE * SIZE * 4 / GIB,
        "seconds_per_frame_200": short,
        "seconds_per_frame_2000": long["seconds_per_frame"],
        "torch_threads": long["torch_threads"],
        "ensemble": "DilNet filters=2, 2 members, untrained (memory and scaling only)",
        "runs": runs,
    }
    save_json(ROOT / "benchmarks" / "results" / "streaming.json", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:])))
    else:
        r = main()
        print(json.dumps({k: v for k, v in r.items() if k != "runs"}, indent=2))
