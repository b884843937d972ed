"""Throughput: enumeration prototype vs the library rVAE and pyroVED (300 L images, 48 px)."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _pyroved import import_pyroved  # noqa: E402
from pose_prototype import EnumRVAE, make_shapes, train  # noqa: E402

from pyrolatent.estimators.rvae import RVAE  # noqa: E402

torch.set_num_threads(1)
x = make_shapes(0)["images"][:300]
configs = {
    "enum_pooled_k16_conv": {"k": 16, "ke": 8},
    "enum_perk_pm2_k16_conv": {"k": 16, "pool": "per_k", "pm": 2},
    "enum_perk_pm2_k8_mlp": {"k": 8, "pool": "per_k", "pm": 2, "enc": "mlp"},
    "enum_perk_pm2_k16_mlp": {"k": 16, "pool": "per_k", "pm": 2, "enc": "mlp"},
}
rates = {}
for _ in range(2):
    for name, cfg in configs.items():
        m = EnumRVAE((48, 48), latent_dim=2, **cfg)
        train(m, torch.as_tensor(x), 1, batch=100)
        rates.setdefault(name, []).append(train(m, torch.as_tensor(x), 1, batch=100)[1])
    rv = RVAE((48, 48), decoder="warp", hidden=(128, 128, 128), encoder_hidden=(128, 128))
    rv.fit(x, epochs=1, quiet=True)
    t = time.perf_counter()
    rv.fit(x, epochs=2, quiet=True)
    rates.setdefault("library_warp", []).append(300 / (time.perf_counter() - t))
    pv = import_pyroved()
    if pv is not None:
        model = pv.models.iVAE(
            (48, 48),
            latent_dim=2,
            invariances=["r", "t"],
            hidden_dim_e=[128, 128],
            hidden_dim_d=[128, 128],
            activation="tanh",
        )
        loader = pv.utils.init_dataloader(torch.as_tensor(x), batch_size=100)
        tr = pv.trainers.SVItrainer(model, lr=1e-3)
        tr.step(loader)
        t = time.perf_counter()
        tr.step(loader)
        rates.setdefault("pyroved", []).append(300 / (time.perf_counter() - t))
print(json.dumps({k: float(np.median(v)) for k, v in rates.items()}))
