"""Notebook 02 (ss-rVAE on cards) runs end to end at small size."""

from conftest import run_notebook


def test_notebook_02_runs():
    run_notebook("02_ssrvae_cards.ipynb", timeout=600)
