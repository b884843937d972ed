"""Every notebook in ``notebooks/`` runs end to end at small size, figures inline."""

from __future__ import annotations

import pytest
from conftest import ROOT, run_notebook

NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_is_listed():
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_at_small_size(name, monkeypatch):
    # the kernel inherits the environment; monkeypatch restores it for later tests
    monkeypatch.setenv("PYROLATENT_SMALL", "1")
    run_notebook(name, timeout=600)
