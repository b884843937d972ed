"""A second rVAE fit with another seed, to say whether the angles depend on the seed.

On AFMReader's sample HS-AFM movie two good fits (reconstruction errors 0.34 of
the mean image's, seeds 0 and 1) agreed on the angles only 0.71 and put the
transition at frames 72 and 26, each with a bootstrap spread of 6-8 frames: the
bootstrap refits the NMF, not the rVAE, so only a second fit shows this.
"""

from __future__ import annotations

import numpy as np

from ..estimators.rvae import RVAE

__all__ = ["SEED_AGREEMENT", "crop_rvae", "seed_agreement", "seed_note"]

#: Angle agreement (1: the same up to one global turn) below which the report says so.
SEED_AGREEMENT = 0.9


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


def seed_agreement(rvae: RVAE, images: np.ndarray, config, *, progress: bool = False) -> dict:
    """Train a second rVAE like ``rvae`` with seed ``config.seed + 1``; compare the two.

    Parameters
    ----------
    rvae : RVAE
        The fitted model.
    images : numpy.ndarray
        ``(N, H, W)`` the scaled crops it was trained on.
    config : TrainConfig
        Batch size, learning rate, clipping and seed of the fit; the second
        fit trains as many epochs as ``rvae`` has in all (a resumed fit too).
    progress : bool
        Show the second fit's progress bar.

    Returns
    -------
    dict
        :meth:`RVAE.agreement` (``angle_agreement``, ``z_r2``) with ``seed``,
        ``epochs`` and ``note`` (:func:`seed_note`).
    """
    seed = int(config.seed) + 1
    second = crop_rvae(images.shape[1:], config, seed=seed)
    epochs = rvae.epochs_trained or int(config.epochs)
    second.fit(images, epochs=epochs, batch_size=config.batch_size, lr=config.lr,
               clip_norm=config.clip_norm or None, progress=progress, diagnose=False)  # fmt: skip
    out = rvae.agreement(second, images)
    return {**out, "seed": seed, "epochs": epochs, "note": seed_note(out, seed)}
