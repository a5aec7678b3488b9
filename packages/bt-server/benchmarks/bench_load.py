"""Load benchmark of bt-server on loopback: N concurrent clients each submit a run and poll
it until it ends, again and again; it stops by itself after --runs completed runs or
--seconds, whichever comes first, and stops the server it started.

    uv run --no-sync python packages/bt-server/benchmarks/bench_load.py --clients 200

Prints runs/s completed, the p50/p99 latency of GET /runs/{id}, and every response status;
anything but 2xx and the intended 429s (queue full, with Retry-After) is a failure and makes
the exit status 1. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
TERMINAL = {"succeeded", "failed", "cancelled", "interrupted"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, port: int, workers: int, queue: int) -> subprocess.Popen[bytes]:
    cfg = data / "bench.toml"
    cfg.write_text(
        f'port = {port}\ndata_dir = "{data / "server"}"\nworkers = {workers}\n'
        f"queue_size = {queue}\nrate_limit = 100000\nrate_burst = 100000\n"
    )
    log = open(data / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [str(BIN / "bt-server"), "serve", "--config", str(cfg), "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited:\n{(data / 'server.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("server did not start")


def make_token(data: Path) -> str:
    out = subprocess.run(
        [str(BIN / "bt-server"), "token", "create", "bench", "--data-dir", str(data / "server")],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


class Stats:
    def __init__(self) -> None:
        self.get_latency: list[float] = []
        self.post_latency: list[float] = []
        self.statuses: collections.Counter[str] = collections.Counter()
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self.completed = 0


async def client(
    c: httpx.AsyncClient, sample: str, stats: Stats, stop_at: float, target: int, poll: float
) -> None:
    rng = random.Random()
    while time.monotonic() < stop_at and stats.completed < target:
        fast = rng.randint(3, 15)
        body = {
            "strategy": "sma_cross",
            "params": {"fast": fast, "slow": fast + rng.randint(5, 30)},
            "data": {"dataset_id": sample},
        }
        t0 = time.perf_counter()
        try:
            r = await c.post("/runs", json=body)
        except httpx.HTTPError as e:
            stats.failures.append(f"POST /runs: {type(e).__name__}: {e}")
            continue
        stats.post_latency.append(time.perf_counter() - t0)
        stats.statuses[f"POST {r.status_code}"] += 1
        if r.status_code == 429:
            wait = min(float(r.headers.get("retry-after", "1")), 2.0)
            await asyncio.sleep(wait * rng.uniform(0.5, 1.0))
            continue
        if r.status_code != 202:
            stats.failures.append(f"POST /runs {r.status_code}: {r.text[:200]}")
            continue
        rid = r.json()["id"]
        while time.monotonic() < stop_at + 30:
            await asyncio.sleep(poll)
            t0 = time.perf_counter()
            try:
                g = await c.get(f"/runs/{rid}")
            except httpx.HTTPError as e:
                stats.failures.append(f"GET /runs/{{id}}: {type(e).__name__}: {e}")
                break
            stats.get_latency.append(time.perf_counter() - t0)
            stats.statuses[f"GET {g.status_code}"] += 1
            if g.status_code != 200:
                stats.failures.append(f"GET /runs/{{id}} {g.status_code}: {g.text[:200]}")
                break
            status = g.json()["status"]
            if status in TERMINAL:
                stats.outcomes[status] += 1
                if status == "succeeded":
                    stats.completed += 1
                else:
                    stats.failures.append(f"run {rid} {status}: {g.json()['error']}")
                break


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def main_async(args: argparse.Namespace, base: str, token: str) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=args.clients + 10, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits
    ) as c:
        sample = (await c.get("/datasets")).json()["items"][0]["id"]
        started = time.monotonic()
        stop_at = started + args.seconds
        await asyncio.gather(
            *(client(c, sample, stats, stop_at, args.runs, args.poll) for _ in range(args.clients))
        )
        stats.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--runs", type=int, default=2000, help="stop after this many completed runs")
    p.add_argument("--seconds", type=float, default=60.0, help="stop submitting after this")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queue", type=int, default=100)
    p.add_argument("--poll", type=float, default=0.25, help="seconds between polls")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        port = free_port()
        proc = start_server(data, port, args.workers, args.queue)
        try:
            token = make_token(data)
            stats = asyncio.run(main_async(args, f"http://127.0.0.1:{port}", token))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    elapsed = stats.elapsed  # type: ignore[attr-defined]
    result = {
        "clients": args.clients,
        "workers": args.workers,
        "queue_size": args.queue,
        "completed_runs": stats.completed,
        "seconds": round(elapsed, 2),
        "runs_per_s": round(stats.completed / elapsed, 2),
        "get_run_p50_ms": round(pct(stats.get_latency, 0.50) * 1000, 2),
        "get_run_p99_ms": round(pct(stats.get_latency, 0.99) * 1000, 2),
        "post_run_p50_ms": round(pct(stats.post_latency, 0.50) * 1000, 2),
        "post_run_p99_ms": round(pct(stats.post_latency, 0.99) * 1000, 2),
        "gets": len(stats.get_latency),
        "statuses": dict(sorted(stats.statuses.items())),
        "outcomes": dict(stats.outcomes),
        "failures": len(stats.failures),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>16}: {v}")
    for f in stats.failures[:10]:
        print("failure:", f, file=sys.stderr)
    sys.exit(1 if stats.failures else 0)


if __name__ == "__main__":
    main()
