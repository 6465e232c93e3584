"""What the durable simulator state (sim/durable.py) costs on the demo fleet: opening it fresh, saving one
mutating request, and opening it again with those changes to replay.

    python benchmarks/bench_sim_durable.py [--puts 100]

An in-process simulator on the bundled demo fleet (320 servers), state in a temp dir, throttling off.
Each PUT of the Azure Monitor agent goes over HTTPS; "save" is the time ``DurableState.flush`` takes for
that request (the JSON line, its write and the fsync), measured inside the simulator. Figures printed,
nothing asserted.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from wsam_tui.sim.run import create_durable_simulator, demo_fleet, demo_fleet_id, start_in_thread

AMA = {"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorWindowsAgent", "typeHandlerVersion": "1.22"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--puts", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wsam-bench-durable-"))
    started = time.perf_counter()
    sim = create_durable_simulator(root / "arm", demo_fleet, fleet_id=demo_fleet_id(), lro_seconds=600,
                                   throttle=False, graph_quota=False)
    print(f"open, fresh (fleet loaded and rebased, files written): {time.perf_counter() - started:.3f} s")
    durable, saves, sizes = sim.durable, [], []
    flush = durable.flush

    def timed(after_write=None) -> int:
        t = time.perf_counter()
        n = flush(after_write)
        if n:
            saves.append(time.perf_counter() - t)
            sizes.append(n)
        return n

    durable.flush = timed
    running = start_in_thread(sim, ca_dir=root / "ca")
    machines = [m["id"] for m in sim.state.all_machines()][: args.puts]
    context = ssl.create_default_context(cafile=str(running.ca_path))
    accepted = 0
    with httpx.Client(base_url=running.base_url, verify=context, headers={"Authorization": "Bearer bench"},
                      params={"api-version": "2024-07-01"}) as client:
        for machine in machines:
            reply = client.put(f"{machine}/extensions/AzureMonitorWindowsAgent",
                               json={"location": "westeurope", "properties": AMA})
            accepted += reply.status_code < 300
    running.stop()
    durable.close()
    saves_ms = sorted(s * 1000 for s in saves)
    print(f"PUTs: {len(machines)}, accepted {accepted} (the others refused: a stopped VM, a disconnected machine)")
    print(f"save per mutating request: median {statistics.median(saves_ms):.2f} ms, "
          f"p90 {saves_ms[int(len(saves_ms) * 0.9)]:.2f} ms, max {saves_ms[-1]:.2f} ms; "
          f"line median {statistics.median(sizes):,.0f} bytes")
    started = time.perf_counter()
    again = create_durable_simulator(root / "arm", demo_fleet, fleet_id=demo_fleet_id(), lro_seconds=600)
    print(f"open again, {len(saves)} lines replayed: {time.perf_counter() - started:.3f} s "
          f"({len(again.state.operations)} operations in flight)")
    again.durable.close()


if __name__ == "__main__":
    main()
