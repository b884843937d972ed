"""No file the library loads can run code (issue 16).

The same pickle payload (``__reduce__`` -> ``exec`` that writes a marker file) is
planted in every file type pyrolatent reads: checkpoints (the outer file and,
with a valid checksum, the inner payload), every estimator's ``load``, exported
classifiers (a pickle renamed ``.safetensors``, a ``torch.export`` archive with a
poisoned ``sample_inputs`` member), ``.npy``/``.npz`` object arrays, json/csv/tif
files holding pickle bytes, and each CLI command fed those files. Each loader must
refuse with a documented error and no marker may appear. Positive controls show
that every payload is live: the unsafe loaders (``pickle``, ``torch.load`` with
``weights_only=False``, ``np.load(allow_pickle=True)``, ``torch.export.load``) run it.
"""

import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import pyrolatent
from pyrolatent.cli import main
from pyrolatent.io.checkpoint import CheckpointError, load_checkpoint
from pyrolatent.io.files import is_valid_file, load_json, load_npy, load_table
from pyrolatent.io.movie import read_movie
from pyrolatent.nn.classifier import ImageClassifier, export_classifier, load_classifier


class Payload:
    """Unpickling this object writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _pickle_bytes(marker):
    return pickle.dumps({"kind": "RVAE", "x": Payload(marker)})


def _torch_bytes(marker):
    buf = io.BytesIO()
    torch.save({"pyrolatent_format": 1, "kind": "RVAE", "x": Payload(marker)}, buf)
    return buf.getvalue()


def _checksummed_bytes(marker):
    """A format-2 wrapper whose payload is a pickle bomb with a *valid* checksum."""
    raw = _torch_bytes(marker)
    buf = io.BytesIO()
    torch.save(
        {
            "pyrolatent_format": 2,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "nbytes": len(raw),
            "payload": torch.frombuffer(bytearray(raw), dtype=torch.uint8),
        },
        buf,
    )
    return buf.getvalue()


def _npy_bytes(marker):
    buf = io.BytesIO()
    np.save(buf, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _npz_bytes(marker):
    buf = io.BytesIO()
    np.savez(buf, frames=np.array([Payload(marker)], dtype=object))
    return buf.getvalue()


def _pt2_bytes(marker, tmp):
    """A torch.export archive of a real classifier, ``sample_inputs`` replaced by the bomb."""
    clean = export_classifier(ImageClassifier((8, 8), 3, hidden=(8,)), tmp / "clean.pt2",
                              image_size=(8, 8))  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(clean) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("sample_inputs/model.pt"):
                data = _torch_bytes(marker)
            dst.writestr(info, data)
    return out.getvalue()


MAKERS = {
    "pickle": _pickle_bytes,
    "torch": _torch_bytes,
    "checksummed": _checksummed_bytes,
    "npy": _npy_bytes,
    "npz": _npz_bytes,
}


def _estimator_loaders():
    return {
        f"{name}.load": getattr(pyrolatent, name).load
        for name in ("RVAE", "SSRVAE", "VolumeVAE", "DeepEnsemble", "AbsoluteEmbedding")
    }


def _cases(tmp):
    """``(label, payload maker, file name, loader)``: every loader x the payloads it might see."""
    cases = []
    for kind in ("pickle", "torch", "checksummed"):
        cases.append((f"load_checkpoint/{kind}", kind, "c.pt", load_checkpoint))
        cases.append((f"is_valid_file/{kind}", kind, "c.pt", is_valid_file))
        for label, loader in _estimator_loaders().items():
            cases.append((f"{label}/{kind}", kind, "m.pt", loader))
        for name in ("clf.safetensors", "clf.pt"):
            cases.append((f"load_classifier({name})/{kind}", kind, name, load_classifier))
    cases.append(("load_classifier(.pt2)", "pt2", "clf.pt2", load_classifier))
    for kind in ("npy", "pickle"):
        cases.append((f"load_npy/{kind}", kind, "x.npy", load_npy))
        cases.append((f"read_movie(.npy)/{kind}", kind, "m.npy", read_movie))
        cases.append((f"is_valid_file(.npy)/{kind}", kind, "x.npy", is_valid_file))
    cases.append(("read_movie(.npz)", "npz", "m.npz", read_movie))
    for kind in ("pickle", "torch"):
        cases.append((f"read_movie(.tif)/{kind}", kind, "m.tif", read_movie))
        cases.append((f"load_json/{kind}", kind, "a.json", load_json))
        cases.append((f"load_table/{kind}", kind, "t.csv", load_table))
    return cases


def _write(kind, name, marker, tmp):
    data = _pt2_bytes(marker, tmp) if kind == "pt2" else MAKERS[kind](marker)
    path = tmp / name
    path.write_bytes(data)
    return path


DOCUMENTED = (ValueError, TypeError, FileNotFoundError, CheckpointError)


def test_no_planted_payload_runs_in_any_loader(tmp_path):
    ran, planted = [], 0
    for i, (label, kind, name, loader) in enumerate(_cases(tmp_path)):
        case = tmp_path / f"case{i}"
        case.mkdir()
        marker = case / "RAN"
        path = _write(kind, name, marker, case)
        planted += 1
        try:
            result = loader(path)
        except DOCUMENTED:
            pass
        else:  # only the boolean probe may return, and it must say "not valid"
            assert result is False, f"{label} loaded a poisoned file"
        if marker.exists():
            ran.append(label)
    assert planted >= 40
    assert ran == [], f"{len(ran)} of {planted} payloads ran: {ran}"


CLI_CASES = [
    ("train", ["train", "{evil_npy}", "{csv}", "--epochs", "1", "--out", "{out}"]),
    ("train-resume", ["train", "{npy}", "{csv}", "--epochs", "1", "--out", "{evil_out}"]),
    ("locate", ["locate", "{evil_npy}", "--out", "{out}"]),
    ("locate-variance", ["locate", "{npy3}", "--variance", "{evil_npy}", "--out", "{out}"]),
    ("segment-movie", ["segment", "{evil_npy}", "--masks", "{npy3}", "--out", "{out}"]),
    ("segment-ensemble", ["segment", "{npy3}", "--ensemble", "{evil_pt}", "--out", "{out}"]),
    ("crops-movie", ["crops", "{evil_npy}", "{csv}", "--out", "{out}"]),
    ("crops-particles", ["crops", "{npy3}", "{evil_csv}", "--out", "{out}"]),
    ("analyze", ["analyze", "{evil_csv}", "{evil_csv}", "--out", "{out}"]),
    ("report", ["report", "{evil_out}"]),
]


@pytest.mark.parametrize("label,argv", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_no_payload_runs_through_the_cli(tmp_path, label, argv, capsys):
    marker = tmp_path / "RAN"
    files = {
        "evil_npy": _write("npy", "evil.npy", marker, tmp_path),
        "evil_pt": _write("checksummed", "evil.pt", marker, tmp_path),
        "evil_csv": _write("pickle", "evil.csv", marker, tmp_path),
        "out": tmp_path / "out",
        "evil_out": tmp_path / "evil_out",
    }
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8), np.float32))
    np.save(tmp_path / "m.npy", np.zeros((2, 8, 8), np.float32))
    (tmp_path / "i.csv").write_text("frame,row,col\n0,4,4\n1,4,4\n")
    files.update(npy=tmp_path / "x.npy", npy3=tmp_path / "m.npy", csv=tmp_path / "i.csv")
    (tmp_path / "evil_out").mkdir()
    for name in ("rvae_checkpoint.pt", "rvae.pt", "ensemble.pt"):
        _write("checksummed", f"evil_out/{name}", marker, tmp_path)
    for name in ("analysis.json", "summary.json", "movie.json", "segment.json"):
        _write("pickle", f"evil_out/{name}", marker, tmp_path)
    code = main([a.format(**files) for a in argv])
    assert code == 2, capsys.readouterr().err
    assert not marker.exists(), f"CLI {label} ran the payload"


def test_payloads_are_live_under_unsafe_loaders(tmp_path):
    """Positive controls: each payload kind does run when loaded unsafely."""
    loaders = {
        "pickle": lambda p: pickle.loads(p.read_bytes()),
        "torch": lambda p: torch.load(p, weights_only=False),
        "npy": lambda p: np.load(p, allow_pickle=True)[0],
        "npz": lambda p: np.load(p, allow_pickle=True)["frames"][0],
        "pt2": lambda p: torch.export.load(p),
    }
    for kind, loader in loaders.items():
        (tmp_path / kind).mkdir()
        marker = tmp_path / kind / "RAN"
        path = _write(kind, "f.pt2" if kind == "pt2" else "f", marker, tmp_path / kind)
        try:
            loader(path)
        except Exception:  # torch.export.load fails after running it
            pass
        assert marker.exists(), f"the {kind} payload is not live"
