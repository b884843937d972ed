"""``VolumeVAE.fit(method="grid")``: the decoder by an exact marginal likelihood on a grid.

Each pattern's latent ``z`` (one dimension) is summed out exactly over ``K``
values evenly spaced on ``[-1.75, 1.75]`` (weighted by the prior) and, when
``pose_radius > 0``, its orientation over the ``J`` rotations ``R D_j`` of a
ball about the given ``R`` (:func:`~pyrolatent.primitives.so3.local_offsets`,
uniform prior). The per-pattern fluence is profiled out. There is no guide:
the posterior over the grid is exact.

Training runs on the shared :class:`~pyrolatent.infer.trainer.Trainer`:
:class:`GridModel` is a Pyro model with one enumerated site, the pattern's
(latent, orientation) cell, and a :class:`GridGuide` without latent sites, so
``TraceEnum_ELBO`` sums the cell out exactly and its loss is the negative log
marginal likelihood (the objective of an EM on the grid). Frames on disk come
through :class:`StreamedBatches`, one block at a time.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO

from ..infer.batches import Batches
from ..infer.callbacks import Callback
from ..infer.trainer import Trainer
from ..primitives.groups import _equivalents, canonicalize
from ..primitives.so3 import local_offsets, offset_posterior_mean

__all__ = ["GridGuide", "GridMarginal", "GridModel", "StreamedBatches", "to_given_frame"]


def to_given_frame(rotation: torch.Tensor, given: torch.Tensor, group) -> torch.Tensor:
    """Express rotations found about the canonical form of ``given`` about ``given`` itself.

    ``canonicalize(given) = g given h`` (``g`` in the group, ``h`` in ``{I, Rz(pi)}``);
    ``rotation`` ``(N, 3, 3)`` near it is returned as ``g^T rotation h^T``, the
    same slice, near ``given``.
    """
    _, idx = canonicalize(given, group, friedel=True, return_index=True)
    left, right = _equivalents(group, True, given.dtype, given.device)
    n_right = right.shape[0]
    g, h = left[idx // n_right], right[idx % n_right]
    return g.transpose(-1, -2) @ rotation.to(given.dtype) @ h.transpose(-1, -2)


class GridModel(torch.nn.Module):
    """Pyro model of the grid method: ``cell ~ Categorical(prior)``, enumerated; the frame.

    ``cell`` indexes the ``K x J`` (latent value, ball rotation) pairs, with prior
    ``p(z_k) / J``; the frame's log-likelihood at each cell is
    :meth:`GridMarginal.log_likelihood` (Poisson, fluence profiled out), added
    with ``pyro.factor``. Called as ``model(x, r)`` with ``(B, S, S)`` patterns
    and ``(B, 3, 3)`` canonical rotations.
    """

    def __init__(self, vae_model, grid: GridMarginal):
        super().__init__()
        self.vae_model = vae_model
        self.grid = grid  # plain attribute: the grid holds no parameters

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> None:
        prior = self.grid.log_prior(self.vae_model).flatten()  # (K J,)
        lik = self.grid.log_likelihood(self.vae_model, x, r).flatten(1)  # (B, K J)
        if not bool(torch.isfinite(lik).all()):
            raise FloatingPointError("volume VAE (grid): the log-likelihood is not finite; "
                                     "try a lower learning rate")  # fmt: skip
        with pyro.plate("patterns", x.shape[0]):
            cell = pyro.sample("cell", dist.Categorical(logits=prior),
                               infer={"enumerate": "parallel"})  # fmt: skip
            if cell.dim() == 1:  # drawn (not enumerated): one cell per pattern
                value = lik.gather(1, cell[:, None])[:, 0]
            else:  # enumerated: (K J, 1)
                value = lik.T[cell.reshape(-1)]
            pyro.factor("frames", value)


class GridGuide(torch.nn.Module):
    """The guide of :class:`GridModel`: no latent sites (the cell is enumerated in the model)."""

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> None:
        return None


class StreamedBatches:
    """Trainer batch source over patterns read from disk block by block.

    Each epoch visits the blocks in the Trainer's seeded order and shuffles the
    frames inside each block; ``transform(x, r)`` makes the model's input of a
    block as it is read. Under ``torchrun`` each rank reads its shard of the
    blocks (every ``world_size``-th of the epoch's order, wrapped to equal
    counts) and uses all frames of each, a short last block padded by repeating
    its frames, so every rank takes the same number of steps.
    """

    def __init__(self, data, transform, batch_size: int):
        self.data, self.transform, self.batch_size = data, transform, int(batch_size)

    def prepare(self, device) -> StreamedBatches:
        return self

    def first(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, r = next(self.data.blocks())
        return self.transform(x[: self.batch_size], r[: self.batch_size])

    def epoch(self, order) -> _StreamedEpoch:
        return _StreamedEpoch(self, order)


class _StreamedEpoch:
    """The steps of one streamed epoch, read lazily (``len`` and iteration)."""

    def __init__(self, source: StreamedBatches, order):
        self.source, self.order = source, order

    @property
    def world_size(self) -> int:
        return getattr(self.order, "world_size", 1)

    def __len__(self) -> int:
        n, b, bs = len(self.source.data), self.source.data.block_size, self.source.batch_size
        if self.world_size > 1:  # equal on every rank: whole blocks, wrapped to equal counts
            return -(-self.source.data.num_blocks // self.world_size) * -(-b // bs)
        full, rest = divmod(n, b)
        return full * -(-b // bs) + (-(-rest // bs) if rest else 0)

    def __iter__(self):
        src, world = self.source, self.world_size
        for i, (x, r) in enumerate(src.data.blocks(order=self.order(src.data.num_blocks, 0))):
            x, r = src.transform(x, r)
            if world > 1:  # all of this rank's block, a short one padded by repeats
                perm = self.order.full(x.shape[0], 1 + i)
                perm = perm.repeat(-(-src.data.block_size // perm.numel()))
                perm = perm[: src.data.block_size].to(x.device)
            else:
                perm = self.order(x.shape[0], 1 + i).to(x.device)
            for a in range(0, perm.numel(), src.batch_size):
                idx = perm[a : a + src.batch_size]
                yield [(x[idx], r[idx])]


class _AfterEpoch(Callback):
    """Calls ``fn()`` after every epoch is recorded (saves the estimator)."""

    def __init__(self, fn):
        self.fn = fn

    def on_epoch_recorded(self, trainer, epoch: int) -> None:
        self.fn()


class GridMarginal:
    """State of the grid method: the latent grid, the pose ball and the Trainer.

    Parameters
    ----------
    n_grid : int
        Latent values ``K`` (``>= 2``).
    pose_radius : float
        Radius of the orientation ball (radians); 0 takes the orientations as given.
    pose_spacing : float
        Step of the ball's rotation-vector grid (radians).
    device : torch.device
    """

    def __init__(self, n_grid: int, pose_radius: float, pose_spacing: float, device):
        if isinstance(n_grid, bool) or int(n_grid) != n_grid or n_grid < 2:
            raise ValueError(f"n_grid: expected an integer >= 2, got {n_grid!r}")
        self.device = device
        self.z = torch.linspace(-1.75, 1.75, int(n_grid), device=device)[:, None]
        self.set_pose(pose_radius, pose_spacing)
        self.trainer: Trainer | None = None
        self._pending: dict | None = None  # a Trainer state from a checkpoint, loaded on fit

    def set_pose(self, pose_radius: float, pose_spacing: float) -> None:
        """Use the ball of this radius and step (radians; radius 0: the orientations as given)."""
        if not (math.isfinite(pose_radius) and pose_radius >= 0):
            raise ValueError(f"pose_radius: expected a finite angle >= 0, got {pose_radius!r}")
        self.pose_radius, self.pose_spacing = float(pose_radius), float(pose_spacing)
        self.offsets = self.vectors = None
        if self.pose_radius > 0:
            off, vec = local_offsets(self.pose_radius, self.pose_spacing)
            self.offsets, self.vectors = off.to(self.z.device), vec.to(self.z.device)

    @property
    def settings(self) -> dict:
        return {"n_grid": int(self.z.shape[0]), "pose_radius": self.pose_radius,
                "pose_spacing": self.pose_spacing}  # fmt: skip

    @property
    def history(self) -> dict[str, list]:
        if self.trainer is not None:
            return self.trainer.history
        if self._pending is not None:
            return self._pending["history"]
        return {"epoch": [], "loss": []}

    def log_prior(self, model) -> torch.Tensor:
        """``log p(z_k) - log J`` ``(K, J)``: the prior of the (latent, ball rotation) cells."""
        j = 1 if self.offsets is None else self.offsets.shape[0]
        lp = torch.log_softmax(model.z_dist(self.z.shape[0]).log_prob(self.z), dim=0)
        return (lp[:, None] - math.log(j)).expand(-1, j)

    def log_likelihood(self, model, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """``log p(x | z_k, R D_j)`` ``(B, K, J)`` (``J = 1`` without a pose ball)."""
        if self.offsets is None:
            return model.grid_log_likelihood(x, r, self.z)[..., None]
        return model.posed_grid_log_likelihood(x, r, self.z, self.offsets)

    def log_joint(self, model, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """``log p(x, z_k, D_j)`` ``(B, K, J)``."""
        return self.log_likelihood(model, x, r) + self.log_prior(model)

    def fit(self, model, data, transform, epochs: int, batch_size: int, lr: float, seed: int,
            progress: bool, on_epoch=None) -> None:  # fmt: skip
        """``epochs`` more epochs of the Trainer on ``GridModel`` (Adam, exact marginal).

        ``data`` is a :class:`~pyrolatent.estimators.volume_data.PosedPatterns`;
        ``transform(x, r)`` gives the model's ``(x, r)`` of a block (once for
        data in memory, on every read for frames streamed from disk). The
        Trainer shuffles each epoch with its seeded stream, so a run resumed from
        a checkpoint (``on_epoch``, called after every epoch) continues exactly.
        """
        source = (StreamedBatches(data, transform, batch_size) if data.streamed
                  else Batches(transform(data.x, data.r), batch_size))  # fmt: skip
        if self.trainer is None:
            self.trainer = Trainer(GridModel(model, self), GridGuide(),
                                   loss=TraceEnum_ELBO(max_plate_nesting=1), lr=lr, seed=seed,
                                   device=self.device, progress=progress)  # fmt: skip
        t = self.trainer
        t.lr, t.progress = float(lr), bool(progress)
        if t.optimizer is None:
            t._setup(source.prepare(self.device).first())
        if self._pending is not None:
            self._restore(self._pending)
        for group in t.optimizer.param_groups:
            group["lr"] = float(lr)
        t.callbacks = [] if on_epoch is None else [_AfterEpoch(on_epoch)]
        t.fit(source, epochs=int(epochs))

    def _restore(self, state: dict) -> None:
        """Load a checkpoint's Trainer state (or, from before the Trainer, its history and
        optimizer) into the Trainer, whose optimizer exists."""
        t, self._pending = self.trainer, None
        if state.get("kind") != "trainer":
            state = {"kind": "trainer", "epoch": len(state["history"]["epoch"]), "beta": 1.0,
                     "seed": t.seed, "model": t.model.state_dict(), "guide": {},
                     "optimizer": state.get("optimizer"), "history": state["history"],
                     "callbacks": [], "rng": t.rng.state_dict()}  # fmt: skip
        state = dict(state, model=t.model.state_dict())  # the weights are the estimator's
        t.load_state_dict(state)

    @torch.no_grad()
    def posterior(self, model, x: torch.Tensor, r: torch.Tensor) -> dict:
        """Posterior mean and sd of ``z`` ``(B, 1)``; with a pose ball, the mean rotation too."""
        post = torch.softmax(self.log_joint(model, x, r).flatten(1), 1)
        post = post.reshape(x.shape[0], self.z.shape[0], -1)
        pz = post.sum(2)
        loc = pz @ self.z
        out = {"loc": loc, "scale": (pz @ self.z**2 - loc**2).clamp_min(0).sqrt()}
        if self.offsets is not None:
            out["rotation"], out["spread"] = offset_posterior_mean(r, post.sum(1), self.vectors)
        return out

    def state_dict(self) -> dict:
        state = {"z": self.z.cpu(), **self.settings}
        trainer = self.trainer.state_dict() if self.trainer is not None else self._pending
        if trainer is not None:
            state["trainer"] = trainer
        return state

    @classmethod
    def from_state(cls, state: dict, device) -> GridMarginal:
        grid = cls(int(state["z"].shape[0]), float(state.get("pose_radius", 0.0)),
                   float(state.get("pose_spacing", 0.04)), device)  # fmt: skip
        grid.z = torch.as_tensor(state["z"]).to(device)
        if "trainer" in state:
            grid._pending = state["trainer"]
        elif "history" in state:  # checkpoints from before the Trainer: history and optimizer
            grid._pending = {"history": {k: list(v) for k, v in state["history"].items()},
                             "optimizer": state.get("optimizer")}  # fmt: skip
        return grid
