"""The segmentation/tracking notebook runs end to end at small size."""

from conftest import run_notebook


def test_notebook_03_segmentation_tracking_runs():
    run_notebook("03_segmentation_tracking.ipynb", timeout=600)
