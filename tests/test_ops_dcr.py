"""Associating a data collection rule: the simulator's ARM shapes, the action end to end on both kinds, the row after."""

from __future__ import annotations

import dataclasses
import json
import ssl

import httpx
import pytest

from tests.fleetbuilder import arc_id, dcr, scenario_fleet, vm_id
from tests.ops_support import cli_env, filled_inventory, make_engine, writes
from tests.test_ops_resume import endpoint
from tests.test_sim_durable import SimProcess
from wsam_tui.cli import main
from wsam_tui.depth import action_effect, record_effects, store_effects
from wsam_tui.fleet.model import CapabilityState, State
from wsam_tui.ops.catalog import ActionError, dcr_association_name
from wsam_tui.ops.engine import JobEvent
from wsam_tui.ops.plan import plan

RULE = dcr("dcr-perf")["id"]
ASSOC = "/providers/Microsoft.Insights/dataCollectionRuleAssociations"
API = {"api-version": "2022-06-01"}


@pytest.fixture
def dcr_sim(make_sim):
    fleet = scenario_fleet()
    fleet["resources"].append(dcr("dcr-perf"))
    return make_sim(fleet, lro_seconds=0.2, throttle=False, graph_quota=False)


@pytest.fixture
async def fleet(dcr_sim, tmp_path):
    """(connection, inventory on a filled store, servers by name)."""
    async with filled_inventory(dcr_sim, tmp_path) as filled:
        yield filled


@pytest.fixture
def client(dcr_sim):
    with httpx.Client(base_url=dcr_sim.base_url, verify=ssl.create_default_context(cafile=str(dcr_sim.ca_path)),
                      headers={"Authorization": "Bearer x"}) as c:
        yield c


@pytest.mark.parametrize("machine", [vm_id("web-00"), arc_id("fs-00")], ids=["vm", "arc"])
def test_simulator_creates_updates_lists_and_deletes_an_association(client, dcr_sim, machine):
    url = f"{machine}{ASSOC}/dcr-perf-association"
    body = {"properties": {"dataCollectionRuleId": RULE, "description": "first"}}
    created = client.put(url, params=API, json=body)
    assert created.status_code == 201
    assert created.json()["properties"]["dataCollectionRuleId"] == RULE
    assert created.json()["properties"]["provisioningState"] == "Succeeded"
    updated = client.put(url, params=API, json={"properties": {"dataCollectionRuleId": RULE, "description": "second"}})
    assert updated.status_code == 200 and updated.json()["properties"]["description"] == "second"
    got = client.get(url, params=API).json()
    assert got["type"] == "Microsoft.Insights/dataCollectionRuleAssociations" and got["name"] == "dcr-perf-association"
    listed = client.get(f"{machine}{ASSOC}", params=API).json()["value"]
    assert [a["id"] for a in listed] == [got["id"]]
    graph_rows = dcr_sim.call(lambda: list(dcr_sim.state.arg_rows("insightsresources", None)))
    assert got["id"].lower() in {r["id"].lower() for r in graph_rows}, "Resource Graph shows it too"
    assert client.delete(url, params=API).status_code == 200
    assert client.get(url, params=API).status_code == 404
    assert client.delete(url, params=API).status_code == 204
    assert client.get(f"{machine}{ASSOC}", params=API).json()["value"] == []
    graph_rows = dcr_sim.call(lambda: list(dcr_sim.state.arg_rows("insightsresources", None)))
    assert got["id"].lower() not in {r["id"].lower() for r in graph_rows}


def test_simulator_refuses_a_malformed_or_missing_rule(client):
    url = f"{vm_id('web-00')}{ASSOC}/x"
    bad = client.put(url, params=API, json={"properties": {"dataCollectionRuleId": "not-a-rule"}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidPayload"
    missing = client.put(url, params=API, json={"properties": {"dataCollectionRuleId": RULE.replace("dcr-perf", "nope")}})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
    assert client.get(f"{vm_id('web-00')}{ASSOC}", params=API).json()["value"] == []


def test_the_rule_must_be_a_rule_id(fleet):
    _, _, servers = fleet
    with pytest.raises(ActionError, match="not a data collection rule id"):
        plan("monitor.associate-dcr", {"rule": "/subscriptions/x/resourceGroups/y"}, [servers["web-00"]])


async def run(conn, tmp_path, servers, names, action_id, rule=RULE, events=None):
    p = plan(action_id, {"rule": rule}, [servers[n] for n in names])
    job = await make_engine(conn, tmp_path, on_event=(events.append if events is not None else None)).run(p)
    return p, {t.target.name: t for t in job.targets.values()}


async def test_associate_then_remove_on_both_kinds_and_the_monitor_cell_turns_on(fleet, dcr_sim, tmp_path):
    conn, inventory, servers = fleet
    assert servers["web-00"].capabilities["monitor"].state is State.PARTIAL  # the agent, no rule
    events: list[JobEvent] = []
    p, done = await run(conn, tmp_path, servers, ["web-00", "fs-00", "web-01", "fs-disconnected"],
                        "monitor.associate-dcr", events=events)
    assert [(s.target.name, s.reason) for s in p.skipped] == [
        ("fs-disconnected", "Arc agent is Disconnected: it must be Connected to collect data")]
    assert any("no Azure Monitor agent" in n for n in p.notes), p.notes  # web-01 has none: allowed, warned
    assert p.targets[0].az.startswith("az monitor data-collection rule association create --name dcr-perf-association")
    assert {n: t.state for n, t in done.items()} == {"web-00": "succeeded", "fs-00": "succeeded", "web-01": "succeeded"}
    name = dcr_association_name(RULE)
    for rid in (vm_id("web-00"), arc_id("fs-00"), vm_id("web-01")):
        assoc = dcr_sim.call(lambda rid=rid: dcr_sim.state.get(f"{rid}{ASSOC}/{name}"))
        assert assoc["properties"]["dataCollectionRuleId"] == RULE

    # the row after: one read of the machine's association list, and the cell turns on where the agent runs
    ok = [e for e in events if e.state == "succeeded"]
    effects = [await action_effect(conn.transport, "monitor.associate-dcr", e.target_id, e.resource,
                                   done[servers_by_id(servers)[e.target_id]].call.resource_path) for e in ok]
    records = {s.name: s for s in record_effects(inventory, effects)}
    assert records["web-00"].capabilities["monitor"].state is State.ON
    assert records["fs-00"].capabilities["monitor"].state is State.ON
    assert records["web-01"].capabilities["monitor"].state is State.PARTIAL  # rule, but no agent yet
    assert store_effects(inventory) == 3
    servers = {s.name: s for s in inventory.load().servers}
    assert servers["web-00"].capabilities["monitor"].state is State.ON, "the store has it (a restart shows it)"

    # again: already associated, nothing sent; then remove it
    before = len(writes(dcr_sim))
    p, _ = await run(conn, tmp_path, servers, ["web-00"], "monitor.associate-dcr")
    assert [(s.reason) for s in p.skipped] == ["already associated with this rule"] and len(writes(dcr_sim)) == before
    events.clear()
    p, done = await run(conn, tmp_path, servers, ["web-00", "fs-01"], "monitor.remove-dcr", events=events)
    # fs-01 has no association at all (its Monitor cell lists every rule it has): skipped, nothing sent to it
    assert [(s.target.name, s.reason) for s in p.skipped] == [("fs-01", "not associated with this rule")]
    assert [e["method"] for e in writes(dcr_sim)[-1:]] == ["DELETE"] and len(writes(dcr_sim)) == before + 1
    assert {t.state for t in done.values()} == {"succeeded"} and set(done) == {"web-00"}
    assert dcr_sim.call(lambda: dcr_sim.state.get(f"{vm_id('web-00')}{ASSOC}/{name}")) is None
    (event,) = [e for e in events if e.state == "succeeded" and e.target_id.lower() == vm_id("web-00").lower()]
    effect = await action_effect(conn.transport, "monitor.remove-dcr", event.target_id, event.resource,
                                 done["web-00"].call.resource_path)
    (record,) = record_effects(inventory, [effect])
    assert record.capabilities["monitor"].state is State.PARTIAL


def test_remove_is_sent_where_the_monitor_cell_cannot_tell_every_rule(fleet):
    _, _, servers = fleet

    def with_monitor(name, state, summary):
        caps = {**servers[name].capabilities, "monitor": CapabilityState("monitor", state, summary)}
        return dataclasses.replace(servers[name], capabilities=caps)

    chosen = [with_monitor("web-00", State.ON, "AzureMonitorWindowsAgent 1.2 Succeeded; 4 DCRs: a, b, c"),
              with_monitor("web-01", State.UNKNOWN, "unknown: dcrAssociations: 403 AuthorizationFailed"),
              with_monitor("web-02", State.ON, "AzureMonitorWindowsAgent 1.2 Succeeded; 2 DCRs: a, dcr-perf"),
              with_monitor("web-03", State.ON, "AzureMonitorWindowsAgent 1.2 Succeeded; 3 DCRs: a, b, c"),
              with_monitor("web-04", State.PARTIAL, "AzureMonitorWindowsAgent 1.2 Succeeded; no DCR association")]
    p = plan("monitor.remove-dcr", {"rule": RULE}, chosen)
    assert [t.target.name for t in p.targets] == ["web-00", "web-01", "web-02"]
    assert [(s.target.name, s.reason) for s in p.skipped] == [("web-03", "not associated with this rule"),
                                                               ("web-04", "not associated with this rule")]


def servers_by_id(servers):
    return {s.id: s.name for s in servers.values()} | {s.id.lower(): s.name for s in servers.values()}


async def test_a_rule_that_does_not_exist_fails_with_arms_code(fleet, tmp_path):
    conn, _, servers = fleet
    _, done = await run(conn, tmp_path, servers, ["web-00", "fs-00"], "monitor.associate-dcr",
                        rule=RULE.replace("dcr-perf", "dcr-gone"))
    assert {t.state for t in done.values()} == {"failed"}
    assert {t.code for t in done.values()} == {"ResourceNotFound"}


def test_an_association_survives_a_killed_simulator_and_so_does_its_removal(tmp_path):
    fleet = scenario_fleet()
    fleet["resources"].append(dcr("dcr-perf"))
    fleet_file = tmp_path / "fleet.json"
    fleet_file.write_text(json.dumps(fleet), encoding="utf-8")
    url = f"{arc_id('fs-01')}{ASSOC}/dcr-perf-association"
    for step in ("put", "delete", "check"):
        sim = SimProcess(fleet_file, tmp_path / "arm", tmp_path, lro_seconds=0.2)
        try:
            if step == "put":
                assert sim.client.put(url, params=API, json={"properties": {"dataCollectionRuleId": RULE}}).status_code == 201
            elif step == "delete":
                assert sim.client.get(url, params=API).json()["properties"]["dataCollectionRuleId"] == RULE
                assert sim.client.delete(url, params=API).status_code == 200
            else:
                assert sim.client.get(url, params=API).status_code == 404
                assert sim.client.get(f"{arc_id('fs-01')}{ASSOC}", params=API).json()["value"] == []
        finally:
            sim.kill()  # right after the answer: what was saved is what the request saved


def test_headless_monitor_associate_dcr(dcr_sim, tmp_path, monkeypatch, capsys):
    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    args = ["monitor", "associate-dcr", "--rule", RULE, *endpoint(dcr_sim), "-q", "name:web-00 OR name:fs-disconnected"]
    assert main([*args, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "az monitor data-collection rule association create" in out and "Arc agent is Disconnected" in out
    assert [e["path"].rsplit("/", 1)[-1] for e in writes(dcr_sim)] == ["dcr-perf-association"]
    assert main(["monitor", "associate-dcr", "--rule", "nope", *endpoint(dcr_sim), "--all", "--yes"]) == 2
    assert "not a data collection rule id" in capsys.readouterr().err
