"""Scaling of latent sites: the KL weight (beta) of a beta-VAE, for any model."""

from __future__ import annotations

from pyro.poutine.messenger import Messenger

__all__ = ["LatentScaleMessenger"]


class LatentScaleMessenger(Messenger):
    """Multiply the log-density scale of continuous latent sample sites by ``beta``.

    Applied to both the model and the guide, this turns ``E_q[log p(x|z)] - KL``
    into ``E_q[log p(x|z)] - beta * KL`` for Monte-Carlo ELBOs. Observed sites and
    discrete (enumerable) sites are left alone, so semi-supervised models keep
    their class likelihoods unscaled.

    Parameters
    ----------
    beta : float
        Weight of the latent terms; ``1.0`` is the plain ELBO.
    """

    def __init__(self, beta: float):
        super().__init__()
        self.beta = float(beta)

    def _process_message(self, msg):
        if msg["type"] != "sample" or msg["is_observed"] or self.beta == 1.0:
            return
        fn = msg["fn"]
        if getattr(fn, "has_enumerate_support", False):
            return
        msg["scale"] = self.beta * msg["scale"]
