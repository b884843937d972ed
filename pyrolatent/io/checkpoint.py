"""Atomic, checksummed, self-describing checkpoints.

A checkpoint is a dict of plain containers and tensors (configuration, state
dicts, optimiser state, RNG state, history). On disk (format version 2) it is a
``torch.save`` file holding a small wrapper::

    {"pyrolatent_format": 2, "sha256": "<hex>", "nbytes": n, "payload": uint8 tensor}

where ``payload`` is the ``torch.save`` serialisation of the state and ``sha256``
its digest. It is written to a temporary file in the target folder, flushed and
renamed over the target (:func:`pyrolatent.io.atomic.atomic_write`): a crash
while writing leaves the previous checkpoint intact, and the next save removes
the temporary files of killed saves.

Loading uses ``torch.load(weights_only=True)`` for both layers (it never
executes code from the file) and verifies the digest before the payload is
deserialised, so a truncated or bit-flipped file is refused instead of loading
changed tensors. Every failure is a :class:`CheckpointError` that says what is
wrong. Format 1 files (earlier releases: the state itself, no digest) still load.

Estimators check the configuration stored in a checkpoint with
:func:`check_config` before they build (allocate) anything from it.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from pathlib import Path

import torch

from .atomic import atomic_write

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "check_config",
    "check_state_dict",
    "CONFIG_LIMITS",
    "FORMAT_VERSION",
]

FORMAT_KEY = "pyrolatent_format"
FORMAT_VERSION = 2

#: Inclusive ``(low, high)`` bounds of integer configuration values (lists: every entry)
#: checked by :func:`check_config` before a model is built from a checkpoint.
CONFIG_LIMITS = {
    "image_size": (1, 4096),
    "latent_dim": (1, 1024),
    "n_classes": (2, 100_000),
    "n_components": (1, 100_000),
    "hidden": (1, 16_384),
    "encoder_hidden": (1, 16_384),
    "decoder_hidden": (1, 16_384),
    "symmetry": (1, 1000),
    "angle_symmetry": (1, 1000),
    "size": (1, 256),
    "volume_size": (1, 256),
    "encoder_channels": (1, 4096),
    "base_channels": (1, 4096),
    "n_features": (1, 100_000),
    "n_outputs": (1, 4096),
    "filters": (1, 4096),
    "members": (1, 1024),
    "n_cascades": (1, 64),
    "in_channels": (1, 1024),
    "out_channels": (1, 1024),
    "channels": (1, 16_384),
    "width": (1, 16_384),
    "depth": (1, 64),
    "views": (1, 256),
    "classifier_views": (1, 256),
}
#: Most pixels of one image (``H * W``) and most layers of a width list.
MAX_PIXELS = 2**22
MAX_LAYERS = 64


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupted or of the wrong kind."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` atomically to ``path`` with its checksum and format version.

    Parameters
    ----------
    state : dict
        Tensors, numbers, strings, lists and dicts only (loadable with
        ``weights_only=True``).
    path : path-like
        Destination file; its folder is created if needed.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    raw = buffer.getvalue()
    wrapper = {
        FORMAT_KEY: FORMAT_VERSION,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "nbytes": len(raw),
        "payload": torch.frombuffer(bytearray(raw), dtype=torch.uint8),
    }

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            torch.save(wrapper, fh)

    return atomic_write(path, write)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0][:200] if text else ""
    if "weights_only" in str(exc) or "Weights only load failed" in str(exc):
        return "it holds Python objects that safe (weights-only) loading refuses"
    return f"{type(exc).__name__}: {first}"


def _torch_load(source, path: Path, map_location, what: str):
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path}: {what} is truncated, corrupted or unsafe to load ({_reason(exc)})"
        ) from exc


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and verify a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path-like
    map_location : str or torch.device
        Where the tensors go.

    Returns
    -------
    dict
        The saved state.

    Raises
    ------
    CheckpointError
        If the file does not exist, is a directory, is empty, cannot be read
        safely (truncated, corrupted, holding arbitrary Python objects), fails
        its checksum, was written by a newer format, or was not written by pyrolatent.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, expected a .pt file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted copy?")
    outer = _torch_load(path, path, map_location=map_location, what="the file")
    if not isinstance(outer, dict) or FORMAT_KEY not in outer:
        raise CheckpointError(f"{path} is not a pyrolatent checkpoint")
    version = outer[FORMAT_KEY]
    if version == 1:  # earlier releases: the state itself, without a checksum
        return outer
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"checkpoint {path} has format {version!r}; this pyrolatent reads formats "
            f"1 to {FORMAT_VERSION} (written by a newer version?)"
        )
    payload = outer.get("payload")
    digest = outer.get("sha256")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8 or payload.dim() != 1:
        raise CheckpointError(f"checkpoint {path}: the payload is missing or malformed")
    raw = payload.cpu().numpy().tobytes()
    if outer.get("nbytes") != len(raw):
        raise CheckpointError(
            f"checkpoint {path}: payload is {len(raw)} bytes, the header says "
            f"{outer.get('nbytes')!r} (truncated or corrupted)"
        )
    actual = hashlib.sha256(raw).hexdigest()
    if actual != digest:
        raise CheckpointError(
            f"checkpoint {path}: checksum mismatch, the file is corrupted "
            f"(stored sha256 {str(digest)[:12]}..., content {actual[:12]}...)"
        )
    state = _torch_load(io.BytesIO(raw), path, map_location, "the payload")
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: the payload is not a dict")
    return state


def _bad(path, key, value, why) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: config {key}={value!r} {why}")


def _check_int(path, key, value, low, high, shown=None) -> None:
    shown = value if shown is None else shown
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, key, shown, "is not an integer")
    if not low <= value <= high:
        raise _bad(path, key, shown, f"is out of range [{low}, {high}]")


def check_config(config, path, limits: dict | None = None) -> dict:
    """Bound the values of a checkpoint's configuration before anything is built from it.

    Parameters
    ----------
    config : dict
        The stored constructor arguments.
    path : path-like
        The checkpoint (for the message).
    limits : dict, optional
        ``name -> (low, high)`` integer bounds; default :data:`CONFIG_LIMITS`.
        Names absent from ``config`` are skipped; lists are checked entry-wise.

    Returns
    -------
    dict
        ``config`` unchanged.

    Raises
    ------
    CheckpointError
        A value that is not a (list of) integer(s) where one is expected, out of
        its bounds, an image of more than :data:`MAX_PIXELS` pixels, a width list
        of more than :data:`MAX_LAYERS` entries, or a non-finite float anywhere.
    """
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: config is {type(config).__name__}, not a dict")
    limits = CONFIG_LIMITS if limits is None else limits
    for key, value in config.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(path, key, value, "is not finite")
        if isinstance(value, dict):  # nested options (e.g. a model's)
            check_config(value, path, limits)
            continue
        if key not in limits or value is None:
            continue
        low, high = limits[key]
        if isinstance(value, (list, tuple)):
            if len(value) > MAX_LAYERS:
                raise _bad(path, key, f"<{len(value)} entries>", f"has over {MAX_LAYERS} entries")
            for v in value:
                _check_int(path, key, v, low, high, shown=list(value))
        else:
            _check_int(path, key, value, low, high)
    size = config.get("image_size")
    if isinstance(size, (list, tuple)):
        if len(size) != 2:
            raise _bad(path, "image_size", size, "is not (H, W)")
        if size[0] * size[1] > MAX_PIXELS:
            raise _bad(path, "image_size", size, f"has over {MAX_PIXELS} pixels")
    return config


def check_state_dict(module, stored, path, what: str = "model") -> None:
    """Refuse stored weights that do not fit ``module``, before anything is loaded.

    Parameters
    ----------
    module : torch.nn.Module
        The freshly built module.
    stored : dict
        The state dict read from the checkpoint.
    path : path-like
        The checkpoint (for the message).
    what : str
        Which part of the checkpoint (``"model"``, ``"guide"``, ...).

    Raises
    ------
    CheckpointError
        Missing or unexpected entries, or entries of another shape (e.g. a
        checkpoint of another image size or architecture); the message lists
        up to three of them.
    """
    if not isinstance(stored, dict):
        raise CheckpointError(f"checkpoint {path}: {what} weights are missing or malformed")
    own = module.state_dict()
    problems = [f"missing {k}" for k in own if k not in stored]
    problems += [f"unexpected {k}" for k in stored if k not in own]
    for k, v in own.items():
        w = stored.get(k)
        if isinstance(w, torch.Tensor) and tuple(w.shape) != tuple(v.shape):
            problems.append(f"{k} has shape {tuple(w.shape)} in the file, {tuple(v.shape)} here")
        elif k in stored and not isinstance(w, torch.Tensor):
            problems.append(f"{k} is not a tensor")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(
            f"checkpoint {path}: its {what} does not fit this architecture "
            f"(another image size, latent size or network?): {'; '.join(problems[:3])}{more}"
        )
