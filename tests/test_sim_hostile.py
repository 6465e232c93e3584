"""Hostile data round-trips byte-exact through the simulator: what a compromised server or a careless
tagger wrote is what the console receives — sanitising is the console's job, on arrival, not the wire's."""

from __future__ import annotations

import ssl

import httpx
import pytest

from wsam_tui.sim.guest import cap_output
from wsam_tui.sim.hostile import HOSTILE_STRINGS, hostile_fleet

ARC_FIELDS = ("osName", "osSku", "displayName", "machineFqdn", "domainName", "detectedProperties")


@pytest.fixture
def hostile(make_sim):
    fleet = hostile_fleet()
    running = make_sim(fleet, rebase_time=False, throttle=False, graph_quota=False)
    client = httpx.Client(verify=ssl.create_default_context(cafile=str(running.ca_path)), base_url=running.base_url,
                          headers={"Authorization": "Bearer t"}, timeout=30)
    yield fleet, running, client
    client.close()


def machines(fleet: dict, type_: str) -> list[dict]:
    return [r for r in fleet["resources"] if r["type"] == type_]


def test_fleet_really_is_hostile():
    fleet = hostile_fleet()
    text = repr(fleet)
    for s in ("[@click=app.quit]", "\\x1b]0;", "\\u202e", "\\x00"):
        assert s in text
    assert any(len(s) >= 10_000 for s in HOSTILE_STRINGS)


def test_machine_documents_round_trip_byte_exact(hostile):
    fleet, _, client = hostile
    for doc in machines(fleet, "Microsoft.HybridCompute/machines") + machines(fleet, "Microsoft.Compute/virtualMachines"):
        got = client.get(doc["id"], params={"api-version": "2026-07-15", "$expand": "instanceView"}).json()
        assert got.get("tags") == doc.get("tags")
        if doc["type"] == "Microsoft.HybridCompute/machines":
            for field in ARC_FIELDS:
                assert got["properties"].get(field) == doc["properties"].get(field), field
        else:
            assert got["properties"]["instanceView"].get("osName") == doc["properties"]["instanceView"].get("osName")


def test_resource_graph_returns_hostile_values_byte_exact(hostile):
    fleet, _, client = hostile
    by_id = {r["id"].lower(): r for r in fleet["resources"]}
    body = {"query": "resources | where type =~ 'microsoft.hybridcompute/machines' | project id, tags, properties",
            "options": {"$top": 1000}}
    rows = client.post("/providers/Microsoft.ResourceGraph/resources", params={"api-version": "2022-10-01"}, json=body).json()["data"]
    assert rows
    for row in rows:
        doc = by_id[row["id"].lower()]
        assert row["tags"] == doc.get("tags")
        for field in ARC_FIELDS:
            assert row["properties"].get(field) == doc["properties"].get(field)
    seen = repr(rows)
    assert "[@click=app.quit]" in seen and "\\x1b]0;pwned\\x07" in seen and "\\u202e" in seen


def test_run_command_output_round_trips_and_is_capped_at_4096_bytes(hostile):
    fleet, running, client = hostile
    overrides = {k.lower(): v["runCommandOutput"] for k, v in fleet["simulation"]["machines"].items() if "runCommandOutput" in v}
    assert overrides, "the hostile fleet sets Run Command output"
    checked = 0
    for doc in machines(fleet, "Microsoft.HybridCompute/machines") + machines(fleet, "Microsoft.Compute/virtualMachines"):
        want = overrides.get(doc["id"].lower())
        if want is None or running.state.get(doc["id"]) is None:
            continue
        r = client.put(f"{doc['id']}/runCommands/wsam-hostile", params={"api-version": "2026-07-15"},
                       json={"location": doc["location"], "properties": {"source": {"script": "hostname"}}})
        if r.status_code == 409:  # stopped VM or disconnected agent: refused, as ARM does
            continue
        assert r.status_code in (200, 201), r.text
        import time

        for _ in range(100):
            got = client.get(f"{doc['id']}/runCommands/wsam-hostile",
                             params={"api-version": "2026-07-15", "$expand": "instanceView"}).json()
            if got["properties"]["provisioningState"] in ("Succeeded", "Failed"):
                break
            time.sleep(0.05)
        view = got["properties"]["instanceView"]
        expected_out, cut = cap_output(want.get("stdout", ""))
        assert view["output"] == expected_out
        assert view["error"] == cap_output(want.get("stderr", ""))[0]
        if cut:
            assert len(view["output"].encode("utf-8", "surrogatepass")) <= 4096
            assert any("truncated" in s.get("message", "").lower() for s in view["statuses"])
        checked += 1
    assert checked >= 1
