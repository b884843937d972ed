"""A plain-torch image classifier: the y-encoder of the ss-rVAE, exportable.

:class:`ImageClassifier` is an ``nn.Module`` with no Pyro in it. It is the
y-encoder of :class:`~pyrolatent.guides.ssrvae.SSRVAEGuide`.

* :func:`export_classifier` writes it as a ``safetensors`` file (weights as raw
  tensors, architecture as a JSON config in the header); :func:`load_classifier`
  rebuilds it with this module's classes, with torch and ``safetensors`` only
  (no Pyro) and without unpickling anything, so an untrusted file cannot run
  code. ``torch.export`` archives (``.pt2``) are still written on request, but
  loading one unpickles its members, so :func:`load_classifier` refuses them
  unless ``allow_pt2=True``.
* :meth:`ImageClassifier.export_state` / :meth:`ImageClassifier.from_state`
  round-trip architecture and weights as plain containers, for pyrolatent's
  own checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

from ..primitives import rotation_matrix_2d, warp_images
from .encoders import make_encoder
from .image_classifier import KIND, ImageClassifier

__all__ = [
    "ImageClassifier",
    "PoseMean",
    "PoseCanonicalClassifier",
    "export_classifier",
    "load_classifier",
]


class PoseMean(nn.Module):
    """Linear pose heads on encoder features and their posterior-mean pose (plain torch).

    The base of :class:`~pyrolatent.guides.pose.PoseHeads` (which adds the Pyro
    posteriors): one decoding of the raw head outputs for the guide and for the
    exported classifier.

    Parameters
    ----------
    in_features : int
        Width of the encoder features.
    invariances : sequence of str
        Parsed invariances: any of ``"rotation"``, ``"translation"``, ``"scale"``.
    offset_unit : float
        Pixels per unit of the offset head.
    angle_symmetry : int
        Rotational symmetry order ``n``: the angle head predicts the direction of ``n * angle``.
    """

    def __init__(self, in_features: int, invariances, offset_unit: float, angle_symmetry: int):
        super().__init__()
        self.invariances = tuple(invariances)
        self.offset_unit = float(offset_unit)
        self.angle_symmetry = int(angle_symmetry)
        if "rotation" in self.invariances:
            self.angle = nn.Linear(in_features, 2)
        if "translation" in self.invariances:
            self.offset = nn.Linear(in_features, 4)
        if "scale" in self.invariances:
            self.scale = nn.Linear(in_features, 2)

    def mean_pose(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior-mean ``angle`` ``(B,)`` (radians) and ``offset`` ``(B, 2)`` (pixels).

        The angle is the mean direction of the projected normal whose
        concentration the angle head emits (divided by the symmetry order), the
        offset the Normal's location.
        """
        out = {}
        if "rotation" in self.invariances:
            v = self.angle(h)
            out["angle"] = torch.atan2(v[..., 1], v[..., 0]) / self.angle_symmetry
        if "translation" in self.invariances:
            out["offset"] = self.offset(h)[..., :2] * self.offset_unit
        return out

    def pose_config(self) -> dict:
        """JSON-safe ``invariances``, ``offset_unit`` and ``angle_symmetry``."""
        return {
            "invariances": list(self.invariances),
            "offset_unit": self.offset_unit,
            "angle_symmetry": self.angle_symmetry,
        }


class PoseCanonicalClassifier(nn.Module):
    """Classify images after undoing their inferred pose.

    ``logits = classifier(warp(x, T^{-1}))`` where ``T`` (angle, offset) is the
    posterior-mean pose of the ss-rVAE's class-free pose encoder, decoded by
    the pose heads' own ``mean_pose`` (so it cannot drift from the guide's
    parameterisation). The pose is detached: only the ELBO trains the pose
    encoder. Plain torch.

    Parameters
    ----------
    encoder : nn.Module
        Image features ``(B, H, W) -> (B, F)``.
    pose : nn.Module
        Has ``mean_pose(h) -> {"angle": (B,) radians, "offset": (B, 2) pixels}``
        (either key may be missing), e.g. :class:`~pyrolatent.guides.pose.PoseHeads`.
    classifier : ImageClassifier
    """

    def __init__(self, encoder: nn.Module, pose: nn.Module, classifier: ImageClassifier):
        super().__init__()
        self.encoder, self.pose, self.classifier = encoder, pose, classifier

    def export_config(self) -> dict:
        """JSON-safe architecture: encoder, pose heads and classifier configs."""
        return {
            "encoder": dict(self.encoder.config),
            "pose": self.pose.pose_config(),
            "classifier": self.classifier.export_config(),
        }

    @classmethod
    def from_config(cls, config: dict) -> PoseCanonicalClassifier:
        """A new (untrained) classifier from :meth:`export_config` output."""
        enc = dict(config["encoder"])
        encoder = make_encoder(enc["kind"], tuple(enc["image_size"]), enc["hidden"],
                               enc["activation"])  # fmt: skip
        pose = PoseMean(encoder.out_features, **config["pose"])
        return cls(encoder, pose, ImageClassifier.from_config(config["classifier"]))

    def canonicalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, H, W)`` moved back by their inferred pose."""
        with torch.no_grad():
            mean = self.pose.mean_pose(self.encoder(x))
            angle, offset = mean.get("angle"), mean.get("offset")
        if angle is None and offset is None:
            return x
        inv_angle = None if angle is None else -angle
        inv_offset = None
        if offset is not None:
            inv_offset = -offset
            if angle is not None:
                inv_offset = -(rotation_matrix_2d(-angle) @ offset.unsqueeze(-1)).squeeze(-1)
        return warp_images(x, angle=inv_angle, offset=inv_offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)``."""
        return self.classifier(self.canonicalize(x))


#: Classes that :func:`load_classifier` rebuilds from a file's JSON config.
FILE_KINDS = {KIND: ImageClassifier, "PoseCanonicalClassifier": PoseCanonicalClassifier}
FILE_FORMAT = "pyrolatent-classifier"
FILE_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"


def export_classifier(classifier: nn.Module, path, image_size=None, format: str | None = None):
    """Write ``classifier`` (images ``(B, H, W)`` -> logits) to a file that loads without pickle.

    The default format is a ``safetensors`` file: the weights as raw tensors and
    the architecture as a JSON config in the file's header (``metadata``:
    ``format``, ``version``, ``kind``, ``config``). :func:`load_classifier` rebuilds
    the module with this module's own classes; it needs torch, ``safetensors`` and
    :mod:`pyrolatent.nn.classifier` (no Pyro), and never unpickles anything.

    Parameters
    ----------
    classifier : nn.Module
        An :class:`ImageClassifier` (or another class registered in :data:`FILE_KINDS`,
        with ``export_config()`` and ``from_config(config)``); any module for ``"pt2"``.
    path : path-like
        Destination, written atomically.
    image_size : (int, int), optional
        ``(H, W)`` of the inputs; needed only for ``format="pt2"``.
    format : {"safetensors", "pt2"}, optional
        ``"pt2"`` writes a ``torch.export`` archive (graph and weights); loading one
        unpickles archive members, so :func:`load_classifier` refuses it unless
        asked with ``allow_pt2=True``. Default: ``"pt2"`` if ``path`` ends with
        ``.pt2``, else ``"safetensors"``.

    Returns
    -------
    pathlib.Path
    """
    import json
    from pathlib import Path

    from ..io.atomic import atomic_write

    path = Path(path)
    if format is None:
        format = "pt2" if path.suffix == ".pt2" else "safetensors"
    if format == "pt2":
        return _export_pt2(classifier, path, image_size)
    if format != "safetensors":
        raise ValueError(f"format must be 'safetensors' or 'pt2', got {format!r}")
    from safetensors.torch import save_file

    kind = type(classifier).__name__
    if FILE_KINDS.get(kind) is not type(classifier):
        raise TypeError(f"cannot export a {kind} as safetensors (known: {sorted(FILE_KINDS)})")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in classifier.state_dict().items()}
    metadata = {
        "format": FILE_FORMAT,
        "version": str(FILE_VERSION),
        "kind": kind,
        "config": json.dumps(classifier.export_config()),
    }
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _export_pt2(classifier: nn.Module, path, image_size):
    import copy

    from ..io.atomic import atomic_write

    if image_size is None:
        raise ValueError("image_size is needed for format='pt2'")
    module = copy.deepcopy(classifier).cpu().eval()
    example = torch.zeros(2, *image_size)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    return atomic_write(path, lambda tmp: torch.export.save(program, tmp))


def load_classifier(path, *, allow_pt2: bool = False) -> nn.Module:
    """Load a classifier written by :func:`export_classifier`, in eval mode on the CPU.

    Parameters
    ----------
    path : path-like
        A safetensors file from :func:`export_classifier`.
    allow_pt2 : bool
        Also load ``torch.export`` archives (``.pt2``). Off by default because
        ``torch.export.load`` unpickles members of the archive (sample inputs,
        constants): a crafted archive runs arbitrary code when loaded. Set it
        only for files you wrote yourself.

    Returns
    -------
    nn.Module
        Images ``(B, H, W)`` -> logits ``(B, n_classes)``.

    Raises
    ------
    ValueError
        (:class:`~pyrolatent.io.checkpoint.CheckpointError`) Missing, empty or
        malformed file, a ``.pt2`` archive without ``allow_pt2``, an unknown kind,
        config values out of range, or weights that do not fit the architecture.
    """
    import json
    from pathlib import Path

    from ..io.checkpoint import CheckpointError, check_config

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"classifier file {path} is a directory")
    if not path.is_file():
        raise CheckpointError(f"classifier file {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == _ZIP_MAGIC:
        if not allow_pt2:
            raise CheckpointError(
                f"{path} is a torch.export archive; loading one unpickles its members and can "
                "run code from the file. Re-export it with export_classifier (safetensors), or "
                "pass allow_pt2=True if you wrote this file yourself"
            )
        return torch.export.load(path).module()
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != FILE_FORMAT:
                raise CheckpointError(f"{path} is not a pyrolatent classifier file")
            if meta.get("version") != str(FILE_VERSION):
                raise CheckpointError(
                    f"{path}: unknown classifier file version {meta.get('version')!r}"
                )
            kind = meta.get("kind")
            if kind not in FILE_KINDS:
                raise CheckpointError(f"{path}: unknown classifier kind {kind!r}")
            try:
                config = json.loads(meta.get("config", ""))
            except json.JSONDecodeError as exc:
                raise CheckpointError(f"{path}: malformed classifier config ({exc})") from exc
            check_config(config, path)
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable classifier file ({exc})") from exc
    try:
        model = FILE_KINDS[kind].from_config(config)
        model.load_state_dict(tensors)
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        first = str(exc).splitlines()[0][:300]
        raise CheckpointError(f"{path}: weights do not fit the {kind} config ({first})") from exc
    return model.eval()
