"""SMA 10/30 cross: pyrust-bt (three ways, plus the raw engine calls) against peer libraries.

    uv sync --all-packages --group bench
    uv run --group bench python benchmarks/bench_sma_cross.py [--sizes 100k,1M] [--repeats 3]
        [--only py,builtin,backtesting] [--max-bars N] [--no-memory] [--json out.json]

Every runner starts from the same generated DataFrame (see ``_peers.make_data``) and does its
library's own data set-up, indicators and result building inside the timed region; imports
and a one-off warm-up run on 2,000 bars (numba compilation, first-call caches) are outside
it. Repeats are interleaved across runners and the best is kept, because this runs on shared
cores. Peak memory is measured per runner in a fresh subprocess (see ``_child_memory``).
See benchmarks/README.md for what each row means and the figures measured.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

# backtesting.py shows a tqdm progress bar whenever tqdm is importable (vectorbt pulls it in);
# a user without tqdm does not pay for it, and it would garble the tables. Must be set before
# tqdm is imported.
os.environ.setdefault("TQDM_DISABLE", "1")

import _peers as P  # noqa: E402
import numpy as np  # noqa: E402

TARGET_PY_BARS_S = 2_000_000
TARGET_PY_VS_BACKTESTING = 10.0
TARGET_NATIVE_BARS_S = 100_000_000
WARMUP_BARS = 2_000


def parse_size(text: str) -> int:
    """'100k' -> 100000, '1M' -> 1000000, '250_000' -> 250000."""
    t = text.strip().replace("_", "").lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", t)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 100000, 100k or 1M")
    n = float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2)]
    if n != int(n) or n < 2 * P.SLOW:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: need a whole number >= {2 * P.SLOW}")
    return int(n)


def parse_sizes(text: str) -> list[int]:
    return [parse_size(s) for s in text.split(",") if s.strip()]


def parse_names(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in P.RUNNERS_BY_NAME]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown runner(s) {unknown}; known: {', '.join(P.RUNNERS_BY_NAME)}"
        )
    return names


# ----- memory -------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        m = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M)
    if m is None:
        raise RuntimeError(f"/proc/self/status has no {field}")
    return int(m.group(1))


def _child_memory(name: str, n_bars: int, seed: int) -> None:
    """Run one runner once in this fresh interpreter and print its memory as JSON.

    Baseline: this interpreter after importing the runner's libraries, generating the data
    and one warm-up run on 2,000 bars. The kernel's peak-RSS mark is then reset (writing 5
    to /proc/self/clear_refs), so VmHWM after the run minus VmRSS before it is the peak
    memory the run itself added, unaffected by earlier transient peaks.
    """
    runner = P.RUNNERS_BY_NAME[name]
    runner.run(P.make_data(WARMUP_BARS, seed))
    df = P.make_data(n_bars, seed)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_kb("VmRSS")
    runner.run(df)
    peak = _status_kb("VmHWM")
    print(json.dumps({"baseline_kb": before, "peak_kb": peak, "delta_kb": peak - before}))


def measure_memory(name: str, n_bars: int, seed: int) -> dict[str, Any]:
    """Peak memory of one run of ``name`` in a fresh subprocess (MiB); error text on failure."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-memory",
        name,
        "--sizes",
        str(n_bars),
        "--seed",
        str(seed),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    d = json.loads(lines[-1])
    return {
        "delta_mib": d["delta_kb"] / 1024,
        "baseline_mib": d["baseline_kb"] / 1024,
        "peak_mib": d["peak_kb"] / 1024,
    }


# ----- timing -------------------------------------------------------------------------------


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def time_runners(runners: list[P.Runner], df: Any, repeats: int) -> dict[str, dict[str, Any]]:
    """Best-of-``repeats`` wall time per runner; repeats interleaved across runners."""
    times: dict[str, list[float]] = {r.name: [] for r in runners}
    outcomes: dict[str, list[P.Outcome]] = {r.name: [] for r in runners}
    for _ in range(repeats):
        for r in runners:
            gc.collect()
            t0 = time.perf_counter()
            out = r.run(df)
            times[r.name].append(time.perf_counter() - t0)
            outcomes[r.name].append(out)
    n = len(df)
    res: dict[str, dict[str, Any]] = {}
    for r in runners:
        best = min(times[r.name])
        outs = outcomes[r.name]
        res[r.name] = {
            "best_s": best,
            "times_s": times[r.name],
            "bars_per_s": n / best,
            "outcome": asdict(outs[0]),
            "repeatable": all(o == outs[0] for o in outs),
        }
    return res


def breakdown(df: Any, repeats: int) -> dict[str, dict[str, float]]:
    """Where our time goes, in ns per bar (best of ``repeats`` for each phase).

    Python mode phases come from a subclass of the benchmark strategy that stamps the clock in
    ``on_start`` and ``on_stop`` (public hooks): Backtest() = load and validate the data;
    to on_start = parameter binding and Engine construction; indicators = the two SMAs;
    loop = the engine's bar loop with its Python ``next`` calls; results = Result building.
    Reference rows isolate the floor: the same decision in a bare Python loop over lists
    (no engine at all), the engine's loop calling a no-op Python function, and a bare
    callback reading engine Lines (``_peers.raw_callback``).
    """
    import bt_engine
    from bt_core import Backtest

    n = len(df)
    per_bar = 1e9 / n
    out: dict[str, dict[str, float]] = {}

    base = P.our_strategy()
    marks: dict[str, float] = {}

    class Timed(base):  # type: ignore[misc, valid-type]
        def on_start(self) -> None:
            marks["start0"] = time.perf_counter()
            super().on_start()
            marks["start1"] = time.perf_counter()

        def on_stop(self) -> None:
            marks["stop"] = time.perf_counter()

    best: dict[str, float] = {}

    def keep(key: str, v: float) -> None:
        best[key] = min(best.get(key, float("inf")), v)

    close = np.ascontiguousarray(df["Close"].to_numpy(dtype=np.float64))
    fast_arr, slow_arr = bt_engine.sma(close, P.FAST), bt_engine.sma(close, P.SLOW)
    fast_l, slow_l = fast_arr.tolist(), slow_arr.tolist()

    def bare_python_loop() -> int:
        f, s, pos, changes = fast_l, slow_l, 0, 0
        for i in range(P.SLOW, len(f)):
            if f[i - 1] < s[i - 1] and f[i] > s[i]:
                if pos == 0:
                    pos, changes = 1, changes + 1
            elif f[i - 1] > s[i - 1] and f[i] < s[i] and pos:
                pos, changes = 0, changes + 1
        return changes

    def noop(bar: Any) -> None:
        return None

    def never(ret: Any) -> list[Any]:
        raise AssertionError(f"unexpected return value {ret!r}")

    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        bt = Backtest(df, Timed, cash=P.CASH, commission=P.COMMISSION)
        t1 = time.perf_counter()
        bt.run()
        t2 = time.perf_counter()
        keep("py.backtest_init", t1 - t0)
        keep("py.to_on_start", marks["start0"] - t1)
        keep("py.indicators", marks["start1"] - marks["start0"])
        keep("py.loop", marks["stop"] - marks["start1"])
        keep("py.results", t2 - marks["stop"])
        keep("py.total", t2 - t0)

        gc.collect()
        t0 = time.perf_counter()
        bare_python_loop()
        keep("ref.bare_python_loop", time.perf_counter() - t0)

        eng = P.new_engine(df)
        gc.collect()
        t0 = time.perf_counter()
        eng.run_strategy(noop, eng.bar_view(), never, start=P.SLOW)
        keep("ref.engine_noop_callback", time.perf_counter() - t0)

        gc.collect()
        t0 = time.perf_counter()
        P.raw_callback(df)
        keep("ref.raw_callback_total", time.perf_counter() - t0)

        # Built-in and vectorized: the raw engine phases, then the bt-core wrapper's total.
        gc.collect()
        t0 = time.perf_counter()
        inputs = P.engine_inputs(df)
        t1 = time.perf_counter()
        eng = P.engine_from(inputs)
        t2 = time.perf_counter()
        eng.run_sma_cross(P.FAST, P.SLOW, P.SIZE)
        t3 = time.perf_counter()
        eng.equity_curve(), eng.exposure_curve(), eng.fills(), eng.trades(), eng.ledger()
        eng.orders()
        t4 = time.perf_counter()
        keep("eng.inputs", t1 - t0)
        keep("eng.construct", t2 - t1)
        keep("eng.run_sma_cross", t3 - t2)
        keep("eng.fetch_results", t4 - t3)

        eng = P.engine_from(inputs)
        t0 = time.perf_counter()
        entries, exits = P.cross_signals(bt_engine.sma(close, P.FAST), bt_engine.sma(close, P.SLOW))
        t1 = time.perf_counter()
        eng.run_signals(entries.reshape(-1, 1), exits.reshape(-1, 1), P.SIZE)
        t2 = time.perf_counter()
        keep("vec.signals", t1 - t0)
        keep("eng.run_signals", t2 - t1)

        gc.collect()
        t0 = time.perf_counter()
        bt = Backtest(df, "sma_cross", cash=P.CASH, commission=P.COMMISSION)
        t1 = time.perf_counter()
        bt.run(fast=P.FAST, slow=P.SLOW, size=P.SIZE)
        t2 = time.perf_counter()
        keep("builtin.backtest_init", t1 - t0)
        keep("builtin.run", t2 - t1)

    out["python"] = {
        "Backtest(df) load + validate": best["py.backtest_init"] * per_bar,
        "run() up to on_start (engine construction)": best["py.to_on_start"] * per_bar,
        "on_start: two SMAs (Rust)": best["py.indicators"] * per_bar,
        "bar loop: engine + Python next()": best["py.loop"] * per_bar,
        "Result building (DataFrames)": best["py.results"] * per_bar,
        "total (phases' own best)": best["py.total"] * per_bar,
    }
    out["python_reference"] = {
        "bare Python loop, same decision, lists, no engine": best["ref.bare_python_loop"] * per_bar,
        "engine loop calling a no-op Python next": best["ref.engine_noop_callback"] * per_bar,
        "engine loop + bare callback on Lines (whole run)": best["ref.raw_callback_total"]
        * per_bar,
    }
    out["native"] = {
        "engine inputs from the DataFrame (numpy)": best["eng.inputs"] * per_bar,
        "Engine(...) construction + validation": best["eng.construct"] * per_bar,
        "run_sma_cross (SMAs + loop, Rust)": best["eng.run_sma_cross"] * per_bar,
        "numpy signals from Rust SMAs": best["vec.signals"] * per_bar,
        "run_signals (loop, Rust)": best["eng.run_signals"] * per_bar,
        "engine result getters (curves, fills, trades, orders)": best["eng.fetch_results"]
        * per_bar,
        "Backtest(df) load + validate": best["builtin.backtest_init"] * per_bar,
        "Backtest.run('sma_cross') total": best["builtin.run"] * per_bar,
        "  of which outside the engine (Result building; by difference)": (
            best["builtin.run"] - best["eng.construct"] - best["eng.run_sma_cross"]
        )
        * per_bar,
    }
    return out


# ----- report -------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in (
        "pandas",
        "bt-engine",
        "bt-core",
        "backtesting",
        "backtrader",
        "vectorbt",
        "vectorbt-rust",
        "numba",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _git_rev() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "packages/engine-rs", "packages/bt-core"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (engine/bt-core modified in the work tree)" if dirty else "")


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:,.1f}M"
    if x >= 1e3:
        return f"{x / 1e3:,.0f}k"
    return f"{x:,.0f}"


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    env = report["environment"]
    console.print(
        f"[bold]SMA {P.FAST}/{P.SLOW} cross, 1 unit, long-only, commission {P.COMMISSION}, "
        f"next-open fills[/]  ·  best of {report['repeats']}  ·  "
        f"{env['cpus']} CPUs, load {env['load_before']} -> {env['load_after']}  ·  git {env['git']}"
    )
    console.print(", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    for size in report["sizes"]:
        n = size["n_bars"]
        res = size["runners"]
        ref_name = "builtin" if "builtin" in res else next(iter(res), None)
        ref = P.Outcome(**res[ref_name]["outcome"]) if ref_name else None
        t = Table(title=f"{n:,} bars", title_justify="left")
        for col, just in (
            ("engine", "left"),
            ("best s", "right"),
            ("bars/s", "right"),
            ("peak mem +MiB", "right"),
            ("trades", "right"),
            ("open", "right"),
            ("final equity", "right"),
            (f"agreement with {ref_name}", "left"),
        ):
            t.add_column(col, justify=just, no_wrap=col == "engine")  # type: ignore[arg-type]
        for r in P.RUNNERS:
            d = res.get(r.name)
            if d is None:
                skipped = size["skipped"].get(r.name)
                if skipped:
                    t.add_row(r.label, "-", "-", "-", "-", "-", "-", f"[dim]{skipped}[/]")
                continue
            o = P.Outcome(**d["outcome"])
            mem = d.get("memory", {})
            mem_s = f"{mem['delta_mib']:,.1f}" if "delta_mib" in mem else mem.get("error", "-")
            if ref is None or r.name == ref_name:
                agree = "reference"
            elif P.agree(o, ref):
                diff = abs(o.final_equity - ref.final_equity) / abs(ref.final_equity)
                agree = "same" if diff == 0 else f"same (equity rel diff {diff:.1e})"
            else:
                agree = "[red]DIFFERENT[/]"
            if not d["repeatable"]:
                agree += " [red](repeats differ)[/]"
            t.add_row(
                r.label,
                f"{d['best_s']:.4f}",
                fmt_rate(d["bars_per_s"]),
                mem_s,
                f"{o.trades:,}",
                f"{o.open_size:g}",
                f"{o.final_equity:,.6f}",
                agree,
            )
        console.print(t)

        peers = [r for r in P.RUNNERS if r.kind == "peer" and r.name in res]
        ours = [r for r in P.RUNNERS if r.kind in ("ours", "raw") and r.name in res]
        if peers and ours:
            rt = Table(
                title=f"{n:,} bars: speed of ours ÷ peer (bars/s ratio, >1 = ours faster)",
                title_justify="left",
            )
            rt.add_column("ours")
            for p in peers:
                rt.add_column(p.label, justify="right")
            for o_r in ours:
                rt.add_row(o_r.label, *(f"{size['ratios'][o_r.name][p.name]:,.1f}×" for p in peers))
            console.print(rt)

        bd = size.get("breakdown")
        if bd:
            bt_ = Table(
                title=f"{n:,} bars: where our time goes (ns per bar, each phase best of "
                f"{report['repeats']})",
                title_justify="left",
            )
            bt_.add_column("phase")
            bt_.add_column("ns/bar", justify="right")
            for section, rows in bd.items():
                bt_.add_row(f"[bold]{section}[/]", "")
                for k, v in rows.items():
                    bt_.add_row(f"  {k}", f"{v:,.1f}")
            console.print(bt_)

    tg = Table(title="targets (issue #2, section 7)", title_justify="left")
    for c in ("target", "size", "measured", "met"):
        tg.add_column(c)
    for row in report["targets"]:
        tg.add_row(
            row["target"],
            f"{row['n_bars']:,}",
            row["measured"],
            "[green]yes[/]" if row["met"] else "[red]no[/]",
        )
    console.print(tg)


def targets(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for size in sizes:
        res, n = size["runners"], size["n_bars"]
        if "py" in res:
            v = res["py"]["bars_per_s"]
            rows.append(
                {
                    "target": "Python event-driven >= 2,000,000 bars/s",
                    "n_bars": n,
                    "measured": f"{v:,.0f} bars/s",
                    "met": v >= TARGET_PY_BARS_S,
                }
            )
        if "py" in res and "backtesting" in res:
            v = size["ratios"]["py"]["backtesting"]
            rows.append(
                {
                    "target": "Python event-driven >= 10x backtesting.py",
                    "n_bars": n,
                    "measured": f"{v:,.1f}x",
                    "met": v >= TARGET_PY_VS_BACKTESTING,
                }
            )
        for name, what in (("vec", "vectorized"), ("builtin", "built-in Rust")):
            if name in res:
                v = res[name]["bars_per_s"]
                raw = {"vec": "raw_signals", "builtin": "raw_builtin"}[name]
                extra = f" (raw engine call: {res[raw]['bars_per_s']:,.0f})" if raw in res else ""
                rows.append(
                    {
                        "target": f"{what} >= 100,000,000 bars/s",
                        "n_bars": n,
                        "measured": f"{v:,.0f} bars/s{extra}",
                        "met": v >= TARGET_NATIVE_BARS_S,
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("100k,1M"),
        help="comma-separated bar counts (default 100k,1M)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per runner (best kept)")
    ap.add_argument(
        "--only",
        type=parse_names,
        default=None,
        help=f"runners to run (default all): {', '.join(P.RUNNERS_BY_NAME)}",
    )
    ap.add_argument("--skip", type=parse_names, default=[], help="runners to leave out")
    ap.add_argument(
        "--max-bars",
        type=parse_size,
        default=None,
        help="run every runner up to this size (default: backtrader stops at 100k)",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the ns/bar breakdown")
    ap.add_argument("--seed", type=int, default=42, help="data seed")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")

    if args.child_memory is not None:
        _child_memory(args.child_memory, args.sizes[0], args.seed)
        return 0

    wanted = [
        r
        for r in P.RUNNERS
        if (args.only is None or r.name in args.only) and r.name not in args.skip
    ]
    missing = {r.name: "not installed (uv sync --group bench)" for r in wanted if not r.available()}
    runners = [r for r in wanted if r.name not in missing]
    if not runners:
        ap.error("no runner left to run")

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    warm = P.make_data(WARMUP_BARS, args.seed)
    for r in runners:
        r.run(warm)  # imports, numba compilation, first-call caches: not part of the timing

    sizes: list[dict[str, Any]] = []
    for n in args.sizes:
        df = P.make_data(n, args.seed)
        limit = {r.name: (args.max_bars or r.default_max_bars) for r in runners}
        here = [r for r in runners if limit[r.name] is None or n <= limit[r.name]]
        skipped = dict(missing)
        skipped.update(
            {
                r.name: f"skipped above {limit[r.name]:,} bars (--max-bars)"
                for r in runners
                if r not in here
            }
        )
        print(f"timing {n:,} bars: {', '.join(r.name for r in here)} ...", file=sys.stderr)
        res = time_runners(here, df, args.repeats)
        ratios = {
            o.name: {
                p.name: res[o.name]["bars_per_s"] / res[p.name]["bars_per_s"]
                for p in here
                if p.kind == "peer"
            }
            for o in here
            if o.kind in ("ours", "raw")
        }
        entry: dict[str, Any] = {"n_bars": n, "runners": res, "ratios": ratios, "skipped": skipped}
        # Runners in `here` are installed, so an "ours" runner means bt-core is importable.
        if not args.no_breakdown and any(r.kind == "ours" for r in here):
            print(f"breakdown {n:,} bars ...", file=sys.stderr)
            entry["breakdown"] = breakdown(df, args.repeats)
        sizes.append(entry)

    if not args.no_memory:
        for entry in sizes:
            for name in entry["runners"]:
                print(f"memory {entry['n_bars']:,} bars: {name} ...", file=sys.stderr)
                entry["runners"][name]["memory"] = measure_memory(name, entry["n_bars"], args.seed)

    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "repeats": args.repeats,
        "seed": args.seed,
        "environment": {
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "platform": platform.platform(),
            "git": _git_rev(),
            "versions": _versions(),
        },
        "sizes": sizes,
        "targets": targets(sizes),
    }
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
