"""Bulk: 500 servers under ARM-style write throttling and injected faults; every target is accounted for, none doubled."""

from __future__ import annotations

import time

from tests.ops_support import accepted_writes_by_path, bulk_fleet, connection, make_engine, servers_of
from wsam_tui.arm import transport
from wsam_tui.ops.plan import plan

# ARM's buckets scaled up so the test runs in seconds: the same shape (a burst, then a steady refill).
WRITES, READS = (60.0, 120.0), (300.0, 300.0)


async def test_bulk_run_command_on_500_servers_under_throttling_and_faults(make_sim, tmp_path, monkeypatch):
    monkeypatch.setitem(transport.BUDGETS, "reads", READS)
    monkeypatch.setitem(transport.BUDGETS, "writes", WRITES)
    running = make_sim(bulk_fleet(500, disconnected=10), lro_seconds=0.3, throttle=True, graph_quota=False,
                       faults="429:0.02,500:0.02,503:0.02,reset:0.005", seed=7)
    running.sim.throttle.limits.update(writes=WRITES, reads=READS)
    conn = await connection(running)
    try:
        servers = await servers_of(conn, tmp_path)
        assert len(servers) == 500
        p = plan("run-command", {"script": "$env:COMPUTERNAME"}, list(servers.values()))
        assert len(p.targets) == 490 and {s.reason for s in p.skipped} == {
            "Arc agent is Disconnected: it must be Connected to run a command"}
        engine = make_engine(conn, tmp_path, write_budget=WRITES)
        started = time.monotonic()
        job = await engine.run(p)
        elapsed = time.monotonic() - started
    finally:
        await conn.close()
    states = [t.state for t in job.targets.values()]
    failed = [t for t in job.targets.values() if t.state == "failed"]
    print(f"\n500 servers: {states.count('succeeded')} succeeded, {len(failed)} failed, 10 skipped in {elapsed:.1f} s; "
          f"faults injected {running.sim.faults.injected}; 429s seen by the transport {conn.transport.stats['throttled']}")
    assert len(states) == 490 and set(states) <= {"succeeded", "failed"}, "every target ended"
    assert all(t.code and t.message for t in failed), "a failure says why"
    assert sum(running.sim.faults.injected.values()) > 20, "faults were injected"
    counts = accepted_writes_by_path(running)
    assert [p for p, n in counts.items() if n > 1] == [], "no Run Command accepted twice"
    assert len(counts) == states.count("succeeded") + sum(1 for t in failed if t.output), "one accepted PUT per run"
    assert not job.unfinished
