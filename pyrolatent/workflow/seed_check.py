"""A second rVAE fit with another seed: do the angles, and the transition, depend on the seed?

On AFMReader's sample HS-AFM movie two good fits (reconstruction errors 0.34 of
the mean image's, seeds 0 and 1) agreed on the angles only 0.71 and put the
transition at frames 72 and 26, each with a bootstrap spread of 6-8 frames: the
bootstrap refits the NMF, not the rVAE, so only a second fit shows this. The
workflow therefore trains the second fit by default (``TrainConfig.check_seed``),
stores its angles as the latent table's ``angle_check`` column, and the analysis
finds the transition from those angles too (:func:`transition_agreement`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..analysis.polarity import latent_table
from ..estimators.diagnostics import encoding_agreement
from ..estimators.rvae import RVAE
from .angle_transition import change_keys
from .train_resume import checkpoint_epochs

__all__ = [
    "SEED_AGREEMENT",
    "crop_rvae",
    "second_seed_fit",
    "seed_note",
    "transition_agreement",
]

#: Angle agreement (1: the same up to one global turn) below which the report says so.
SEED_AGREEMENT = 0.9
#: Fewest frames two transition onsets may differ by and still count as one
#: (besides twice their combined bootstrap s.d.).
ONSET_TOLERANCE = 3


def crop_rvae(image_shape, config, *, seed: int) -> RVAE:
    """The workflow's rVAE for crops of ``image_shape`` ``(H, W)``: Bernoulli, no symmetry."""
    return RVAE(tuple(image_shape), latent_dim=config.latent_dim, decoder=config.decoder,
                likelihood="bernoulli", symmetry=1, seed=int(seed))  # fmt: skip


def seed_note(agreement: dict, seed: int) -> str | None:
    """The report's note on :meth:`RVAE.agreement` with the fit of ``seed``; None if they agree."""
    value = agreement.get("angle_agreement")
    if value is None or value >= SEED_AGREEMENT:
        return None
    return (
        f"a second fit (seed {seed}) agrees with this one on the angles only {value:.2f} "
        "(1: the same up to one global turn), so the angle peaks and the transition may "
        "depend on the seed"
    )


def second_seed_fit(
    rvae: RVAE,
    images: np.ndarray,
    index: dict,
    config,
    *,
    encoding: dict,
    checkpoint_path=None,
    progress: bool = False,
) -> tuple[dict, np.ndarray]:
    """Train a second rVAE like ``rvae`` with seed ``config.seed + 1``; compare the two.

    Parameters
    ----------
    rvae : RVAE
        The fitted model.
    images : numpy.ndarray
        ``(N, H, W)`` the scaled crops it was trained on.
    index : dict
        Their crop index (``frame``, ``particle_id``, ``valid``, and
        ``orientation`` for pre-aligned crops), as for :func:`latent_table`.
    config : TrainConfig
        Batch size, learning rate, clipping and seed of the fit; the second
        fit trains as many epochs as ``rvae`` has in all (a resumed fit too).
    encoding : dict
        ``rvae.encode(images)`` (not computed again).
    checkpoint_path : path-like, optional
        The second fit's trainer checkpoint, written every epoch; a fit
        resumes from it (to ``rvae``'s epochs in all; one with more epochs
        than that is removed and the fit starts over).
    progress : bool
        Show the second fit's progress bar.

    Returns
    -------
    agreement : dict
        :meth:`RVAE.agreement`'s (``angle_agreement``, ``z_r2``) with ``seed``,
        ``epochs`` and ``note`` (:func:`seed_note`).
    angles : numpy.ndarray
        ``(N,)`` radians: the second fit's angles as the latent table gives
        them (directed, for pre-aligned crops).
    """
    seed = int(config.seed) + 1
    second = crop_rvae(images.shape[1:], config, seed=seed)
    epochs = rvae.epochs_trained or int(config.epochs)
    if checkpoint_path is not None and checkpoint_epochs(checkpoint_path) > epochs:
        Path(checkpoint_path).unlink()
    second.fit(images, epochs=epochs, batch_size=config.batch_size, lr=config.lr,
               clip_norm=config.clip_norm or None, checkpoint_path=checkpoint_path,
               progress=progress, diagnose=False)  # fmt: skip
    enc = second.encode(images)
    out = encoding_agreement(encoding, enc, rvae.config.get("symmetry", 1))
    recon = None
    if "orientation" in index:
        recon = second.decode(enc["z"]["loc"], angle=enc["angle"]["loc"])
    angles = latent_table(index, enc, reconstructions=recon)["angle"]
    return {**out, "seed": seed, "epochs": epochs, "note": seed_note(out, seed)}, angles


def _onset(transition: dict, change: dict) -> tuple[int | None, float | None]:
    if not change["transition"]:
        return None, None
    return transition["frame"], transition["uncertainty"]


def transition_agreement(first: tuple[dict, dict], second: tuple[dict, dict]) -> dict:
    """Summary keys comparing the transitions found from two fits' angles.

    Parameters
    ----------
    first, second : tuple of dict
        ``(transition, change)`` of each fit:
        :func:`~pyrolatent.analysis.transitions.transition_frame` (in movie
        frames) and :func:`~pyrolatent.analysis.change_detection.detect_transition`.

    Returns
    -------
    dict
        ``transition_frame_check`` and ``transition_frame_uncertainty_check``
        (the second fit's onset and its bootstrap s.d., None when it finds no
        transition) and ``transition_seed_agrees``: both find none, or both
        find one and the onsets differ by at most twice their combined s.d.
        or :data:`ONSET_TOLERANCE` frames, whichever is larger. The same for the
        one-regime test's own change point
        (:func:`~pyrolatent.workflow.angle_transition.change_keys`):
        ``transition_change_frame_check``, ``transition_change_interval_check``
        and ``transition_change_seed_agrees`` (both find none, or the frames
        differ by at most :data:`ONSET_TOLERANCE` or each lies in the other's
        5-95 % interval). On AFMReader's HS-AFM movie the NMF onsets
        disagree (72 and 26) while the change points agree (72 and 72).
    """
    (f1, u1), (f2, u2) = _onset(*first), _onset(*second)
    if f1 is None or f2 is None:
        agrees = f1 is None and f2 is None
    else:
        spread = math.hypot(u1, u2) if math.isfinite(math.hypot(u1, u2)) else 0.0
        agrees = abs(f1 - f2) <= max(ONSET_TOLERANCE, 2 * spread)
    c1, c2 = change_keys(first[1]), change_keys(second[1])
    a, b = c1["transition_change_frame"], c2["transition_change_frame"]
    if a is None or b is None:
        change_agrees = a is None and b is None
    else:
        (lo1, hi1), (lo2, hi2) = c1["transition_change_interval"], c2["transition_change_interval"]
        change_agrees = abs(a - b) <= ONSET_TOLERANCE or (lo2 <= a <= hi2 and lo1 <= b <= hi1)
    return {
        "transition_frame_check": f2,
        "transition_frame_uncertainty_check": u2,
        "transition_seed_agrees": bool(agrees),
        "transition_change_frame_check": b,
        "transition_change_interval_check": c2["transition_change_interval"],
        "transition_change_seed_agrees": bool(change_agrees),
    }
