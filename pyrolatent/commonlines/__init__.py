"""Common lines: similarity matrix, CLPCA embedding, rotation-invariant features and
the absolute-embedding regressor (``spi-clpca-volume-vae``, section 2.2)."""

from .embedding import EMBEDDING_METHODS, CommonLinePCA, embed_similarity
from .features import feature_layout, polar_resample, rotation_invariant_features
from .geometry import true_common_line_angles
from .profiles import line_angles, line_profiles, line_radii, normalize_profiles
from .regressor import AbsoluteEmbedding, r2_scores
from .similarity import CommonLineSimilarity, profile_similarity, similarity_matrix

__all__ = [
    "AbsoluteEmbedding",
    "CommonLinePCA",
    "CommonLineSimilarity",
    "EMBEDDING_METHODS",
    "embed_similarity",
    "feature_layout",
    "line_angles",
    "line_profiles",
    "line_radii",
    "normalize_profiles",
    "polar_resample",
    "profile_similarity",
    "r2_scores",
    "rotation_invariant_features",
    "similarity_matrix",
    "true_common_line_angles",
]
