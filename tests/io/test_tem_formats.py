"""TEM/STEM readers (``.dm3``, ``.dm4``, ``.ser``/``.emi``) on rosettasciio's own test files,
compared with what rosettasciio reads from them directly.

rosettasciio's source distribution does not ship its test data (its tests fetch them
from GitHub); the same files, byte for byte (the SHA-256 sums below are those of
rosettasciio 0.15's ``rsciio/tests/registry.txt``), are in HyperSpy 1.7.5's source
distribution (``hyperspy/tests/io``), from which rosettasciio was split. Only the
needed members (~1.7 MB of the 32 MB archive) are kept, in
``$PYROLATENT_TEST_DATA/rsciio-test-data`` or
``~/.cache/pyrolatent-test-data/rsciio-test-data``, fetched once from PyPI. Without
rosettasciio, network or the files the tests skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

from pyrolatent.io.movie import read_movie
from pyrolatent.io.movie_formats import open_movie

SDIST = "hyperspy-1.7.5.tar.gz"
# rosettasciio test-data path, then its SHA-256 (rsciio/tests/registry.txt)
REGISTRY = """
digitalmicrograph/3D/test-1.dm3
    2f15abc94e008f3433caf2c0340311762020793f86356cec8a94d0dbea343c5a
digitalmicrograph/3D/test-1.dm4
    9bf4ac7d415700fea0d70f2113703a98da33ce7f05e1f2cd998047298f2f85b4
digitalmicrograph/3D/EELS_SI.dm4
    f9b8203f384cc355437594b649d4ea3a12cddeb231ebb65508a841a379fa171a
digitalmicrograph/2D/test_STEM_image.dm3
    fcba806af75bc3c2e50e7d7b0626cba545c1464f39e99c8922b225b0b0b0224c
digitalmicrograph/2D/test-MonarcCL_mono-image.dm4
    4ea04a10ad46595de79a20c283555f299dd07b4667f6112b44db1699f28993b6
digitalmicrograph/2D/test-13.dm4
    0ed868dc3a3c105c0cc53e806c898d19de953475849dbae399161da39c86b6ee
digitalmicrograph/test_stackbuilder_imagestack.dm3
    41070d0fd25a838a504f705e1431735192b7a97ca7dd15d9328af5e939fe74a2
tia/old/64x64x5_TEM_preview.emi
    d2096088cda3a47abe6d18404aabdc0a2ae896b3940991aa6cf31c98959a4d49
tia/old/64x64x5_TEM_preview_1.ser
    08f1dc9d52bfb6da3d7d9ae4db16dbd5783332186bacbd4769e9f97a14f31d70
tia/old/64x64_TEM_images_acquire.emi
    d820ec205f047ed1db5e3a785e8f532e99ade7b70f65657aa184c6cce59f98eb
tia/old/64x64_TEM_images_acquire_1.ser
    cfb0cb9c6ba5924a8a03db2d35c4864c5d3bb9a28ebe7c8a92710d0d8bcb9a98
tia/new/128x128x5-diffraction_preview.emi
    4e450eca753cc05af99333251c8b95637d926e81b38c4a89d79f936fa317c1dc
tia/new/128x128x5-diffraction_preview_1.ser
    a605aae2e51ba2507e4c5e3af409677e4a178b1139016077c45d42646c224f27
"""
SHA256 = dict(zip(REGISTRY.split()[::2], REGISTRY.split()[1::2], strict=True))
CACHE = (
    Path(os.environ.get("PYROLATENT_TEST_DATA", Path.home() / ".cache" / "pyrolatent-test-data"))
    / "rsciio-test-data"
)


def _member(name: str) -> str:
    """Where HyperSpy 1.7.5 keeps rosettasciio's test file ``name``."""
    folder, _, file = name.rpartition("/")
    if folder == "digitalmicrograph":
        folder = "dm_stackbuilder_plugin"
    elif folder.startswith("digitalmicrograph/"):
        folder = f"dm{file[-1]}_{folder.split('/')[1]}_data"
    else:
        folder = {"tia/old": "FEI_old", "tia/new": "FEI_new"}[folder]
    return f"hyperspy-1.7.5/hyperspy/tests/io/{folder}/{file}"


def _fetch() -> None:
    request = urllib.request.Request(
        "https://pypi.org/simple/hyperspy/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=60) as page:
        entry = next(f for f in json.load(page)["files"] if f["filename"] == SDIST)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = Path(tmp) / SDIST
        urllib.request.urlretrieve(entry["url"], sdist)
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != entry["hashes"]["sha256"]:
            raise OSError(f"{SDIST}: SHA-256 {digest} differs from PyPI's")
        with tarfile.open(sdist) as tar:
            for name in SHA256:
                data = tar.extractfile(_member(name)).read()
                if hashlib.sha256(data).hexdigest() != SHA256[name]:
                    raise OSError(f"{name}: not rosettasciio's test file")
                (CACHE / name).parent.mkdir(parents=True, exist_ok=True)
                (CACHE / name).write_bytes(data)


@pytest.fixture(scope="module")
def samples() -> Path:
    pytest.importorskip("rsciio")
    if not all((CACHE / n).is_file() for n in SHA256):
        try:
            _fetch()
        except Exception as exc:  # no network: skip, do not fail
            pytest.skip(f"rosettasciio's test files are unavailable ({exc})")
    return CACHE


def _reference(path: Path) -> tuple[np.ndarray, dict]:
    """rosettasciio's own (eager) reading: data and the x axis."""
    from rsciio import digitalmicrograph, tia

    reader = tia if path.suffix in (".ser", ".emi") else digitalmicrograph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal = reader.file_reader(str(path))[0]
    return np.asarray(signal["data"]), signal["axes"][-1]


# name, shape (T, H, W), rosettasciio dtype, first pixel, pixel size (nm; None: no length unit)
STACKS = [
    ("digitalmicrograph/3D/test-1.dm3", (2, 2, 2), np.int16, 1, None),
    ("digitalmicrograph/3D/test-1.dm4", (2, 2, 2), np.int16, 1, None),
    ("digitalmicrograph/test_stackbuilder_imagestack.dm3", (3, 2, 16), np.uint32, 606491, 59.98290),
    ("tia/old/64x64x5_TEM_preview_1.ser", (5, 64, 64), np.float32, 2624.097, 6.281834),
    ("tia/old/64x64x5_TEM_preview.emi", (5, 64, 64), np.float32, 2624.097, 6.281834),
]
IMAGES = [
    ("digitalmicrograph/2D/test_STEM_image.dm3", (1, 68, 68), np.uint32, 33121, 0.2485380),
    ("digitalmicrograph/2D/test-MonarcCL_mono-image.dm4", (1, 2, 2), np.uint16, 10, 18325.35),
    ("tia/old/64x64_TEM_images_acquire_1.ser", (1, 64, 64), np.float32, 49154.605, 6.281834),
]


@pytest.mark.parametrize(("name", "shape", "dtype", "first", "pixel_nm"), STACKS + IMAGES)
def test_tem_files_match_rosettasciio(samples, name, shape, dtype, first, pixel_nm):
    path = samples / name
    ref, x_axis = _reference(path)
    assert ref.dtype == dtype and ref.reshape(shape).shape == shape
    assert ref.ravel()[0] == pytest.approx(first)
    movie = open_movie(path)
    assert movie.shape == shape and movie.metadata.frame_time_s is None
    if pixel_nm is None:
        assert movie.metadata.pixel_size_nm is None
    else:  # rosettasciio's scale, converted from its unit (nm or µm) to nm
        assert movie.metadata.pixel_size_nm == pytest.approx(pixel_nm, rel=1e-6)
        scale = x_axis["scale"] * {"nm": 1.0, "µm": 1e3}[x_axis["units"]]
        assert movie.metadata.pixel_size_nm == pytest.approx(scale, rel=1e-12)
    want = ref.reshape(shape).astype(np.float32)  # exact in float32 for these values
    np.testing.assert_array_equal(movie[shape[0] - 1], want[-1])  # one frame, read alone
    frames, meta = read_movie(path, return_metadata=True)
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, want)
    assert meta.pixel_size_nm == movie.metadata.pixel_size_nm


def test_ser_diffraction_units_come_from_its_emi(samples, tmp_path):
    """The .ser alone reads as 4e16 'nm' pixels in rosettasciio; its .emi says 0.042 1/nm."""
    name = "tia/new/128x128x5-diffraction_preview_1.ser"
    emi_ref, emi_x = _reference(samples / name.replace("_1.ser", ".emi"))
    assert (emi_x["units"], emi_x["scale"]) == ("1 / nm", pytest.approx(0.042464, rel=1e-5))
    ser_ref, ser_x = _reference(samples / name)
    assert (ser_x["units"], ser_x["scale"]) == ("nm", pytest.approx(4.2464e16, rel=1e-5))
    movie = open_movie(samples / name)
    assert movie.shape == (5, 128, 128)
    assert movie.metadata.pixel_size_nm is None  # reciprocal space: no pixel size in nm
    np.testing.assert_array_equal(np.asarray(movie), emi_ref.astype(np.float32))
    alone = tmp_path / "diffraction_1.ser"  # without its .emi: a unit guess, not used
    alone.write_bytes((samples / name).read_bytes())
    with pytest.warns(UserWarning, match=r"\.emi"):
        lone = open_movie(alone)
    assert lone.metadata.pixel_size_nm is None
    np.testing.assert_array_equal(lone[4], ser_ref[4].astype(np.float32))


def test_spectrum_image_and_complex_data_are_refused(samples):
    si = samples / "digitalmicrograph/3D/EELS_SI.dm4"  # (2048 energies, 2, 2) in rosettasciio
    assert _reference(si)[0].shape == (2048, 2, 2)
    with pytest.raises(ValueError, match="not an image or a stack"):
        open_movie(si)  # an energy-loss axis is not time
    with pytest.raises(ValueError, match="not an image or a stack"):
        read_movie(si)
    assert open_movie(si, axes="TYX").shape == (2048, 2, 2)  # said explicitly, it is read
    with pytest.raises(ValueError, match="complex"):
        open_movie(samples / "digitalmicrograph/2D/test-13.dm4")
