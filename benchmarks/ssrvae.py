"""ss-rVAE on the cards benchmark (Ziatdinov et al. 2024), against pyroVED's ssiVAE.

Writes ``benchmarks/results/ssrvae.json`` with

* ``accuracy_paper_split``: ss-rVAE test accuracy on the paper split (labelled
  200 per suit at +-4 deg, centred; unlabelled 3000 per suit at +-60 deg, shear
  [0, 23%], offsets up to 0.1 of the image; test: same disorder, another seed);
* ``accuracy_paper_split_ssvae``: the plain ss-VAE (no invariance) on that split;
* ``train_s``: ss-rVAE training time, seconds (budget: ``TRAIN_BUDGET_S``);
* ``accuracy_by_angle``: both models (trained once on the paper split) on test
  sets with rotation ``+-a``, a in {4, 30, 60, 90, 120, 180} deg; the
  scikit-learn random forest and decision tree trained on the labelled set are
  included there as baselines;
* ``accuracy_noise``, ``accuracy_contamination``: ss-rVAE against Gaussian
  background noise and contamination density (intensity 1.0);
* ``confusion_matrix``: ss-rVAE on the paper test set (rows: true suit);
* ``images_per_s``: training throughput of our ss-rVAE with pyroVED's
  architecture (48x48, latent 2, encoders and classifier [128, 128], spatial
  decoder with a joint layer and two hidden layers of 128, batch 64), and, when
  pyroVED is importable, ``reference_images_per_s`` and ``speedup`` measured in
  the same run on the same data.

Throughput counts unlabelled images per second of training epochs (our epochs
also use a labelled batch at every step; pyroVED's only every ``p``-th).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _pyroved import import_pyroved  # noqa: E402

from pyrolatent.analysis.stress import PAPER_TEST_DISORDER, accuracy_curve  # noqa: E402
from pyrolatent.data.synthetic.cards import paper_split  # noqa: E402
from pyrolatent.infer.metrics import accuracy, confusion_matrix  # noqa: E402
from pyrolatent.models.ssrvae import SSRVAE  # noqa: E402

SIZE = 48
BATCH = 64
TRAIN_BUDGET_S = 420.0  # per model
MAX_EPOCHS = 40
ANGLES_DEG = (4, 30, 60, 90, 120, 180)
NOISE = (0.0, 0.1, 0.2, 0.4, 0.7, 1.0)
DENSITY = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
N_EVAL = 250  # test cards per suit per setting
SPEED_BATCHES = 2


def train(invariances, split, budget_s: float) -> tuple[SSRVAE, float, int]:
    """Train epoch by epoch until the budget is spent; returns model, seconds, epochs."""
    model = SSRVAE((SIZE, SIZE), 4, invariances=invariances, decoder="warp", seed=0)
    lab, un = split["labelled"], split["unlabelled"]
    t0, epochs = time.perf_counter(), 0
    while epochs < MAX_EPOCHS:
        epochs += 1
        model.fit(un["images"], lab["images"], lab["labels"], epochs=epochs,
                  batch_size=BATCH, quiet=True)
        elapsed = time.perf_counter() - t0
        if elapsed * (epochs + 1) / epochs > budget_s:  # the next epoch would overrun
            break
    return model, time.perf_counter() - t0, epochs


def ours_throughput(split) -> float:
    lab, un = split["labelled"], split["unlabelled"]
    n = SPEED_BATCHES * BATCH
    # pyroVED's sDecoderNet "[128, 128]" is a joint layer plus two hidden layers
    model = SSRVAE((SIZE, SIZE), 4, decoder="spatial", hidden=(128, 128),
                   decoder_hidden=(128, 128, 128), seed=0)
    args = (un["images"][:n], lab["images"][:BATCH], lab["labels"][:BATCH])
    model.fit(*args, epochs=1, batch_size=BATCH, quiet=True)  # warm-up
    t = time.perf_counter()
    model.fit(*args, epochs=2, batch_size=BATCH, quiet=True)
    return n / (time.perf_counter() - t)


def pyroved_throughput(pv, split) -> float:
    lab, un = split["labelled"], split["unlabelled"]
    n = SPEED_BATCHES * BATCH
    model = pv.models.ssiVAE((SIZE, SIZE), latent_dim=2, num_classes=4, invariances=["r", "t"],
                             hidden_dim_e=[128, 128], hidden_dim_d=[128, 128],
                             hidden_dim_cls=[128, 128], activation="tanh", seed=0)
    # pyroVED models want flattened (N, H*W) inputs
    xu = torch.as_tensor(un["images"][:n]).reshape(n, -1)
    xl = torch.as_tensor(lab["images"][:BATCH]).reshape(BATCH, -1)
    yl = torch.nn.functional.one_hot(torch.as_tensor(lab["labels"][:BATCH]), 4).float()
    loader_u = pv.utils.init_dataloader(xu, batch_size=BATCH)
    loader_l = pv.utils.init_dataloader(xl, yl, batch_size=BATCH)
    trainer = pv.trainers.auxSVItrainer(model, task="classification")
    t = time.perf_counter()
    trainer.train(loader_u, loader_l, aux_loss_multiplier=50)  # training only, no test loader
    return n / (time.perf_counter() - t)


def baselines(split) -> dict[str, list[float]]:
    try:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.tree import DecisionTreeClassifier
    except ImportError:
        return {}
    lab = split["labelled"]
    x = lab["images"].reshape(len(lab["images"]), -1)
    out = {}
    for name, clf in (
        ("random_forest", RandomForestClassifier(n_estimators=200, random_state=0)),
        ("decision_tree", DecisionTreeClassifier(random_state=0)),
    ):
        clf.fit(x, lab["labels"])
        curve = accuracy_curve(lambda im, c=clf: c.predict(im.reshape(len(im), -1)),
                               "angle_range", [math.radians(a) for a in ANGLES_DEG], N_EVAL)
        out[name] = curve["accuracy"]
    return out


def main() -> dict:
    torch.manual_seed(0)
    split = paper_split(200, 3000, 500, image_size=SIZE, seed=0)
    test = split["test"]
    out: dict = {}

    pv = import_pyroved()
    out["images_per_s"] = ours_throughput(split)
    if pv is not None:
        out["reference_images_per_s"] = pyroved_throughput(pv, split)
        out["speedup"] = out["images_per_s"] / out["reference_images_per_s"]
    print({k: out[k] for k in out}, flush=True)

    rvae, train_s, epochs = train(("rotation", "translation"), split, TRAIN_BUDGET_S)
    out["train_s"] = train_s
    out["accuracy_paper_split"] = accuracy(rvae.predict(test["images"]), test["labels"])
    print("ss-rVAE", epochs, "epochs", train_s, out["accuracy_paper_split"], flush=True)
    ssvae, s_s, s_epochs = train((), split, TRAIN_BUDGET_S / 2)
    out["accuracy_paper_split_ssvae"] = accuracy(ssvae.predict(test["images"]), test["labels"])
    print("ss-VAE", s_epochs, "epochs", s_s, out["accuracy_paper_split_ssvae"], flush=True)

    angles = [math.radians(a) for a in ANGLES_DEG]
    by_angle = {"angle_deg": list(ANGLES_DEG)}
    for name, m in (("ss-rVAE", rvae), ("ss-VAE", ssvae)):
        by_angle[name] = accuracy_curve(m.predict, "angle_range", angles, N_EVAL)["accuracy"]
    by_angle.update(baselines(split))
    out["accuracy_by_angle"] = by_angle
    out["accuracy_noise"] = {
        "noise": list(NOISE),
        "ss-rVAE": accuracy_curve(rvae.predict, "noise", NOISE, N_EVAL)["accuracy"],
    }
    out["accuracy_contamination"] = {
        "density": list(DENSITY),
        "intensity": 1.0,
        "ss-rVAE": accuracy_curve(
            rvae.predict, "contamination_density", DENSITY, N_EVAL,
            base={**PAPER_TEST_DISORDER, "contamination_intensity": 1.0},
        )["accuracy"],
    }
    out["confusion_matrix"] = confusion_matrix(
        rvae.predict(test["images"]), test["labels"], 4
    ).tolist()
    path = Path(__file__).parent / "results" / "ssrvae.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
