"""Inference: the shared SVI Trainer, callbacks, checkpoints and DDP helpers."""

from ..io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .callbacks import BetaSchedule, Callback, EarlyStopping, LearningRateDecay
from .scaling import LatentScaleMessenger
from .trainer import Trainer

__all__ = [
    "BetaSchedule",
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "LatentScaleMessenger",
    "LearningRateDecay",
    "Trainer",
    "load_checkpoint",
    "save_checkpoint",
]
