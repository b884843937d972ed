"""What the rVAE checkpoints in a run folder mean when the train stage runs again.

``pyrolatent train --epochs N`` on a folder with a finished fit trains ``N``
more epochs (issue 14). A run that was stopped (Ctrl-C, a crash, a killed
job) is finished instead, as the interruption message promises ("run the same
command again to resume"): the stage writes the total it trains to in
:data:`TRAIN_TARGET` before it starts and marks it finished after its outputs
are written. Before this file existed, a train stopped at epoch 12 of 30 went
on to 42 on the rerun, and one stopped in the seed check's second fit trained
the first model ``N`` more epochs and the second from scratch to that new total.
The second fit keeps its own checkpoint (:data:`CHECK_CHECKPOINT`), so a
stop there loses at most one epoch of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io.checkpoint import load_checkpoint
from ..io.files import save_json

__all__ = [
    "CHECK_CHECKPOINT",
    "TRAIN_CHECKPOINT",
    "TRAIN_TARGET",
    "checkpoint_epochs",
    "finish_training",
    "plan_training",
]

#: The first fit's trainer checkpoint, written every epoch.
TRAIN_CHECKPOINT = "rvae_checkpoint.pt"
#: The seed check's second fit's trainer checkpoint
#: (:func:`~pyrolatent.workflow.seed_check.second_seed_fit`).
CHECK_CHECKPOINT = "rvae_check_checkpoint.pt"
#: ``{"epochs": total, "finished": bool}`` of the train stage's latest run.
TRAIN_TARGET = "train_target.json"


def checkpoint_epochs(path) -> int:
    """Epochs trained in a trainer checkpoint (0 when the file does not exist)."""
    path = Path(path)
    return int(load_checkpoint(path)["epoch"]) if path.is_file() else 0


def _unfinished_total(path: Path) -> int | None:
    """The total of an interrupted run recorded in ``path``, or None (finished, or no record)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return None if record.get("finished", True) else int(record["epochs"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # an unreadable record: treat the checkpoint as a finished run


def plan_training(out, epochs: int, resume: str) -> tuple[int, int, str | None]:
    """Epochs already trained, epochs to train now, and the line that says so.

    Parameters
    ----------
    out : path-like
        The run folder (holds :data:`TRAIN_CHECKPOINT`, :data:`CHECK_CHECKPOINT`
        and :data:`TRAIN_TARGET`).
    epochs : int
        The stage's ``config.epochs``.
    resume : {"more", "total", "fresh"}
        ``"more"``: a finished fit trains ``epochs`` more; an interrupted one
        is trained to the total it was started with. ``"total"``: train to
        ``epochs`` in all (past it, start over). ``"fresh"``: start over.

    Returns
    -------
    done : int
        Epochs in the first fit's checkpoint (0 when starting over).
    more : int
        Epochs to train now (``done + more`` is the new total, which this
        function records in :data:`TRAIN_TARGET` as unfinished).
    line : str or None
        What is resumed, for the log (None when nothing is).

    Raises
    ------
    ValueError
        An unknown ``resume``.
    """
    if resume not in ("more", "total", "fresh"):
        raise ValueError(f"resume must be 'more', 'total' or 'fresh', got {resume!r}")
    out = Path(out)
    ckpt = out / TRAIN_CHECKPOINT
    done = checkpoint_epochs(ckpt) if resume != "fresh" else 0
    interrupted = _unfinished_total(out / TRAIN_TARGET) if resume == "more" else None
    if resume == "total":
        total = epochs
    elif interrupted is not None and 0 < done <= interrupted:
        total = interrupted
    else:
        total = done + epochs
    if resume == "fresh" or done > total:
        for name in (TRAIN_CHECKPOINT, CHECK_CHECKPOINT):
            (out / name).unlink(missing_ok=True)
        done = 0
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / TRAIN_TARGET, {"epochs": total, "finished": False})
    line = None
    if done and interrupted is not None and total == interrupted:
        line = (
            f"train: finishing an interrupted run: resuming {ckpt} ({done} of {total} "
            f"epochs trained); training {total - done} more (to {total}), as started"
        )
    elif done:
        line = (
            f"train: resuming {ckpt} ({done} epochs trained); "
            f"training {total - done} more (to {total})"
        )
    return done, total - done, line


def finish_training(out) -> Path:
    """Mark the train stage's latest run in ``out`` finished (after its outputs are written)."""
    path = Path(out) / TRAIN_TARGET
    record = json.loads(path.read_text()) if path.is_file() else {}
    return save_json(path, {**record, "finished": True})
