"""Checkpoint format 2: checksum, version, one CheckpointError per failure, bounded configs,
stale temporary files of killed saves removed (issue 16)."""

import os
import subprocess
import sys

import pytest
import torch

from pyrolatent.io.atomic import stale_temporaries
from pyrolatent.io.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    check_config,
    load_checkpoint,
    save_checkpoint,
)


@pytest.fixture
def ckpt(tmp_path):
    return save_checkpoint({"kind": "T", "w": torch.arange(64.0)}, tmp_path / "c.pt")


def test_format_version_and_checksum_are_stored(ckpt):
    outer = torch.load(ckpt, weights_only=True)
    assert outer["pyrolatent_format"] == FORMAT_VERSION == 2
    assert len(outer["sha256"]) == 64
    assert torch.equal(load_checkpoint(ckpt)["w"], torch.arange(64.0))


def test_empty_file_is_a_checkpoint_error(tmp_path):
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "e.pt")


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file_is_a_checkpoint_error(ckpt, keep):
    raw = ckpt.read_bytes()
    ckpt.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(CheckpointError, match="truncated|corrupted"):
        load_checkpoint(ckpt)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_no_single_byte_flip_loads_a_changed_tensor(ckpt):
    """Every 3rd byte flipped in turn: either a CheckpointError or the exact original content."""
    raw = ckpt.read_bytes()
    refused = 0
    for i in range(0, len(raw), 3):
        flipped = bytearray(raw)
        flipped[i] ^= 0x10
        ckpt.write_bytes(bytes(flipped))
        try:
            state = load_checkpoint(ckpt)
        except CheckpointError:
            refused += 1
            continue
        assert torch.equal(state["w"], torch.arange(64.0)), f"byte {i}: changed tensor loaded"
        assert state["kind"] == "T"
    assert refused > len(raw) // 9  # every flip in the payload is caught by the checksum


def test_payload_flip_says_checksum(ckpt):
    outer = torch.load(ckpt, weights_only=True)
    outer["payload"][-40] ^= 1
    torch.save(outer, ckpt)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(ckpt)


def test_newer_format_and_foreign_files(tmp_path):
    torch.save({"pyrolatent_format": 99}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        load_checkpoint(tmp_path / "new.pt")
    torch.save({"w": torch.ones(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a pyrolatent checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_format_1_files_still_load(tmp_path):
    torch.save({"pyrolatent_format": 1, "w": torch.ones(2)}, tmp_path / "old.pt")
    assert torch.equal(load_checkpoint(tmp_path / "old.pt")["w"], torch.ones(2))


def test_config_values_are_bounded(tmp_path):
    ok = {"image_size": [32, 32], "latent_dim": 2, "hidden": [128, 128], "lr": 1e-3}
    assert check_config(ok, "x.pt") is ok
    bad = [
        ({"image_size": [200000, 200000]}, "out of range"),
        ({"image_size": [4096, 4096]}, "pixels"),
        ({"image_size": [32]}, r"not \(H, W\)"),
        ({"latent_dim": -1}, "out of range"),
        ({"latent_dim": 2.5}, "not an integer"),
        ({"hidden": [10**9]}, "out of range"),
        ({"hidden": [8] * 1000}, "entries"),
        ({"sigma": float("nan")}, "not finite"),
    ]
    for config, why in bad:
        with pytest.raises(CheckpointError, match=why):
            check_config(config, "x.pt")


_KILLED_SAVE = """
import os, sys, torch
from pyrolatent.io.checkpoint import save_checkpoint
import pyrolatent.io.atomic as atomic
def hang(tmp):  # the save is killed while the temporary file exists
    open(tmp, "wb").write(b"partial")
    print("writing", flush=True)
    os.kill(os.getpid(), 9)
atomic.atomic_write(sys.argv[1], hang)
"""


def test_save_removes_temporaries_of_killed_saves(tmp_path):
    target = tmp_path / "run.pt"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    names = []
    for _ in range(2):  # the second killed save removes the first one's file
        proc = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(target)], env=env,
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == -9, proc.stderr
        left = [p.name for p in tmp_path.iterdir()]
        assert len(left) == 1 and ".tmp" in left[0] and left[0] not in names, left
        names += left
    assert len(stale_temporaries(target)) == 1
    save_checkpoint({"w": torch.ones(1)}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_live_writers_temporaries_are_kept(tmp_path):
    """A temporary file of a running process (here: this one) is not stale."""
    target = tmp_path / "a.pt"
    mine = tmp_path / f".a.pt.{os.getpid()}.abcdefgh.tmp.pt"
    mine.write_bytes(b"x")
    save_checkpoint({"w": torch.ones(1)}, target)
    assert mine.exists()
