"""3D EMC of sparse photon frames: quaternion grid, frames, Poisson E-step, EM driver, metrics."""

from .anneal import anneal_start
from .chain import chain_ends, chain_position, class_chain
from .emc import EMCResult, emc
from .estep import emc_model, log_likelihood_block, posterior_summary
from .frames import Detector, PhotonFrames, check_detector_mask, flat_detector
from .local import LocalEMCResult, local_emc, local_offsets
from .metrics import align_volume, orientation_errors, rotate_volume, shell_correlation
from .posterior import fill_unmeasured, poisson_orientations, refine_orientations
from .quaternions import grid_size, quaternion_grid
from .simulate import simulate_frames, structure_intensity
from .slicing import expand, merge

__all__ = [
    "Detector",
    "EMCResult",
    "LocalEMCResult",
    "PhotonFrames",
    "align_volume",
    "anneal_start",
    "chain_ends",
    "chain_position",
    "check_detector_mask",
    "class_chain",
    "emc",
    "emc_model",
    "expand",
    "fill_unmeasured",
    "flat_detector",
    "grid_size",
    "local_emc",
    "local_offsets",
    "log_likelihood_block",
    "merge",
    "orientation_errors",
    "poisson_orientations",
    "posterior_summary",
    "refine_orientations",
    "quaternion_grid",
    "rotate_volume",
    "shell_correlation",
    "simulate_frames",
    "structure_intensity",
]
