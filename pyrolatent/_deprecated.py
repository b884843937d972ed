"""Old import paths kept for one release: a module ``__getattr__`` that warns and forwards.

The new module is imported by name at first access (``importlib``), so an old module never
imports the module that replaced it at load time, and the package's import graph has no cycle.
"""

import importlib
import warnings


def forward(old_module: str, moved: dict[str, str]):
    """Return a module ``__getattr__`` that forwards ``moved`` names to their new modules.

    Parameters
    ----------
    old_module : str
        Dotted name of the old module (for the warning text).
    moved : dict of str to str
        Attribute name -> dotted name of the module that now defines it.
    """

    def __getattr__(name: str):
        if name not in moved:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        warnings.warn(
            f"{old_module}.{name} moved to {moved[name]}.{name}; "
            "the old path will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__
