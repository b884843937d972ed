"""Fully convolutional segmentation networks: dilnet and U-Net.

Both networks can hold several independent *members* in one module: every
convolution is grouped by member (``groups=members``), so a deep ensemble of
``M`` networks runs as one batched forward pass with no weight reloading.
With ``members=1`` they are ordinary networks.

Channel layout: the input is ``(B, C_in, H, W)`` (shared by all members) or
``(B, members * C_in, H, W)`` (one input per member, used when members are
trained on different mini-batches). The output is ``(B, members * C_out, H, W)``
logits, member-major; :func:`split_members` reshapes it to
``(B, members, C_out, H, W)``.

``H`` and ``W`` must be divisible by :attr:`size_multiple`
(``2 ** number_of_poolings``); :func:`pyrolatent.segmentation.tiling.predict_tiled`
pads frames of any size.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_count

__all__ = ["DilNet", "UNet", "split_members", "build_network", "NETWORKS"]


def split_members(output: torch.Tensor, members: int) -> torch.Tensor:
    """Reshape ``(B, members * C, H, W)`` to ``(B, members, C, H, W)``."""
    b, mc, h, w = output.shape
    return output.reshape(b, members, mc // members, h, w)


def _group_cat(a: torch.Tensor, b: torch.Tensor, members: int) -> torch.Tensor:
    """Concatenate channels member by member (keeps the grouped layout)."""
    if members == 1:
        return torch.cat([a, b], dim=1)
    out = torch.cat([split_members(a, members), split_members(b, members)], dim=2)
    return out.flatten(1, 2)


class ConvBlock(nn.Module):
    """``n_layers`` × (3×3 convolution, batch norm, LeakyReLU), grouped by member.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels *per member*.
    n_layers : int
        Number of convolutions.
    dilation : int
        Dilation rate of every convolution (padding keeps the size).
    members : int
        Number of independent members stacked along channels.
    batch_norm : bool
        Add ``BatchNorm2d`` after each convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_layers: int = 2,
        dilation: int = 1,
        members: int = 1,
        batch_norm: bool = True,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(n_layers):
            layers.append(
                nn.Conv2d(
                    members * c,
                    members * out_channels,
                    kernel_size=3,
                    padding=dilation,
                    dilation=dilation,
                    groups=members,
                    bias=not batch_norm,
                )
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(members * out_channels))
            layers.append(nn.LeakyReLU(0.1))
            c = out_channels
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DilatedCascade(nn.Module):
    """A cascade of dilated 3×3 convolutions whose activations are summed.

    Each convolution feeds the next (receptive field grows with every rate),
    and the output is the sum of all intermediate activations, so features of
    every scale reach the decoder.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dilation_rates: tuple[int, ...] = (2, 4, 6),
        members: int = 1,
        batch_norm: bool = True,
    ):
        super().__init__()
        blocks = []
        c = in_channels
        for rate in dilation_rates:
            blocks.append(
                ConvBlock(c, out_channels, 1, dilation=rate, members=members, batch_norm=batch_norm)
            )
            c = out_channels
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for block in self.blocks:
            x = block(x)
            total = x if total is None else total + x
        return total


class _SegmentationNet(nn.Module):
    """Common interface: ``members``, ``in_channels``, ``out_channels``, ``size_multiple``."""

    members: int
    in_channels: int
    out_channels: int
    size_multiple: int

    def config(self) -> dict:
        """Constructor arguments (numbers/lists only), enough to rebuild the network."""
        raise NotImplementedError

    def _expand_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"input: expected (B, C, H, W), got {tuple(x.shape)}")
        m = self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(
                f"input: height and width must be multiples of {m}, got {tuple(x.shape[-2:])}"
                " (use predict_tiled for frames of any size)"
            )
        c = x.shape[1]
        if c == self.in_channels and self.members > 1:
            return x.repeat(1, self.members, 1, 1)
        if c != self.members * self.in_channels:
            raise ValueError(
                f"input: expected {self.in_channels} or {self.members * self.in_channels} "
                f"channels, got {c}"
            )
        return x


class DilNet(_SegmentationNet):
    """dilnet: one max-pool / un-pool and a bottleneck of dilated cascades.

    Architecture (per member): two 3×3 convolutions at full resolution,
    one 2×2 max-pool, ``n_cascades`` cascades of dilated convolutions with rates
    ``dilation_rates`` (2, 4, 6 in the paper) at half resolution, bilinear
    un-pooling, concatenation with the full-resolution features, two 3×3
    convolutions and a 1×1 convolution to ``out_channels`` logits.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for grey-scale movies).
    out_channels : int
        Output channels: 1 for particle/background, ``K`` for ``K`` classes
        (softmax) or ``K`` independent layers (sigmoid, e.g. overlaps).
    filters : int
        Filters of the full-resolution blocks; the bottleneck has ``2 * filters``.
    dilation_rates : tuple of int
        Rates of one cascade.
    n_cascades : int
        Number of cascades in the bottleneck (2 in the paper).
    members : int
        Independent networks stacked in this module (deep ensemble).
    batch_norm : bool
        Use batch normalisation.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        filters: int = 16,
        dilation_rates: tuple[int, ...] = (2, 4, 6),
        n_cascades: int = 2,
        members: int = 1,
        batch_norm: bool = True,
    ):
        super().__init__()
        in_channels, out_channels, filters, n_cascades, members = (
            check_count(v, f"DilNet {k}", high=4096)
            for k, v in (("in_channels", in_channels), ("out_channels", out_channels),
                         ("filters", filters), ("n_cascades", n_cascades), ("members", members))
        )  # fmt: skip
        dilation_rates = [
            check_count(r, "DilNet dilation_rates", high=1024) for r in dilation_rates
        ]
        self.in_channels, self.out_channels, self.members = in_channels, out_channels, members
        self.filters, self.dilation_rates = filters, tuple(int(r) for r in dilation_rates)
        self.n_cascades, self.batch_norm = n_cascades, batch_norm
        self.size_multiple = 2
        m, f = members, filters
        self.encoder = ConvBlock(in_channels, f, 2, members=m, batch_norm=batch_norm)
        self.bottleneck = nn.Sequential(
            *[
                DilatedCascade(f if i == 0 else 2 * f, 2 * f, self.dilation_rates, m, batch_norm)
                for i in range(n_cascades)
            ]
        )
        self.decoder = ConvBlock(3 * f, f, 2, members=m, batch_norm=batch_norm)
        self.head = nn.Conv2d(m * f, m * out_channels, kernel_size=1, groups=m)

    def config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "filters": self.filters,
            "dilation_rates": list(self.dilation_rates),
            "n_cascades": self.n_cascades,
            "members": self.members,
            "batch_norm": self.batch_norm,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in or members*C_in, H, W)`` -> ``(B, members*C_out, H, W)`` logits."""
        x = self._expand_input(x)
        skip = self.encoder(x)
        y = self.bottleneck(F.max_pool2d(skip, 2))
        y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        y = self.decoder(_group_cat(y, skip, self.members))
        return self.head(y)


class UNet(_SegmentationNet):
    """U-Net of configurable depth, optionally with a dilated bottleneck.

    Parameters
    ----------
    in_channels, out_channels : int
        As in :class:`DilNet`.
    filters : int
        Filters of the first level; each level below doubles them.
    depth : int
        Number of max-pool / un-pool levels (``size_multiple = 2 ** depth``).
    dilated_bottleneck : bool
        Replace the bottleneck block by a cascade of dilated convolutions.
    dilation_rates : tuple of int
        Rates of the dilated bottleneck.
    members : int
        Independent networks stacked in this module (deep ensemble).
    batch_norm : bool
        Use batch normalisation.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        filters: int = 16,
        depth: int = 3,
        dilated_bottleneck: bool = False,
        dilation_rates: tuple[int, ...] = (2, 4, 6),
        members: int = 1,
        batch_norm: bool = True,
    ):
        super().__init__()
        in_channels, out_channels, filters, depth, members = (
            check_count(v, f"UNet {k}", high=4096)
            for k, v in (("in_channels", in_channels), ("out_channels", out_channels),
                         ("filters", filters), ("depth", depth), ("members", members))
        )  # fmt: skip
        dilation_rates = [check_count(r, "UNet dilation_rates", high=1024) for r in dilation_rates]
        self.in_channels, self.out_channels, self.members = in_channels, out_channels, members
        self.filters, self.depth = filters, depth
        self.dilated_bottleneck = dilated_bottleneck
        self.dilation_rates = tuple(int(r) for r in dilation_rates)
        self.batch_norm = batch_norm
        self.size_multiple = 2**depth
        m = members
        widths = [filters * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths[:-1]:
            self.down.append(ConvBlock(c, w, 2, members=m, batch_norm=batch_norm))
            c = w
        if dilated_bottleneck:
            self.bottleneck = DilatedCascade(c, widths[-1], self.dilation_rates, m, batch_norm)
        else:
            self.bottleneck = ConvBlock(c, widths[-1], 2, members=m, batch_norm=batch_norm)
        self.up = nn.ModuleList()
        for level in reversed(range(depth)):
            c_in = widths[level + 1] + widths[level]
            self.up.append(ConvBlock(c_in, widths[level], 2, members=m, batch_norm=batch_norm))
        self.head = nn.Conv2d(m * filters, m * out_channels, kernel_size=1, groups=m)

    def config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "filters": self.filters,
            "depth": self.depth,
            "dilated_bottleneck": self.dilated_bottleneck,
            "dilation_rates": list(self.dilation_rates),
            "members": self.members,
            "batch_norm": self.batch_norm,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in or members*C_in, H, W)`` -> ``(B, members*C_out, H, W)`` logits."""
        x = self._expand_input(x)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(_group_cat(x, skip, self.members))
        return self.head(x)


NETWORKS = {"dilnet": DilNet, "unet": UNet}


def build_network(name: str, config: dict) -> _SegmentationNet:
    """Rebuild a network from its name (``"dilnet"``/``"unet"``) and :meth:`config`."""
    key = name.lower()
    if key not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {sorted(NETWORKS)}")
    cfg = dict(config)
    if "dilation_rates" in cfg:
        cfg["dilation_rates"] = tuple(cfg["dilation_rates"])
    return NETWORKS[key](**cfg)
