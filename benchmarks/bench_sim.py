"""Simulator benchmark: GET throughput, Resource Graph query latency, and memory, at 10k and 50k servers.

Each figure is printed beside its baseline measured in the same run: the same simulator serving a
1-server fleet (what the HTTP plumbing costs with no fleet behind it). The simulator runs in its own
process (`wsam-tui sim --size N --no-throttle`); the client is aiohttp (0.2 ms CPU per request,
research/sdk-integration.md §6.1) so that the figure measures the server, not the client.

    python benchmarks/bench_sim.py [--sizes 10000,50000] [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import ssl
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp
from simproc import start_sim, stop


def start_timed(size: int) -> tuple[subprocess.Popen, str, str, float]:
    t0 = time.monotonic()
    proc, base, ca = start_sim(size, "--no-throttle")
    return proc, base, ca, time.monotonic() - t0


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


async def measure(base: str, ca: str, seconds: float, concurrency: int) -> dict:
    ctx = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": "Bearer bench"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=concurrency), headers=headers) as s:
        async with s.get(f"{base}/subscriptions", params={"api-version": "2022-12-01"}) as r:
            subs = [x["subscriptionId"] for x in (await r.json())["value"]]
        ids: list[str] = []
        for sub in subs:
            async with s.get(f"{base}/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines",
                             params={"api-version": "2026-04-01"}) as r:
                ids += [v["id"] for v in (await r.json())["value"]]
        rng = random.Random(1)
        count = 0
        errors = 0
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal count, errors
            while time.monotonic() < deadline:
                async with s.get(f"{base}{rng.choice(ids)}", params={"api-version": "2026-04-01"}) as r:
                    await r.read()
                    count += 1
                    errors += r.status != 200

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        gets_per_s = count / (time.monotonic() - t0)

        from wsam_tui.arm.graph import QUERIES
        from wsam_tui.fleet.model import Source

        queries = {
            "inventory machines (first page of 1000)": next(q.query for q in QUERIES if q.source is Source.MACHINES),
            "extensions folded per machine (first page)": next(q.query for q in QUERIES if q.source is Source.EXTENSIONS),
            "count by type (summarize)": "resources | summarize n = count() by type | order by n desc",
        }
        latency: dict[str, float] = {}
        for name, query in queries.items():
            times = []
            for i in range(3):
                # a distinct comment defeats the simulator's per-query result cache: measure evaluation
                body = {"subscriptions": subs, "query": f"{query} // run {i} {time.time()}", "options": {"$top": 1000}}
                t = time.monotonic()
                async with s.post(f"{base}/providers/Microsoft.ResourceGraph/resources",
                                  params={"api-version": "2022-10-01"}, json=body) as r:
                    data = await r.json()
                    if r.status != 200:
                        raise RuntimeError(f"{name}: HTTP {r.status}: {json.dumps(data)[:300]}")
                times.append(time.monotonic() - t)
            latency[name] = statistics.median(times)
        return {"servers": len(ids), "gets_per_s": gets_per_s, "errors": errors, "graph_s": latency}


def run(size: int, seconds: float, concurrency: int) -> dict:
    proc, base, ca, start_s = start_timed(size)
    try:
        rss_loaded = rss_mb(proc.pid)
        result = asyncio.run(measure(base, ca, seconds, concurrency))
        result["rss_mb"] = rss_loaded
        result["start_s"] = start_s
        return result
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    print(f"machine: {os.cpu_count()} cores; client aiohttp, concurrency {args.concurrency}, {args.seconds:.0f} s per run")
    base = run(1, args.seconds, args.concurrency)
    print(f"\nbaseline (1 server): start {base['start_s']:.1f} s, RSS {base['rss_mb']:.0f} MB, "
          f"{base['gets_per_s']:.0f} GET/s")
    for name, t in base["graph_s"].items():
        print(f"  ARG {name}: {t * 1000:.0f} ms")
    for size in (int(s) for s in args.sizes.split(",")):
        r = run(size, args.seconds, args.concurrency)
        print(f"\n{size} servers ({r['servers']} VM ids sampled from first pages): start {r['start_s']:.1f} s")
        print(f"  memory: RSS {r['rss_mb']:.0f} MB (baseline {base['rss_mb']:.0f} MB; "
              f"{(r['rss_mb'] - base['rss_mb']) / size * 1024:.1f} KB per server)")
        print(f"  GET one VM: {r['gets_per_s']:.0f} GET/s, {r['errors']} errors "
              f"(ratio to baseline {r['gets_per_s'] / base['gets_per_s']:.2f})")
        for name, t in r["graph_s"].items():
            print(f"  ARG {name}: {t * 1000:.0f} ms (ratio to baseline {t / base['graph_s'][name]:.1f}x)")


if __name__ == "__main__":
    main()
