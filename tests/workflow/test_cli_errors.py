"""The CLI turns every user error into one line on stderr and exit code 2 (issue 16).

The line names the file and what was expected; Ctrl-C ends with one line and the
resume hint (exit 130); an internal error still shows its traceback.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

import pyrolatent.workflow as wf
from pyrolatent.cli import main


@pytest.fixture
def files(tmp_path):
    d = tmp_path
    rng = np.random.default_rng(0)
    np.save(d / "p4.npy", rng.random((2, 1, 8, 8), dtype=np.float32))
    np.save(d / "crops_bool.npy", rng.random((4, 8, 8)) > 0.5)
    np.save(d / "crops_complex.npy", np.ones((4, 8, 8), np.complex64))
    np.save(d / "crops_5d.npy", np.ones((1, 1, 4, 8, 8), np.float32))
    np.save(d / "crops.npy", rng.random((4, 8, 8), dtype=np.float32))
    np.save(d / "crops16.npy", rng.random((4, 16, 16), dtype=np.float32))
    (d / "empty.npy").write_bytes(b"")
    tifffile.imwrite(d / "movie.tif", rng.random((2, 8, 8), dtype=np.float32))
    shutil.copy(d / "movie.tif", d / "tif_named.npy")
    (d / "index.csv").write_text("frame,row,col\n0,4,4\n0,5,4\n1,4,4\n1,4,5\n")
    (d / "dir").mkdir()
    return d


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def _train(crops, index, out):
    return ["train", crops, index, "--epochs", "1", "--batch-size", "2", "--out", out, "--quiet"]


CASES = {
    "locate on a 4-D probability file": (
        lambda d: ["locate", d / "p4.npy", "--out", d / "o"],
        ["p4.npy", "3-D", "(T, H, W)"],
    ),
    "train on complex crops": (
        lambda d: _train(d / "crops_complex.npy", d / "index.csv", d / "o"),
        ["crops_complex.npy", "complex", "(N, H, W)"],
    ),
    "train on 5-D crops": (
        lambda d: _train(d / "crops_5d.npy", d / "index.csv", d / "o"),
        ["crops_5d.npy", "3-D", "(N, H, W)"],
    ),
    "train on an empty .npy": (
        lambda d: _train(d / "empty.npy", d / "index.csv", d / "o"),
        ["empty.npy", "empty"],
    ),
    "train on a directory": (
        lambda d: _train(d / "dir", d / "index.csv", d / "o"),
        ["dir", "is a directory", ".npy"],
    ),
    "a .tif where a .npy is expected": (
        lambda d: ["locate", d / "tif_named.npy", "--out", d / "o"],
        ["tif_named.npy", "not a .npy", "TIFF"],
    ),
    "a .npy where a CSV is expected": (
        lambda d: _train(d / "crops.npy", d / "crops.npy", d / "o"),
        ["crops.npy", "not a CSV", ".npy array"],
    ),
    "a directory as the movie": (
        lambda d: ["crops", d / "dir", d / "index.csv", "--out", d / "o"],
        ["dir", "is a directory", "movie"],
    ),
    "a missing file": (
        lambda d: ["analyze", d / "missing.csv", d / "index.csv", "--out", d / "o"],
        ["missing.csv", "does not exist", "CSV"],
    ),
    "a missing movie": (
        lambda d: ["segment", d / "missing.tif", "--out", d / "o"],
        ["missing.tif", "does not exist", "movie"],
    ),
    "index rows that do not match the crops": (
        lambda d: _train(d / "crops16.npy", d / "p4.npy", d / "o"),
        ["p4.npy", "not a CSV"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_errors_are_one_line_and_exit_2(files, capsys, case):
    argv, words = CASES[case]
    code, err = _run(argv(files), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "allow_pickle" not in err and "pickled" not in err
    assert lines[0].startswith("pyrolatent ") and ": error: " in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_bool_crops_train_as_0_1_images(files, capsys):
    code, err = _run(_train(files / "crops_bool.npy", files / "index.csv", files / "o"), capsys)
    assert code == 0, err


def test_checkpoint_of_another_crop_size_is_one_line(files, capsys):
    out = files / "run"
    assert _run(_train(files / "crops.npy", files / "index.csv", out), capsys)[0] == 0
    code, err = _run(_train(files / "crops16.npy", files / "index.csv", out), capsys)
    lines = [line for line in err.splitlines() if line.strip() and "resuming" not in line]
    assert code == 2, err
    assert len(lines) == 1 and "rvae_checkpoint.pt" in lines[0], err
    assert "Traceback" not in err and "size mismatch" not in err


def test_ctrl_c_is_one_line_with_the_resume_hint(files, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(wf, "stage_train", interrupted)
    code, err = _run(_train(files / "crops.npy", files / "index.csv", files / "o"), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 130
    assert len(lines) == 1 and "interrupted" in lines[0] and "resume" in lines[0], err
    assert "rvae_checkpoint.pt" in lines[0]


def test_internal_errors_keep_their_traceback(files, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(wf, "stage_locate", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["locate", str(files / "p4.npy"), "--out", str(files / "o")])
