"""The user-facing rotationally invariant VAE estimator (:class:`RVAE`).

The model is :class:`~pyrolatent.models.rvae.RVAEModel`, the guide
:class:`~pyrolatent.guides.rvae.RVAEGuide`; the shared protocol (re-fit,
history, RNG, save/load) is :class:`~pyrolatent.estimators.base.ImageModelWrapper`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..guides.rvae import RVAEGuide
from ..infer.batches import Batches
from ..models.rvae import RVAEModel
from ..models.sites import Z
from ..nn.mlp import make_activation
from .base import ImageModelWrapper, pose_priors
from .diagnostics import DiagnosticsMixin
from .grid_pose import (
    grid_posteriors,
    guide_pose_options,
    model_pose_options,
    pose_config,
    start_from_template,
)

__all__ = ["RVAE"]


class RVAE(DiagnosticsMixin, ImageModelWrapper):
    """User-facing rotationally invariant VAE: model + guide + fitting and analysis.

    Parameters
    ----------
    image_size : (int, int)
    latent_dim : int
    invariances : iterable of str
        Any of ``"rotation"``, ``"translation"``, ``"scale"``.
    decoder : {"spatial", "warp"}
    likelihood : {"bernoulli", "gaussian", "poisson"}
    decoder_hidden : sequence of int
        Widths of the decoder MLP, the first being the joint coordinate/latent
        layer of the spatial decoder (the papers: ``(128, 128)``).
    activation : str
    encoder : {"mlp", "conv"}
    encoder_hidden : sequence of int, optional
        Widths of the encoder MLP; defaults to ``decoder_hidden``.
    angle_prior, offset_prior, scale_prior, z_prior : optional
        Custom priors, see :class:`~pyrolatent.models.rvae.RVAEModel`.
    offset_prior_scale : float, optional
        Pixels; default ``0.05 * max(H, W)``.
    symmetry : int
        Rotational symmetry order n of the objects, when known: the encoded
        angle is then defined modulo ``2 pi / n`` (in ``[-pi/n, pi/n)``).
    sigma, learn_sigma
        Gaussian likelihood options.
    compute_dtype : {"float32", "bfloat16"}
        Precision of the spatial decoder's hidden-layer products. ``"bfloat16"``
        trains 2-4x faster on CPUs with AMX/AVX512-BF16 (and on recent GPUs);
        parameters, optimiser state and the likelihood stay float32.
    device : str or torch.device, optional
    seed : int
        Seeds parameter initialisation and the estimator's own training stream
        (the caller's random state is never touched).
    pose : {"grid", "amortized"}
        How angles are inferred. ``"grid"`` (default): the angle is summed exactly over a grid of
        ``pose_grid`` rotations (with a random offset inside each cell), the
        content encoder averages ``views`` turned copies of each image, and
        ``encode`` reports the exact posterior on a ``pose_refine``-times finer
        grid: the whole circle is searched, so an n-fold symmetric particle
        shows n modes instead of a failed fit (see :mod:`pyrolatent.models.pose_grid`).
        With ``"grid"`` the encoders use ReLU (the offset encoder leaky ReLU,
        whose units cannot all die) with He initialisation whatever
        ``activation`` says (``activation`` then applies to the decoder only):
        tanh encoders with that initialisation saturated and left the angle
        right only modulo pi. The first ``fit`` starts the decoder from one of
        the images as a reference (see
        :func:`~pyrolatent.estimators.grid_pose.start_from_template`).
        Particles that are nearly symmetric under a half-turn can come out
        confidently upside down in part; decide their half-turns again with
        :func:`pyrolatent.analysis.half_turns.half_turn_sync`.
        ``"amortized"``: the encoder predicts a projected-normal angle
        posterior (about 5x faster per epoch; gradient descent can settle in a
        wrong basin: on the L shapes of ``benchmarks/rvae.py`` the angle
        correlation was 0.56 on an AMD CPU and 0.99 on an Intel one, same seed;
        the grid gives >= 0.9997 on both decoders, seeds 0-4).
    pose_grid : int
        Grid angles in training (``pose="grid"``), over ``2 pi / symmetry``.
    pose_refine : int
        ``encode`` scores ``pose_refine * pose_grid`` angles.
    views : int
        Turned copies averaged by the content encoder (``pose="grid"``).
    offset_activation : str
        Activation of the offset encoder with ``pose="grid"`` (one of
        :data:`~pyrolatent.nn.mlp.ACTIVATIONS`). ``"leaky_relu"``: with
        ``"relu"`` every unit died on the demo's aligned crops and every image got
        the same offset; fits saved before 2026-12-07 load with ``"relu"``, as
        they were trained.
    model, guide : PyroModule, optional
        Use these instead of building ``RVAEModel``/``RVAEGuide`` (e.g. a
        subclass with its own ``z_dist``); they must take images ``(B, H, W)``
        and the guide must have ``posteriors(x)``.
    **deprecated
        ``hidden=`` and ``angle_symmetry=``, the deprecated names of
        ``decoder_hidden`` and ``symmetry`` (with a ``DeprecationWarning``).

    Examples
    --------
    >>> rvae = RVAE((48, 48), latent_dim=2).fit(images, epochs=100)  # doctest: +SKIP
    >>> enc = rvae.encode(images); enc["angle"]["loc"]                # doctest: +SKIP
    """

    _pose_before_grid = "amortized"

    @classmethod
    def _upgrade_config(cls, cfg: dict) -> dict:
        """Older configs, and the ReLU offset encoder of fits saved before 2026-12-07."""
        return {"offset_activation": "relu"} | super()._upgrade_config(cfg)

    def __init__(
        self,
        image_size: tuple[int, int],
        latent_dim: int = 2,
        invariances=("rotation", "translation"),
        decoder: str = "spatial",
        likelihood: str = "bernoulli",
        decoder_hidden: Sequence[int] | None = None,
        activation: str = "tanh",
        encoder: str = "mlp",
        encoder_hidden: Sequence[int] | None = None,
        angle_prior=None,
        offset_prior=None,
        scale_prior=None,
        z_prior=None,
        offset_prior_scale: float | None = None,
        symmetry: int | None = None,
        sigma: float = 0.1,
        learn_sigma: bool = False,
        compute_dtype: str = "float32",
        pose: str = "grid",
        pose_grid: int = 8,
        pose_refine: int = 8,
        views: int = 8,
        offset_activation: str = "leaky_relu",
        device=None,
        seed: int = 0,
        model=None,
        guide=None,
        **deprecated,
    ):
        decoder_hidden, symmetry = self._renamed(decoder_hidden, symmetry, deprecated)
        config = self._image_config(
            image_size, latent_dim, invariances, decoder, likelihood, activation, encoder,
            encoder_hidden or decoder_hidden, decoder_hidden, offset_prior_scale, symmetry,
            sigma, learn_sigma, compute_dtype, seed,
        )  # fmt: skip
        config |= pose_config(pose, pose_grid, pose_refine, views)
        make_activation(offset_activation)  # checked
        config["offset_activation"] = offset_activation
        priors = pose_priors(angle_prior, offset_prior, scale_prior, z_prior)
        self._build(
            config,
            priors,
            device,
            lambda: RVAEModel(
                config["image_size"],
                **self._model_options(),
                **model_pose_options(config),
                **priors,
            ),  # fmt: skip
            lambda: RVAEGuide(
                config["image_size"],
                **self._guide_options(),
                **guide_pose_options(config),
                offset_activation=offset_activation,
            ),  # fmt: skip
            model,
            guide,
        )

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        images,
        epochs: int = 100,
        batch_size: int = 100,
        lr: float = 1e-3,
        val_images=None,
        callbacks=(),
        checkpoint_path=None,
        loss=None,
        progress: bool = True,
        quiet: bool | None = None,
        diagnose: bool = True,
        clip_norm: float | None = None,
    ) -> RVAE:
        """Train ``epochs`` more epochs by SVI with the shared :class:`~pyrolatent.infer.Trainer`.

        Parameters
        ----------
        images : array_like
            ``(N, H, W)``.
        epochs : int
            Epochs to add to those already trained (see ``epochs_trained``).
        batch_size, lr
            Mini-batch size and Adam learning rate.
        val_images : array_like, optional
            Held-out images for ``val_loss``.
        callbacks : sequence
            Trainer callbacks (beta schedule, early stopping).
        checkpoint_path : path-like, optional
            Checkpoint written every epoch; an interrupted fit resumes from it.
        loss : pyro.infer.ELBO, optional
            Defaults to ``Trace_ELBO``.
        progress : bool
            Show the progress bar (``quiet=`` is a deprecated alias).
        diagnose : bool
            After training, check the fit with :meth:`diagnostics` (on at most
            2,048 of the images) and issue a
            :class:`~pyrolatent.estimators.diagnostics.PosteriorCollapseWarning`
            when it collapsed.
        clip_norm : float, optional
            Clip the global gradient norm of every step to this value (None:
            no clipping). Guards against late divergence at high learning
            rates (the workflow uses 10 at ``lr=3e-3``).

        Returns
        -------
        RVAE
            ``self``; the per-epoch losses are in :attr:`history`.
        """
        x = self._images(images)
        val = self._images(val_images, "val_images") if val_images is not None else None
        grid = getattr(self.model, "angle_grid", None)
        if grid is not None and not bool(grid.started):
            start_from_template(self.model, x, self.config["seed"])
            grid.started.fill_(True)
        trainer = self._trainer(lr=lr, callbacks=callbacks, checkpoint_path=checkpoint_path,
                                loss=loss, progress=progress, quiet=quiet,
                                clip_norm=clip_norm)  # fmt: skip
        trainer.fit(Batches(x, batch_size), epochs=epochs, batch_size=batch_size, val_data=val)
        if diagnose:
            self._warn_if_collapsed(x)
        return self

    # -------------------------------------------------------------- analysis
    def encode(self, images, batch_size: int = 1024) -> dict[str, dict[str, np.ndarray]]:
        """Posterior location and spread of every latent.

        Returns
        -------
        dict
            ``{"z": {"loc": (N, D), "scale": (N, D)}, "angle": {"loc": (N,), "scale": (N,)},
            "offset": {"loc": (N, 2), "scale": (N, 2)}, ...}``; angles in radians
            (``loc`` in ``(-pi, pi]``), offsets ``(dx, dy)`` in pixels.
        """
        x = self._images(images)
        if getattr(self.model, "angle_grid", None) is None:
            return self._encode(x, self.guide.posteriors, batch_size)
        refine = self.config["pose_refine"]
        return self._encode(x, lambda b: grid_posteriors(self.model, self.guide, b, refine),
                            batch_size)  # fmt: skip

    def decode(self, z, angle=None, offset=None, scale=None) -> np.ndarray:
        """Mean images for content codes and optional per-sample poses.

        Parameters
        ----------
        z : array_like
            ``(B, latent_dim)``.
        angle : array_like, optional
            ``(B,)`` radians (or a scalar for all).
        offset : array_like, optional
            ``(B, 2)`` pixels (or ``(2,)`` for all).
        scale : array_like, optional
            ``(B,)``.

        Returns
        -------
        numpy.ndarray
            ``(B, H, W)`` in mean space (probabilities, intensities or rates).
        """
        return self._decode(z, angle=angle, offset=offset, scale=scale)

    def reconstruct(self, images, batch_size: int = 1024) -> np.ndarray:
        """Decode each image at its posterior-mean code and pose, ``(N, H, W)``."""
        enc = self.encode(images, batch_size=batch_size)
        return self.decode(enc[Z]["loc"], **self._mean_pose(enc))

    def manifold(
        self,
        grid_size: int = 8,
        z_range: tuple[float, float] = (-2.0, 2.0),
        dims: tuple[int, int] = (0, 1),
        fixed: Sequence[float] | None = None,
    ) -> np.ndarray:
        """Decode a regular grid of content codes (pose = identity).

        Parameters
        ----------
        grid_size : int
            Points per axis.
        z_range : (float, float)
            Range of each varied latent.
        dims : (int, int)
            Which latent dimensions vary along rows and columns; for a 1-D
            latent both must be 0 and only one axis varies.
        fixed : sequence of float, optional
            Values of the other latent dimensions (default 0).

        Returns
        -------
        numpy.ndarray
            ``(grid_size, grid_size, H, W)``; row ``i`` has ``z[dims[0]]`` from
            high to low, column ``j`` has ``z[dims[1]]`` from low to high.
        """
        imgs = self.decode(self._grid(grid_size, z_range, dims, fixed))
        return imgs.reshape(grid_size, grid_size, *self.image_size)
