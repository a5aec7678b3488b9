"""End to end: the tick example runs as a user runs it, event-driven and vectorized alike."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_example_ticks_event_and_signals_agree(capsys: pytest.CaptureFixture[str]) -> None:
    old = sys.argv
    sys.argv = ["run_ticks.py"]
    try:
        runpy.run_path(str(ROOT / "examples" / "run_ticks.py"), run_name="__main__")
    finally:
        sys.argv = old
    out = capsys.readouterr().out
    assert "ticks: 1602 bars" in out and "minute bars: 119" in out
    trades = int(out.split("trades: ")[1].splitlines()[0])
    assert trades > 0
    assert "event-driven and signals agree: True" in out


def test_the_tick_file_is_what_the_generator_makes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample_data", ROOT / "examples" / "data" / "make_sample_data.py"
    )
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rng = np.random.Generator(np.random.PCG64(gen.TICK_SEED))
    made = gen.make_ticks(rng).to_csv(index=False)
    assert made == (ROOT / "examples" / "data" / "ticks.csv").read_text()
