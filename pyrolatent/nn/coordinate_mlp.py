"""A cache-friendly coordinate MLP: forward and backward in per-item chunks.

The spatial decoder evaluates the same MLP at every pixel of every item. Done
with ordinary autograd, each hidden layer materialises a ``(B * H * W, K)``
activation (118 MB for 100 images of 48x48 with K = 128), and the elementwise
work on those arrays, not the matrix products, sets the speed on a CPU. This
autograd function processes a few items at a time, keeps nothing but its
inputs for the backward pass, and recomputes the activations there, chunk by
chunk, while they fit in cache. It computes the same function and the same
gradients as the plain evaluation (tested against autograd); it trades one
extra forward pass of FLOPs for far less memory traffic.

With ``compute_dtype=torch.bfloat16`` the hidden-to-hidden matrix products,
and the backward elementwise work, run in bfloat16 (fp32 accumulation inside
the product; bias additions, activations, the output layer and every gradient
accumulation stay in float32). On CPUs with AMX or AVX512-BF16 those products
are about 7x faster than in float32. Activations and gradients then carry
bfloat16 rounding (relative ~0.4%), which does not change what SGD learns:
the rVAE benchmark checks the angle recovery of both precisions.

Layer structure (all activations equal)::

    h_1 = act(grid @ A_b^T + c_b)          per item b: A_b (K1, 2), c_b (K1,)
    h_l = act(h_{l-1} @ W_l^T + b_l)       l = 2 .. L-1
    out = h_{L-1} @ w_L^T + b_L            (P,) per item
"""

from __future__ import annotations

import torch

__all__ = ["COMPUTE_DTYPES", "coordinate_mlp", "default_chunk"]

#: Accepted names of the compute precision. ``"float32"`` means the inputs' own
#: precision (float64 inputs, as in the gradient checks, stay float64).
COMPUTE_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}

# activation applied in place, and its backward from the activation's *output*
_ACT = {
    "tanh": (torch.tanh_, torch.ops.aten.tanh_backward),
    "relu": (torch.relu_, lambda g, y: torch.ops.aten.threshold_backward(g, y, 0)),
}

# rows (items x pixels) per chunk: a (rows, 128) float32 activation is ~2 MB
_CHUNK_ROWS = 4096


def default_chunk(n_pixels: int) -> int:
    """Items per chunk so that one chunk's activations stay in cache."""
    return max(1, _CHUNK_ROWS // max(1, n_pixels))


def _cast(t: torch.Tensor, dtype) -> torch.Tensor:
    return t if dtype is None else t.to(dtype)


def _forward_chunk(grid, a, c, weights_c, biases, weight_out, act, dtype):
    """Activations of one chunk and its output.

    Returns the hidden activations as ``(n * P, K_l)`` tensors in ``dtype``, the
    last hidden activation in full precision and the output ``(n, P)`` in full
    precision. ``dtype=None`` computes everything in the inputs' precision.
    """
    n, p = a.shape[0], grid.shape[0]
    h = act(torch.baddbmm(c.unsqueeze(1), grid.expand(n, -1, -1), a.transpose(1, 2)))
    h = h.reshape(n * p, -1)
    hs = [_cast(h, dtype)]
    for w, b in zip(weights_c, biases[:-1], strict=True):
        if dtype is None:
            h = act(torch.addmm(b, h, w.t()))
        else:
            h = act(torch.mm(hs[-1], w.t()).to(b.dtype).add_(b))
        hs.append(_cast(h, dtype))
    out = torch.addmm(biases[-1], h, weight_out.t())
    return hs, h, out.reshape(n, p)


class _CoordinateMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grid, a, c, chunk, activation, dtype, *params):
        weights, biases = list(params[0::2]), list(params[1::2])
        weights_c = [_cast(w, dtype) for w in weights[:-1]]
        act = _ACT[activation][0]
        outs = []
        with torch.no_grad():
            for s in range(0, a.shape[0], chunk):
                outs.append(
                    _forward_chunk(
                        grid,
                        a[s : s + chunk],
                        c[s : s + chunk],
                        weights_c,
                        biases,
                        weights[-1],
                        act,
                        dtype,
                    )[2]
                )
        ctx.save_for_backward(grid, a, c, *params)
        ctx.chunk, ctx.activation, ctx.dtype = chunk, activation, dtype
        return torch.cat(outs)

    @staticmethod
    def backward(ctx, grad_out):
        grid, a, c, *params = ctx.saved_tensors
        dtype = ctx.dtype
        weights, biases = list(params[0::2]), list(params[1::2])
        weights_c = [_cast(w, dtype) for w in weights[:-1]]
        act, dact = _ACT[ctx.activation]
        grad_a = torch.empty_like(a)
        grad_c = torch.empty_like(c)
        grad_w = [torch.zeros_like(w) for w in weights]
        grad_b = [torch.zeros_like(b) for b in biases]
        with torch.no_grad():
            for s in range(0, a.shape[0], ctx.chunk):
                sl = slice(s, s + ctx.chunk)
                hs, h_last, _ = _forward_chunk(
                    grid, a[sl], c[sl], weights_c, biases, weights[-1], act, dtype
                )
                g = grad_out[sl].reshape(-1, 1)  # (nP, 1)
                grad_w[-1] += g.t() @ h_last
                grad_b[-1] += g.sum(0)
                g = _cast(g @ weights[-1], dtype)  # (nP, K)
                for layer in range(len(weights) - 2, -1, -1):
                    g = dact(g, hs[layer + 1])
                    grad_w[layer] += (g.t() @ hs[layer]).to(grad_w[layer].dtype)
                    grad_b[layer] += g.sum(0, dtype=grad_b[layer].dtype)
                    g = g @ weights_c[layer]
                n, p = a[sl].shape[0], grid.shape[0]
                g = dact(g, hs[0]).to(a.dtype).reshape(n, p, -1)
                grad_c[sl] = g.sum(1)
                grad_a[sl] = g.transpose(1, 2) @ grid  # (n, K1, 2)
        grads = [None, grad_a, grad_c, None, None, None]
        for gw, gb in zip(grad_w, grad_b, strict=True):
            grads += [gw, gb]
        return tuple(grads)


def coordinate_mlp(
    grid: torch.Tensor,
    a: torch.Tensor,
    c: torch.Tensor,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    activation: str = "tanh",
    chunk: int | None = None,
    compute_dtype: str = "float32",
) -> torch.Tensor:
    """Evaluate the coordinate MLP (see the module docstring).

    Parameters
    ----------
    grid : torch.Tensor
        ``(P, 2)`` pixel coordinates shared by all items.
    a : torch.Tensor
        ``(B, K1, 2)`` per-item first-layer coordinate weights (pose folded in).
    c : torch.Tensor
        ``(B, K1)`` per-item first-layer biases (latent and offset terms).
    weights, biases : list of torch.Tensor
        Layers 2..L: ``W_l (K_l, K_{l-1})``, ``b_l (K_l,)``; the last has one output.
    activation : {"tanh", "relu"}
    chunk : int, optional
        Items processed together; by default enough for about 4096 pixel rows.
    compute_dtype : {"float32", "bfloat16"}
        Precision of the hidden-to-hidden products (see the module docstring).

    Returns
    -------
    torch.Tensor
        ``(B, P)`` raw outputs, float32.
    """
    if activation not in _ACT:
        raise ValueError(f"coordinate_mlp supports {sorted(_ACT)}, got {activation!r}")
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {compute_dtype!r}"
        )
    if len(weights) != len(biases) or not weights:
        raise ValueError("weights and biases need one entry per layer after the first")
    chunk = default_chunk(grid.shape[0]) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    params = [t for pair in zip(weights, biases, strict=True) for t in pair]
    return _CoordinateMLP.apply(
        grid, a, c, chunk, activation, COMPUTE_DTYPES[compute_dtype], *params
    )
