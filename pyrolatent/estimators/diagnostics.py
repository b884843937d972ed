"""Did the fit work? Collapse diagnostics and the symmetry estimate of the image estimators.

:class:`DiagnosticsMixin` gives :class:`~pyrolatent.estimators.rvae.RVAE` and
:class:`~pyrolatent.estimators.ssrvae.SSRVAE`:

* :meth:`~DiagnosticsMixin.diagnostics`: per-dimension KL and spread of the
  content latent ``z``, concentration of the angle posterior, reconstruction
  error against the mean-image baseline, a ``collapsed`` flag and plain-words
  ``warnings``; ``fit`` issues one :class:`PosteriorCollapseWarning` when
  ``collapsed`` is true;
* :meth:`~DiagnosticsMixin.estimate_symmetry`: the rotational symmetry order n
  of the decoded canonical images (for particles fitted without ``symmetry``),
  or None when a canonical image has no resolvable orientation (a disc).

The thresholds are module constants, stated in the docstrings.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..models.sites import ANGLE, Y, Z

__all__ = [
    "PosteriorCollapseWarning",
    "DiagnosticsMixin",
    "KL_THRESHOLD",
    "STD_THRESHOLD",
    "RECON_RATIO_THRESHOLD",
    "ANGLE_COLLAPSE_R",
    "SYMMETRY_MATCH",
    "SYMMETRY_CONTRAST",
]

#: A z dimension whose mean KL(q(z_d | x) || N(0, 1)) is below this (nats per image) is collapsed.
KL_THRESHOLD = 0.05
#: A z dimension whose posterior mean varies less than this across images is collapsed.
STD_THRESHOLD = 0.05
#: Reconstruction MSE / mean-image MSE above this: the model explains (almost) nothing.
RECON_RATIO_THRESHOLD = 0.95
#: Encoded angles with a mean resultant length above this are all the same angle.
ANGLE_COLLAPSE_R = 0.999
#: Self-correlation of a canonical image turned by 2 pi / n needed to call it n-fold symmetric.
SYMMETRY_MATCH = 0.9
#: Needed margin of the match at 2 pi / n over the match at pi / n (else: not resolvable).
SYMMETRY_CONTRAST = 0.05
#: Images used by the automatic check after ``fit`` (evenly spaced).
_MAX_CHECKED = 2048


class PosteriorCollapseWarning(UserWarning):
    """The fitted model explains nothing: its latents carry no information about the images."""


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


def reconstruction_report(x: np.ndarray, recon: np.ndarray) -> dict:
    """Reconstruction MSE against the mean image's (ratio < 1: better than the mean image)."""
    x, recon = np.asarray(x, np.float64), np.asarray(recon, np.float64)
    mse = float(((recon - x) ** 2).mean())
    base = float(((x - x.mean(axis=0)) ** 2).mean())
    return {
        "recon_mse": mse,
        "baseline_mse": base,
        "recon_ratio": mse / base if base > 0 else None,
    }


def assess(report: dict, latent_dim: int, rotation: bool) -> tuple[bool, list[str]]:
    """``(collapsed, warnings)`` of a diagnostics report.

    Collapsed: the reconstruction is no better than the mean image
    (``recon_ratio > RECON_RATIO_THRESHOLD``), or every z dimension collapsed
    while the angle is the same for every image (or not inferred).
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
            f"every image gets the same angle (resultant length {r:.4f}): the angle carries "
            "no information unless the images were pre-aligned"
        )
    if report.get("angle_posterior_spread") is not None and report["angle_posterior_spread"] > 1:
        notes.append(
            f"the angle posteriors are broad (median spread "
            f"{report['angle_posterior_spread']:.2f} rad): the angle is undetermined"
        )
    ratio = report["recon_ratio"]
    bad_recon = ratio is not None and ratio > RECON_RATIO_THRESHOLD
    if ratio is None:
        notes.append("all images are identical: nothing to learn")
    elif bad_recon:
        notes.append(
            f"the reconstructions are no better than the mean image "
            f"(MSE ratio {ratio:.3f} > {RECON_RATIO_THRESHOLD})"
        )
    collapsed = bad_recon or ratio is None or (z_all and (angle_same or not rotation))
    return bool(collapsed), notes


class DiagnosticsMixin:
    """``diagnostics`` and ``estimate_symmetry`` of an image estimator (``encode``/``decode``)."""

    def _canonical(self, enc: dict, angle=None) -> np.ndarray:
        """Decoded images of the encoded codes (and classes) at ``angle`` (default: none)."""
        if Y in enc:
            return self.decode(enc[Z]["loc"], enc[Y]["label"], angle=angle)
        return self.decode(enc[Z]["loc"], angle=angle)

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
            ``recon_mse``, ``baseline_mse`` (MSE of the mean image),
            ``recon_ratio`` (their ratio; < 1 is better than the mean image);
            ``collapsed`` (bool: reconstructions no better than the mean image,
            ratio > :data:`RECON_RATIO_THRESHOLD`, or every z dimension and the
            angle collapsed) and ``warnings`` (list of plain-words strings).
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
        recon = self.decode(*self._recon_args(enc), **self._mean_pose(enc))
        report |= reconstruction_report(x.detach().cpu().numpy(), recon)
        report["collapsed"], report["warnings"] = assess(
            report, self.config["latent_dim"], rotation
        )
        return report

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

    def estimate_symmetry(self, images, max_order: int = 8, max_images: int = 256) -> dict:
        """The rotational symmetry order n of the decoded canonical images.

        Each image's canonical (its code decoded at the identity pose) is
        turned by ``2 pi / n`` with the model's own decoder, for n in
        ``2..max_order``, and correlated with itself (Pearson over pixels,
        median over images): ``match[n]``. The estimate is the largest n with
        ``match[n] >= SYMMETRY_MATCH`` (:data:`SYMMETRY_MATCH`), else 1. A
        round canonical (a disc) matches every turn, so n is accepted only if it
        also beats the half turn ``pi / n`` by :data:`SYMMETRY_CONTRAST`
        (``contrast[n] = match[n] - match(pi / n)``); otherwise ``order`` is
        None: the images show no resolvable orientation.

        Parameters
        ----------
        images : array_like
            ``(N, H, W)``.
        max_order : int
            Largest n tried.
        max_images : int
            At most this many images (evenly spaced).

        Returns
        -------
        dict
            ``order`` (int, 1 for no symmetry, or None: not resolvable),
            ``match`` and ``contrast`` (``{n: float}`` for n in ``2..max_order``).
        """
        x = _subsample(self._images(images), max_images)
        enc = self.encode(x)
        base = self._canonical(enc)
        match, half = {}, {}
        for n in range(2, max_order + 1):
            match[n] = _self_match(base, self._canonical(enc, angle=2 * math.pi / n))
            half[n] = _self_match(base, self._canonical(enc, angle=math.pi / n))
        contrast = {n: match[n] - half[n] for n in match}
        good = [n for n in match if match[n] >= SYMMETRY_MATCH]
        order = max(good) if good else 1
        if good and contrast[order] < SYMMETRY_CONTRAST:
            order = None
        return {"order": order, "match": match, "contrast": contrast}


def _self_match(a: np.ndarray, b: np.ndarray) -> float:
    """Median over images of the Pearson correlation of ``a[i]`` and ``b[i]`` over pixels."""
    a = np.asarray(a, np.float64).reshape(a.shape[0], -1)
    b = np.asarray(b, np.float64).reshape(b.shape[0], -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    r = np.where(den > 0, (a * b).sum(1) / np.maximum(den, 1e-30), 0.0)
    return float(np.median(r))
