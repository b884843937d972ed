"""EMC data-parallel speed: 2 ``torchrun`` processes against 1, one thread each.

Runs with no arguments and writes ``benchmarks/results/emc_ddp.json`` (merged
into ``emc.json`` as ``ddp_speedup_2proc`` when that exists). The frames are
4BED at 10^3 photons as in ``benchmarks/emc.py`` (Dragonfly's ``aux/4BED.pdb``,
or ``EMC_BENCH_PDB``), simulated identically in every process; each rank runs
:func:`pyrolatent.spi.emc.emc` on its contiguous shard and the M-step sums are
all-reduced (gloo). The time is the slowest rank's wall time inside ``emc``
(process start and rendezvous excluded), the median of ``ROUNDS`` alternating
rounds. The volumes of the two ranks must be identical, and equal to one
process's up to the order of summation.

Environment: ``EMC_DDP_SIZE`` (25), ``EMC_DDP_FRAMES`` (3000), ``EMC_DDP_LEVEL``
(4), ``EMC_DDP_ITERATIONS`` (3), ``EMC_DDP_ROUNDS`` (3). Needs two free cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.distributed as tdist

warnings.filterwarnings("ignore", message="Sparse")
torch.set_num_threads(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emc import _dragonfly_pdb  # noqa: E402  (benchmarks/emc.py: Dragonfly's 4BED, installed if missing)

from pyrolatent.io.pdb import read_pdb_atoms  # noqa: E402
from pyrolatent.spi.emc import (  # noqa: E402
    emc,
    flat_detector,
    simulate_frames,
    structure_intensity,
)

SIZE = int(os.environ.get("EMC_DDP_SIZE", 25))
FRAMES = int(os.environ.get("EMC_DDP_FRAMES", 3000))
LEVEL = int(os.environ.get("EMC_DDP_LEVEL", 4))
ITERATIONS = int(os.environ.get("EMC_DDP_ITERATIONS", 3))
ROUNDS = int(os.environ.get("EMC_DDP_ROUNDS", 3))
OUT = os.path.join(os.path.dirname(__file__), "results")


def _data():
    pos, z = read_pdb_atoms(_dragonfly_pdb())
    truth, _ = structure_intensity(pos, z, size=SIZE, oversampling=3.0)
    det = flat_detector(SIZE, beamstop=2.0)
    gen = torch.Generator().manual_seed(0)
    frames, _, _ = simulate_frames(truth, det, FRAMES, 1e3, generator=gen, scale_jitter=0.1)
    return frames, det


def worker(out: str) -> None:
    """One rank: its shard through ``emc``; saves volume and seconds."""
    tdist.init_process_group("gloo")
    rank, world = tdist.get_rank(), tdist.get_world_size()
    frames, det = _data()
    shard = frames.block(rank * FRAMES // world, (rank + 1) * FRAMES // world)
    tdist.barrier()
    t = time.perf_counter()
    res = emc(shard, det, size=SIZE, level=LEVEL, iterations=ITERATIONS, progress=False,
              seed=0, device="cpu")  # fmt: skip
    seconds = time.perf_counter() - t
    torch.save({"volume": res.volume, "seconds": seconds}, os.path.join(out, f"rank{rank}.pt"))
    tdist.destroy_process_group()


def run(nproc: int, folder: str) -> tuple[float, list[torch.Tensor]]:
    """Slowest rank's seconds and every rank's volume for ``nproc`` processes."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYROLATENT_DEVICE="cpu", EMC_DDP_WORKER="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", __file__, folder]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    states = [torch.load(os.path.join(folder, f"rank{r}.pt"), weights_only=True)
              for r in range(nproc)]  # fmt: skip
    return max(s["seconds"] for s in states), [s["volume"] for s in states]


def main() -> None:
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(ROUNDS):
            for nproc in (1, 2):
                seconds, volumes = run(nproc, folder)
                times[nproc].append(seconds)
                if nproc == 1:
                    single = volumes[0]
                else:
                    pair = volumes
    rel = float((pair[0] - single).abs().max() / single.abs().max())
    out = {
        "size": SIZE, "frames": FRAMES, "level": LEVEL, "iterations": ITERATIONS,
        "seconds_1proc": times[1], "seconds_2proc": times[2],
        "ddp_speedup_2proc": float(np.median(np.asarray(times[1]) / np.asarray(times[2]))),
        "ranks_identical": bool(torch.equal(pair[0], pair[1])),
        "max_rel_diff_vs_1proc": rel,
        "cpu_count": os.cpu_count(),
    }  # fmt: skip
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "emc_ddp.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    main_json = os.path.join(OUT, "emc.json")
    if os.path.exists(main_json):
        with open(main_json) as fh:
            merged = json.load(fh)
        merged["ddp_speedup_2proc"] = out["ddp_speedup_2proc"]
        merged["ddp_ranks_identical"] = out["ranks_identical"]
        with open(main_json, "w") as fh:
            json.dump(merged, fh, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    if os.environ.get("EMC_DDP_WORKER"):
        worker(sys.argv[1])
    else:
        main()
