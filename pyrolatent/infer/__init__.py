"""Inference: the SVI Trainer, batch sources, ELBO variants, callbacks, RNG, checkpoints, DDP."""

from ..io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .batches import Batches
from .callbacks import BetaSchedule, Callback, EarlyStopping, LearningRateDecay
from .elbo import AuxiliaryTraceEnum_ELBO
from .rng import LocalRNG
from .scaling import LatentScaleMessenger
from .trainer import Trainer

__all__ = [
    "AuxiliaryTraceEnum_ELBO",
    "Batches",
    "BetaSchedule",
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "LatentScaleMessenger",
    "LearningRateDecay",
    "LocalRNG",
    "Trainer",
    "load_checkpoint",
    "save_checkpoint",
]
