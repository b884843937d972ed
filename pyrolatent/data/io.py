"""Moved to :mod:`pyrolatent.io.movie`; this path forwards for one release."""

from .._deprecated import forward

__getattr__ = forward(__name__, {"read_movie": "pyrolatent.io.movie"})
