"""The deployable classifier: safetensors + JSON config, rebuilt by nn/classifier's own classes
without unpickling and without Pyro; .pt2 archives are refused unless asked (issue 16)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from pyrolatent import SSRVAE
from pyrolatent.io.checkpoint import CheckpointError
from pyrolatent.nn.classifier import (
    ImageClassifier,
    PoseCanonicalClassifier,
    export_classifier,
    load_classifier,
)

pytestmark = pytest.mark.filterwarnings("ignore:TraceEnum_ELBO found no sample sites")


@pytest.fixture(scope="module", params=["amortized", "grid"])
def trained(request):
    rng = np.random.default_rng(0)
    x = rng.random((24, 10, 10), dtype=np.float32)
    m = SSRVAE((10, 10), n_classes=3, encoder_hidden=(16,), decoder_hidden=(16,), seed=0,
               pose=request.param)  # fmt: skip
    m.fit(x[8:], x[:8], np.arange(8) % 3, epochs=1, batch_size=8, progress=False)
    return m, x


def test_ssrvae_classifier_round_trips_in_a_pyro_free_process(trained, tmp_path):
    """The amortised pose's canonical classifier and the grid pose's rotation-pooled one."""
    m, x = trained
    if m.config["pose"] == "amortized":
        assert isinstance(m.classifier, PoseCanonicalClassifier)
    else:
        assert isinstance(m.classifier, ImageClassifier) and m.classifier.views == 16
    path = m.export_classifier(tmp_path / "clf.safetensors")
    assert path.read_bytes()[:1] != b"\x80"  # not a pickle
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import torch
        from pyrolatent.nn.classifier import load_classifier
        clf = load_classifier({str(path)!r})
        x = torch.from_numpy(np.load({str(tmp_path / "x.npy")!r}))
        with torch.no_grad():
            p = torch.softmax(clf(x), -1)
        np.save({str(tmp_path / "p.npy")!r}, p.numpy())
        assert not any(m.split(".")[0] == "pyro" for m in sys.modules), "pyro was imported"
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), m.predict_proba(x), atol=1e-6)


def test_image_classifier_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    clf = ImageClassifier((8, 8), 4, hidden=(8,), encoder="conv").eval()
    path = export_classifier(clf, tmp_path / "c.safetensors")
    again = load_classifier(path)
    x = torch.rand(5, 8, 8)
    assert torch.equal(again(x), clf(x))
    pt2 = export_classifier(clf, tmp_path / "c.pt2", image_size=(8, 8))
    with pytest.raises(CheckpointError, match="allow_pt2"):
        load_classifier(pt2)
    assert torch.allclose(load_classifier(pt2, allow_pt2=True)(x), clf(x), atol=1e-6)
    for bad, why in [(b"", "empty|readable"), (b"\x80\x04garbage", "readable"),
                     (path.read_bytes()[:-10], "readable")]:  # fmt: skip
        (tmp_path / "bad.safetensors").write_bytes(bad)
        with pytest.raises(CheckpointError, match=why):
            load_classifier(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="directory"):
        load_classifier(tmp_path)


def test_config_out_of_range_or_weights_that_do_not_fit(tmp_path):
    from safetensors.torch import load_file, save_file

    clf = ImageClassifier((8, 8), 4, hidden=(8,))
    path = export_classifier(clf, tmp_path / "c.safetensors")
    tensors = load_file(path)
    meta = {"format": "pyrolatent-classifier", "version": "1", "kind": "ImageClassifier"}
    cases = [
        ('{"image_size": [200000, 200000], "n_classes": 4, "hidden": [8], '
         '"activation": "tanh", "encoder": "mlp"}', "out of range"),
        ('{"image_size": [8, 8], "n_classes": 5, "hidden": [8], "activation": "tanh", '
         '"encoder": "mlp"}', "do not fit"),
        ("not json", "malformed"),
    ]  # fmt: skip
    for config, why in cases:
        save_file(tensors, tmp_path / "v.safetensors", metadata={**meta, "config": config})
        with pytest.raises(CheckpointError, match=why):
            load_classifier(tmp_path / "v.safetensors")


def test_rotation_pooled_classifier_is_invariant_and_round_trips(tmp_path):
    """``views > 1``: logits barely move when the particle turns or moves; the file keeps it."""
    from pyrolatent.primitives import warp_images

    torch.manual_seed(0)
    clf = ImageClassifier((32, 32), 4, hidden=(32, 32), views=16).eval()
    x = torch.zeros(4, 32, 32)
    x[:, 10:20, 12:16] = 1.0
    x[:, 10:13, 12:24] = 1.0  # an asymmetric "F"-like particle
    x = warp_images(x, offset=torch.tensor([[2.0, 1.0]] * 4))
    turned = warp_images(x, angle=torch.tensor([0.4, 1.1, 2.5, -2.0]),
                         offset=torch.tensor([[-1.0, 2.0]] * 4))  # fmt: skip
    plain = ImageClassifier((32, 32), 4, hidden=(32, 32)).eval()
    moved = (clf(turned) - clf(x)).abs().max() / clf(x).abs().max()
    moved_plain = (plain(turned) - plain(x)).abs().max() / plain(x).abs().max()
    # measured 0.03 pooled vs 1.1 plain (views=16: the residual is interpolation and the
    # turns between the 16 copies)
    assert moved < 0.2 and moved < 0.3 * moved_plain, (moved, moved_plain)
    again = load_classifier(export_classifier(clf, tmp_path / "p.safetensors"))
    assert again.views == 16
    assert torch.equal(again(x), clf(x))
    with pytest.raises(ValueError, match="views"):
        ImageClassifier((8, 8), 4, views=0)
