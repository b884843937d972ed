"""Pyro site and plate names of every pyrolatent model, in one module.

Both :mod:`pyrolatent.models` and :mod:`pyrolatent.guides` import them from
here, so a guide never imports its model's module.
"""

__all__ = [
    "DATA",
    "Z",
    "OBS",
    "Y",
    "AUX",
    "ANGLE",
    "ANGLE_INDEX",
    "ANGLE_JITTER",
    "OFFSET",
    "SCALE",
    "FLUENCE",
    "PLATE",
    "WEIGHTS",
    "LOADINGS",
    "SIGMA",
    "ROWS",
]

#: Plate of the image models (rVAE, ss-rVAE).
DATA = "data"
#: Content latent (rVAE, ss-rVAE, volume VAE), event ``(latent_dim,)``.
Z = "z"
#: Observed data site of every model.
OBS = "obs"
#: Class of the ss-rVAE, integer in ``[0, n_classes)``.
Y = "y"
#: Auxiliary classification site of the ss-rVAE guide (labelled items only).
AUX = "y_aux"
#: In-plane rotation, radians.
ANGLE = "angle"
#: Grid pose: index of the rotation-grid angle (enumerated exactly), integer in ``[0, K)``.
ANGLE_INDEX = "angle_index"
#: Grid pose: offset of the angle within its grid cell, radians in ``[0, 2 pi / (n K))``.
ANGLE_JITTER = "angle_jitter"
#: Translation ``(dx, dy)``, pixels.
OFFSET = "offset"
#: Isotropic scale, dimensionless.
SCALE = "scale"
#: Per-pattern fluence of the volume VAE (Poisson likelihood).
FLUENCE = "fluence"
#: Plate of the volume VAE.
PLATE = "patterns"
#: NMF components ``W`` ``(K, F)``.
WEIGHTS = "weights"
#: NMF time courses ``H`` ``(T, K)``.
LOADINGS = "loadings"
#: NMF Gaussian noise scale.
SIGMA = "sigma"
#: Plate of the NMF rows.
ROWS = "rows"
