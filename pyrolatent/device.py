"""The one device policy of pyrolatent.

Every component that owns parameters or tensors resolves its device through
:func:`resolve_device`. The rule, in order:

1. an explicit ``device`` argument (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``);
2. the environment variable ``PYROLATENT_DEVICE``;
3. under ``torchrun`` with CUDA, ``cuda:LOCAL_RANK``;
4. ``cuda`` when available, otherwise ``cpu``.

Inputs are moved to the resolved device at the public boundary (``Trainer.fit``,
``encode``, ``predict``); library internals never call ``.cuda()`` themselves.

CPU threads have one policy too, :func:`configure_threads`, applied once by the
``pyrolatent`` command and by the long-running entry points (training, prediction).
"""

from __future__ import annotations

import os
import warnings

import torch

__all__ = ["resolve_device", "to_device", "configure_threads", "physical_cores"]

THREAD_CAP = 8
"""Most intra-op threads chosen by default (small models stop scaling well beyond this)."""

_USER_THREAD_VARIABLES = ("PYROLATENT_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_state: dict = {"threads": None, "warned": False}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device that a component should use.

    Parameters
    ----------
    device : str or torch.device, optional
        Explicit choice. ``None`` applies the policy in the module docstring.

    Returns
    -------
    torch.device
    """
    if device is None:
        device = os.environ.get("PYROLATENT_DEVICE") or None
    if device is None:
        if torch.cuda.is_available():
            local_rank = os.environ.get("LOCAL_RANK")
            return torch.device(f"cuda:{local_rank}" if local_rank is not None else "cuda")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} was requested but CUDA is not available")
    return device


def to_device(tensors, device: torch.device):
    """Move a tensor, or a tuple/list/dict of tensors, to ``device``."""
    if isinstance(tensors, torch.Tensor):
        return tensors.to(device)
    if isinstance(tensors, (tuple, list)):
        return type(tensors)(to_device(t, device) for t in tensors)
    if isinstance(tensors, dict):
        return {k: to_device(v, device) for k, v in tensors.items()}
    return tensors


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical CPU cores of the machine (logical CPUs where that cannot be read)."""
    try:
        cores, ids = set(), {}
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                ids[key.strip()] = value.strip()
                if not line.strip():
                    if "core id" in ids:
                        cores.add((ids.get("physical id"), ids["core id"]))
                    ids = {}
        if "core id" in ids:
            cores.add((ids.get("physical id"), ids["core id"]))
        if cores:
            return min(len(cores), _available_cpus())
    except OSError:
        pass
    return _available_cpus()


def _load_average() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def configure_threads(*, cap: int = THREAD_CAP) -> int:
    """Set torch's CPU threads to a sane default for this machine, once; return the count.

    The rule, in order:

    1. ``PYROLATENT_NUM_THREADS`` set: that many threads;
    2. ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set, or ``torch.set_num_threads``
       called by the user (a count that is none of the machine's CPU counts, or a
       change after this function ran): left as it is;
    3. the machine is oversubscribed (1-minute load average >= available CPUs):
       1 thread, with one ``RuntimeWarning`` saying so (torch's default of one thread
       per core then makes small models 10-30x slower);
    4. otherwise ``min(physical cores, cap, free CPUs)`` with free CPUs
       ``round(available CPUs - load average)``, at least 1.

    Later calls change nothing and return torch's current count.

    Parameters
    ----------
    cap : int
        Upper bound of rule 4.

    Returns
    -------
    int
        ``torch.get_num_threads()`` after the call.
    """
    current = torch.get_num_threads()
    if _state["threads"] is not None:
        return current  # decided once; a later user change (rule 2) is kept
    explicit = os.environ.get("PYROLATENT_NUM_THREADS")
    if explicit:
        n = int(explicit)
        if n < 1:
            raise ValueError(f"PYROLATENT_NUM_THREADS must be >= 1, got {explicit!r}")
        torch.set_num_threads(n)
    elif any(os.environ.get(v) for v in _USER_THREAD_VARIABLES[1:]) or current not in {
        os.cpu_count(),
        _available_cpus(),
        physical_cores(),
    }:
        n = current
    else:
        cpus = _available_cpus()
        load = _load_average()
        if load is not None and load >= cpus:
            n = 1
            if not _state["warned"]:
                _state["warned"] = True
                warnings.warn(
                    f"pyrolatent: the machine is oversubscribed (load average {load:.1f} on "
                    f"{cpus} CPUs): using 1 torch thread. Set PYROLATENT_NUM_THREADS or "
                    "OMP_NUM_THREADS to choose another count.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        else:
            free = cpus if load is None else max(1, round(cpus - load))
            n = max(1, min(physical_cores(), cap, free))
        torch.set_num_threads(n)
    _state["threads"] = n
    return torch.get_num_threads()
