"""Details pane benchmark: how long ``cached_view`` takes for one server of a large subscription (a keypress),
the first time (the subscription is read from the store) and then (reused until the next refresh),
beside ``Inventory.load(evidence=True)`` for the whole fleet; and one ``fresh_view`` through ARM.

    python benchmarks/bench_depth.py [--size 10000] [--views 200]

The fleet is generated in one subscription, served by the simulator in a thread (throttling off), and
refreshed into a temporary store. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wsam_tui.depth import cached_view, fresh_view  # noqa: E402
from wsam_tui.inventory import ConnectOptions, Inventory, connect  # noqa: E402
from wsam_tui.sim.fleetgen import generate_fleet  # noqa: E402
from wsam_tui.sim.run import create_simulator, start_in_thread  # noqa: E402
from wsam_tui.store.cache import Store  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(size: int, views: int) -> None:
    fleet = generate_fleet(size=size, seed=7, subscriptions=1, tenants=1)
    machine_types = ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")
    ids = [r["id"] for r in fleet["resources"] if r["type"].lower() in machine_types]
    running = start_in_thread(create_simulator(fleet, throttle=False, graph_quota=False), ca_dir=tempfile.mkdtemp())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inventory = Inventory(Store(Path(tmp) / "store"))
            conn = await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))
            try:
                t0 = time.perf_counter()
                report = await inventory.refresh(conn)
                print(f"{len(ids)} servers in one subscription; refresh {time.perf_counter() - t0:.1f} s, "
                      f"failures {report.failures}")
                before = rss_mb()
                t0 = time.perf_counter()
                inventory.load(evidence=True)
                print(f"Inventory.load(evidence=True), whole fleet: {time.perf_counter() - t0:.3f} s")

                rnd = random.Random(1)
                t0 = time.perf_counter()
                first = cached_view(inventory, rnd.choice(ids))
                cold = time.perf_counter() - t0
                assert first is not None
                times = []
                for server_id in rnd.sample(ids, min(views, len(ids))):
                    t0 = time.perf_counter()
                    cached_view(inventory, server_id)
                    times.append(time.perf_counter() - t0)
                times.sort()
                print(f"cached_view: first {cold * 1000:.0f} ms (reads the subscription from the store); then "
                      f"median {statistics.median(times) * 1000:.2f} ms, p95 {times[int(len(times) * 0.95)] * 1000:.2f} ms, "
                      f"max {times[-1] * 1000:.2f} ms over {len(times)} servers")
                print(f"peak RSS {rss_mb():.0f} MB (before the views: {before:.0f} MB; the simulator's fleet and "
                      f"the whole-fleet load are in this process too)")
                # The index's own memory: a second inventory on the same store indexes the subscription again.
                again = Inventory(inventory.store)
                tracemalloc.start()
                cached_view(again, ids[0])
                held, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                print(f"indexing the subscription: peak {peak / 1e6:.0f} MB allocated, {held / 1e6:.0f} MB held after")

                t0 = time.perf_counter()
                fresh = await fresh_view(inventory, conn.transport, ids[0])
                print(f"fresh_view (about a dozen ARM reads on loopback, no latency): {(time.perf_counter() - t0) * 1000:.0f} ms, "
                      f"errors {dict(fresh.errors)}")
            finally:
                await conn.close()
                inventory.store.close()
    finally:
        running.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--views", type=int, default=200)
    args = ap.parse_args()
    asyncio.run(run(args.size, args.views))


if __name__ == "__main__":
    main()
