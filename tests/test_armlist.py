"""The ARM fallback (wsam_tui/arm/armlist.py): the same matrix as Resource Graph, read through ARM's own lists.

The Resource Graph path and the ARM path run against the same simulated fleet through `wsam-tui export
-o json`; every server's every field and every capability's state, summary, flags, unknown reason and
evidence are compared. One difference is legitimate, and checked as such:

* ``updates`` — ARM has no read of an Arc machine's patch assessment (only Resource Graph's
  patchassessmentresources holds it; ``assessPatches`` would run a new one), so a subscription with
  Windows Arc machines records the ``patch`` source as failed through ARM, and the column is unknown
  there, for its VMs too (one status per subscription and source). In a subscription of VMs only, the
  VMs' patch state comes from their instance view's ``patchStatus.availablePatchSummary``: the same
  state and flags, but ARM counts critical and security patches together, so the summary's split of
  that count and the evidence (the instance view instead of the patchAssessmentResults document)
  differ. ``coverage`` (a server's share of its columns that are on) follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.fleetbuilder import SUB_A, SUB_B, SUB_DENIED, scenario_fleet
from wsam_tui.arm import armlist
from wsam_tui.arm.graph import QUERIES, unflatten_machine
from wsam_tui.cli import main
from wsam_tui.export import to_json
from wsam_tui.fleet.model import Source
from wsam_tui.inventory import Inventory
from wsam_tui.sim.fleetfile import FleetFileError, validate_fleet
from wsam_tui.sim.fleetgen import generate_fleet
from wsam_tui.store.cache import Store

ARC_MARK = "/providers/microsoft.hybridcompute/machines/"
VM_MARK = "/providers/microsoft.compute/virtualmachines/"


def export(running, cache, *extra: str) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["export", "-o", "json", "--cache-dir", str(cache), "--endpoint", running.base_url,
                     "--ca-bundle", str(running.ca_path), *extra])
    return code, json.loads(out.getvalue()), err.getvalue()


def matrix(cache, now: datetime) -> dict:
    """What `export -o json` wrote from this cache, derived again at one fixed instant: summaries say
    "13h ago", and two exports a few seconds apart must not differ by an age crossing an hour."""
    store = Store(cache)
    try:
        snap = Inventory(store).load(now=now, evidence=True)
        return json.loads(to_json(snap.servers, oldest=snap.oldest, newest=snap.newest))
    finally:
        store.close()


def compared(running, tmp_path, first: tuple[str, ...], second: tuple[str, ...], *,
             between=None) -> tuple[tuple[int, dict, str], tuple[int, dict, str]]:
    """Two exports of the same simulator; their matrices derived at one instant."""
    code_a, _, err_a = export(running, tmp_path / "a", *first)
    if between is not None:
        between()
    code_b, _, err_b = export(running, tmp_path / "b", *second)
    now = datetime.now(UTC)
    return (code_a, matrix(tmp_path / "a", now), err_a), (code_b, matrix(tmp_path / "b", now), err_b)


def by_id(doc: dict) -> dict[str, dict]:
    return {s["id"]: s for s in doc["servers"]}


def cell(server: dict, cap: str) -> dict:
    c = dict(server["capabilities"][cap])
    c["evidence"] = [{k: v for k, v in e.items() if k != "fetchedAt"} for e in c["evidence"]]
    return c


def differences(a: dict, b: dict) -> Counter:
    """(what differs) -> how many servers, over every base field and every capability's fields."""
    diffs: Counter = Counter()
    A, B = by_id(a), by_id(b)
    assert set(A) == set(B), "both paths must find the same servers"
    for sid, sa in A.items():
        sb = B[sid]
        for key in sa:
            if key != "capabilities" and sa[key] != sb[key]:
                diffs[key] += 1
        for cap in sa["capabilities"]:
            ca, cb = cell(sa, cap), cell(sb, cap)
            for field in ("state", "summary", "flags", "unknownReason", "evidence"):
                if ca[field] != cb[field]:
                    diffs[f"{cap}.{field}"] += 1
    return diffs


def vm_only(fleet: dict) -> dict:
    """The same fleet without its Arc machines (and what hangs below them)."""
    fleet = copy.deepcopy(fleet)
    fleet["resources"] = [r for r in fleet["resources"] if ARC_MARK not in r["id"].lower()]
    fleet["simulation"]["machines"] = {k: v for k, v in fleet["simulation"]["machines"].items() if ARC_MARK not in k.lower()}
    return fleet


@pytest.fixture(scope="module")
def fleet() -> dict:
    return generate_fleet(size=120, seed=7)


# ---- equivalence -------------------------------------------------------------------------------------


def test_resource_graph_and_arm_give_the_same_matrix(make_sim, fleet, tmp_path):
    running = make_sim(fleet, page_size=40)
    calls: list[int] = []
    (code, graph_doc, err), (code_arm, arm_doc, _) = compared(
        running, tmp_path, (), ("--no-graph",), between=lambda: calls.append(len(running.sim.log.entries)))
    assert code == 0, err
    assert code_arm == 3, "the patch source of subscriptions with Arc machines is not available through ARM"
    arm_calls = running.sim.log.entries[calls[0]:]
    assert not [e for e in arm_calls if "resourcegraph" in e["path"].lower()], "--no-graph sends no Resource Graph query"
    assert not [e for e in arm_calls if e["status"] >= 400], "every ARM read succeeded"

    diffs = differences(graph_doc, arm_doc)
    n = len(graph_doc["servers"])
    explained = {"updates.state", "updates.summary", "updates.flags", "updates.unknownReason", "updates.evidence", "coverage"}
    assert set(diffs) <= explained, {k: v for k, v in diffs.items() if k not in explained}
    # Every subscription of the generated fleet holds Arc machines: through ARM the column is unknown, and says why.
    for server in arm_doc["servers"]:
        updates = server["capabilities"]["updates"]
        assert updates["state"] == "unknown"
        assert "NotAvailableThroughArm" in updates["unknownReason"] and "Arc machines" in updates["unknownReason"]
    assert diffs["updates.state"] == n
    # Nothing else is unknown through ARM that Resource Graph knew.
    G = by_id(graph_doc)
    for server in arm_doc["servers"]:
        for cap, c in server["capabilities"].items():
            if cap != "updates":
                assert c == G[server["id"]]["capabilities"][cap] | {"evidence": c["evidence"]}, (server["id"], cap)


def test_in_a_subscription_of_vms_only_the_patch_state_comes_through_arm(make_sim, fleet, tmp_path):
    running = make_sim(vm_only(fleet), page_size=40)
    (code, graph_doc, err), (code_arm, arm_doc, err_arm) = compared(running, tmp_path, (), ("--no-graph",))
    assert code == 0, err
    assert code_arm == 0, err_arm

    diffs = differences(graph_doc, arm_doc)
    assert set(diffs) <= {"updates.summary", "updates.evidence"}, diffs
    assert diffs["updates.evidence"] > 10, "the fleet has assessed VMs"
    counts = re.compile(r"(\d+) critical, (\d+) security, (\d+) other")
    G = by_id(graph_doc)
    for server in arm_doc["servers"]:
        mine, theirs = server["capabilities"]["updates"], G[server["id"]]["capabilities"]["updates"]
        assert (mine["state"], mine["flags"]) == (theirs["state"], theirs["flags"])
        if mine["summary"] != theirs["summary"]:
            a, b = counts.search(mine["summary"]), counts.search(theirs["summary"])
            assert a and b, (mine["summary"], theirs["summary"])
            # ARM's criticalAndSecurityPatchCount is the sum of Resource Graph's two classifications.
            assert int(a[1]) + int(a[2]) == int(b[1]) + int(b[2]) and a[3] == b[3]
            assert counts.sub("", mine["summary"]) == counts.sub("", theirs["summary"])


# ---- the automatic fallback --------------------------------------------------------------------------


def test_a_subscription_resource_graph_refuses_is_read_through_arm(make_sim, tmp_path):
    fleet = scenario_fleet()
    fleet["simulation"]["access"]["graphDeniedSubscriptions"] = [SUB_B]
    running = make_sim(fleet, graph_quota=False, throttle=False)
    code, doc, err = export(running, tmp_path / "cache")
    assert code == 3, err  # SUB_DENIED: refused by ARM too
    assert f"subscription {SUB_B}: Resource Graph refused it; read through ARM instead" in err
    assert f"subscription {SUB_DENIED}: Resource Graph refused it; read through ARM instead" in err
    assert SUB_B not in "".join(line for line in err.splitlines() if "AuthorizationFailed" in line)
    servers = [s for s in doc["servers"] if s["subscriptionId"].lower() == SUB_B]
    assert len(servers) == 3
    for server in servers:
        unknown = {k: c["unknownReason"] for k, c in server["capabilities"].items() if c["state"] == "unknown"}
        assert set(unknown) <= {"inguest"}, unknown
    # Resource Graph served the rest: ARM's lists were read only for the refused subscriptions.
    listed = {e["path"].split("/")[2].lower() for e in running.sim.log.entries
              if e["method"] == "GET" and e["path"].lower().endswith("/providers/microsoft.compute/virtualmachines")}
    assert listed == {SUB_B, SUB_DENIED}
    assert any(s["subscriptionId"].lower() == SUB_A for s in doc["servers"])


def test_the_refused_subscription_matches_what_resource_graph_would_have_said(make_sim, fleet, tmp_path):
    running = make_sim(fleet, graph_quota=False)
    denied_sub = fleet["subscriptions"][1]["subscriptionId"].lower()
    # The same simulator, refusing one subscription to Resource Graph only for the second export.
    (_, expected, _), (code, got, err) = compared(
        running, tmp_path, (), (),
        between=lambda: running.call(lambda: running.sim.state.config.graph_denied_subscriptions.add(denied_sub)))
    assert code == 3 and "NotAvailableThroughArm" in err  # its Arc machines' patch state
    diffs = differences(expected, got)
    assert set(diffs) <= {"updates.state", "updates.summary", "updates.flags", "updates.unknownReason",
                          "updates.evidence", "coverage"}, diffs
    E = by_id(expected)
    for server in got["servers"]:
        if server["subscriptionId"].lower() != denied_sub:
            assert server == E[server["id"]] | {"capabilities": server["capabilities"]}
            assert all(c["state"] == E[server["id"]]["capabilities"][k]["state"] for k, c in server["capabilities"].items())


# ---- throttling and cost -----------------------------------------------------------------------------


def test_arm_reads_stay_inside_the_read_budget(make_sim, tmp_path):
    """A burst of 30 reads per subscription (ARM's refill, 25/s, unchanged): the fleet needs far more, and
    the transport paces them instead of running into 429s."""
    running = make_sim(generate_fleet(size=30, seed=3))
    running.call(lambda: setattr(running.sim.throttle, "limits", {"reads": (30, 25), "writes": (200, 10), "deletes": (200, 10)}))
    running.call(running.sim.throttle.reset)
    code, doc, err = export(running, tmp_path / "cache", "--no-graph")
    assert code == 3, err  # only the Arc machines' patch source
    assert {line.split(": ")[2] for line in err.splitlines() if line.startswith("wsam-tui export: subscription")} == {"patch"}
    reads = Counter(e["path"].split("/")[2].lower() for e in running.sim.log.entries
                    if e["method"] == "GET" and e["path"].lower().startswith("/subscriptions/"))
    assert min(reads.values()) > 30, f"every subscription needs more reads than its burst: {reads}"
    assert not [e for e in running.sim.log.entries if e["status"] == 429]
    assert len(doc["servers"]) == 30


def test_reads_per_subscription_and_per_server(make_sim, fleet, tmp_path):
    """The documented cost: per VM 5 reads, per Arc machine 6, the rest per subscription (lists and their pages)."""
    running = make_sim(fleet, throttle=False, graph_quota=False)
    export(running, tmp_path / "cache", "--no-graph")
    machines = {r["id"].lower(): r["type"].lower() for r in fleet["resources"]
                if r["type"].lower() in (armlist.VM_TYPE, armlist.ARC_TYPE)}
    per_machine: Counter = Counter()
    per_sub: Counter = Counter()
    for e in running.sim.log.entries:
        path = e["path"].lower()
        if not path.startswith("/subscriptions/") or path.count("/") < 3:
            continue
        for marker in (VM_MARK, ARC_MARK):
            if marker in path:
                end = path.find("/", path.index(marker) + len(marker))
                mid = path if end < 0 else path[:end]
                per_machine[mid] += 1
                break
        else:
            per_sub[path.split("/")[2]] += 1
    assert set(per_machine) == set(machines)
    assert {per_machine[m] for m, t in machines.items() if t == armlist.VM_TYPE} == {5}
    assert {per_machine[m] for m, t in machines.items() if t == armlist.ARC_TYPE} == {6}
    vaults = Counter(r["id"].split("/")[2].lower() for r in fleet["resources"] if r["type"] == "Microsoft.RecoveryServices/vaults")
    services = Counter(r["id"].split("/")[2].lower() for r in fleet["resources"] if r["type"] == "Microsoft.StorageSync/storageSyncServices")
    for sub, n in per_sub.items():
        # 10 lists (VMs, Arc machines, guest configuration, policy, pricings, assessments, vaults, DCRs,
        # solutions, sync services), 2 per vault, 1 per sync service; the fleet fits in one page each.
        assert n == 10 + 2 * vaults[sub] + services[sub], (sub, n)


# ---- rows, one by one ----------------------------------------------------------------------------------


def test_rows_have_the_columns_of_the_resource_graph_queries(make_sim, fleet):
    """Every ARM row carries exactly the columns its Resource Graph query projects."""
    from wsam_tui import kql
    from wsam_tui.arm.transport import ArmTransport
    from wsam_tui.sim.state import ARG_TABLE_NAMES, SimState

    state = SimState(fleet)
    tables = {name: (lambda n=name: state.arg_rows(n, None)) for name in ARG_TABLE_NAMES}
    expected = {q.source: set(kql.run(q.query, tables).rows[0]) for q in QUERIES}
    running = make_sim(fleet, throttle=False, graph_quota=False)

    async def read():
        import ssl

        transport = ArmTransport(running.base_url, lambda: _token(), verify=ssl.create_default_context(cafile=str(running.ca_path)))
        try:
            seen: dict[Source, list[tuple[int, int]]] = {}
            results = await armlist.fetch_sources_arm(
                transport, [s["subscriptionId"] for s in fleet["subscriptions"]],
                sources=[q.source for q in QUERIES if q.source is not Source.PATCH],
                progress=lambda s, d, t: seen.setdefault(s, []).append((d, t)))
            return results, seen
        finally:
            await transport.aclose()

    results, progress = asyncio.run(read())
    for result in results:
        assert result.error is None, result.error
        for row in result.rows:
            assert set(row) == expected[result.source], result.source
    machines = [row for r in results if r.source is Source.MACHINES for row in r.rows]
    assert all(unflatten_machine(row)["properties"] for row in machines)
    assert progress[Source.MACHINES][-1][0] == progress[Source.MACHINES][-1][1] == sum(
        1 for r in fleet["resources"] if r["type"] == "Microsoft.Compute/virtualMachines")
    assert progress[Source.DCRS][-1] == (3, 3), "subscription-wide sources count subscriptions"


async def _token() -> str:
    return "wsam-test-token"


def test_vm_patch_row_maps_the_instance_view_summary():
    vm = {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/Web-01",
          "properties": {"instanceView": {"patchStatus": {"availablePatchSummary": {
              "status": "Succeeded", "rebootPending": True, "criticalAndSecurityPatchCount": 3, "otherPatchCount": 4,
              "startTime": "2026-11-01T00:00:00Z", "lastModifiedTime": "2026-11-01T00:05:00Z", "error": None}}}}}
    row = armlist.vm_patch_row(vm)
    assert row["machineId"] == vm["id"].lower()
    props = row["properties"]
    assert (props["status"], props["rebootPending"], props["lastModifiedDateTime"]) == ("Succeeded", True, "2026-11-01T00:05:00Z")
    assert props["availablePatchCountByClassification"] == {"critical": 3, "other": 4}
    assert props["criticalAndSecurityCombined"] is True
    assert armlist.vm_patch_row({"id": "x", "properties": {"instanceView": {}}}) is None, "never assessed: no row"


# ---- the simulator's part ------------------------------------------------------------------------------


def test_graph_denied_subscriptions_are_refused_by_resource_graph_only(make_sim):
    import ssl

    import httpx

    fleet = scenario_fleet()
    fleet["simulation"]["access"]["graphDeniedSubscriptions"] = [SUB_B]
    running = make_sim(fleet, graph_quota=False, throttle=False)
    ctx = ssl.create_default_context(cafile=str(running.ca_path))
    with httpx.Client(base_url=running.base_url, verify=ctx, headers={"Authorization": "Bearer t"}) as c:
        q = c.post("/providers/Microsoft.ResourceGraph/resources", params={"api-version": "2022-10-01"},
                   json={"subscriptions": [SUB_B], "query": "resources | take 1"})
        assert q.status_code == 403 and SUB_B in q.text
        tenant_wide = c.post("/providers/Microsoft.ResourceGraph/resources", params={"api-version": "2022-10-01"},
                             json={"query": "resources | where type =~ 'microsoft.compute/virtualmachines' | project subscriptionId"})
        assert {r["subscriptionId"] for r in tenant_wide.json()["data"]} == {SUB_A}
        listed = c.get(f"/subscriptions/{SUB_B}/providers/Microsoft.Compute/virtualMachines", params={"api-version": "2024-07-01"})
        assert listed.status_code == 200 and len(listed.json()["value"]) == 3


def test_fleet_file_access_keys_are_checked():
    fleet = scenario_fleet()
    fleet["simulation"]["access"]["graphDenied"] = [SUB_B]
    with pytest.raises(FleetFileError, match="graphDeniedSubscriptions"):
        validate_fleet(fleet)
    fleet["simulation"]["access"] = {"graphDeniedSubscriptions": SUB_B}
    with pytest.raises(FleetFileError, match="list of subscription ids"):
        validate_fleet(fleet)


# ---- failures ----------------------------------------------------------------------------------------------


class FakeTransport:
    """Answers from a table of path suffix -> body or ArmHttpError; records what was asked."""

    max_connections = 16

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers, self.asked = answers, []

    def url(self, path: str) -> str:
        return path

    def answer(self, path: str):
        self.asked.append(path)
        for suffix, body in self.answers.items():
            if path.lower().endswith(suffix.lower()):
                if isinstance(body, Exception):
                    raise body
                return body
        return {"value": []}

    async def get_json(self, path, params=None):
        return self.answer(path)

    async def request(self, method, path, *, params=None, json_body=None, idempotent=None):
        import httpx

        return httpx.Response(200, json=self.answer(path))


def test_an_unregistered_provider_is_an_empty_list_and_a_refused_list_fails_what_needs_it():
    from wsam_tui.arm.transport import ArmHttpError

    sub = "00000000-0000-4000-8000-000000000001"
    transport = FakeTransport({
        "/providers/Microsoft.StorageSync/storageSyncServices": ArmHttpError(
            409, "MissingSubscriptionRegistration", "The subscription is not registered to use namespace 'Microsoft.StorageSync'."),
        "/providers/Microsoft.HybridCompute/machines": ArmHttpError(403, "AuthorizationFailed", "no read on machines"),
        "/providers/Microsoft.Insights/dataCollectionRules": {"value": [
            {"id": f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/dcr-1",
             "name": "dcr-1", "type": "Microsoft.Insights/dataCollectionRules", "properties": {"dataFlows": []}}]},
    })
    results = asyncio.run(armlist.fetch_sources_arm(transport, [sub], tenants={sub: "t"}))
    by_source = {r.source: r for r in results}
    assert set(by_source) == {q.source for q in QUERIES}
    assert by_source[Source.FILE_SYNC].error is None and by_source[Source.FILE_SYNC].rows == []
    assert [r["name"] for r in by_source[Source.DCRS].rows] == ["dcr-1"]
    for source in (Source.MACHINES, Source.EXTENSIONS, Source.PATCH, Source.DCR_ASSOCIATIONS, Source.AUTOMANAGE,
                   Source.MAINTENANCE, Source.GUEST_CONFIGURATION, Source.SECURITY):
        assert by_source[source].error is not None and by_source[source].error.status == 403, source
    for source in (Source.POLICY, Source.BACKUP, Source.SITE_RECOVERY):
        assert by_source[source].error is None, source
    assert sum(1 for p in transport.asked if p.lower().endswith("/microsoft.hybridcompute/machines")) == 1, \
        "the machine lists are read once for every source that needs them"
