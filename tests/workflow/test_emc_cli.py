"""The ``emc`` command (``pyrolatent.workflow.emc_command``) on .emc and CXI files."""

import argparse
import json
import warnings

import numpy as np
import pytest
import torch

from pyrolatent.io.cxi import write_cxi
from pyrolatent.io.emc_photons import write_dragonfly_detector, write_emc
from pyrolatent.io.mrc import read_mrc
from pyrolatent.spi.emc import flat_detector, simulate_frames, structure_intensity
from pyrolatent.workflow import emc_command

warnings.filterwarnings("ignore", message="Sparse")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="pyrolatent")
    emc_command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    intensity, _ = structure_intensity(torch.randn(20, 3, generator=g) * 4, size=15)
    det = flat_detector(15, beamstop=1.0)
    frames, _, _ = simulate_frames(intensity, det, 40, 300, generator=g)
    return frames, det


def test_emc_command_on_emc_and_cxi(data, tmp_path):
    frames, det = data
    write_emc(str(tmp_path / "p.emc"), frames)
    write_dragonfly_detector(str(tmp_path / "det.h5"), det)
    out = tmp_path / "out"
    args = _parse(["emc", str(tmp_path / "p.emc"), "--detector", str(tmp_path / "det.h5"),
                   "--out", str(out), "--level", "1", "--iterations", "2", "--quiet"])  # fmt: skip
    summary = args.func(args)
    assert summary["iterations"] == 2 and len(summary["log_likelihood"]) == 2
    vol = read_mrc(str(out / "intensity.mrc"))["data"]
    assert vol.shape == (summary["size"],) * 3 and np.isfinite(vol).all()
    ori = np.load(out / "orientations.npz")
    assert ori["rotation"].shape == (40, 3, 3) and ori["quaternion"].shape == (40, 4)
    # the default local EMC stage: its log-likelihood, orientations with their spread
    assert summary["local_iterations"] == 4 and len(summary["local_log_likelihood"]) == 4
    assert "probability" not in ori and np.isfinite(ori["spread"]).all()
    assert json.loads((out / "emc.json").read_text())["frames"] == 40
    resumed = _parse(["emc", str(tmp_path / "p.emc"), "--detector", str(tmp_path / "det.h5"),
                      "--out", str(out), "--level", "1", "--iterations", "1", "--quiet",
                      "--resume"])  # fmt: skip
    assert resumed.func(resumed)["iterations"] == 3
    write_cxi(str(tmp_path / "p.cxi"), frames.to_dense().reshape(40, 15, 15).int().numpy(),
              mask=det.mask.reshape(15, 15).numpy())  # fmt: skip
    args = _parse(["emc", str(tmp_path / "p.cxi"), "--out", str(tmp_path / "o2"), "--level", "1",
                   "--iterations", "1", "--quiet", "--local-iterations", "0"])  # fmt: skip
    assert args.func(args)["frames"] == 40
    assert np.load(tmp_path / "o2" / "orientations.npz")["probability"].shape == (40,)
    args = _parse(["emc", str(tmp_path / "p.cxi"), "--out", str(tmp_path / "o6"), "--level", "1",
                   "--iterations", "1", "--quiet", "--local-iterations", "1", "--classes", "2",
                   "--class-iterations", "15"])  # fmt: skip
    summary = args.func(args)
    assert summary["classes"] == 2 and abs(sum(summary["class_weights"]) - 1) < 1e-5
    assert np.load(tmp_path / "o6" / "orientations.npz")["class_probability"].shape == (40, 2)
    cls = read_mrc(str(tmp_path / "o6" / "intensity_class1.mrc"))["data"]
    assert cls.shape == (summary["size"],) * 3 and np.isfinite(cls).all()
    bad = _parse(["emc", str(tmp_path / "p.cxi"), "--out", str(tmp_path / "o7"), "--quiet",
                  "--local-iterations", "0", "--classes", "2"])  # fmt: skip
    with pytest.raises(ValueError, match="classes"):
        bad.func(bad)
    bad = _parse(["emc", str(tmp_path / "p.cxi"), "--out", str(tmp_path / "o5"),
                  "--local-iterations", "-1", "--quiet"])  # fmt: skip
    with pytest.raises(ValueError, match="local-iterations"):
        bad.func(bad)
    bad = _parse(["emc", str(tmp_path / "p.emc"), "--out", str(tmp_path / "o3")])
    with pytest.raises(ValueError, match="--detector"):
        bad.func(bad)
    bad = _parse(["emc", str(tmp_path / "p.emc"), "--detector", str(tmp_path / "det.h5"),
                  "--out", str(tmp_path / "o4"), "--level", "0", "--quiet"])  # fmt: skip
    with pytest.raises(ValueError, match="level"):
        bad.func(bad)
