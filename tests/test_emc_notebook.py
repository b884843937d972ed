"""The 3D EMC notebook runs end to end at small size."""

from conftest import run_notebook


def test_notebook_08_emc_spi_runs():
    run_notebook("08_emc_spi.ipynb", timeout=900)
