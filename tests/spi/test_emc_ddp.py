"""3D EMC data-parallel under torchrun (gloo, 2 CPU processes): same volume as one process."""

import warnings

import torch
from emc_ddp_data import make_data
from recipes import run_two_processes

from pyrolatent.spi.emc import emc

warnings.filterwarnings("ignore", message="Sparse")


def test_two_process_emc_matches_one_process(tmp_path):
    run_two_processes("emc_ddp_worker.py", tmp_path)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    frames, det, kwargs = make_data()
    single = emc(frames, det, **kwargs)
    # both ranks hold the same volume, equal to one process's up to summation order
    assert torch.equal(r0["volume"], r1["volume"])
    assert torch.allclose(
        r0["volume"], single.volume, rtol=1e-4, atol=1e-6 * float(single.volume.max())
    )
    assert r0["log_likelihood"] == r1["log_likelihood"]
    assert all(
        abs(a - b) < 1e-3 * abs(b)
        for a, b in zip(r0["log_likelihood"], single.log_likelihood, strict=True)
    )
    half = len(frames) // 2
    assert torch.allclose(torch.cat([r0["scales"], r1["scales"]]), single.scales, rtol=1e-3)
    assert r0["scales"].shape[0] == half
