"""The user-facing semi-supervised rVAE estimator (:class:`SSRVAE`).

The model is :class:`~pyrolatent.models.ssrvae.SSRVAEModel`, the guide
:class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`; the shared protocol is
:class:`~pyrolatent.estimators.base.ImageModelWrapper`. The labelled and
unlabelled mini-batches are interleaved by :class:`InterleavedBatches`, a
batch source of the Trainer.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..guides.ssrvae import SSRVAEGuide
from ..infer.batches import Batches
from ..infer.elbo import AuxiliaryTraceEnum_ELBO
from ..infer.metrics import ValidationAccuracy
from ..models.pose import parse_invariances
from ..models.sites import Y, Z
from ..models.ssrvae import SSRVAEModel, _check_class_prior
from .base import ImageModelWrapper, numpy, pose_priors
from .diagnostics import DiagnosticsMixin
from .grid_pose import grid_posteriors, guide_pose_options, model_pose_options, pose_config
from .labelled import InterleavedBatches, LabelledMixin

__all__ = ["SSRVAE", "InterleavedBatches"]


class SSRVAE(DiagnosticsMixin, LabelledMixin, ImageModelWrapper):
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
    encoder_hidden : sequence of int
        Widths of the encoders (classifier and z/pose encoder), default ``(128, 128)``.
    activation : str
    encoder : {"mlp", "conv"}
        Image encoder of both the classifier and the z/pose encoder.
    decoder_hidden : sequence of int, optional
        Decoder widths (default ``encoder_hidden``; for ``"spatial"`` the first entry is
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
    symmetry : int
        Rotational symmetry order of the objects.
    class_conditioned_pose : bool
        ``q(pose | x, y)`` or ``q(pose | x)`` shared by all classes (default).
    canonical_classifier : bool, optional
        Classify images moved back by their inferred pose (needs
        ``class_conditioned_pose=False``; with rotation, ``pose="amortized"``).
        Default: off for ``pose="grid"`` with rotation, else on.
    identity_pose_init : bool
        Start the pose posteriors concentrated at the identity pose (default;
        see :class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`).
    input_noise : float
        Training-time noise augmentation of the encoders' inputs, image units
        (see :class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`); ``0`` is off.
    classifier_views : int, optional
        ``> 1``: a rotation-invariant classifier averaging this many turned
        copies of each re-centred image, needing no pose estimate (and
        ``canonical_classifier=False``); ``1``: a plain or canonical classifier.
        Default: 16 for ``pose="grid"`` with rotation, else 1.
    sigma, learn_sigma
        Gaussian likelihood options.
    compute_dtype : {"float32", "bfloat16"}
        Precision of the spatial decoder's hidden-layer products;
        ``"bfloat16"`` trains faster on CPUs with AMX/AVX512-BF16. Parameters,
        optimiser state and the likelihood stay float32.
    device : str or torch.device, optional
    seed : int
        Seeds parameter initialisation and the estimator's own training stream.
    model, guide : PyroModule, optional
        Use these instead of building ``SSRVAEModel``/``SSRVAEGuide``.
    **deprecated
        ``hidden=`` and ``angle_symmetry=``, the deprecated names of
        ``encoder_hidden`` and ``symmetry`` (with a ``DeprecationWarning``).

    Examples
    --------
    >>> m = SSRVAE((48, 48), n_classes=4)                          # doctest: +SKIP
    >>> m.fit(unlabelled, labelled_images, labels, epochs=30)      # doctest: +SKIP
    >>> m.predict(test_images)                                      # doctest: +SKIP
    """

    _old_hidden = "encoder_hidden"
    _pose_before_grid = "amortized"

    def __init__(
        self,
        image_size: tuple[int, int],
        n_classes: int,
        latent_dim: int = 2,
        invariances=("rotation", "translation"),
        decoder: str = "warp",
        likelihood: str = "bernoulli",
        encoder_hidden: Sequence[int] | None = None,
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
        symmetry: int | None = None,
        sigma: float = 0.1,
        learn_sigma: bool = False,
        compute_dtype: str = "float32",
        class_conditioned_pose: bool = False,
        canonical_classifier: bool | None = None,
        identity_pose_init: bool = True,
        input_noise: float = 0.0,
        classifier_views: int | None = None,
        pose: str = "grid",
        pose_grid: int = 8,
        pose_refine: int = 8,
        views: int = 8,
        device=None,
        seed: int = 0,
        model=None,
        guide=None,
        **deprecated,
    ):
        encoder_hidden, symmetry = self._renamed(encoder_hidden, symmetry, deprecated)
        if isinstance(angle_prior, str) and angle_prior == "custom":
            raise ValueError("this model used a custom angle prior: pass angle_prior")
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        custom_angle = not isinstance(angle_prior, str)
        turns = pose == "grid" and "rotation" in parse_invariances(invariances)
        if canonical_classifier is None:
            canonical_classifier = not turns
        if classifier_views is None:
            classifier_views = 16 if turns else 1
        probs = _check_class_prior(class_prior, n_classes)
        config = self._image_config(
            image_size, latent_dim, invariances, decoder, likelihood, activation, encoder,
            encoder_hidden, decoder_hidden or encoder_hidden, offset_prior_scale, symmetry,
            sigma, learn_sigma, compute_dtype, seed,
        )  # fmt: skip
        config.update(
            n_classes=int(n_classes),
            angle_prior="custom" if custom_angle else angle_prior,
            angle_prior_scale=float(angle_prior_scale),
            class_prior=[float(p) for p in probs],
            aux_weight=float(aux_weight),
            class_conditioned_pose=bool(class_conditioned_pose),
            canonical_classifier=bool(canonical_classifier),
            identity_pose_init=bool(identity_pose_init),
            input_noise=float(input_noise),
            classifier_views=int(classifier_views),
        )
        config |= pose_config(pose, pose_grid, pose_refine, views)
        priors = pose_priors(
            angle_prior if custom_angle else None, offset_prior, scale_prior, z_prior
        )

        def make_model():
            return SSRVAEModel(
                config["image_size"], n_classes, **self._model_options(),
                **model_pose_options(config),
                **(priors | {"angle_prior": angle_prior}),
                angle_prior_scale=angle_prior_scale, class_prior=probs,
            )  # fmt: skip

        def make_guide():
            return SSRVAEGuide(
                config["image_size"], n_classes, **self._guide_options(),
                class_conditioned_pose=class_conditioned_pose,
                canonical_classifier=canonical_classifier,
                identity_pose_init=identity_pose_init, input_noise=input_noise,
                classifier_views=config["classifier_views"], **guide_pose_options(config),
            )  # fmt: skip

        self._build(config, priors, device, make_model, make_guide, model, guide)

    def default_loss(self) -> AuxiliaryTraceEnum_ELBO:
        """The M2 objective: enumerated ELBO + ``aux_weight * log q(y | x)`` on labelled items."""
        return AuxiliaryTraceEnum_ELBO(aux_weight=self.config["aux_weight"], max_plate_nesting=1)

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
        val_data=None,
        callbacks=(),
        checkpoint_path=None,
        loss=None,
        progress: bool = True,
        quiet: bool | None = None,
        diagnose: bool = True,
    ) -> SSRVAE:
        """Train ``epochs`` more epochs by SVI with the shared :class:`~pyrolatent.infer.Trainer`.

        Each step sums the per-item ELBO of one unlabelled and one labelled
        mini-batch (which includes the auxiliary classification term), see
        :class:`InterleavedBatches`.

        Parameters
        ----------
        images : array_like or None
            Unlabelled images ``(N, H, W)``.
        labelled_images : array_like
            ``(L, H, W)``.
        labels : array_like
            ``(L,)`` integer classes in ``[0, n_classes)``.
        epochs : int
            Epochs to add to those already trained.
        batch_size, labelled_batch_size, lr
            Mini-batch sizes and Adam learning rate. The measured cards recipe
            (``benchmarks/ssrvae.py``, the fast test) is ``batch_size=32,
            lr=3e-3``: on the paper split (48x48, 12,000 unlabelled cards) test
            accuracy 0.98-0.995 after 6 epochs and 0.9975-0.9995 after 10-15
            epochs (two seed pairs).
        val_images, val_labels : array_like, optional
            Held-out labelled images: ``val_accuracy`` goes into the history
            each epoch (through :class:`~pyrolatent.infer.metrics.ValidationAccuracy`).
        val_data : array_like or (array_like, array_like), optional
            Held-out images ``(M, H, W)`` (the class summed out, as for unlabelled
            items) or ``(images, labels)``: their per-item loss, evaluated without
            side effects (:meth:`~pyrolatent.infer.Trainer.evaluate`), goes into the
            history as ``val_loss`` each epoch.
        callbacks : sequence
            More Trainer callbacks.
        checkpoint_path : path-like, optional
            Checkpoint written every epoch; an interrupted fit resumes from it.
        loss : pyro.infer.ELBO, optional
            Defaults to :meth:`default_loss`; a plain ``TraceEnum_ELBO`` drops
            the auxiliary classification term.
        progress : bool
            Show the progress bar (``quiet=`` is a deprecated alias).
        diagnose : bool
            After training, check the fit with :meth:`diagnostics` (on at most
            2,048 unlabelled, else labelled, images) and issue a
            :class:`~pyrolatent.estimators.diagnostics.PosteriorCollapseWarning`
            when it collapsed.

        Returns
        -------
        SSRVAE
            ``self``; the per-epoch losses are in :attr:`history`.
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
        val = None
        if val_data is not None:
            if isinstance(val_data, (tuple, list)) and len(val_data) == 2:
                xd = self._images(val_data[0], "val_data[0]")
                val = (xd, self._labels(val_data[1], xd.shape[0], "val_data[1]"))
            else:
                val = (self._images(val_data, "val_data"),)
        trainer = self._trainer(lr=lr, callbacks=callbacks, checkpoint_path=checkpoint_path,
                                loss=loss or self.default_loss(), progress=progress,
                                quiet=quiet)  # fmt: skip
        source = InterleavedBatches(
            Batches(xu, batch_size) if xu is not None else None,
            Batches((xl, yl), labelled_batch_size or batch_size, salt=1, name="labelled"),
        )
        with warnings.catch_warnings():
            # labelled batches have no enumerated site; that is expected
            warnings.filterwarnings("ignore", message="TraceEnum_ELBO found no sample sites")
            trainer.fit(source, epochs=epochs, batch_size=batch_size, val_data=val)
        if diagnose:
            self._warn_if_collapsed(xu if xu is not None else xl)
        return self

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
        posteriors = self.guide.posteriors
        if getattr(self.model, "angle_grid", None) is not None:

            def posteriors(xb, yb):
                return grid_posteriors(self.model, self.guide, xb, self.config["pose_refine"], yb)

        result = self._encode(x, posteriors, batch_size, y)
        result[Y] = {"probs": numpy(probs), "label": numpy(y)}
        return result

    def decode(self, z, labels, angle=None, offset=None, scale=None) -> np.ndarray:
        """Mean images ``(B, H, W)`` for codes ``z (B, D)``, classes ``(B,)`` and poses.

        ``angle`` is ``(B,)`` radians (or a scalar), ``offset`` ``(B, 2)``
        pixels (or ``(2,)``), ``scale`` ``(B,)`` (or a scalar).
        """

        def classes(b):
            lab = np.broadcast_to(np.asarray(labels), (b,)) if np.ndim(labels) == 0 else labels
            return (self._labels(lab, b),)

        return self._decode(z, angle=angle, offset=offset, scale=scale, extra=classes)

    def reconstruct(self, images, labels=None, batch_size: int = 1024) -> np.ndarray:
        """Decode each image at its class, posterior-mean code and pose, ``(N, H, W)``."""
        enc = self.encode(images, labels=labels, batch_size=batch_size)
        return self.decode(enc[Z]["loc"], enc[Y]["label"], **self._mean_pose(enc))

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
        imgs = self.decode(self._grid(grid_size, z_range, dims), int(label))
        return imgs.reshape(grid_size, grid_size, *self.image_size)

    # ------------------------------------------------------------- save/load
