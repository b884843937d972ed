"""Shared fixtures: real-data location and notebook execution."""

from __future__ import annotations

import os
import re
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


def run_notebook(name: str, timeout: int = 600, *, check_figures: bool = True):
    """Execute ``notebooks/<name>``; return it.

    The caller sets ``PYROLATENT_SMALL=1`` for a small run (with ``monkeypatch``,
    so it does not leak into later tests). Raises the notebook's first error, if
    any. With ``check_figures``, every figure must display inline
    (:func:`assert_figures_inline`).
    """
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    if check_figures:
        assert_figures_inline(nb, name)
    return nb


FIGURE_CELL = re.compile(r"\bplot_\w+\(|\bplt\.subplots?\(|\bFigure\(")


def assert_figures_inline(nb, name: str = "notebook") -> None:
    """Every figure of an executed notebook is an inline PNG, never ``<Figure size ...>`` text.

    A code cell that draws (calls a ``plot_*`` function, ``plt.subplots`` or
    ``Figure``) must have an ``image/png`` output; no output may be a figure's
    text repr alone.
    """
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        data = [o.get("data", {}) for o in cell.get("outputs", [])]
        for d in data:
            text = str(d.get("text/plain", ""))
            assert not (text.startswith("<Figure size") and "image/png" not in d), (
                f"{name} cell {i}: a figure shows only as {text!r}"
            )
        if FIGURE_CELL.search(cell.source):
            assert any("image/png" in d for d in data), f"{name} cell {i}: no inline figure"
