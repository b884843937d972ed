"""pyrolatent: probabilistic latent-variable analysis of microscopy and diffraction images.

The user-facing names below are importable from the top level; they are loaded
on first use, so ``import pyrolatent`` stays fast. Everything else lives in the
subpackages (``primitives``, ``distributions``, ``nn``, ``models``, ``guides``,
``infer``, ``estimators``, ``segmentation``, ``commonlines``, ``spi``, ``analysis``, ``data``,
``diagnostics``, ``plot``, ``workflow``).
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    # estimators (user-facing) and their Pyro models
    "RVAE": "pyrolatent.estimators.rvae",
    "RVAEModel": "pyrolatent.models.rvae",
    "SSRVAE": "pyrolatent.estimators.ssrvae",
    "SSRVAEModel": "pyrolatent.models.ssrvae",
    "VolumeVAE": "pyrolatent.estimators.volume_vae",
    "VolumeVAEModel": "pyrolatent.models.volume_vae",
    "NMF": "pyrolatent.estimators.nmf",
    "NMFModel": "pyrolatent.models.nmf",
    "PosteriorCollapseWarning": "pyrolatent.estimators.diagnostics",
    # inference
    "Trainer": "pyrolatent.infer",
    "BetaSchedule": "pyrolatent.infer",
    "EarlyStopping": "pyrolatent.infer",
    "AuxiliaryTraceEnum_ELBO": "pyrolatent.infer.elbo",
    # deterministic parts
    "DilNet": "pyrolatent.segmentation",
    "UNet": "pyrolatent.segmentation",
    "DeepEnsemble": "pyrolatent.segmentation",
    "train_ensemble": "pyrolatent.segmentation",
    "locate": "pyrolatent.segmentation",
    "extract_crops": "pyrolatent.data.crops",
    "link": "pyrolatent.analysis.tracking",
    "CommonLinePCA": "pyrolatent.commonlines",
    "AbsoluteEmbedding": "pyrolatent.commonlines",
    "similarity_matrix": "pyrolatent.commonlines",
    "rotation_invariant_features": "pyrolatent.commonlines",
    "classify2d": "pyrolatent.spi",
    "OrientationSearch": "pyrolatent.spi",
    "phase_retrieval": "pyrolatent.spi",
    "AngleCNN": "pyrolatent.nn.angle",
    "AngleCNN1d": "pyrolatent.nn.angle",
    "fit_stereo_pairs": "pyrolatent.stereo.fit",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyrolatent' has no attribute {name!r}")


def __dir__():
    return __all__
