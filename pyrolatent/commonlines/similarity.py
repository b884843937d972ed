"""Common-line similarity matrix as blocked matrix products.

For patterns ``i`` and ``j`` with normalised line profiles ``X_i`` and ``X_j``
(``(L, P)``, zero mean and unit norm per line), the correlation of line ``a``
of ``i`` with line ``b`` of ``j`` is ``X_i[a] . X_j[b]``. Stacking all profiles
as the rows of one ``(N L, P)`` matrix ``X``, every such correlation is an entry
of ``X X^T``; the similarity of a pair is the maximum over its ``(L, L)`` block.
The matrix product is computed block by block (``block_size`` patterns at a
time), so memory stays at ``O((block_size L)^2)`` whatever ``N`` is, and only
the blocks on and above the diagonal are computed when the matrix is square.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..device import resolve_device
from .profiles import line_angles, profiles_of

__all__ = ["CommonLineSimilarity", "profile_similarity", "similarity_matrix"]

#: the profile length is zero-padded to a multiple of this for faster matmuls
_PAD = 16


@dataclass
class CommonLineSimilarity:
    """Result of :func:`similarity_matrix`.

    Attributes
    ----------
    similarity : torch.Tensor
        ``(N, M)`` maximum correlation coefficient over line pairs.
    angle : torch.Tensor
        ``(N, M)`` radians in ``[0, pi)``: the line of pattern ``i`` in its best
        pair with pattern ``j``.
    angle_other : torch.Tensor
        ``(N, M)`` radians: the line of pattern ``j`` in that pair. For a
        square (self-)similarity this is ``angle.T``.
    n_angles : int
        Number of lines ``L`` per pattern; the angular step is ``pi / L``.
    """

    similarity: torch.Tensor
    angle: torch.Tensor
    angle_other: torch.Tensor
    n_angles: int


def _pad_profiles(profiles: torch.Tensor) -> torch.Tensor:
    p = profiles.shape[-1]
    extra = (-p) % _PAD
    if extra == 0:
        return profiles.contiguous()
    return torch.nn.functional.pad(profiles, (0, extra)).contiguous()


def profile_similarity(
    profiles: torch.Tensor,
    other: torch.Tensor | None = None,
    block_size: int = 4,
    return_indices: bool = False,
    progress: bool = False,
):
    """Maximum line-pair correlation from normalised profiles.

    Parameters
    ----------
    profiles : torch.Tensor
        ``(N, L, P)`` zero-mean, unit-norm profiles
        (:func:`~pyrolatent.commonlines.profiles.line_profiles` with ``normalize=True``).
    other : torch.Tensor, optional
        ``(M, L, P)`` profiles of a second set; default ``profiles`` itself,
        in which case the result is exactly symmetric.
    block_size : int
        Patterns per block; each block product is ``(block_size L)^2`` floats.
    return_indices : bool
        Also return the best line indices.
    progress : bool
        Show a tqdm progress bar over the row blocks.

    Returns
    -------
    similarity : torch.Tensor
        ``(N, M)``.
    index, index_other : torch.Tensor
        ``(N, M)`` int64 line indices, only when ``return_indices``.
    """
    if profiles.dim() != 3:
        raise ValueError(f"profiles: expected (N, L, P), got {tuple(profiles.shape)}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    square = other is None
    if square:
        other = profiles
    elif other.dim() != 3 or other.shape[1:] != profiles.shape[1:]:
        raise ValueError(
            f"other: expected profiles of shape (M, {profiles.shape[1]}, {profiles.shape[2]}), "
            f"got {tuple(other.shape)}"
        )
    n, n_lines, _ = profiles.shape
    m = other.shape[0]
    a_rows = _pad_profiles(profiles).reshape(n * n_lines, -1)
    b_rows = a_rows if square else _pad_profiles(other).reshape(m * n_lines, -1)
    b_rows_t = b_rows.t()
    sim = profiles.new_zeros(n, m)
    idx_a = torch.zeros(n, m, dtype=torch.long, device=profiles.device)
    idx_b = torch.zeros(n, m, dtype=torch.long, device=profiles.device)
    # one reused buffer per block product: a fresh multi-megabyte tensor per block
    # costs as much in allocation and page faults as the product itself
    block_rows = block_size * n_lines
    cc_buffer = a_rows.new_empty(block_rows * block_rows)
    best_buffer = a_rows.new_empty(block_size * n_lines * block_size)
    starts = range(0, n, block_size)
    for i0 in tqdm(starts, desc="common lines", disable=not progress, leave=False):
        i1 = min(i0 + block_size, n)
        rows = a_rows[i0 * n_lines : i1 * n_lines]
        for j0 in range(i0 if square else 0, m, block_size):
            j1 = min(j0 + block_size, m)
            cols = b_rows_t[:, j0 * n_lines : j1 * n_lines]
            cc = cc_buffer[: rows.shape[0] * cols.shape[1]].view(rows.shape[0], cols.shape[1])
            torch.mm(rows, cols, out=cc)
            cc = cc.view(i1 - i0, n_lines, j1 - j0, n_lines)
            best_b = best_buffer[: (i1 - i0) * n_lines * (j1 - j0)].view(i1 - i0, n_lines, j1 - j0)
            torch.amax(cc, dim=-1, out=best_b)  # (bi, L, bj)
            if return_indices:
                best, arg_a = best_b.max(dim=1)  # (bi, bj)
                # the winning line of i, then the argmax over the lines of j on that row only
                rows_ab = cc.permute(0, 2, 1, 3).gather(
                    2, arg_a.reshape(i1 - i0, j1 - j0, 1, 1).expand(-1, -1, 1, n_lines)
                )
                idx_a[i0:i1, j0:j1] = arg_a
                idx_b[i0:i1, j0:j1] = rows_ab.squeeze(2).argmax(dim=-1)
            else:
                best = best_b.amax(dim=1)
            sim[i0:i1, j0:j1] = best
    if square:
        upper = torch.ones(n, n, dtype=torch.bool, device=sim.device).triu()
        sim = torch.where(upper, sim, sim.t())
        if return_indices:
            idx_a, idx_b = (
                torch.where(upper, idx_a, idx_b.t()),
                torch.where(upper, idx_b, idx_a.t()),
            )
    if return_indices:
        return sim, idx_a, idx_b
    return sim


def similarity_matrix(
    patterns,
    other=None,
    n_angles: int = 180,
    mask_radius: float = 2.0,
    max_radius: float | None = None,
    log: bool = False,
    log_floor: float = 1e-3,
    block_size: int = 4,
    friedel: bool = False,
    progress: bool = True,
    device=None,
) -> CommonLineSimilarity:
    """Common-line similarity of every pair of patterns.

    The similarity of patterns ``i`` and ``j`` is the largest Pearson
    correlation between a line profile of ``i`` and a line profile of ``j``
    (lines through the centre, see :mod:`pyrolatent.commonlines.profiles`).

    Parameters
    ----------
    patterns : array_like or frame source
        ``(N, S, S)`` patterns, ``N >= 2`` unless ``other`` is given; or frames
        read from disk block by block (an ``EMCFile``, ``CXIFrames`` or
        ``PhotonFrames`` of square frames, see :func:`~.profiles.profiles_of`).
    other : array_like or frame source, optional
        ``(M, S, S)`` second set; the result is then the ``(N, M)`` cross
        similarity (used for out-of-sample projection).
    n_angles : int
        Lines per pattern over ``[0, pi)``; the angular step is ``pi / n_angles``.
    mask_radius, max_radius, log, log_floor
        See :func:`~pyrolatent.commonlines.profiles.line_profiles`.
    block_size : int
        Patterns per block of the matrix product (memory ``~ 4 (block_size L)^2`` bytes).
    friedel : bool
        Correlate Friedel-averaged half-lines (half the work; exact for
        centrosymmetric patterns), see
        :func:`~pyrolatent.commonlines.profiles.line_profiles`.
    progress : bool
        Show a tqdm progress bar.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.

    Returns
    -------
    CommonLineSimilarity
        Symmetric ``similarity`` with ones on the diagonal when ``other`` is None,
        plus the best line angles of each pair.
    """
    device = resolve_device(device)
    opts = dict(
        n_angles=n_angles, mask_radius=mask_radius, max_radius=max_radius,
        log=log, log_floor=log_floor, normalize=True, friedel=friedel, device=device,
    )  # fmt: skip
    prof, size = profiles_of(patterns, min_count=1 if other is not None else 2, **opts)
    prof_other = None
    if other is not None:
        prof_other, _ = profiles_of(other, name="other", size=size, **opts)
    sim, ia, ib = profile_similarity(
        prof, prof_other, block_size=block_size, return_indices=True, progress=progress
    )
    theta = line_angles(n_angles, device=device)
    return CommonLineSimilarity(sim, theta[ia], theta[ib], n_angles)
