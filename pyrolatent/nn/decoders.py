"""Pose-aware image decoders for the rVAE family.

Both decoders render ``canonical_z(T^{-1} p)`` at every pixel ``p``, where ``T``
is the similarity transform of :mod:`pyrolatent.primitives.grids` (angle,
offset in pixels, scale). They return the image in the likelihood's *mean
space*, via ``link`` (e.g. a sigmoid for Bernoulli), shape ``(B, H, W)``.

* :class:`SpatialDecoder` is the papers' coordinate MLP: the canonical image is
  an MLP of ``(x, y, z)`` evaluated at transformed pixel coordinates. Its first
  layer is split as ``W_c (x, y) + W_z z + b`` so the latent half is computed once
  per item instead of once per pixel; the function is the same.
* :class:`WarpDecoder` decodes a canonical ``H x W`` image from ``z`` with an MLP and
  moves it with the differentiable warp :func:`~pyrolatent.primitives.warp_images`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..primitives import pixel_grid, rotation_matrix_2d, warp_images
from .coordinate_mlp import COMPUTE_DTYPES, coordinate_mlp
from .mlp import MLP, make_activation

__all__ = ["SpatialDecoder", "WarpDecoder", "make_decoder"]


class SpatialDecoder(nn.Module):
    """Coordinate-MLP decoder.

    The network is ``MLP([x', y', z]) -> 1`` at every pixel, with ``(x', y')`` the
    pixel coordinates pulled back by the pose (``T^{-1} p``, scaled by
    ``2 / max(H, W)``). Because the pose is affine in ``p``, the first layer is
    evaluated as one batched product ``p @ A_b^T + c_b`` with per-item matrices
    ``A_b`` (pose folded into the coordinate weights) and biases ``c_b`` (latent
    and offset terms): the transformed grid and the latent are never copied to
    every pixel, and activations are applied in place where autograd allows.
    With ``chunked=True`` (tanh or ReLU) the whole MLP runs through
    :func:`~pyrolatent.nn.coordinate_mlp.coordinate_mlp`, a few items at a time
    in cache: about 15% faster with one thread per process, but much slower
    with several threads on a loaded machine, so it is off by default. The
    function is the same as the textbook evaluation either way.
    ``compute_dtype="bfloat16"`` runs the hidden-to-hidden products of that
    kernel in bfloat16 (float32 accumulation, float32 biases, activations and
    parameters): 2-4x faster training on CPUs with AMX/AVX512-BF16, at the
    cost of bfloat16 rounding (relative ~0.4%) in activations and gradients.

    Parameters
    ----------
    image_size : (int, int)
    latent_dim : int
        Width of the content code (``z`` plus any one-hot class).
    hidden : sequence of int
        Hidden widths; the first is the joint coordinate/latent layer.
    activation : str
    link : callable
        Maps the MLP's raw output to the likelihood's mean space.
    chunked : bool
        Evaluate through the cache-friendly chunked kernel (see above).
    compute_dtype : {"float32", "bfloat16"}
        Precision of the hidden-layer products; ``"bfloat16"`` implies ``chunked``.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        latent_dim: int,
        hidden: Sequence[int],
        activation: str,
        link: Callable[[torch.Tensor], torch.Tensor],
        chunked: bool = False,
        compute_dtype: str = "float32",
    ):
        super().__init__()
        if not hidden:
            raise ValueError("SpatialDecoder needs at least one hidden layer")
        if compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(
                f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {compute_dtype!r}"
            )
        if compute_dtype != "float32" and activation not in ("tanh", "relu"):
            raise ValueError(
                f"compute_dtype={compute_dtype!r} needs a tanh or relu activation, "
                f"got {activation!r}"
            )
        self.compute_dtype = compute_dtype
        self.chunked = chunked or compute_dtype != "float32"
        self.image_size = tuple(image_size)
        h, w = self.image_size
        # coordinates are scaled isotropically so that rotations stay rotations
        self.register_buffer("grid", pixel_grid(h, w).reshape(-1, 2), persistent=False)
        self.coord_scale = 2.0 / max(h, w)
        self.fc_coord = nn.Linear(2, hidden[0])
        self.fc_latent = nn.Linear(latent_dim, hidden[0], bias=False)
        self.rest = MLP(hidden[0], hidden[1:], out_features=1, activation=activation)
        self.act = make_activation(activation)
        self.activation = activation
        self._inplace = {"tanh": torch.tanh_, "relu": torch.relu_}.get(activation)
        self.link = link

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        # in place where autograd allows it: the pre-activation is not needed
        # by the backward pass of a matmul, only the activation's output is
        return self._inplace(x) if self._inplace is not None else self.act(x)

    def first_layer_affine(self, z, angle=None, offset=None, scale=None):
        """Per-item weights ``A (B, K, 2)`` and biases ``c (B, K)`` of the joint layer.

        Its pre-activation at pixel ``p`` is ``A_b p + c_b``.
        """
        b = z.shape[0]
        weight = self.fc_coord.weight * self.coord_scale  # (K, 2)
        a = weight.expand(b, -1, -1)
        if angle is not None:
            a = a @ rotation_matrix_2d(-angle)
        if scale is not None:
            a = a / scale.reshape(-1, 1, 1)
        bias = self.fc_latent(z) + self.fc_coord.bias
        if offset is not None:
            bias = bias - (a @ offset.unsqueeze(-1)).squeeze(-1)
        return a, bias

    def first_layer(self, z, angle=None, offset=None, scale=None) -> torch.Tensor:
        """Pre-activations of the joint layer, ``(B, H*W, hidden[0])``."""
        a, bias = self.first_layer_affine(z, angle, offset, scale)
        grid = self.grid.expand(z.shape[0], -1, -1)
        return torch.baddbmm(bias.unsqueeze(1), grid, a.transpose(1, 2))

    def forward(self, z, angle=None, offset=None, scale=None) -> torch.Tensor:
        """Render ``(B, H, W)`` images for codes ``z (B, D)`` and poses (see module doc)."""
        b = z.shape[0]
        linears = [m for m in self.rest if isinstance(m, nn.Linear)]
        if self.chunked and self.activation in ("tanh", "relu"):
            a, c = self.first_layer_affine(z, angle, offset, scale)
            out = coordinate_mlp(
                self.grid,
                a,
                c,
                [m.weight for m in linears],
                [m.bias for m in linears],
                activation=self.activation,
                compute_dtype=self.compute_dtype,
            )
            return self.link(out.reshape(b, *self.image_size))
        x = self._activate(self.first_layer(z, angle, offset, scale))
        x = x.reshape(-1, x.shape[-1])
        for layer in linears[:-1]:
            x = self._activate(torch.addmm(layer.bias, x, layer.weight.t()))
        out = torch.addmm(linears[-1].bias, x, linears[-1].weight.t())
        return self.link(out.reshape(b, *self.image_size))


class WarpDecoder(nn.Module):
    """Canonical image from ``z`` by an MLP, then a differentiable warp.

    The canonical image is produced in mean space (after ``link``) and warped
    with zero padding, so areas moved in from outside the field of view have
    mean zero (background).
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        latent_dim: int,
        hidden: Sequence[int],
        activation: str,
        link: Callable[[torch.Tensor], torch.Tensor],
    ):
        super().__init__()
        self.image_size = tuple(image_size)
        h, w = self.image_size
        self.net = MLP(latent_dim, hidden, out_features=h * w, activation=activation)
        self.link = link

    def canonical(self, z: torch.Tensor) -> torch.Tensor:
        """Unposed images ``(B, H, W)`` in mean space."""
        return self.link(self.net(z).reshape(z.shape[0], *self.image_size))

    def forward(self, z, angle=None, offset=None, scale=None) -> torch.Tensor:
        """Render ``(B, H, W)`` images for codes ``z (B, D)`` and poses."""
        img = self.canonical(z)
        if angle is None and offset is None and scale is None:
            return img
        return warp_images(img, angle=angle, offset=offset, scale=scale)


def make_decoder(
    kind: str,
    image_size: tuple[int, int],
    latent_dim: int,
    hidden: Sequence[int],
    activation: str,
    link: Callable[[torch.Tensor], torch.Tensor],
    compute_dtype: str = "float32",
) -> nn.Module:
    """``kind`` is ``"spatial"`` or ``"warp"``.

    ``compute_dtype`` (``"float32"`` or ``"bfloat16"``) applies to the spatial
    decoder; the warp decoder's products are small and stay in float32.
    """
    if kind == "spatial":
        return SpatialDecoder(
            image_size, latent_dim, hidden, activation, link, compute_dtype=compute_dtype
        )
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {compute_dtype!r}"
        )
    if kind == "warp":
        return WarpDecoder(image_size, latent_dim, hidden, activation, link)
    raise ValueError(f"unknown decoder {kind!r}; choose 'spatial' or 'warp'")
