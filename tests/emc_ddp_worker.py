"""Worker of the EMC data-parallel test: ``torchrun --nproc_per_node=2 emc_ddp_worker.py OUT``.

Each rank takes its half of the frames; the M-step sums are all-reduced inside
:func:`pyrolatent.spi.emc.emc`.
"""

import os
import sys
import time
import warnings

import torch
import torch.distributed as tdist

sys.path.insert(0, os.path.dirname(__file__))
from emc_ddp_data import make_data  # noqa: E402

from pyrolatent.spi.emc import emc  # noqa: E402

warnings.filterwarnings("ignore", message="Sparse")


def main(out: str) -> None:
    tdist.init_process_group("gloo")
    rank, world = tdist.get_rank(), tdist.get_world_size()
    frames, det, kwargs = make_data()
    n = len(frames)
    shard = frames.block(rank * n // world, (rank + 1) * n // world)
    tdist.barrier()
    t = time.perf_counter()
    res = emc(shard, det, **kwargs)
    seconds = time.perf_counter() - t
    state = {"volume": res.volume, "log_likelihood": res.log_likelihood}
    state.update({"scales": res.scales, "seconds": seconds})
    torch.save(state, os.path.join(out, f"rank{rank}.pt"))
    tdist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
