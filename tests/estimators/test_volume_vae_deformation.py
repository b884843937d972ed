"""The volume VAE without a point group (the default) learns the deformation of an asymmetric body.

A tiny version of ``benchmarks/volume_vae_pdb.py``: an elongated random atom
cloud (no symmetry) stretched along one of its short axes by up to 1.5, posed
Poisson frames at 10^4 photons, one latent.
"""

import numpy as np
import pytest
import torch
from recipes import run_two_processes
from recipes import stretched_cloud as make_stretched_cloud
from scipy.stats import spearmanr

from pyrolatent.estimators.volume_vae import VolumeVAE
from pyrolatent.primitives.so3 import random_rotations

SIZE, LEVELS, FRAMES, EPOCHS = 15, 9, 480, 30


def _shell_normalised_cc(a: torch.Tensor, b: torch.Tensor) -> float:
    c = torch.arange(SIZE, dtype=torch.float64) - (SIZE - 1) / 2
    r = (c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None] ** 2).sqrt()
    shell, keep = r.round().long(), (r >= 2) & (r <= (SIZE - 1) / 2)

    def norm(v):
        v = v.double()[keep]
        mean = torch.zeros(int(shell.max()) + 1, dtype=torch.float64)
        mean.index_add_(0, shell[keep], v)
        count = torch.bincount(shell[keep], minlength=mean.numel()).clamp_min(1)
        v = v / (mean / count)[shell[keep]]
        return v - v.mean()

    x, y = norm(a), norm(b)
    return float((x * y).sum() / (x.norm() * y.norm()))


@pytest.fixture(scope="module")
def stretched_cloud():
    return make_stretched_cloud(size=SIZE, levels=LEVELS, frames=FRAMES, seed=0)


def test_default_group_is_none_and_the_decoder_is_only_friedel_symmetric():
    vae = VolumeVAE(SIZE, model_options={"hidden": 16, "n_features": 8})
    assert vae.config["group"] is None and vae.model.group is None
    assert vae.model.decoder.symmetry is None
    vol = vae.generate(torch.tensor([[0.7]]))[0]
    assert torch.allclose(vol, vol.flip(0, 1, 2), atol=1e-6)  # Friedel: I(q) = I(-q)
    assert not torch.allclose(vol, vol.transpose(0, 2), atol=1e-4)  # no O_h mirror


def test_group_none_learns_a_stretch_of_an_asymmetric_cloud(stretched_cloud, tmp_path):
    s = stretched_cloud
    vols = s["volumes"]
    vae = VolumeVAE(SIZE, latent_dim=1, mask=s["mask"], seed=0)
    vae.fit(s["patterns"], s["rotations"], epochs=EPOCHS, batch_size=32, lr=3e-3,
            progress=False, method="grid")  # fmt: skip
    assert vae.epochs_trained == EPOCHS and len(vae.history["loss"]) == EPOCHS
    enc = vae.encode(s["patterns"], s["rotations"])["z"]
    z = torch.as_tensor(enc["loc"][:, 0])
    rho = abs(float(spearmanr(z.numpy(), s["level"].numpy())[0]))
    z_end = torch.stack([z[s["level"] == k].mean() for k in (0, LEVELS - 1)])[:, None]
    gen = vae.generate(z_end, normalized=False)
    own = [_shell_normalised_cc(gen[0], vols[0]), _shell_normalised_cc(gen[1], vols[-1])]
    cross = [_shell_normalised_cc(gen[0], vols[-1]), _shell_normalised_cc(gen[1], vols[0])]
    truth_cross = _shell_normalised_cc(vols[0], vols[-1])
    # seeds 0-2 (30 epochs, on the shared Trainer and its shuffling): |Spearman|
    # 0.924-0.931 (0.922-0.932 with the former own loop), own CC >= 0.970, own - cross >= 0.153
    # with the ends' own CC 0.727 (0.5 of the gap 1 - 0.727 is 0.137)
    assert rho > 0.88, rho
    assert min(own) > 0.93, (own, truth_cross)
    assert min(o - c for o, c in zip(own, cross, strict=True)) > 0.25 * (1 - truth_cross), (
        own, cross, truth_cross)  # fmt: skip
    assert np.isfinite(vae.history["loss"][-1]) and vae.history["loss"][-1] < vae.history["loss"][0]
    # the grid travels with the checkpoint: the same posterior after a round trip
    vae.save(tmp_path / "vae.pt")
    back = VolumeVAE.load(tmp_path / "vae.pt")
    z2 = back.encode(s["patterns"][:16], s["rotations"][:16])["z"]["loc"]
    assert np.allclose(z2, enc["loc"][:16], atol=1e-5)
    with pytest.raises(ValueError, match="other method"):
        vae.fit(s["patterns"][:8], s["rotations"][:8], epochs=1, progress=False)
    with pytest.raises(ValueError, match="callbacks"):
        vae.fit(s["patterns"][:8], s["rotations"][:8], epochs=1, progress=False, method="grid",
                callbacks=[lambda *a: None])  # fmt: skip


def test_point_set_encoder_is_friedel_invariant_and_trains():
    from pyrolatent.guides.volume_vae import VolumeVAEGuide

    guide = VolumeVAEGuide(SIZE, latent_dim=1, likelihood="poisson", encoder="points")
    x = torch.poisson(torch.full((3, SIZE, SIZE), 4.0), generator=torch.Generator().manual_seed(1))
    x = x + x.flip(-1, -2)  # a centrosymmetric pattern is the same at R and R Rz(pi)
    rot = random_rotations(3, generator=torch.Generator().manual_seed(2))
    rz = torch.diag(torch.tensor([-1.0, -1.0, 1.0]))
    loc, scale = guide.encode(x, rot)
    loc2, _ = guide.encode(x, rot @ rz)
    assert torch.allclose(loc, loc2, atol=1e-5) and bool((scale > 0).all())
    bright = x.clone()
    bright[:, :5] *= 20  # photons moved to one side: the encoding moves
    assert float((loc - guide.encode(bright, rot)[0]).abs().min()) > 1e-4
    with pytest.raises(ValueError, match="encoder"):
        VolumeVAEGuide(SIZE, encoder="mlp")
    vae = VolumeVAE(SIZE, encoder="points", model_options={"hidden": 16, "n_features": 8})
    vae.fit(x, rot, epochs=2, batch_size=3, progress=False)
    assert np.isfinite(vae.history["loss"][-1]) and vae.encode(x, rot)["z"]["loc"].shape == (3, 1)


def test_posed_grid_likelihood_at_the_identity_matches_the_direct_slices():
    from pyrolatent.primitives.so3 import local_offsets

    vae = VolumeVAE(SIZE, model_options={"hidden": 16, "n_features": 8})
    x = torch.poisson(torch.full((4, SIZE, SIZE), 3.0), generator=torch.Generator().manual_seed(3))
    z = torch.linspace(-1, 1, 3)[:, None]
    eye = torch.eye(3).expand(4, 3, 3)
    vae.fit(x, eye, epochs=0, progress=False, method="grid")  # the radial profile only
    direct = vae.model.grid_log_likelihood(x, eye, z)
    # at R = I the slice plane hits voxel centres: trilinear sampling is exact
    posed = vae.model.posed_grid_log_likelihood(x, eye, z, torch.eye(3)[None])
    assert posed.shape == (4, 3, 1)
    assert torch.allclose(posed[..., 0], direct, rtol=1e-5, atol=1e-3)
    offsets, _ = local_offsets(0.08, 0.04)
    assert vae.model.posed_grid_log_likelihood(x, eye, z, offsets).shape == (4, 3, 33)


def test_pose_ball_recovers_the_stretch_from_perturbed_orientations(stretched_cloud, tmp_path):
    """Orientations 6 deg off (as from EMC): the ball sums each frame's pose out."""
    from pyrolatent.primitives.groups import misorientation
    from pyrolatent.primitives.so3 import axis_angle_to_matrix
    from pyrolatent.spi.emc import orientation_errors

    s = stretched_cloud
    n = s["rotations"].shape[0]
    axis = torch.randn(n, 3, generator=torch.Generator().manual_seed(10))
    given = s["rotations"] @ axis_angle_to_matrix(axis, torch.full((n,), np.deg2rad(6.0)))
    vae = VolumeVAE(SIZE, latent_dim=1, mask=s["mask"], seed=0)
    vae.fit(s["patterns"], given, epochs=EPOCHS, batch_size=32, lr=3e-3, progress=False,
            method="grid", pose_radius=0.08, pose_spacing=0.04)  # fmt: skip
    enc = vae.encode(s["patterns"], given)
    rho = abs(float(spearmanr(enc["z"]["loc"][:, 0], s["level"].numpy())[0]))
    refined = torch.as_tensor(enc["rotation"])
    err = float(torch.rad2deg(orientation_errors(refined, s["rotations"])).median())
    # seeds 0-2 (VAE and perturbation, on the Trainer): |Spearman| 0.891-0.907 with the
    # ball (0.894-0.898 with the former own loop), 0.59-0.65 with the perturbed orientations
    # as given (0.92-0.93 with the true ones); the refined orientations 3.16-3.19 deg from
    # the truth (the ball reaches 4.6 deg of the 6)
    assert rho > 0.85, rho
    assert err < 4.0, err
    # the refined rotations are about the given ones (not their Friedel twins)
    assert float(misorientation(refined, given).max()) <= 0.08 + 1e-3
    assert enc["rotation_spread"].shape == (n,)
    vae.save(tmp_path / "vae.pt")
    back = VolumeVAE.load(tmp_path / "vae.pt")
    assert back.grid.settings == vae.grid.settings
    assert np.allclose(back.encode(s["patterns"][:8], given[:8])["z"]["loc"], enc["z"]["loc"][:8],
                       atol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="n_grid: this model was trained with 8"):
        vae.fit(s["patterns"][:8], given[:8], epochs=1, progress=False, method="grid", n_grid=5)
    # the ball may change between calls; encode uses the last one (here none)
    vae.fit(s["patterns"][:8], given[:8], epochs=1, progress=False, method="grid")
    assert "rotation" not in vae.encode(s["patterns"][:8], given[:8])
    with pytest.raises(ValueError, match="only with method='grid'"):
        VolumeVAE(SIZE).fit(s["patterns"][:8], given[:8], epochs=1, progress=False,
                            pose_radius=0.1)  # fmt: skip
    with pytest.raises(ValueError, match="spacing"):
        VolumeVAE(SIZE).fit(s["patterns"][:8], given[:8], epochs=1, progress=False,
                            method="grid", pose_radius=0.02, pose_spacing=0.04)  # fmt: skip


def test_grid_checkpoint_from_before_the_pose_ball_loads(tmp_path):
    from pyrolatent.io.checkpoint import load_checkpoint, save_checkpoint

    x = torch.poisson(torch.full((6, SIZE, SIZE), 3.0), generator=torch.Generator().manual_seed(4))
    rot = random_rotations(6, generator=torch.Generator().manual_seed(5))
    vae = VolumeVAE(SIZE, model_options={"hidden": 16, "n_features": 8})
    vae.fit(x, rot, epochs=1, batch_size=6, progress=False, method="grid")
    state = load_checkpoint(vae.save(tmp_path / "new.pt"))
    grid = state.pop("grid")
    # the layout before the pose ball (and before the Trainer)
    state["grid_z"], state["grid_history"] = grid["z"], grid["trainer"]["history"]
    save_checkpoint(state, tmp_path / "old.pt")
    back = VolumeVAE.load(tmp_path / "old.pt")
    assert back.grid.settings == {"n_grid": 8, "pose_radius": 0.0, "pose_spacing": 0.04}
    assert np.allclose(back.encode(x, rot)["z"]["loc"], vae.encode(x, rot)["z"]["loc"], atol=1e-5)
    with pytest.raises(FloatingPointError, match="lower learning rate"):
        VolumeVAE(SIZE, model_options={"hidden": 16, "n_features": 8}).fit(
            x, rot, epochs=3, batch_size=6, lr=1e9, progress=False, method="grid")  # fmt: skip


def test_grid_fit_streams_frames_from_an_emc_file(stretched_cloud, tmp_path):
    """The same fit from a Dragonfly ``.emc`` file read 100 frames at a time."""
    from pyrolatent.io.emc_photons import EMCFile, write_emc
    from pyrolatent.spi.emc import PhotonFrames

    s = stretched_cloud
    write_emc(str(tmp_path / "frames.emc"), PhotonFrames.from_dense(s["patterns"]))
    source = EMCFile(str(tmp_path / "frames.emc"))
    vae = VolumeVAE(SIZE, latent_dim=1, mask=s["mask"], seed=0)
    vae.fit(source, s["rotations"], epochs=EPOCHS, batch_size=32, lr=3e-3, progress=False,
            method="grid", block_size=100)  # fmt: skip
    in_memory = VolumeVAE(SIZE, latent_dim=1, mask=s["mask"], seed=0)
    in_memory.fit(s["patterns"], s["rotations"], epochs=0, progress=False, method="grid")
    # the radial profile and mean fluence come from one streamed pass, as in memory
    assert abs(vae.mean_total - in_memory.mean_total) < 1e-3 * in_memory.mean_total
    assert torch.allclose(vae.model.profile, in_memory.model.profile, rtol=1e-5)
    enc = vae.encode(source, s["rotations"], block_size=64)["z"]["loc"]
    assert np.allclose(enc, vae.encode(s["patterns"], s["rotations"])["z"]["loc"], atol=1e-5)
    rho = abs(float(spearmanr(enc[:, 0], s["level"].numpy())[0]))
    assert rho > 0.88, rho  # seeds 0-2 streamed: 0.921-0.934 (in memory 0.924-0.931)
    with pytest.raises(ValueError, match="need method='grid'"):
        VolumeVAE(SIZE, mask=s["mask"]).fit(source, s["rotations"], epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"expected \(480, 3, 3\)"):
        vae.fit(source, s["rotations"][:5], epochs=1, progress=False, method="grid")


def test_streamed_shards_cover_every_frame_in_equal_steps(tmp_path):
    """Under ``torchrun`` every rank must take the same number of steps (else the gradient
    all-reduce deadlocks) and the ranks together must see every frame each epoch."""
    from pyrolatent.estimators.volume_grid import StreamedBatches
    from pyrolatent.infer.batches import EpochOrder
    from pyrolatent.infer.distributed import DistributedContext
    from pyrolatent.io.emc_photons import EMCFile, write_emc
    from pyrolatent.spi.emc import PhotonFrames

    counts = torch.poisson(
        torch.full((250, SIZE * SIZE), 0.5), generator=torch.Generator().manual_seed(0)
    )
    write_emc(str(tmp_path / "f.emc"), PhotonFrames.from_dense(counts))
    rot = random_rotations(250, generator=torch.Generator().manual_seed(1))
    data = VolumeVAE(SIZE)._data(EMCFile(str(tmp_path / "f.emc")), rot, 64)  # blocks 64x3 + 58

    class Rank:  # DistributedContext's sharding rule without a process group
        shard = DistributedContext.shard

        def __init__(self, rank):
            self.rank, self.world_size, self.enabled = rank, 2, True

    source = StreamedBatches(data, lambda x, r: (x, r), batch_size=20)
    for epoch in range(6):
        seen, steps = [], []
        for rank in (0, 1):
            ep = source.epoch(EpochOrder(0, epoch, Rank(rank)))
            batches = [b[0] for b in ep]
            steps.append((len(ep), len(batches)))
            seen += [r[:, 0, 0] for _, r in batches]
        assert steps[0] == steps[1] == (8, 8)  # 2 blocks per rank, 4 steps of <= 20 each
        assert torch.isin(rot[:, 0, 0], torch.cat(seen)).all()
    single = source.epoch(EpochOrder(0, 0))
    assert len(single) == len(list(single)) == 3 * 4 + 3


def test_grid_fit_streams_under_torchrun(stretched_cloud, tmp_path):
    """Two processes, each reading its shard of the ``.emc`` file's 100-frame blocks.

    Known answer: the stretch level. Both replicas stay identical; seeds 0-2 of
    the cloud (30 epochs, 32 frames per rank and step): ``|Spearman|`` 0.925 / 0.937 /
    0.962 (one process, 32 per step: 0.921-0.934). This test uses seed 0.
    """
    from pyrolatent.io.emc_photons import write_emc
    from pyrolatent.spi.emc import PhotonFrames

    s = stretched_cloud
    write_emc(str(tmp_path / "frames.emc"), PhotonFrames.from_dense(s["patterns"]))
    torch.save({"rotations": s["rotations"], "mask": s["mask"], "size": SIZE, "epochs": EPOCHS},
               tmp_path / "data.pt")  # fmt: skip
    run_two_processes("volume_grid_ddp_worker.py", tmp_path, timeout=600)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2 and len(r0["loss"]) == EPOCHS
    for name, value in r0["params"].items():
        assert torch.equal(value, r1["params"][name]), name
    assert r0["loss"] == r1["loss"] and r0["loss"][-1] < r0["loss"][0]
    rho = abs(float(spearmanr(r0["z"][:, 0].numpy(), s["level"].numpy())[0]))
    print(f"|Spearman| {rho:.3f}")
    assert rho > 0.85, rho


def test_grid_fit_checkpoints_every_epoch_and_resumes_exactly(tmp_path):
    """Nothing lost on a crash: 2 epochs, reload, 1 more == 3 epochs in one go (pose ball on)."""
    x = torch.poisson(torch.full((20, SIZE, SIZE), 3.0), generator=torch.Generator().manual_seed(6))
    rot = random_rotations(20, generator=torch.Generator().manual_seed(7))
    opts = dict(batch_size=8, lr=3e-3, progress=False, method="grid", pose_radius=0.05,
                pose_spacing=0.05)  # fmt: skip
    small = {"hidden": 16, "n_features": 8}
    straight = VolumeVAE(SIZE, model_options=small).fit(x, rot, epochs=3, **opts)
    path = tmp_path / "grid.pt"
    VolumeVAE(SIZE, model_options=small).fit(x, rot, epochs=2, checkpoint_path=path, **opts)
    resumed = VolumeVAE.load(path)
    assert resumed.epochs_trained == 2
    resumed.fit(x, rot, epochs=1, checkpoint_path=path, **opts)
    assert np.allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-5)
    a, b = resumed.encode(x, rot), straight.encode(x, rot)
    assert np.allclose(a["z"]["loc"], b["z"]["loc"], atol=1e-5)
    assert np.allclose(a["rotation"], b["rotation"], atol=1e-5)
    assert VolumeVAE.load(path).epochs_trained == 3
