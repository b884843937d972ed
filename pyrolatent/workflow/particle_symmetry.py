"""Are the crops' particles round, or n-fold symmetric? Said before anyone reads their angles.

The workflow's rVAE always returns an angle, symmetric particle or not. On
trackpy's bulk-water movie (round 1 um colloids, about 600 per frame, no
transition) the report announced a transition at frame 6 and angle peaks at
-90, 0, 90 and 180 deg: the directions of the pixel grid, not of particles.
:func:`crop_symmetry` scores the crops themselves
(:func:`pyrolatent.analysis.symmetry.rotational_symmetry`) inside a disc about
one particle wide (:func:`particle_radius`), so the neighbours of a crowded
crop do not count as the particle.
"""

from __future__ import annotations

import numpy as np

from ..analysis.symmetry import rotational_symmetry

__all__ = ["particle_radius", "crop_symmetry"]

#: The particle ends where the mean crop's radial profile is this fraction of its
#: height above the background.
EDGE_LEVEL = 0.1
#: Pixels added to that radius for the disc the turns are scored in.
DISC_MARGIN = 2.0


def particle_radius(images: np.ndarray) -> float:
    """Radius (pixels) of the particle at the centre of crops ``(N, H, W)``.

    The mean crop's radial profile about the crop centre falls from the
    particle's height to the background (its median beyond half the crop's
    half-side); the radius is where it first comes within :data:`EDGE_LEVEL`
    of that fall above the background.
    """
    mean = np.asarray(images, dtype=np.float64).mean(0)
    h, w = mean.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2).astype(np.int64)  # floor: bin 0 is used
    profile = np.bincount(r.ravel(), mean.ravel()) / np.bincount(r.ravel())
    half = min(h, w) // 2
    background = float(np.median(profile[half // 2 : half + 1]))
    level = background + EDGE_LEVEL * (profile[0] - background)
    below = np.flatnonzero(profile[: half + 1] <= level)
    return float(below[0]) if below.size else float(half)


def crop_symmetry(images: np.ndarray, *, aligned: bool = False, max_images: int = 512) -> dict:
    """The rotational symmetry of the particles in scaled crops, and what it means for the angles.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` crops with the background at 0
        (:func:`pyrolatent.data.preprocess.scale_crops`), one particle at each centre.
    aligned : bool
        The crops were turned onto each particle's axis (head/tail then comes
        from the polarity step, so a 2-fold symmetry needs no note).
    max_images : int
        At most this many crops (evenly spaced) give the radius and are scored.

    Returns
    -------
    dict
        ``order`` (1: no symmetry, n >= 2, or None: round, no orientation to
        find), ``contrast`` (the best n's, see ``rotational_symmetry``),
        ``radius_px`` (of the scored disc) and ``note`` (None, or a sentence
        for the report).
    """
    n = len(images)
    pick = np.linspace(0, n - 1, min(n, max_images)).round().astype(np.int64)
    x = np.asarray(images[pick], dtype=np.float64)  # never a float64 copy of a large stack
    radius = particle_radius(x) + DISC_MARGIN
    h, w = x.shape[1:]
    yy, xx = np.mgrid[:h, :w]
    disc = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) <= radius
    found = rotational_symmetry(x * disc, max_order=8, max_images=max_images)
    best = max(found["contrast"], key=found["contrast"].get)
    order, note = found["order"], None
    if order is None:
        note = (
            "The particles look round (every turn matches them within a disc of radius "
            f"{radius:.0f} px): there is no particle orientation for the rVAE's angle to find, so "
            "the angle peaks (often the pixel grid's directions, 90 deg apart) and a transition "
            "found in them are not findings"
        )
    elif order >= 3 or (order == 2 and not aligned):
        note = (
            f"The particles look {order}-fold symmetric: their angles are defined modulo "
            f"{360 / order:.0f} deg, so angle peaks {360 / order:.0f} deg apart may be one "
            "orientation"
        )
    return {
        "order": order,
        "contrast": float(found["contrast"][best]),
        "radius_px": float(radius),
        "note": note,
    }
