"""AFM readers on the sample files that AFMReader ships (its source distribution's
``tests/resources``), compared with AFMReader's own loaders.

The files (~80 MB) are taken from ``$PYROLATENT_TEST_DATA/afmreader-0.0.7`` or
``~/.cache/pyrolatent-test-data/afmreader-0.0.7``; when absent they are fetched once
with ``pip download --no-binary :all: AFMReader==0.0.7``. Without AFMReader or the
files the tests skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pyrolatent.io.movie_formats import open_movie

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
    pytest.importorskip("AFMReader")
    if not all((CACHE / n).is_file() for n in NEEDED):
        try:
            _fetch()
        except Exception as exc:  # no network, no pip: skip, do not fail
            pytest.skip(f"AFMReader's sample files are unavailable ({exc})")
    return CACHE


def test_asd_movie_is_lazy_and_matches_afmreader(samples):
    from AFMReader.asd import load_asd

    movie = open_movie(samples / "sample_0.asd")
    assert movie.shape == (142, 256, 256)
    assert movie.metadata.pixel_size_nm == pytest.approx(0.78125)
    assert movie.metadata.frame_time_s == pytest.approx(0.4126, abs=1e-3)
    # frames come from a memory map, one at a time
    assert isinstance(movie._source._raw, np.memmap)
    ref, pixel, _ = load_asd(samples / "sample_0.asd", "TP")
    for i in (0, 70, 141):
        np.testing.assert_allclose(movie[i], ref[i], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(movie[10:13], ref[10:13], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="channel"):
        open_movie(samples / "sample_0.asd", afm_channel="XX")


@pytest.mark.parametrize(
    ("name", "shape", "pixel_nm"),
    [
        ("sample_0.spm", (1, 1024, 1024), 0.4940029296875),
        ("sample_0.ibw", (1, 512, 512), 1.5625),
        ("sample_0.jpk", (1, 256, 256), 1.2770176335964876),
    ],
)
def test_single_afm_images(samples, name, shape, pixel_nm):
    movie = open_movie(samples / name)
    assert movie.shape == shape
    assert movie.metadata.pixel_size_nm == pytest.approx(pixel_nm)
    frame = movie[0]
    assert frame.dtype == np.float32 and np.isfinite(frame).all() and frame.std() > 0
