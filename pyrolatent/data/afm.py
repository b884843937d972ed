"""AFM frame preprocessing: polynomial levelling, scan-line (row) alignment, quality flags.

An AFM image is scanned line by line: rows (the fast-scan axis ``x``, along
``W``) are recorded one after the other down the slow-scan axis ``y`` (along
``H``). Two backgrounds are removed from every frame:

* a smooth polynomial surface (sample tilt, scanner bow) of order 1-3 in
  ``(x, y)``, fitted robustly: particles and other outliers are excluded by
  iterated sigma clipping (or by a given mask) so they do not pull the fit;
* a height offset per row (scan-line offsets from feedback and drift between
  lines), estimated from the background pixels of each row.

:func:`frame_quality` (:mod:`pyrolatent.data.afm_quality`) then flags frames
dominated by scan artefacts; :func:`preprocess_afm` does all three in one call.
Heights keep the input's unit (nm for AFMReader's files); frames are ``(T, H, W)``
(a single ``(H, W)`` frame is accepted and returned as such).

Why not playnano or topostats: both were checked against this project's
environment (Python 3.11, numpy 2.4, torch 2.13). ``topostats`` 2.4.2 pins
``numpy~=2.0.0`` and ``pillow<=11.1.0`` (pip would downgrade numpy 2.4.6 to 2.0.2)
and requires ``tensorflow`` and ``keras`` (its levelling also lives in a
``Filters`` class bound to its own image container). ``playnano`` 0.5.0 requires
``pyside6>=6.5`` (Qt with WebEngine, several hundred MB) and
``opencv-python-headless``, and its ``remove_plane`` / ``row_median_align`` fit
every pixel (particles included) with no outlier rejection. The functions here
are short numpy versions of the same standard operations (Gwyddion's and
TopoStats' plane/polynomial levelling and median row alignment), made robust
to particles.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import as_array, check_count, check_number
from .afm_quality import flag_frames, frame_quality, quality_metrics

__all__ = ["level_plane", "correct_scan_lines", "preprocess_afm", "frame_quality"]

SCAN_LINE_METHODS = ("median", "median_diff")
_FIT_PIXELS = 16384  # surfaces and noise levels are estimated on about this many (strided) pixels


def check_frames(frames, name: str = "frames") -> tuple[np.ndarray, bool]:
    """``(T, H, W)`` float64 frames and whether the input was one ``(H, W)`` frame."""
    arr = as_array(frames, name, ndim=(2, 3), allow_bool=False)
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    if min(arr.shape[1:]) < 3:
        raise ValueError(f"{name}: frames must be at least 3 x 3 pixels, got {arr.shape[1:]}")
    return arr, single


def _check_mask(mask, shape: tuple[int, ...]) -> np.ndarray | None:
    """``(T, H, W)`` bool ``keep`` (True = background usable for fitting) from an exclusion mask."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ValueError(f"mask: expected a boolean array (True = exclude), got dtype {m.dtype}")
    if m.shape == shape[1:]:
        m = np.broadcast_to(m, shape)
    if m.shape != shape:
        raise ValueError(f"mask: shape {m.shape} fits neither (H, W) nor (T, H, W) {shape}")
    return ~m


def _output(frames: np.ndarray, like, single: bool) -> np.ndarray:
    dtype = np.float64 if np.asarray(like).dtype == np.float64 else np.float32
    out = frames.astype(dtype, copy=False)
    return out[0] if single else out


def _robust_sigma(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation (1.4826 MAD) of ``values``."""
    med = float(np.median(values))
    return med, 1.4826 * float(np.median(np.abs(values - med)))


def _stride(shape: tuple[int, ...]) -> int:
    """Pixel stride that leaves about ``_FIT_PIXELS`` pixels of a frame."""
    return max(1, math.ceil(math.sqrt(shape[-2] * shape[-1] / _FIT_PIXELS)))


def inliers(residual: np.ndarray, keep: np.ndarray | None, clip: float) -> np.ndarray:
    """Pixels within ``clip`` robust standard deviations of the median (and in ``keep``).

    The median and the spread are estimated on a strided subset of pixels.
    """
    s = _stride(residual.shape)
    sub = residual[::s, ::s]
    base = sub[keep[::s, ::s]] if keep is not None else sub.ravel()
    if base.size == 0:
        base = residual[keep] if keep is not None and keep.any() else residual.ravel()
    med, sigma = _robust_sigma(base)
    out = np.abs(residual - med) <= clip * sigma
    return out & keep if keep is not None else out


def _surface_terms(order: int) -> list[tuple[int, int]]:
    """Exponents ``(i, j)`` of the monomials ``x**i * y**j`` with ``i + j <= order``."""
    return [(i, total - i) for total in range(order + 1) for i in range(total + 1)]


def level_frame(frame, order: int, keep=None, clip: float = 3.0, n_iter: int = 10):
    """Robust polynomial levelling of one ``(H, W)`` frame.

    Returns the levelled frame and the background pixels of the last fit
    (``(H, W)`` bool: within ``clip`` robust standard deviations of the
    surface, and in ``keep``).
    """
    h, w = frame.shape
    y, x = np.linspace(-1.0, 1.0, h), np.linspace(-1.0, 1.0, w)
    terms = _surface_terms(order)
    step = _stride(frame.shape)
    design = np.stack([np.outer(y[::step] ** j, x[::step] ** i).ravel() for i, j in terms], 1)
    sampled = frame[::step, ::step].ravel()
    allowed = np.ones_like(frame, dtype=bool) if keep is None else keep
    background = allowed
    residual = frame - np.median(frame[allowed]) if allowed.any() else frame.copy()
    for _ in range(n_iter):
        sel = background[::step, ::step].ravel()
        if sel.sum() <= 2 * len(terms):
            break  # too few background pixels left: keep the previous fit
        a = design[sel]
        coef = np.linalg.lstsq(a.T @ a, a.T @ sampled[sel], rcond=None)[0]  # normal equations
        surface = sum(c * np.outer(y**j, x**i) for c, (i, j) in zip(coef, terms, strict=True))
        residual = frame - surface
        new = inliers(residual, allowed, clip)
        if np.array_equal(new, background):
            break
        background = new
    return residual, background


def row_offsets(frame, background, method: str = "median") -> np.ndarray:
    """``(H,)`` height offset of every row of a levelled ``(H, W)`` frame.

    ``"median"``: the median of each row's background pixels (rows with fewer
    than ``W // 10`` background pixels use all their pixels). ``"median_diff"``:
    the cumulated medians of the differences between adjacent rows (over the
    pixels that are background in both rows), shifted so that the corrected
    background has median 0.
    """
    h, w = frame.shape
    if method == "median":
        enough = background.sum(axis=1) >= max(1, w // 10)
        masked = np.where(background, frame, np.nan)
        out = np.median(frame, axis=1)
        if enough.any():
            out[enough] = np.nanmedian(masked[enough], axis=1)
        return out
    if method == "median_diff":
        both = background[1:] & background[:-1]
        diff = np.diff(frame, axis=0)
        steps = np.median(diff, axis=1)
        enough = both.sum(axis=1) >= max(1, w // 10)
        if enough.any():
            steps[enough] = np.nanmedian(np.where(both, diff, np.nan)[enough], axis=1)
        out = np.concatenate([[0.0], np.cumsum(steps)])
        rest = (frame - out[:, None])[background] if background.any() else frame - out[:, None]
        return out + float(np.median(rest))
    raise ValueError(f"method: expected one of {SCAN_LINE_METHODS}, got {method!r}")


def level_plane(frames, order: int = 1, mask=None, *, clip: float = 3.0, n_iter: int = 10):
    """Subtract a robustly fitted polynomial background surface from every frame.

    The surface ``sum c_ij x**i y**j`` (``i + j <= order``, ``x`` and ``y``
    scaled to ``[-1, 1]``) is fitted by least squares to the background
    pixels, then refitted ``n_iter`` times at most, each time on the pixels
    within ``clip`` robust standard deviations (1.4826 MAD) of the current
    surface, until that set stops changing: particles, pits and spikes are
    excluded without a mask. Frames over 16,384 pixels are fitted on a
    strided subset of about that many pixels.

    Parameters
    ----------
    frames : array_like
        ``(T, H, W)`` heights (or one ``(H, W)`` frame), any unit; no NaN/Inf.
    order : int
        Polynomial order: 1 a plane (tilt), 2 quadratic (bow), 3 cubic; 0
        removes a robust constant offset only.
    mask : array_like of bool, optional
        ``(H, W)`` or ``(T, H, W)``; True marks pixels never used for the fit
        (known particles).
    clip : float
        Outlier cut in robust standard deviations (``> 0``).
    n_iter : int
        Most refits.

    Returns
    -------
    numpy.ndarray
        Same shape as ``frames``, heights relative to the fitted background
        (float32; float64 for float64 input).
    """
    arr, single = check_frames(frames)
    order = check_count(order, "order", low=0, high=3)
    clip = check_number(clip, "clip", low=0, low_open=True)
    n_iter = check_count(n_iter, "n_iter", low=1)
    keep = _check_mask(mask, arr.shape)
    out = np.empty_like(arr)
    for t, frame in enumerate(arr):
        k = None if keep is None else keep[t]
        out[t] = level_frame(frame, order, k, clip=clip, n_iter=n_iter)[0]
    return _output(out, frames, single)


def correct_scan_lines(frames, method: str = "median", mask=None, *, clip: float = 3.0):
    """Remove a height offset per scan line (row) from every frame.

    The offsets are estimated twice: from all pixels, then from the background
    pixels of the corrected frame (within ``clip`` robust standard deviations
    of its median, and outside ``mask``), so that particles do not shift their
    rows. Any smooth variation along ``y`` is removed with the offsets (a
    y-tilt included); tilt along ``x`` is left to :func:`level_plane`.

    Parameters
    ----------
    frames : array_like
        ``(T, H, W)`` heights (or one ``(H, W)`` frame), rows along ``W`` are
        the fast-scan lines; no NaN/Inf.
    method : {"median", "median_diff"}
        ``"median"``: subtract each row's median background height (robust,
        no drift between rows). ``"median_diff"``: align each row to the one
        above by the median of their differences (keeps smooth variation
        along ``y`` only up to the random walk of those medians).
    mask : array_like of bool, optional
        ``(H, W)`` or ``(T, H, W)``; True marks pixels never used (particles).
    clip : float
        Outlier cut in robust standard deviations (``> 0``).

    Returns
    -------
    numpy.ndarray
        Same shape as ``frames`` (float32; float64 for float64 input).
    """
    if method not in SCAN_LINE_METHODS:
        raise ValueError(f"method: expected one of {SCAN_LINE_METHODS}, got {method!r}")
    arr, single = check_frames(frames)
    clip = check_number(clip, "clip", low=0, low_open=True)
    keep = _check_mask(mask, arr.shape)
    out = np.empty_like(arr)
    for t, frame in enumerate(arr):
        allowed = np.ones(frame.shape, bool) if keep is None else keep[t]
        first = frame - row_offsets(frame, allowed, method)[:, None]
        background = inliers(first, allowed, clip)
        out[t] = frame - row_offsets(frame, background, method)[:, None]
    return _output(out, frames, single)


def _blocks(frames, size: int):
    """``(start, block)`` pairs of at most ``size`` frames (a 2-D frame is one block)."""
    if isinstance(frames, (list, tuple)):
        frames = np.asarray(frames)
    shape = tuple(getattr(frames, "shape", ()))
    if len(shape) != 3 or shape[0] == 0:
        yield 0, frames  # check_frames says what is wrong, or takes the single frame
        return
    for start in range(0, shape[0], size):
        yield start, frames[start : start + size]


def preprocess_afm(
    frames,
    *,
    order: int = 1,
    scan_lines: str | None = "median",
    mask=None,
    clip: float = 3.0,
    z_threshold: float = 3.5,
    block: int = 64,
):
    """Level, align scan lines and flag the frames dominated by scan artefacts.

    Per frame: a robust polynomial fit (:func:`level_plane`); with
    ``scan_lines``, the row offsets of the levelled frame on its background
    pixels (:func:`correct_scan_lines`), then the surface is refitted on the
    frame without those offsets (the background is found more cleanly once the
    lines are aligned) and the rows are aligned again. :func:`frame_quality`
    then scores the corrected frames (saturation on the input frames) against
    the whole movie. Frames are read and corrected ``block`` at a time, so a
    lazy movie (:func:`pyrolatent.io.movie_formats.open_movie`) is never held
    in float64 at once.

    Parameters
    ----------
    frames : array_like or LazyMovie
        ``(T, H, W)`` heights (or one ``(H, W)`` frame); no NaN/Inf. Anything
        with ``shape`` and ``frames[a:b]`` slicing is read block by block.
    order : int
        Surface order 0-3 (see :func:`level_plane`).
    scan_lines : {"median", "median_diff", None}
        Row-offset method (see :func:`correct_scan_lines`); None skips it.
    mask : array_like of bool, optional
        ``(H, W)`` or ``(T, H, W)``; True marks pixels never used for fitting.
    clip : float
        Outlier cut in robust standard deviations.
    z_threshold : float
        Robust z-score above which a quality metric flags a frame (see
        :func:`frame_quality`).
    block : int
        Frames corrected at a time.

    Returns
    -------
    corrected : numpy.ndarray
        Same shape as ``frames`` (float32; float64 for float64 input), heights
        relative to the background (background median about 0).
    quality : dict
        The per-frame table of :func:`frame_quality` (``frame``, metrics,
        robust z-scores, ``flag_*``, ``flagged``).
    """
    order = check_count(order, "order", low=0, high=3)
    clip = check_number(clip, "clip", low=0, low_open=True)
    block = check_count(block, "block", low=1)
    if scan_lines is not None and scan_lines not in SCAN_LINE_METHODS:
        raise ValueError(f"scan_lines: expected one of {SCAN_LINE_METHODS} or None")
    shape = tuple(getattr(frames, "shape", np.shape(frames)))
    if mask is not None and np.ndim(mask) == 3 and np.shape(mask) != shape:
        raise ValueError(f"mask: shape {np.shape(mask)} differs from the frames {shape}")
    outputs, metrics = [], []
    for start, part in _blocks(frames, block):
        arr, single = check_frames(part)
        m = mask if mask is None or np.ndim(mask) == 2 else np.asarray(mask)[start : start + block]
        keep = _check_mask(m, arr.shape)
        out = np.empty_like(arr)
        for t, frame in enumerate(arr):
            k = None if keep is None else keep[t]
            levelled, background = level_frame(frame, order, k, clip=clip)
            if scan_lines is not None:
                offsets = row_offsets(levelled, background, scan_lines)[:, None]
                levelled, background = level_frame(frame - offsets, order, k, clip=clip)
                levelled = levelled - row_offsets(levelled, background, scan_lines)[:, None]
            out[t] = levelled
        metrics.append(quality_metrics(out, raw=arr))
        outputs.append(_output(out, part, single))
    joined = {k: np.concatenate([m[k] for m in metrics]) for k in metrics[0]}
    quality = flag_frames(joined, z_threshold=z_threshold)
    return (outputs[0] if single else np.concatenate(outputs)), quality
