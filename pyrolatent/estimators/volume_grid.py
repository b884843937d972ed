"""``VolumeVAE.fit(method="grid")``: the decoder by an exact marginal likelihood on a grid.

Each pattern's latent ``z`` (one dimension) is summed out exactly over ``K``
values evenly spaced on ``[-1.75, 1.75]`` (weighted by the prior) and, when
``pose_radius > 0``, its orientation over the ``J`` rotations ``R D_j`` of a
ball about the given ``R`` (:func:`~pyrolatent.primitives.so3.local_offsets`,
uniform prior). The per-pattern fluence is profiled out. There is no guide:
the posterior over the grid is exact.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..primitives.groups import _equivalents, canonicalize
from ..primitives.so3 import local_offsets, offset_posterior_mean

__all__ = ["GridMarginal", "to_given_frame"]


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


class GridMarginal:
    """State of the grid method: the latent grid, the pose ball, the optimizer, the history.

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
        self.z = torch.linspace(-1.75, 1.75, int(n_grid), device=device)[:, None]
        self.set_pose(pose_radius, pose_spacing)
        self.optimizer = None
        self._optimizer_state = None  # from a checkpoint, loaded when the optimizer is made
        self.history: dict[str, list] = {"epoch": [], "loss": []}

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

    def log_joint(self, model, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """``log p(x, z_k, D_j)`` ``(B, K, J)`` (``J = 1`` without a pose ball)."""
        lp = torch.log_softmax(model.z_dist(self.z.shape[0]).log_prob(self.z), dim=0)
        if self.offsets is None:
            ll = model.grid_log_likelihood(x, r, self.z)[..., None]
        else:
            ll = model.posed_grid_log_likelihood(x, r, self.z, self.offsets)
        return ll + lp[:, None] - math.log(ll.shape[-1])

    def fit(self, model, data, transform, epochs: int, batch_size: int, lr: float, seed: int,
            progress: bool, on_epoch=None) -> None:  # fmt: skip
        """Adam on the negative mean log marginal likelihood, ``epochs`` passes over the data.

        ``data`` is a :class:`~pyrolatent.estimators.volume_data.PosedPatterns`;
        ``transform(x, r)`` gives the model's ``(x, r)`` of a block (once for
        data in memory, on every read for frames streamed from disk). Epoch
        ``e`` shuffles with seed ``seed + e``, so a run resumed from a
        checkpoint (``on_epoch``, called after every epoch) continues exactly.
        """
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            if self._optimizer_state is not None:
                self.optimizer.load_state_dict(self._optimizer_state)
                self._optimizer_state = None
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        prepared = None if data.streamed else [transform(data.x, data.r)]
        model.train()
        bar = tqdm(range(int(epochs)), desc="volume VAE (grid)", disable=not progress)
        for _ in bar:
            total = 0.0
            gen = torch.Generator().manual_seed(int(seed) + len(self.history["epoch"]))
            blocks = prepared or (transform(x, r) for x, r in data.blocks(gen))
            for x, r in blocks:
                perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
                for i in range(0, x.shape[0], batch_size):
                    idx = perm[i : i + batch_size]
                    ll = self.log_joint(model, x[idx], r[idx]).flatten(1)
                    loss = -torch.logsumexp(ll, 1).mean()
                    if not bool(torch.isfinite(loss)):
                        raise FloatingPointError(
                            f"volume VAE (grid): the loss is {float(loss.detach())} at epoch "
                            f"{len(self.history['epoch'])}; try a lower learning rate"
                        )
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()
                    total += float(loss.detach()) * idx.numel()
            self.history["epoch"].append(len(self.history["epoch"]))
            self.history["loss"].append(total / len(data))
            bar.set_postfix(loss=f"{self.history['loss'][-1]:.1f}")
            if on_epoch is not None:
                on_epoch()

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
        state = {"z": self.z.cpu(), "history": self.history, **self.settings}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    @classmethod
    def from_state(cls, state: dict, device) -> GridMarginal:
        grid = cls(int(state["z"].shape[0]), float(state.get("pose_radius", 0.0)),
                   float(state.get("pose_spacing", 0.04)), device)  # fmt: skip
        grid.z = torch.as_tensor(state["z"]).to(device)
        grid.history = {k: list(v) for k, v in state["history"].items()}
        grid._optimizer_state = state.get("optimizer")
        return grid
