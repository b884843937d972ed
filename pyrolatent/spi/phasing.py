"""Phase retrieval of 2D or 3D diffraction intensities, and particle volumes.

Iterative projection algorithms recover a real, non-negative density ``rho``
inside a compact support from Fourier magnitudes ``|F(q)| = sqrt(I(q))``:

* error reduction (ER): ``rho <- P_S P_M rho``;
* the difference map (Elser 2003) with parameter ``beta``:
  ``rho <- rho + beta (P_M f_S(rho) - P_S f_M(rho))``,
  ``f_M = (1 + g_M) P_M - g_M``, ``f_S = (1 + g_S) P_S - g_S``,
  ``g_M = -1 / beta``, ``g_S = 1 / beta``; the estimate is ``P_S f_M(rho)``
  (``beta = 1`` gives Fienup's hybrid input-output in this form);
* shrink-wrap (Marchesini et al. 2003): every few iterations the support
  becomes the region where the Gaussian-blurred estimate exceeds a fraction of
  its maximum, with the blur narrowing over time.

``P_M`` replaces the Fourier magnitudes by the measured ones (where measured),
``P_S`` zeroes the density outside the support and clips negative values.
The solution is unique up to the trivial ambiguities: a shift and the
inversion ``rho(-x)`` (with complex conjugation); :func:`aligned_correlation`
scores a result modulo both.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from .._renamed import progress_from_quiet
from ..checks import as_tensor, check_count, check_finite, check_nonnegative, check_number

__all__ = ["aligned_correlation", "autocorrelation_support", "particle_volume", "phase_retrieval"]


def _check_intensity(intensity, name="intensity") -> torch.Tensor:
    x = as_tensor(intensity, name=name, dtype=torch.float64)
    if x.dim() not in (2, 3):
        raise ValueError(f"{name}: expected (S, S) or (S, S, S), got {tuple(x.shape)}")
    if len(set(x.shape)) != 1:
        raise ValueError(f"{name}: expected equal sides, got {tuple(x.shape)}")
    if x.shape[0] % 2 == 0:
        raise ValueError(f"{name}: size {x.shape[0]} is even; q = 0 must be the central voxel")
    check_finite(x, name)
    check_nonnegative(x, name, why="intensities are |F|^2")
    return x


def _dims(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(-x.dim(), 0))


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (periodic) through the FFT; ``sigma`` in voxels."""
    dims = _dims(x)
    out = torch.fft.fftn(x, dim=dims)
    for d in dims:
        n = x.shape[d]
        f = torch.fft.fftfreq(n, dtype=x.dtype, device=x.device)
        shape = [1] * x.dim()
        shape[d] = n
        out = out * torch.exp(-2 * (math.pi * sigma * f) ** 2).reshape(shape)
    return torch.fft.ifftn(out, dim=dims).real


def autocorrelation_support(intensity, threshold: float = 0.04, mask=None) -> torch.Tensor:
    """Support from the thresholded autocorrelation ``|IFFT(I)|`` (centred), a safe start.

    The autocorrelation of a density spans twice its support, so it always
    contains a shifted copy of the object.
    """
    x = _check_intensity(intensity)
    if mask is not None:
        x = x * as_tensor(mask, name="mask", dtype=torch.float64)
    dims = _dims(x)
    ac = torch.fft.fftshift(
        torch.fft.ifftn(torch.fft.ifftshift(x, dim=dims), dim=dims).abs(), dim=dims
    )
    return ac > threshold * ac.max()


def phase_retrieval(
    intensity,
    support=None,
    mask=None,
    n_iter: int = 400,
    n_er: int = 100,
    beta: float = 0.9,
    shrinkwrap_every: int = 20,
    shrinkwrap_threshold: float = 0.15,
    sigma_start: float = 2.0,
    sigma_end: float = 0.7,
    positivity: bool = True,
    seed: int = 0,
    progress: bool = True,
    *,
    quiet: bool | None = None,
) -> dict:
    """Recover a real-space density from a centred 2D or 3D intensity.

    Parameters
    ----------
    intensity : array_like
        ``(S, S)`` or ``(S, S, S)``, odd ``S``, ``q = 0`` at the centre (as from
        :func:`pyrolatent.data.synthetic.spi.intensity_volume`); non-negative.
    support : array_like of bool, optional
        Initial support, same shape, centred. Default: the autocorrelation support.
    mask : array_like of bool, optional
        True where the intensity is measured (e.g. outside a beamstop); the
        Fourier magnitudes elsewhere are left free.
    n_iter : int
        Difference-map iterations (with shrink-wrap).
    n_er : int
        Final error-reduction iterations (fixed support).
    beta : float
        Difference-map parameter (``beta = 1`` is Fienup's HIO-like variant).
    shrinkwrap_every : int
        Update the support every this many iterations (0 = never).
    shrinkwrap_threshold : float
        Support = blurred density above this fraction of its maximum.
    sigma_start, sigma_end : float
        Blur width (voxels) of shrink-wrap, decreasing geometrically.
    positivity : bool
        Clip negative density inside the support.
    seed : int
        Seed of the random starting phases.
    progress : bool
        Show a tqdm progress bar over iterations.
    quiet : bool, optional
        Deprecated: ``progress=not quiet``.

    Returns
    -------
    dict
        ``density`` (same shape, centred, real), ``support`` (bool), ``error``
        (final Fourier-magnitude error ``|| |F| - sqrt(I) || / || sqrt(I) ||``
        over measured pixels) and ``history`` (errors per iteration).
    """
    progress = progress_from_quiet(progress, quiet, where="phase_retrieval")
    x = _check_intensity(intensity)
    n_iter = check_count(n_iter, "n_iter", low=1)
    n_er = check_count(n_er, "n_er", low=0)
    beta = check_number(beta, "beta", low=0, high=2, low_open=True)
    shrinkwrap_every = check_count(shrinkwrap_every, "shrinkwrap_every", low=0)
    shrinkwrap_threshold = check_number(shrinkwrap_threshold, "shrinkwrap_threshold", low=0,
                                        high=1)  # fmt: skip
    sigma_start = check_number(sigma_start, "sigma_start", low=0)
    sigma_end = check_number(sigma_end, "sigma_end", low=0)
    dims = _dims(x)
    amp = torch.fft.ifftshift(x.sqrt(), dim=dims)
    if mask is None:
        centred_mask = torch.ones_like(x, dtype=torch.bool)
    else:
        centred_mask = as_tensor(mask, name="mask", dtype=None).bool()
        if tuple(centred_mask.shape) != tuple(x.shape):
            raise ValueError(
                f"mask: expected shape {tuple(x.shape)}, got {tuple(centred_mask.shape)}"
            )
    meas = torch.fft.ifftshift(centred_mask, dim=dims)
    if support is None:
        sup = autocorrelation_support(x, mask=centred_mask)
    else:
        sup = as_tensor(support, name="support", dtype=None).bool()
        if tuple(sup.shape) != tuple(x.shape):
            raise ValueError(f"support: expected shape {tuple(x.shape)}, got {tuple(sup.shape)}")
    sup = torch.fft.ifftshift(sup, dim=dims)
    gen = torch.Generator().manual_seed(int(seed))
    phases = 2 * math.pi * torch.rand(x.shape, generator=gen, dtype=torch.float64)
    rho = torch.fft.ifftn(amp * torch.exp(1j * phases), dim=dims).real * sup
    norm = float(amp[meas].norm())

    def p_m(r):
        f = torch.fft.fftn(r, dim=dims)
        mag = f.abs()
        f_new = torch.where(meas, amp * f / mag.clamp_min(1e-30), f)
        return torch.fft.ifftn(f_new, dim=dims).real

    def p_s(r):
        r = r * sup
        return r.clamp_min(0) if positivity else r

    def fourier_error(r):
        f = torch.fft.fftn(r, dim=dims).abs()
        return float((f - amp)[meas].norm()) / norm

    g_m, g_s = -1.0 / beta, 1.0 / beta
    history = []
    n_iter = int(n_iter)
    estimate = p_s(rho)
    for it in tqdm(range(n_iter + int(n_er)), disable=not progress, desc="phase retrieval"):
        if it < n_iter:
            pm = p_m(rho)
            ps = p_s(rho)
            f_m = (1 + g_m) * pm - g_m * rho
            f_s = (1 + g_s) * ps - g_s * rho
            ps_fm = p_s(f_m)
            rho = rho + beta * (p_m(f_s) - ps_fm)
            estimate = ps_fm
            if shrinkwrap_every and (it + 1) % shrinkwrap_every == 0:
                frac = it / max(n_iter - 1, 1)
                sigma = sigma_start * (sigma_end / sigma_start) ** frac
                blurred = _gaussian_blur(estimate, sigma)
                sup = blurred > shrinkwrap_threshold * blurred.max()
        else:
            if it == n_iter:
                rho = estimate
            rho = p_s(p_m(rho))
            estimate = rho
        history.append(fourier_error(estimate))
    density = torch.fft.fftshift(estimate, dim=dims)
    return {
        "density": density,
        "support": torch.fft.fftshift(sup, dim=dims),
        "error": history[-1] if history else fourier_error(estimate),
        "history": torch.tensor(history),
    }


def aligned_correlation(a, b) -> float:
    """Pearson correlation of two densities, maximised over shifts and inversion.

    Both are ``(S, S)`` or ``(S, S, S)``. Shifts are circular (integer voxels,
    found through an FFT cross-correlation); inversion is ``b(-x)``.
    """
    x = as_tensor(a, name="a", dtype=torch.float64)
    y = as_tensor(b, name="b", dtype=torch.float64)
    if x.shape != y.shape:
        raise ValueError(f"a, b: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    dims = _dims(x)
    x = x - x.mean()
    fx = torch.fft.fftn(x, dim=dims)
    best = -math.inf
    for cand in (y, y.flip(dims)):
        c = cand - cand.mean()
        xc = torch.fft.ifftn(fx * torch.fft.fftn(c, dim=dims).conj(), dim=dims).real
        best = max(best, float(xc.max()) / float(x.norm() * c.norm()))
    return best


def particle_volume(density, threshold: float = 1e-4, relative_to: str = "mass",
                    voxel_size: float = 1.0) -> float:  # fmt: skip
    """Volume of the voxels whose density exceeds a threshold.

    Parameters
    ----------
    density : array_like
        ``(S, S, S)`` (or 2D: an area) real-space density.
    threshold : float
        Fraction of the total mass (``relative_to="mass"``, the paper's 1e-4) or
        of the maximum (``relative_to="max"``).
    relative_to : {"mass", "max"}
    voxel_size : float
        Edge of a voxel in the output unit (the result is ``count * voxel_size**ndim``).

    Returns
    -------
    float
    """
    d = as_tensor(density, name="density", dtype=torch.float64)
    if d.dim() not in (2, 3):
        raise ValueError(f"density: expected a 2D or 3D array, got {tuple(d.shape)}")
    check_finite(d, "density")
    if relative_to == "mass":
        ref = float(d.clamp_min(0).sum())
    elif relative_to == "max":
        ref = float(d.max())
    else:
        raise ValueError(f"relative_to: expected 'mass' or 'max', got {relative_to!r}")
    return float((d > threshold * ref).sum()) * voxel_size ** d.dim()
