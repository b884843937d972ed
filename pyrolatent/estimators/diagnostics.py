"""Did the fit work? Collapse diagnostics and the symmetry estimate of the image estimators.

:class:`DiagnosticsMixin` gives :class:`~pyrolatent.estimators.rvae.RVAE` and
:class:`~pyrolatent.estimators.ssrvae.SSRVAE`:

* :meth:`~DiagnosticsMixin.diagnostics`: per-dimension KL and spread of the
  content latent ``z``, concentration of the angle posterior, reconstruction
  error against the mean-image baseline, a ``collapsed`` flag and plain-words
  ``warnings``; ``fit`` issues one :class:`PosteriorCollapseWarning` when
  ``collapsed`` is true;
* :meth:`~DiagnosticsMixin.agreement`: how far two fits (restarts, seeds)
  agree on the angles and the content codes;
* :meth:`~DiagnosticsMixin.estimate_symmetry`: the rotational symmetry order n
  of the particles (to fit them with ``symmetry=n``), or None when they have no
  resolvable orientation (a disc).

The thresholds are module constants, stated in the docstrings.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..analysis.symmetry import rotational_symmetry
from ..models.sites import ANGLE, OFFSET, Y, Z

__all__ = [
    "PosteriorCollapseWarning",
    "DiagnosticsMixin",
    "KL_THRESHOLD",
    "STD_THRESHOLD",
    "RECON_RATIO_THRESHOLD",
    "Z_GAIN_THRESHOLD",
    "ANGLE_COLLAPSE_R",
    "ANGLE_BROAD_RAD",
    "OFFSET_SAME_PX",
    "encoding_agreement",
]

#: A z dimension whose mean KL(q(z_d | x) || N(0, 1)) is below this (nats per image) is collapsed.
KL_THRESHOLD = 0.05
#: A z dimension whose posterior mean varies less than this across images is collapsed.
STD_THRESHOLD = 0.05
#: Reconstruction MSE / mean-image MSE above this: the model explains (almost) nothing.
RECON_RATIO_THRESHOLD = 0.95
#: The images' own codes remove less than this share of the reconstruction error left with
#: the mean code (same poses): z carries little (a note, not ``collapsed``: particles of one
#: kind and size leave z nothing to carry). Measured: 4e-5 on real digits whose z had not left
#: its collapsed start (linear probe on z below the pixels), 0.52-0.57 on good digits fits,
#: 0.71-0.80 on two shapes, 0.0 on identical L shapes (tests/estimators/test_diagnostics.py).
Z_GAIN_THRESHOLD = 0.1
#: Encoded offsets whose spread across images is below this (pixels, each axis) are one offset:
#: the pose encoder learned nothing (every unit of a ReLU offset encoder died on the demo's
#: aligned crops: std exactly 0; live fits 0.8-2.4 px).
OFFSET_SAME_PX = 1e-3
#: Encoded angles with a mean resultant length above this are all the same angle.
ANGLE_COLLAPSE_R = 0.999
#: A median per-image angle-posterior spread above this (radians) leaves the angle undetermined.
ANGLE_BROAD_RAD = 1.0
#: Images used by the automatic check after ``fit`` (evenly spaced).
_MAX_CHECKED = 2048


class PosteriorCollapseWarning(UserWarning):
    """The fitted model explains nothing: its latents carry no information about the images."""


def _linear_r2(a: np.ndarray, b: np.ndarray) -> float:
    """The smaller R^2 of least-squares predictions of ``b`` from ``a`` and of ``a`` from ``b``."""

    def r2(src, dst):
        src, dst = src - src.mean(0), dst - dst.mean(0)
        total = float((dst**2).sum())
        if total <= 0 or np.all(src.std(0) < STD_THRESHOLD) or np.all(dst.std(0) < STD_THRESHOLD):
            return 0.0
        coef, *_ = np.linalg.lstsq(src, dst, rcond=None)
        return 1.0 - float(((dst - src @ coef) ** 2).sum()) / total

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return min(r2(a, b), r2(b, a))


def encoding_agreement(mine: dict, theirs: dict, symmetry: int = 1) -> dict:
    """:meth:`DiagnosticsMixin.agreement` of two fits' encodings of the same images."""
    out = {"angle_agreement": None, "z_r2": _linear_r2(mine[Z]["loc"], theirs[Z]["loc"])}
    if ANGLE in mine and ANGLE in theirs:
        n = max(int(symmetry), 1)
        a, b = (np.asarray(e[ANGLE]["loc"], np.float64) * n for e in (mine, theirs))
        out["angle_agreement"] = float(
            max(abs(np.exp(1j * (a - b)).mean()), abs(np.exp(1j * (a + b)).mean()))
        )
    return out


def _subsample(x, max_images: int | None):
    n = x.shape[0]
    if max_images is None or n <= max_images:
        return x
    return x[np.linspace(0, n - 1, max_images).round().astype(np.int64)]


def latent_report(loc: np.ndarray, scale: np.ndarray, standard_prior: bool) -> dict:
    """Per-dimension KL to N(0, 1) (when that is the prior), posterior spread and collapsed dims.

    Parameters
    ----------
    loc, scale : numpy.ndarray
        ``(N, D)`` posterior means and standard deviations of ``z``.
    standard_prior : bool
        Whether the prior of ``z`` is N(0, I) (else the KL is not reported).
    """
    loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
    std = loc.std(axis=0)
    out = {
        "z_std": std.tolist(),
        "z_posterior_scale": scale.mean(axis=0).tolist(),
        "z_kl": None,
    }
    collapsed = std < STD_THRESHOLD
    if standard_prior:
        kl = 0.5 * (scale**2 + loc**2 - 1.0 - 2.0 * np.log(np.maximum(scale, 1e-12)))
        out["z_kl"] = kl.mean(axis=0).tolist()
        collapsed |= kl.mean(axis=0) < KL_THRESHOLD
    out["z_collapsed_dims"] = np.flatnonzero(collapsed).tolist()
    return out


def angle_report(loc: np.ndarray, scale: np.ndarray, symmetry: int) -> dict:
    """Concentration of the encoded angles across images and of each image's posterior.

    ``angle_resultant_length``: ``|mean exp(i n angle)|`` over images (n the
    declared symmetry): 1 when every image gets the same angle, near 0 for
    angles spread over the circle. ``angle_posterior_spread``: median over
    images of the posterior's circular spread (radians): large (>~1) when the
    angle is undetermined.
    """
    n = max(int(symmetry), 1)
    phase = n * np.asarray(loc, np.float64)
    r = float(np.hypot(np.cos(phase).mean(), np.sin(phase).mean()))
    return {
        "angle_resultant_length": r,
        "angle_posterior_spread": float(
            np.median(np.minimum(np.asarray(scale, np.float64), math.pi))
        ),
        "angle_collapsed": bool(r > ANGLE_COLLAPSE_R),
    }


def reconstruction_report(x: np.ndarray, recon: np.ndarray, recon_mean_z=None) -> dict:
    """Reconstruction MSE against the mean image's (ratio < 1: better than the mean image).

    With ``recon_mean_z`` (the same poses, every code replaced by the mean
    code) also ``z_recon_gain``: the share of that reconstruction's error that
    the images' own codes remove (near 0 when z carries nothing, see
    :data:`Z_GAIN_THRESHOLD`).
    """
    x, recon = np.asarray(x, np.float64), np.asarray(recon, np.float64)
    mse = float(((recon - x) ** 2).mean())
    base = float(((x - x.mean(axis=0)) ** 2).mean())
    out = {
        "recon_mse": mse,
        "baseline_mse": base,
        "recon_ratio": mse / base if base > 0 else None,
    }
    if recon_mean_z is not None:
        flat = float(((np.asarray(recon_mean_z, np.float64) - x) ** 2).mean())
        out["z_recon_gain"] = 1.0 - mse / flat if flat > 0 else None
    return out


def assess(report: dict, latent_dim: int, rotation: bool) -> tuple[bool, list[str]]:
    """``(collapsed, warnings)`` of a diagnostics report.

    Collapsed: the latents carry no information. Every z dimension collapsed
    while the angle is the same for every image (or not inferred); or the
    reconstruction is no better than the mean image (``recon_ratio >
    RECON_RATIO_THRESHOLD``) while neither the angles (the same, or broad
    posteriors) nor the content code (collapsed, or ``z_recon_gain <
    Z_GAIN_THRESHOLD``) say anything. A poor reconstruction with informative
    latents is a note only: on pre-aligned images the mean image is a strong
    baseline (the demo's crops: angles 0.5 deg from the truth, head/tail right
    for 99.98 %, ``recon_ratio`` 1.10, which the ratio alone called a collapse).
    """
    notes = []
    dims = report["z_collapsed_dims"]
    z_all = len(dims) == latent_dim
    if z_all:
        notes.append(
            f"every content dimension collapsed (KL < {KL_THRESHOLD} nats or std across images "
            f"< {STD_THRESHOLD}): z carries no information about the images"
        )
    elif dims:
        notes.append(f"content dimensions {dims} are unused (collapsed)")
    angle_same = report.get("angle_collapsed", False)
    if angle_same:
        r = report["angle_resultant_length"]
        notes.append(
            f"every image gets the same angle (resultant length {r:.3f}): the angle carries "
            "no information unless the images were pre-aligned"
        )
    broad = (report.get("angle_posterior_spread") or 0.0) > ANGLE_BROAD_RAD
    if broad:
        notes.append(
            f"the angle posteriors are broad (median spread "
            f"{report['angle_posterior_spread']:.2f} rad): the angle is undetermined"
        )
    offset_std = report.get("offset_std")
    if offset_std is not None and max(offset_std) < OFFSET_SAME_PX:
        notes.append(
            f"every image gets the same offset (std < {OFFSET_SAME_PX} px): the offset encoder "
            "learned nothing, so the particles are drawn where they sit on average (if they "
            "are centred, fit without 'translation')"
        )
    gain = report.get("z_recon_gain")
    if gain is not None and gain < Z_GAIN_THRESHOLD and not z_all:
        notes.append(
            f"the content code removes only {gain:.0%} of the reconstruction error left with "
            f"the mean code (< {Z_GAIN_THRESHOLD:.0%}): if the particles differ, z has "
            "(partly) collapsed"
        )
    angle_info = rotation and not angle_same and not broad
    z_info = not z_all and (gain is None or gain >= Z_GAIN_THRESHOLD)
    ratio = report["recon_ratio"]
    bad_recon = ratio is not None and ratio > RECON_RATIO_THRESHOLD
    if ratio is None:
        notes.append("all images are identical: nothing to learn")
    elif bad_recon:
        said = {
            (True, True): ", though the angles and the content code carry information",
            (True, False): ", though the angles carry information",
            (False, True): ", though the content code carries information",
        }.get((angle_info, z_info), "")
        why = " (pre-aligned images make the mean image a strong baseline; otherwise the decoder "
        notes.append(
            f"the reconstructions are no better than the mean image "
            f"(MSE ratio {ratio:.3f} > {RECON_RATIO_THRESHOLD}){said}"
            + (why + "fits poorly)" if said else "")
        )
    dead = z_all and (angle_same or not rotation)
    collapsed = ratio is None or dead or (bad_recon and not angle_info and not z_info)
    return bool(collapsed), notes


class DiagnosticsMixin:
    """``diagnostics`` and ``estimate_symmetry`` of an image estimator (``encode``/``decode``)."""

    def _canonical(self, enc: dict) -> np.ndarray:
        """Decoded images of the encoded codes (and classes) at the identity pose."""
        return self.decode(*self._recon_args(enc))

    def diagnostics(self, images, batch_size: int = 1024, max_images: int | None = None) -> dict:
        """Did the fit work? Collapse of z, angle concentration, reconstruction vs the mean image.

        Parameters
        ----------
        images : array_like
            ``(N, H, W)``, e.g. the training images.
        batch_size : int
        max_images : int, optional
            Use at most this many images (evenly spaced); default all.

        Returns
        -------
        dict
            Plain JSON-ready values: ``n_images``; ``z_kl`` (list of D, mean
            KL(q(z_d | x) || N(0, 1)) in nats per image, None with a custom
            z prior), ``z_std`` (D, std of the posterior means across images),
            ``z_posterior_scale`` (D, mean posterior std), ``z_collapsed_dims``
            (dims with KL < :data:`KL_THRESHOLD` or std < :data:`STD_THRESHOLD`);
            with rotation, ``angle_resultant_length`` (of the encoded angles
            across images; > :data:`ANGLE_COLLAPSE_R` is ``angle_collapsed``)
            and ``angle_posterior_spread`` (median per-image spread, radians);
            with translation, ``offset_std`` (2, pixels: spread of the encoded
            offsets across images; below :data:`OFFSET_SAME_PX` a note);
            ``recon_mse``, ``baseline_mse`` (MSE of the mean image),
            ``recon_ratio`` (their ratio; < 1 is better than the mean image);
            ``z_recon_gain`` (1 - the reconstruction MSE over that with every
            code set to the mean code, same poses: how much the content code
            explains; below :data:`Z_GAIN_THRESHOLD` a note in ``warnings``
            says so, without setting ``collapsed``);
            ``collapsed`` (bool: the latents carry no information, see
            :func:`assess`) and ``warnings`` (list of plain-words strings).
        """
        x = _subsample(self._images(images), max_images)
        enc = self.encode(x, batch_size=batch_size)
        report = {"n_images": int(x.shape[0])}
        standard = self.priors.get("z_prior") is None
        report |= latent_report(enc[Z]["loc"], enc[Z]["scale"], standard)
        rotation = ANGLE in enc
        if rotation:
            sym = self.config.get("symmetry", 1)
            report |= angle_report(enc[ANGLE]["loc"], enc[ANGLE]["scale"], sym)
        if OFFSET in enc:
            report["offset_std"] = np.asarray(enc[OFFSET]["loc"], np.float64).std(0).tolist()
        args, pose = self._recon_args(enc), self._mean_pose(enc)
        recon = self.decode(*args, **pose)
        z = np.asarray(args[0])
        mean_z = np.broadcast_to(z.mean(0, keepdims=True), z.shape).copy()
        recon_mean_z = self.decode(mean_z, *args[1:], **pose)
        report |= reconstruction_report(x.detach().cpu().numpy(), recon, recon_mean_z)
        report["collapsed"], report["warnings"] = assess(
            report, self.config["latent_dim"], rotation
        )
        return report

    def agreement(self, other, images, batch_size: int = 1024) -> dict:
        """How far two fits of the same images (restarts, seeds) agree on angle and content.

        Parameters
        ----------
        other : RVAE or SSRVAE
            Another fitted estimator for the same image size.
        images : array_like
            ``(N, H, W)``.
        batch_size : int

        Returns
        -------
        dict
            ``angle_agreement``: ``|mean exp(i n (a - b))|`` of the two encoded
            angles ``a``, ``b`` (n = this model's ``symmetry``), or of ``a + b``
            if that is larger (a mirrored convention): 1 when the angles agree
            up to one global offset, near 0 when unrelated (None without
            rotation); ``z_r2``: the smaller R^2 of predicting either model's
            posterior-mean ``z`` linearly from the other's (0 when either is
            constant). Two collapsed fits agree trivially: read ``collapsed``
            of :meth:`diagnostics` first.
        """
        x = self._images(images)
        mine, theirs = self.encode(x, batch_size=batch_size), other.encode(x, batch_size=batch_size)
        return encoding_agreement(mine, theirs, self.config.get("symmetry", 1))

    def _recon_args(self, enc: dict) -> tuple:
        return (enc[Z]["loc"], enc[Y]["label"]) if Y in enc else (enc[Z]["loc"],)

    def _warn_if_collapsed(self, images) -> None:
        """One :class:`PosteriorCollapseWarning` when the fit collapsed (after ``fit``)."""
        report = self.diagnostics(images, max_images=_MAX_CHECKED)
        if report["collapsed"]:
            warnings.warn(
                f"{type(self).__name__} fit collapsed: " + "; ".join(report["warnings"])
                + ". See diagnostics(images).",
                PosteriorCollapseWarning,
                stacklevel=3,
            )  # fmt: skip

    def estimate_symmetry(
        self, images, source: str = "images", max_order: int = 8, max_images: int = 512
    ) -> dict:
        """The rotational symmetry order n of the particles, for a fit without ``symmetry``.

        A contrast of self-correlations under turns
        (:func:`pyrolatent.analysis.symmetry.rotational_symmetry`): n is accepted
        only if the turns by ``2 pi k / n`` match better than the half-way turns,
        so a round particle gives ``order = None`` (no resolvable orientation)
        instead of a wrong n. Refit with ``symmetry=order`` when ``order > 1``.

        Parameters
        ----------
        images : array_like
            ``(N, H, W)``.
        source : {"images", "canonical"}
            Score the images themselves (centred on their centroid; needs no
            fit) or the model's decoded canonical images (each code at the
            identity pose: noise-free, but only as good as the fit: a model
            that drew a disc for a polygon reports None).
        max_order, max_images
            Largest n tried; at most this many images.

        Returns
        -------
        dict
            ``order`` (int: 1 is no symmetry; or None), ``match`` and
            ``contrast`` (``{n: float}``), see ``rotational_symmetry``.
        """
        if source not in ("images", "canonical"):
            raise ValueError(f"source must be 'images' or 'canonical', got {source!r}")
        x = _subsample(self._images(images), max_images)
        if source == "canonical":
            x = self._canonical(self.encode(x))
        else:
            x = x.detach().cpu().numpy()
        return rotational_symmetry(x, max_order=max_order, max_images=max_images)
