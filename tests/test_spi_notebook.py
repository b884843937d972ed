"""The volume-VAE notebook runs end to end at small size."""

from conftest import run_notebook


def test_notebook_05_volume_vae_spi_runs():
    run_notebook("05_volume_vae_spi.ipynb", timeout=600)
