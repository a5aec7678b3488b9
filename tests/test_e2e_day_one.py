"""The first hour of a new user: every mistake is one line and exit code 2, never a
traceback; what a run prints makes its result readable."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bt_core.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "data" / "sample.csv"
MULTI = ROOT / "examples" / "data" / "multi_asset.csv"
SMA = ROOT / "examples" / "strategies" / "sma_cross.py"

runner = CliRunner()


def run(*args: object) -> tuple[int, str]:
    res = runner.invoke(app, ["run", *(str(a) for a in args)])
    return res.exit_code, res.output


def assert_one_line_error(code: int, output: str, *needles: str) -> None:
    assert code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    for n in needles:
        assert n in errors[0], output


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("fast=abc", "parameter fast expects an integer (default 10), got 'abc'"),
        ("fast=5.0", "parameter fast expects an integer"),
        ("fast", "--param expects key=value"),
    ],
)
def test_parameter_of_the_wrong_type(tmp_path: Path, value: str, needle: str) -> None:
    code, out = run(SMA, "--data", SAMPLE, "-p", value, "--out", tmp_path)
    assert_one_line_error(code, out, needle)


def test_parameter_text_is_coerced_to_the_default_type(tmp_path: Path) -> None:
    code, out = run(SMA, "--data", SAMPLE, "-p", "fast=5", "-p", "slow=20", "--out", tmp_path)
    assert code == 0, out


@pytest.mark.parametrize(
    ("source", "needles"),
    [
        ("class S(Strategy)\n    pass\n", ["syntax error", ":2"]),
        ("import not_a_module_anywhere\n", ["cannot import", "not_a_module_anywhere", ":2"]),
        ("x = 1 / 0\n", ["ZeroDivisionError while loading the file", ":2"]),
        ("x = 1\n", ["defines no Strategy subclass"]),
    ],
)
def test_broken_strategy_files(tmp_path: Path, source: str, needles: list[str]) -> None:
    f = tmp_path / "strat.py"
    f.write_text("from bt_core import Strategy\n" + source)
    code, out = run(f, "--data", SAMPLE, "--out", tmp_path / "o")
    assert_one_line_error(code, out, str(f), *needles)
    assert "--class" not in out


def test_helper_module_beside_the_strategy_imports(tmp_path: Path) -> None:
    (tmp_path / "my_helpers.py").write_text(
        "def decide(i):\n    return 'BUY' if i == 5 else None\n"
    )
    f = tmp_path / "uses_helper.py"
    f.write_text(
        "from bt_core import Strategy\nfrom my_helpers import decide\n"
        "class S(Strategy):\n    order_size = 1\n"
        "    def next(self, bar):\n        return decide(bar.i)\n"
    )
    code, out = run(f, "--data", SAMPLE, "--out", tmp_path / "o", "--json")
    assert code == 0, out
    # Importable by name, so that worker processes can load the same class.
    assert "uses_helper" in sys.modules
    assert sys.modules["uses_helper"].S.__module__ == "uses_helper"


@pytest.mark.parametrize("phase", ["on_start", "on_stop"])
def test_exceptions_in_start_and_stop(tmp_path: Path, phase: str) -> None:
    f = tmp_path / "bad.py"
    f.write_text(
        "from bt_core import Strategy\nclass S(Strategy):\n"
        f"    def {phase}(self):\n        raise RuntimeError('broken {phase}')\n"
    )
    code, out = run(f, "--data", SAMPLE, "--out", tmp_path / "o")
    assert_one_line_error(code, out, f"{phase}() raised RuntimeError: broken {phase}")


def test_single_symbol_strategy_on_multi_symbol_data(tmp_path: Path) -> None:
    code, out = run(SMA, "--data", MULTI, "--out", tmp_path)
    assert_one_line_error(code, out, "--symbol", "symbols")


def test_out_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, out = run("sma_cross", "--data", SAMPLE, "--out", blocker / "sub")
    assert_one_line_error(code, out, "cannot write the results")
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; see the next test")
def test_out_in_a_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, out = run("sma_cross", "--data", SAMPLE, "--out", ro)
        assert_one_line_error(code, out, "cannot write the results")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_a_failed_save_leaves_the_previous_set(tmp_path: Path, monkeypatch) -> None:
    # A full disk or read-only file system while writing: no new file replaces an old one.
    code, out = run("sma_cross", "--data", SAMPLE, "--out", tmp_path)
    assert code == 0, out
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = Path.write_text
    calls = {"n": 0}

    def failing(self: Path, *a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(30, "Read-only file system")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", failing)
    code, out = run("sma_cross", "--data", SAMPLE, "--out", tmp_path, "-p", "fast=3")
    assert_one_line_error(code, out, "Read-only file system")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_short_table_with_percentages_and_all(tmp_path: Path) -> None:
    code, out = run("sma_cross", "--data", SAMPLE, "--out", tmp_path)
    assert code == 0, out
    assert "total_return" in out and "buy_hold_return" in out and " %" in out
    assert "days (" in out and "bars)" in out  # holding time in days and bars
    assert "tail_ratio" not in out
    code, out = run("sma_cross", "--data", SAMPLE, "--out", tmp_path, "--all")
    assert code == 0 and "tail_ratio" in out


def test_rejected_orders_are_reported(tmp_path: Path) -> None:
    f = tmp_path / "greedy.py"
    f.write_text(
        "from bt_core import Strategy\nclass Greedy(Strategy):\n"
        "    def next(self, bar):\n        self.buy(10_000_000)\n"
    )
    code, out = run(f, "--data", SAMPLE, "--out", tmp_path / "o")
    assert code == 0, out
    assert "rejected orders:" in out and "insufficient_cash" in out
    assert "warning: most orders were rejected" in out
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    # Every order is rejected but the last bar's, which is still working at the end.
    assert stats["n_rejected"] == stats["n_orders"] - 1 > 0


def test_benchmark_symbol_and_file(tmp_path: Path) -> None:
    symbol = sorted(pd.read_csv(MULTI)["symbol"].unique())[0]
    code, out = run(
        "sma_cross", "--data", MULTI, "--benchmark", symbol, "--out", tmp_path / "a", "--json"
    )
    assert code == 0, out
    stats = json.loads((tmp_path / "a" / "stats.json").read_text())
    assert stats["beta"] is not None
    code, out = run(
        "sma_cross", "--data", SAMPLE, "--benchmark", SAMPLE, "--out", tmp_path / "b", "--json"
    )
    assert code == 0, out
    stats = json.loads((tmp_path / "b" / "stats.json").read_text())
    assert stats["beta"] is not None
    code, out = run("sma_cross", "--data", SAMPLE, "--benchmark", "NOPE", "--out", tmp_path)
    assert_one_line_error(code, out, "neither a symbol of the data")


def test_version_lists_every_package() -> None:
    res = runner.invoke(app, ["version"])
    assert res.exit_code == 0
    for name in (
        "bt-core",
        "bt-engine",
        "bt-analysis",
        "pyrust-bt-data",
        "bt-server",
        "bt-app",
        "pyrust-bt",
    ):
        assert name in res.output
