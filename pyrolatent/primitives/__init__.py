"""Pure, batched, differentiable spatial primitives shared by every model."""

from .angles import wrap_angle
from .grids import (
    centre_of_mass,
    normalized_to_pixel,
    particle_centre,
    pixel_grid,
    pixel_to_normalized,
    rotation_matrix_2d,
    transform_points,
)
from .groups import canonicalize, misorientation, orientation_grid, point_group
from .so3 import matrix_to_quaternion, quaternion_to_matrix, random_rotations
from .volumes import slice_volume, symmetrize_volume, symmetrized_slices
from .warp import affine_theta, turn_copies, warp_copies, warp_images

__all__ = [
    "affine_theta",
    "canonicalize",
    "centre_of_mass",
    "particle_centre",
    "matrix_to_quaternion",
    "misorientation",
    "orientation_grid",
    "point_group",
    "quaternion_to_matrix",
    "random_rotations",
    "slice_volume",
    "symmetrize_volume",
    "symmetrized_slices",
    "normalized_to_pixel",
    "pixel_grid",
    "pixel_to_normalized",
    "rotation_matrix_2d",
    "transform_points",
    "turn_copies",
    "warp_copies",
    "warp_images",
    "wrap_angle",
]
