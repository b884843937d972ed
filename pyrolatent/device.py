"""The one device policy of pyrolatent.

Every component that owns parameters or tensors resolves its device through
:func:`resolve_device`. The rule, in order:

1. an explicit ``device`` argument (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``);
2. the environment variable ``PYROLATENT_DEVICE``;
3. under ``torchrun`` with CUDA, ``cuda:LOCAL_RANK``;
4. ``cuda`` when available, otherwise ``cpu``.

Inputs are moved to the resolved device at the public boundary (``Trainer.fit``,
``encode``, ``predict``); library internals never call ``.cuda()`` themselves.

CPU threads have one policy too, :func:`configure_threads`, and so has the C
allocator that holds CPU tensors, :func:`configure_allocator`. :func:`configure_cpu`
applies both, once, for the ``pyrolatent`` command and the long-running entry points
(training, prediction, EMC).
"""

from __future__ import annotations

import ctypes
import os
import platform
import warnings

import torch

__all__ = [
    "resolve_device",
    "to_device",
    "configure_cpu",
    "configure_threads",
    "configure_allocator",
    "physical_cores",
]

THREAD_CAP = 8
"""Most intra-op threads chosen by default (small models stop scaling well beyond this)."""

_USER_THREAD_VARIABLES = ("PYROLATENT_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_state: dict = {"threads": None, "warned": False, "allocator": None}

MMAP_THRESHOLD = 64 << 20
"""Bytes: smaller CPU blocks come from the heap and are reused (glibc: 128 KiB to 32 MiB)."""
TRIM_THRESHOLD = 256 << 20
"""Bytes of free heap kept before memory goes back to the kernel (glibc: from 128 KiB)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, <malloc.h>
_USER_ALLOCATOR_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


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


def configure_allocator() -> bool:
    """Let glibc keep freed CPU tensor memory for reuse, once; return whether it was set.

    A training step allocates and frees the same large tensors every step (a
    ``(B, K, H, W)`` stack of posed images is several MiB). With glibc's
    defaults, blocks of that size are mapped from the kernel and given back
    when freed, so every step pays a page fault for each 4 KiB page it touches
    again: measured at a quarter to a third of a ``pose="grid"`` rVAE epoch on
    one thread, more when another process competes for memory bandwidth. This
    sets ``M_MMAP_THRESHOLD`` to :data:`MMAP_THRESHOLD` and ``M_TRIM_THRESHOLD``
    to :data:`TRIM_THRESHOLD` with ``mallopt``, so such blocks come from the
    heap and are reused; results do not change, and at most
    :data:`TRIM_THRESHOLD` bytes of free heap stay mapped. (PyTorch's own CPU
    launcher, ``torch.backends.xeon.run_cpu``, preloads tcmalloc or jemalloc
    when they are installed, for the same reason.)

    Nothing is changed when ``PYROLATENT_MALLOC`` is ``0``/``off``, when the user
    tuned glibc malloc already (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, or ``GLIBC_TUNABLES``
    naming ``glibc.malloc``), when ``LD_PRELOAD`` names another allocator
    (jemalloc, tcmalloc, mimalloc), or when the C library is not glibc.
    Later calls change nothing.

    Returns
    -------
    bool
        True when this call or an earlier one set the thresholds.
    """
    if _state.get("allocator") is not None:
        return _state["allocator"]
    _state["allocator"] = False
    if os.environ.get("PYROLATENT_MALLOC", "").strip().lower() in {"0", "off", "false", "no"}:
        return False
    if any(os.environ.get(v) for v in _USER_ALLOCATOR_VARIABLES):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if any(name in os.environ.get("LD_PRELOAD", "") for name in _OTHER_ALLOCATORS):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _state["allocator"] = ok
    return ok


def configure_cpu(*, cap: int = THREAD_CAP) -> int:
    """Both CPU policies, once: :func:`configure_allocator`, then :func:`configure_threads`.

    Parameters
    ----------
    cap : int
        Upper bound of the thread count (see :func:`configure_threads`).

    Returns
    -------
    int
        ``torch.get_num_threads()`` after the call.
    """
    configure_allocator()
    return configure_threads(cap=cap)
