"""AFM readers on the sample files that AFMReader ships (its source distribution's
``tests/resources``), compared with AFMReader's own loaders.

The files come from the ``samples`` fixture (tests/afm_samples.py): cached, or
fetched once; without AFMReader or the files the tests skip.
"""

from __future__ import annotations

import numpy as np
import pytest
from afm_samples import samples  # noqa: F401  (fixture)

from pyrolatent.io.movie_formats import open_movie


def test_asd_movie_is_lazy_and_matches_afmreader(samples):  # noqa: F811
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
def test_single_afm_images(samples, name, shape, pixel_nm):  # noqa: F811
    movie = open_movie(samples / name)
    assert movie.shape == shape
    assert movie.metadata.pixel_size_nm == pytest.approx(pixel_nm)
    frame = movie[0]
    assert frame.dtype == np.float32 and np.isfinite(frame).all() and frame.std() > 0
