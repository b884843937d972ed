"""Fuzz entries: particle tables, localisation, crops, tracking, KDEs, segmentation, callbacks."""

from __future__ import annotations

import math

import numpy as np
import torch
from fuzzing import Case, Entry, array_case, bad_numbers, param_case, poison, real_arrays
from hypothesis import strategies as st

from pyrolatent.analysis.kde import gaussian_kde_1d, latent_kde_over_time, wrapped_kde
from pyrolatent.analysis.tracking import link
from pyrolatent.data.crops import extract_crops
from pyrolatent.infer.callbacks import BetaSchedule, EarlyStopping
from pyrolatent.segmentation import DeepEnsemble, DilNet, UNet, locate, train_ensemble

small = st.integers(1, 12)
shape3 = st.tuples(st.integers(1, 3), small, small)


@st.composite
def particle_table(draw, n_frames=4, size=16):
    n = draw(st.integers(0, 8))
    seed = draw(st.integers(0, 10**6))
    rng = np.random.default_rng(seed)
    table = {
        "frame": rng.integers(0, n_frames, n),
        "row": rng.uniform(0, size - 1, n),
        "col": rng.uniform(0, size - 1, n),
    }
    how = draw(st.sampled_from(["valid"] * 4 + ["nan", "complex", "fraction", "length", "miss"]))
    if how == "valid" or n == 0:
        return Case({"particles": table}, True, f"{n} particles")
    if how == "nan":
        table["row"] = poison(table["row"], "nan", seed)
    elif how == "complex":
        table["col"] = table["col"].astype(complex)
    elif how == "fraction":
        table["frame"] = table["frame"] + 0.5
    elif how == "length":
        table["col"] = table["col"][:-1]
    else:
        del table["row"]
    return Case({"particles": table}, False, f"particles {how}")


def _link(particles, search_radius=21.0, max_gap=0):
    return link(particles, search_radius=search_radius, max_gap=max_gap)


@st.composite
def link_case(draw):
    case = draw(particle_table())
    if draw(st.booleans()):
        r = draw(st.floats(0.1, 50))
    else:
        r = draw(bad_numbers(low=0))
        case = Case(case.args, False, case.note + f", search_radius={r!r}")
    gap = draw(st.sampled_from([0, 1, 2, 0.5, -1]))
    valid = case.valid and gap in (0, 1, 2)
    return Case({**case.args, "search_radius": r, "max_gap": gap}, valid, case.note)


def _crops(frames, particles, window):
    return extract_crops(frames, particles, window)


@st.composite
def crops_case(draw):
    table = draw(particle_table(n_frames=2, size=10))
    frames = draw(array_case(st.just((2, 10, 10)), name="frames"))
    window = draw(st.sampled_from([2, 3, 5, 8, 1, 0, 11, 2.5, math.nan]))
    valid = table.valid and frames.valid and window in (2, 3, 5, 8)
    args = {**frames.args, **table.args, "window": window}
    return Case(args, valid, f"{frames.note}; {table.note}; window={window}")


@st.composite
def locate_case(draw):
    case = draw(array_case(shape3, name="probability"))
    threshold = draw(st.sampled_from([0.5, 0.1, 0.9, math.nan]))
    min_area = draw(st.sampled_from([0, 1, 5, -1, math.nan]))
    valid = case.valid and not math.isnan(threshold) and min_area in (0, 1, 5)
    return Case({**case.args, "threshold": threshold, "min_area": min_area}, valid, case.note)


def _located(table):
    """Every column but ``mean_uncertainty`` (NaN by definition without an uncertainty)."""
    return [v for k, v in table.items() if k != "mean_uncertainty"]


def _locate(probability, threshold, min_area):
    return locate(probability, threshold=threshold, min_area=min_area)


@st.composite
def kde_case(draw):
    n = draw(st.integers(0, 6))
    values = draw(real_arrays((n,), -5, 5, np.float64))
    grid = draw(real_arrays((draw(st.integers(1, 8)),), -6, 6, np.float64))
    how = draw(st.sampled_from(["valid"] * 4 + ["bw", "w_nan", "w_neg", "w_len", "complex"]))
    args = {"values": values, "grid": grid, "bandwidth": draw(st.floats(0.05, 3))}
    if how == "valid":
        if n and draw(st.booleans()):
            args["weights"] = draw(real_arrays((n,), 0.1, 2, np.float64))
        return Case(args, True, f"n={n}")
    if how == "bw":
        args["bandwidth"] = draw(bad_numbers(low=0))
    elif how == "w_nan":
        args["weights"] = np.full(n, np.nan)
    elif how == "w_neg":
        args["weights"] = -np.ones(n)
    elif how == "w_len":
        args["weights"] = np.ones(n + 1)
    else:
        args["values"] = values.astype(complex) + 1j
    valid = how in ("w_nan", "w_neg") and n == 0  # empty weights for no values are fine
    return Case(args, valid, how)


@st.composite
def wrapped_case(draw):
    case = draw(kde_case())
    args = {"angles": case.args["values"], "grid": case.args["grid"]}
    args["bandwidth"] = case.args["bandwidth"] if case.note != "bw" else case.args["bandwidth"]
    valid = case.valid and 0 < args["bandwidth"] < math.pi
    if not case.valid and "weights" in case.args:  # wrapped_kde has no weights
        valid = case.note in ("w_nan", "w_neg", "w_len") and 0 < args["bandwidth"] < math.pi
    return Case(args, valid, case.note)


@st.composite
def kde_time_case(draw):
    n = draw(st.integers(0, 10))
    latents = draw(real_arrays((n,), -3, 3, np.float64))
    frames = np.sort(np.random.default_rng(draw(st.integers(0, 99))).integers(0, 4, n))
    grid = np.linspace(-3, 3, draw(st.integers(2, 9)))
    window = draw(st.sampled_from([1, 2, 3, 0, 1.5]))
    circular = draw(st.booleans())
    how = draw(st.sampled_from(["valid"] * 3 + ["nan", "complex", "frac", "len"]))
    args = dict(latents=latents, frames=frames, grid=grid, window=window, circular=circular,
                n_frames=4)  # fmt: skip
    if how == "nan" and n:
        args["latents"] = poison(latents, "nan", n)
    elif how == "complex":
        args["latents"] = latents.astype(complex) + 1j
    elif how == "frac" and n:
        args["frames"] = frames + 0.25
    elif how == "len":
        args["frames"] = np.append(frames, 0)
    else:
        how = "valid"
    return Case(args, how == "valid" and window in (1, 2, 3), f"{how} n={n} window={window}")


def _ensemble(frames, kind, members):
    torch.manual_seed(0)
    if kind == "dilnet":
        net = DilNet(filters=2, members=members)
    else:
        net = UNet(filters=2, depth=1, members=members)
    return DeepEnsemble(net).predict(frames, progress=False)


@st.composite
def ensemble_case(draw):
    case = draw(array_case(shape3, low=-100, high=100, name="frames"))
    kind = draw(st.sampled_from(["dilnet", "unet"]))
    return Case({**case.args, "kind": kind, "members": draw(st.integers(1, 2))}, case.valid,
                case.note)  # fmt: skip


def _net(kind, filters, members, side):
    net = DilNet(filters=filters, members=members) if kind == "dilnet" else UNet(
        filters=filters, depth=1, members=members)  # fmt: skip
    with torch.no_grad():
        return net(torch.rand(1, 1, side, side))


@st.composite
def net_case(draw, kind):
    return draw(param_case(
        st.fixed_dictionaries({"kind": st.just(kind),
                               "side": st.integers(4, 12)}),
        {"filters": (st.integers(1, 4), st.sampled_from([0, -1, 2.5, math.nan])),
         "members": (st.integers(1, 2), st.sampled_from([0, -2, 1.5]))},
    ))  # fmt: skip


def _train_ensemble(images, masks, n_members, patch_size):
    return train_ensemble(
        images, masks, network_config={"filters": 2}, n_members=n_members, baseline_steps=2,
        member_steps=1, patience=None, eval_every=1, batch_size=2, patch_size=patch_size,
        val_fraction=0.0, progress=False,
    ).predict(images, progress=False)  # fmt: skip


@st.composite
def train_ensemble_case(draw):
    case = draw(array_case(st.just((2, 12, 12)), name="images"))
    masks = np.random.default_rng(draw(st.integers(0, 99))).random((2, 12, 12)) > 0.5
    n_members = draw(st.sampled_from([1, 2, 2, 0, -1, 1.5]))
    patch = draw(st.sampled_from([8, 8, 4, 0, 100]))
    valid = case.valid and n_members in (1, 2) and patch in (4, 8, 100)  # clamped to the image
    return Case({**case.args, "masks": masks, "n_members": n_members, "patch_size": patch},
                valid, f"{case.note} members={n_members} patch={patch}")  # fmt: skip


def _beta(start, end, warmup_epochs, epoch):
    return BetaSchedule(start=start, end=end, warmup_epochs=warmup_epochs).value(epoch)


@st.composite
def beta_case(draw):
    return draw(param_case(
        st.fixed_dictionaries({"epoch": st.integers(0, 30)}),
        {"start": (st.floats(0, 1), bad_numbers()), "end": (st.floats(0, 1), bad_numbers()),
         "warmup_epochs": (st.integers(1, 20), st.sampled_from([0, -1, 2.5, math.nan]))},
    ))  # fmt: skip


def _early(patience, min_delta, losses):
    class _T:
        stop_training = False

    cb, t = EarlyStopping(monitor="loss", patience=patience, min_delta=min_delta), _T()
    for epoch, loss in enumerate(losses):
        cb.on_epoch_end(t, epoch, {"loss": loss})
    return np.asarray(float(t.stop_training))


@st.composite
def early_case(draw):
    return draw(param_case(
        st.fixed_dictionaries({"losses": st.lists(st.floats(-10, 10), max_size=8)}),
        {"patience": (st.integers(0, 5), st.sampled_from([-1, 1.5, math.nan])),
         "min_delta": (st.floats(0, 1), bad_numbers(low=0))},
    ))  # fmt: skip


ENTRIES = {
    "locate": Entry(locate_case(), _locate, cost=0.2, outputs=_located),
    "extract_crops": Entry(crops_case(), _crops, cost=0.2),
    "link": Entry(link_case(), _link, cost=0.2),
    "gaussian_kde_1d": Entry(kde_case(), gaussian_kde_1d, cost=0.1),
    "wrapped_kde": Entry(wrapped_case(), wrapped_kde, cost=0.1),
    "latent_kde_over_time": Entry(kde_time_case(), latent_kde_over_time, cost=0.1),
    "DeepEnsemble": Entry(ensemble_case(), _ensemble, cost=0.5),
    "DilNet": Entry(net_case("dilnet"), _net, cost=0.3),
    "UNet": Entry(net_case("unet"), _net, cost=0.3),
    "train_ensemble": Entry(train_ensemble_case(), _train_ensemble, cost=3),
    "BetaSchedule": Entry(beta_case(), _beta, cost=0.05),
    "EarlyStopping": Entry(early_case(), _early, cost=0.05),
}
