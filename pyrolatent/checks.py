"""Input checks applied once, at the public boundary.

Every public function that takes arrays calls one of these helpers, so errors
read the same everywhere: they name the argument, what was expected and what
was found.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_tensor", "as_images", "check_finite", "check_nonnegative"]


def as_tensor(
    x,
    name: str = "x",
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Convert a numpy array, a tensor or a nested sequence to a tensor.

    Raises
    ------
    ValueError
        If ``x`` cannot be read as a numeric array or is empty.
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name}: cannot be read as an array ({exc})") from exc
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.numel() == 0:
        raise ValueError(f"{name}: is empty (shape {tuple(t.shape)})")
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    return t


def check_finite(t: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Raise ``ValueError`` if ``t`` holds NaN or Inf values."""
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        n_nan = int(torch.isnan(t).sum())
        n_inf = int(torch.isinf(t).sum())
        raise ValueError(f"{name}: contains {n_nan} NaN and {n_inf} Inf values")
    return t


def check_nonnegative(t: torch.Tensor, name: str = "x", why: str = "") -> torch.Tensor:
    """Raise ``ValueError`` if ``t`` has negative entries."""
    if bool((t < 0).any()):
        extra = f" ({why})" if why else ""
        raise ValueError(
            f"{name}: has {int((t < 0).sum())} negative values, min {float(t.min()):.4g}{extra}"
        )
    return t


def as_images(
    x,
    name: str = "images",
    ndim: tuple[int, ...] = (3,),
    shape: tuple[int, int] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Validate a stack of images and return it as a float tensor.

    Parameters
    ----------
    x : array_like
        Images, ``(N, H, W)`` (``ndim=(3,)``) or ``(N, C, H, W)`` (``ndim=(4,)``).
    name : str
        Argument name used in error messages.
    ndim : tuple of int
        Accepted numbers of dimensions.
    shape : (int, int), optional
        Required ``(H, W)``.

    Raises
    ------
    ValueError
        Wrong number of dimensions, empty, NaN/Inf, or ``(H, W)`` different from ``shape``.
    """
    t = as_tensor(x, name=name, dtype=dtype, device=device)
    if t.dim() not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name}: expected a {want} array, got shape {tuple(t.shape)}")
    check_finite(t, name)
    if shape is not None and tuple(t.shape[-2:]) != tuple(shape):
        raise ValueError(
            f"{name}: image size {tuple(t.shape[-2:])} does not match the model's {tuple(shape)}"
        )
    return t
