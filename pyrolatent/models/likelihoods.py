"""Observation models for image pixels.

Each likelihood is an ``nn.Module`` with

* ``link(raw)``: decoder output -> mean space (probabilities, means or rates);
* ``dist(mean)``: the pixel distribution with ``event_shape == (H, W)``;
* ``check(x)``: the data check that the likelihood needs (``ValueError``).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_nonnegative, check_number
from ..distributions.pixel_bernoulli import PixelBernoulli

__all__ = ["BernoulliLikelihood", "GaussianLikelihood", "PoissonLikelihood", "make_likelihood"]

_EPS = 1e-6


class BernoulliLikelihood(nn.Module):
    """Pixels in ``[0, 1]`` (binary masks or intensities scaled to [0, 1])."""

    name = "bernoulli"

    def link(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw)

    def dist(self, mean: torch.Tensor):
        return PixelBernoulli(mean, eps=_EPS, validate_args=False)

    def check(self, x: torch.Tensor, name: str = "images") -> None:
        check_nonnegative(x, name, why="a Bernoulli likelihood needs pixels in [0, 1]")
        if bool((x > 1).any()):
            raise ValueError(
                f"{name}: max {float(x.max()):.4g} > 1; a Bernoulli likelihood needs pixels in "
                "[0, 1] (rescale the images or use likelihood='gaussian')"
            )


class GaussianLikelihood(nn.Module):
    """Gaussian pixel noise with a fixed or learned standard deviation.

    Parameters
    ----------
    sigma : float
        Noise standard deviation (initial value when learned), in image units.
    learn_sigma : bool
        Fit ``sigma`` by maximum likelihood along with the other parameters.
    """

    name = "gaussian"

    def __init__(self, sigma: float = 0.1, learn_sigma: bool = False):
        super().__init__()
        sigma = check_number(sigma, "sigma", low=0, low_open=True)
        log_sigma = torch.tensor(float(sigma)).log()
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def link(self, raw: torch.Tensor) -> torch.Tensor:
        return raw

    def dist(self, mean: torch.Tensor):
        return dist.Normal(mean, self.sigma).to_event(2)

    def check(self, x: torch.Tensor, name: str = "images") -> None:
        return None


class PoissonLikelihood(nn.Module):
    """Photon or electron counts."""

    name = "poisson"

    def link(self, raw: torch.Tensor) -> torch.Tensor:
        return F.softplus(raw)

    def dist(self, mean: torch.Tensor):
        return dist.Poisson(mean + _EPS, validate_args=False).to_event(2)

    def check(self, x: torch.Tensor, name: str = "images") -> None:
        check_nonnegative(x, name, why="a Poisson likelihood needs counts >= 0")


def make_likelihood(name: str, sigma: float = 0.1, learn_sigma: bool = False) -> nn.Module:
    """``name`` is ``"bernoulli"``, ``"gaussian"`` or ``"poisson"``."""
    if name == "bernoulli":
        return BernoulliLikelihood()
    if name == "gaussian":
        return GaussianLikelihood(sigma=sigma, learn_sigma=learn_sigma)
    if name == "poisson":
        return PoissonLikelihood()
    raise ValueError(f"unknown likelihood {name!r}; choose 'bernoulli', 'gaussian' or 'poisson'")
