"""What every estimator shares: the Trainer and its re-fit rule, RNG, history, checkpoints.

:class:`Estimator` owns the protocol of all four estimators (``RVAE``,
``SSRVAE``, ``VolumeVAE``, ``NMF``):

* ``fit(..., epochs=N)`` trains ``N`` more epochs whatever was trained before
  and returns ``self``; a second ``fit`` uses its new ``lr``, ``callbacks``,
  ``checkpoint_path``, ``loss`` and ``progress``;
* ``history`` (dict of lists, the Trainer's) and ``epochs_trained`` (int);
* ``progress: bool`` (default True) is the one progress switch; ``quiet=`` is
  a deprecated alias;
* construction and training never touch the caller's random state: parameters
  are initialised under the estimator's own seeded stream and the Trainer
  draws from its own :class:`~pyrolatent.infer.rng.LocalRNG`.

:class:`ImageModelWrapper` adds what the image estimators (``RVAE``,
``SSRVAE``) share: input checks, batched ``encode``, z-shape checks, the
manifold grid, self-describing checkpoints and ``load``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..guides.pose import PoseHeads
from ..infer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..infer.rng import LocalRNG
from ..infer.trainer import Trainer
from ..models.sites import Z
from ..validation import as_images, as_tensor
from .priors import prior_specs, rebuild_priors

__all__ = ["Estimator", "ImageModelWrapper", "custom_prior_names", "renamed", "numpy"]


def numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU numpy copy of ``t``."""
    return t.detach().cpu().numpy()


def renamed(new_value, old_value, old: str, new: str, default=None):
    """The value of a renamed keyword: ``new_value``, else the deprecated ``old_value``."""
    if old_value is not None:
        warnings.warn(f"{old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=3)
        if new_value is None:
            return old_value
    return default if new_value is None else new_value


def custom_prior_names(angle_prior, offset_prior, scale_prior, z_prior) -> list[str]:
    """Names of the priors the user supplied."""
    given = {
        "angle_prior": angle_prior,
        "offset_prior": offset_prior,
        "scale_prior": scale_prior,
        "z_prior": z_prior,
    }
    return [name for name, prior in given.items() if prior is not None]


class Estimator:
    """Base of the estimators: Trainer, re-fit rule, RNG, ``history``, ``epochs_trained``.

    Subclasses set ``model``, ``guide``, ``device``, ``config`` (with
    ``"seed"``) and ``trainer = None`` in their constructor.
    """

    trainer: Trainer | None = None

    @staticmethod
    @contextmanager
    def _seeded(seed: int):
        """Build parameters under a private stream seeded with ``seed`` (caller's RNG untouched)."""
        with LocalRNG(seed).active():
            yield

    @property
    def history(self) -> dict[str, list]:
        """Per-epoch training history (``epoch``, ``loss``, ...; empty lists before ``fit``)."""
        return self.trainer.history if self.trainer is not None else {"epoch": [], "loss": []}

    @property
    def epochs_trained(self) -> int:
        """Epochs trained so far (``fit(epochs=N)`` adds ``N``)."""
        return self.trainer.epoch if self.trainer is not None else 0

    def _trainer(
        self,
        *,
        lr: float,
        callbacks: Sequence = (),
        checkpoint_path=None,
        loss=None,
        progress: bool = True,
        **options,
    ) -> Trainer:
        """The Trainer, built on the first fit and updated with the new settings on later ones."""
        if self.trainer is None:
            self.trainer = Trainer(
                self.model,
                self.guide,
                loss=loss,
                lr=lr,
                seed=self.config["seed"],
                device=self.device,
                callbacks=callbacks,
                checkpoint_path=checkpoint_path,
                progress=progress,
                **options,
            )
            return self.trainer
        t = self.trainer
        t.lr = lr
        if t.optimizer is not None:
            for group in t.optimizer.param_groups:
                group["lr"] = lr
        t.callbacks = list(callbacks)
        t.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        if loss is not None:
            t.loss = loss
        t.progress = bool(progress)
        return t

    @staticmethod
    def _progress(progress: bool, quiet: bool | None) -> bool:
        if quiet is not None:
            warnings.warn("quiet= is deprecated; use progress=", DeprecationWarning, stacklevel=3)
            return not quiet
        return bool(progress)


class ImageModelWrapper(Estimator):
    """Base of ``RVAE`` and ``SSRVAE``: image checks, encode, decode checks, manifold, save/load.

    Subclasses also set ``priors`` (a dict ``name -> prior or None``) and implement
    ``_posteriors(x_batch, extra_batch) -> dict`` for :meth:`_encode`.
    """

    priors: dict = {}

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.config["image_size"])

    @property
    def custom_priors(self) -> list[str]:
        return [name for name, p in self.priors.items() if p is not None]

    def _images(self, images, name: str = "images") -> torch.Tensor:
        """Validated ``(N, H, W)`` float tensor on the model's device."""
        x = as_images(images, name=name, shape=self.image_size, device=self.device)
        self.model.likelihood.check(x, name)
        return x

    @torch.no_grad()
    def _encode(self, x: torch.Tensor, posteriors: Callable, batch_size: int, *extra) -> dict:
        """``{site: {"loc", "scale"}}`` numpy summaries of ``posteriors(x_batch, *extra_batch)``."""
        was_training = self.guide.training
        self.guide.eval()
        parts = []
        try:
            for i in range(0, x.shape[0], batch_size):
                sl = slice(i, i + batch_size)
                posts = posteriors(x[sl], *(e[sl] for e in extra))
                out = PoseHeads.summary(posts)
                out[Z] = {"loc": posts[Z].base_dist.loc, "scale": posts[Z].base_dist.scale}
                parts.append(out)
        finally:
            self.guide.train(was_training)
        return {
            site: {k: numpy(torch.cat([p[site][k] for p in parts])) for k in parts[0][site]}
            for site in parts[0]
        }

    def _codes(self, z) -> torch.Tensor:
        """Content codes as a ``(B, latent_dim)`` tensor on the device."""
        zt = as_tensor(z, "z", device=self.device)
        if zt.dim() == 1:
            zt = zt.unsqueeze(0)
        d = self.config["latent_dim"]
        if zt.dim() != 2 or zt.shape[1] != d:
            raise ValueError(f"z: expected shape (B, {d}), got {tuple(zt.shape)}")
        return zt

    def _pose(self, value, name: str, b: int, tail: tuple = ()) -> torch.Tensor | None:
        """A per-sample pose ``(b, *tail)`` (a single value is broadcast), or None."""
        if value is None:
            return None
        t = as_tensor(value, name, device=self.device)
        if t.dim() == len(tail):
            t = t.expand(b, *tail)
        if tuple(t.shape) != (b, *tail):
            raise ValueError(f"{name}: expected shape {(b, *tail)}, got {tuple(t.shape)}")
        return t

    def _grid(self, grid_size, z_range, dims, fixed=None) -> np.ndarray:
        """``(grid_size**2, D)`` codes: rows vary ``dims[0]`` high to low, columns ``dims[1]``."""
        d = self.config["latent_dim"]
        base = np.zeros(d, dtype=np.float32) if fixed is None else np.asarray(fixed, np.float32)
        vals = np.linspace(z_range[0], z_range[1], grid_size, dtype=np.float32)
        codes = np.tile(base, (grid_size, grid_size, 1))
        for i in range(grid_size):
            for j in range(grid_size):
                if d > 1:
                    codes[i, j, dims[0]] = vals[::-1][i]
                    codes[i, j, dims[1]] = vals[j]
                else:
                    codes[i, j, 0] = vals[j]
        return codes.reshape(-1, d)

    # ------------------------------------------------------------- save/load
    def save(self, path) -> Path:
        """Write configuration, rebuildable custom priors and weights (atomically) to ``path``.

        Returns
        -------
        pathlib.Path
        """
        state = {
            "kind": type(self).__name__,
            "config": self.config,
            "priors": prior_specs(self.priors),
            "model": self.model.state_dict(),
            "guide": self.guide.state_dict(),
        }
        if self.trainer is not None:
            state["rng"] = self.trainer.rng.state_dict()
        return save_checkpoint(state, path)

    @classmethod
    def load(cls, path, device=None, **priors):
        """Rebuild an estimator saved with :meth:`save` (weights-only loading).

        Custom priors stored as a distribution class and its parameters are
        rebuilt; others (e.g. callables) must be passed again by keyword
        (``z_prior=...``), else a ``CheckpointError`` says which.
        """
        state = load_checkpoint(path)
        if state.get("kind") != cls.__name__:
            raise CheckpointError(f"{path} holds a {state.get('kind')!r}, not a {cls.__name__}")
        cfg = cls._upgrade_config(dict(state["config"]))
        given = rebuild_priors(state.get("priors", {}), priors, path)
        cfg.update(given)
        obj = cls(**cfg, device=device)
        obj.model.load_state_dict(state["model"])
        obj.guide.load_state_dict(state["guide"])
        return obj

    @staticmethod
    def _upgrade_config(cfg: dict) -> dict:
        """Config keys of older checkpoints renamed to the current ones."""
        if "angle_symmetry" in cfg:
            cfg["symmetry"] = cfg.pop("angle_symmetry")
        return cfg
