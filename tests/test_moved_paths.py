"""Old import paths of moved names still work for one release, with a DeprecationWarning."""

import importlib

import pytest

POLY = "pyrolatent.data.synthetic.polygons"
STEREO = "pyrolatent.data.synthetic.stereo"

MOVED = [
    ("pyrolatent.infer.checkpoint", "save_checkpoint", "pyrolatent.io.checkpoint"),
    ("pyrolatent.infer.checkpoint", "load_checkpoint", "pyrolatent.io.checkpoint"),
    ("pyrolatent.infer.checkpoint", "CheckpointError", "pyrolatent.io.checkpoint"),
    ("pyrolatent.workflow.io", "atomic_write", "pyrolatent.io.files"),
    ("pyrolatent.workflow.io", "save_npy", "pyrolatent.io.files"),
    ("pyrolatent.workflow.io", "load_table", "pyrolatent.io.files"),
    ("pyrolatent.workflow.io", "is_valid_file", "pyrolatent.io.files"),
    ("pyrolatent.data.io", "read_movie", "pyrolatent.io.movie"),
    ("pyrolatent.analysis.angles", "wrap_angle", "pyrolatent.primitives.angles"),
    ("pyrolatent.analysis.angles", "evaluate_angles", "pyrolatent.primitives.angles"),
    ("pyrolatent.analysis.angles", "calibrate_offset", "pyrolatent.primitives.angles"),
    ("pyrolatent.nn.angle", "fit_stereo_pairs", "pyrolatent.stereo.fit"),
    ("pyrolatent.nn.angle", "pair_consistency_loss", "pyrolatent.stereo.losses"),
    ("pyrolatent.nn.angle", "periodic_loss", "pyrolatent.stereo.losses"),
    ("pyrolatent.nn.angle", "angle_to_phase", "pyrolatent.primitives.angles"),
    ("pyrolatent.spi.radial", "RadialNormalizer", "pyrolatent.primitives.radial"),
    ("pyrolatent.spi.radial", "radial_profile", "pyrolatent.primitives.radial"),
    ("pyrolatent.spi.radial", "radius_map", "pyrolatent.primitives.radial"),
    ("pyrolatent.primitives.so3", "point_group", "pyrolatent.primitives.groups"),
    ("pyrolatent.primitives.so3", "canonicalize", "pyrolatent.primitives.groups"),
    ("pyrolatent.primitives.so3", "misorientation", "pyrolatent.primitives.groups"),
    ("pyrolatent.primitives.so3", "orientation_grid", "pyrolatent.primitives.groups"),
    ("pyrolatent.primitives.so3", "proper_part", "pyrolatent.primitives.groups"),
    (POLY, "make_stereo_pairs", STEREO),
    (
        POLY,
        "make_polyhedron_pairs",
        STEREO,
    ),
    (POLY, "POLYHEDRA", STEREO),
    ("pyrolatent.segmentation.ensemble", "train_ensemble", "pyrolatent.segmentation.train"),
]


def test_split_modules_keep_their_public_names():
    from pyrolatent.data.synthetic import densities, spi
    from pyrolatent.segmentation import ensemble, members, sampling

    assert ensemble.stack_members is members.stack_members
    assert ensemble.unstack_members is members.unstack_members
    assert ensemble.prepare_training_data is sampling.prepare_training_data
    assert spi.shape_density is densities.shape_density
    assert spi.SHAPE_KINDS is densities.SHAPE_KINDS


def test_one_wrap_angle():
    import pyrolatent.distributions as d
    import pyrolatent.primitives as p
    from pyrolatent.primitives.angles import wrap_angle

    assert d.wrap_angle is wrap_angle and p.wrap_angle is wrap_angle


@pytest.mark.parametrize(("old", "name", "new"), MOVED, ids=[f"{o}.{n}" for o, n, _ in MOVED])
def test_old_path_forwards_with_warning(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=new):
        obj = getattr(module, name)
    assert obj is getattr(importlib.import_module(new), name)
