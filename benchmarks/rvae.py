"""rVAE throughput and quality against pyroVED's iVAE, measured in one run.

Setting (pyroVED's defaults): 48x48 images, latent 2, rotation + translation,
tanh MLPs with hidden [128, 128], batch 100. pyroVED's "spatial" decoder is a
joint coordinate/latent layer followed by its two hidden layers, i.e.
``decoder_hidden=(128, 128, 128)`` in pyrolatent's convention; both libraries get that
identical architecture (the parameter counts are checked), with Adam, lr 1e-3.

Writes ``benchmarks/results/rvae.json`` with ``images_per_s_spatial``,
``images_per_s_warp``, ``angle_corr_spatial``, ``angle_corr_warp``,
``recon_mse_spatial``, ``recon_mse_warp``, ``matmul_gflops``,
``spatial_decoder_gflops`` and, when pyroVED is importable,
``reference_images_per_s``, ``reference_angle_corr``, ``speedup_spatial`` and
``speedup_warp``. The spatial decoder is measured twice: in float32
(``*_spatial``) and with bfloat16 hidden-layer products
(``*_spatial_bf16``, ``compute_dtype="bfloat16"``), same architecture.

Throughput is steady-state training speed: every contender is a fresh model
that first trains one untimed warm-up epoch (one-off costs such as kernel
selection), then one timed epoch of 300 images. Contenders alternate within
each round and speed-ups are medians of per-round ratios; the quality numbers
come from full trainings of every contender. Set ``OMP_NUM_THREADS=1`` on a
shared machine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _pyroved import import_pyroved  # noqa: E402

from pyrolatent.analysis.circular import circular_correlation  # noqa: E402
from pyrolatent.data.synthetic.shapes import make_rotated_shapes  # noqa: E402
from pyrolatent.estimators.rvae import RVAE  # noqa: E402

SIZE = 48
N_TRAIN = 1000
EPOCHS = 15
BATCH = 100
LR = 1e-3
HIDDEN_DECODER = (128, 128, 128)
HIDDEN_ENCODER = (128, 128)
THROUGHPUT_ITEMS = 300
RESULTS = Path(__file__).parent / "results"


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def spatial_flops_per_image(size: int, hidden) -> float:
    """Multiply-add FLOPs of one forward + backward pass of the coordinate MLP."""
    widths = [2, *hidden, 1]
    fwd = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:], strict=True)) * size * size
    return 3 * fwd


#: contender name -> (decoder, compute dtype)
OURS = {
    "spatial": ("spatial", "float32"),
    "spatial_bf16": ("spatial", "bfloat16"),
    "warp": ("warp", "float32"),
}


def make_ours(contender: str) -> RVAE:
    decoder, compute_dtype = OURS[contender]
    return RVAE(
        (SIZE, SIZE),
        latent_dim=2,
        decoder=decoder,
        decoder_hidden=HIDDEN_DECODER,
        encoder_hidden=HIDDEN_ENCODER,
        compute_dtype=compute_dtype,
        seed=0,
    )


def fit_ours(
    contender: str, images: np.ndarray, epochs: int = EPOCHS, warmup: int = 0
) -> tuple[RVAE, float]:
    """Train ``warmup`` untimed epochs, then ``epochs`` timed ones; returns images/s."""
    rvae = make_ours(contender)
    if warmup:
        rvae.fit(images, epochs=warmup, batch_size=BATCH, lr=LR, progress=False)
    t = time.perf_counter()
    rvae.fit(images, epochs=epochs, batch_size=BATCH, lr=LR, progress=False)
    return rvae, len(images) * epochs / (time.perf_counter() - t)


def make_pyroved(pv):
    return pv.models.iVAE(
        (SIZE, SIZE),
        latent_dim=2,
        invariances=["r", "t"],
        hidden_dim_e=list(HIDDEN_ENCODER),
        hidden_dim_d=[128, 128],
        activation="tanh",
        seed=0,
    )


def fit_pyroved(pv, images: np.ndarray, epochs: int = EPOCHS, warmup: int = 0):
    model = make_pyroved(pv)
    x = torch.as_tensor(images)
    loader = pv.utils.init_dataloader(x, batch_size=BATCH)
    trainer = pv.trainers.SVItrainer(model, lr=LR)
    for _ in range(warmup):
        trainer.step(loader)
    t = time.perf_counter()
    for _ in range(epochs):
        trainer.step(loader)  # training only: never a test loader while timing
    rate = len(images) * epochs / (time.perf_counter() - t)
    z_loc, _ = model.encode(x)
    return model, rate, z_loc[:, 0].numpy()


def interleaved_throughput(pv, images: np.ndarray, rounds: int = 3) -> dict:
    """Images/s of one epoch of each contender, in alternating rounds.

    Shared machines are noisy: each round times every contender back to back,
    and the speed-up is the median of the per-round ratios.
    """
    rates: dict[str, list[float]] = {name: [] for name in (*OURS, "reference")}
    for _ in range(rounds):
        for name in OURS:
            rates[name].append(fit_ours(name, images, epochs=1, warmup=1)[1])
        if pv is not None:
            rates["reference"].append(fit_pyroved(pv, images, epochs=1, warmup=1)[1])
    out = {f"images_per_s_{k}": float(np.median(v)) for k, v in rates.items() if k != "reference"}
    if pv is not None:
        ref = np.asarray(rates["reference"])
        out["reference_images_per_s"] = float(np.median(ref))
        for name in OURS:
            out[f"speedup_{name}"] = float(np.median(np.asarray(rates[name]) / ref))
    out["rounds"] = {k: v for k, v in rates.items() if v}
    return out


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> dict:
    torch.manual_seed(0)
    data = make_rotated_shapes(N_TRAIN, shapes=("L",), image_size=SIZE, max_offset=3.0, seed=0)
    images = data["images"]
    out: dict = {
        "setting": {
            "image_size": SIZE,
            "n_train": N_TRAIN,
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "lr": LR,
            "hidden_decoder": list(HIDDEN_DECODER),
            "hidden_encoder": list(HIDDEN_ENCODER),
            "torch_threads": torch.get_num_threads(),
        },
        "matmul_gflops": matmul_gflops(),
    }
    pv = import_pyroved()
    out.update(interleaved_throughput(pv, images[:THROUGHPUT_ITEMS]))
    print({k: v for k, v in out.items() if k != "rounds"}, flush=True)
    for name in OURS:
        rvae, _ = fit_ours(name, images)
        enc = rvae.encode(images)
        recon = rvae.reconstruct(images)
        rho = circular_correlation(enc["angle"]["loc"], data["angles"])
        out[f"angle_corr_{name}"] = abs(rho)
        out[f"recon_mse_{name}"] = float(np.mean((recon - images) ** 2))
        out[f"n_params_{name}"] = n_params(rvae.model) + n_params(rvae.guide)
        print(name, {k: v for k, v in out.items() if name in k}, flush=True)
    flops = spatial_flops_per_image(SIZE, HIDDEN_DECODER)
    out["spatial_decoder_gflops"] = flops * out["images_per_s_spatial"] / 1e9
    out["spatial_bf16_decoder_gflops"] = flops * out["images_per_s_spatial_bf16"] / 1e9
    if pv is not None:
        model, _, angle = fit_pyroved(pv, images)
        ref_params = n_params(model.encoder_z) + n_params(model.decoder)
        out["reference_n_params"] = ref_params
        out["reference_angle_corr"] = abs(circular_correlation(angle, data["angles"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rvae.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
