"""pyrolatent: probabilistic latent-variable analysis of microscopy and diffraction images.

The user-facing names are re-exported here; everything else lives in the
subpackages (``primitives``, ``distributions``, ``nn``, ``models``, ``guides``,
``infer``, ``segmentation``, ``commonlines``, ``spi``, ``analysis``, ``data``,
``diagnostics``, ``plot``).
"""

from .infer import BetaSchedule, EarlyStopping, Trainer
from .models.rvae import RVAE, RVAEModel

__version__ = "0.1.0"

__all__ = ["BetaSchedule", "EarlyStopping", "RVAE", "RVAEModel", "Trainer", "__version__"]
