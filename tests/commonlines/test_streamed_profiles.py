"""Common lines from frames on disk (``.emc``, CXI), read block by block, match the arrays."""

import numpy as np
import pytest
import torch

from pyrolatent.commonlines import CommonLinePCA, similarity_matrix
from pyrolatent.commonlines.profiles import line_profiles, profiles_of
from pyrolatent.io.cxi import CXIFrames, write_cxi
from pyrolatent.io.emc_photons import EMCFile, write_emc
from pyrolatent.spi.emc import PhotonFrames

SIZE = 15


@pytest.fixture(scope="module")
def counts():
    gen = torch.Generator().manual_seed(0)
    c = torch.arange(SIZE) - SIZE // 2
    r = (c[:, None] ** 2 + c[None] ** 2).float().sqrt()
    rate = torch.stack([(5 * torch.exp(-r / (2 + k % 3))) * (1 + 0.5 * torch.cos(c[None] + k))
                        for k in range(11)])  # fmt: skip
    return torch.poisson(rate, generator=gen)


def test_profiles_of_a_frame_source_match_the_array(counts, tmp_path):
    write_emc(str(tmp_path / "f.emc"), PhotonFrames.from_dense(counts))
    source = EMCFile(str(tmp_path / "f.emc"))
    opts = {"n_angles": 12, "log": True, "normalize": True}
    streamed, size = profiles_of(source, block_size=4, **opts)  # three blocks of 4, 4, 3
    assert size == SIZE
    assert torch.allclose(streamed, line_profiles(counts, **opts), atol=1e-6)
    with pytest.raises(ValueError, match="at least 20"):
        profiles_of(source, min_count=20, **opts)
    with pytest.raises(ValueError, match="17 x 17 was expected"):
        profiles_of(source, size=17, **opts)
    odd = PhotonFrames.from_dense(torch.ones(3, 10))  # 10 pixels: not a square image
    with pytest.raises(ValueError, match="not square images"):
        profiles_of(odd, **opts)


def test_clpca_and_similarity_from_emc_and_cxi_files(counts, tmp_path):
    write_emc(str(tmp_path / "f.emc"), PhotonFrames.from_dense(counts))
    write_cxi(str(tmp_path / "f.cxi"), counts.numpy())
    dense = CommonLinePCA(n_components=2, n_angles=24, progress=False).fit_transform(counts)
    for source in (EMCFile(str(tmp_path / "f.emc")), CXIFrames(str(tmp_path / "f.cxi"))):
        pca = CommonLinePCA(n_components=2, n_angles=24, progress=False)
        assert np.allclose(pca.fit_transform(source), dense, atol=1e-5)
        assert np.allclose(pca.transform(source), dense, atol=1e-5)
        sim = similarity_matrix(source, n_angles=24, log=True, progress=False).similarity
        assert torch.allclose(sim, pca.similarity_, atol=1e-5)
        cross = similarity_matrix(counts[:3], other=source, n_angles=24, log=True, progress=False)
        assert torch.allclose(cross.similarity, sim[:3], atol=1e-5)
