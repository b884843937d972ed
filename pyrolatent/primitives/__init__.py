"""Pure, batched, differentiable spatial primitives shared by every model."""

from .grids import (
    normalized_to_pixel,
    pixel_grid,
    pixel_to_normalized,
    rotation_matrix_2d,
    transform_points,
)
from .warp import affine_theta, warp_images

__all__ = [
    "affine_theta",
    "normalized_to_pixel",
    "pixel_grid",
    "pixel_to_normalized",
    "rotation_matrix_2d",
    "transform_points",
    "warp_images",
]
