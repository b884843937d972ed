"""Does a movie change regime? One regime against one change, with a calibrated threshold.

:func:`detect_transition` works on a per-frame feature matrix ``(T, G)``: a
latent KDE per frame (rows of :func:`~pyrolatent.analysis.kde.latent_kde_over_time`)
or any per-frame histogram. It answers "no transition" unless the data support
one.

Model and test (stated once):

1. Each row is normalised to sum 1 (frames with no mass are left out); the rows
   are centred and projected on their leading principal components (enough for
   ``variance_kept`` of the variance, at most ``max_components``), each scaled to
   unit variance.
2. "One regime": every component is a stationary AR(1) series about a constant.
   "A change": the constant steps at frame ``tau``. The statistic is the largest
   CUSUM over ``tau`` (``margin`` frames from either end),
   ``S(tau) = sum_j C_j(tau)^2 / (T * lrv_j)``, with ``C_j`` the cumulative sum of
   component ``j`` about its mean and ``lrv_j = s_j^2 / (1 - phi_j)^2`` its
   long-run variance; ``phi_j`` (with Kendall's small-sample bias correction)
   and the innovation variance ``s_j^2`` are fitted to the residuals of the best
   "constant, ramp of at most ``max_ramp`` frames, constant" model, so a real
   change does not pass for slow drift.
3. The threshold is the ``1 - false_alarm`` quantile of the statistic over
   ``n_null`` series simulated from the fitted one-regime model, each put
   through the same estimation (parametric bootstrap of the whole procedure),
   which calibrates the false-alarm rate for this movie's length and time
   correlation.
4. When the statistic exceeds it, the transition frame is the onset of the
   fitted ramp (the first frame that leaves the "before" level, as in
   :func:`~pyrolatent.analysis.transitions.transition_frame`), and its interval
   the 5-95 % range of the onset re-fitted on series simulated from the fitted
   ramp model plus AR(1) noise.

Measured false-alarm rates: 0 of 10 synthetic self-assembly movies without a
transition (60 frames, through label-free particles and a 15-epoch rVAE, with the
particles cut by the frame edge left out as the workflow does; p-values 0.003-0.62,
the 0.003 from frame 0 alone, which step 5 sets aside) at the default
``false_alarm=0.01``, while 9 of 10 planted transitions were found within 2 frames
of their onset; the tenth, with 49 % of its detections cut by the edge, gave p 0.017
(``benchmarks/transitions.py``, 2026-12-07; with the cut particles, 1 of 10 false
alarms, from their head/tail flips, and 10 of 10 planted); 4 of 100 series that
follow the one-regime model at ``false_alarm=0.05``
(``tests/test_change_detection.py``). The p-values
of the movies lean low, so treat the nominal rate as a lower bound on real data.
Use one KDE row per frame (``window=1``): pooled rows are correlated over the
window, which the AR(1) model only partly absorbs.

5. One frame is not a regime: a change is reported only if the test, repeated
   without the frame that stands out most from its neighbours (the largest
   distance between its normalised row and the median of the rows of frames
   ``t - 2 .. t + 2``), finds it too. On trackpy's bulk-water movie (30 frames
   of round colloids, no transition) the first frame alone made the test reject
   (p = 0.005, a "transition" at frame 7); without it p = 0.35. A median of five
   frames follows a step, so the frames next to a real change do not stand out.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["detect_transition"]


def _components(x, variance_kept, max_components):
    """Unit-variance principal-component scores ``(T, k)`` of the row-normalised matrix."""
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    if var.sum() <= 0:
        return np.zeros((len(x), 0))
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), variance_kept) + 1)
    k = max(1, min(k, max_components, len(s)))
    scores = u[:, :k] * s[:k]
    sd = scores.std(axis=0)
    keep = sd > 0
    return scores[:, keep] / sd[keep]


def _isolated_row(dens, window: int = 5, block: int = 2048) -> int:
    """Row of ``dens (T, G)`` farthest from the median of its ``window`` neighbours (ends cut).

    Worked in blocks of ``block`` rows, so memory stays near ``block * G * window``
    floats for any movie length (10^4 frames of 180 grid points at once: 314 MB).
    """
    h = window // 2
    padded = np.pad(dens, ((h, h), (0, 0)), constant_values=np.nan)
    dist = np.empty(len(dens))
    for start in range(0, len(dens), block):
        stop = min(start + block, len(dens))
        near = sliding_window_view(padded[start : stop + 2 * h], window, axis=0)
        dist[start:stop] = np.linalg.norm(dens[start:stop] - np.nanmedian(near, axis=-1), axis=1)
    return int(np.argmax(dist))


def _cusum(z, margin):
    """``(T - 1, k)`` CUSUMs ``C(tau)`` for a split before frame ``tau = 1..T-1``."""
    c = np.cumsum(z - z.mean(axis=-2, keepdims=True), axis=-2)[..., :-1, :]
    t = z.shape[-2]
    taus = np.arange(1, t)
    inside = (taus >= margin) & (taus <= t - margin)
    return c, taus, inside


def _statistic(z, lrv, margin):
    """Max over tau of the CUSUM statistic, and its argmax (``tau``)."""
    c, taus, inside = _cusum(z, margin)
    s = (c**2 / (z.shape[-2] * lrv)).sum(axis=-1)
    s = np.where(inside, s, -np.inf)
    best = np.argmax(s, axis=-1)
    return np.take_along_axis(s, best[..., None], axis=-1)[..., 0], taus[best]


def _ar1(resid, phi_max=0.95):
    """AR(1) coefficient (Kendall's bias correction) and innovation variance per series.

    ``resid`` is ``(..., T, k)``; returns two ``(..., k)`` arrays.
    """
    t = resid.shape[-2]
    a, b = resid[..., :-1, :], resid[..., 1:, :]
    phi = (a * b).sum(axis=-2) / np.maximum((a * a).sum(axis=-2), 1e-12)
    phi = np.clip(phi + (1 + 3 * phi) / t, -phi_max, phi_max)
    innov = b - phi[..., None, :] * a
    return phi, np.maximum(innov.var(axis=-2), 1e-12)


def _ramp_fit(z, margin, max_ramp):
    """Best "constant, linear ramp, constant" mean of ``(..., T, k)`` series (least squares)."""
    t = z.shape[-2]
    time = np.arange(t, dtype=np.float64)
    pairs = [
        (t1, t2)
        for t1 in range(margin, t - margin + 1)
        for t2 in range(t1, min(t1 + max_ramp, t - 1) + 1)
    ]
    t1, t2 = np.asarray(pairs, dtype=np.float64).T
    # 0 before t1, 1 from t2 on, linear in between (t2 == t1 is a step)
    ramps = np.clip((time[None] - t1[:, None] + 1) / (t2 - t1 + 1)[:, None], 0, 1)  # (P, T)
    sr, srr = ramps.sum(1), (ramps**2).sum(1)  # (P,)
    sy, syy = z.sum(-2), (z**2).sum(-2)  # (..., k)
    sry = np.einsum("pt,...tk->...pk", ramps, z)  # (..., P, k)
    det = np.maximum(t * srr - sr**2, 1e-12)[:, None]
    a = (srr[:, None] * sy[..., None, :] - sr[:, None] * sry) / det
    b = (t * sry - sr[:, None] * sy[..., None, :]) / det
    sse = (syy[..., None, :] - a * sy[..., None, :] - b * sry).sum(-1)  # (..., P)
    best = np.argmin(sse, axis=-1)
    pick = best[..., None, None]
    a_best = np.take_along_axis(a, pick, axis=-2)  # (..., 1, k)
    b_best = np.take_along_axis(b, pick, axis=-2)
    return a_best + ramps[best][..., :, None] * b_best, t1[best].astype(np.int64)


def _procedure(z, margin, max_ramp, phi_max):
    """The whole test on ``(..., T, k)`` series: statistic, ``tau`` and the AR(1) fit.

    The long-run variance comes from AR(1) residuals about the best
    constant-ramp-constant model (a real change, sudden or over a few frames,
    is not mistaken for slow drift); simulated series go through the same
    steps, so the threshold includes the estimation's effects.
    """
    fitted, onset = _ramp_fit(z, margin, max_ramp)
    phi, s2 = _ar1(z - fitted, phi_max)
    lrv = (s2 / (1 - phi) ** 2)[..., None, :]
    stat, _ = _statistic(z, lrv, margin)
    return stat, onset, phi, s2, fitted


def _simulate_ar1(rng, phi, s2, n, t):
    """``(n, t, k)`` stationary AR(1) series."""
    k = len(phi)
    e = rng.standard_normal((n, t, k)) * np.sqrt(s2)
    z = np.empty((n, t, k))
    z[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for i in range(1, t):
        z[:, i] = phi * z[:, i - 1] + e[:, i]
    return z


def detect_transition(
    kde_matrix,
    frame_times=None,
    *,
    false_alarm: float = 0.01,
    margin: int = 3,
    max_ramp: int = 15,
    max_correlation: float = 5.0,
    variance_kept: float = 0.9,
    max_components: int = 5,
    n_null: int = 1000,
    n_location: int = 200,
    seed: int = 0,
    isolated: bool = True,
) -> dict:
    """Test "one regime" against "one change" on a per-frame feature matrix.

    Parameters
    ----------
    kde_matrix : array_like
        ``(T, G)`` non-negative per-frame densities or histograms (e.g. a latent
        KDE per frame); rows with zero sum (frames without particles) are left out.
    frame_times : array_like, optional
        ``(T,)`` time of each row (seconds, or frame numbers); default ``0..T-1``.
        The returned ``time`` and ``time_interval`` use it.
    false_alarm : float
        Probability of reporting a transition in a movie of one regime (the
        threshold's level, calibrated by simulation for this movie).
    margin : int
        A change must leave at least this many frames on either side.
    max_ramp : int
        Longest change (frames) the noise model allows for when it fits the
        residuals (a change may be gradual).
    max_correlation : float
        Longest correlation time (frames) of the one-regime fluctuations: the
        AR(1) coefficient is at most ``exp(-1 / max_correlation)``. Slower
        "fluctuations" are what a change is.
    variance_kept : float
        Fraction of the variance kept by the principal components.
    max_components : int
        At most this many components are tested.
    n_null, n_location : int
        Simulated series for the threshold and for the frame interval.
    seed : int
        Seed of the ``numpy.random.default_rng`` used for the simulations.
    isolated : bool
        Repeat the test without the frame that stands out most from its
        neighbours (step 5 of the module docstring) and report a change only
        if both reject.

    Returns
    -------
    dict
        ``transition`` (bool); ``frame`` (int row index of the first frame of the
        new regime, or None); ``interval`` (``(lo, hi)`` 5-95 % frames, or None);
        ``time`` and ``time_interval`` (the same in ``frame_times`` units, or None);
        ``statistic`` (the max CUSUM), ``threshold`` (its ``1 - false_alarm``
        null quantile), ``p_value`` (fraction of null series at least as large),
        ``false_alarm``, ``n_components`` and ``best_frame`` (the fitted onset, reported
        even when not significant); with ``isolated``, also ``isolated_frame`` (that
        frame's ``frame_times`` value, or None when the test did not reject or too
        few frames are left) and ``p_value_without_isolated`` (the repeated test's).

    Raises
    ------
    ValueError
        Not 2-D, negative or non-finite values, fewer than ``2 * margin + 2``
        frames with mass, or ``false_alarm`` outside ``(0, 1)``.
    """
    x = np.asarray(kde_matrix, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"kde_matrix: expected (T, G), got shape {x.shape}")
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("kde_matrix: must be finite and non-negative")
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm}")
    times = np.arange(len(x), dtype=np.float64) if frame_times is None else np.asarray(frame_times)
    if times.shape != (len(x),):
        raise ValueError(f"frame_times: expected shape ({len(x)},), got {times.shape}")
    rows = np.flatnonzero(x.sum(axis=1) > 0)
    if len(rows) < 2 * margin + 2:
        raise ValueError(f"need at least {2 * margin + 2} frames with mass, got {len(rows)}")
    dens = x[rows] / x[rows].sum(axis=1, keepdims=True)
    z = _components(dens, variance_kept, max_components)
    t = len(z)
    rng = np.random.default_rng(seed)
    out = {"false_alarm": false_alarm, "n_components": int(z.shape[1])}
    if z.shape[1] == 0:
        return {
            **out,
            **dict.fromkeys(("frame", "interval", "time", "time_interval", "best_frame")),
            "transition": False,
            "statistic": 0.0,
            "threshold": 0.0,
            "p_value": 1.0,
        }
    phi_max = float(np.exp(-1.0 / max_correlation))
    stat, tau, phi, s2, fitted = _procedure(z, margin, max_ramp, phi_max)
    null_stat = np.concatenate(
        [
            _procedure(_simulate_ar1(rng, phi, s2, 100, t), margin, max_ramp, phi_max)[0]
            for _ in range(int(np.ceil(n_null / 100)))
        ]
    )
    threshold = float(np.quantile(null_stat, 1 - false_alarm))
    transition = bool(stat > threshold)
    out.update(
        transition=transition,
        statistic=float(stat),
        threshold=threshold,
        p_value=float((null_stat >= stat).mean()),
        best_frame=int(rows[tau]),
    )
    if isolated:
        out.update(isolated_frame=None, p_value_without_isolated=None)
    if isolated and transition and len(rows) > 2 * margin + 2:
        row = rows[_isolated_row(dens)]
        without = x.copy()
        without[row] = 0.0  # rows without mass are left out
        again = detect_transition(
            without,
            times,
            false_alarm=false_alarm,
            margin=margin,
            max_ramp=max_ramp,
            max_correlation=max_correlation,
            variance_kept=variance_kept,
            max_components=max_components,
            n_null=n_null,
            n_location=n_location,
            seed=seed,
            isolated=False,
        )
        transition = again["transition"]
        out.update(transition=transition, isolated_frame=times[row].item(),
                   p_value_without_isolated=again["p_value"])  # fmt: skip
    if not transition:
        out.update(frame=None, interval=None, time=None, time_interval=None)
        return out
    sims = fitted + _simulate_ar1(rng, phi, s2, n_location, t)
    taus = _procedure(sims, margin, max_ramp, phi_max)[1]
    lo, hi = np.quantile(taus, [0.05, 0.95])
    interval = (int(rows[int(np.floor(lo))]), int(rows[min(int(np.ceil(hi)), t - 1)]))
    out.update(
        frame=int(rows[tau]),
        interval=interval,
        time=float(times[rows[tau]]),
        time_interval=(float(times[interval[0]]), float(times[interval[1]])),
    )
    return out
