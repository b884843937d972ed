"""pyrolatent.io: the one atomic writer, checkpoints and plain files through it."""

import numpy as np
import pytest
import torch

from pyrolatent.io.atomic import atomic_write
from pyrolatent.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pyrolatent.io.files import is_valid_file, load_npy, save_npy


def test_atomic_write_keeps_old_file_and_no_temporary_on_failure(tmp_path):
    target = tmp_path / "a.npy"
    save_npy(target, np.arange(3))

    def broken(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError, match="crash"):
        atomic_write(target, broken)
    np.testing.assert_array_equal(load_npy(target), np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]


def test_checkpoint_and_npy_share_the_writer(tmp_path, monkeypatch):
    calls = []
    import pyrolatent.io.atomic as atomic

    original = atomic.os.replace

    def spy(src, dst):
        calls.append(str(dst))
        return original(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)
    save_checkpoint({"w": torch.ones(2)}, tmp_path / "sub" / "c.pt")
    save_npy(tmp_path / "x.npy", np.zeros(2))
    assert calls == [str(tmp_path / "sub" / "c.pt"), str(tmp_path / "x.npy")]
    assert torch.equal(load_checkpoint(tmp_path / "sub" / "c.pt")["w"], torch.ones(2))
    assert is_valid_file(tmp_path / "sub" / "c.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert not is_valid_file(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "bad.pt")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_and_folders_follow_the_umask(tmp_path, umask):
    import os
    import stat

    from pyrolatent.io.atomic import current_umask
    from pyrolatent.io.files import save_json

    old = os.umask(umask)
    try:
        assert current_umask() == umask
        npy = save_npy(tmp_path / "new" / "deeper" / "a.npy", np.arange(3))
        js = save_json(tmp_path / "b.json", {"a": 1})
        ckpt = save_checkpoint({"w": torch.ones(1)}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    for p in (npy, js, ckpt):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~umask, p
    for d in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o777 & ~umask, d
