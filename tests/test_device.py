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
