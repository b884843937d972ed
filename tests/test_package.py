"""The package surface: top-level names resolve, the device policy, validation."""

import pytest
import torch

import pyrolatent
from pyrolatent.checks import as_images
from pyrolatent.device import resolve_device


def test_every_top_level_name_resolves():
    for name in pyrolatent.__all__:
        assert getattr(pyrolatent, name) is not None
    with pytest.raises(AttributeError):
        pyrolatent.not_a_name  # noqa: B018


def test_device_policy(monkeypatch):
    monkeypatch.delenv("PYROLATENT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == expected
    monkeypatch.setenv("PYROLATENT_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_image_validation_messages():
    with pytest.raises(ValueError, match="numeric"):
        as_images([["a"]])
    with pytest.raises(ValueError, match="3-D"):
        as_images(torch.zeros(4, 4))
    assert as_images(torch.zeros(2, 4, 4, dtype=torch.uint8)).dtype == torch.float32


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("pyrolatent.models.rvae", "RVAE", "pyrolatent.estimators.rvae"),
        ("pyrolatent.models.ssrvae", "SSRVAE", "pyrolatent.estimators.ssrvae"),
        ("pyrolatent.models.volume_vae", "VolumeVAE", "pyrolatent.estimators.volume_vae"),
        ("pyrolatent.models.nmf", "NMF", "pyrolatent.estimators.nmf"),
        ("pyrolatent.models.nmf", "order_samples", "pyrolatent.estimators.nmf"),
        ("pyrolatent.models.wrapper", "ImageModelWrapper", "pyrolatent.estimators.base"),
    ],
)
def test_old_estimator_paths_forward_with_a_deprecation_warning(old, name, new):
    import importlib

    with pytest.warns(DeprecationWarning, match=new):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)
    top = getattr(pyrolatent, name, None)
    assert top is None or top is value
