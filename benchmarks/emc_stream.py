"""10^6 sparse frames streamed from a Dragonfly ``.emc`` file through one EMC iteration.

Runs with no arguments on one thread and writes ``benchmarks/results/emc_stream.json``
(merged into ``emc.json`` as ``peak_rss_gib_1e6_frames`` when that exists). The
frames (21-pixel flat detector, 100 photons each) are generated and written block
by block, so neither the generator nor EMC ever holds them all; the peak resident
memory of the process (``ru_maxrss``) is reported.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
import warnings

import torch

warnings.filterwarnings("ignore", message="Sparse")
torch.set_num_threads(1)

from pyrolatent.io.emc_photons import EMCFile, write_emc  # noqa: E402
from pyrolatent.spi.emc import (  # noqa: E402
    emc,
    flat_detector,
    simulate_frames,
    structure_intensity,
)

N = int(os.environ.get("EMC_STREAM_FRAMES", 1_000_000))
BLOCK = 50_000
OUT = os.path.join(os.path.dirname(__file__), "results")


class _Generated:
    """A frame source that simulates block ``k`` on request (seeded by ``k``)."""

    def __init__(self, intensity, det, n):
        self.intensity, self.det, self.n = intensity, det, n
        self.num_pixels = det.num_pixels

    def __len__(self):
        return self.n

    def block(self, start, stop):
        stop = min(stop, self.n)
        g = torch.Generator().manual_seed(start)
        fr, _, _ = simulate_frames(self.intensity, self.det, stop - start, 100, generator=g)
        return fr


def main():
    g = torch.Generator().manual_seed(0)
    intensity, _ = structure_intensity(torch.randn(40, 3, generator=g) * 6, size=21)
    det = flat_detector(21, beamstop=1.5)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "photons.emc")
        t = time.perf_counter()
        write_emc(path, _Generated(intensity, det, N), chunk=BLOCK)
        write_s = time.perf_counter() - t
        size_gib = os.path.getsize(path) / 2**30
        frames = EMCFile(path)
        t = time.perf_counter()
        res = emc(frames, det, size=21, level=2, iterations=1, frame_chunk=BLOCK, progress=False)
        iter_s = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    out = {"frames": N, "file_gib": size_gib, "write_s": write_s, "iteration_s": iter_s,
           "peak_rss_gib_1e6_frames": rss, "log_likelihood": res.log_likelihood}  # fmt: skip
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "emc_stream.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    main_json = os.path.join(OUT, "emc.json")
    if os.path.exists(main_json):
        with open(main_json) as fh:
            merged = json.load(fh)
        merged["peak_rss_gib_1e6_frames"] = rss
        with open(main_json, "w") as fh:
            json.dump(merged, fh, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
