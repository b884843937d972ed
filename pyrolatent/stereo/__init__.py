"""The stereo-pair angle method: orientation learned from image pairs a known angle apart.

The networks are in :mod:`pyrolatent.nn.angle`; this package holds the losses
(:mod:`~pyrolatent.stereo.losses`) and the training loop
(:func:`~pyrolatent.stereo.fit.fit_stereo_pairs`).
"""

from .fit import fit_stereo_pairs
from .losses import pair_consistency_loss, periodic_loss

__all__ = ["fit_stereo_pairs", "pair_consistency_loss", "periodic_loss"]
