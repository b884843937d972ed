"""Deterministic annealing of 3D EMC: the exponent ``beta`` of the likelihood per iteration.

With ``beta < 1`` the orientation posterior ``P_nr ~ w_r L_nr^beta`` is broader, so
from a random start the reconstruction first settles on the large features
before the orientations sharpen (Loh & Elser 2009; Dragonfly's ``beta`` and
``beta_schedule``). The default here starts from half of Dragonfly's empirical
value for the data's photon count and rises geometrically to 1 over
``ANNEAL_ITERATIONS`` iterations; :func:`pyrolatent.spi.emc.emc` switches its
M-step from Dragonfly's merge to the exact EM update at ``EXACT_FROM_BETA``.
"""

from __future__ import annotations

import math

__all__ = ["ANNEAL_ITERATIONS", "EXACT_FROM_BETA", "anneal_start", "beta_at"]

ANNEAL_ITERATIONS = 15  # the default annealing reaches beta = 1 here
EXACT_FROM_BETA = 0.1  # m_step="auto": merge below this beta, exact from it


def anneal_start(mean_photons: float) -> float:
    """First exponent ``beta_0`` of the default annealing.

    Half of Dragonfly's empirical per-frame start ``exp(-6.5 (K 10^-5)^0.15)``
    (its ``calc_beta``), here for the mean count ``K`` over all frames.

    Parameters
    ----------
    mean_photons : float
        Mean photons per frame ``K``.

    Returns
    -------
    float
        ``beta_0`` in ``(0, 0.5]``: 0.019 at 10^3 photons, 0.005 at 10^4.
    """
    return min(1.0, 0.5 * math.exp(-6.5 * (max(float(mean_photons), 0.0) * 1e-5) ** 0.15))


def beta_at(beta, iteration: int, start: float) -> float:
    """The exponent at ``iteration``.

    Parameters
    ----------
    beta : "anneal", float or callable
        As in :func:`pyrolatent.spi.emc.emc`.
    iteration : int
        Iteration index from 0.
    start : float
        ``beta_0`` of ``"anneal"`` (from :func:`anneal_start`).

    Returns
    -------
    float
        ``beta_0^(1 - i / ANNEAL_ITERATIONS)`` (1 from then on) for ``"anneal"``,
        else the given value.

    Raises
    ------
    ValueError
        An unknown string, or a value outside ``(0, 1e6]``.
    """
    if isinstance(beta, str):
        if beta != "anneal":
            raise ValueError(f"beta: expected 'anneal', a number or a callable, got {beta!r}")
        return float(start ** max(0.0, 1.0 - iteration / ANNEAL_ITERATIONS))
    b = float(beta(iteration)) if callable(beta) else float(beta)
    if not (0 < b <= 1e6):
        raise ValueError(f"beta: expected a positive annealing exponent, got {b}")
    return b
