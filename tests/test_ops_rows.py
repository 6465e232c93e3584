"""The row after a success: built from the cached server and what the engine re-read, not a depth read.

Each action's succeeded targets go through ``action_effect`` (the resource the engine handed back) and
``record_effects`` (the cached rows with those over them): the new record shows the effect, the
simulator's request log shows the reads it cost (none, or one where the cells need it), and
``store_effects`` puts it into the store so that a load from the store (a restart, --offline) shows it.
"""

from __future__ import annotations

import pytest

from tests.ops_support import filled_inventory, make_engine
from wsam_tui.depth import action_effect, cached_view, record_effects, store_effects
from wsam_tui.ops.engine import JobEvent
from wsam_tui.ops.plan import plan


@pytest.fixture
async def fleet(scenario_sim, tmp_path):
    """(connection, inventory on a filled store, servers by name)."""
    async with filled_inventory(scenario_sim, tmp_path) as filled:
        yield filled


async def act(conn, inventory, tmp_path, running, action_id, params, server):
    """Run the action on one server; the new record from its event, and the ARM reads that record cost."""
    events: list[JobEvent] = []
    job = await make_engine(conn, tmp_path, on_event=events.append).run(plan(action_id, params, [server]))
    (target,) = job.targets.values()
    assert target.state == "succeeded", (target.code, target.message)
    (event,) = [e for e in events if e.state == "succeeded"]
    before = len(running.sim.log.entries)
    effect = await action_effect(conn.transport, action_id, event.target_id, event.resource, target.call.resource_path)
    reads = [e for e in running.sim.log.entries[before:] if e["method"] == "GET"]
    assert effect is not None
    (record,) = record_effects(inventory, [effect])
    return record, reads


CASES = [
    # action, server, params, what the new record shows, reads beyond the engine's own
    ("power.stop", "web-01", {}, lambda s: s.state == "stopped", 0),
    ("power.deallocate", "web-01", {}, lambda s: s.state == "deallocated", 0),
    ("tags.add", "web-01", {"tags": ["owner=ops-team"]}, lambda s: s.tags.get("owner") == "ops-team", 0),
    ("tags.remove", "web-01", {"tags": ["env"]}, lambda s: "env" not in s.tags, 0),
    ("identity.enable", "web-01", {},
     lambda s: "systemassigned" in s.identity_type.lower() and s.state == "running", 0),
    ("extension.install", "web-01", {"extension": "mde"},
     lambda s: any(e.name == "MDE.Windows" for e in s.extensions), 0),
    ("extension.remove", "web-00", {"extension": "ama"},
     lambda s: not any(e.name == "AzureMonitorWindowsAgent" for e in s.extensions), 0),
    ("extension.upgrade", "web-00", {"extension": "ama", "version": "1.30"},
     lambda s: any(e.name == "AzureMonitorWindowsAgent" and e.version == "1.30" for e in s.extensions), 0),
    ("extension.upgrade", "fs-00", {"extension": "ama", "version": "1.30"},  # Arc upgradeExtensions: + the list
     lambda s: any(e.name == "AzureMonitorWindowsAgent" and e.version == "1.30" for e in s.extensions), 1),
]


@pytest.mark.parametrize(("action_id", "name", "params", "shows", "extra_reads"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
async def test_the_row_after_a_success_shows_the_effect_for_at_most_one_read(
        fleet, scenario_sim, tmp_path, action_id, name, params, shows, extra_reads):
    conn, inventory, servers = fleet
    assert not shows(servers[name]), "the cached row does not show it yet"
    record, reads = await act(conn, inventory, tmp_path, scenario_sim, action_id, params, servers[name])
    assert shows(record)
    assert len(reads) == extra_reads, [e["path"] for e in reads]
    assert record.name == name and record.subscription_id == servers[name].subscription_id
    view = cached_view(inventory, record.id)  # the details pane's cached view sees it at once, too
    assert view is not None and shows(view.server)
    assert store_effects(inventory) == 1
    assert shows({s.name: s for s in inventory.load().servers}[name]), "the store has it (a restart shows it)"


async def test_changes_on_one_server_add_up_and_other_servers_keep_their_rows(fleet, scenario_sim, tmp_path):
    conn, inventory, servers = fleet
    before = {s.name: s for s in inventory.load().servers}
    await act(conn, inventory, tmp_path, scenario_sim, "extension.install", {"extension": "mde"}, servers["web-01"])
    record, _ = await act(conn, inventory, tmp_path, scenario_sim, "tags.add", {"tags": ["owner=ops"]},
                          servers["web-01"])
    assert record.tags.get("owner") == "ops" and any(e.name == "MDE.Windows" for e in record.extensions)
    assert record.capabilities["defender"].state is not before["web-01"].capabilities["defender"].state
    assert store_effects(inventory) == 1 and store_effects(inventory) == 0
    after = {s.name: s for s in inventory.load().servers}
    assert after.keys() == before.keys()
    for n, s in after.items():
        if n != "web-01":
            assert s.capabilities == before[n].capabilities and s.tags == before[n].tags, n
    assert after["web-01"].tags.get("owner") == "ops"
    assert any(e.name == "MDE.Windows" for e in after["web-01"].extensions)
    # The store keeps each source's fetch time: the other servers' rows are as old as before.
    assert after["web-00"].fetched_at == before["web-00"].fetched_at


@pytest.mark.parametrize("sort_key", ["name", "monitor"])
async def test_the_index_updated_in_place_answers_as_one_built_afresh(fleet, scenario_sim, tmp_path, sort_key):
    from wsam_tui.fleet.query import FleetIndex, parse_query

    conn, inventory, servers = fleet
    listed = inventory.load().servers
    index = FleetIndex(list(listed))
    index.sort(sort_key)
    queries = ["missing:monitor", "has:defender", "tag:owner=ops", "state:stopped", "web", "!missing:any", "kind:vm",
               "ops", ""]
    assert all(index.filter(parse_query(q)) is not None for q in queries)  # results remembered before the update
    changed = [
        (await act(conn, inventory, tmp_path, scenario_sim, "extension.install", {"extension": "ama"}, servers["web-01"]))[0],
        (await act(conn, inventory, tmp_path, scenario_sim, "power.stop", {}, servers["web-02"]))[0],
        (await act(conn, inventory, tmp_path, scenario_sim, "tags.add", {"tags": ["owner=ops"]}, servers["fs-01"]))[0],
    ]
    assert len(index.update(changed)) == 3
    by_id = {s.id: s for s in changed}
    fresh = FleetIndex([by_id.get(s.id, s) for s in listed])
    fresh.sort(sort_key)
    for q in queries:
        got = [index.servers[i].name for i in index.filter(parse_query(q))]
        assert got == [fresh.servers[i].name for i in fresh.filter(parse_query(q))], q
    assert [e.server for e in index._ordered] == [e.server for e in fresh._ordered]
    assert "web-02" in [index.servers[i].name for i in index.filter(parse_query("state:stopped"))]
    assert "fs-01" in [index.servers[i].name for i in index.filter(parse_query("tag:owner=ops"))]
    assert index.update([]) == []
