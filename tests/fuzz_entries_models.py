"""Fuzz entries: the estimators (RVAE, SSRVAE, VolumeVAE, NMF), their models, the Trainer."""

from __future__ import annotations

import math

import numpy as np
import pyro
import torch
from fuzzing import Case, Entry, array_case, bad_numbers, real_arrays
from hypothesis import strategies as st

import pyrolatent as pl
from pyrolatent.primitives.so3 import random_rotations

side = st.sampled_from([6, 8])
BAD_COUNTS = st.sampled_from([0, -1, 2.5, math.nan])
BAD_EPOCHS = st.sampled_from([-1, 2.5, math.nan, "1"])  # 0 more epochs is a valid no-op


def _maybe_bad(draw, good, bad, note, name):
    if draw(st.integers(0, 6)) == 0:
        value = draw(bad)
        note.append(f"{name}={value!r}")
        return value, False
    return draw(good), True


@st.composite
def rvae_case(draw):
    s = draw(side)
    n = draw(st.integers(4, 8))
    case = draw(array_case(st.just((n, s, s)), name="images"))
    note = [case.note]
    latent_dim, ok1 = _maybe_bad(draw, st.integers(1, 3), BAD_COUNTS, note, "latent_dim")
    epochs, ok2 = _maybe_bad(draw, st.just(1), BAD_EPOCHS, note, "epochs")
    lr, ok3 = _maybe_bad(draw, st.sampled_from([1e-3, 1e-2]), bad_numbers(low=0), note, "lr")
    angle = draw(st.one_of(st.floats(-4, 4), real_arrays((2,), -3, 3), st.none()))
    angle_ok = True
    if draw(st.integers(0, 6)) == 0:
        angle, angle_ok = draw(st.sampled_from([math.nan, 1j, np.ones(5)])), False
        note.append(f"angle={angle!r}")
    args = dict(images=case.args["images"], side=s, latent_dim=latent_dim, epochs=epochs, lr=lr,
                decoder=draw(st.sampled_from(["warp", "spatial"])), angle=angle,
                likelihood=draw(st.sampled_from(["bernoulli", "gaussian"])))  # fmt: skip
    return Case(args, case.valid and ok1 and ok2 and ok3 and angle_ok, "; ".join(note))


def _rvae(images, side, latent_dim, epochs, lr, decoder, angle, likelihood):
    m = pl.RVAE((side, side), latent_dim=latent_dim, decoder=decoder, likelihood=likelihood,
                encoder_hidden=(8,), decoder_hidden=(8,), seed=0)  # fmt: skip
    m.fit(images, epochs=epochs, batch_size=4, lr=lr, progress=False)
    enc = m.encode(images)
    z = enc["z"]["loc"][:2]
    return {"enc": enc, "dec": m.decode(z, angle=angle)}


@st.composite
def ssrvae_case(draw):
    s = draw(side)
    case = draw(array_case(st.just((6, s, s)), name="images"))
    labelled = draw(real_arrays((4, s, s)))
    labels = np.array([0, 1, 0, 1])
    note = [case.note]
    how = draw(st.sampled_from(["ok"] * 4 + ["label_range", "label_frac", "label_len"]))
    if how == "label_range":
        labels = np.array([0, 1, 2, 5])
    elif how == "label_frac":
        labels = np.array([0, 0.5, 1, 1])
    elif how == "label_len":
        labels = labels[:3]
    note.append(how)
    n_classes, ok = _maybe_bad(draw, st.just(2), st.sampled_from([1, 0, 2.5]), note, "n_classes")
    args = dict(images=case.args["images"], labelled=labelled, labels=labels, side=s,
                n_classes=n_classes)  # fmt: skip
    return Case(args, case.valid and ok and how == "ok", "; ".join(note))


def _ssrvae(images, labelled, labels, side, n_classes):
    m = pl.SSRVAE((side, side), n_classes=n_classes, encoder_hidden=(8,), decoder_hidden=(8,),
                  seed=0)  # fmt: skip
    m.fit(images, labelled, labels, epochs=1, batch_size=4, progress=False)
    return {"p": m.predict_proba(images), "dec": m.decode(np.zeros((2, 2)), 1, angle=0.3)}


@st.composite
def nmf_case(draw):
    t, f = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    case = draw(array_case(st.just((t, f)), low=0, high=3, name="x"))
    note = [case.note]
    k_ok = True
    k = draw(st.integers(1, 3))
    if draw(st.integers(0, 4)) == 0:
        k = draw(st.sampled_from([0, -1, 2.5, t + f + 1]))
        k_ok = False
        note.append(f"n_components={k}")
    x = case.args["x"]
    if case.valid and draw(st.integers(0, 5)) == 0:
        x = np.zeros_like(x)  # all zero: valid, must not give NaN
        note.append("all zero")
    if case.valid and draw(st.integers(0, 6)) == 0:
        x = -x - 1  # negative: refused
        case = Case(case.args, False, case.note)
        note.append("negative")
    method = draw(st.sampled_from(["map", "map", "svi"]))
    return Case({"x": x, "n_components": k, "method": method}, case.valid and k_ok,
                "; ".join(note))  # fmt: skip


def _nmf(x, n_components, method):
    m = pl.NMF(n_components=n_components, seed=0).fit(x, method=method, epochs=5, progress=False)
    return {"components": m.components_, "time_courses": m.time_courses_}


@st.composite
def volume_case(draw):
    n = draw(st.integers(2, 4))
    case = draw(array_case(st.just((n, 9, 9)), low=0, high=2, name="patterns"))
    rot = random_rotations(n, generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
    rot = rot.numpy()
    how = draw(st.sampled_from(["ok"] * 4 + ["not_rotation", "len", "nan"]))
    if how == "not_rotation":
        rot = rot * 2
    elif how == "len":
        rot = rot[:-1]
    elif how == "nan":
        rot = rot.copy()
        rot[0, 0, 0] = np.nan
    return Case({**case.args, "rotations": rot}, case.valid and how == "ok", f"{case.note} {how}")


def _volume(patterns, rotations):
    m = pl.VolumeVAE(9, latent_dim=1, group=None, likelihood="gaussian",
                     encoder_channels=(2, 2), encoder_hidden=8,
                     model_options={"hidden": 8, "depth": 1, "n_features": 4}, seed=0)  # fmt: skip
    m.fit(patterns, rotations, epochs=1, batch_size=2, progress=False)
    return m.encode(patterns, rotations)


def _model_trace(model, *args):
    with pyro.poutine.trace() as tr:
        model(*args)
    trace = tr.trace
    trace.compute_log_prob()
    return [site["log_prob_sum"] for site in trace.nodes.values() if site["type"] == "sample"]


@st.composite
def rvae_model_case(draw):
    s = draw(side)
    case = draw(array_case(st.just((3, s, s)), name="x"))
    note = [case.note]
    latent_dim, ok = _maybe_bad(draw, st.integers(1, 3), BAD_COUNTS, note, "latent_dim")
    sigma, ok2 = _maybe_bad(draw, st.floats(0.05, 1), bad_numbers(low=0), note, "sigma")
    return Case({**case.args, "side": s, "latent_dim": latent_dim, "sigma": sigma},
                case.valid and ok and ok2, "; ".join(note))  # fmt: skip


def _rvae_model(x, side, latent_dim, sigma):
    model = pl.RVAEModel((side, side), latent_dim=latent_dim, sigma=sigma, hidden=(8,),
                         likelihood="gaussian")  # fmt: skip
    return _model_trace(model, _tensor(x))


def _tensor(x):
    """Float arrays as tensors; anything else is passed on for the model to refuse."""
    return torch.as_tensor(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x


def _ssrvae_model(x, side, latent_dim, sigma):
    model = pl.SSRVAEModel((side, side), n_classes=2, latent_dim=latent_dim, sigma=sigma,
                           hidden=(8,), likelihood="gaussian")  # fmt: skip
    y = torch.zeros(3, dtype=torch.long)
    return _model_trace(model, _tensor(x), y)


@st.composite
def nmf_model_case(draw):
    t, f = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    case = draw(array_case(st.just((t, f)), low=0, high=2, name="x"))
    note = [case.note]
    k, ok = _maybe_bad(draw, st.integers(1, 3), BAD_COUNTS, note, "n_components")
    return Case({**case.args, "n_components": k}, case.valid and ok, "; ".join(note))


def _nmf_model(x, n_components):
    shape = np.shape(x) or (1,)
    model = pl.NMFModel(shape[0], shape[-1], n_components=n_components)
    return _model_trace(model, _tensor(x))


@st.composite
def volume_model_case(draw):
    size, ok = _maybe_bad(draw, st.sampled_from([7, 9]), st.sampled_from([0, -4, 7.5, 8]), [],
                          "size")  # fmt: skip
    latent_dim, ok2 = _maybe_bad(draw, st.integers(1, 2), BAD_COUNTS, [], "latent_dim")
    return Case({"size": size, "latent_dim": latent_dim}, ok and ok2,
                f"size={size} latent_dim={latent_dim}")  # fmt: skip


def _volume_model(size, latent_dim):
    model = pl.VolumeVAEModel(size, latent_dim=latent_dim, group=None, hidden=8, depth=1,
                              n_features=4)  # fmt: skip
    return model.generate(torch.zeros(2, latent_dim))


@st.composite
def trainer_case(draw):
    case = draw(array_case(st.just((6, 6, 6)), name="x"))
    note = [case.note]
    lr, ok = _maybe_bad(draw, st.sampled_from([1e-3, 1e-2]), bad_numbers(low=0), note, "lr")
    epochs, ok2 = _maybe_bad(draw, st.integers(1, 2), BAD_EPOCHS, note, "epochs")
    batch, ok3 = _maybe_bad(draw, st.integers(1, 6), BAD_COUNTS, note, "batch_size")
    return Case({**case.args, "lr": lr, "epochs": epochs, "batch_size": batch},
                case.valid and ok and ok2 and ok3, "; ".join(note))  # fmt: skip


def _trainer(x, lr, epochs, batch_size):
    rvae = pl.RVAE((6, 6), encoder_hidden=(8,), decoder_hidden=(8,), seed=0)
    trainer = pl.Trainer(rvae.model, rvae.guide, lr=lr, progress=False)
    history = trainer.fit(x, epochs=epochs, batch_size=batch_size, val_data=x)
    return {"loss": history["loss"], "val": trainer.evaluate(x)}


@st.composite
def aux_elbo_case(draw):
    w, ok = _maybe_bad(draw, st.floats(0, 100), bad_numbers(low=0), [], "aux_weight")
    return Case({"aux_weight": w, "x": draw(real_arrays((4, 6, 6)))}, ok, f"aux_weight={w!r}")


def _aux_elbo(aux_weight, x):
    loss = pl.AuxiliaryTraceEnum_ELBO(aux_weight=aux_weight, max_plate_nesting=1)
    m = pl.SSRVAE((6, 6), n_classes=2, encoder_hidden=(8,), decoder_hidden=(8,), seed=0)
    x, y = torch.as_tensor(x), torch.tensor([0, 1, 0, 1])
    return [loss.loss(m.model, m.guide, x), loss.loss(m.model, m.guide, x, y)]


ENTRIES = {
    "RVAE": Entry(rvae_case(), _rvae, cost=1.5),
    "SSRVAE": Entry(ssrvae_case(), _ssrvae, cost=2.0),
    "NMF": Entry(nmf_case(), _nmf, cost=0.8),
    "VolumeVAE": Entry(volume_case(), _volume, cost=2.0),
    "RVAEModel": Entry(rvae_model_case(), _rvae_model, cost=0.3),
    "SSRVAEModel": Entry(rvae_model_case(), _ssrvae_model, cost=0.4),
    "NMFModel": Entry(nmf_model_case(), _nmf_model, cost=0.2),
    "VolumeVAEModel": Entry(volume_model_case(), _volume_model, cost=0.4),
    "Trainer": Entry(trainer_case(), _trainer, cost=1.5),
    "AuxiliaryTraceEnum_ELBO": Entry(aux_elbo_case(), _aux_elbo, cost=0.8),
}
