"""Executes notebooks/07_stereo_angles.ipynb at small size (issue 7)."""

from __future__ import annotations

from conftest import run_notebook


def test_stereo_angles_notebook_runs():
    run_notebook("07_stereo_angles.ipynb", timeout=300)
