"""Fuzz suite (issue 16): every public entry point and every CLI command on files.

The fast profile runs in the default suite; the long profile (``-m slow``) tries
at least 5,000 inputs over all entry points and writes the counts per entry
point to ``benchmarks/results/fuzz_long.json``. The contract is in
``tests/fuzzing.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fuzz_cli import check_cli_case, cli_case
from fuzz_entries_data import ENTRIES as DATA
from fuzz_entries_models import ENTRIES as MODELS
from fuzz_entries_spi import ENTRIES as SPI
from fuzzing import FAILURES, REFUSED, TRIED, check_case
from hypothesis import HealthCheck, given, settings

import pyrolatent

ENTRIES = {**DATA, **SPI, **MODELS}
FAST_EXAMPLES = int(os.environ.get("PYROLATENT_FUZZ_FAST", "6"))
LONG_TOTAL = int(os.environ.get("PYROLATENT_FUZZ_TOTAL", "5200"))


def _run(name: str, examples: int, deadline_ms: int) -> None:
    entry = ENTRIES[name]

    @settings(max_examples=examples, deadline=deadline_ms, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=entry.strategy)
    def run(case):
        check_case(name, entry, case)

    run()


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fuzz_fast(name):
    _run(name, FAST_EXAMPLES, deadline_ms=20_000)


def _long_examples() -> dict:
    weights = {n: max(e.cost, 0.05) ** -0.5 for n, e in ENTRIES.items()}
    total = sum(weights.values())
    return {n: max(60, round(LONG_TOTAL * w / total)) for n, w in weights.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fuzz_long(name):
    _run(name, _long_examples()[name], deadline_ms=60_000)
    _record(name)


def _record(name: str) -> None:
    """Add ``name``'s counts to ``benchmarks/results/fuzz_long.json``."""
    out = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "fuzz_long.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(out.read_text()) if out.is_file() else {}
    done[name] = {"tried": TRIED[name], "refused": REFUSED[name], "failures": FAILURES[name]}
    out.write_text(json.dumps(done, indent=1, sort_keys=True))


def test_every_top_level_name_is_fuzzed():
    # warning and exception classes are raised by the library, not called with user input
    names = {
        name
        for name in set(pyrolatent.__all__) - {"__version__"}
        if not (
            isinstance(getattr(pyrolatent, name), type)
            and issubclass(getattr(pyrolatent, name), BaseException)
        )
    }
    missing = sorted(names - set(ENTRIES))
    assert not missing, f"no fuzz strategy for {missing}"


CLI_COMMANDS = ("preprocess", "segment", "locate", "crops", "train", "analyze", "report", "demo")


def _run_cli(command: str, examples: int) -> None:
    name = f"cli {command}"

    @settings(max_examples=examples, deadline=120_000, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=cli_case(command))
    def run(case):
        build, note = case
        TRIED[name] += 1
        try:
            code = check_cli_case(build, note)
        except AssertionError:
            FAILURES[name] += 1
            raise
        except Exception as exc:
            FAILURES[name] += 1
            raise AssertionError(f"{note}: unhandled {type(exc).__name__}: {exc}") from exc
        REFUSED[name] += code == 2

    run()


@pytest.mark.parametrize("command", CLI_COMMANDS)
def test_fuzz_cli_fast(command):
    n = int(os.environ.get("PYROLATENT_FUZZ_CLI", "0"))
    _run_cli(command, n or (2 if command in ("segment", "train", "analyze") else 4))


@pytest.mark.slow
@pytest.mark.parametrize("command", CLI_COMMANDS)
def test_fuzz_cli_long(command):
    _run_cli(command, 30 if command in ("segment", "train", "analyze") else 80)
    _record(f"cli {command}")
