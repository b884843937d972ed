"""Import pyroVED 0.3.0 as a benchmark reference, if it is installed.

``import pyroved`` imports ``torchvision.utils.make_grid`` for its plotting
helpers, and PyPI's torchvision does not import beside the CPU torch used here.
In the benchmark process only, a minimal stand-in ``torchvision.utils`` module
is registered before importing pyroVED; nothing that is timed uses it, and it
never enters the library.
"""

from __future__ import annotations

import sys
import types


def import_pyroved():
    """Return the ``pyroved`` module, or ``None`` when it is not installed."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        tv = types.ModuleType("torchvision")
        utils = types.ModuleType("torchvision.utils")

        def make_grid(*args, **kwargs):  # pragma: no cover - plotting only
            raise NotImplementedError("benchmark stand-in: plotting is not available")

        utils.make_grid = make_grid
        tv.utils = utils
        sys.modules["torchvision"] = tv
        sys.modules["torchvision.utils"] = utils
    try:
        import pyroved
    except Exception:
        return None
    return pyroved
