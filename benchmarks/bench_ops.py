"""Action engine benchmark: bulk Run Command and bulk extension install on N servers in one subscription,
with the simulator's ARM throttling on (writes 200 burst + 10/s, reads 250 burst + 25/s per subscription).

    python benchmarks/bench_ops.py [--size 2000] [--lro-seconds 3] [--actions run-command,extension]

Prints, per action: elapsed time beside the floor, lost targets (not ended) and duplicate submissions
(the same write accepted twice, by the simulator's request log). The floor: every target needs one write,
and ARM lets a subscription send W_burst at once then W_refill per second, so the last write cannot leave
before (N - W_burst) / W_refill seconds; it then runs for the operation's duration D. Every target also
needs at least one read (its result), bounded the same way by the read bucket. So

    floor = max((N - W_burst) / W_refill, (N - R_burst) / R_refill) + D

After the extension install, the rows of the succeeded targets are rebuilt two ways, and the ARM reads
each costs are counted in the simulator's request log: the old way (a depth read per server, ``fresh_view``,
on a sample of ``--rows-sample`` servers, 4 at a time as the console did) and the console's way now
(``action_effect`` from what the engine re-read, then ``record_effects`` over the cached rows, all targets).

The simulator runs in its own process (its CPU is not the engine's); the write bucket is full at the start
of each action (the benchmark waits for it to refill between actions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from simproc import stop  # noqa: E402

from tests.fleetbuilder import arc, scenario_fleet, vm  # noqa: E402
from wsam_tui.depth import action_effect, fresh_view, record_effects, store_effects  # noqa: E402
from wsam_tui.inventory import ConnectOptions, Inventory, connect  # noqa: E402
from wsam_tui.ops.audit import AuditLog  # noqa: E402
from wsam_tui.ops.engine import Engine, JobEvent  # noqa: E402
from wsam_tui.ops.journal import Journal  # noqa: E402
from wsam_tui.ops.plan import plan  # noqa: E402
from wsam_tui.store.cache import Store  # noqa: E402

W_BURST, W_REFILL = 200, 10.0
R_BURST, R_REFILL = 250, 25.0
ACTIONS = {"run-command": ("run-command", {"script": "$env:COMPUTERNAME"}),
           "extension": ("extension.install", {"extension": "ama"})}


def one_subscription_fleet(size: int) -> dict:
    fleet = scenario_fleet()
    fleet["resources"] = [vm(f"vm-{i:05d}") for i in range(size // 2)] + [arc(f"arc-{i:05d}") for i in range(size - size // 2)]
    fleet["simulation"] = {}
    return fleet


def start_sim(fleet_path: Path, log_path: Path, lro_seconds: float) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsam_tui.cli", "sim", "--fleet", str(fleet_path), "--lro-seconds", str(lro_seconds),
         "--request-log", str(log_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    found: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        key, _, value = line.strip().partition("=")
        if key in ("BASE_URL", "CA_BUNDLE"):
            found[key] = value
        if len(found) == 2:
            return proc, found["BASE_URL"], found["CA_BUNDLE"]
    raise RuntimeError(f"simulator did not start: {proc.stderr.read() if proc.stderr else ''}")


def accepted_writes(log_path: Path, since: int) -> tuple[dict[str, int], int, int]:
    """(accepted writes per path, 429 answers, lines read) from the request log, after line ``since``."""
    counts: dict[str, int] = {}
    throttled = 0
    lines = log_path.read_text(encoding="utf-8").splitlines()
    for line in lines[since:]:
        e = json.loads(line)
        if e["method"] not in ("PUT", "POST", "PATCH", "DELETE") or "/providers/microsoft.resourcegraph/" in e["path"].lower():
            continue
        if e["status"] == 429:
            throttled += 1
        elif 200 <= e["status"] < 300 and ("/runcommands/" in e["path"].lower() or "/extensions/" in e["path"].lower()):
            counts[e["path"].lower()] = counts.get(e["path"].lower(), 0) + 1
    return counts, throttled, len(lines)


def gets_since(log_path: Path, since: int) -> tuple[int, int]:
    """(ARM GETs after line ``since``, lines read)."""
    lines = log_path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines[since:] if json.loads(line)["method"] == "GET"), len(lines)


async def row_rereads(conn, inventory: Inventory, log_path: Path, events: list[JobEvent], job, sample: int) -> None:
    """The rows after the job's successes: a depth read per server (the old way) beside the effect (now)."""
    done = [e for e in events if e.state == "succeeded"]
    if not done:
        return
    old = done[:sample]
    slots = asyncio.Semaphore(4)  # ROW_REFRESHES

    async def depth(server_id: str) -> None:
        async with slots:
            await fresh_view(inventory, conn.transport, server_id)

    _, mark = gets_since(log_path, 0)
    started = time.monotonic()
    await asyncio.gather(*(depth(e.target_id) for e in old))
    old_s = time.monotonic() - started
    old_reads, mark = gets_since(log_path, mark)
    started = time.monotonic()
    effects = await asyncio.gather(*(action_effect(conn.transport, job.action, e.target_id, e.resource,
                                                   job.targets[e.target_id.lower()].call.resource_path) for e in done))
    records = await asyncio.to_thread(record_effects, inventory, [e for e in effects if e is not None])
    new_s = time.monotonic() - started
    new_reads, _ = gets_since(log_path, mark)
    started = time.monotonic()
    stored = await asyncio.to_thread(store_effects, inventory)
    store_s = time.monotonic() - started
    print(f"rows after success, depth read (before): {len(old)} servers, {old_reads} reads = "
          f"{old_reads / len(old):.1f} reads/target, {old_s:.1f} s = {old_s / len(old) * 1000:.0f} ms/target")
    print(f"rows after success, from the engine's re-read (now): {len(records)} servers, {new_reads} reads = "
          f"{new_reads / len(done):.2f} reads/target, {new_s:.2f} s = {new_s / len(done) * 1000:.1f} ms/target; "
          f"into the store {stored} servers in {store_s:.2f} s")


async def main(size: int, lro_seconds: float, which: list[str], rows_sample: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="wsam-bench-ops-"))
    fleet_path, log_path = work / "fleet.json", work / "requests.jsonl"
    fleet_path.write_text(json.dumps(one_subscription_fleet(size)), encoding="utf-8")
    proc, base, ca = start_sim(fleet_path, log_path, lro_seconds)
    try:
        conn = await connect(ConnectOptions(endpoint=base, ca_bundle=ca))
        store = Store(work / "cache")
        inventory = Inventory(store)
        started = time.monotonic()
        await inventory.refresh(conn)
        servers = inventory.load().servers
        print(f"{len(servers)} servers in one subscription, inventory read in {time.monotonic() - started:.1f} s; "
              f"simulator: ARM throttling on, operations last {lro_seconds:g} s")
        w_floor = max(0, size - W_BURST) / W_REFILL
        r_floor = max(0, size - R_BURST) / R_REFILL
        floor = max(w_floor, r_floor) + lro_seconds
        print(f"floor = max(({size} - {W_BURST}) / {W_REFILL:g}, ({size} - {R_BURST}) / {R_REFILL:g}) + {lro_seconds:g} "
              f"= max({w_floor:.1f}, {r_floor:.1f}) + {lro_seconds:g} = {floor:.1f} s")
        for i, key in enumerate(which):
            if i:
                await asyncio.sleep(W_BURST / W_REFILL + 1)  # let the write bucket refill: each action starts full
            action_id, params = ACTIONS[key]
            p = plan(action_id, params, servers)
            mark = len(log_path.read_text(encoding="utf-8").splitlines())
            events: list[JobEvent] = []
            engine = Engine(conn.transport, journal=Journal(work / "jobs"), audit=AuditLog(work / "audit.jsonl"),
                            on_event=events.append)
            started = time.monotonic()
            job = await engine.run(p)
            elapsed = time.monotonic() - started
            states: dict[str, int] = {}
            for t in job.targets.values():
                states[t.state] = states.get(t.state, 0) + 1
            lost = sum(n for s, n in states.items() if s not in ("succeeded", "failed", "cancelled"))
            counts, throttled, _ = accepted_writes(log_path, mark)
            duplicates = sum(n - 1 for n in counts.values() if n > 1)
            print(f"{key:12s} {len(p.targets)} targets: {elapsed:6.1f} s = {elapsed / floor:.2f}x the floor; "
                  f"{states}; lost {lost}; duplicates {duplicates}; 429s answered {throttled}; "
                  f"transport {conn.transport.stats}")
            conn.transport.stats.update(requests=0, retries=0, throttled=0, budget_waits=0.0)
            if action_id != "run-command":
                await row_rereads(conn, inventory, log_path, events, job, rows_sample)
        await conn.close()
        store.close()
    finally:
        stop(proc)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--lro-seconds", type=float, default=3.0)
    ap.add_argument("--actions", default="run-command,extension")
    ap.add_argument("--rows-sample", type=int, default=100, help="servers re-read the old way (depth) for comparison")
    a = ap.parse_args()
    asyncio.run(main(a.size, a.lro_seconds, [x.strip() for x in a.actions.split(",") if x.strip()], a.rows_sample))
