"""Deep ensembles of segmentation networks: the trained ensemble and its batched prediction.

Recipe of Ziatdinov et al. (rVAE of protein self-assembly): a baseline network
is trained until the validation loss plateaus; ``M`` members then start from the
baseline weights and are trained briefly, each with its own shuffling seed.
The ensemble mean of the per-pixel probabilities is the prediction and their
variance the uncertainty. The recipe is
:func:`pyrolatent.segmentation.train.train_ensemble`; member stacking is in
:mod:`pyrolatent.segmentation.members`.

All members live in one stacked network whose convolutions are grouped by
member; nothing is ever reloaded. On CUDA prediction is one grouped forward
pass per tile (H100, 12 DilNet members, 512x512 tiles: 2.3x faster than 12
single-network passes, against 0.9x for the members one after another). On
the CPU, oneDNN's grouped convolutions are slower per member than plain ones
(12 DilNet members on a 512x512 frame, one thread: 5.0 s grouped against 2.9 s
for the members one after another), so there the members are views of the
stacked weights run one after another, in channels-last layout (another 1.9x
for every convolution on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._deprecated import forward
from ..checks import as_images
from ..device import configure_threads, resolve_device
from ..io.checkpoint import (
    CheckpointError,
    check_config,
    check_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from .members import _network_name, stack_members, unstack_members
from .nets import build_network, split_members
from .sampling import prepare_training_data
from .tiling import predict_tiled, standardize_frames

__all__ = [
    "DeepEnsemble",
    "stack_members",
    "unstack_members",
    "prepare_training_data",
    "MEMBER_PASSES",
]

#: How :meth:`DeepEnsemble.predict` runs the members: ``"grouped"`` (one grouped
#: pass), ``"sequential"`` (one plain network per member, channels-last on the
#: CPU) or ``"auto"`` (grouped on CUDA, sequential elsewhere).
MEMBER_PASSES = ("auto", "grouped", "sequential")


DIHEDRAL_TRANSFORMS = tuple((flip, turns) for flip in (False, True) for turns in range(4))
"""The 8 ``(flip, quarter_turns)`` pairs of right-angle rotations and flips (group D4)."""


def _dihedral(x: torch.Tensor, flip: bool, turns: int) -> torch.Tensor:
    """Flip the last axis (optionally), then rotate by ``turns`` quarter turns."""
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, turns, dims=(-2, -1))


def _undo_dihedral(x: torch.Tensor, flip: bool, turns: int) -> torch.Tensor:
    """Inverse of :func:`_dihedral`."""
    x = torch.rot90(x, -turns, dims=(-2, -1))
    return x.flip(-1) if flip else x


@dataclass
class DeepEnsemble:
    """A trained ensemble of segmentation networks stacked in one grouped module.

    Attributes
    ----------
    network : DilNet or UNet
        The stacked network (``network.members`` members).
    multiclass : bool
        Softmax over output channels (else independent sigmoids per channel).
    history : dict
        Training histories (``"baseline"``, ``"members"``).
    """

    network: torch.nn.Module
    multiclass: bool = False
    history: dict = field(default_factory=dict)

    @property
    def n_members(self) -> int:
        return self.network.members

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def _resolve_pass(self, member_pass: str) -> str:
        if member_pass not in MEMBER_PASSES:
            raise ValueError(f"member_pass must be one of {MEMBER_PASSES}, got {member_pass!r}")
        if member_pass == "auto":
            return "grouped" if self.device.type == "cuda" else "sequential"
        return member_pass

    @torch.no_grad()
    def member_probabilities(
        self, x: torch.Tensor, members: list[torch.nn.Module] | None = None
    ) -> torch.Tensor:
        """Probabilities of every member, ``(B, M, K, H, W)``, for standardised ``x``.

        ``members`` (from :func:`unstack_members`) runs them one after another
        instead of in one grouped pass; on the CPU in channels-last layout.
        """
        if members is None:
            logits = split_members(self.network(x), self.n_members)
        else:
            if x.device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            logits = torch.stack([net(x).contiguous() for net in members], dim=1)
        return logits.softmax(dim=2) if self.multiclass else torch.sigmoid(logits)

    @torch.no_grad()
    def predict(
        self,
        frames,
        tile_size: int = 256,
        overlap: int = 16,
        batch_size: int = 4,
        progress: bool = True,
        tta: bool = False,
        member_pass: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and variance of the per-pixel probabilities.

        Parameters
        ----------
        frames : array_like
            ``(N, H, W)`` or ``(N, C, H, W)`` raw frames, any size; each frame is
            standardised (zero mean, unit variance) first.
        tile_size, overlap : int
            Tiled inference with ``overlap`` pixels of context (see
            :func:`~pyrolatent.segmentation.tiling.predict_tiled`).
        batch_size : int
            Tiles per forward pass (each pass runs all members).
        progress : bool
            Show a progress bar.
        tta : bool
            Test-time augmentation: predict each of the 8 right-angle rotations and
            flips of the frames, map the predictions back and pool them. The mean
            is then over members and transforms, and the variance is that of all
            ``8 * M`` member-transform predictions (8 forward passes instead of 1).
        member_pass : {"auto", "grouped", "sequential"}
            How the members run (see :data:`MEMBER_PASSES` and the module
            docstring); the results agree to float rounding.

        Returns
        -------
        mean, variance : numpy.ndarray
            ``(N, K, H, W)`` float32, ``K`` output channels.

        Raises
        ------
        ValueError
            Wrong dimensions, NaN/Inf values or a wrong number of channels.
        """
        configure_threads()
        x = as_images(frames, "frames", ndim=(3, 4), device=self.device)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.shape[1] != self.network.in_channels:
            raise ValueError(
                f"frames: {x.shape[1]} channels, the network expects {self.network.in_channels}"
            )
        self.network.eval()
        members = None
        if self._resolve_pass(member_pass) == "sequential":
            members = unstack_members(self.network)
            if x.device.type == "cpu":
                members = [net.to(memory_format=torch.channels_last) for net in members]
        x = standardize_frames(x)

        def moments(tile):
            p = self.member_probabilities(tile, members)
            return torch.stack([p.mean(dim=1), p.var(dim=1, unbiased=False)], dim=1)

        def tiled(frames):
            return predict_tiled(
                moments,
                frames,
                tile_size=tile_size,
                overlap=overlap,
                size_multiple=self.network.size_multiple,
                batch_size=batch_size,
                progress=progress,
            )

        if not tta:
            out = tiled(x)
            mean, var = out[:, 0], out[:, 1]
        else:
            # pool first and second moments over the dihedral group D4
            first, second = 0.0, 0.0
            for flip, turns in DIHEDRAL_TRANSFORMS:
                out = _undo_dihedral(tiled(_dihedral(x, flip, turns)), flip, turns)
                first = first + out[:, 0]
                second = second + out[:, 1] + out[:, 0] ** 2
            n = len(DIHEDRAL_TRANSFORMS)
            mean = first / n
            var = (second / n - mean**2).clamp_min(0)
        return mean.float().cpu().numpy(), var.float().cpu().numpy()

    def save(self, path) -> Path:
        """Write an atomic, self-describing checkpoint (architecture + weights)."""
        state = {
            "kind": "pyrolatent.DeepEnsemble",
            "network": _network_name(self.network),
            "config": self.network.config(),
            "multiclass": self.multiclass,
            "state_dict": self.network.state_dict(),
        }
        return save_checkpoint(state, path)

    @classmethod
    def load(cls, path, device=None) -> DeepEnsemble:
        """Rebuild an ensemble written by :meth:`save` on ``device`` (device policy)."""
        state = load_checkpoint(path)
        if state.get("kind") != "pyrolatent.DeepEnsemble":
            raise CheckpointError(f"checkpoint {path} does not hold a DeepEnsemble")
        config = check_config(state.get("config"), path)
        try:
            network = build_network(state["network"], config)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {path}: invalid network description ({exc})"
            ) from exc
        check_state_dict(network, state.get("state_dict"), path, "network")
        network.load_state_dict(state["state_dict"])
        network.to(resolve_device(device)).eval()
        return cls(network=network, multiclass=bool(state["multiclass"]))


# train_ensemble builds a DeepEnsemble, so it lives in train.py, which imports this module
__getattr__ = forward(__name__, {"train_ensemble": "pyrolatent.segmentation.train"})
