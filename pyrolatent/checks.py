"""Input checks applied once, at the public boundary.

Every public function that takes arrays or parameters calls one of these
helpers, so errors read the same everywhere: they name the argument, what was
expected and what was found.

* arrays: :func:`as_tensor`, :func:`as_images` (torch) and :func:`as_array`
  (numpy) accept real floating or integer data, and bool (as 0/1) unless told
  otherwise; complex data is refused (the imaginary part is never dropped
  silently), as are object, string and empty arrays;
* values: :func:`check_finite`, :func:`check_nonnegative`;
* parameters: :func:`check_number` (finite, in a range), :func:`check_count`
  (a whole number in a range; bandwidths, radii, counts, component numbers);
* lengths that must match: :func:`check_same_length`; weights: :func:`check_weights`.

Errors are ``ValueError`` (bad values, shapes, lengths) or :class:`InputTypeError`
(a ``TypeError`` that is also a ``ValueError``: a value of the wrong type, e.g.
complex data or a string where a number is expected).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "InputTypeError",
    "as_tensor",
    "as_images",
    "as_array",
    "check_dtype",
    "check_finite",
    "check_nonnegative",
    "check_number",
    "check_count",
    "check_same_length",
    "check_weights",
    "check_observed",
]


class InputTypeError(TypeError, ValueError):
    """An input of the wrong type (complex data, a string for a number, ...).

    A ``TypeError``, and also a ``ValueError`` so that code catching bad input
    values (the ``pyrolatent`` command) catches it too.
    """


def _dtype_kind(dtype) -> str:
    """``"complex"``, ``"bool"``, ``"real"`` or ``"other"`` for a numpy or torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype.is_complex:
            return "complex"
        if dtype == torch.bool:
            return "bool"
        return "real"
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        return "complex"
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating):
        return "real"
    return "other"


def check_dtype(dtype, name: str = "x", allow_bool: bool = True) -> None:
    """Raise unless ``dtype`` is real floating or integer (or bool, if allowed).

    Raises
    ------
    TypeError
        Complex, object, string or other non-numeric dtypes; bool when not allowed.
    """
    kind = _dtype_kind(dtype)
    if kind == "complex":
        raise InputTypeError(
            f"{name}: complex values (dtype {dtype}) are not supported; pass the real "
            "part, the imaginary part or the magnitude explicitly"
        )
    if kind == "bool" and not allow_bool:
        raise InputTypeError(f"{name}: expected real numbers, got dtype bool")
    if kind == "other":
        raise InputTypeError(f"{name}: expected a numeric array, got dtype {dtype}")


def as_tensor(
    x,
    name: str = "x",
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
    allow_bool: bool = True,
) -> torch.Tensor:
    """Convert a numpy array, a tensor or a nested sequence to a tensor.

    Raises
    ------
    ValueError
        If ``x`` cannot be read as an array or is empty.
    TypeError
        Complex, object or string data (bool too, with ``allow_bool=False``).
    """
    if isinstance(x, torch.Tensor):
        check_dtype(x.dtype, name, allow_bool)
        t = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name}: cannot be read as an array ({exc})") from exc
        check_dtype(arr.dtype, name, allow_bool)
        if arr.dtype == np.uint16 or arr.dtype == np.uint32 or arr.dtype == np.uint64:
            arr = arr.astype(np.float64)  # torch has no unsigned 16/32/64-bit tensors
        t = torch.from_numpy(np.ascontiguousarray(arr).reshape(arr.shape))  # keeps 0-D as 0-D
    if t.numel() == 0:
        raise ValueError(f"{name}: is empty (shape {tuple(t.shape)})")
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    return t


def check_finite(t, name: str = "x"):
    """Raise ``ValueError`` if ``t`` (tensor or numpy array) holds NaN or Inf values."""
    if isinstance(t, np.ndarray):
        if np.issubdtype(t.dtype, np.inexact) and not np.isfinite(t).all():
            n_nan, n_inf = int(np.isnan(t).sum()), int(np.isinf(t).sum())
            raise ValueError(f"{name}: contains {n_nan} NaN and {n_inf} Inf values")
        return t
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


def as_array(
    x,
    name: str = "x",
    ndim: tuple[int, ...] | None = None,
    dtype=np.float64,
    allow_empty: bool = False,
    allow_bool: bool = True,
    finite: bool = True,
) -> np.ndarray:
    """Validate a numpy array (or tensor, or nested sequence) and return it as ``dtype``.

    Parameters
    ----------
    x : array_like
    name : str
        Argument name used in error messages.
    ndim : tuple of int, optional
        Accepted numbers of dimensions.
    dtype : numpy dtype
        Result dtype (``None`` keeps the input's).
    allow_empty : bool
        Accept zero-size arrays.
    allow_bool : bool
        Accept bool data (converted to ``dtype``).
    finite : bool
        Refuse NaN/Inf.

    Raises
    ------
    TypeError
        Complex, object or string data (bool with ``allow_bool=False``).
    ValueError
        Wrong number of dimensions, empty, NaN/Inf.
    """
    if isinstance(x, torch.Tensor):
        check_dtype(x.dtype, name, allow_bool)
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: cannot be read as an array ({exc})") from None
    check_dtype(arr.dtype, name, allow_bool)
    if ndim is not None and arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name}: is empty (shape {arr.shape})")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if finite:
        check_finite(arr, name)
    return arr


def check_number(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in ``[low, high]`` (ends open when asked), as ``float``.

    Raises
    ------
    TypeError
        Not a real number (a string, a complex number, an array of several values).
    ValueError
        NaN, Inf or out of range.
    """
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise InputTypeError(f"{name}: expected a number, got {value!r}")
    if isinstance(value, (complex, np.complexfloating)):
        raise InputTypeError(f"{name}: expected a real number, got complex {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: expected a number, got {type(value).__name__}") from None
    if not np.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name}: must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name}: must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_count(value, name: str, *, low: int = 1, high: int | None = None) -> int:
    """A whole number in ``[low, high]`` as ``int`` (``3.0`` is accepted, ``2.5`` is not).

    Raises
    ------
    TypeError
        Not a number (bools are refused too).
    ValueError
        Not whole, or out of range.
    """
    v = check_number(value, name)
    if v != int(v):
        raise ValueError(f"{name}: must be a whole number, got {value!r}")
    v = int(v)
    if v < low or (high is not None and v > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}: must be {rng}, got {v}")
    return v


def check_same_length(**arrays) -> int:
    """The common first-axis length of the named arrays; ``ValueError`` if they differ."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths must match, got {lengths}")
    return next(iter(lengths.values()))


def check_weights(weights, n: int, name: str = "weights") -> np.ndarray:
    """``(n,)`` finite non-negative weights with a positive sum, normalised to sum 1.

    Raises
    ------
    ValueError
        Wrong length or shape, NaN/Inf, negative entries, or all zero.
    TypeError
        Complex or non-numeric data.
    """
    w = as_array(weights, name, ndim=(1,), allow_empty=True)
    if w.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {w.shape}")
    if (w < 0).any():
        raise ValueError(f"{name}: has {int((w < 0).sum())} negative values")
    total = w.sum()
    if n and not total > 0:
        raise ValueError(f"{name}: sum to 0; at least one weight must be positive")
    return w / total if n else w


def check_observed(x, event_shape: tuple, name: str = "x"):
    """Data a Pyro model observes: a real ``(B, *event_shape)`` tensor without NaN/Inf, ``B >= 1``.

    Returns ``x`` unchanged (None passes).

    Raises
    ------
    InputTypeError
        Not a tensor (models take tensors; estimators convert arrays), or complex.
    ValueError
        Another shape, no items, NaN or Inf values.
    """
    if x is None:
        return x
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    check_dtype(x.dtype, name)
    want = tuple(int(s) for s in event_shape)
    if x.dim() != len(want) + 1 or tuple(x.shape[1:]) != want or x.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, want))}), "
                         f"B >= 1, got {tuple(x.shape)}")  # fmt: skip
    return check_finite(x, name)
