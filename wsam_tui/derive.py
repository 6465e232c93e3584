"""`python -m wsam_tui.derive`: the table's snapshot derived from the store, in a process of its own.

Deriving reads every raw document of the store (at 50,000 servers, gigabytes of small objects pass
through); in the console's process that leaves the heap fragmented at several times the size of what is
kept, and the CPU-bound work competes with drawing. This child does it and writes the compact result
(a pickle of ``inventory.Snapshot``) to stdout; its memory goes when it exits. Only the console reads
that pipe, from the child it started itself.

The work is split by subscription over one process per CPU (up to ``MAX_SHARES``): each reads the store
for its share and pickles its servers to this one, which merges them. A fleet of one subscription, or
a machine of one CPU, derives in this process alone.

    argv[1]: JSON {"store": dir, "subscriptions": [...], "required_tags": [...], "stale_after_days": n,
                   optional "now": ISO time, "part": [k, n]}
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime

from .inventory import Inventory, Snapshot
from .store.cache import Store

MAX_SHARES = 4
SMALL_FLEET = 2000  # servers: below this, starting more processes costs more than it saves


def derive(request: dict, part: tuple[int, int]) -> Snapshot:
    store = Store(request["store"])
    try:
        return Inventory(store, required_tags=tuple(request["required_tags"]),
                         stale_after_days=int(request["stale_after_days"])).load(
            tuple(request["subscriptions"]), now=datetime.fromisoformat(request["now"]), part=part)
    finally:
        store.close()


def shares_for(request: dict) -> int:
    """How many processes to derive in: one per CPU this process may use, when the fleet is big enough."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cpus <= 1:
        return 1
    store = Store(request["store"])
    try:
        servers = sum(m.count for m in store.manifests() if m.source == "machines")
    finally:
        store.close()
    return 1 if servers < SMALL_FLEET else min(cpus, MAX_SHARES)


def derive_in_shares(request: dict, n: int) -> Snapshot:
    """Shares 1..n-1 in child processes, share 0 here, merged in the order a single process gives."""
    children = [subprocess.Popen([sys.executable, "-m", "wsam_tui.derive", json.dumps({**request, "part": [k, n]})],
                                 stdout=subprocess.PIPE) for k in range(1, n)]
    mine = derive(request, (0, n))
    servers = list(mine.servers)
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a deriving process failed (exit code {child.returncode})")
        theirs = pickle.loads(out)
        servers.extend(theirs.servers)
        mine.notices.extend(n for n in theirs.notices if n not in mine.notices)  # e.g. rows that cannot be read
    servers.sort(key=lambda s: (s.name.lower(), s.id.lower()))
    mine.servers = servers
    return mine


def main() -> int:
    request = json.loads(sys.argv[1])
    request.setdefault("now", datetime.now(UTC).isoformat())  # one clock for every share
    if "part" in request:
        k, n = request["part"]
        snapshot = derive(request, (int(k), int(n)))
    else:
        n = shares_for(request)
        snapshot = derive(request, (0, 1)) if n == 1 else derive_in_shares(request, n)
    sys.stdout.buffer.write(pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.flush()
    os._exit(0)  # freeing the records one by one would only delay the parent


if __name__ == "__main__":
    sys.exit(main())
