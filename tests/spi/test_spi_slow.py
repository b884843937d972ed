"""Acceptance-size checks of orientation search and phase retrieval (slow)."""

import pytest
import torch

from pyrolatent.data.synthetic.spi import intensity_volume, shape_density, simulate_patterns
from pyrolatent.primitives.groups import misorientation
from pyrolatent.spi import OrientationSearch, aligned_correlation, phase_retrieval


@pytest.mark.slow
def test_orientation_search_full_grid_cube_patterns():
    # the paper's grid size in the O_h zone; measured median 1.3 degrees at 33^3
    cube = intensity_volume(shape_density("cube", 33))
    sim = simulate_patterns(cube, 200, photons=1e4, seed=1)
    search = OrientationSearch(
        cube, n_orientations=16407, group="Oh", friedel=True, mask=sim["mask"]
    )
    found = search.search(sim["patterns"], progress=False)
    err = torch.rad2deg(misorientation(found["rotation"], sim["rotations"], "Oh", friedel=True))
    assert float(err.median()) <= 3.0


@pytest.mark.slow
def test_phase_retrieval_65_cube_and_superellipsoid():
    for kind, p in [("cube", None), ("superellipsoid", 4.0)]:
        dens = shape_density(kind, 65, p=p)
        res = phase_retrieval(intensity_volume(dens), n_iter=200, n_er=50, seed=0, progress=False)
        assert aligned_correlation(res["density"], dens) >= 0.9  # measured 0.994 (cube)
