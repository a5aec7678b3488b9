"""Parameter-sweep benchmark: 100 SMA-cross parameter sets x 1M bars, every way we run a
sweep, and vectorbt's sweep (parameter sets as columns) on the same strategy and data.

    uv run --group bench python benchmarks/bench_optimize.py                 # 1M bars, 100 sets
    uv run --group bench python benchmarks/bench_optimize.py --bars 200k --only seq,process,rust
    uv run --group bench python benchmarks/bench_optimize.py --sets 400 --only seq,process

Runners (each in a fresh subprocess, one timed sweep after a warm-up on 2,000 bars):
  seq       Backtest.optimize(..., n_jobs=1): one run after another, full stats per set
  process   backend="process", n_jobs=2 (forked workers inherit the data handle)
  thread    backend="thread", n_jobs=2
  rust      backend="rust", n_jobs=2: the engine's batch sweep + full stats per set
  kernel    bt_engine.sweep_sma_cross alone (final equity per set: the batch kernel)
  ray       backend="ray", n_jobs=2 on a local Ray (started before the timing)
  vectorbt  vectorbt Portfolio.from_signals with the 100 sets as columns (numba), final values

Every runner ranks by total return (the one statistic vectorbt computes the same way), and
the script checks that all found the same best parameters and the same equity. Each runner
runs twice: a timed pass, and a memory pass that samples the peak, during the sweep, of the
proportional set size (PSS, shared pages counted once) of the runner's process and all its
descendants (workers, Ray's processes), minus the same before the sweep, every 20 ms from
/proc (Linux). The sampling is not free (it walks page tables), so no time comes from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _peers  # noqa: E402

FAST = list(range(5, 51, 5))
SLOW = list(range(60, 241, 20))


def set_grid(n_sets: int) -> None:
    """``n_sets`` (a multiple of 10) parameter sets: the 10 fast windows times as many slow
    windows from 60 in steps of 20 (100 sets: slow 60..240)."""
    if n_sets <= 0 or n_sets % len(FAST):
        raise SystemExit(f"--sets must be a positive multiple of {len(FAST)}, got {n_sets}")
    SLOW[:] = list(range(60, 60 + 20 * (n_sets // len(FAST)), 20))


RUNNERS = ("seq", "process", "thread", "rust", "kernel", "ray", "vectorbt")


def parse_bars(text: str) -> int:
    t = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


# ----- memory -----------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    out = [pid]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                for c in f.read().split():
                    out.extend(_descendants(int(c)))
    except OSError:
        pass
    return out


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss_of(pid: int) -> int:
    return sum(_pss(p) for p in _descendants(pid))


class Marked:
    """Tells the parent (which samples this process tree's memory from outside, so that the
    sampling costs the runner nothing) when the timed sweep starts and stops."""

    def __enter__(self) -> Marked:
        print("@START", flush=True)
        time.sleep(0.2)  # the parent takes its baseline
        return self

    def __exit__(self, *exc: Any) -> None:
        print("@STOP", flush=True)
        time.sleep(0.2)


# ----- the runners (in the child process) ------------------------------------------------------


def _space() -> dict[str, Any]:
    return {"fast": FAST, "slow": SLOW, "size": [1.0]}


def _ours(name: str, md: Any) -> tuple[Any, dict[str, Any]]:
    from bt_core import Backtest

    bt = Backtest(md, "sma_cross", cash=_peers.CASH, commission=_peers.COMMISSION)
    kw: dict[str, Any] = {
        "seq": {"n_jobs": 1},
        "process": {"backend": "process", "n_jobs": 2},
        "thread": {"backend": "thread", "n_jobs": 2},
        "rust": {"backend": "rust", "n_jobs": 2},
        "ray": {"backend": "ray", "n_jobs": 2},
    }[name]

    def run() -> dict[str, Any]:
        res = bt.optimize(_space(), maximize="total_return", progress=False, **kw)
        return {
            "best": res.best_params,
            "n_rows": res.n_trials,
            "failed": res.n_failed,
            "_res": res,
        }

    return bt, run  # type: ignore[return-value]


def child(name: str, n_bars: int) -> dict[str, Any]:
    import bt_engine
    from bt_core import Backtest, load_data

    df = _peers.make_data(n_bars)
    small = _peers.make_data(2_000)
    out: dict[str, Any] = {"runner": name, "bars": n_bars, "sets": len(FAST) * len(SLOW)}
    if name == "ray":
        from bt_core.optimize.backends import ray_init

        ray_init(2)
    if name == "vectorbt":
        import vectorbt as vbt  # noqa: F401

        run_vbt(small)
        with Marked():
            t0 = time.perf_counter()
            best, final, curve = run_vbt(df)
            out["seconds"] = time.perf_counter() - t0
        out.update(best=best, best_final=final, best_hash=_hash(curve))
        return out
    md = load_data(df)
    out["data_mb"] = (md.ts.nbytes + sum(v.nbytes for v in md.fields.values())) / 2**20
    if name == "kernel":
        cfg = {"cash": _peers.CASH, "commission": _peers.COMMISSION}
        fast = [f for f in FAST for _ in SLOW]
        slow = [s for _ in FAST for s in SLOW]
        finals: dict[int, float] = {}

        def keep(i: int, r: Any) -> None:
            finals[i] = r.final_equity

        smd = load_data(small)
        bt_engine.sweep_sma_cross(smd.handle, cfg, fast, slow, [1.0] * len(fast), keep, threads=2)
        finals.clear()
        with Marked():
            t0 = time.perf_counter()
            # Final equity only: the runs keep their exposure figures, not the curves.
            windows = bt_engine.sweep_sma_cross(
                md.handle,
                cfg,
                fast,
                slow,
                [1.0] * len(fast),
                keep,
                threads=2,
                exposure_curves=False,
            )
            out["seconds"] = time.perf_counter() - t0
        i = max(finals, key=lambda k: (finals[k], -k))
        bt = Backtest(md, "sma_cross", cash=_peers.CASH, commission=_peers.COMMISSION)
        eq = bt.run(fast=fast[i], slow=slow[i], size=1.0).equity.to_numpy()
        out.update(
            best={"fast": fast[i], "slow": slow[i], "size": 1.0},
            best_final=finals[i],
            best_hash=_hash(eq),
            windows_computed=windows,
        )
        return out
    _, warm = _ours(name, load_data(small))
    warm()
    _, run = _ours(name, md)
    with Marked():
        t0 = time.perf_counter()
        r = run()
        out["seconds"] = time.perf_counter() - t0
    res = r.pop("_res")
    best = res.best_result()
    out.update(
        r,
        best_final=best.final_equity,
        best_hash=_hash(best.equity.to_numpy()),
    )
    return out


def _hash(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()[:12]


def run_vbt(df: Any) -> tuple[dict[str, Any], float, np.ndarray]:
    """vectorbt's sweep: the 100 sets as columns of one from_signals call (next-open fills
    as in _peers: signals shifted one bar, priced at the open)."""
    import pandas as pd
    import vectorbt as vbt

    close = df["Close"]
    ma = {w: close.vbt.rolling_mean(w).to_numpy() for w in sorted(set(FAST) | set(SLOW))}
    cols, ent, ex = [], [], []
    for f in FAST:
        for s in SLOW:
            e, x = _peers.cross_signals(ma[f], ma[s])
            en, xn = np.zeros_like(e), np.zeros_like(x)
            en[1:], xn[1:] = e[:-1], x[:-1]
            cols.append((f, s))
            ent.append(en)
            ex.append(xn)
    idx = pd.MultiIndex.from_tuples(cols, names=["fast", "slow"])
    entries = pd.DataFrame(np.column_stack(ent), index=df.index, columns=idx)
    exits = pd.DataFrame(np.column_stack(ex), index=df.index, columns=idx)
    del ent, ex
    pf = vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=df["Open"],
        size=_peers.SIZE,
        size_type="amount",
        fees=_peers.COMMISSION,
        init_cash=_peers.CASH,
        direction="longonly",
        accumulate=False,
        freq="1min",
    )
    final = pf.final_value()
    tr = final / _peers.CASH - 1.0
    order = np.lexsort((np.arange(len(tr)), -tr.to_numpy()))
    k = int(order[0])
    f, s = cols[k]
    curve = pf.value().iloc[:, k].to_numpy()
    return {"fast": f, "slow": s, "size": 1.0}, float(final.iloc[k]), curve


# ----- the parent ---------------------------------------------------------------------------


def run_child(
    name: str, n: int, env: dict[str, str], sample: bool = True
) -> tuple[int, list[str], str, int]:
    """Run one runner in a subprocess; with ``sample``, sample its process tree's PSS every
    20 ms: the peak between its @START and @STOP markers minus the value at @START (0
    without). Reading smaps_rollup walks each process's page tables: at 50 Hz over a pool's
    three processes that took a large share of a core from the runner, so the timed pass
    runs without sampling and the memory pass is a second run."""
    p = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--bars",
            str(n),
            "--sets",
            str(len(FAST) * len(SLOW)),
            "--child",
            name,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    state = {"on": False, "base": 0, "peak": 0}
    done = threading.Event()

    def sampler() -> None:
        while not done.is_set():
            if state["on"]:  # only ever set when sampling
                state["peak"] = max(state["peak"], tree_pss_of(p.pid))
            done.wait(0.02)

    t = threading.Thread(target=sampler, daemon=True)
    t.start()
    lines: list[str] = []
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("@START") and sample:
            state["base"] = tree_pss_of(p.pid)
            state["peak"] = state["base"]
            state["on"] = True
        elif line.startswith("@STOP") and sample:
            state["peak"] = max(state["peak"], tree_pss_of(p.pid))
            state["on"] = False
        elif line.startswith("{"):
            lines.append(line)
    err = p.stderr.read() if p.stderr else ""
    p.wait()
    done.set()
    t.join()
    return p.returncode, lines, err, state["peak"] - state["base"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bars", default="1M")
    ap.add_argument("--only", default=",".join(RUNNERS))
    ap.add_argument("--sets", type=int, default=100, help="parameter sets (a multiple of 10)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = parse_bars(args.bars)
    set_grid(args.sets)
    if args.child:
        print(json.dumps(child(args.child, n), default=float))
        return
    results: dict[str, dict[str, Any]] = {}
    env = dict(os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    loads: list[float] = []
    for name in args.only.split(","):
        loads.append(os.getloadavg()[0])
        rc, lines, err, _ = run_child(name, n, env, sample=False)
        if rc == 0 and lines:
            # The memory pass: the same sweep again, sampled (its time is kept, not shown).
            timed = json.loads(lines[-1])
            rc, lines, err, peak = run_child(name, n, env, sample=True)
        loads.append(os.getloadavg()[0])
        if rc != 0 or not lines:
            tail = err.strip().splitlines()[-3:]
            print(f"{name}: skipped ({' | '.join(tail)})")
            continue
        results[name] = timed
        r = results[name]
        r["peak_mb"] = peak / 2**20
        r["seconds_sampled"] = json.loads(lines[-1])["seconds"]
        r["load"] = loads[-2:]
        print(
            f"{name:9s} {r['seconds']:8.2f} s  peak +{r['peak_mb']:7.1f} MiB  best {r['best']}"
            f"  (load {loads[-2]:.1f} -> {loads[-1]:.1f})",
            flush=True,
        )
    if not results:
        return
    sets = len(FAST) * len(SLOW)
    data_mb = max(r.get("data_mb", 0.0) for r in results.values())
    print(
        f"\n{sets} parameter sets x {n:,} bars; data {data_mb:.1f} MiB; {os.cpu_count()} cores, "
        f"1-minute load average {min(loads):.1f}-{max(loads):.1f} during the run"
    )
    print(
        f"{'runner':10s} {'seconds':>8s} {'sets/s':>8s} {'M bar-evals/s':>14s} {'peak +MiB':>10s}"
    )
    for name, r in results.items():
        print(
            f"{name:10s} {r['seconds']:8.2f} {sets / r['seconds']:8.1f} "
            f"{sets * n / r['seconds'] / 1e6:14.1f} {r['peak_mb']:10.1f}"
        )

    def ratio(a: str, b: str) -> str:
        if a in results and b in results:
            return f"{results[b]['seconds'] / results[a]['seconds']:.2f}x"
        return "n/a"

    print("\nratios (speed-up of the first over the second):")
    for a, b in [
        ("process", "seq"),
        ("thread", "seq"),
        ("rust", "seq"),
        ("ray", "seq"),
        ("ray", "process"),
        ("kernel", "vectorbt"),
        ("rust", "vectorbt"),
        ("kernel", "seq"),
    ]:
        print(f"  {a} / {b}: {ratio(a, b)}")
    bests = {json.dumps(r["best"], sort_keys=True) for r in results.values()}
    hashes = {r["best_hash"] for k, r in results.items() if k != "vectorbt"}
    finals = [r["best_final"] for r in results.values()]
    rel = (max(finals) - min(finals)) / max(finals)
    print(
        f"\nagreement: best parameters {'identical' if len(bests) == 1 else bests}; "
        f"our best equity curves {'bit-identical' if len(hashes) == 1 else hashes}; "
        f"best final equity spread (vectorbt included) {rel:.2e} relative"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
