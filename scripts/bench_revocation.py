"""Revocation benchmarks (issue 5, "Speed"), on one machine with three Warden
replicas sharing one real PostgreSQL server:

1. Revocation latency: from the admin write's response (a disable through
   replica A) to the first refused call on replica B, under a steady call load
   on B and C; repeated many times (re-enabling in between).
2. list_changed fan-out: from the admin write's response to the
   `notifications/tools/list_changed` arriving on each of N live sessions
   (their GET streams) on replica B.

Run through scripts/bench-revocation.sh (builds release binaries, uses the
e2e venv). Environment: ROUNDS (default 100), SESSIONS (default 1000).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e" / "tests"))
from wardenkit import Postgres, Procs, RawMcp, Warden, new_secret_key, wait_until  # noqa: E402

ORG = "bench"
ROUNDS = int(os.environ.get("ROUNDS", "100"))
SESSIONS = int(os.environ.get("SESSIONS", "1000"))
LOAD_THREADS = int(os.environ.get("LOAD_THREADS", "2"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))  # nearest rank
    return ordered[rank - 1]


def summary(name: str, values_ms: list[float]) -> str:
    return (f"{name}: n={len(values_ms)} p50 {percentile(values_ms, 0.5):.1f} ms, "
            f"p90 {percentile(values_ms, 0.9):.1f} ms, p99 {percentile(values_ms, 0.99):.1f} ms, "
            f"max {max(values_ms):.1f} ms, mean {statistics.fmean(values_ms):.1f} ms")


def calls_ok(node: Warden, key: str) -> bool:
    client = RawMcp(node.mcp, key)
    client.initialize()
    return "result" in client.request("tools/call", {"name": "demo__echo", "arguments": {"text": "x"}})


def refused(reply: dict) -> bool:
    return ((reply.get("error") or {}).get("data") or {}).get("reason") == "server_disabled_by_org"


class CallLoad:
    """Threads calling the tool back to back on one replica, each recording
    when refusals arrive."""

    def __init__(self, node: Warden, key: str, threads: int) -> None:
        self.stop = threading.Event()
        self.refusals: list[float] = []
        self.lock = threading.Lock()
        self.calls = 0
        self.threads = [threading.Thread(target=self.run, args=(node, key), daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, node: Warden, key: str) -> None:
        client = RawMcp(node.mcp, key)
        client.initialize()
        while not self.stop.is_set():
            reply = client.request("tools/call", {"name": "demo__echo", "arguments": {"text": "x"}})
            arrived = time.perf_counter()
            with self.lock:
                self.calls += 1
                if refused(reply):
                    self.refusals.append(arrived)

    def first_refusal_after(self, t0: float, timeout: float = 5.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                later = [t for t in self.refusals if t >= t0]
            if later:
                return min(later)
            time.sleep(0.0005)
        raise TimeoutError("no refused call within 5 s of the disable")

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def revocation_latency(a: Warden, b: Warden, c: Warden, key: str) -> list[float]:
    on_b = CallLoad(b, key, LOAD_THREADS)
    on_c = CallLoad(c, key, 1)
    latencies = []
    try:
        for _ in range(ROUNDS):
            a.admin.set_grant_enabled(ORG, "demo", False)
            t0 = time.perf_counter()
            latencies.append((on_b.first_refusal_after(t0) - t0) * 1000)
            a.admin.set_grant_enabled(ORG, "demo", True, wait="propagated")
            with on_b.lock:
                on_b.refusals.clear()
    finally:
        on_b.close()
        on_c.close()
    print(f"steady load during the run: {on_b.calls + on_c.calls} calls on B and C", flush=True)
    return latencies


async def fan_out(a: Warden, b: Warden, key: str, trials: int = 4) -> list[float]:
    limits = httpx.Limits(max_connections=SESSIONS * 2 + 10, max_keepalive_connections=SESSIONS * 2 + 10)
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=None), limits=limits) as client:
        base = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json"}
        sem = asyncio.Semaphore(64)

        async def open_session() -> str:
            async with sem:
                init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
                r = await client.post(b.mcp, headers=base, content=json.dumps(init))
                sid = r.headers["mcp-session-id"]
                h = {**base, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
                await client.post(b.mcp, headers=h, content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                return sid

        sids = await asyncio.gather(*(open_session() for _ in range(SESSIONS)))
        for trial in range(trials):
            attached = 0
            all_attached = asyncio.Event()
            arrivals: list[float] = []

            async def listen(sid: str) -> None:
                nonlocal attached
                h = {**base, "Accept": "text/event-stream", "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
                async with client.stream("GET", b.mcp, headers=h) as resp:
                    assert resp.status_code == 200, resp.status_code
                    attached += 1
                    if attached == len(sids):
                        all_attached.set()
                    async for line in resp.aiter_lines():
                        if "notifications/tools/list_changed" in line:
                            arrivals.append(time.perf_counter())
                            return

            tasks = [asyncio.create_task(listen(sid)) for sid in sids]
            await asyncio.wait_for(all_attached.wait(), 60)
            await asyncio.sleep(0.5)
            enabled = trial % 2 == 1
            t0 = await asyncio.to_thread(lambda: (a.admin.set_grant_enabled(ORG, "demo", enabled), time.perf_counter())[1])
            done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            latencies += [(t - t0) * 1000 for t in arrivals]
            print(f"trial {trial}: {len(arrivals)}/{len(sids)} sessions notified", flush=True)
            await asyncio.sleep(0.5)
    return latencies


def main() -> None:
    bench_dir = Path(tempfile.mkdtemp(prefix="warden-bench-revocation-"))
    procs = Procs(bench_dir)
    postgres = Postgres()
    try:
        upstream_bin = os.environ["WARDEN_DEMO_UPSTREAM"]
        upstream = f"http://127.0.0.1:{procs.start([upstream_bin], 'demo-upstream').listening_port()}/mcp"
        token, secret = "wadm_" + os.urandom(12).hex(), new_secret_key()
        env = {"RUST_LOG": "warn"}
        a = Warden(procs, database_url=postgres.url, admin_token=token, secret_key=secret, extra_env=env, name="a")
        b = Warden(procs, database_url=postgres.url, admin_token=token, secret_key=secret, extra_env=env, name="b")
        c = Warden(procs, database_url=postgres.url, admin_token=token, secret_key=secret, extra_env=env, name="c")
        a.admin.create_org(ORG)
        a.admin.http_server("demo", upstream)
        a.admin.grant(ORG, "demo", "*")
        a.admin.set_grant_enabled(ORG, "demo", True, wait="propagated")
        key = a.admin.create_key(ORG, "bench")
        for node in (b, c):
            wait_until(lambda node=node: calls_ok(node, key), 10, what=f"replica {node.name} to serve the key")

        print(summary("revocation latency (write response -> first refused call on B)",
                      revocation_latency(a, b, c, key)), flush=True)
        fan = asyncio.run(fan_out(a, b, key))
        print(summary(f"list_changed to {SESSIONS} live sessions on B (write response -> arrival)", fan), flush=True)
    finally:
        procs.close()
        postgres.close()


if __name__ == "__main__":
    main()
