"""Fuzz strategies for the ``pyrolatent`` command on files (issue 16).

Each case writes input files of a drawn kind (valid, or spoiled: wrong shape,
bool/complex/int dtypes, NaN, empty, random bytes, text, a directory, a missing
path, a TIFF) and runs one subcommand. The contract: exit status 0, or 2 with
exactly one line on stderr; argparse's own usage errors (``SystemExit(2)``) are
allowed; nothing else may escape.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tifffile
from hypothesis import strategies as st

from pyrolatent.cli import main

ARRAY_KINDS = ("valid",) * 8 + ("4d", "2d", "bool", "complex", "int", "nan", "empty",
               "bytes", "text", "dir", "missing", "tif", "object")  # fmt: skip
TABLE_KINDS = ("valid",) * 8 + ("npy", "bytes", "empty", "no_rows", "missing_col",
               "nan", "fraction", "dir", "missing")  # fmt: skip


def write_array(path: Path, kind: str, shape, seed: int, low=0.0, high=1.0) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.uniform(low, high, size=shape).astype(np.float32)
    if kind == "valid":
        np.save(path, arr)
    elif kind == "4d":
        np.save(path, arr[:, None])
    elif kind == "2d":
        np.save(path, arr[0])
    elif kind == "bool":
        np.save(path, arr > 0.5)
    elif kind == "complex":
        np.save(path, arr.astype(np.complex64))
    elif kind == "int":
        np.save(path, (arr * 10).astype(np.int16))
    elif kind == "nan":
        arr.flat[seed % arr.size] = np.nan
        np.save(path, arr)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bytes":
        path.write_bytes(rng.bytes(64))
    elif kind == "text":
        path.write_text("frame,row,col\n0,1,2\n")
    elif kind == "dir":
        path.mkdir()
    elif kind == "tif":
        tifffile.imwrite(path, arr)
    elif kind == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return path


def write_table(path: Path, kind: str, n_frames: int, size: int, seed: int, n=6) -> Path:
    rng = np.random.default_rng(seed)
    rows = [(int(rng.integers(0, n_frames)), *rng.uniform(size * 0.3, size * 0.7, 2))
            for _ in range(n)]  # fmt: skip
    if kind in ("valid", "nan", "fraction"):
        lines = ["frame,row,col"]
        for i, (f, r, c) in enumerate(rows):
            f = f + 0.5 if kind == "fraction" and i == 0 else f
            r = "nan" if kind == "nan" and i == 0 else r
            lines.append(f"{f},{r},{c}")
        path.write_text("\n".join(lines) + "\n")
    elif kind == "npy":
        np.save(path, np.zeros((3, 3)))
    elif kind == "bytes":
        path.write_bytes(rng.bytes(64))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "no_rows":
        path.write_text("frame,row,col\n")
    elif kind == "missing_col":
        path.write_text("frame,row\n0,1\n")
    elif kind == "dir":
        path.mkdir()
    return path


def run_cli(argv) -> tuple[int, str]:
    """Exit status and stderr of ``pyrolatent argv`` (argparse exits count as status 2)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
            return code, "usage"
    return code, err.getvalue()


@st.composite
def cli_case(draw, command: str):
    """``(argv builder, description)``: a function of a fresh folder giving argv."""
    seed = draw(st.integers(0, 10**6))
    a_kind = draw(st.sampled_from(ARRAY_KINDS))
    t_kind = draw(st.sampled_from(TABLE_KINDS))
    b_kind = draw(st.sampled_from(ARRAY_KINDS))

    def build(d: Path):
        if command == "preprocess":
            movie = write_array(d / "movie.npy", a_kind, (4, 16, 16), seed)
            return ["preprocess", movie, "--level", level, "--out", d / "out"]
        if command == "locate":
            prob = write_array(d / "prob.npy", a_kind, (3, 16, 16), seed)
            argv = ["locate", prob, "--min-area", "1", "--out", d / "out"]
            if draw_variance:
                argv[2:2] = ["--variance", write_array(d / "var.npy", b_kind, (3, 16, 16), seed)]
            return argv
        if command == "crops":
            movie = write_array(d / "movie.npy", a_kind, (3, 16, 16), seed)
            table = write_table(d / "particles.csv", t_kind, 3, 16, seed)
            return ["crops", movie, table, "--window", window, "--out", d / "out"]
        if command == "train":
            crops = write_array(d / "crops.npy", a_kind, (6, 8, 8), seed)
            index = write_table(d / "index.csv", t_kind, 3, 8, seed)
            return ["train", crops, index, "--epochs", "1", "--batch-size", "3", "--out",
                    d / "out", "--quiet"]  # fmt: skip
        if command == "segment":
            movie = write_array(d / "movie.npy", a_kind, (3, 16, 16), seed)
            fast = ["--members", "2", "--steps", "2", "--out", d / "out", "--quiet"]
            if draw_variance:  # label images of some frames (as annotation tools save them)
                labels = write_array(d / "labels.npy", b_kind, (2, 16, 16), seed, high=3.0)
                if b_kind == "valid":  # particle ids are integers
                    np.save(labels, np.load(labels).astype(np.int32))
                return ["segment", movie, "--labels", labels, "--label-frames", frames, *fast]
            masks = write_array(d / "masks.npy", b_kind, (3, 16, 16), seed)
            return ["segment", movie, "--masks", masks, "--train-frames", "0", "1", *fast]
        if command == "analyze":
            lat = write_table(d / "latents.csv", t_kind, 10, 16, seed, n=14)
            if lat.is_file() and t_kind == "valid":  # a latent table needs angle and z
                lines = lat.read_text().splitlines()
                rng = np.random.default_rng(seed)
                lat.write_text("\n".join([lines[0] + ",angle,z_0,z_1"] + [
                    f"{ln},{rng.uniform(-3, 3)},{rng.normal()},{rng.normal()}"
                    for ln in lines[1:]]) + "\n")  # fmt: skip
            parts = write_table(d / "particles.csv", draw_parts, 10, 16, seed, n=14)
            return ["analyze", lat, parts, "--nmf", "map", "--nmf-steps", "3", "--out", d / "out",
                    "--quiet"]  # fmt: skip
        if command == "report":
            folder = d / "run"
            folder.mkdir()
            if a_kind != "missing":
                write_array(folder / "analysis.json", a_kind, (2, 2), seed)
            return ["report", folder]
        if command == "demo":
            target = d / "out"
            target.write_text("a file where the output folder should be")
            return ["demo", "--quick", "--out", target, "--quiet"]
        raise ValueError(command)

    draw_variance = draw(st.booleans())
    frames = draw(st.sampled_from(["0,2", "1,0", "0", "0,3", "1,1", "-1,0", "a,b", "0,1,2"]))
    window = draw(st.sampled_from(["4", "6", "0", "-2", "100", "2.5", "nan"]))
    draw_parts = draw(st.sampled_from(TABLE_KINDS))
    level = draw(st.sampled_from(["none", "plane", "quadratic", "cubic", "tilt"]))
    return build, f"{command}: array {a_kind}, table {t_kind}, other {b_kind}"


def check_cli_case(build, note: str) -> int:
    """Run one case in a fresh folder; assert the contract; return the exit status."""
    d = Path(tempfile.mkdtemp(prefix="pyrolatent-fuzz-"))
    try:
        code, err = run_cli(build(d))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert code in (0, 2), f"{note}: exit status {code}"
    if code == 2 and err != "usage":
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("train: resum")]
        assert len(lines) == 1 and ": error: " in lines[0], f"{note}: stderr {err!r}"
    return code
