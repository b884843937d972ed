"""Which way up? Half-turn synchronisation of estimated particle angles.

A particle that is nearly, but not exactly, symmetric under a half-turn (a
handwritten 5 or 2 at low resolution, a heart against a spade) can be turned
the right way up or upside down by an rVAE's pose, and the angle posterior is
confidently wrong for part of the images: the template the decoder learns is a
compromise of both ways, and each image matches it best one way or the other.

:func:`half_turn_sync` decides the half-turn again from the images, given their
angles (right modulo pi) and, for mixed data, the particle type of each image.
Every image is turned back by its angle about its centre of mass, so it is
upright or upside down. Its antisymmetric part ``a = x - rot180(x)`` changes
sign under a half-turn, so the ``a`` of one particle type are ``+m`` or ``-m``
plus the variation between particles. They are fitted by a two-component
Gaussian mixture with the components at ``+m`` and ``-m``, equal weights and one
shared covariance ``S`` (on the leading principal components of ``a``), by EM
from several starts; the best log-likelihood wins. This is Fisher's linear
discriminant ``S^-1 m`` learned without labels (Z2 synchronisation with
whitening): the direction that separates the two ways up, not the direction in
which particles vary most, decides, which is what a plain template match (or
spectral synchronisation of the raw correlations) gets wrong for such particles.

One particle type often comes in a few styles (a 2 with or without a loop)
whose antisymmetric parts split the mixture the wrong way. Each group is
therefore also cut into ``K`` styles by k-means on the symmetric parts
``x + rot180(x)`` (which do not change under a half-turn); each style is
synchronised alone, and the styles are joined along a maximum spanning tree
of the similarity of their upright means (``corr(m_i, m_j) - corr(m_i,
rot180(m_j))``), as the particles of one type look more alike the same way
up. The fits for every ``K`` in ``styles`` and every number of principal
components in ``components`` vote, each image taking the majority.

The decision is relative: the way up that most images of a group already had
is kept, the others are turned by pi.
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import as_array, as_images, check_count, check_number
from ..primitives import centre_of_mass, warp_images
from .clustering import kmeans

__all__ = ["half_turn_sync", "upright_parts"]

#: Longest image side used (larger stacks are block-averaged down to it first).
MAX_SIDE = 64
#: Images turned back at once.
CHUNK = 4096
#: Principal components of the symmetric parts that styles are clustered on.
STYLE_COMPONENTS = 10
#: Numbers of principal components of the antisymmetric parts tried by default.
COMPONENTS = (4, 5, 6, 7, 8, 9, 10)
#: Fewest images per style on average (fewer styles are used for small groups).
MIN_STYLE = 20


def _upright(images, angles) -> torch.Tensor:
    """Images ``(N, H', W')`` turned back by their angles about their centres of mass."""
    x = as_images(images)
    a = torch.as_tensor(as_array(angles, name="angles", ndim=(1,)), dtype=torch.float32)
    if len(a) != len(x):
        raise ValueError(f"angles: {len(a)} values for {len(x)} images")
    factor = -(-max(x.shape[-2:]) // MAX_SIDE)
    if factor > 1:
        x = torch.nn.functional.avg_pool2d(x[:, None], factor, ceil_mode=True)[:, 0]
    out = []
    for start in range(0, len(x), CHUNK):
        t = x[start : start + CHUNK]
        t = warp_images(t, offset=-centre_of_mass(t))
        t = warp_images(t, angle=-a[start : start + CHUNK])
        out.append(warp_images(t, offset=-centre_of_mass(t)))
    return torch.cat(out)


def upright_parts(images, angles) -> np.ndarray:
    """Antisymmetric parts ``x - rot180(x)`` of images turned back by their angles.

    Each image is moved onto its centre of mass, turned by ``-angle`` and
    centred again, so an image whose angle is right modulo pi is upright or
    upside down; its half-turn about the image centre then flips the sign of
    the result.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)``; stacks with a side above :data:`MAX_SIDE` are block-averaged.
    angles : array_like
        ``(N,)`` radians, counter-clockwise as displayed (the convention of
        :func:`pyrolatent.primitives.warp_images` and of the rVAE's ``encode``).

    Returns
    -------
    numpy.ndarray
        ``(N, H' * W')`` float64.
    """
    t = _upright(images, angles)
    return (t - torch.rot90(t, 2, dims=(-2, -1))).flatten(1).double().numpy()


def _em(y: np.ndarray, s: np.ndarray, ridge: float, iterations: int = 300):
    """EM of the symmetric mixture from the soft signs ``s``; (signs, log-lik, separation)."""
    n, d = y.shape
    second = y.T @ y / n
    floor = ridge * np.trace(second) / d * np.eye(d)
    for _ in range(iterations):
        mean = (s[:, None] * y).mean(0)
        cov = second - np.outer(mean, mean) + floor
        w = np.linalg.solve(cov, mean)
        new = np.tanh(y @ w)
        done = np.abs(new - s).max() < 1e-7
        s = new
        if done:
            break
    _, logdet = np.linalg.slogdet(cov)
    quad = np.einsum("ij,ij->i", y, np.linalg.solve(cov, y.T).T) + mean @ w
    loglik = float(np.sum(np.logaddexp(y @ w, -(y @ w)) - 0.5 * quad) - 0.5 * n * logdet)
    return y @ w, loglik, float(2 * np.sqrt(max(mean @ w, 0.0)))


def _leading(x: np.ndarray, d: int) -> np.ndarray:
    """Scores ``(n, d)`` of rows ``x (n, P)`` on their ``d`` leading (uncentred) principal axes."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) <= x.shape[1]:
        vals, vecs = np.linalg.eigh(x @ x.T)
        return vecs[:, ::-1][:, :d] * np.sqrt(np.clip(vals[::-1][:d], 0, None))
    _, vecs = np.linalg.eigh(x.T @ x)
    return x @ vecs[:, ::-1][:, :d]


def _mixture_signs(y: np.ndarray, ridge: float, starts: int, rng):
    """``(score (n,), separation)`` of the symmetric mixture on principal scores ``y (n, d)``."""
    n, d = y.shape
    if d < 1 or not np.any(y):  # no antisymmetric part: nothing to decide
        return np.ones(n), 0.0
    inits = [np.ones(n)] + [np.sign(y[:, j] + 1e-12) for j in range(min(d, 5))]
    inits += [rng.choice([-1.0, 1.0], n) for _ in range(starts)]
    score, _, separation = max((_em(y, s0, ridge) for s0 in inits), key=lambda r: r[1])
    return score, separation


def _link(means: np.ndarray) -> np.ndarray:
    """Signs ``(K,)`` joining the styles' upright means ``(K, h, w)`` (maximum spanning tree)."""

    def unit(m):
        m = m.reshape(len(m), -1) - m.reshape(len(m), -1).mean(1, keepdims=True)
        return m / np.linalg.norm(m, axis=1, keepdims=True).clip(1e-12)

    f, r = unit(means), unit(means[:, ::-1, ::-1])
    sim = f @ f.T - f @ r.T
    sign = np.zeros(len(means))
    sign[0] = 1.0
    while (sign == 0).any():
        weight = np.abs(sim) * (sign != 0)[:, None] * (sign == 0)[None, :]
        i, j = np.unravel_index(weight.argmax(), weight.shape)
        sign[j] = sign[i] * (1.0 if sim[i, j] >= 0 else -1.0)
    return sign


def _sync_group(upright: np.ndarray, styles, components, ridge: float, starts: int, rng,
                generator: torch.Generator):  # fmt: skip
    """``(votes (fits, n) of +-1, separations)`` of one group's upright images ``(n, h, w)``."""
    n = len(upright)
    turned = upright[:, ::-1, ::-1]
    anti = (upright - turned).reshape(n, -1)
    sym = (upright + turned).reshape(n, -1)
    features = _leading(sym - sym.mean(0), min(STYLE_COMPONENTS, n))
    votes, separations = [], []
    for k in styles:
        k = max(1, min(int(k), n // MIN_STYLE))
        labels = np.zeros(n, dtype=int)
        if k > 1:
            labels = kmeans(torch.as_tensor(features), k, generator, n_iter=100).numpy()
        present = np.unique(labels)
        scores = {}
        for j in present:
            part = anti[labels == j]
            scores[j] = _leading(part, min(max(components), len(part) - 1, part.shape[1]))
        for d in components:
            score, seps = np.ones(n), []
            for j in present:
                keep = labels == j
                score[keep], sep = _mixture_signs(scores[j][:, :d], ridge, starts, rng)
                seps.append((keep.mean(), sep))
            sign = np.where(score >= 0, 1.0, -1.0)
            up = np.where(sign[:, None, None] > 0, upright, turned)
            joined = _link(np.stack([up[labels == j].mean(0) for j in present]))
            sign = sign * joined[np.searchsorted(present, labels)]
            votes.append(sign if not votes or (sign * votes[0]).mean() >= 0 else -sign)
            separations.append(sum(w * v for w, v in seps))
    return np.stack(votes), separations


def half_turn_sync(images, angles, groups=None, *, styles=(1, 2, 3), components=COMPONENTS,
                   ridge: float = 0.01, starts: int = 10, seed: int = 0) -> dict:  # fmt: skip
    """Decide the half-turn of every image again (see the module docstring).

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` particle images (sides above :data:`MAX_SIDE` are
        block-averaged; peak memory about ``40 N H' W'`` bytes).
    angles : array_like
        ``(N,)`` radians, right modulo pi (e.g. ``RVAE.encode(images)["angle"]["loc"]``).
    groups : array_like, optional
        ``(N,)`` particle type of each image (labels, classes or clusters).
        Types are synchronised separately. Default: one group; then pass more
        ``styles`` (e.g. ``(5, 8, 12)``) if several types are mixed.
    styles : sequence of int
        Numbers of styles each group is cut into (one fit per value).
    components : sequence of int
        Principal components of the antisymmetric parts the mixture is fitted
        on (one fit per value).
    ridge : float
        Added to the shared covariance's diagonal, as a fraction of its mean
        variance (> 0).
    starts : int
        Random starts of EM besides the given half-turns and the signs of the
        leading components.
    seed : int
        Seed of the random starts and of k-means (a local generator).

    Returns
    -------
    dict
        ``angles`` ``(N,)`` radians in ``(-pi, pi]``, turned by pi where
        ``turned``; ``turned`` ``(N,)`` bool; ``agreement`` ``(N,)`` the share
        of the fits that voted for the way up returned (0.5-1);
        ``groups``: per group ``{"group", "count", "turned_fraction",
        "separation"}``, the separation being the median over the fits of the
        distance between the two ways up in units of the shared spread,
        ``2 sqrt(m' S^-1 m)`` (51 for 300 L shapes, 3.5 for 300 bars, which
        look the same either way up).
    """
    a = as_array(angles, name="angles", ndim=(1,))
    upright = _upright(images, a).numpy()
    g = np.zeros(len(a), dtype=int) if groups is None else np.asarray(groups)
    if g.shape != a.shape:
        raise ValueError(f"groups: expected shape {a.shape}, got {g.shape}")
    styles = [check_count(k, "styles") for k in np.atleast_1d(styles)]
    components = [check_count(d, "components") for d in np.atleast_1d(components)]
    starts = check_count(starts, "starts", low=0)
    ridge = check_number(ridge, "ridge", low=0.0, low_open=True)
    rng = np.random.default_rng(int(seed))
    generator = torch.Generator().manual_seed(int(seed))
    vote, report = np.zeros(len(a)), []
    for label in np.unique(g):
        keep = g == label
        votes, separations = _sync_group(
            upright[keep], styles, components, ridge, starts, rng, generator
        )
        mean = votes.mean(0)
        if (mean < 0).sum() > keep.sum() / 2:  # keep the way up most images already had
            mean = -mean
        vote[keep] = mean
        report.append({
            "group": label.item() if hasattr(label, "item") else label,
            "count": int(keep.sum()),
            "turned_fraction": float((mean < 0).mean()),
            "separation": float(np.median(separations)),
        })  # fmt: skip
    turned = vote < 0
    out = np.angle(np.exp(1j * (a + np.pi * turned)))
    return {"angles": out, "turned": turned, "agreement": 0.5 + np.abs(vote) / 2, "groups": report}
