"""AFMReader's sample files (its source distribution's ``tests/resources``) as a fixture.

The files (~80 MB) are taken from ``$PYROLATENT_TEST_DATA/afmreader-0.0.7`` or
``~/.cache/pyrolatent-test-data/afmreader-0.0.7``; when absent they are fetched once
with ``pip download --no-binary :all: AFMReader==0.0.7``. Without AFMReader or the
files the tests that use :func:`samples` skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

VERSION = "0.0.7"
NEEDED = ("sample_0.asd", "sample_0.spm", "sample_0.ibw", "sample_0.jpk")
CACHE = (
    Path(os.environ.get("PYROLATENT_TEST_DATA", Path.home() / ".cache" / "pyrolatent-test-data"))
    / f"afmreader-{VERSION}"
)


def _fetch() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"AFMReader=={VERSION}", "-d", tmp],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        sdist = next(Path(tmp).glob("*.tar.gz"))
        CACHE.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                if Path(member.name).name in NEEDED and "tests/resources" in member.name:
                    (CACHE / Path(member.name).name).write_bytes(tar.extractfile(member).read())


@pytest.fixture(scope="module")
def samples() -> Path:
    """Folder with AFMReader's ``sample_0.{asd,spm,ibw,jpk}``; skips when unavailable."""
    pytest.importorskip("AFMReader")
    if not all((CACHE / n).is_file() for n in NEEDED):
        try:
            _fetch()
        except Exception as exc:  # no network, no pip: skip, do not fail
            pytest.skip(f"AFMReader's sample files are unavailable ({exc})")
    return CACHE
