"""Directed particle angles from a measured axis and a pose-aligned rVAE.

An ellipse fit (:func:`pyrolatent.segmentation.locate`) measures the axis of an
elongated particle precisely but only modulo ``pi``; which end is the head is
left open. The workflow therefore *pre-aligns* every crop by its axis
(:func:`pyrolatent.data.crops.align_crops`) and trains the rVAE on the aligned
crops. The rVAE then resolves what the axis leaves open:

* its angle latent gives a residual rotation about the axis (defined up to a
  global offset, removed here by the circular mean over all particles, and
  taken modulo ``pi``: the polarity is read from the reconstruction, below);
* its content latent carries the polarity: head along +x or along -x of the
  aligned crop. A 180 degree flip is a discrete choice that gradient descent on
  the angle latent does not make (the flipped pose is a local optimum of the
  reconstruction), so it ends up in ``z``; the decoder makes it readable.

The polarity of a particle is read from its rVAE reconstruction in the
aligned frame: the sign of the first moment along x of the reconstruction
(above its mean), i.e. the angle points from the lighter to the heavier end of
the decoded particle. The directed angle is

    angle = axis + residual + pi * [first moment < 0]

in radians, counter-clockwise as displayed, wrapped to ``[-pi, pi)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["polarity_moment", "directed_angles", "latent_table"]


def polarity_moment(images) -> np.ndarray:
    """First moment along x of each image about its centre, ``(N,)``.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)``, non-negative mean images (e.g. rVAE reconstructions of
        aligned crops). Each image's mean is subtracted first, so a uniform
        background contributes nothing.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` in image units times pixels; > 0 when the heavier end lies
        towards +x (the columns' direction).
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"images: expected (N, H, W), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("images: contain NaN or Inf")
    cols = np.arange(x.shape[2]) - (x.shape[2] - 1) / 2
    return ((x - x.mean((1, 2), keepdims=True)) * cols).sum((1, 2))


def directed_angles(axis_angle, latent_angle, reconstructions) -> dict:
    """Directed angles from the axis, the rVAE angle latent and reconstructions.

    Parameters
    ----------
    axis_angle : array_like
        ``(N,)`` radians, the axis each crop was aligned by (modulo ``pi``).
    latent_angle : array_like
        ``(N,)`` radians, the rVAE's encoded angle of the aligned crops.
    reconstructions : array_like
        ``(N, H, W)`` rVAE reconstructions of the aligned crops at their
        encoded angle, with zero offset (the particle centred).

    Returns
    -------
    dict
        ``angle`` ``(N,)`` directed angle, radians in ``[-pi, pi)``;
        ``residual`` ``(N,)`` radians in ``[-pi/2, pi/2)`` (latent angle minus its
        circular mean, modulo ``pi``);
        ``polarity`` ``(N,)`` +1 (head along the aligned +x) or -1;
        ``moment`` ``(N,)`` the first moments (:func:`polarity_moment`), whose
        magnitude says how clear the polarity is.
    """
    axis = np.asarray(axis_angle, dtype=np.float64).reshape(-1)
    lat = np.asarray(latent_angle, dtype=np.float64).reshape(-1)
    if axis.shape != lat.shape:
        raise ValueError(f"axis_angle {axis.shape} and latent_angle {lat.shape} differ")
    if not (np.isfinite(axis).all() and np.isfinite(lat).all()):
        raise ValueError("angles: contain NaN or Inf")
    moment = polarity_moment(reconstructions)
    if moment.shape != axis.shape:
        raise ValueError(f"reconstructions: expected {axis.size} images, got {moment.size}")
    if lat.size:
        ref = math.atan2(np.sin(lat).mean(), np.cos(lat).mean())
    else:
        ref = 0.0
    residual = np.remainder(lat - ref + math.pi / 2, math.pi) - math.pi / 2
    polarity = np.where(moment >= 0, 1, -1)
    angle = axis + residual + np.where(polarity < 0, math.pi, 0.0)
    angle = np.remainder(angle + math.pi, 2 * math.pi) - math.pi
    return {"angle": angle, "residual": residual, "polarity": polarity, "moment": moment}


def latent_table(index: dict, encoding: dict, *, reconstructions=None) -> dict:
    """One row per crop: the rVAE latents joined to the crop index, with directed angles.

    Parameters
    ----------
    index : dict
        Crop index (:func:`pyrolatent.data.crops.extract_crops` or
        :func:`~pyrolatent.data.crops.aligned_crops`): ``frame``,
        ``particle_id``, ``valid`` and, for pre-aligned crops, ``orientation``.
    encoding : dict
        ``RVAE.encode`` output: ``angle``/``offset``/``z`` -> ``{"loc", "scale"}``.
    reconstructions : array_like, optional
        ``(N, H, W)`` reconstructions at the encoded angle (zero offset);
        required when ``index`` has ``orientation``.

    Returns
    -------
    dict
        ``frame``, ``particle_id``, ``angle`` (radians), ``angle_scale``,
        ``offset`` ``(N, 2)`` (dx, dy pixels), ``z`` ``(N, D)``, ``valid``.
        With ``orientation``: ``angle`` is the directed angle in the movie
        frame (:func:`directed_angles`), and ``angle_latent`` (the raw
        latent), ``polarity`` (+1/-1) and ``polarity_moment`` are added.
    """
    if "particle_id" not in index:
        raise ValueError("index: missing column 'particle_id' (the join key)")
    table = {
        "frame": np.asarray(index["frame"]),
        "particle_id": np.asarray(index["particle_id"]),
        "angle": encoding["angle"]["loc"],
        "angle_scale": encoding["angle"]["scale"],
        "offset": encoding["offset"]["loc"],
        "z": encoding["z"]["loc"],
        "valid": np.asarray(index["valid"]),
    }
    if "orientation" in index:
        if reconstructions is None:
            raise ValueError("pre-aligned crops (orientation in index) need reconstructions")
        d = directed_angles(index["orientation"], encoding["angle"]["loc"], reconstructions)
        table["angle"] = d["angle"]
        table["angle_latent"] = encoding["angle"]["loc"]
        table["polarity"] = d["polarity"]
        table["polarity_moment"] = d["moment"]
    return table
