"""Data-parallel training under torchrun with the gloo backend (2 CPU processes)."""

import torch
from recipes import run_two_processes


def test_two_process_ddp_keeps_replicas_identical_and_learns(tmp_path):
    run_two_processes("ddp_worker.py", tmp_path)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    for name, value in r0["params"].items():
        assert torch.equal(value, r1["params"][name]), name
    # the loss is the all-reduced mean over both shards: the same on both ranks
    assert r0["loss"] == r1["loss"]
    assert r0["loss"][-1] < 0.2 * r0["loss"][0]
