"""Shared fixtures: real-data location and notebook execution."""

from __future__ import annotations

import os
from pathlib import Path

# The suite runs in two pytest-xdist workers on two cores: one BLAS/OpenMP thread
# each uses both cores without the oversubscription that makes small matrix
# products crawl. Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# The suite compares against CPU-built tensors and exact CPU numbers, so it runs on
# the CPU even where CUDA exists; tests/test_cuda.py runs every component on CUDA
# (when present) through the same device policy.
os.environ.setdefault("PYROLATENT_DEVICE", "cpu")

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_data() -> Path:
    """Path of ``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (needs ../shared beside the repo)")
    return SHARED_DATA


def run_notebook(name: str, timeout: int = 600) -> None:
    """Execute ``notebooks/<name>`` at small size (``PYROLATENT_SMALL=1``).

    Raises the notebook's first error, if any.
    """
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    os.environ["PYROLATENT_SMALL"] = "1"
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
