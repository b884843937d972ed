"""The user-facing Bayesian NMF estimator (:class:`NMF`) and its draw ordering.

The model is :class:`~pyrolatent.models.nmf.NMFModel`, the guides
:class:`~pyrolatent.guides.nmf.NMFGuide`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..checks import check_count
from ..device import resolve_device
from ..guides.nmf import NMFGuide
from ..infer.callbacks import LearningRateDecay
from ..infer.mcmc import run_nuts
from ..infer.trainer import Trainer
from ..models.nmf import NMFModel, check_nmf_input, nndsvd
from ..models.sites import LOADINGS, WEIGHTS
from .base import Estimator, renamed

__all__ = ["NMF", "order_samples", "order_by_time_centroid", "normalise_components"]


def order_by_time_centroid(loadings: np.ndarray) -> np.ndarray:
    """Component order by the time centroid of the loadings (earliest first).

    Parameters
    ----------
    loadings : numpy.ndarray
        ``(..., T, K)``.

    Returns
    -------
    numpy.ndarray
        ``(..., K)`` permutation: component ``order[..., 0]`` has the smallest
        ``sum_t t H[t, k] / sum_t H[t, k]``.
    """
    h = np.asarray(loadings, dtype=np.float64)
    t = np.arange(h.shape[-2], dtype=np.float64)
    centroid = (h * t[:, None]).sum(-2) / np.maximum(h.sum(-2), 1e-300)
    return np.argsort(centroid, axis=-1, kind="stable")


def normalise_components(loadings: np.ndarray, weights: np.ndarray):
    """Move the scale of each component into its loadings: rows of ``W`` sum to 1.

    ``H W`` is unchanged. Shapes ``(..., T, K)`` and ``(..., K, F)``.
    """
    s = np.maximum(np.asarray(weights).sum(-1), 1e-300)  # (..., K)
    return np.asarray(loadings) * s[..., None, :], np.asarray(weights) / s[..., :, None]


class NMF(Estimator):
    """User-facing Bayesian NMF: fit by MAP or SVI (shared Trainer) or by NUTS.

    Parameters
    ----------
    n_components : int
        ``K`` (``N`` in the paper).
    likelihood : {"gaussian", "poisson"}
    weights_prior, loadings_prior, sigma_prior : Distribution, optional
        See :class:`NMFModel`.
    seed : int
    device : str or torch.device, optional

    Attributes (after ``fit``)
    --------------------------
    components_ : numpy.ndarray
        ``(K, F)`` (``W``, scikit-learn's ``components_``), rows summing to 1,
        components ordered by the time centroid of their time courses (earliest
        first). MAP: the MAP point; SVI: the posterior median of the guide;
        NUTS: the posterior mean.
    time_courses_ : numpy.ndarray
        ``(T, K)`` time behaviours ``H`` in the same order.
    components_band_, time_courses_band_ : numpy.ndarray or None
        ``(2, K, F)`` / ``(2, T, K)`` 5 % and 95 % posterior quantiles (SVI and
        NUTS; None for MAP).
    weights_, loadings_, weights_band_, loadings_band_
        Deprecated names of the four above.
    samples_ : dict or None
        Ordered, normalised posterior draws ``{"weights": (C, S, K, F),
        "loadings": (C, S, T, K), ...}`` after NUTS.

    Examples
    --------
    >>> nmf = NMF(n_components=2).fit(kde_matrix, method="map")  # doctest: +SKIP
    >>> nmf.time_courses_[:, 0]                                      # doctest: +SKIP
    """

    def __init__(
        self,
        n_components: int = 2,
        likelihood: str = "gaussian",
        weights_prior=None,
        loadings_prior=None,
        sigma_prior=None,
        seed: int = 0,
        device=None,
    ):
        self.n_components = check_count(n_components, "n_components", high=100_000)
        self.likelihood = likelihood
        self.priors = (weights_prior, loadings_prior, sigma_prior)
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.model = self.guide = None
        self.components_ = self.time_courses_ = None
        self.components_band_ = self.time_courses_band_ = None
        self.samples_ = None
        self._reconstruction = None
        self.trainer = None
        self._fitted = None

    def _build(self, x: torch.Tensor) -> NMFModel:
        return NMFModel(
            x.shape[0], x.shape[1], self.n_components, self.likelihood, *self.priors
        ).to(self.device)

    @property
    def history_(self) -> dict:
        """Deprecated name of :attr:`history`."""
        return self.history

    def _alias(old: str, new: str):  # noqa: N805 - a class-body helper, not a method
        def get(self):
            warnings.warn(
                f"NMF.{old} is deprecated; use NMF.{new}", DeprecationWarning, stacklevel=2
            )
            return getattr(self, new)

        return property(get, doc=f"Deprecated name of ``{new}``.")

    weights_ = _alias("weights_", "components_")
    loadings_ = _alias("loadings_", "time_courses_")
    weights_band_ = _alias("weights_band_", "components_band_")
    loadings_band_ = _alias("loadings_band_", "time_courses_band_")
    del _alias

    def fit(
        self,
        x,
        method: str = "map",
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        num_samples: int = 200,
        warmup_steps: int = 500,
        num_chains: int = 4,
        checkpoint_path=None,
        progress: bool = True,
        quiet: bool | None = None,
        steps: int | None = None,
    ) -> NMF:
        """Fit to a non-negative ``(T, F)`` matrix.

        Parameters
        ----------
        x : array_like
            ``(T, F)`` non-negative matrix (e.g. ``KDE(L, t)`` with time on rows).
        method : {"map", "svi", "nuts"}
            MAP (Delta guide) or mean-field SVI (log-normal guide, started at
            the MAP point), both through
            the shared :class:`~pyrolatent.infer.Trainer`; or NUTS (small
            matrices, see :func:`pyrolatent.infer.mcmc.run_nuts`).
        epochs : int
            MAP/SVI: epochs of the Trainer (default 3000). With ``batch_size =
            T`` (default, full batch) one epoch is one optimiser step on all
            rows. A further ``fit`` with the same method and matrix shape
            trains ``epochs`` more (SVI: ``epochs // 2`` more of its
            log-normal stage) from where the last one stopped, as the other
            estimators do; another method or shape starts again from NNDSVD.
        lr : float, optional
            Adam learning rate of the MAP fit (default 0.03). SVI starts the
            log-normal guide at the MAP point and refines it for ``epochs // 2``
            epochs at a third of this rate (Monte-Carlo gradients), from
            log-normal scales of ``init_scale`` (0.005).
        batch_size : int, optional
            Rows per mini-batch; default all rows.
        num_samples, warmup_steps, num_chains : int
            NUTS settings (chains run one after another).
        checkpoint_path : path-like, optional
            Trainer checkpoint (MAP/SVI resume).
        progress : bool
            Show progress bars (``quiet=`` is a deprecated alias).
        steps : int, optional
            Deprecated name of ``epochs``.

        Returns
        -------
        NMF
            ``self``.

        Raises
        ------
        ValueError
            Negative, NaN or non-2-D input; unknown method.
        """

        epochs = renamed(epochs, steps, "steps", "epochs", 3000)
        quiet = not self._progress(progress, quiet)
        xt = check_nmf_input(x, "x", device=self.device)
        if method not in ("map", "svi", "nuts"):
            raise ValueError(f"method must be 'map', 'svi' or 'nuts', got {method!r}")
        if self.n_components > min(xt.shape):
            raise ValueError(
                f"n_components={self.n_components} exceeds the smaller dimension of x "
                f"{tuple(xt.shape)}: at most {min(xt.shape)} components can be identified"
            )
        if not bool((xt > 0).any()):
            raise ValueError("x: is all zero; there is nothing to factorise")
        epochs = check_count(epochs, "epochs", low=1)
        index = torch.arange(xt.shape[0], device=self.device)
        if method != "nuts" and self.trainer is not None and self._fitted == (method, xt.shape):
            more = epochs if method == "map" else max(1, epochs // 2)
            self.trainer.progress = not quiet
            self.trainer.fit((xt, index), epochs=more, batch_size=batch_size or len(xt))
        elif method != "nuts":
            self._fit_from_nndsvd(xt, index, method, epochs, lr, batch_size, checkpoint_path, quiet)
        self._fitted = (method, xt.shape)
        if method != "nuts":
            self._summarise_guide(method, num_samples)
            return self
        self.model, self.trainer = self._build(xt), None
        h0, w0 = nndsvd(xt.cpu(), self.n_components)
        samples = run_nuts(
            self.model,
            (xt,),
            num_samples=num_samples,
            warmup_steps=warmup_steps,
            num_chains=num_chains,
            seed=self.seed,
            init={WEIGHTS: w0, LOADINGS: h0},
            quiet=quiet,
        )
        self.samples_ = order_samples(samples)
        hh, ww = self.samples_[LOADINGS], self.samples_[WEIGHTS]
        self._reconstruction = np.einsum("cstk,cskf->tf", hh, ww) / (hh.shape[0] * hh.shape[1])
        self._summarise_draws(
            self.samples_[LOADINGS].reshape(-1, *self.samples_[LOADINGS].shape[2:]),
            self.samples_[WEIGHTS].reshape(-1, *self.samples_[WEIGHTS].shape[2:]),
        )
        return self

    def _fit_from_nndsvd(self, xt, index, method, epochs, lr, batch_size, checkpoint_path, quiet):
        """MAP from the NNDSVD point, then (SVI) the log-normal guide from the MAP point."""
        self.model = self._build(xt)
        # MAP first; SVI then starts its log-normal locations at the MAP point
        self.guide = NMFGuide(
            xt.shape[0], xt.shape[1], self.n_components, kind="map", likelihood=self.likelihood
        ).to(self.device)
        self.guide.initialize(xt)
        self._train(xt, index, epochs, lr or 0.03, batch_size, checkpoint_path, "map", quiet)
        if method == "svi":
            point = self.guide
            self.guide = NMFGuide(
                xt.shape[0],
                xt.shape[1],
                self.n_components,
                kind="svi",
                likelihood=self.likelihood,
            ).to(self.device)
            self.guide.initialize_from(point)
            svi_steps = max(1, epochs // 2)
            self._train(
                xt,
                index,
                svi_steps,
                0.01 if lr is None else lr / 3,
                batch_size,
                checkpoint_path,
                "svi",
                quiet,
                callbacks=(LearningRateDecay(svi_steps, final_factor=0.01),),
            )

    def _summarise_guide(self, method: str, num_samples: int) -> None:
        """Ordered, normalised point estimates (and SVI bands) of the trained guide."""
        # point estimate: the MAP point, or the posterior median of the log-normal guide
        h, w = (t.detach().cpu().numpy() for t in self.guide.point_estimates())
        order = order_by_time_centroid(h)
        h, w = normalise_components(h[:, order], w[order])
        self.time_courses_, self.components_ = h, w
        self.components_band_ = self.time_courses_band_ = None
        self._reconstruction = None
        if method == "svi":
            hs, ws = self.guide.sample_posterior(num_samples, seed=self.seed)
            # draws are aligned to the point estimate's order (the guide is unimodal)
            hs, ws = normalise_components(hs[..., order], ws[:, order])
            # posterior mean of H W (Bayes prediction under squared loss; the product of
            # the medians is biased low by exp((s_h^2 + s_w^2) / 2))
            self._reconstruction = np.einsum("stk,skf->tf", hs, ws) / len(hs)
            self.time_courses_band_ = np.quantile(hs, [0.05, 0.95], axis=0)
            self.components_band_ = np.quantile(ws, [0.05, 0.95], axis=0)

    def _train(
        self, xt, index, steps, lr, batch_size, checkpoint_path, tag, quiet, callbacks=()
    ) -> None:
        ckpt = None
        if checkpoint_path is not None:
            p = Path(checkpoint_path)
            ckpt = p.with_name(f"{p.stem}_{tag}{p.suffix}")
        self.trainer = Trainer(
            self.model,
            self.guide,
            lr=lr,
            seed=self.seed,
            device=self.device,
            checkpoint_path=ckpt,
            checkpoint_every=max(1, steps // 10),
            callbacks=callbacks,
            progress=not quiet,
        )
        self.trainer.fit((xt, index), epochs=steps, batch_size=batch_size or len(xt))

    @staticmethod
    def _order(h: np.ndarray, w: np.ndarray):
        order = order_by_time_centroid(h)  # (S, K)
        h = np.take_along_axis(h, order[:, None, :], axis=-1)
        w = np.take_along_axis(w, order[:, :, None], axis=-2)
        return normalise_components(h, w)

    def _summarise_draws(self, h: np.ndarray, w: np.ndarray) -> None:
        self.time_courses_ = h.mean(0)
        self.components_ = w.mean(0)
        self.time_courses_band_ = np.quantile(h, [0.05, 0.95], axis=0)
        self.components_band_ = np.quantile(w, [0.05, 0.95], axis=0)

    def reconstruction(self) -> np.ndarray:
        """``(T, F)``: ``H W`` at the point estimate (MAP); the posterior mean of ``H W``
        (SVI, NUTS)."""
        if self.components_ is None:
            raise ValueError("fit the model first")
        if getattr(self, "_reconstruction", None) is not None:
            return self._reconstruction
        return self.time_courses_ @ self.components_

    def reconstruction_error(self, x) -> float:
        """Frobenius norm ``||X - H W||`` (scikit-learn's ``reconstruction_err_``)."""
        xt = check_nmf_input(x, "x").numpy().astype(np.float64)
        return float(np.linalg.norm(xt - self.reconstruction()))


def order_samples(samples: dict) -> dict:
    """Order and normalise NUTS draws per draw (label switching).

    Rule: in every draw, components are sorted by the time centroid of their
    loadings (earliest first), then each weight row is scaled to sum to 1 and
    the scale moved into the loadings (``H W`` unchanged).

    Parameters
    ----------
    samples : dict
        ``{"weights": (C, S, K, F), "loadings": (C, S, T, K), ...}`` arrays.
    """
    h = np.asarray(samples[LOADINGS], dtype=np.float64)
    w = np.asarray(samples[WEIGHTS], dtype=np.float64)
    c, s = h.shape[:2]
    hf, wf = NMF._order(h.reshape(c * s, *h.shape[2:]), w.reshape(c * s, *w.shape[2:]))
    out = {k: np.asarray(v) for k, v in samples.items()}
    out[LOADINGS] = hf.reshape(h.shape)
    out[WEIGHTS] = wf.reshape(w.shape)
    return out
