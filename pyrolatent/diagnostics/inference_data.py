"""Conversion of fitted latent-variable models to ArviZ ``InferenceData``."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import infer_discrete

from ..models.sites import ANGLE, ANGLE_INDEX, ANGLE_JITTER
from ..primitives.angles import wrap_angle

__all__ = ["rvae_to_inference_data"]


def _conditioned(model, guide_trace):
    """The model replayed on the guide's draws (a grid angle index from its exact posterior)."""
    replayed = poutine.replay(model, trace=guide_trace)
    if getattr(model, "angle_grid", None) is None:
        return replayed
    return infer_discrete(replayed, first_available_dim=-2, temperature=1)


@torch.no_grad()
def rvae_to_inference_data(rvae, images, num_samples: int = 100, seed: int = 0):
    """Posterior samples of every latent of every image, as ``InferenceData``.

    The amortised guide is sampled ``num_samples`` times; for each draw the model
    is replayed to give the per-image log-likelihood of the observed pixels. With
    ``pose="grid"`` the angle of each draw comes from its exact posterior given
    the other latents (``pyro.infer.infer_discrete``), and ``angle_jitter`` is
    left out of the posterior group.

    Parameters
    ----------
    rvae : pyrolatent.models.rvae.RVAE
        A fitted model.
    images : array_like
        ``(N, H, W)``.
    num_samples : int
        Draws per image.
    seed : int
        Seed of the draws (the global RNG state is restored afterwards).

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior`` (``z`` with dims ``(chain, draw, item, z_dim)``,
        ``angle`` ``(chain, draw, item)`` in radians, ``offset``
        ``(chain, draw, item, axis)`` with ``axis = ["dx", "dy"]`` in pixels),
        ``observed_data`` (``obs`` with dims ``(item, row, col)``) and
        ``log_likelihood`` (``obs``, ``(chain, draw, item)``, nats).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    x = rvae._images(images)
    model, guide = rvae.model, rvae.guide
    modes = (model.training, guide.training)
    model.eval()
    guide.eval()
    draws: dict[str, list[np.ndarray]] = {}
    loglik = []
    try:
        with torch.random.fork_rng():
            pyro.set_rng_seed(seed)
            for _ in range(num_samples):
                gtr = poutine.trace(guide).get_trace(x)
                mtr = poutine.trace(_conditioned(model, gtr)).get_trace(x)
                for name, site in gtr.nodes.items():
                    if site["type"] == "sample" and not site["is_observed"]:
                        draws.setdefault(name, []).append(site["value"].cpu().numpy())
                if ANGLE_INDEX in mtr.nodes:  # pose="grid": the angle drawn exactly
                    angle = model.angle_grid.angles[mtr.nodes[ANGLE_INDEX]["value"]]
                    angle = wrap_angle(angle + mtr.nodes[ANGLE_JITTER]["value"],
                                       period=2 * math.pi / model.angle_grid.symmetry)  # fmt: skip
                    draws.setdefault(ANGLE, []).append(angle.cpu().numpy())
                obs = mtr.nodes["obs"]
                loglik.append(obs["fn"].log_prob(obs["value"]).cpu().numpy())
    finally:
        model.train(modes[0])
        guide.train(modes[1])
    posterior = {k: np.stack(v)[None] for k, v in draws.items() if k != ANGLE_JITTER}
    dims = {"z": ["item", "z_dim"], "angle": ["item"], "offset": ["item", "axis"]}
    dims["scale"] = ["item"]
    coords = {"item": np.arange(x.shape[0]), "axis": ["dx", "dy"]}
    return az.from_dict(
        posterior=posterior,
        observed_data={"obs": x.cpu().numpy()},
        log_likelihood={"obs": np.stack(loglik)[None]},
        dims={**{k: v for k, v in dims.items() if k in posterior}, "obs": ["item", "row", "col"]},
        coords=coords,
    )
