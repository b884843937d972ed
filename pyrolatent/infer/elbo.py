"""ELBO variants: the enumerated ELBO plus auxiliary guide terms (the ss-VAE's classifier loss).

:class:`AuxiliaryTraceEnum_ELBO` is the pattern of ``pyro.contrib.cevae``'s
``TraceCausalEffect_ELBO`` on :class:`~pyro.infer.TraceEnum_ELBO`: guide sites
that are *observed* and marked ``infer={"is_auxiliary": True}`` are taken out
of the ELBO's guide trace and their ``log q`` is added, weighted, instead::

    -loss = ELBO(model, guide) + aux_weight * sum_aux log q(y | x)

so an ss-VAE keeps its model and guide pure (Kingma et al. 2014's
``alpha * log q(y | x)`` on labelled items) and still minimises one loss per
step.
"""

from __future__ import annotations

import torch
from pyro.infer import TraceEnum_ELBO
from pyro.infer.traceenum_elbo import _compute_dice_elbo
from pyro.util import warn_if_nan

from ..checks import check_number

__all__ = ["AuxiliaryTraceEnum_ELBO"]


def _auxiliary(guide_trace) -> list[str]:
    return [
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and site["is_observed"] and site["infer"].get("is_auxiliary")
    ]


class AuxiliaryTraceEnum_ELBO(TraceEnum_ELBO):  # noqa: N801 - Pyro's naming of ELBOs
    """``TraceEnum_ELBO`` plus ``aux_weight`` times the log density of auxiliary guide sites.

    Parameters
    ----------
    aux_weight : float
        Weight ``alpha`` of the auxiliary terms (>= 0).
    **kwargs
        ``TraceEnum_ELBO`` options (``max_plate_nesting``, ``num_particles``, ...).
    """

    def __init__(self, aux_weight: float = 1.0, **kwargs):
        aux_weight = check_number(aux_weight, "aux_weight", low=0)
        super().__init__(**kwargs)
        self.aux_weight = aux_weight

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        elbo = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            names = _auxiliary(guide_trace)
            blocked = guide_trace.copy()
            for key, value in vars(guide_trace).items():  # packing info (plate_to_symbol, ...)
                if key not in vars(blocked):
                    setattr(blocked, key, value)
            for name in names:
                del blocked.nodes[name]
            elbo = elbo + _compute_dice_elbo(model_trace, blocked)
            for name in names:
                elbo = elbo + self.aux_weight * guide_trace.nodes[name]["log_prob_sum"]
        loss = -elbo / self.num_particles
        warn_if_nan(loss, "loss")
        return loss

    @torch.no_grad()
    def loss(self, model, guide, *args, **kwargs) -> float:
        return float(self.differentiable_loss(model, guide, *args, **kwargs))
