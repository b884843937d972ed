"""Renamed keyword arguments kept for one release, with a DeprecationWarning.

``quiet=`` became ``progress=`` (one switch for progress bars) and ``order=`` became
``symmetry=`` (a rotational symmetry order). A function keeps the old keyword as a
keyword-only ``None`` default and resolves it with these helpers at its top.
"""

from __future__ import annotations

import warnings

__all__ = ["progress_from_quiet", "renamed_argument"]


def renamed_argument(new_value, old_value, *, old: str, new: str, where: str):
    """The value of a renamed argument: ``old_value`` (with a warning) when it was passed.

    Parameters
    ----------
    new_value : object
        Value of the new keyword (its default when only the old one was passed).
    old_value : object or None
        Value of the old keyword; ``None`` means it was not passed.
    old, new : str
        The two keyword names (for the warning).
    where : str
        The function or class (for the warning).
    """
    if old_value is None:
        return new_value
    warnings.warn(
        f"{where}: {old}= is deprecated, use {new}= (the old name will be removed in the next"
        " release)",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def progress_from_quiet(progress: bool, quiet: bool | None, *, where: str) -> bool:
    """``progress``, or ``not quiet`` with a DeprecationWarning when ``quiet`` was passed."""
    if quiet is None:
        return bool(progress)
    warnings.warn(
        f"{where}: quiet= is deprecated, use progress= (progress=not quiet; the old name will"
        " be removed in the next release)",
        DeprecationWarning,
        stacklevel=3,
    )
    return not quiet
