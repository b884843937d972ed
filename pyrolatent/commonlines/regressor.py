"""Absolute embedding: an MLP that maps pattern features into a fitted embedding.

Once a reference set of patterns has been embedded (e.g. by
:class:`~pyrolatent.commonlines.embedding.CommonLinePCA`), an MLP regressor
trained on rotation-invariant features
(:func:`~pyrolatent.commonlines.features.rotation_invariant_features`) places
any new pattern in that embedding without recomputing similarities
(``spi-clpca-volume-vae``, section 2.2.3: hidden layers 512, 128, 64, 32).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._rng import restores_global_rng
from ..checks import as_tensor, check_count, check_finite, check_number
from ..device import resolve_device
from ..io.checkpoint import (
    CheckpointError,
    check_config,
    check_state_dict,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["AbsoluteEmbedding", "r2_scores"]

_KIND = "pyrolatent.commonlines.AbsoluteEmbedding"


def r2_scores(prediction, target) -> np.ndarray:
    """Coefficient of determination of every output column, ``(D,)``."""
    p = np.asarray(prediction, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"prediction {p.shape} and target {t.shape} must both be (N, D)")
    residual = ((t - p) ** 2).sum(axis=0)
    total = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - residual / np.maximum(total, 1e-300)


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class AbsoluteEmbedding:
    """MLP regressor from features ``(N, F)`` to embedding coordinates ``(N, D)``.

    Features and targets are standardised with statistics of the training
    split; the network predicts standardised targets.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer widths (the paper's 512, 128, 64, 32).
    dropout : float
        Dropout after every hidden layer.
    log_features : bool
        Fit on ``log(feature + eps)`` (``eps`` from the training features).
        Useful for features of linear intensities, whose ``|FFT|`` amplitudes
        span decades; with features of log intensities
        (``rotation_invariant_features(..., log=True)``) it is not needed.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.

    Attributes
    ----------
    history_ : dict
        ``"train_loss"`` and ``"validation_loss"`` (standardised MSE) per epoch.
    validation_scores_ : dict
        ``"r2"`` and ``"mse"`` per component on the held-out validation split
        (in target units), from the epoch with the lowest validation loss.
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (512, 128, 64, 32),
        dropout: float = 0.0,
        log_features: bool = False,
        device=None,
    ):
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive widths, got {hidden}")
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = float(dropout)
        self.log_features = bool(log_features)
        self.device = resolve_device(device)
        self.network: nn.Sequential | None = None

    # -- preprocessing -------------------------------------------------
    def _inputs(self, features, name="features") -> torch.Tensor:
        x = as_tensor(features, name=name, device=self.device)
        if x.dim() != 2:
            raise ValueError(f"{name}: expected (N, F), got shape {tuple(x.shape)}")
        check_finite(x, name)
        if self.network is not None and x.shape[1] != self.n_features_:
            raise ValueError(
                f"{name}: has {x.shape[1]} features, the model expects {self.n_features_}"
            )
        return x

    def _transform_x(self, x: torch.Tensor) -> torch.Tensor:
        if self.log_features:
            x = torch.log(x.clamp_min(0) + self._eps)
        return (x - self._x_mean) / self._x_std

    # -- fit / predict ---------------------------------------------------
    @restores_global_rng  # its torch.manual_seed(seed) stays local
    def fit(
        self,
        features,
        targets,
        validation_fraction: float = 0.2,
        epochs: int = 300,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int = 50,
        seed: int = 0,
        progress: bool = True,
    ) -> AbsoluteEmbedding:
        """Train on ``features (N, F)`` and ``targets (N, D)``.

        A random ``validation_fraction`` of the rows is held out; the weights of
        the epoch with the lowest validation loss are kept, and training stops
        after ``patience`` epochs without improvement.
        """
        x = as_tensor(features, name="features", device=self.device)
        y = as_tensor(targets, name="targets", device=self.device)
        if x.dim() != 2:
            raise ValueError(f"features: expected (N, F), got shape {tuple(x.shape)}")
        if y.dim() == 1:
            y = y.unsqueeze(1)
        if y.dim() != 2 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"targets: expected ({x.shape[0]}, D) to match features, got {tuple(y.shape)}"
            )
        check_finite(x, "features")
        check_finite(y, "targets")
        validation_fraction = check_number(validation_fraction, "validation_fraction", low=0,
                                           high=1, low_open=True, high_open=True)  # fmt: skip
        epochs = check_count(epochs, "epochs", low=1)
        batch_size = check_count(batch_size, "batch_size", low=1)
        lr = check_number(lr, "lr", low=0, low_open=True)
        weight_decay = check_number(weight_decay, "weight_decay", low=0)
        patience = check_count(patience, "patience", low=0)
        n = x.shape[0]
        n_val = max(1, int(round(validation_fraction * n)))
        if n - n_val < 2:
            raise ValueError(f"need at least {n_val + 2} samples to fit, got {n}")
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        perm = torch.randperm(n, generator=gen).to(self.device)
        val_idx, train_idx = perm[:n_val], perm[n_val:]

        self.n_features_, self.n_outputs_ = x.shape[1], y.shape[1]
        x_train = x[train_idx]
        self._eps = float(x_train.clamp_min(0).mean()) * 1e-3 + 1e-12 if self.log_features else 0.0
        if self.log_features:
            x_train = torch.log(x_train.clamp_min(0) + self._eps)
        self._x_mean = x_train.mean(0)
        self._x_std = x_train.std(0).clamp_min(1e-6)
        self._y_mean = y[train_idx].mean(0)
        self._y_std = y[train_idx].std(0).clamp_min(1e-12)
        xs = self._transform_x(x)
        ys = (y - self._y_mean) / self._y_std

        self.network = _mlp(self.n_features_, self.hidden, self.n_outputs_, self.dropout).to(
            self.device
        )
        opt = torch.optim.Adam(self.network.parameters(), lr=lr, weight_decay=weight_decay)
        history = {"train_loss": [], "validation_loss": []}
        best = (math.inf, None, -1)
        n_train = train_idx.numel()
        bar = tqdm(range(epochs), desc="absolute embedding", disable=not progress, leave=False)
        for epoch in bar:
            self.network.train()
            order = train_idx[torch.randperm(n_train, generator=gen).to(self.device)]
            total = 0.0
            for start in range(0, n_train, batch_size):
                idx = order[start : start + batch_size]
                loss = ((self.network(xs[idx]) - ys[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            self.network.eval()
            with torch.no_grad():
                val_loss = float(((self.network(xs[val_idx]) - ys[val_idx]) ** 2).mean())
            history["train_loss"].append(total / n_train)
            history["validation_loss"].append(val_loss)
            bar.set_postfix(train=f"{total / n_train:.4f}", val=f"{val_loss:.4f}")
            if val_loss < best[0]:
                best = (val_loss, copy.deepcopy(self.network.state_dict()), epoch)
            elif epoch - best[2] >= patience:
                break
        if best[1] is None:
            raise ValueError(f"training diverged (validation loss {val_loss}); lower lr={lr}")
        self.network.load_state_dict(best[1])
        self.network.eval()
        self.history_ = history
        self.best_epoch_ = best[2]
        self.validation_index_ = val_idx.cpu().numpy()
        pred = self.predict(x[val_idx])
        target = y[val_idx].cpu().numpy()
        self.validation_scores_ = {
            "r2": r2_scores(pred, target),
            "mse": ((pred - target) ** 2).mean(axis=0),
        }
        return self

    def predict(self, features) -> np.ndarray:
        """Embedding coordinates ``(N, D)`` of ``features (N, F)``."""
        if self.network is None:
            raise RuntimeError("AbsoluteEmbedding is not fitted; call fit(features, targets)")
        x = self._inputs(features)
        self.network.eval()
        with torch.no_grad():
            out = self.network(self._transform_x(x)) * self._y_std + self._y_mean
        return out.cpu().numpy()

    def score(self, features, targets) -> np.ndarray:
        """Held-out ``R^2`` of every component, ``(D,)``."""
        t = np.asarray(targets, dtype=np.float64)
        if t.ndim == 1:
            t = t[:, None]
        return r2_scores(self.predict(features), t)

    # -- persistence -----------------------------------------------------
    def state_dict(self) -> dict:
        """Configuration, scalers and weights as plain containers and tensors."""
        if self.network is None:
            raise RuntimeError("AbsoluteEmbedding is not fitted; nothing to save")
        return {
            "kind": _KIND,
            "config": {
                "hidden": list(self.hidden),
                "dropout": self.dropout,
                "log_features": self.log_features,
                "n_features": self.n_features_,
                "n_outputs": self.n_outputs_,
            },
            "scalers": {
                "eps": torch.tensor(self._eps),
                "x_mean": self._x_mean.cpu(),
                "x_std": self._x_std.cpu(),
                "y_mean": self._y_mean.cpu(),
                "y_std": self._y_std.cpu(),
            },
            "network": {k: v.cpu() for k, v in self.network.state_dict().items()},
        }

    def save(self, path):
        """Write an atomic, self-describing checkpoint to ``path``."""
        return save_checkpoint(self.state_dict(), path)

    @classmethod
    def load(cls, path, device=None) -> AbsoluteEmbedding:
        """Rebuild a fitted regressor from :meth:`save`'s file.

        Raises
        ------
        CheckpointError
            Missing, truncated or corrupted file, or a checkpoint of another kind.
        """
        state = load_checkpoint(path)
        if state.get("kind") != _KIND:
            raise CheckpointError(f"{path} holds {state.get('kind')!r}, not an AbsoluteEmbedding")
        cfg = check_config(state.get("config"), path)
        try:
            model = cls(
                hidden=tuple(cfg["hidden"]),
                dropout=cfg["dropout"],
                log_features=cfg["log_features"],
                device=device,
            )
            sc = state["scalers"]
            shapes = {"x_mean": cfg["n_features"], "x_std": cfg["n_features"],
                      "y_mean": cfg["n_outputs"], "y_std": cfg["n_outputs"]}  # fmt: skip
            for key, n in shapes.items():
                if not isinstance(sc[key], torch.Tensor) or tuple(sc[key].shape) != (n,):
                    raise CheckpointError(f"checkpoint {path}: scaler {key} is not ({n},)")
            network = _mlp(cfg["n_features"], model.hidden, cfg["n_outputs"], model.dropout)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"checkpoint {path}: invalid configuration ({exc})") from exc
        check_state_dict(network, state.get("network"), path, "network")
        model.n_features_, model.n_outputs_ = cfg["n_features"], cfg["n_outputs"]
        model._eps = float(sc["eps"])
        model._x_mean = sc["x_mean"].to(model.device)
        model._x_std = sc["x_std"].to(model.device)
        model._y_mean = sc["y_mean"].to(model.device)
        model._y_std = sc["y_std"].to(model.device)
        model.network = network
        model.network.load_state_dict(state["network"])
        model.network.to(model.device).eval()
        return model
