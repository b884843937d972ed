"""Non-negative matrix factorisation ``X ~ H W`` as a Pyro model.

Rows of ``X`` are items (time frames for ``KDE(L, t)``), columns are features
(the latent grid). With ``K`` components:

* ``weights`` ``W`` ``(K, F)`` -- global site, the components ``w_i(L)``;
* ``loadings`` ``H`` ``(T, K)`` -- one per row inside the ``rows`` plate, the
  time behaviours ``e_i(t)``;
* ``sigma`` -- global noise scale (Gaussian likelihood only);
* ``obs`` -- ``(T, F)`` observed matrix.

Priors are arguments (Pyro distributions with batch shape ``()`` on the
positive reals, default ``Exponential(1)``). The model takes the mini-batch
``(x, index)`` with row numbers ``index``, so the shared
:class:`~pyrolatent.infer.Trainer` can shuffle and sub-sample rows.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO
from pyro.nn import PyroModule

from .._deprecated import forward
from ..checks import as_tensor, check_count, check_finite, check_nonnegative, check_observed
from .sites import LOADINGS, SIGMA, WEIGHTS

__all__ = ["NMFModel", "WEIGHTS", "LOADINGS", "SIGMA", "check_nmf_input", "nndsvd"]


def check_nmf_input(x, name: str = "x", device=None) -> torch.Tensor:
    """Validate a non-negative 2-D matrix and return it as float32.

    Raises
    ------
    ValueError
        Not 2-D, empty, NaN/Inf or negative entries.
    """
    t = as_tensor(x, name=name, dtype=torch.float32, device=device)
    if t.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D (rows, features) matrix, got {tuple(t.shape)}")
    check_finite(t, name)
    check_nonnegative(t, name, why="NMF needs a non-negative matrix")
    return t


def nndsvd(x: torch.Tensor, n_components: int, eps: float = 1e-6):
    """NNDSVD-a initialisation (Boutsidis & Gallopoulos 2008).

    Returns
    -------
    h : torch.Tensor
        ``(T, K)`` non-negative loadings.
    w : torch.Tensor
        ``(K, F)`` non-negative weights; zeros replaced by the mean of ``x``.
    """
    u, s, vt = torch.linalg.svd(x.double(), full_matrices=False)
    t, f = x.shape
    h = torch.zeros(t, n_components, dtype=torch.float64)
    w = torch.zeros(n_components, f, dtype=torch.float64)
    h[:, 0] = s[0].sqrt() * u[:, 0].abs()
    w[0] = s[0].sqrt() * vt[0].abs()
    for k in range(1, n_components):
        a, b = u[:, k], vt[k]
        ap, an, bp, bn = a.clamp(min=0), (-a).clamp(min=0), b.clamp(min=0), (-b).clamp(min=0)
        mp = ap.norm() * bp.norm()
        mn = an.norm() * bn.norm()
        if mp >= mn:
            uu, vv, m = ap / (ap.norm() + 1e-30), bp / (bp.norm() + 1e-30), mp
        else:
            uu, vv, m = an / (an.norm() + 1e-30), bn / (bn.norm() + 1e-30), mn
        h[:, k] = (s[k] * m).sqrt() * uu
        w[k] = (s[k] * m).sqrt() * vv
    avg = float(x.mean())
    h = torch.where(h < eps, torch.full_like(h, avg), h)
    w = torch.where(w < eps, torch.full_like(w, avg), w)
    return h.float(), w.float()


def _prior(p, name: str) -> dist.Distribution:
    if not isinstance(p, dist.Distribution):
        raise ValueError(f"{name}: expected a pyro Distribution, got {type(p).__name__}")
    if p.batch_shape != () or p.event_shape != ():
        raise ValueError(f"{name}: expected a scalar distribution (batch and event shape ())")
    lower = getattr(p.support, "lower_bound", None)
    if lower is None or float(lower) < 0:
        raise ValueError(f"{name}: the support must be the (non-negative) reals, got {p.support}")
    return p


class NMFModel(PyroModule):
    """p(W, H, sigma, X) of non-negative matrix factorisation.

    Parameters
    ----------
    n_rows : int
        ``T``, number of rows of ``X`` (size of the ``rows`` plate).
    n_features : int
        ``F``, number of columns.
    n_components : int
        ``K``.
    likelihood : {"gaussian", "poisson"}
        ``Normal(H W, sigma)`` or ``Poisson(H W)``; Poisson counts may be
        non-integer (the density is evaluated without support checks).
    weights_prior, loadings_prior : Distribution, optional
        Scalar priors on the positive reals, applied to every entry of ``W``
        and ``H``; default ``Exponential(1.0)`` (a ``Gamma(a, b)`` works too).
    sigma_prior : Distribution, optional
        Prior of the Gaussian noise scale; default ``HalfCauchy(1.0)``.
    """

    def __init__(
        self,
        n_rows: int,
        n_features: int,
        n_components: int = 2,
        likelihood: str = "gaussian",
        weights_prior: dist.Distribution | None = None,
        loadings_prior: dist.Distribution | None = None,
        sigma_prior: dist.Distribution | None = None,
    ):
        super().__init__()
        n_rows, n_features = check_count(n_rows, "n_rows"), check_count(n_features, "n_features")
        n_components = check_count(n_components, "n_components", high=100_000)
        if likelihood not in ("gaussian", "poisson"):
            raise ValueError(f"likelihood must be 'gaussian' or 'poisson', got {likelihood!r}")
        self.n_rows, self.n_features, self.n_components = n_rows, n_features, n_components
        self.likelihood = likelihood
        self._weights_prior = _prior(weights_prior or dist.Exponential(1.0), "weights_prior")
        self._loadings_prior = _prior(loadings_prior or dist.Exponential(1.0), "loadings_prior")
        self._sigma_prior = _prior(sigma_prior or dist.HalfCauchy(1.0), "sigma_prior")
        self.register_buffer("_zero", torch.tensor(0.0))
        self._moved: dict = {}  # (prior id, device) -> the prior rebuilt on that device

    def _on_device(self, p: dist.Distribution, shape) -> dist.Distribution:
        """``p`` with its parameters on this model's device, expanded to ``shape``.

        Priors are built by users (or the defaults) with CPU parameters; a
        model moved to CUDA rebuilds them once per device from their
        ``arg_constraints`` parameters.
        """
        device = self._zero.device
        names = [k for k in p.arg_constraints if isinstance(getattr(p, k, None), torch.Tensor)]
        if any(getattr(p, k).device != device for k in names):
            key = (id(p), device)
            if key not in self._moved:
                self._moved[key] = type(p)(**{k: getattr(p, k).to(device) for k in names})
            p = self._moved[key]
        return p.expand(shape)

    def weights_dist(self) -> dist.Distribution:
        """Prior of ``W``, event shape ``(K, F)``."""
        return self._on_device(self._weights_prior, (self.n_components, self.n_features)).to_event(
            2
        )

    def loadings_dist(self, n: int) -> dist.Distribution:
        """Prior of ``H`` for ``n`` rows: batch ``(n,)``, event ``(K,)``."""
        return self._on_device(self._loadings_prior, (n, self.n_components)).to_event(1)

    def sigma_dist(self) -> dist.Distribution:
        return self._on_device(self._sigma_prior, ())

    def obs_dist(self, mean: torch.Tensor, sigma) -> dist.Distribution:
        """Likelihood of rows: batch ``(B,)``, event ``(F,)``."""
        if self.likelihood == "gaussian":
            return dist.Normal(mean, sigma).to_event(1)
        return dist.Poisson(mean.clamp(min=1e-8), validate_args=False).to_event(1)

    def forward(self, x: torch.Tensor | None = None, index: torch.Tensor | None = None):
        """Run the model on rows ``x (B, F)`` with row numbers ``index (B,)``."""
        if index is None:
            n = self.n_rows if x is None else check_observed(x, (self.n_features,)).shape[0]
            index = torch.arange(n, device=self._zero.device)
        w = pyro.sample(WEIGHTS, self.weights_dist())
        sigma = pyro.sample(SIGMA, self.sigma_dist()) if self.likelihood == "gaussian" else None
        with pyro.plate("rows", self.n_rows, subsample=index):
            h = pyro.sample(LOADINGS, self.loadings_dist(index.shape[0]))
            mean = h @ w
            pyro.sample("obs", self.obs_dist(mean, sigma), obs=x)
        return mean

    def default_loss(self):
        return Trace_ELBO()


__getattr__ = forward(
    __name__,
    {
        name: "pyrolatent.estimators.nmf"
        for name in ("NMF", "order_samples", "order_by_time_centroid", "normalise_components")
    },
)
