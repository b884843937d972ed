"""The code is ruff clean: lint rules and formatter layout (``ruff.toml``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["pyrolatent", "tests", "benchmarks", "notebooks"]


@pytest.fixture(scope="module")
def ruff() -> str:
    executable = shutil.which("ruff")
    if executable is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    return executable


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_clean(ruff, command):
    result = subprocess.run(
        [ruff, *command, *PATHS], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
