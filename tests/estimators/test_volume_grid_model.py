"""The grid method of the volume VAE is a Pyro model on the shared Trainer (``volume_grid``)."""

import pyro
import torch
from pyro.infer import TraceEnum_ELBO

from pyrolatent.estimators.volume_vae import VolumeVAE
from pyrolatent.infer.trainer import Trainer
from pyrolatent.primitives.so3 import random_rotations

SIZE = 15


def test_enumerated_loss_and_marginals_are_the_exact_grid_posterior():
    """Pyro's TraceEnum_ELBO on ``GridModel`` gives the exact log marginal likelihood
    and posterior over the (latent, orientation) cells that the estimator uses."""
    x = torch.poisson(torch.full((10, SIZE, SIZE), 3.0), generator=torch.Generator().manual_seed(1))
    rot = random_rotations(10, generator=torch.Generator().manual_seed(2))
    vae = VolumeVAE(SIZE, model_options={"hidden": 16, "n_features": 8})
    vae.fit(x, rot, epochs=1, batch_size=5, progress=False, method="grid", pose_radius=0.05,
            pose_spacing=0.05)  # fmt: skip
    trainer = vae.grid.trainer
    assert isinstance(trainer, Trainer) and vae.trainer is None
    assert vae.epochs_trained == 1 and len(vae.history["loss"]) == 1
    xb, rb = vae.prepare(x, rot)
    joint = vae.grid.log_joint(vae.model, xb, rb).flatten(1)  # (B, K J)
    assert joint.shape == (10, 8 * 7)
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    with torch.no_grad():
        loss = elbo.loss(trainer.model, trainer.guide, xb, rb)
        exact = -float(torch.logsumexp(joint, 1).sum())
        assert abs(loss - exact) <= 1e-4 * abs(exact)
        marginal = elbo.compute_marginals(trainer.model, trainer.guide, xb, rb)["cell"]
        assert torch.allclose(marginal.probs, torch.softmax(joint, 1), atol=1e-5)
    # a cell drawn instead of enumerated (e.g. by another inference) gets its own likelihood
    with torch.no_grad(), pyro.poutine.trace() as tr:
        trainer.model(xb, rb)
    cell = tr.trace.nodes["cell"]["value"]
    assert cell.shape == (10,)
    lik = joint - vae.grid.log_prior(vae.model).flatten()
    factor = tr.trace.nodes["frames"]["fn"].log_factor
    assert torch.allclose(factor, lik.gather(1, cell[:, None])[:, 0], atol=1e-4)
