"""Deprecated: the input checks moved to :mod:`pyrolatent.checks`."""

from ._deprecated import forward

_NAMES = ("as_tensor", "as_images", "check_finite", "check_nonnegative")
__getattr__ = forward(__name__, {name: "pyrolatent.checks" for name in _NAMES})
