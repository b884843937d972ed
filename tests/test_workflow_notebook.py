"""The self-assembly workflow notebook runs end to end at small size."""

from conftest import run_notebook


def test_notebook_04_self_assembly_workflow_runs():
    run_notebook("04_self_assembly_workflow.ipynb", timeout=600)
