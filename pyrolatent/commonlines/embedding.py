"""CLPCA: a low-dimensional embedding of patterns from their common-line similarity.

Each pattern is described by its row of the common-line similarity matrix
(its similarity to every training pattern). PCA of those rows is the CLPCA
embedding of Zhuang et al. (``spi-clpca-volume-vae``, section 2.2.2). A new
pattern is projected by computing its similarity to the training patterns and
applying the same centring and principal axes (out-of-sample transform).
Isomap, spectral embedding and t-SNE of the same matrix are available through
scikit-learn when it is installed.
"""

from __future__ import annotations

import numpy as np
import torch

from ..device import resolve_device
from .profiles import profiles_of
from .similarity import profile_similarity

__all__ = ["CommonLinePCA", "EMBEDDING_METHODS", "embed_similarity"]

#: embeddings of a similarity matrix; all but "pca" need scikit-learn
EMBEDDING_METHODS = ("pca", "isomap", "spectral", "tsne")


def _pca(similarity: torch.Tensor, n_components: int):
    mean = similarity.mean(dim=0, keepdim=True)
    u, s, vh = torch.linalg.svd((similarity - mean).double(), full_matrices=False)
    vh = vh[:n_components]
    # deterministic signs: the largest loading of every axis is positive
    signs = torch.sign(vh.gather(1, vh.abs().argmax(dim=1, keepdim=True)))
    signs[signs == 0] = 1
    vh = vh * signs
    explained = (s**2) / (s**2).sum().clamp_min(1e-300)
    return mean, vh.to(similarity.dtype), explained[:n_components]


def _require_sklearn(method: str):
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:  # pragma: no cover - sklearn is a test dependency
        msg = f"method={method!r} needs scikit-learn (pip install scikit-learn)"
        raise ImportError(msg) from exc


def embed_similarity(
    similarity,
    n_components: int = 3,
    method: str = "pca",
    n_neighbors: int = 10,
    random_state: int = 0,
) -> np.ndarray:
    """Embed a symmetric similarity matrix in ``n_components`` dimensions.

    Parameters
    ----------
    similarity : array_like
        ``(N, N)`` common-line similarities (correlations, at most 1).
    n_components : int
        Output dimension.
    method : {"pca", "isomap", "spectral", "tsne"}
        ``"pca"``: principal components of the similarity rows (CLPCA);
        ``"isomap"``: scikit-learn Isomap of the rows; ``"spectral"``: spectral
        embedding with the similarity (clipped at 0) as affinity; ``"tsne"``:
        t-SNE on the distance ``1 - similarity``.
    n_neighbors : int
        Neighbourhood size for Isomap.
    random_state : int
        Seed for the stochastic methods.

    Returns
    -------
    numpy.ndarray
        ``(N, n_components)``.
    """
    if isinstance(similarity, torch.Tensor):  # e.g. CLPCA.similarity_ computed on a GPU
        similarity = similarity.detach().cpu()
    s = torch.as_tensor(np.asarray(similarity, dtype=np.float64))
    if s.dim() != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity: expected a square (N, N) matrix, got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("similarity: contains NaN or Inf values")
    n = s.shape[0]
    if n < 2:
        raise ValueError(f"similarity: needs at least 2 patterns, got {n}")
    if not 1 <= n_components <= n:
        raise ValueError(f"n_components must be in [1, {n}], got {n_components}")
    if method == "pca":
        mean, vh, _ = _pca(s, n_components)
        return ((s - mean) @ vh.t()).numpy()
    if method not in EMBEDDING_METHODS:
        raise ValueError(f"method must be one of {EMBEDDING_METHODS}, got {method!r}")
    _require_sklearn(method)
    arr = s.numpy()
    if method == "isomap":
        from sklearn.manifold import Isomap

        return Isomap(n_components=n_components, n_neighbors=min(n_neighbors, n - 1)).fit_transform(
            arr
        )
    if method == "spectral":
        from sklearn.manifold import SpectralEmbedding

        affinity = np.clip(0.5 * (arr + arr.T), 0.0, None)
        return SpectralEmbedding(
            n_components=n_components, affinity="precomputed", random_state=random_state
        ).fit_transform(affinity)
    from sklearn.manifold import TSNE

    distance = np.clip(1.0 - 0.5 * (arr + arr.T), 0.0, None)
    np.fill_diagonal(distance, 0.0)
    return TSNE(
        n_components=n_components,
        metric="precomputed",
        init="random",
        perplexity=min(30.0, max(1.0, (n - 1) / 3)),
        random_state=random_state,
    ).fit_transform(distance)


class CommonLinePCA:
    """Common-line PCA (CLPCA) embedding with out-of-sample projection.

    Parameters
    ----------
    n_components : int
        Embedding dimension (3 in the paper).
    n_angles : int
        Lines per pattern over ``[0, pi)``.
    mask_radius : float
        Central radius (pixels) left out of the line profiles.
    max_radius : float, optional
        Outermost radius of the profiles; default the pattern edge.
    log : bool
        Correlate ``log`` intensities (recommended for diffraction averages).
    log_floor : float
        Relative floor of the log transform.
    method : {"pca", "isomap", "spectral", "tsne"}
        Embedding of the similarity matrix; only ``"pca"`` and ``"isomap"``
        support :meth:`transform` of new patterns.
    block_size : int
        Patterns per block of the similarity matrix product.
    friedel : bool
        Correlate Friedel-averaged half-lines (half the work; exact for
        centrosymmetric patterns).
    progress : bool
        Show tqdm progress bars.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.

    Attributes
    ----------
    similarity_ : torch.Tensor
        ``(N, N)`` training similarity matrix.
    embedding_ : numpy.ndarray
        ``(N, n_components)`` training embedding.
    components_ : torch.Tensor
        ``(n_components, N)`` principal axes (``method="pca"``).
    explained_variance_ratio_ : numpy.ndarray
        ``(n_components,)`` (``method="pca"``).
    """

    def __init__(
        self,
        n_components: int = 3,
        n_angles: int = 180,
        mask_radius: float = 2.0,
        max_radius: float | None = None,
        log: bool = True,
        log_floor: float = 1e-3,
        method: str = "pca",
        n_neighbors: int = 10,
        block_size: int = 4,
        friedel: bool = False,
        random_state: int = 0,
        progress: bool = True,
        device=None,
    ):
        if method not in EMBEDDING_METHODS:
            raise ValueError(f"method must be one of {EMBEDDING_METHODS}, got {method!r}")
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_components = n_components
        self.n_angles = n_angles
        self.mask_radius = mask_radius
        self.max_radius = max_radius
        self.log = log
        self.log_floor = log_floor
        self.method = method
        self.n_neighbors = n_neighbors
        self.block_size = block_size
        self.friedel = friedel
        self.random_state = random_state
        self.progress = progress
        self.device = resolve_device(device)
        self._profiles = None

    def _profiles_of(self, x, **check) -> tuple[torch.Tensor, int]:
        return profiles_of(
            x,
            **check,
            n_angles=self.n_angles,
            mask_radius=self.mask_radius,
            max_radius=self.max_radius,
            log=self.log,
            log_floor=self.log_floor,
            normalize=True,
            friedel=self.friedel,
            device=self.device,
        )

    def fit(self, patterns) -> CommonLinePCA:
        """Compute the similarity matrix of ``patterns`` and embed it.

        ``patterns``: ``(N, S, S)``, or a frame source of square frames read from
        disk block by block (``EMCFile``, ``CXIFrames``; see
        :func:`~pyrolatent.commonlines.profiles.profiles_of`).
        """
        self.fit_transform(patterns)
        return self

    def fit_transform(self, patterns) -> np.ndarray:
        """Fit and return the ``(N, n_components)`` training embedding."""
        self._profiles, self.size_ = self._profiles_of(patterns, min_count=2)
        n = self._profiles.shape[0]
        if self.n_components > n:
            raise ValueError(f"n_components={self.n_components} exceeds the number of patterns {n}")
        self.similarity_ = profile_similarity(
            self._profiles, block_size=self.block_size, progress=self.progress
        )
        if self.method == "pca":
            self.mean_, self.components_, ratio = _pca(self.similarity_, self.n_components)
            self.explained_variance_ratio_ = ratio.cpu().numpy()
            self.embedding_ = ((self.similarity_ - self.mean_) @ self.components_.t()).cpu().numpy()
        elif self.method == "isomap":
            _require_sklearn(self.method)
            from sklearn.manifold import Isomap

            self._isomap = Isomap(
                n_components=self.n_components,
                n_neighbors=min(self.n_neighbors, n - 1),
            )
            self.embedding_ = self._isomap.fit_transform(self.similarity_.cpu().numpy())
        else:
            self.embedding_ = embed_similarity(
                self.similarity_.cpu().numpy(),
                n_components=self.n_components,
                method=self.method,
                random_state=self.random_state,
            )
        return self.embedding_

    def similarity_to_training(self, patterns) -> torch.Tensor:
        """``(M, N)`` common-line similarity of new patterns to the training set."""
        if self._profiles is None:
            raise RuntimeError("CommonLinePCA is not fitted; call fit(patterns) first")
        prof, _ = self._profiles_of(patterns, size=self.size_)
        return profile_similarity(prof, self._profiles, block_size=self.block_size, progress=False)

    def transform(self, patterns) -> np.ndarray:
        """Project new patterns ``(M, S, S)`` into the fitted embedding.

        Returns
        -------
        numpy.ndarray
            ``(M, n_components)``; for the training patterns this reproduces
            :attr:`embedding_`.
        """
        if self.method not in ("pca", "isomap"):
            raise ValueError(
                f"method={self.method!r} has no out-of-sample transform; use 'pca' or 'isomap'"
            )
        sim = self.similarity_to_training(patterns)
        if self.method == "pca":
            return ((sim - self.mean_) @ self.components_.t()).cpu().numpy()
        return self._isomap.transform(sim.cpu().numpy())
