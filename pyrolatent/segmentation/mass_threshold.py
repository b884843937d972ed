"""Mass threshold from the detections themselves: the faint edge of the particle population.

Used by :func:`pyrolatent.segmentation.detect.detect_particles` beside the
noise threshold; see :func:`population_mass_threshold`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["population_mass_threshold"]


def _two_gaussians(x, init_hi, iterations=300, min_sd=0.05, bins=1024):
    """EM for a two-component 1-D Gaussian mixture; returns (mu, var, weight).

    The values are binned (``bins`` bins between min and max) and weighted by
    their counts, so the cost does not grow with the number of candidates.
    """
    mu = np.array([np.median(x[x < init_hi]) if (x < init_hi).any() else x.min(), init_hi])
    var = np.array([max(x.var(), min_sd**2), max(x.var() / 10, min_sd**2)])
    weight = np.array([0.5, 0.5])
    counts, edges = np.histogram(x, bins=bins)
    keep = counts > 0
    centres, counts = ((edges[:-1] + edges[1:]) / 2)[keep], counts[keep].astype(np.float64)
    for _ in range(iterations):
        d = centres[:, None] - mu
        log_dens = np.log(weight) - 0.5 * d**2 / var - 0.5 * np.log(var)
        resp = np.exp(log_dens - log_dens.max(axis=1, keepdims=True))
        resp *= (counts / resp.sum(axis=1))[:, None]
        nk = np.maximum(resp.sum(axis=0), 1e-12)
        new_mu = (resp * centres[:, None]).sum(axis=0) / nk
        var = np.maximum((resp * (centres[:, None] - new_mu) ** 2).sum(axis=0) / nk, min_sd**2)
        weight = np.clip(nk / x.size, 1e-12, 1.0)
        done = np.allclose(new_mu, mu, atol=1e-4)
        mu = new_mu
        if done:
            break
    return mu, var, weight


def population_mass_threshold(
    mass, *, n_sigma: float = 3.0, min_count: int = 50, min_members: int = 3
) -> float:
    """Lower edge of the particle population in a two-mode log-mass distribution.

    A two-component Gaussian mixture is fitted to ``log(mass)`` by EM from
    several starts; the fit whose modes are best separated (Ashman's D) wins, so
    a few bright particles above a broad tail of faint features are found as
    well as a large particle population above a faint mode. The threshold is ``n_sigma``
    standard deviations below the mean of the heavier component (the particles),
    so faint features of the lighter mode (noise, debris, out-of-focus blobs)
    are cut while the particles' own spread is kept.

    Parameters
    ----------
    mass : array_like
        ``(n,)`` masses of all candidate detections (non-positive ones ignored).
    n_sigma : float
        Standard deviations below the particle mode.
    min_count : int
        With fewer candidates no mixture is fitted and 0 is returned.
    min_members : int
        The heavier component must hold at least this many candidates.

    Returns
    -------
    float
        The mass threshold (0 when there are too few candidates).
    """
    mass = np.asarray(mass, dtype=np.float64)
    x = np.log(mass[mass > 0])
    if x.size < min_count:
        return 0.0
    best = None
    for q in (50.0, 75.0, 90.0, 99.0):
        start = np.sort(x)[-min_members] if q == 99.0 else np.percentile(x, q)
        mu, var, weight = _two_gaussians(x, start)
        hi = int(np.argmax(mu))
        if weight[hi] * x.size < min_members:
            continue
        # Ashman's D: how far apart the two modes are, in their own spreads
        separation = abs(mu[1] - mu[0]) * np.sqrt(2.0 / (var[0] + var[1]))
        if best is None or separation > best[0]:
            best = (separation, mu[hi], var[hi])
    if best is None:
        return 0.0
    return float(np.exp(best[1] - n_sigma * np.sqrt(best[2])))
