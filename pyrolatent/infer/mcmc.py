"""NUTS for small Pyro models (NMF), chains run one after another.

Chains are sequential in one process (deterministic seeds, no worker
processes): on a few CPU cores this is as fast as parallel chains and
reproducible. Label switching is model specific; for NMF see
:func:`pyrolatent.models.nmf.order_samples`.
"""

from __future__ import annotations

import numpy as np
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_value

from .rng import LocalRNG

__all__ = ["run_nuts"]


def run_nuts(
    model,
    args: tuple = (),
    num_samples: int = 500,
    warmup_steps: int = 500,
    num_chains: int = 4,
    seed: int = 0,
    init: dict | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 8,
    full_mass: bool = False,
    jit_compile: bool = False,
    quiet: bool = True,
) -> dict:
    """Run ``num_chains`` NUTS chains on ``model(*args)``.

    Parameters
    ----------
    model : callable
        Pyro model with continuous latent sites only.
    args : tuple
        Positional arguments of the model (the data).
    num_samples, warmup_steps : int
        Kept draws and adaptation steps per chain.
    num_chains : int
        At least 2 for ``r_hat``.
    seed : int
        Chain ``c`` uses seed ``seed + c``.
    init : dict, optional
        Initial values of sites (others start from the prior median); chains
        start from jittered copies (x exp(0.1 N(0, 1))) of these values.
    target_accept_prob, max_tree_depth, jit_compile
        NUTS settings.
    full_mass : bool
        Adapt a dense mass matrix during warm-up instead of a diagonal one.
        Needed when the posterior has strongly correlated directions, such as
        the scale ridge ``(c H, W / c)`` of NMF: a diagonal mass matrix then
        forces tiny steps and the chains barely move.
    quiet : bool
        Hide the progress bars.

    Returns
    -------
    dict
        Site name -> ``(chain, draw, ...)`` numpy array.
    """
    if num_samples < 1 or warmup_steps < 0 or num_chains < 1:
        raise ValueError("need num_samples >= 1, warmup_steps >= 0 and num_chains >= 1")
    draws: dict[str, list[np.ndarray]] = {}
    for c in range(num_chains):
        strategy = None
        if init:
            g = torch.Generator().manual_seed(seed + 1000 + c)
            start = {
                k: v * torch.exp(0.1 * torch.randn(v.shape, generator=g)).to(v)
                for k, v in init.items()
            }
            strategy = init_to_value(values=start)
        kernel = NUTS(
            model,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            full_mass=full_mass,
            jit_compile=jit_compile,
            ignore_jit_warnings=True,
            **({"init_strategy": strategy} if strategy is not None else {}),
        )
        mcmc = MCMC(
            kernel,
            num_samples=num_samples,
            warmup_steps=warmup_steps,
            num_chains=1,
            disable_progbar=quiet,
        )
        with LocalRNG(seed + c).active():  # the caller's random state is left alone
            mcmc.run(*args)
        for k, v in mcmc.get_samples().items():
            draws.setdefault(k, []).append(v.detach().cpu().numpy())
    return {k: np.stack(v) for k, v in draws.items()}
