"""Moved to :mod:`pyrolatent.estimators.base` (this path works for one release)."""

from .._deprecated import forward

__getattr__ = forward(
    __name__,
    {name: "pyrolatent.estimators.base" for name in ("ImageModelWrapper", "custom_prior_names")},
)
