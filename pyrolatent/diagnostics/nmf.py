"""ArviZ conversion and convergence summary of NUTS draws of the NMF model."""

from __future__ import annotations

import arviz as az
import numpy as np

from ..models.sites import LOADINGS, SIGMA, WEIGHTS

__all__ = ["nmf_to_inference_data", "nmf_summary"]


def nmf_to_inference_data(samples: dict, observed=None) -> az.InferenceData:
    """Ordered NMF draws as ``InferenceData``.

    Parameters
    ----------
    samples : dict
        ``{"weights": (C, S, K, F), "loadings": (C, S, T, K), "sigma": (C, S)}``,
        e.g. :attr:`pyrolatent.models.nmf.NMF.samples_` (already ordered).
    observed : array_like, optional
        ``(T, F)`` matrix for the ``observed_data`` group.

    Returns
    -------
    arviz.InferenceData
        ``posterior`` with ``weights (chain, draw, component, feature)``,
        ``loadings (chain, draw, time, component)`` and ``sigma`` when present.
    """
    for k in (WEIGHTS, LOADINGS):
        if k not in samples:
            raise ValueError(f"samples: missing site {k!r}")
    w = np.asarray(samples[WEIGHTS])
    h = np.asarray(samples[LOADINGS])
    if w.ndim != 4 or h.ndim != 4:
        raise ValueError("samples: expected (chain, draw, ...) arrays of weights and loadings")
    post = {WEIGHTS: w, LOADINGS: h}
    if SIGMA in samples:
        post[SIGMA] = np.asarray(samples[SIGMA])
    dims = {WEIGHTS: ["component", "feature"], LOADINGS: ["time", "component"]}
    kwargs = {}
    if observed is not None:
        kwargs["observed_data"] = {"x": np.asarray(observed)}
        dims["x"] = ["time", "feature"]
    return az.from_dict(posterior=post, dims=dims, **kwargs)


def nmf_summary(idata: az.InferenceData) -> dict:
    """ArviZ summary table plus the worst ``r_hat`` and ``ess_bulk``.

    Returns
    -------
    dict
        ``{"table": pandas.DataFrame, "max_rhat": float, "min_ess_bulk": float}``.
    """
    table = az.summary(idata, kind="diagnostics", round_to="none")
    return {
        "table": table,
        "max_rhat": float(table["r_hat"].max()),
        "min_ess_bulk": float(table["ess_bulk"].min()),
    }
