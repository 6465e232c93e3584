"""Deriving the snapshot in shares (one process per CPU, split by subscription) gives exactly what one process
gives: the same servers, in the same order, with the same cells — rules and File Sync servers that serve
machines of other subscriptions included."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from datetime import UTC, datetime

from tests.app_support import fill_store
from wsam_tui.derive import derive, derive_in_shares
from wsam_tui.inventory import _share
from wsam_tui.sim.fleetgen import generate_fleet


def cells(snapshot) -> list[tuple]:
    return [(s.id, s.name, s.state, s.fetched_at, s.coverage,
             tuple((k, c.state, c.summary, c.flags) for k, c in sorted(s.capabilities.items())))
            for s in snapshot.servers]


async def test_shares_derive_what_one_process_derives(make_sim, tmp_path):
    running = make_sim(generate_fleet(size=120, seed=5, subscriptions=3), throttle=False, graph_quota=False)
    await fill_store(running, tmp_path / "store")
    request = {"store": str(tmp_path / "store"), "subscriptions": [], "required_tags": ["env", "owner", "costCenter"],
               "stale_after_days": 7, "now": datetime.now(UTC).isoformat()}
    whole = derive(request, (0, 1))
    assert len(whole.servers) == 120 and len({s.subscription_id for s in whole.servers}) == 3
    for n in (2, 3):
        split = derive_in_shares(request, n)
        assert cells(split) == cells(whole), f"{n} shares"
        assert (split.subscriptions, split.oldest, split.newest) == (whole.subscriptions, whole.oldest, whole.newest)
    # and through the command line, as the console starts it
    out = subprocess.run([sys.executable, "-m", "wsam_tui.derive", json.dumps({**request, "part": [1, 2]})],
                         capture_output=True, check=True).stdout
    second = pickle.loads(out)
    assert 0 < len(second.servers) < 120 and {s.id for s in second.servers} <= {s.id for s in whole.servers}


def test_shares_are_balanced_by_server_count():
    class Manifest:
        def __init__(self, count: int) -> None:
            self.count = count

    from wsam_tui.fleet.model import Source

    counts = {"a": 900, "b": 500, "c": 450, "d": 40, "e": 10}
    by_sub = {sub: [(Source.MACHINES, Manifest(n)), (Source.EXTENSIONS, Manifest(n * 5))] for sub, n in counts.items()}
    shares = [_share(by_sub, k, 2) for k in range(2)]
    loads = [sum(m.count for entries in share for source, m in entries if source is Source.MACHINES) for share in shares]
    assert loads == [950, 950] and sum(len(s) for s in shares) == 5  # a | b+c, then d and e to the lighter
    assert _share(by_sub, 0, 1) == list(by_sub.values())
