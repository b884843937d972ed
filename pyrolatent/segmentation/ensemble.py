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
from tqdm.auto import tqdm

from .._deprecated import forward
from ..checks import as_images, check_dtype
from ..device import configure_cpu, resolve_device
from ..io.checkpoint import (
    CheckpointError,
    check_config,
    check_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from ..io.lazy_movie import LazyMovie
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

#: Pixels per chunk of frames in :meth:`DeepEnsemble.predict` (2**22: 16 MiB per float32
#: copy): the standardised, padded and tiled temporaries never exceed a few such chunks,
#: whatever the number of frames.
CHUNK_PIXELS = 1 << 22

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


def _frame_source(frames, in_channels: int):
    """``frames`` checked (dtype, dimensions, channels) without reading or copying them.

    Arrays, memory maps, tensors and :class:`~pyrolatent.io.lazy_movie.LazyMovie` are
    kept as they are (sliced chunk by chunk later); anything else goes through
    ``numpy.asarray``.
    """
    if not isinstance(frames, (np.ndarray, torch.Tensor, LazyMovie)):
        try:
            frames = np.asarray(frames)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"frames: cannot be read as an array ({exc})") from exc
    check_dtype(frames.dtype, "frames")
    shape = tuple(frames.shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"frames: expected a 3-D or 4-D array, got shape {shape}")
    if 0 in shape:
        raise ValueError(f"frames: is empty (shape {shape})")
    channels = shape[1] if len(shape) == 4 else 1
    if channels != in_channels:
        raise ValueError(f"frames: {channels} channels, the network expects {in_channels}")
    return frames


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
            standardised (zero mean, unit variance) first. Arrays, memory maps,
            tensors and :class:`~pyrolatent.io.lazy_movie.LazyMovie` are read in
            chunks of about :data:`CHUNK_PIXELS` pixels, never copied whole.
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
            ``(N, K, H, W)`` float32, ``K`` output channels; each owns its memory
            (exactly ``N * K * H * W * 4`` bytes). Besides them, the frames and the
            network, predict holds only the temporaries of one chunk. For movies
            larger than memory use
            :func:`~pyrolatent.segmentation.streaming.predict_movie`.

        Raises
        ------
        ValueError
            Wrong dimensions, NaN/Inf values or a wrong number of channels.
        """
        configure_cpu()
        frames = _frame_source(frames, self.network.in_channels)
        n, h, w = len(frames), frames.shape[-2], frames.shape[-1]
        step = max(1, CHUNK_PIXELS // (h * w))
        self.network.eval()
        members = None
        if self._resolve_pass(member_pass) == "sequential":
            members = unstack_members(self.network)
            if self.device.type == "cpu":
                members = [net.to(memory_format=torch.channels_last) for net in members]

        def moments(tile):
            p = self.member_probabilities(tile, members)
            return torch.stack([p.mean(dim=1), p.var(dim=1, unbiased=False)], dim=1)

        def tiled(x):
            return predict_tiled(
                moments,
                x,
                tile_size=tile_size,
                overlap=overlap,
                size_multiple=self.network.size_multiple,
                batch_size=batch_size,
                progress=progress and n <= step,
            )

        # chunks of frames bound the temporaries (standardised, padded and tiled copies)
        mean = var = None
        chunks = range(0, n, step)
        for start in tqdm(chunks, disable=not progress or len(chunks) == 1, desc="frames"):
            stop = min(n, start + step)
            chunk = frames[start:stop]
            if isinstance(chunk, np.ndarray) and not chunk.flags.writeable:
                chunk = np.array(chunk)  # read-only maps: torch wants writable memory
            x = as_images(chunk, f"frames[{start}:{stop}]", ndim=(3, 4), device=self.device)
            x = standardize_frames(x if x.dim() == 4 else x.unsqueeze(1))
            m, v = self._moments(tiled, x, tta)
            if mean is None:
                mean = np.empty((n, *m.shape[1:]), dtype=np.float32)
                var = np.empty_like(mean)
            mean[start:stop] = m.float().cpu().numpy()
            var[start:stop] = v.float().cpu().numpy()
            del chunk, x, m, v  # before the next chunk is read
        return mean, var

    @staticmethod
    def _moments(tiled, x: torch.Tensor, tta: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance ``(n, K, H, W)`` of standardised frames ``x`` (``tiled`` maps them)."""
        if not tta:
            out = tiled(x)
            return out[:, 0], out[:, 1]
        # pool first and second moments over the dihedral group D4
        first, second = 0.0, 0.0
        for flip, turns in DIHEDRAL_TRANSFORMS:
            out = _undo_dihedral(tiled(_dihedral(x, flip, turns)), flip, turns)
            first = first + out[:, 0]
            second = second + out[:, 1] + out[:, 0] ** 2
        n = len(DIHEDRAL_TRANSFORMS)
        mean = first / n
        return mean, (second / n - mean**2).clamp_min(0)

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
