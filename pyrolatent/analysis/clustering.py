"""k-means with k-means++ seeding, for the library's own groupings (2D classes, particle styles)."""

from __future__ import annotations

import math

import torch

__all__ = ["kmeans"]


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, n_init: int = 5,
           n_iter: int = 50) -> torch.Tensor:  # fmt: skip
    """Labels of the best of ``n_init`` k-means runs (k-means++ seeding, Lloyd's iterations).

    Parameters
    ----------
    x : torch.Tensor
        ``(N, D)`` points.
    k : int
        Clusters (``1 <= k <= N``).
    generator : torch.Generator
        Draws the seeds (no global random state is used).
    n_init : int
        Seedings tried; the run with the least within-cluster sum of squares wins.
    n_iter : int
        Most Lloyd iterations per run.

    Returns
    -------
    torch.Tensor
        ``(N,)`` int64 labels in ``[0, k)`` (a cluster may come out empty).
    """
    best_labels, best_inertia = None, math.inf
    for _ in range(n_init):
        first = int(torch.randint(x.shape[0], (1,), generator=generator))
        centres = x[first : first + 1]
        for _ in range(1, k):
            d2 = torch.cdist(x, centres).amin(dim=1) ** 2
            probs = (d2 / d2.sum().clamp_min(1e-30)).cpu()
            nxt = int(torch.multinomial(probs + 1e-30, 1, generator=generator))
            centres = torch.cat([centres, x[nxt : nxt + 1]])
        for _ in range(n_iter):
            labels = torch.cdist(x, centres).argmin(dim=1)
            new = torch.stack(
                [
                    x[labels == j].mean(0) if bool((labels == j).any()) else centres[j]
                    for j in range(k)
                ]
            )
            if torch.allclose(new, centres):
                break
            centres = new
        inertia = float((torch.cdist(x, centres).amin(dim=1) ** 2).sum())
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    return best_labels
