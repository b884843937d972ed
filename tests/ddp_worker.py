"""Worker for the data-parallel test: ``torchrun --nproc_per_node=2 ddp_worker.py OUT``."""

import os
import sys

import torch
import torch.distributed as tdist

sys.path.insert(0, os.path.dirname(__file__))
from toy_models import FactorGuide, FactorModel, factor_data  # noqa: E402

from pyrolatent.infer import Trainer  # noqa: E402


def main(out: str) -> None:
    rank = int(os.environ["RANK"])
    torch.manual_seed(100 + rank)  # different initial weights on each rank
    trainer = Trainer(FactorModel(), FactorGuide(), lr=1e-2, seed=0, device="cpu", progress=False)
    history = trainer.fit(factor_data(n=512), epochs=20, batch_size=32)
    state = {k: v for k, v in trainer.model.state_dict().items()}
    state.update({"guide." + k: v for k, v in trainer.guide.state_dict().items()})
    torch.save(
        {"params": state, "loss": history["loss"], "world": trainer.dist.world_size},
        os.path.join(out, f"rank{rank}.pt"),
    )
    tdist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
