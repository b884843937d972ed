"""Custom priors in checkpoints: a distribution class and its tensor parameters.

A prior given as a Pyro/torch distribution whose constructor takes its
``arg_constraints`` parameters (``Normal(loc, scale)``, ``VonMises(loc,
concentration)``, ``Gamma(...)``, and ``.to_event(n)`` of those) is stored as
``{"class": "pyro.distributions.torch.Normal", "params": {...}}`` and rebuilt
by ``load``. Anything else (a callable ``n -> Distribution``, a transformed
distribution) is recorded as not rebuildable, and ``load`` refuses unless the
prior is passed again.
"""

from __future__ import annotations

import importlib

import pyro.distributions as dist
import torch
from torch.distributions import Distribution, Independent

from ..io.checkpoint import CheckpointError

__all__ = ["prior_spec", "prior_specs", "rebuild_prior", "rebuild_priors"]

_ALLOWED = ("pyro.distributions", "torch.distributions", "pyrolatent.distributions")


def prior_spec(prior) -> dict | None:
    """``{"class", "params"}`` (or ``{"independent", "base"}``) of ``prior``, or None."""
    if isinstance(prior, Independent):
        base = prior_spec(prior.base_dist)
        if base is None:
            return None
        return {"independent": int(prior.reinterpreted_batch_ndims), "base": base}
    if not isinstance(prior, Distribution):
        return None
    cls = type(prior)
    path = f"{cls.__module__}.{cls.__qualname__}"
    if not path.startswith(_ALLOWED):
        return None
    params = {
        k: v.detach().cpu().clone()
        for k in prior.arg_constraints
        if isinstance(v := prior.__dict__.get(k), torch.Tensor)
    }
    spec = {"class": path, "params": params}
    try:
        rebuilt = rebuild_prior(spec)
    except Exception:  # noqa: BLE001 - any failure means "cannot be rebuilt"
        return None
    same = rebuilt.batch_shape == prior.batch_shape and rebuilt.event_shape == prior.event_shape
    return spec if same else None


def rebuild_prior(spec: dict) -> Distribution:
    """The distribution described by :func:`prior_spec`."""
    if "independent" in spec:
        return dist.Independent(rebuild_prior(spec["base"]), spec["independent"])
    module, _, name = spec["class"].rpartition(".")
    if not spec["class"].startswith(_ALLOWED):
        raise CheckpointError(f"refusing to rebuild a prior of class {spec['class']!r}")
    cls = getattr(importlib.import_module(module), name)
    return cls(**spec["params"])


def prior_specs(priors: dict) -> dict:
    """``{name: {"spec": spec or None, "type": str}}`` for every given (non-None) prior."""
    return {
        name: {"spec": prior_spec(p), "type": type(p).__name__}
        for name, p in priors.items()
        if p is not None and not isinstance(p, str)
    }


def rebuild_priors(stored: dict, given: dict, path) -> dict:
    """Priors for ``load``: those passed again win, stored specs are rebuilt, else refuse."""
    out = {k: v for k, v in given.items() if v is not None}
    for name, entry in stored.items():
        if name in out:
            continue
        if entry["spec"] is None:
            raise CheckpointError(
                f"{path}: the custom {name} (a {entry['type']}) cannot be rebuilt from the "
                f"checkpoint; pass it again: load(path, {name}=...)"
            )
        out[name] = rebuild_prior(entry["spec"])
    return out
