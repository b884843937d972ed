"""AFM test frames: AFMReader's sample files as a fixture, and a synthetic AFM movie.

The synthetic movie (:func:`synthetic_afm_movie`) is written independently of
the correction code in :mod:`pyrolatent.data.afm`: known clean frames, a known
tilt, known row offsets and known streaks.

AFMReader's sample files come from its source distribution's ``tests/resources``.

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

import numpy as np
import pytest

NOISE = 0.1  # nm


def _clean(rng, size: int) -> np.ndarray:
    """Gaussian particles (2-6 nm high, 2-4 px wide) on a zero background, plus noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    img = rng.normal(0, NOISE, (size, size))
    for _ in range(size // 10):
        r, c = rng.uniform(0, size, 2)
        width, height = rng.uniform(2, 4), rng.uniform(2, 6)
        img += height * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * width**2))
    return img


def synthetic_afm_movie(
    n_frames=20, size=128, *, streaks=(), bow=0.0, offsets=0.5, jump=2.0, seed=0
):
    """``(clean, raw, tilt_range)``: the clean frames and the frames as 'recorded'.

    ``raw = clean + a x + b y + bow (x^2 + y^2) + offset(row) + 40`` with slopes of
    0.03-0.06 nm/px, row offsets ~ N(0, offsets) nm plus a step of ``jump`` nm, and
    25 streaks of 40-110 px and 3-5 nm (either sign) in the frames ``streaks``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    clean = np.stack([_clean(rng, size) for _ in range(n_frames)])
    raw = clean.copy()
    tilt_range = 0.0
    for t in range(n_frames):
        a, b = rng.uniform(0.03, 0.06, 2) * rng.choice([-1, 1], 2)
        plane = a * xx + b * yy + bow * ((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / size
        tilt_range = max(tilt_range, float(np.ptp(plane)))
        rows = rng.normal(0, offsets, size)
        rows[rng.integers(size // 4, size) :] += jump
        raw[t] += plane + rows[:, None] + 40.0
        if t in streaks:
            for _ in range(25):
                r, c0 = rng.integers(1, size - 1), rng.integers(0, size - 40)
                length = rng.integers(40, 110)
                raw[t, r, c0 : c0 + length] += rng.uniform(3, 5) * rng.choice([-1, 1])
    return clean, raw, tilt_range


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
