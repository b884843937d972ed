"""Guides of the NMF model: point (MAP) and mean-field log-normal (SVI).

Site names are those of :mod:`pyrolatent.models.nmf`. Both guides hold one
parameter per entry of ``W`` ``(K, F)`` and ``H`` ``(T, K)``; the loadings of a
mini-batch are the rows ``index`` of ``H``.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam

from ..models.nmf import nndsvd
from ..models.sites import LOADINGS, SIGMA, WEIGHTS

__all__ = ["NMFGuide"]


class NMFGuide(PyroModule):
    """q(W, H, sigma) for :class:`~pyrolatent.models.nmf.NMFModel`.

    Parameters
    ----------
    n_rows, n_features, n_components : int
        ``T``, ``F``, ``K``.
    kind : {"map", "svi"}
        ``"map"``: Delta distributions at positive parameters (MAP estimate);
        ``"svi"``: independent log-normals (mean-field).
    likelihood : {"gaussian", "poisson"}
        Whether a ``sigma`` site exists.
    init_scale : float
        Initial standard deviation of the log-normals (SVI).
    """

    def __init__(
        self,
        n_rows: int,
        n_features: int,
        n_components: int,
        kind: str = "map",
        likelihood: str = "gaussian",
        init_scale: float = 0.005,
    ):
        super().__init__()
        if kind not in ("map", "svi"):
            raise ValueError(f"kind must be 'map' or 'svi', got {kind!r}")
        self.kind, self.likelihood = kind, likelihood
        self.n_rows = n_rows
        self.h_loc = PyroParam(torch.zeros(n_rows, n_components))
        self.w_loc = PyroParam(torch.zeros(n_components, n_features))
        self.sigma_loc = PyroParam(torch.tensor(-2.0))
        if kind == "svi":
            c = dist.constraints.positive
            self.h_scale = PyroParam(torch.full((n_rows, n_components), init_scale), c)
            self.w_scale = PyroParam(torch.full((n_components, n_features), init_scale), c)
            self.sigma_scale = PyroParam(torch.tensor(init_scale), c)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Start from the NNDSVD-a factors of ``x`` (log-space locations)."""
        h, w = nndsvd(x.detach().cpu(), self.w_loc.shape[0])
        self.h_loc = h.log().to(x.device)
        self.w_loc = w.log().to(x.device)
        resid = (x.detach().cpu() - h @ w).std().clamp(min=1e-4)
        self.sigma_loc = resid.log().to(x.device)

    @torch.no_grad()
    def initialize_from(self, other: NMFGuide) -> None:
        """Copy the locations of another guide (e.g. a fitted MAP guide)."""
        self.h_loc = other.h_loc.detach().clone()
        self.w_loc = other.w_loc.detach().clone()
        self.sigma_loc = other.sigma_loc.detach().clone()

    def _site(self, name, loc, scale, event_dim):
        if self.kind == "map":
            return pyro.sample(name, dist.Delta(loc.exp(), event_dim=event_dim))
        return pyro.sample(name, dist.LogNormal(loc, scale).to_event(event_dim))

    def forward(self, x: torch.Tensor | None = None, index: torch.Tensor | None = None):
        if index is None:
            index = torch.arange(self.n_rows, device=self.h_loc.device)
        self._site(WEIGHTS, self.w_loc, getattr(self, "w_scale", None), 2)
        if self.likelihood == "gaussian":
            self._site(SIGMA, self.sigma_loc, getattr(self, "sigma_scale", None), 0)
        with pyro.plate("rows", self.n_rows, subsample=index):
            h_scale = self.h_scale[index] if self.kind == "svi" else None
            self._site(LOADINGS, self.h_loc[index], h_scale, 1)

    @torch.no_grad()
    def point_estimates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(H, W)``: the MAP point, or the posterior medians for SVI."""
        return self.h_loc.exp(), self.w_loc.exp()

    @torch.no_grad()
    def sample_posterior(self, num_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Draws ``H (S, T, K)`` and ``W (S, K, F)`` from the guide."""
        if self.kind == "map":
            h, w = self.point_estimates()
            return h[None].cpu().numpy(), w[None].cpu().numpy()
        g = torch.Generator(device="cpu").manual_seed(seed)

        def draw(loc, scale):
            eps = torch.randn((num_samples, *loc.shape), generator=g).to(loc.device)
            return (loc + scale * eps).exp().cpu().numpy()

        return draw(self.h_loc, self.h_scale), draw(self.w_loc, self.w_scale)
