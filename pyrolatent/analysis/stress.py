"""Stress tests: classification accuracy over grids of disorder on the cards benchmark.

Each function takes ``predict``, any callable ``images (N, H, W) -> (N,)``
class indices (e.g. ``SSRVAE.predict`` or a baseline's), generates fresh test
cards with :func:`~pyrolatent.data.synthetic.cards.make_cards` for each
setting, and returns the accuracies. ``base`` holds the ``make_cards``
keywords shared by every setting (default: the paper's test disorder,
rotation +-60 deg, shear [0, 0.23], offsets up to 0.1 of the image, scale
jitter 0.1); the varied keyword overrides it.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from ..data.synthetic.cards import make_cards
from ..infer.metrics import accuracy, confusion_matrix

__all__ = ["PAPER_TEST_DISORDER", "accuracy_curve", "accuracy_grid", "confusion_on_cards"]

PAPER_TEST_DISORDER = {
    "angle_range": math.radians(60),
    "shear": 0.23,
    "max_offset": 0.1,
    "scale_jitter": 0.1,
}
_KNOBS = tuple(
    p for p in inspect.signature(make_cards).parameters if p not in ("n_per_class", "seed")
)


def _settings(base: dict | None, image_size: int) -> dict:
    out = dict(PAPER_TEST_DISORDER if base is None else base)
    out["image_size"] = image_size
    for key in out:
        if key not in _KNOBS:
            raise ValueError(f"unknown disorder knob {key!r}; choose from {_KNOBS}")
    return out


def _check_param(name: str) -> None:
    if name not in _KNOBS or name == "image_size":
        raise ValueError(f"unknown disorder knob {name!r}; choose from {_KNOBS}")


def accuracy_curve(
    predict: Callable[[np.ndarray], np.ndarray],
    param: str,
    values: Sequence[float],
    n_per_class: int = 250,
    image_size: int = 48,
    base: dict | None = None,
    seed: int = 10_000,
) -> dict[str, list]:
    """Accuracy as one disorder knob varies (e.g. the paper's Fig. 4e/f).

    Parameters
    ----------
    predict : callable
        ``images -> labels``.
    param : str
        A :func:`make_cards` keyword, e.g. ``"angle_range"`` (radians),
        ``"noise"``, ``"contamination_density"``.
    values : sequence of float
    n_per_class : int
        Test cards per suit and setting.
    image_size : int
    base : dict, optional
        Other ``make_cards`` keywords (default :data:`PAPER_TEST_DISORDER`).
    seed : int
        Seed of the first setting (each setting adds its index).

    Returns
    -------
    dict
        ``{"param": str, "values": [...], "accuracy": [...]}``.
    """
    _check_param(param)
    settings = _settings(base, image_size)
    acc = []
    for i, v in enumerate(values):
        data = make_cards(n_per_class, seed=seed + i, **{**settings, param: float(v)})
        acc.append(accuracy(predict(data["images"]), data["labels"]))
    return {"param": param, "values": [float(v) for v in values], "accuracy": acc}


def accuracy_grid(
    predict: Callable[[np.ndarray], np.ndarray],
    row_param: str,
    row_values: Sequence[float],
    col_param: str,
    col_values: Sequence[float],
    n_per_class: int = 100,
    image_size: int = 48,
    base: dict | None = None,
    seed: int = 20_000,
) -> dict:
    """Accuracy over a 2-D grid of disorder (e.g. shear x angle, the paper's Fig. 4a).

    Returns
    -------
    dict
        ``{"row_param", "row_values", "col_param", "col_values",
        "accuracy": (R, C) nested list}``.
    """
    _check_param(row_param)
    _check_param(col_param)
    if row_param == col_param:
        raise ValueError("row_param and col_param must differ")
    settings = _settings(base, image_size)
    acc = np.zeros((len(row_values), len(col_values)))
    for k, ((i, r), (j, c)) in enumerate(
        itertools.product(enumerate(row_values), enumerate(col_values))
    ):
        kw = {**settings, row_param: float(r), col_param: float(c)}
        data = make_cards(n_per_class, seed=seed + k, **kw)
        acc[i, j] = accuracy(predict(data["images"]), data["labels"])
    return {
        "row_param": row_param,
        "row_values": [float(v) for v in row_values],
        "col_param": col_param,
        "col_values": [float(v) for v in col_values],
        "accuracy": acc.tolist(),
    }


def confusion_on_cards(
    predict: Callable[[np.ndarray], np.ndarray],
    n_per_class: int = 250,
    image_size: int = 48,
    base: dict | None = None,
    seed: int = 30_000,
) -> np.ndarray:
    """Confusion matrix ``(4, 4)`` (rows: true suit, columns: predicted) on fresh test cards."""
    data = make_cards(n_per_class, seed=seed, **_settings(base, image_size))
    return confusion_matrix(predict(data["images"]), data["labels"], len(data["suits"]))
