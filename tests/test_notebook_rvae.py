"""notebooks/01_rvae.ipynb runs end to end at small size."""

from conftest import run_notebook


def test_rvae_notebook_executes():
    run_notebook("01_rvae.ipynb", timeout=600)
