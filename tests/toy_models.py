"""Small Pyro model/guide pairs for testing the Trainer quickly."""

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn


class FactorModel(PyroModule):
    """z ~ N(0, I_k), x ~ N(W z + b, 0.1^2 I_d): probabilistic PCA with known noise."""

    def __init__(self, d=8, k=2):
        super().__init__()
        self.k = k
        self.lin = nn.Linear(k, d)

    def forward(self, x, y=None):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.k), 1.0).to_event(1))
            pyro.sample("obs", dist.Normal(self.lin(z), 0.1).to_event(1), obs=x)


class FactorGuide(PyroModule):
    """Amortised Gaussian q(z | x); records how many labelled items it has seen."""

    def __init__(self, d=8, k=2):
        super().__init__()
        self.enc = nn.Linear(d, 2 * k)
        self.labelled_seen = 0
        self.unlabelled_seen = 0

    def forward(self, x, y=None):
        if self.training and torch.is_grad_enabled():
            if y is None:
                self.unlabelled_seen += x.shape[0]
            else:
                self.labelled_seen += x.shape[0]
        loc, raw = self.enc(x).chunk(2, -1)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, nn.functional.softplus(raw) + 1e-3).to_event(1))


def factor_data(n=256, d=8, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, k, generator=g)
    z = torch.randn(n, k, generator=g)
    return z @ w.T + 0.1 * torch.randn(n, d, generator=g)
