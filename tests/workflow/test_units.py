"""A user's movie in any readable format through ``segment``/``locate``/``crops``: the
layout options reach the reader and the file's pixel size and frame time reach
``segment.json`` and the particle table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyrolatent.cli import main
from pyrolatent.io.files import load_table
from pyrolatent.segmentation import DeepEnsemble, DilNet


@pytest.fixture
def user_files(tmp_path):
    """An ImageJ TIFF (0.25 um pixels, 0.5 s frames), a (T, C, H, W) HDF5 without axes,
    an untrained ensemble and probability maps with one square blob per frame."""
    tifffile = pytest.importorskip("tifffile")
    h5py = pytest.importorskip("h5py")
    movie = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    tifffile.imwrite(
        tmp_path / "movie.tif", movie, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "TYX", "finterval": 0.5, "unit": "um"},
    )  # fmt: skip
    with h5py.File(tmp_path / "tcyx.h5", "w") as f:
        f["movie"] = np.stack([movie * 0, movie], axis=1)
    DeepEnsemble(DilNet(filters=4, members=2)).save(tmp_path / "ensemble.pt")
    probability = np.zeros((3, 32, 32), np.float32)
    for t in range(3):
        probability[t, 10 + t : 15 + t, 20:25] = 1.0  # centre (12 + t, 22)
    return tmp_path, probability


def test_segment_states_the_files_units_and_locate_adds_nm_and_s(user_files, capsys):
    src, probability = user_files
    run = src / "run"
    args = ["segment", str(src / "movie.tif"), "--ensemble", str(src / "ensemble.pt")]
    assert main([*args, "--out", str(run), "--quiet"]) == 0, capsys.readouterr().err
    seg = json.loads((run / "segment.json").read_text())
    assert seg["pixel_size_nm"] == pytest.approx(250.0) and seg["frame_time_s"] == 0.5
    np.save(run / "probability.npy", probability)
    assert main(["locate", str(run / "probability.npy"), "--out", str(run)]) == 0
    table = load_table(run / "particles.csv")
    np.testing.assert_array_equal(table["frame"], [0, 1, 2])
    np.testing.assert_allclose(table["row"], [12, 13, 14])
    np.testing.assert_allclose(table["row_nm"], 250.0 * np.array([12, 13, 14]))
    np.testing.assert_allclose(table["col_nm"], [5500.0] * 3)
    np.testing.assert_allclose(table["time_s"], [0.0, 0.5, 1.0])
    # probability maps without a segment.json that states units: no unit columns
    other = src / "other"
    other.mkdir()
    np.save(other / "probability.npy", probability)
    assert main(["locate", str(other / "probability.npy"), "--out", str(other)]) == 0
    assert "row_nm" not in load_table(other / "particles.csv")


def test_ambiguous_movie_needs_axes_on_the_command_line(user_files, capsys):
    src, probability = user_files
    run = src / "run"
    args = ["segment", str(src / "tcyx.h5"), "--ensemble", str(src / "ensemble.pt")]
    assert main([*args, "--out", str(run), "--quiet"]) == 2
    assert "ambiguous" in capsys.readouterr().err
    assert main([*args, "--axes", "TCYX", "--out", str(run), "--quiet"]) == 2
    assert "channel=" in capsys.readouterr().err
    more = ["--axes", "TCYX", "--dataset", "movie", "--out", str(run), "--quiet"]
    assert main([*args, *more, "--channel", "0"]) == 0, capsys.readouterr().err
    assert np.load(run / "probability.npy").std() < 1e-6  # channel 0 is all zeros: no contrast
    assert main([*args, *more, "--channel", "1"]) == 0, capsys.readouterr().err
    assert np.load(run / "probability.npy").std() > 1e-6
    seg = json.loads((run / "segment.json").read_text())
    assert seg["pixel_size_nm"] is None and seg["frame_time_s"] is None
    np.save(run / "probability.npy", probability)
    assert main(["locate", str(run / "probability.npy"), "--out", str(run)]) == 0
    crops = ["crops", str(src / "tcyx.h5"), str(run / "particles.csv"), "--window", "8"]
    assert main([*crops, "--out", str(run)]) == 2
    assert "ambiguous" in capsys.readouterr().err
    assert main([*crops, "--axes", "TCYX", "--channel", "1", "--out", str(run)]) == 0
    crops_index = load_table(run / "crops_index.csv")
    np.testing.assert_allclose(crops_index["row"], [12, 13, 14])
