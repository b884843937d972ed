"""Planar angles: the one ``wrap_angle``, and evaluation with rotational symmetry and an
unknown global offset.

An angle inferred without labels (by the stereo-pair CNN or by the rVAE's
angle latent) is defined only up to

* the shape's rotational symmetry: a square at ``theta`` and ``theta + pi/2``
  is the same image, so angles are compared modulo ``2 pi / symmetry``;
* a global offset: nothing fixes the network's zero, so one reference image
  of known angle calibrates it;
* for 1D projections, a reflection (``mirror=True``): a projection of a
  regular polygon at ``theta`` equals the one at ``-theta``.

All angles are radians. Functions accept numpy arrays or tensors and return
tensors (or floats for the scalar summaries).
"""

from __future__ import annotations

import math
import warnings

import torch

from .._renamed import renamed_argument
from ..checks import as_tensor, check_finite

__all__ = [
    "check_symmetry",
    "check_order",
    "wrap_angle",
    "angle_to_phase",
    "phase_to_angle",
    "symmetric_difference",
    "calibrate_offset",
    "apply_calibration",
    "angle_errors",
    "fraction_within",
    "evaluate_angles",
]


def check_symmetry(symmetry) -> int:
    """Validate a rotational symmetry order ``n`` (an integer ``>= 1``)."""
    try:
        value = int(symmetry)
    except (TypeError, ValueError):
        raise ValueError(
            f"symmetry: expected an integer symmetry order >= 1, got {symmetry!r}"
        ) from None
    if value != symmetry or value < 1:
        raise ValueError(f"symmetry: expected an integer symmetry order >= 1, got {symmetry!r}")
    return value


def check_order(order) -> int:
    """Deprecated name of :func:`check_symmetry`."""
    warnings.warn(
        "check_order is deprecated, use check_symmetry (the old name will be removed in the"
        " next release)",
        DeprecationWarning,
        stacklevel=2,
    )
    return check_symmetry(order)


def _angles(x, name: str) -> torch.Tensor:
    t = as_tensor(x, name=name, dtype=torch.float64)
    check_finite(t, name)
    return t.reshape(-1)


def wrap_angle(angle, period: float = 2 * math.pi) -> torch.Tensor:
    """Wrap angles into ``[-period/2, period/2)``.

    The one definition in the library (:mod:`pyrolatent.distributions` re-exports it).

    Parameters
    ----------
    angle : torch.Tensor or array_like
        Angles of any shape, radians.
    period : float
        Period in radians (``2 pi / n`` for an ``n``-fold symmetric angle).

    Returns
    -------
    torch.Tensor
        Same shape as ``angle``, values in ``[-period/2, period/2)``.
    """
    a = torch.as_tensor(angle)
    return torch.remainder(a + period / 2, period) - period / 2


def angle_to_phase(
    angle: torch.Tensor, symmetry: int = 1, *, order: int | None = None
) -> torch.Tensor:
    """Unit vectors ``(cos n theta, sin n theta)``, shape ``(..., 2)``."""
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="angle_to_phase"
    )
    n = check_symmetry(symmetry)
    return torch.stack([torch.cos(n * angle), torch.sin(n * angle)], dim=-1)


def phase_to_angle(
    phase: torch.Tensor, symmetry: int = 1, *, order: int | None = None
) -> torch.Tensor:
    """Angles in ``[0, 2 pi / n)`` from ``(..., 2)`` phase vectors (need not be unit)."""
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="phase_to_angle"
    )
    n = check_symmetry(symmetry)
    return torch.remainder(torch.atan2(phase[..., 1], phase[..., 0]), 2 * math.pi) / n


def _fold(phase: torch.Tensor) -> torch.Tensor:
    """Fold a phase in ``[-pi, pi)`` onto ``[0, pi]`` (the reflection ``phi -> -phi``)."""
    return wrap_angle(phase).abs()


def symmetric_difference(
    pred, true, symmetry: int = 1, mirror: bool = False, *, order: int | None = None
) -> torch.Tensor:
    """Signed difference ``pred - true`` modulo ``2 pi / symmetry``.

    Parameters
    ----------
    pred, true : array_like
        ``(N,)`` radians (``true`` may be a single value).
    symmetry : int
        Rotational symmetry order ``n >= 1``.
    mirror : bool
        Also identify ``theta`` with ``-theta`` (projections); the result is
        then the difference of the folded phases, ``(|n pred| - |n true|) / n``
        with both phases wrapped to ``[-pi, pi)``.

    Returns
    -------
    torch.Tensor
        ``(N,)`` radians in ``[-pi/n, pi/n)``.
    """
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="symmetric_difference"
    )
    n = check_symmetry(symmetry)
    p = _angles(pred, "pred")
    t = _angles(true, "true")
    if t.numel() not in (1, p.numel()):
        raise ValueError(f"true: expected 1 or {p.numel()} angles, got {t.numel()}")
    if mirror:
        return (_fold(n * p) - _fold(n * t)) / n
    return wrap_angle(n * (p - t)) / n


def calibrate_offset(
    pred_reference,
    true_reference,
    symmetry: int = 1,
    mirror: bool = False,
    *,
    order: int | None = None,
):
    """Global offset of an uncalibrated angle predictor from reference image(s).

    Parameters
    ----------
    pred_reference : array_like
        Predicted angle(s) of the reference image(s), radians.
    true_reference : array_like
        Their known angle(s). One image suffices; several are combined by a
        circular mean in the symmetry-reduced phase ``n theta``.
    symmetry : int
        Rotational symmetry order.
    mirror : bool
        Reflection-ambiguous angles (projections). The network's phase is then
        forced by the reflection to fold at the shape's mirror axis, so the
        offset can only be ``0`` or ``pi / n``; the closer one is returned.

    Returns
    -------
    float
        Offset ``c`` in radians; calibrated angles are ``pred - c``
        (:func:`apply_calibration`).
    """
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="calibrate_offset"
    )
    n = check_symmetry(symmetry)
    p = _angles(pred_reference, "pred_reference")
    t = _angles(true_reference, "true_reference")
    if t.numel() != p.numel():
        raise ValueError(
            f"true_reference: expected {p.numel()} angles to match pred_reference, got {t.numel()}"
        )
    if mirror:
        costs = []
        for c in (0.0, math.pi / n):
            costs.append(float(symmetric_difference(p - c, t, n, mirror=True).abs().mean()))
        return 0.0 if costs[0] <= costs[1] else math.pi / n
    phase = n * (p - t)
    mean = math.atan2(float(phase.sin().mean()), float(phase.cos().mean()))
    return mean / n


def apply_calibration(
    pred, offset: float, symmetry: int = 1, *, order: int | None = None
) -> torch.Tensor:
    """Subtract a global offset and wrap into ``[0, 2 pi / symmetry)``."""
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="apply_calibration"
    )
    n = check_symmetry(symmetry)
    p = _angles(pred, "pred")
    return torch.remainder(p - offset, 2 * math.pi / n)


def angle_errors(
    pred, true, symmetry: int = 1, mirror: bool = False, *, order: int | None = None
) -> torch.Tensor:
    """Absolute angle errors modulo ``2 pi / symmetry`` (and reflection), radians ``(N,)``."""
    symmetry = renamed_argument(symmetry, order, old="order", new="symmetry", where="angle_errors")
    return symmetric_difference(pred, true, symmetry, mirror=mirror).abs()


def fraction_within(
    pred,
    true,
    symmetry: int = 1,
    tolerance_deg: float = 3.0,
    mirror: bool = False,
    *,
    order: int | None = None,
) -> float:
    """Fraction of angles within ``tolerance_deg`` degrees of the truth modulo symmetry."""
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="fraction_within"
    )
    if tolerance_deg <= 0:
        raise ValueError(f"tolerance_deg: expected a positive tolerance, got {tolerance_deg}")
    err = angle_errors(pred, true, symmetry, mirror=mirror)
    return float((err <= math.radians(tolerance_deg)).double().mean())


def evaluate_angles(
    pred,
    true,
    symmetry: int = 1,
    reference_index: int | None = 0,
    pred_reference=None,
    true_reference=None,
    tolerance_deg: float = 3.0,
    mirror: bool = False,
    *,
    order: int | None = None,
) -> dict:
    """Calibrate with one reference image, then score all predictions.

    The reference is either one of the evaluated images (``reference_index``)
    or given separately (``pred_reference`` and ``true_reference``, e.g. a
    noise-free image of the shape at its canonical angle).

    Returns
    -------
    dict
        ``offset`` (radians), ``calibrated`` ``(N,)`` radians, ``errors``
        ``(N,)`` radians, ``frac_within`` (fraction within ``tolerance_deg``),
        ``median_error_deg`` and ``mean_error_deg``.
    """
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="evaluate_angles"
    )
    p = _angles(pred, "pred")
    t = _angles(true, "true")
    if t.numel() != p.numel():
        raise ValueError(f"true: expected {p.numel()} angles to match pred, got {t.numel()}")
    if pred_reference is None:
        if reference_index is None or not -p.numel() <= reference_index < p.numel():
            raise ValueError(
                f"reference_index: expected an index into {p.numel()} images, got {reference_index}"
            )
        pred_reference, true_reference = p[reference_index], t[reference_index]
    elif true_reference is None:
        raise ValueError("true_reference: needed together with pred_reference")
    offset = calibrate_offset(pred_reference, true_reference, symmetry, mirror=mirror)
    calibrated = apply_calibration(p, offset, symmetry)
    errors = angle_errors(calibrated, t, symmetry, mirror=mirror)
    deg = errors * 180 / math.pi
    return {
        "offset": offset,
        "calibrated": calibrated,
        "errors": errors,
        "frac_within": float((deg <= tolerance_deg).double().mean()),
        "median_error_deg": float(deg.median()),
        "mean_error_deg": float(deg.mean()),
    }
