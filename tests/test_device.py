"""The CPU-thread policy (pyrolatent.device.configure_threads)."""

import warnings

import pytest
import torch

from pyrolatent import device


@pytest.fixture
def fresh(monkeypatch):
    """A fresh policy state, no thread variables, 4 CPUs with 4 physical cores; torch restored."""
    before = torch.get_num_threads()
    monkeypatch.setattr(device, "_state", {"threads": None, "warned": False})
    for name in ("PYROLATENT_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(device, "_available_cpus", lambda: 4)
    monkeypatch.setattr(device, "physical_cores", lambda: 4)
    monkeypatch.setattr(device.os, "cpu_count", lambda: 4)
    torch.set_num_threads(4)  # torch's own default on such a machine
    yield monkeypatch
    torch.set_num_threads(before)


def _run(**kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = device.configure_threads(**kwargs)
    return n, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_oversubscribed_machine_gets_one_thread_and_one_warning(fresh):
    fresh.setattr(device.os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    n, caught = _run()
    assert n == 1 and torch.get_num_threads() == 1
    assert len(caught) == 1 and "oversubscribed" in str(caught[0].message)
    n, caught = _run()  # decided once: no second warning
    assert n == 1 and caught == []


def test_idle_machine_uses_physical_cores_up_to_the_cap(fresh):
    fresh.setattr(device.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    n, caught = _run(cap=3)
    assert n == 3 and caught == []


def test_busy_machine_uses_the_free_cpus(fresh):
    fresh.setattr(device.os, "getloadavg", lambda: (2.2, 2.0, 2.0))
    n, caught = _run()
    assert n == 2 and caught == []


@pytest.mark.parametrize("variable", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_user_thread_variables_are_respected(fresh, variable):
    fresh.setattr(device.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    fresh.setenv(variable, "3")
    torch.set_num_threads(3)
    n, caught = _run()
    assert n == 3 and caught == []


def test_user_set_num_threads_is_respected(fresh):
    fresh.setattr(device.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    torch.set_num_threads(3)  # none of the machine's CPU counts: the user chose it
    n, caught = _run()
    assert n == 3 and caught == []
    torch.set_num_threads(2)  # a change after the policy ran is kept too
    assert device.configure_threads() == 2


def test_pyrolatent_num_threads_wins(fresh):
    fresh.setattr(device.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    fresh.setenv("OMP_NUM_THREADS", "1")
    fresh.setenv("PYROLATENT_NUM_THREADS", "2")
    n, caught = _run()
    assert n == 2 and caught == []
    fresh.setattr(device, "_state", {"threads": None, "warned": False})
    fresh.setenv("PYROLATENT_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="PYROLATENT_NUM_THREADS"):
        device.configure_threads()


def test_physical_cores_is_positive_and_at_most_the_cpus():
    assert 1 <= device.physical_cores() <= (device.os.cpu_count() or 1)


# --- the allocator policy (configure_allocator) ---


class _FakeLibc:
    """Records ``mallopt`` calls instead of changing this process's allocator."""

    def __init__(self):
        self.calls = []

        def mallopt(param, value):
            self.calls.append((param, value))
            return 1

        self.mallopt = mallopt


@pytest.fixture
def allocator(monkeypatch):
    """A fresh allocator decision, no allocator variables, a fake glibc on Linux."""
    monkeypatch.setattr(device, "_state", {"threads": None, "warned": False, "allocator": None})
    for name in (
        "PYROLATENT_MALLOC",
        "GLIBC_TUNABLES",
        "LD_PRELOAD",
        *device._USER_ALLOCATOR_VARIABLES,
    ):
        monkeypatch.delenv(name, raising=False)
    libc = _FakeLibc()
    monkeypatch.setattr(device.ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(device.platform, "system", lambda: "Linux")
    monkeypatch.setattr(device.platform, "libc_ver", lambda: ("glibc", "2.36"))
    return monkeypatch, libc


def test_allocator_thresholds_are_set_once(allocator):
    _, libc = allocator
    assert device.configure_allocator() is True
    assert sorted(libc.calls) == sorted([(-3, device.MMAP_THRESHOLD), (-1, device.TRIM_THRESHOLD)])
    assert device.configure_allocator() is True and len(libc.calls) == 2  # decided once


@pytest.mark.parametrize(
    "variable, value",
    [
        ("PYROLATENT_MALLOC", "0"),
        ("PYROLATENT_MALLOC", "off"),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
        ("MALLOC_MMAP_THRESHOLD_", "131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0"),
        ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
    ],
)
def test_allocator_leaves_a_user_choice_alone(allocator, variable, value):
    monkeypatch, libc = allocator
    monkeypatch.setenv(variable, value)
    assert device.configure_allocator() is False and libc.calls == []


def test_allocator_needs_glibc(allocator):
    monkeypatch, libc = allocator
    monkeypatch.setattr(device.platform, "libc_ver", lambda: ("", ""))
    assert device.configure_allocator() is False and libc.calls == []


_FAULTS = """
import resource, sys, torch
from pyrolatent import device
from pyrolatent.data.synthetic.shapes import make_rotated_shapes
from pyrolatent.estimators.rvae import RVAE
if sys.argv[1] == "off":
    device._state["allocator"] = False  # as if decided already: glibc's defaults stay
torch.set_num_threads(1)
x = make_rotated_shapes(200, shapes=("L",), image_size=48, max_offset=3.0, seed=0)["images"]
model = RVAE((48, 48), latent_dim=2, decoder="warp", pose="grid")
model.fit(x, epochs=1, batch_size=100, progress=False, diagnose=False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
model.fit(x, epochs=2, batch_size=100, progress=False, diagnose=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _huge_pages_always() -> bool:
    """Transparent huge pages for every mapping: a fault then brings in 2 MiB, not 4 KiB."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
            return "[always]" in fh.read()
    except OSError:
        return False


@pytest.mark.skipif(
    device.platform.system() != "Linux" or device.platform.libc_ver()[0] != "glibc",
    reason="glibc only",
)
@pytest.mark.skipif(_huge_pages_always(), reason="huge pages hide the page faults counted here")
def test_allocator_reuses_freed_blocks_instead_of_faulting_them_in_again():
    """Page faults of 4 training steps, not time.

    Measured 42,600-46,700 with glibc's defaults, 1,800-2,000 with the policy.
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUN"))}
    env.pop("LD_PRELOAD", None)

    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], env=env, check=True,
                             capture_output=True, text=True)  # fmt: skip
        return int(out.stdout.split()[-1])

    off, on = faults("off"), faults("on")
    assert off > 10_000, off  # without it each step maps its large blocks again
    assert on < off / 5, (on, off)
