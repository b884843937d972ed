"""Agreement measures between estimated and true angles."""

from __future__ import annotations

import numpy as np

__all__ = ["circular_correlation", "align_angles"]


def _as_angles(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size < 2:
        raise ValueError(f"{name}: need at least 2 angles, got {a.size}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return a


def circular_correlation(estimated, truth, symmetry: int = 1) -> float:
    """Fisher–Lee circular correlation, modulo an n-fold symmetry.

    It is invariant to a global rotation of either set and changes sign under a
    reflection, so ``|rho| = 1`` means "equal up to a global offset and
    reflection". It is well defined for angles spread uniformly over the circle.

    Parameters
    ----------
    estimated, truth : array_like
        ``(N,)`` radians.
    symmetry : int
        Angles are compared modulo ``2 pi / symmetry`` (by multiplying them by
        ``symmetry``).

    Returns
    -------
    float
        ``rho`` in ``[-1, 1]``.
    """
    if symmetry < 1:
        raise ValueError(f"symmetry must be >= 1, got {symmetry}")
    a = _as_angles(estimated, "estimated") * symmetry
    b = _as_angles(truth, "truth") * symmetry
    if a.size != b.size:
        raise ValueError(f"estimated and truth differ in length: {a.size} vs {b.size}")
    n = a.size
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    num = 4 * ((ca * cb).sum() * (sa * sb).sum() - (ca * sb).sum() * (sa * cb).sum())
    den_a = n**2 - np.cos(2 * a).sum() ** 2 - np.sin(2 * a).sum() ** 2
    den_b = n**2 - np.cos(2 * b).sum() ** 2 - np.sin(2 * b).sum() ** 2
    return float(num / np.sqrt(den_a * den_b))


def align_angles(estimated, truth, symmetry: int = 1) -> tuple[np.ndarray, float, int]:
    """Best global offset and reflection mapping ``estimated`` onto ``truth``.

    Returns
    -------
    aligned : numpy.ndarray
        ``sign * estimated + offset`` wrapped to ``[-pi/n, pi/n)`` relative to
        ``truth`` (so ``aligned - truth`` is the residual error), radians.
    offset : float
        Radians.
    sign : int
        ``+1`` or ``-1`` (reflection).
    """
    a = _as_angles(estimated, "estimated")
    b = _as_angles(truth, "truth")
    period = 2 * np.pi / symmetry
    best = None
    for sign in (1, -1):
        resultant = np.mean(np.exp(1j * symmetry * (b - sign * a)))
        if best is None or abs(resultant) > abs(best[0]):
            best = (resultant, sign)
    resultant, sign = best
    offset = float(np.angle(resultant) / symmetry)
    residual = (sign * a + offset - b + period / 2) % period - period / 2
    return b + residual, offset, sign
