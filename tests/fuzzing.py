"""The fuzz harness of issue 16: entry points, input strategies and the one contract.

Every entry point gets a hypothesis strategy that draws a *case*: the arguments,
and whether they are valid (finite values in the documented ranges and shapes)
or poisoned (NaN/Inf, complex, wrong shapes or dtypes, empty, out-of-range
parameters). The contract checked for every case:

* an exception must be one of the documented types (``ValueError``,
  ``TypeError`` and their subclasses, ``CheckpointError``), carry a message, and
  be raised by pyrolatent's own code (the innermost frame of its traceback lies
  in the package), not leak from numpy, torch, scipy or pandas;
* a poisoned case must be refused (raise), never return quietly;
* a valid case that returns must give finite outputs (no NaN or Inf);
* no case may take longer than the deadline (hangs).
"""

from __future__ import annotations

import math
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

import pyrolatent

PACKAGE = str(Path(pyrolatent.__file__).resolve().parent)
DOCUMENTED = (ValueError, TypeError)

#: Inputs tried and outcomes per entry point (filled while the fuzz tests run).
TRIED: Counter = Counter()
REFUSED: Counter = Counter()
FAILURES: Counter = Counter()


@dataclass
class Case:
    """Arguments of one call and whether they are valid."""

    args: dict
    valid: bool
    note: str = ""


@dataclass
class Entry:
    """An entry point: ``strategy`` draws a :class:`Case`, ``call(args)`` runs it."""

    strategy: st.SearchStrategy
    call: object
    cost: float = 1.0  # relative cost; the long profile gives cheap entries more inputs
    outputs: object = None  # callable(result) -> iterable of arrays to check for finiteness
    extra: dict = field(default_factory=dict)


def raised_by_us(exc: BaseException) -> bool:
    """The innermost frame of the traceback lies in the pyrolatent package."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and str(Path(frames[-1].filename).resolve()).startswith(PACKAGE)


def _arrays_in(obj, depth: int = 0):
    if depth > 4:
        return
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield obj.detach().cpu().numpy()
    elif isinstance(obj, np.ndarray):
        if np.issubdtype(obj.dtype, np.inexact):
            yield obj
    elif isinstance(obj, (float, np.floating)):
        yield np.asarray(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays_in(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _arrays_in(v, depth + 1)


def check_case(name: str, entry: Entry, case: Case) -> None:
    """Run one case and assert the contract (see the module docstring)."""
    TRIED[name] += 1
    try:
        result = entry.call(**case.args)
    except DOCUMENTED as exc:
        REFUSED[name] += 1
        ok = bool(str(exc).strip()) and raised_by_us(exc)
        if not ok:
            FAILURES[name] += 1
            raise AssertionError(
                f"{name}: {type(exc).__name__} not raised by pyrolatent's checks "
                f"({case.note}): {exc}"
            ) from exc
        return
    except Exception as exc:
        FAILURES[name] += 1
        raise AssertionError(f"{name}: unhandled {type(exc).__name__} ({case.note})") from exc
    if not case.valid:
        FAILURES[name] += 1
        raise AssertionError(f"{name}: poisoned input accepted silently ({case.note})")
    outputs = entry.outputs(result) if entry.outputs is not None else _arrays_in(result)
    for arr in outputs:
        if not np.isfinite(np.asarray(arr)).all():
            FAILURES[name] += 1
            raise AssertionError(f"{name}: NaN/Inf output from valid input ({case.note})")


# ----------------------------------------------------------------------------- strategies
def real_arrays(shape, low=0.0, high=1.0, dtype=np.float32):
    """Finite values in ``[low, high]`` of a fixed shape (drawn from a seed: fast)."""
    return st.integers(0, 2**31 - 1).map(
        lambda s: np.random.default_rng(s).uniform(low, high, size=shape).astype(dtype)
    )


POISONS = ("nan", "inf", "complex", "strings", "empty", "ndim")


def poison(arr: np.ndarray, how: str, rng_seed: int = 0):
    """``arr`` spoiled in one way (see :data:`POISONS`)."""
    a = np.array(arr, dtype=np.float64 if how in ("nan", "inf") else arr.dtype, copy=True)
    if how == "nan":
        a.flat[rng_seed % a.size] = np.nan
        return a
    if how == "inf":
        a.flat[rng_seed % a.size] = -np.inf if rng_seed % 2 else np.inf
        return a
    if how == "complex":
        return a.astype(np.complex64) + 1j
    if how == "strings":
        return a.astype(str)
    if how == "empty":
        return np.zeros((0,) + a.shape[1:], a.dtype)
    if how == "ndim":
        return a[None, None] if rng_seed % 2 else a.reshape(-1)[:1].reshape(())
    raise ValueError(how)


@st.composite
def array_case(draw, shape_strategy, low=0.0, high=1.0, poisons=POISONS, name="x", extra=None):
    """``Case`` with one array argument ``name``: valid, or poisoned one way."""
    shape = draw(shape_strategy)
    arr = draw(real_arrays(shape, low, high))
    how = draw(st.sampled_from(("valid",) * 3 + tuple(poisons)))
    args = {} if extra is None else draw(extra)
    if how == "valid":
        return Case({name: arr, **args}, True, f"{name} shape {shape}")
    seed = draw(st.integers(0, 10**6))
    return Case({name: poison(arr, how, seed), **args}, False, f"{name} {how}, shape {shape}")


def bad_numbers(low=None):
    """Numbers no range check may let through."""
    values = [math.nan, math.inf, -math.inf, 1j, "3"]
    if low is not None:
        values.append(low - 1)
    return st.sampled_from(values)


@st.composite
def param_case(draw, base: dict, params: dict):
    """Valid ``base`` args (a strategy of dicts) with one parameter possibly spoiled.

    ``params`` maps a name to ``(valid strategy, bad strategy)``.
    """
    args = dict(draw(base))
    valid = True
    note = []
    for pname, (good, bad) in params.items():
        if valid and draw(st.integers(0, 5)) == 0:
            args[pname] = draw(bad)
            valid = False
            note.append(f"{pname}={args[pname]!r}")
        else:
            args[pname] = draw(good)
    return Case(args, valid, ", ".join(note) or "valid")
