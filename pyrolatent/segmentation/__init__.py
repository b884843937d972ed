"""Particle segmentation: dilnet / U-Net, deep ensembles, augmentation and localisation.

Plain torch and scientific Python (no Pyro): these are the deterministic parts of
the workflow ``frames -> probability (mean, variance) -> particle table``.
"""

from .._deprecated import forward
from .augment import Augmentation
from .ensemble import DeepEnsemble
from .locate import foreground_mask, locate, split_touching
from .losses import SegmentationLoss, cross_entropy_loss, dice_loss, focal_loss
from .members import stack_members, unstack_members
from .nets import DilNet, UNet, build_network, split_members
from .sampling import prepare_training_data
from .streaming import predict_movie
from .tiling import predict_tiled, standardize_frames
from .train import train_ensemble, train_network, validation_split

__all__ = [
    "Augmentation",
    "DeepEnsemble",
    "DilNet",
    "SegmentationLoss",
    "UNet",
    "build_network",
    "cross_entropy_loss",
    "dice_loss",
    "focal_loss",
    "foreground_mask",
    "locate",
    "predict_movie",
    "predict_tiled",
    "prepare_training_data",
    "split_members",
    "split_touching",
    "stack_members",
    "standardize_frames",
    "train_ensemble",
    "train_network",
    "unstack_members",
    "validation_split",
]

__getattr__ = forward(
    __name__,
    {"concat_tables": "pyrolatent.data.particles", "empty_table": "pyrolatent.data.particles"},
)
