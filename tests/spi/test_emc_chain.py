"""An ordered chain of 3D classes (``class_chain``) for a continuously stretched particle.

A random 40-atom cloud stretched along one short axis by 1-1.5 (11 levels, each
frame at a random one), 15^3, 600 frames at 10^4 photons, true orientations
turned 4 deg about random axes and one intensity merged there (the start a
coarse search leaves); then ``local_emc(classes=3)``, then the chain.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from recipes import stretched_cloud as make_stretched_cloud
from scipy.stats import spearmanr

from pyrolatent.primitives.so3 import axis_angle_to_matrix
from pyrolatent.spi.emc import (
    PhotonFrames,
    chain_ends,
    chain_position,
    class_chain,
    local_emc,
    merge,
    orientation_errors,
)

warnings.filterwarnings("ignore", message="Sparse")
SIZE, LEVELS, FRAMES = 15, 11, 600
SEARCH = dict(radius=0.06, spacing=0.03, progress=False)


@pytest.fixture(scope="module")
def stretched():
    data = make_stretched_cloud(size=SIZE, levels=LEVELS, frames=FRAMES, seed=0)
    counts, rot, level = data["patterns"].reshape(FRAMES, -1), data["rotations"], data["level"]
    det, gen = data["detector"], data["generator"]
    axis = torch.randn(FRAMES, 3, generator=gen)
    turn = axis_angle_to_matrix(axis / axis.norm(dim=1, keepdim=True),
                                torch.full((FRAMES,), math.radians(4.0)))  # fmt: skip
    start = rot.float() @ turn
    valid = det.mask
    coords, corr = det.coords[valid].float(), det.correction[valid].float()
    num = merge(counts[:, valid], start, coords, SIZE)
    den = merge(corr[None].expand(FRAMES, -1).contiguous(), start, coords, SIZE)
    consensus = torch.where(den > 1e-9, num / den.clamp_min(1e-30), torch.zeros_like(num))
    frames = PhotonFrames.from_dense(counts)
    classified = local_emc(frames, det, (consensus, start), iterations=16, classes=3, seed=0,
                           **SEARCH)  # fmt: skip
    return det, frames, rot, level, classified


def test_chain_orders_frames_along_the_stretch(stretched):
    """Known answer: each frame's stretch level and true orientation.

    Seeds 0-4 of this generator (6 iterations, 5 classes): ``|Spearman(position,
    level)|`` 0.879 / 0.859 / 0.932 / 0.883 / 0.923 (the 3 classes, ordered by
    their true mean level, an oracle: 0.832 / 0.892 for seeds 3 / 4); median
    orientation error 3.10 -> 2.88, 4.29 -> 3.82, 1.60 -> 1.25, 4.50 -> 4.30,
    2.11 -> 1.93 deg; the classes' mean levels in order on every seed. This test
    uses seed 0.
    """
    _check_chain(stretched, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_chain_on_cuda_orders_frames_along_the_stretch(stretched):
    """The same chain with its local EMC on the GPU, the same thresholds."""
    _check_chain(stretched, device="cuda")


def _check_chain(stretched, device):
    det, frames, rot, level, classified = stretched
    chain = class_chain(frames, det, classified, classes=5, iterations=6, device=device, **SEARCH)
    assert chain.volume.shape == (5, SIZE, SIZE, SIZE) and chain.volume.device.type == "cpu"
    pos = chain_position(chain)
    assert pos.shape == (FRAMES,) and float(pos.min()) >= -1e-4 and float(pos.max()) <= 4 + 1e-4
    rho = abs(spearmanr(pos.numpy(), level.numpy())[0])
    err0 = float(torch.rad2deg(orientation_errors(classified.rotation, rot)).median())
    err1 = float(torch.rad2deg(orientation_errors(chain.rotation, rot)).median())
    hard = chain.class_probability.argmax(1)
    means = [float(level[hard == k].float().mean()) for k in range(5) if (hard == k).any()]
    print(f"|Spearman| {rho:.3f}, orientation {err0:.2f} -> {err1:.2f} deg, levels {means}")
    assert rho >= 0.8
    assert err1 <= err0 - 0.05
    steps = np.diff(means)
    assert (steps > 0).all() or (steps < 0).all()


def test_chain_resume_and_errors(stretched, tmp_path, monkeypatch):
    import pyrolatent.spi.emc.chain as module

    det, frames, rot, level, classified = stretched
    frames = frames.block(0, 200)
    classified = classified.__class__(**{
        k: (v[:200] if torch.is_tensor(v) and v.shape[:1] == (FRAMES,) else v)
        for k, v in vars(classified).items()
    })  # fmt: skip
    ck = str(tmp_path / "chain.ckpt")
    kw = dict(classes=3, iterations=4, **SEARCH)
    full = class_chain(frames, det, classified, **kw)
    calls = []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return local_emc(*args, **kwargs)

    monkeypatch.setattr(module, "local_emc", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        class_chain(frames, det, classified, checkpoint=ck, **kw)
    rerun = []

    def counted(*args, **kwargs):
        rerun.append(1)
        return local_emc(*args, **kwargs)

    monkeypatch.setattr(module, "local_emc", counted)
    again = class_chain(frames, det, classified, checkpoint=ck, **kw)
    assert len(rerun) == 2  # only iterations 3 and 4: the first two came from the file
    assert torch.allclose(again.volume, full.volume, rtol=1e-4, atol=1e-6)
    assert torch.allclose(again.rotation, full.rotation, atol=1e-5)
    with pytest.raises(ValueError, match="made with"):
        class_chain(frames, det, classified, classes=4, iterations=4, checkpoint=ck, **SEARCH)
    one = local_emc(frames, det, (classified.volume[0], classified.rotation), iterations=1,
                    **SEARCH)  # fmt: skip
    with pytest.raises(ValueError, match="classes >= 2"):
        class_chain(frames, det, one)
    with pytest.raises(ValueError, match="classes >= 3"):
        class_chain(frames, det, classified, classes=2)
    with pytest.raises(ValueError, match=">= 0"):
        class_chain(frames, det, classified, smoothing=-1.0)
    with pytest.raises(ValueError, match="frames"):
        class_chain(frames.block(0, 20), det, classified)
    with pytest.raises(ValueError, match="C >= 2"):
        chain_ends(classified.volume[:1], classified.class_weights[:1])
    a, b = chain_ends(classified.volume, classified.class_weights)
    assert 0 <= a < b < 3
