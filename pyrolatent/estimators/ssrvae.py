"""The user-facing semi-supervised rVAE estimator (:class:`SSRVAE`).

The model is :class:`~pyrolatent.models.ssrvae.SSRVAEModel`, the guide
:class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..device import resolve_device
from ..guides.pose import PoseHeads
from ..guides.ssrvae import SSRVAEGuide
from ..infer.metrics import ValidationAccuracy
from ..infer.trainer import Trainer
from ..models.pose import parse_invariances
from ..models.sites import Y, Z
from ..models.ssrvae import SSRVAEModel, _check_class_prior
from ..nn.classifier import export_classifier
from ..validation import as_tensor
from .base import ImageModelWrapper, custom_prior_names

__all__ = ["SSRVAE"]


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class SSRVAE(ImageModelWrapper):
    """Semi-supervised rotationally invariant VAE: model + guide + fitting and analysis.

    Parameters
    ----------
    image_size : (int, int)
    n_classes : int
    latent_dim : int
    invariances : iterable of str
        ``("rotation", "translation")`` by default; ``()`` is the plain ss-VAE.
    decoder : {"warp", "spatial"}
    likelihood : {"bernoulli", "gaussian", "poisson"}
    hidden : sequence of int
        Widths of the encoders (classifier and z/pose encoder).
    activation : str
    encoder : {"mlp", "conv"}
        Image encoder of both the classifier and the z/pose encoder.
    decoder_hidden : sequence of int, optional
        Decoder widths (default ``hidden``; for ``"spatial"`` the first entry is
        the joint coordinate/latent layer).
    angle_prior : str, Distribution or callable
        See :class:`SSRVAEModel`.
    angle_prior_scale : float
        Radians.
    offset_prior, scale_prior, z_prior : optional
        Custom priors.
    offset_prior_scale : float, optional
        Pixels; default ``0.05 * max(H, W)``.
    class_prior : array_like, optional
        ``(n_classes,)`` class probabilities for imbalanced data.
    aux_weight : float
        Weight alpha of the auxiliary classification loss.
    angle_symmetry : int
        Rotational symmetry order of the objects.
    class_conditioned_pose : bool
        ``q(pose | x, y)`` or ``q(pose | x)`` shared by all classes (default).
    canonical_classifier : bool
        Classify images moved back by their inferred pose (default; needs
        ``class_conditioned_pose=False``).
    identity_pose_init : bool
        Start the pose posteriors concentrated at the identity pose (default;
        see :class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`).
    input_noise : float
        Training-time noise augmentation of the encoders' inputs, image units
        (see :class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`); ``0`` is off.
    sigma, learn_sigma
        Gaussian likelihood options.
    compute_dtype : {"float32", "bfloat16"}
        Precision of the spatial decoder's hidden-layer products;
        ``"bfloat16"`` trains faster on CPUs with AMX/AVX512-BF16. Parameters,
        optimiser state and the likelihood stay float32.
    device : str or torch.device, optional
    seed : int

    Examples
    --------
    >>> m = SSRVAE((48, 48), n_classes=4)                          # doctest: +SKIP
    >>> m.fit(unlabelled, labelled_images, labels, epochs=30)       # doctest: +SKIP
    >>> m.predict(test_images)                                      # doctest: +SKIP
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        n_classes: int,
        latent_dim: int = 2,
        invariances=("rotation", "translation"),
        decoder: str = "warp",
        likelihood: str = "bernoulli",
        hidden: Sequence[int] = (128, 128),
        activation: str = "tanh",
        encoder: str = "mlp",
        decoder_hidden: Sequence[int] | None = None,
        angle_prior="projected_normal",
        angle_prior_scale: float = 1.0,
        offset_prior=None,
        scale_prior=None,
        z_prior=None,
        offset_prior_scale: float | None = None,
        class_prior=None,
        aux_weight: float = 50.0,
        angle_symmetry: int = 1,
        class_conditioned_pose: bool = False,
        canonical_classifier: bool = True,
        identity_pose_init: bool = True,
        input_noise: float = 0.0,
        sigma: float = 0.1,
        learn_sigma: bool = False,
        compute_dtype: str = "float32",
        device=None,
        seed: int = 0,
    ):

        image_size = tuple(int(s) for s in image_size)
        if offset_prior_scale is None:
            offset_prior_scale = 0.05 * max(image_size)
        custom_angle = not isinstance(angle_prior, str)
        probs = _check_class_prior(class_prior, n_classes)
        self.config = {
            "image_size": list(image_size),
            "n_classes": int(n_classes),
            "latent_dim": int(latent_dim),
            "invariances": list(parse_invariances(invariances)),
            "decoder": decoder,
            "likelihood": likelihood,
            "hidden": [int(h) for h in hidden],
            "activation": activation,
            "encoder": encoder,
            "decoder_hidden": [int(h) for h in (decoder_hidden or hidden)],
            "angle_prior": "custom" if custom_angle else angle_prior,
            "angle_prior_scale": float(angle_prior_scale),
            "offset_prior_scale": float(offset_prior_scale),
            "class_prior": [float(p) for p in probs],
            "aux_weight": float(aux_weight),
            "angle_symmetry": int(angle_symmetry),
            "class_conditioned_pose": bool(class_conditioned_pose),
            "canonical_classifier": bool(canonical_classifier),
            "identity_pose_init": bool(identity_pose_init),
            "input_noise": float(input_noise),
            "sigma": float(sigma),
            "learn_sigma": bool(learn_sigma),
            "compute_dtype": compute_dtype,
            "seed": int(seed),
        }
        self.custom_priors = custom_prior_names(
            angle_prior if custom_angle else None, offset_prior, scale_prior, z_prior
        )
        self.device = resolve_device(device)
        torch.manual_seed(seed)
        self.model = SSRVAEModel(
            image_size,
            n_classes,
            latent_dim,
            invariances,
            decoder,
            likelihood,
            self.config["decoder_hidden"],
            activation,
            angle_prior=angle_prior,
            angle_prior_scale=angle_prior_scale,
            offset_prior=offset_prior,
            scale_prior=scale_prior,
            z_prior=z_prior,
            offset_prior_scale=offset_prior_scale,
            class_prior=probs,
            aux_weight=aux_weight,
            sigma=sigma,
            learn_sigma=learn_sigma,
            compute_dtype=compute_dtype,
        ).to(self.device)
        self.guide = SSRVAEGuide(
            image_size,
            n_classes,
            latent_dim,
            invariances,
            hidden,
            activation,
            encoder,
            offset_prior_scale,
            angle_symmetry,
            class_conditioned_pose,
            canonical_classifier,
            identity_pose_init,
            input_noise,
        ).to(self.device)
        self.model.attach_classifier(self.guide.classify_training)
        self.trainer = None

    # ----------------------------------------------------------------- input
    @property
    def n_classes(self) -> int:
        return self.config["n_classes"]

    def _labels(self, labels, n: int, name: str = "labels") -> torch.Tensor:
        arr = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
        if arr.ndim != 1:
            raise ValueError(f"{name}: expected 1-D class indices, got shape {arr.shape}")
        if arr.shape[0] != n:
            raise ValueError(f"{name}: {arr.shape[0]} labels for {n} images; lengths must match")
        if not (np.issubdtype(arr.dtype, np.integer) or np.all(np.mod(arr, 1) == 0)):
            raise ValueError(f"{name}: class indices must be integers")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.n_classes)
        if bad.any():
            raise ValueError(
                f"{name}: {int(bad.sum())} labels outside [0, {self.n_classes}) "
                f"(min {arr.min()}, max {arr.max()})"
            )
        return torch.from_numpy(arr).to(self.device)

    def _labelled(self, labelled_images, labels) -> tuple[torch.Tensor, torch.Tensor]:
        if labelled_images is None or labels is None:
            raise ValueError("give both labelled_images and labels")
        if np.size(labelled_images) == 0 or np.size(labels) == 0:
            raise ValueError("the labelled set is empty: give at least one labelled image")
        x = self._images(labelled_images, "labelled_images")
        y = self._labels(labels, x.shape[0])
        missing = sorted(set(range(self.n_classes)) - set(y.tolist()))
        if missing:
            warnings.warn(
                f"classes {missing} have no labelled examples; the model can still "
                "assign them only through the unlabelled data",
                stacklevel=3,
            )
        return x, y

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        images,
        labelled_images,
        labels,
        epochs: int = 50,
        batch_size: int = 64,
        labelled_batch_size: int | None = None,
        lr: float = 1e-3,
        val_images=None,
        val_labels=None,
        callbacks=(),
        checkpoint_path=None,
        loss=None,
        quiet: bool = False,
    ) -> dict:
        """Fit by SVI with the shared :class:`~pyrolatent.infer.Trainer`.

        An epoch has ``max(U, L)`` steps (``U``/``L``: unlabelled/labelled
        mini-batches); each step sums the per-item ELBO of one unlabelled batch
        and one labelled batch (which includes the auxiliary classification
        term) and takes one optimiser step, so every labelled item is used in
        every epoch.

        Parameters
        ----------
        images : array_like or None
            Unlabelled images ``(N, H, W)``.
        labelled_images : array_like
            ``(L, H, W)``.
        labels : array_like
            ``(L,)`` integer classes in ``[0, n_classes)``.
        epochs, batch_size, labelled_batch_size, lr
            Training length, mini-batch sizes and Adam learning rate. The
            measured cards recipe (``benchmarks/ssrvae.py``, the fast test) is
            ``batch_size=32, lr=3e-3``: on the paper split (48x48, 12,000
            unlabelled cards) test accuracy 0.98-0.995 after 6 epochs and
            0.9975-0.9995 after 10-15 epochs (two seed pairs).
        val_images, val_labels : array_like, optional
            Held-out labelled images: ``val_accuracy`` goes into the history
            each epoch (through :class:`~pyrolatent.infer.metrics.ValidationAccuracy`).
        callbacks : sequence
            More Trainer callbacks.
        checkpoint_path : path-like, optional
            Checkpoint written every epoch; an interrupted fit resumes from it.
        loss : pyro.infer.ELBO, optional
            Defaults to ``TraceEnum_ELBO(max_plate_nesting=1)``.
        quiet : bool
            Hide the progress bar.

        Returns
        -------
        dict
            The training history.
        """

        xl, yl = self._labelled(labelled_images, labels)
        xu = self._images(images) if images is not None else None
        callbacks = list(callbacks)
        if (val_images is None) != (val_labels is None):
            raise ValueError("give both val_images and val_labels, or neither")
        if val_images is not None:
            xv = self._images(val_images, "val_images")
            yv = self._labels(val_labels, xv.shape[0], "val_labels")
            callbacks.append(ValidationAccuracy(self._predict_tensor, xv, yv))
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
                quiet=quiet,
            )
        else:
            self.trainer.callbacks = callbacks
            self.trainer.quiet = quiet
        with warnings.catch_warnings():
            # labelled batches have no enumerated site; that is expected
            warnings.filterwarnings("ignore", message="TraceEnum_ELBO found no sample sites")
            return self.trainer.fit(
                xu,
                epochs=epochs,
                batch_size=batch_size,
                labelled_data=(xl, yl),
                labelled_batch_size=labelled_batch_size,
            )

    # --------------------------------------------------------------- predict
    @torch.no_grad()
    def _proba_tensor(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        clf = self.guide.y_encoder
        was_training = clf.training
        clf.eval()
        try:
            out = [
                torch.softmax(clf(x[i : i + batch_size]), dim=-1)
                for i in range(0, x.shape[0], batch_size)
            ]
        finally:
            clf.train(was_training)
        return torch.cat(out)

    def _predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return self._proba_tensor(x).argmax(-1)

    def predict_proba(self, images, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities ``q(y | x)``, ``(N, n_classes)``."""
        return _numpy(self._proba_tensor(self._images(images), batch_size))

    def predict(self, images, batch_size: int = 1024) -> np.ndarray:
        """Most probable class, ``(N,)`` int64."""
        return self.predict_proba(images, batch_size).argmax(-1)

    @torch.no_grad()
    def encode(self, images, labels=None, batch_size: int = 1024) -> dict:
        """Class probabilities and the posteriors of z and pose given a class.

        Parameters
        ----------
        images : array_like
            ``(N, H, W)``.
        labels : array_like, optional
            ``(N,)`` classes to condition on; default the predicted class.

        Returns
        -------
        dict
            ``{"y": {"probs": (N, K), "label": (N,)}, "z": {"loc", "scale"},
            "angle": {"loc": (N,) radians, "scale"}, "offset": {"loc": (N, 2)
            pixels, "scale"}, ...}``.
        """

        x = self._images(images)
        probs = self._proba_tensor(x, batch_size)
        y = probs.argmax(-1) if labels is None else self._labels(labels, x.shape[0])
        was_training = self.guide.training
        self.guide.eval()
        parts = []
        try:
            for i in range(0, x.shape[0], batch_size):
                posts = self.guide.posteriors(x[i : i + batch_size], y[i : i + batch_size])
                out = PoseHeads.summary(posts)
                out[Z] = {"loc": posts[Z].base_dist.loc, "scale": posts[Z].base_dist.scale}
                parts.append(out)
        finally:
            self.guide.train(was_training)
        result = {
            site: {k: _numpy(torch.cat([p[site][k] for p in parts])) for k in parts[0][site]}
            for site in parts[0]
        }
        result[Y] = {"probs": _numpy(probs), "label": _numpy(y)}
        return result

    @torch.no_grad()
    def decode(self, z, labels, angle=None, offset=None) -> np.ndarray:
        """Mean images ``(B, H, W)`` for codes ``z (B, D)``, classes ``(B,)`` and poses.

        ``angle`` is ``(B,)`` radians (or a scalar), ``offset`` ``(B, 2)``
        pixels (or ``(2,)``).
        """
        zt = as_tensor(z, "z", device=self.device)
        if zt.dim() == 1:
            zt = zt.unsqueeze(0)
        d = self.config["latent_dim"]
        if zt.dim() != 2 or zt.shape[1] != d:
            raise ValueError(f"z: expected shape (B, {d}), got {tuple(zt.shape)}")
        b = zt.shape[0]
        lab = np.broadcast_to(np.asarray(labels), (b,)) if np.ndim(labels) == 0 else labels
        y = self._labels(lab, b)
        at = None if angle is None else as_tensor(angle, "angle", device=self.device)
        ot = None if offset is None else as_tensor(offset, "offset", device=self.device)
        at = None if at is None else at.expand(b)
        ot = None if ot is None else ot.expand(b, 2)
        return _numpy(self.model.render(zt, y, angle=at, offset=ot))

    def manifold(
        self,
        label: int,
        grid_size: int = 8,
        z_range: tuple[float, float] = (-2.0, 2.0),
        dims: tuple[int, int] = (0, 1),
    ) -> np.ndarray:
        """Class-conditioned latent traversal (pose = identity).

        Returns
        -------
        numpy.ndarray
            ``(grid_size, grid_size, H, W)``; row ``i`` has ``z[dims[0]]`` from
            high to low, column ``j`` has ``z[dims[1]]`` from low to high (a 1-D
            latent varies along columns only).
        """
        d = self.config["latent_dim"]
        vals = np.linspace(z_range[0], z_range[1], grid_size, dtype=np.float32)
        codes = np.zeros((grid_size, grid_size, d), dtype=np.float32)
        for i in range(grid_size):
            for j in range(grid_size):
                if d > 1:
                    codes[i, j, dims[0]] = vals[::-1][i]
                    codes[i, j, dims[1]] = vals[j]
                else:
                    codes[i, j, 0] = vals[j]
        imgs = self.decode(codes.reshape(-1, d), int(label))
        return imgs.reshape(grid_size, grid_size, *self.image_size)

    # ------------------------------------------------------------- save/load
    def export_classifier(self, path) -> Path:
        """Write the y-encoder as a standalone ``torch.export`` archive.

        A process with only torch loads it with
        ``torch.export.load(path).module()``: images ``(B, H, W)`` -> logits
        ``(B, n_classes)``, with the same predictions as :meth:`predict`.
        """

        return export_classifier(self.guide.y_encoder, path, self.image_size)

    @property
    def classifier(self):
        """The y-encoder, a plain-torch ``nn.Module`` (images -> logits)."""
        return self.guide.y_encoder

    @classmethod
    def load(
        cls,
        path,
        device=None,
        angle_prior=None,
        offset_prior=None,
        scale_prior=None,
        z_prior=None,
    ) -> SSRVAE:
        """Rebuild an :class:`SSRVAE` saved with :meth:`save` (weights-only loading)."""
        state = cls._read_checkpoint(path)
        cfg = dict(state["config"])
        stored_angle = cfg.pop("angle_prior")
        if angle_prior is None:
            if stored_angle == "custom":
                raise ValueError("this model used a custom angle prior: pass angle_prior")
            angle_prior = stored_angle
        obj = cls(
            **cfg,
            angle_prior=angle_prior,
            offset_prior=offset_prior,
            scale_prior=scale_prior,
            z_prior=z_prior,
            device=device,
        )
        return obj._load_weights(state)
