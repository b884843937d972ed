"""The particle table: one schema, one checker, and particle_id as the join key."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pyrolatent.data.particles import (
    PARTICLE_COLUMNS,
    check_particles,
    concat_tables,
    empty_table,
    join_on_particle_id,
)


def _table(n=4):
    return {
        "frame": np.arange(n) // 2,
        "row": np.linspace(5, 20, n),
        "col": np.linspace(7, 30, n),
    }


def test_check_adds_particle_id_and_normalises_types():
    t = check_particles({**_table(), "frame": [0.0, 0.0, 1.0, 1.0]})
    assert t["particle_id"].tolist() == [0, 1, 2, 3]
    assert t["frame"].dtype == np.int64 and t["row"].dtype == np.float64
    kept = check_particles({**_table(), "particle_id": [7, 3, 9, 1]})
    assert kept["particle_id"].tolist() == [7, 3, 9, 1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"row": None}, "missing columns"),
        ({"col": np.array([1.0, np.nan, 2.0, 3.0])}, "NaN"),
        ({"col": np.ones(3)}, "one length"),
        ({"frame": np.array([0.0, 0.5, 1.0, 1.0])}, "integers"),
        ({"particle_id": np.array([1, 1, 2, 3])}, "unique"),
    ],
)
def test_check_rejects_bad_tables(change, message):
    t = {**_table(), **change}
    t = {k: v for k, v in t.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        check_particles(t)


def test_check_frame_range():
    with pytest.raises(ValueError, match=r"frame numbers must lie in \[0, 0\]"):
        check_particles(_table(), n_frames=1)
    assert len(check_particles(_table(), n_frames=2)["frame"]) == 4


def test_join_uses_particle_id_not_row_order():
    particles = check_particles({**_table(5), "particle_id": [10, 11, 12, 13, 14]})
    # latents for three of the particles, in another order
    latents = {"particle_id": np.array([13, 10, 12]), "angle": np.array([0.3, 0.1, 0.2])}
    joined = join_on_particle_id(particles, latents, ("angle", "z_0"))
    np.testing.assert_array_equal(joined["angle"], [0.1, np.nan, 0.2, 0.3, np.nan])
    assert joined["row_of"].tolist() == [1, -1, 2, 0, -1]
    assert "z_0" not in joined
    with pytest.raises(ValueError, match="not in the particle table"):
        join_on_particle_id(particles, {"particle_id": np.array([99])}, ("angle",))
    with pytest.raises(ValueError, match="repeat"):
        join_on_particle_id(particles, {"particle_id": np.array([10, 10])}, ())
    none = {"particle_id": np.zeros(0, int), "angle": np.zeros(0)}
    empty = join_on_particle_id(empty_table(), none, ("angle",))
    assert empty["angle"].shape == (0,)


def test_concat_renumbers_particle_ids_and_locate_writes_them():
    from pyrolatent.segmentation import locate

    a, b = empty_table(), empty_table()
    assert set(concat_tables([a, b])) == set(PARTICLE_COLUMNS)
    prob = np.zeros((3, 32, 32), np.float32)
    prob[0, 4:9, 4:9] = prob[0, 20:26, 20:26] = prob[2, 10:15, 10:15] = 1
    table = locate(prob, min_area=5)
    assert table["particle_id"].tolist() == [0, 1, 2]
    assert table["frame"].tolist() == [0, 0, 2]


def test_old_import_paths_warn_and_forward():
    import importlib

    import pyrolatent.segmentation as seg

    locate_module = importlib.import_module("pyrolatent.segmentation.locate")

    with pytest.warns(DeprecationWarning, match="pyrolatent.data.particles"):
        assert locate_module.PARTICLE_COLUMNS is PARTICLE_COLUMNS
    with pytest.warns(DeprecationWarning, match="pyrolatent.data.particles"):
        assert seg.concat_tables is concat_tables
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert callable(seg.locate)
