"""What every estimator shares: the Trainer and its re-fit rule, RNG, history, checkpoints.

:class:`Estimator` owns the protocol of all four estimators (``RVAE``,
``SSRVAE``, ``VolumeVAE``, ``NMF``):

* ``fit(..., epochs=N)`` trains ``N`` more epochs whatever was trained before and
  returns ``self``; a second ``fit`` uses its new ``lr``, ``callbacks``,
  ``checkpoint_path``, ``loss``, ``progress`` (and ``clip_norm`` where it has one);
* ``history`` (dict of lists, the Trainer's) and ``epochs_trained`` (int);
* ``progress: bool`` (default True) is the one progress switch (``quiet=``: deprecated);
* construction and training never touch the caller's random state: parameters
  are initialised under the estimator's own seeded stream and the Trainer
  draws from its own :class:`~pyrolatent.infer.rng.LocalRNG`.

:class:`ImageModelWrapper` adds what ``RVAE`` and ``SSRVAE`` share: input checks, batched
``encode``, z-shape checks, the manifold grid, self-describing checkpoints and ``load``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..checks import as_images, as_tensor, check_count, check_finite, check_number
from ..device import resolve_device
from ..guides.pose import PoseHeads
from ..infer.rng import LocalRNG
from ..infer.trainer import Trainer
from ..io.checkpoint import (
    CheckpointError,
    check_config,
    check_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from ..models.pose import parse_invariances
from ..models.sites import ANGLE, OFFSET, SCALE, Z
from .priors import prior_specs, rebuild_priors

__all__ = [
    "Estimator",
    "ImageModelWrapper",
    "custom_prior_names",
    "pose_priors",
    "renamed",
    "numpy",
]


def build_from_checkpoint(build: Callable, path):
    """``build()``, with a ``CheckpointError`` if the stored configuration is refused."""
    try:
        return build()
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path}: its configuration is invalid ({exc})") from exc


def numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU numpy copy of ``t``."""
    return t.detach().cpu().numpy()


def renamed(new_value, old_value, old: str, new: str, default=None, stacklevel: int = 3):
    """The value of a renamed keyword: ``new_value``, else the deprecated ``old_value``."""
    if old_value is not None:
        warnings.warn(
            f"{old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=stacklevel
        )
        if new_value is None:
            return old_value
    return default if new_value is None else new_value


def pose_priors(angle_prior, offset_prior, scale_prior, z_prior) -> dict:
    """The custom priors of an image estimator by keyword (None = the default)."""
    return {
        "angle_prior": angle_prior,
        "offset_prior": offset_prior,
        "scale_prior": scale_prior,
        "z_prior": z_prior,
    }


def custom_prior_names(angle_prior, offset_prior, scale_prior, z_prior) -> list[str]:
    """Names of the priors the user supplied."""
    given = pose_priors(angle_prior, offset_prior, scale_prior, z_prior)
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
        quiet: bool | None = None,
        **options,
    ) -> Trainer:
        """The Trainer, built on the first fit and updated with the new settings on later ones."""
        progress = self._progress(progress, quiet)
        lr = check_number(lr, "lr", low=0, low_open=True)
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
        if "clip_norm" in options:
            clip = options["clip_norm"]
            t.clip_norm = None if clip is None else check_number(clip, "clip_norm", low=0)
        return t

    @staticmethod
    def _progress(progress: bool, quiet: bool | None) -> bool:
        if quiet is not None:
            warnings.warn("quiet= is deprecated; use progress=", DeprecationWarning, stacklevel=4)
            return not quiet
        return bool(progress)


class ImageModelWrapper(Estimator):
    """Base of ``RVAE`` and ``SSRVAE``: image checks, encode, decode checks, manifold, save/load.

    Subclasses also set ``priors`` (a dict ``name -> prior or None``) and implement
    ``_posteriors(x_batch, extra_batch) -> dict`` for :meth:`_encode`.
    """

    priors: dict = {}

    def _build(self, config: dict, priors: dict, device, make_model, make_guide, model, guide):
        """Set ``config``, ``priors``, ``device``; build model and guide (unless given).

        ``make_model()``/``make_guide()`` run under the estimator's seeded stream,
        after ``config`` is set (they read :meth:`_model_options`/:meth:`_guide_options`).
        """
        self.config, self.priors = config, priors
        self.device = resolve_device(device)
        with self._seeded(config["seed"]):
            model = make_model() if model is None else model
            guide = make_guide() if guide is None else guide
        self.model, self.guide = model.to(self.device), guide.to(self.device)
        self.trainer = None

    @staticmethod
    def _image_config(
        image_size, latent_dim, invariances, decoder, likelihood, activation, encoder,
        encoder_hidden, decoder_hidden, offset_prior_scale, symmetry, sigma, learn_sigma,
        compute_dtype, seed,
    ) -> dict:  # fmt: skip
        """The JSON-safe constructor arguments the image estimators share (checked)."""
        image_size = [check_count(s, "image_size", high=4096) for s in image_size]
        if len(image_size) != 2:
            raise ValueError(f"image_size: expected (H, W), got {image_size}")
        if offset_prior_scale is None:
            offset_prior_scale = 0.05 * max(image_size)
        widths = {"encoder_hidden": encoder_hidden, "decoder_hidden": decoder_hidden}
        return {
            "image_size": image_size,
            "latent_dim": check_count(latent_dim, "latent_dim", high=1024),
            "invariances": list(parse_invariances(invariances)),
            "decoder": decoder,
            "likelihood": likelihood,
            "activation": activation,
            "encoder": encoder,
            **{k: [check_count(h, k, high=16_384) for h in v] for k, v in widths.items()},
            "offset_prior_scale": check_number(
                offset_prior_scale, "offset_prior_scale", low=0, low_open=True
            ),  # fmt: skip
            "symmetry": check_count(symmetry, "symmetry", high=1000),
            "sigma": check_number(sigma, "sigma", low=0, low_open=True),
            "learn_sigma": bool(learn_sigma),
            "compute_dtype": compute_dtype,
            "seed": int(seed),
        }

    def _model_options(self) -> dict:
        """Keyword arguments of the model shared by ``RVAEModel`` and ``SSRVAEModel``."""
        c = self.config
        names = ("latent_dim", "invariances", "decoder", "likelihood", "activation", "sigma",
                 "learn_sigma", "compute_dtype", "offset_prior_scale")  # fmt: skip
        return {k: c[k] for k in names} | {"hidden": c["decoder_hidden"]}

    def _guide_options(self) -> dict:
        """Keyword arguments of the guide shared by ``RVAEGuide`` and ``SSRVAEGuide``."""
        c = self.config
        names = ("latent_dim", "invariances", "activation", "encoder", "offset_prior_scale")
        return {k: c[k] for k in names} | {
            "hidden": c["encoder_hidden"],
            "angle_symmetry": c["symmetry"],
        }

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
        zt = check_finite(as_tensor(z, "z", device=self.device), "z")
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
        t = check_finite(as_tensor(value, name, device=self.device), name)
        if t.dim() == len(tail) or (t.dim() == len(tail) + 1 and t.shape[0] == 1):
            t = t.reshape(tail).expand(b, *tail)  # one pose for all
        if tuple(t.shape) != (b, *tail):
            raise ValueError(f"{name}: expected shape {(b, *tail)}, got {tuple(t.shape)}")
        return t

    def _decode(self, z, angle=None, offset=None, scale=None, extra=None) -> np.ndarray:
        """``model.render(z, *extra(B), angle, offset, scale)`` of checked codes and poses."""
        zt = self._codes(z)
        b = zt.shape[0]
        args = () if extra is None else extra(b)
        with torch.no_grad():
            mean = self.model.render(
                zt,
                *args,
                angle=self._pose(angle, "angle", b),
                offset=self._pose(offset, "offset", b, (2,)),
                scale=self._pose(scale, "scale", b),
            )
        return numpy(mean)

    @staticmethod
    def _mean_pose(enc: dict) -> dict:
        """``angle``/``offset``/``scale`` posterior locations of an ``encode`` result (or None)."""
        return {site: enc[site]["loc"] if site in enc else None for site in (ANGLE, OFFSET, SCALE)}

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
        cfg = cls._upgrade_config(dict(check_config(state.get("config"), path)))
        given = rebuild_priors(state.get("priors", {}), priors, path)
        cfg.update(given)
        obj = build_from_checkpoint(lambda: cls(**cfg, device=device), path)
        check_state_dict(obj.model, state.get("model"), path, "model")
        check_state_dict(obj.guide, state.get("guide"), path, "guide")
        obj.model.load_state_dict(state["model"])
        obj.guide.load_state_dict(state["guide"])
        return obj

    #: The widths that the deprecated ``hidden=`` meant in this estimator.
    _old_hidden = "decoder_hidden"
    #: ``pose`` of checkpoints written before the grid pose existed (None: no ``pose`` keyword).
    _pose_before_grid: str | None = None

    @classmethod
    def _upgrade_config(cls, cfg: dict) -> dict:
        """Config keys of older checkpoints renamed to the current ones."""
        if "angle_symmetry" in cfg:
            cfg["symmetry"] = cfg.pop("angle_symmetry")
        if "hidden" in cfg:
            cfg[cls._old_hidden] = cfg.pop("hidden")
        if cls._pose_before_grid is not None and "pose" not in cfg:
            cfg["pose"] = cls._pose_before_grid
        return cfg

    @classmethod
    def _renamed(cls, widths, symmetry, deprecated: dict) -> tuple:
        """``(widths, symmetry)`` given the deprecated ``hidden=``/``angle_symmetry=`` keywords."""
        unknown = set(deprecated) - {"hidden", "angle_symmetry"}
        if unknown:
            raise TypeError(f"{cls.__name__}() got unexpected keyword arguments {sorted(unknown)}")
        hidden, old_sym = deprecated.get("hidden"), deprecated.get("angle_symmetry")
        widths = renamed(widths, hidden, "hidden", cls._old_hidden, (128, 128), stacklevel=4)
        sym = renamed(symmetry, old_sym, "angle_symmetry", "symmetry", 1, stacklevel=4)
        return widths, sym
