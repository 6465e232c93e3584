"""`python -m wsam_tui.derive`: the table's snapshot derived from the store, in a process of its own.

Deriving reads every raw document of the store (at 50,000 servers, gigabytes of small objects pass
through); in the console's process that leaves the heap fragmented at several times the size of what is
kept, and the CPU-bound work competes with drawing. This child does it and writes the compact result
(a pickle of ``inventory.Snapshot``) to stdout; its memory goes when it exits. Only the console reads
that pipe, from the child it started itself.

    argv[1]: JSON {"store": dir, "subscriptions": [...], "required_tags": [...], "stale_after_days": n}
"""

from __future__ import annotations

import json
import os
import pickle
import sys

from .inventory import Inventory
from .store.cache import Store


def main() -> int:
    request = json.loads(sys.argv[1])
    store = Store(request["store"])
    try:
        snapshot = Inventory(store, required_tags=tuple(request["required_tags"]),
                             stale_after_days=int(request["stale_after_days"])).load(tuple(request["subscriptions"]))
    finally:
        store.close()
    sys.stdout.buffer.write(pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.flush()
    os._exit(0)  # freeing the records one by one would only delay the parent


if __name__ == "__main__":
    sys.exit(main())
