"""Worker of the streamed grid-fit data-parallel test: ``torchrun --nproc_per_node=2 ... OUT``.

Reads ``OUT/frames.emc`` (100 frames per block) and ``OUT/data.pt`` (rotations,
mask, settings); every rank fits the volume VAE by the grid method on its shard
of the blocks (the Trainer averages the gradients) and writes ``OUT/rank{r}.pt``.
"""

import os
import sys

import torch
import torch.distributed as tdist

from pyrolatent.estimators.volume_vae import VolumeVAE
from pyrolatent.io.emc_photons import EMCFile


def main(out: str) -> None:
    data = torch.load(os.path.join(out, "data.pt"), weights_only=True)
    source = EMCFile(os.path.join(out, "frames.emc"))
    vae = VolumeVAE(int(data["size"]), latent_dim=1, mask=data["mask"], seed=0)
    vae.fit(source, data["rotations"], epochs=int(data["epochs"]), batch_size=32, lr=3e-3,
            progress=False, method="grid", block_size=100)  # fmt: skip
    z = vae.encode(source, data["rotations"], block_size=100)["z"]["loc"]
    rank = tdist.get_rank()
    torch.save({"params": vae.model.state_dict(), "loss": vae.history["loss"],
                "world": tdist.get_world_size(), "z": torch.as_tensor(z)},
               os.path.join(out, f"rank{rank}.pt"))  # fmt: skip
    tdist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
