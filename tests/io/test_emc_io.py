"""File formats: Dragonfly .emc and detector files, CXI, MRC/MRCS, PDB atoms."""

import warnings

import h5py
import numpy as np
import pytest
import torch

from pyrolatent.io.cxi import CXIFrames, read_cxi, write_cxi
from pyrolatent.io.emc_photons import (
    EMCFile,
    read_dragonfly_detector,
    read_emc,
    write_dragonfly_detector,
    write_emc,
)
from pyrolatent.io.mrc import read_mrc, write_mrc
from pyrolatent.io.pdb import read_pdb_atoms
from pyrolatent.spi.emc import PhotonFrames, flat_detector

warnings.filterwarnings("ignore", message="Sparse")


@pytest.fixture()
def dense():
    g = torch.Generator().manual_seed(0)
    return torch.poisson(torch.full((9, 11, 11), 0.4), generator=g).int()


def test_emc_roundtrip_and_block_reads(dense, tmp_path):
    fr = PhotonFrames.from_dense(dense)
    path = str(tmp_path / "photons.emc")
    write_emc(path, fr, chunk=4)
    back = read_emc(path)
    assert torch.equal(back.to_dense(), dense.reshape(9, -1).float())
    f = EMCFile(path)
    assert len(f) == 9 and f.num_pixels == 121
    assert torch.equal(f.block(3, 7).to_dense(), dense.reshape(9, -1)[3:7].float())
    raw = np.fromfile(path, dtype="<i4")
    assert list(raw[:3]) == [9, 121, 0]
    # the file stores ones and multi-photon pixels separately, as Dragonfly does
    assert raw[256 : 256 + 9].sum() == int((dense == 1).sum())


def test_emc_files_exchange_with_dragonfly(dense, tmp_path):
    dragonfly = pytest.importorskip("dragonfly")
    theirs = str(tmp_path / "theirs.emc")
    with dragonfly.EMCWriter(theirs, 121, hdf5=False) as w:
        for frame in dense.reshape(9, -1).numpy().astype(np.int32):
            w.write_frame(frame)
    assert torch.equal(read_emc(theirs).to_dense(), dense.reshape(9, -1).float())
    ours = str(tmp_path / "ours.emc")
    write_emc(ours, PhotonFrames.from_dense(dense))
    det_path = str(tmp_path / "det.h5")
    write_dragonfly_detector(det_path, flat_detector(11, beamstop=0.0, radius=100.0))
    reader = dragonfly.EMCReader(ours, dragonfly.Detector(det_path))
    for n in (0, 4, 8):
        frame = np.asarray(reader.get_frame(n, raw=True)).ravel()
        assert np.array_equal(frame, dense[n].reshape(-1).numpy())


def test_dragonfly_detector_roundtrip(tmp_path):
    det = flat_detector(11, beamstop=2.0)
    path = str(tmp_path / "det.h5")
    write_dragonfly_detector(path, det)
    back = read_dragonfly_detector(path)
    assert torch.allclose(back.coords, det.coords) and torch.equal(back.mask, det.mask)
    with h5py.File(path, "a") as f:
        del f["qz"]
    with pytest.raises(ValueError, match="missing"):
        read_dragonfly_detector(path)


def test_cxi_roundtrip_streaming_and_errors(dense, tmp_path):
    path = str(tmp_path / "run.cxi")
    mask = np.ones((11, 11), dtype=bool)
    mask[5, 5] = False
    write_cxi(path, dense.numpy(), mask=mask, distance=0.3, pixel_size=75e-6, wavelength=6e-10)
    info = read_cxi(path)
    assert np.array_equal(info["patterns"], dense.numpy())
    assert np.array_equal(info["mask"], mask)
    assert info["distance"] == pytest.approx(0.3) and info["wavelength"] == pytest.approx(6e-10)
    with h5py.File(path, "r") as f:  # the standard CXI paths, read by h5py itself
        assert f["entry_1/data_1/data"].shape == (9, 11, 11)
        assert int(f["entry_1/instrument_1/detector_1/mask"][5, 5]) != 0
    frames = CXIFrames(path)
    assert len(frames) == 9 and frames.num_pixels == 121
    assert torch.equal(frames.block(2, 5).to_dense(), dense.reshape(9, -1)[2:5].float())
    # a CXI file written by h5py alone, with only the data_1 path
    other = str(tmp_path / "other.cxi")
    with h5py.File(other, "w") as f:
        f["entry_1/data_1/data"] = dense.numpy()
    assert read_cxi(other)["patterns"].shape == (9, 11, 11)
    empty = str(tmp_path / "empty.cxi")
    with h5py.File(empty, "w") as f:
        f["entry_1/something"] = 1
    with pytest.raises(ValueError, match="no pattern dataset"):
        read_cxi(empty)
    with pytest.raises(ValueError, match="mask"):
        write_cxi(str(tmp_path / "bad.cxi"), dense.numpy(), mask=np.ones((10, 11), bool))
    with pytest.raises(ValueError, match="negative"):
        write_cxi(str(tmp_path / "neg.cxi"), -dense.numpy() - 1)
    negative = str(tmp_path / "neg2.cxi")
    with h5py.File(negative, "w") as f:
        f["entry_1/data_1/data"] = -np.ones((2, 3, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="negative"):
        read_cxi(negative)
    with pytest.raises(ValueError, match="negative"):
        CXIFrames(negative).block(0, 2)
    wrong_mask = str(tmp_path / "wm.cxi")
    with h5py.File(wrong_mask, "w") as f:
        f["entry_1/data_1/data"] = dense.numpy()
        f["entry_1/instrument_1/detector_1/mask"] = np.zeros((4, 4), np.uint32)
    with pytest.raises(ValueError, match="mask shape"):
        read_cxi(wrong_mask)


def test_mrc_volumes_and_stacks(tmp_path):
    mrcfile = pytest.importorskip("mrcfile")
    vol = np.random.default_rng(0).random((9, 9, 9)).astype(np.float32)
    path = str(tmp_path / "vol.mrc")
    write_mrc(path, vol, voxel_size=1.5)
    with mrcfile.open(path) as m:  # read back by mrcfile itself
        assert np.array_equal(m.data, vol) and m.is_volume()
        assert float(m.voxel_size.x) == pytest.approx(1.5)
    stack_path = str(tmp_path / "stack.mrcs")
    with mrcfile.new(stack_path) as m:  # written by mrcfile, read by us
        m.set_data(vol[:4])
        m.set_image_stack()
    info = read_mrc(stack_path)
    assert info["is_stack"] and np.array_equal(info["data"], vol[:4])
    bad = str(tmp_path / "bad.mrc")
    with open(bad, "wb") as fh:
        fh.write(b"not an mrc file" * 100)
    with pytest.raises(ValueError, match="MRC"):
        read_mrc(bad)


def test_pdb_atoms(tmp_path):
    lines = [
        "ATOM      1  N   MET A   1      11.104  13.207   2.100  1.00  0.00           N",
        "ATOM      2  CA  MET A   1      12.560  13.207   2.100  1.00  0.00           C",
        "HETATM    3  O   HOH A   2       1.000   2.000   3.000  1.00  0.00           O",
        "ATOM      4  SD  MET A   1      10.000  10.000  10.000  1.00  0.00           S",
    ]
    path = tmp_path / "x.pdb"
    path.write_text("\n".join(lines) + "\n")
    pos, z = read_pdb_atoms(str(path))
    assert pos.shape == (3, 3) and list(z) == [7, 6, 16]
    assert read_pdb_atoms(str(path), hetatm=True)[0].shape == (4, 3)
    (tmp_path / "empty.pdb").write_text("HEADER\n")
    with pytest.raises(ValueError, match="no ATOM"):
        read_pdb_atoms(str(tmp_path / "empty.pdb"))
