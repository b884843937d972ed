"""Stacking trained segmentation networks into one grouped network, and back.

A stacked :class:`~pyrolatent.segmentation.nets.DilNet` or
:class:`~pyrolatent.segmentation.nets.UNet` with ``members = M`` runs ``M``
networks of one architecture in one grouped pass (the deep ensemble's layout).
"""

from __future__ import annotations

import torch

from .nets import build_network

__all__ = ["stack_members", "unstack_members"]


def _network_name(network) -> str:
    return type(network).__name__.lower()


def stack_members(networks: list[torch.nn.Module]) -> torch.nn.Module:
    """Stack trained networks of the same configuration into one grouped network.

    Parameters
    ----------
    networks : list of DilNet or UNet
        Each may itself hold several members; they are concatenated in order.

    Returns
    -------
    DilNet or UNet
        A network with ``sum(n.members)`` members whose output for member ``i``
        equals the output of the corresponding input network.
    """
    if not networks:
        raise ValueError("stack_members: need at least one network")
    name = _network_name(networks[0])
    base = {k: v for k, v in networks[0].config().items() if k != "members"}
    for net in networks[1:]:
        other = {k: v for k, v in net.config().items() if k != "members"}
        if _network_name(net) != name or other != base:
            raise ValueError("stack_members: all networks must share one architecture")
    total = sum(n.members for n in networks)
    stacked = build_network(name, {**base, "members": total})
    states = [n.state_dict() for n in networks]
    merged = {}
    for key, value in states[0].items():
        if value.dim() == 0:  # BatchNorm's num_batches_tracked
            merged[key] = value
        else:
            merged[key] = torch.cat([s[key] for s in states], dim=0)
    stacked.load_state_dict(merged)
    return stacked.to(next(networks[0].parameters()).device)


def unstack_members(network: torch.nn.Module) -> list[torch.nn.Module]:
    """Split a stacked network into one-member networks (the inverse of :func:`stack_members`).

    Parameters
    ----------
    network : DilNet or UNet
        A network with ``network.members`` members.

    Returns
    -------
    list of DilNet or UNet
        ``network.members`` one-member networks in evaluation mode, on the
        network's device, whose weights are views of the stacked weights
        (nothing is copied; they follow the stacked network's values).
    """
    m = network.members
    base = {k: v for k, v in network.config().items() if k != "members"}
    device = next(network.parameters()).device
    state = network.state_dict()
    members = []
    for i in range(m):
        with torch.device("meta"):
            net = build_network(_network_name(network), {**base, "members": 1})
        part = {k: v if v.dim() == 0 else v.chunk(m, dim=0)[i] for k, v in state.items()}
        net.load_state_dict(part, assign=True)
        members.append(net.to(device).eval())
    return members


def _replicate(network: torch.nn.Module, members: int) -> torch.nn.Module:
    """A stacked network with ``members`` copies of a one-member network's weights."""
    return stack_members([network] * members)
