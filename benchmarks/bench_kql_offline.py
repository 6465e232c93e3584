"""Offline `:kql` benchmark: time to answer typical queries from the cache at fleet sizes.

    python benchmarks/bench_kql_offline.py [--sizes 10000,50000]

The cache is filled without a network: the simulator's in-memory state (wsam_tui/sim/state.py) gives the
Resource Graph rows, the inventory's own queries (arm/graph.py QUERIES) are run over them with the KQL
engine, and the results are stored per subscription and source exactly as ``Inventory.refresh`` stores
them. Each query is then answered by ``run_offline`` (which rebuilds only the tables the query names).
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wsam_tui import kql  # noqa: E402
from wsam_tui.arm.graph import QUERIES, unflatten_machine  # noqa: E402
from wsam_tui.fleet.model import Source  # noqa: E402
from wsam_tui.inventory import subscription_of  # noqa: E402
from wsam_tui.kqlquery import run_offline  # noqa: E402
from wsam_tui.sim.fleetgen import generate_fleet  # noqa: E402
from wsam_tui.sim.state import ARG_TABLE_NAMES, SimState  # noqa: E402
from wsam_tui.store.cache import Store  # noqa: E402

QUERIES_TO_TIME = [
    "resources | where type =~ 'microsoft.hybridcompute/machines' | summarize count() by location",
    "resources | where type endswith '/extensions' | summarize count() by name | order by count_ desc",
    "resources | where type =~ 'microsoft.compute/virtualmachines' | project name, resourceGroup, "
    "power = tostring(properties.extended.instanceView.powerState.code) | take 1000",
    "guestconfigurationresources | summarize count() by tostring(properties.complianceStatus)",
    "patchassessmentresources | where toint(properties.availablePatchCountByClassification.critical) > 0 | count",
]


def fill(store: Store, size: int) -> None:
    fleet = generate_fleet(size=size, seed=3)
    state = SimState(fleet)
    tables = {name: (lambda n=name: state.arg_rows(n, None)) for name in ARG_TABLE_NAMES}
    tenant_of = {s["subscriptionId"].lower(): s.get("tenantId", "") for s in fleet["subscriptions"]}
    store.put_meta("subscriptions", [{k: s.get(k) for k in ("subscriptionId", "displayName", "tenantId", "state")}
                                     for s in fleet["subscriptions"]])
    for q in QUERIES:
        by_sub: dict[str, list[dict]] = {s: [] for s in tenant_of}
        for row in kql.run(q.query, tables).rows:
            row = unflatten_machine(row) if q.source is Source.MACHINES else row
            by_sub.setdefault(subscription_of(row), []).append(row)
        for sub, rows in by_sub.items():
            store.put_rows(sub, q.source.value, rows, tenant=tenant_of.get(sub, ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "store")
            started = time.perf_counter()
            fill(store, size)
            print(f"{size:,} servers: cache filled in {time.perf_counter() - started:.1f} s")
            for query in QUERIES_TO_TIME:
                started = time.perf_counter()
                answer = run_offline(store, query)
                took = time.perf_counter() - started
                print(f"  {took * 1000:8.0f} ms  {len(answer.rows):>5} rows  {query[:90]}")
            store.close()


if __name__ == "__main__":
    main()
