"""Depth: one server's fresh detail through ARM (wsam_tui/arm/resources.py) against a running simulator,
and its equivalence with breadth (the Resource Graph inventory) column by column."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime

import pytest

from tests.fleetbuilder import SUB_A, SUB_DENIED, arc_id, extension, scenario_fleet, vm, vm_id
from wsam_tui.arm.resources import ServerDetail, detail_to_raw, fetch_detail
from wsam_tui.arm.transport import BUDGETS, ArmHttpError
from wsam_tui.fleet.assemble import assemble
from wsam_tui.fleet.capabilities import build_server
from wsam_tui.fleet.model import FleetContext, Kind, RawServer, Source, SourceStatus, State
from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.sim.state import machine_id_of
from wsam_tui.store.cache import Store

pytestmark = pytest.mark.asyncio

MACHINE_TYPES = ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")


@pytest.fixture(scope="module")
def fleet() -> dict:
    from wsam_tui.sim.fleetgen import generate_fleet

    return generate_fleet(size=150, seed=5)


async def connection(running):
    return await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))


async def no_sleep(_seconds: float) -> None:
    return None


def machines(fleet: dict, kind: str) -> list[dict]:
    return [r for r in fleet["resources"] if r["type"].lower() == kind]


def attached(fleet: dict, type_lower: str) -> dict[str, list[dict]]:
    """Machine id (lower) -> the fleet's documents of one type attached to it."""
    out: dict[str, list[dict]] = {}
    for r in fleet["resources"]:
        if r["type"].lower() == type_lower:
            owner = r["properties"].get("sourceResourceId") if "/protecteditems" in type_lower else machine_id_of(r["id"])
            out.setdefault(str(owner).lower(), []).append(r)
    return out


def requests_since(running, since: int) -> list[dict]:
    return running.sim.log.entries[since:]


def dumped(*things) -> str:
    return json.dumps([dataclasses.asdict(t) if dataclasses.is_dataclass(t) else t for t in things], default=str)


def inventory_raws(store: Store, now: datetime) -> tuple[dict[str, RawServer], FleetContext]:
    """What the inventory derives from its store: every server's Resource Graph documents and the context."""
    subs = [s["subscriptionId"].lower() for s in store.get_meta("subscriptions", [])]
    rows: dict[Source, list[dict]] = {}
    statuses: dict[tuple[str, Source], SourceStatus] = {}
    for m in store.manifests(subs):
        source = Source(m.source)
        if m.fetched_at is not None:
            statuses[(m.subscription, source)] = SourceStatus(fetched_at=m.fetched_at)
            rows.setdefault(source, []).extend(store.rows(m.subscription, m.source, m.chunks))
        else:
            statuses[(m.subscription, source)] = SourceStatus(error=m.error)
    raws, ctx = assemble(rows, sources=statuses, now=now)
    return {r.machine["id"].lower(): r for r in raws}, ctx


def depth_context(ctx: FleetContext, statuses: dict, dcrs: dict) -> FleetContext:
    """How the details pane combines them: depth's statuses and rules over the inventory's."""
    return dataclasses.replace(ctx, dcrs={**ctx.dcrs, **dcrs}, sources={**ctx.sources, **statuses})


# ---- what a detail carries -----------------------------------------------------------------------


async def test_vm_detail_carries_every_document(make_sim, fleet):
    gc = attached(fleet, "microsoft.guestconfiguration/guestconfigurationassignments")
    dcra = attached(fleet, "microsoft.insights/datacollectionruleassociations")
    backup = attached(fleet, "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems")
    policy = attached(fleet, "microsoft.policyinsights/policystates")
    target = next(m for m in machines(fleet, MACHINE_TYPES[0])
                  if all(m["id"].lower() in x for x in (gc, dcra, backup, policy))
                  and m["properties"]["instanceView"].get("patchStatus"))
    mid = target["id"]
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn = await connection(running)
    try:
        before = len(running.sim.log.entries)
        detail = await fetch_detail(conn.transport, mid)
    finally:
        await conn.close()
    assert detail.errors == {}
    assert detail.kind is Kind.VM and detail.fetched_at <= datetime.now(UTC)
    iv = detail.machine["properties"]["instanceView"]
    assert iv["vmAgent"]["statuses"] and iv["patchStatus"]["availablePatchSummary"]
    assert any(s["code"].startswith("PowerState/") for s in iv["statuses"])
    assert detail.extensions and all("instanceView" in e["properties"] for e in detail.extensions)
    assert {a["id"].lower() for a in detail.guest_configuration} == {a["id"].lower() for a in gc[mid.lower()]}
    rules = {a["properties"]["dataCollectionRuleId"].lower() for a in dcra[mid.lower()]}
    assert set(detail.dcrs) == rules and len(detail.dcr_associations) == len(dcra[mid.lower()])
    assert detail.policy is not None and "results" in detail.policy
    assert len(detail.policy_states) == len(policy[mid.lower()])
    assert detail.pricing["properties"]["pricingTier"] in ("Free", "Standard")
    assert detail.backup["vaultId"] and detail.backup_item["id"].lower() == backup[mid.lower()][0]["id"].lower()
    # 11 reads for a VM, one more per DCR, one more for the protected item backupStatus names
    assert len(requests_since(running, before)) == 11 + len(rules) + 1


async def test_arc_detail_carries_its_documents_and_no_backup_read(scenario_sim):
    mid = arc_id("fs-00")
    conn = await connection(scenario_sim)
    try:
        before = len(scenario_sim.sim.log.entries)
        detail = await fetch_detail(conn.transport, mid)
    finally:
        await conn.close()
    assert detail.errors == {}
    assert detail.kind is Kind.ARC
    assert detail.machine["properties"]["status"] == "Connected"
    by_type = {e["properties"]["type"]: e for e in detail.extensions}
    assert set(by_type) == {"AzureMonitorWindowsAgent", "MDE.Windows"}
    assert by_type["MDE.Windows"]["properties"]["instanceView"]["status"]["message"] == "ok"
    assert detail.backup is None and detail.backup_item is None  # Arc backup (MARS) stays with Resource Graph
    assert detail.pricing["properties"].get("inherited") == "True"
    paths = [e["path"].lower() for e in requests_since(scenario_sim, before)]
    assert len(paths) == 10 and not any("backupstatus" in p for p in paths), paths
    raw, statuses, _ = detail_to_raw(detail)
    server = build_server(raw, FleetContext(now=datetime.now(UTC), sources=statuses))
    assert "(subscription)" in server.capabilities["defender"].summary, "an inherited pricing is the subscription's"
    assert server.capabilities["extensions"].state is State.ON
    assert server.capabilities["backup"].state is State.UNKNOWN
    assert server.capabilities["backup"].unknown_reason == "backup: not fetched"


# ---- depth and breadth agree -------------------------------------------------------------------


async def test_depth_gives_the_same_columns_as_the_inventory(make_sim, fleet, tmp_path, monkeypatch):
    """Every server of a generated fleet, both ways. The one column that legitimately differs is
    ``runcommand`` on running VMs: Resource Graph has no VM agent status (breadth says "on, agent
    unverified"); ARM's instance view has it, so depth says "partial" where the agent is Not Ready."""
    # ~1,900 reads in a few seconds: the simulator's throttling is off, so is the client's mirror of ARM's
    # budgets (which would pace them at 25 reads/s per subscription, as ARM would).
    for kind in ("reads", "writes"):
        monkeypatch.setitem(BUDGETS, kind, (1e6, 1e6))
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn = await connection(running)
    try:
        store = Store(tmp_path / "cache")
        report = await Inventory(store).refresh(conn)
        assert report.complete
        now = datetime.now(UTC)
        raws, ctx = inventory_raws(store, now)
        gate = asyncio.Semaphore(8)

        async def one(mid: str) -> ServerDetail:
            async with gate:
                return await fetch_detail(conn.transport, mid)

        details = await asyncio.gather(*(one(r.machine["id"]) for r in raws.values()))
    finally:
        await conn.close()
    assert len(details) == 150

    differ: list[tuple[str, str, State, State]] = []
    summaries: set[str] = set()
    agent_not_ready = 0
    for detail in details:
        assert detail.errors == {}, detail.errors
        base = raws[detail.machine_id.lower()]
        breadth = build_server(base, ctx)
        raw, statuses, dcrs = detail_to_raw(detail, base)
        depth = build_server(raw, depth_context(ctx, statuses, dcrs))
        for col, cell in breadth.capabilities.items():
            got = depth.capabilities[col]
            if got.state != cell.state:
                differ.append((detail.machine_id, col, cell.state, got.state))
            elif got.summary != cell.summary:
                summaries.add(col)
        agent = (detail.machine["properties"].get("instanceView") or {}).get("vmAgent") or {}
        status = next((s.get("displayStatus") for s in agent.get("statuses") or []), "")
        if depth.kind is Kind.VM and depth.state == "running" and status != "Ready":
            agent_not_ready += 1
            assert depth.capabilities["runcommand"].state is State.PARTIAL
            assert "agent-not-ready" in depth.capabilities["runcommand"].flags
            assert breadth.capabilities["runcommand"].state is State.ON
            assert "agent-unverified" in breadth.capabilities["runcommand"].flags

        # Without the inventory's documents, depth alone fills every column whose sources it reads;
        # the others say "not fetched" rather than guess.
        alone_raw, alone_statuses, alone_dcrs = detail_to_raw(detail)
        alone = build_server(alone_raw, FleetContext(now=now, dcrs=alone_dcrs, sources=alone_statuses,
                                                     sentinel_workspaces=ctx.sentinel_workspaces))
        not_read = {"siterecovery", "filesync", "inguest"} | ({"backup", "updates"} if depth.kind is Kind.ARC else set())
        for col, cell in alone.capabilities.items():
            if col in not_read:
                assert cell.state is State.UNKNOWN, (col, cell)
                assert col == "inguest" or cell.unknown_reason.endswith("not fetched"), (col, cell)
            else:
                assert cell.state == depth.capabilities[col].state, (detail.machine_id, col)

    assert agent_not_ready > 0, "the fleet should hold running VMs whose agent is not ready"
    assert {col for _, col, _, _ in differ} == {"runcommand"}
    assert len(differ) == agent_not_ready
    # Summaries differ only where depth knows more: the VM agent's status, and a failed extension's status
    # message (extensions are listed with their instance view; Resource Graph has no message).
    assert summaries == {"runcommand", "wac"}, summaries


# ---- an action's effect, at once -----------------------------------------------------------------


async def test_installed_extension_is_in_depth_at_once_and_no_secret_leaks(scenario_sim):
    mid = vm_id("web-03")
    secret = "hunter2-do-not-show"
    conn = await connection(scenario_sim)
    try:
        await conn.transport.request("PUT", f"{mid}/extensions/AdminCenter", params={"api-version": "2024-07-01"},
                                     json_body={"location": "westeurope", "properties": {
                                         "publisher": "Microsoft.AdminCenter", "type": "AdminCenter",
                                         "typeHandlerVersion": "0.0", "settings": {"port": "6516"},
                                         "protectedSettings": {"password": secret}}})
        for _ in range(50):
            detail = await fetch_detail(conn.transport, mid)
            ext = next((e for e in detail.extensions if e["name"] == "AdminCenter"), None)
            if ext and ext["properties"]["provisioningState"] == "Succeeded":
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the extension never reached Succeeded")
    finally:
        await conn.close()
    raw, statuses, dcrs = detail_to_raw(detail)
    server = build_server(raw, FleetContext(now=datetime.now(UTC), dcrs=dcrs, sources=statuses))
    assert server.capabilities["wac"].state is State.ON
    assert server.capabilities["wac"].evidence[0].fetched_at == detail.fetched_at
    text = dumped(detail, raw)
    assert secret not in text and "protectedSettings" not in text


async def test_secret_served_by_a_misbehaving_endpoint_is_dropped(make_sim):
    """ARM never returns protectedSettings; a fleet file can make the simulator do so. Depth drops them."""
    fleet = scenario_fleet()
    machine = vm("leaky")
    ext = extension(machine, "CustomScriptExtension", "Microsoft.Compute", "CustomScriptExtension")
    ext["properties"]["protectedSettings"] = {"commandToExecute": "net user admin S3cret!"}
    ext["properties"]["instanceView"]["substatuses"] = [{"protectedParameters": [{"name": "pw", "value": "S3cret!"}]}]
    fleet["resources"] += [machine, ext]
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn = await connection(running)
    try:
        detail = await fetch_detail(conn.transport, machine["id"])
    finally:
        await conn.close()
    assert [e["name"] for e in detail.extensions] == ["CustomScriptExtension"]
    text = dumped(detail, detail_to_raw(detail)[0])
    assert "S3cret!" not in text and "protectedSettings" not in text and "protectedParameters" not in text


# ---- errors ----------------------------------------------------------------------------------------


async def test_denied_subscription_and_missing_machine_raise_clear_errors(scenario_sim):
    conn = await connection(scenario_sim)
    try:
        with pytest.raises(ArmHttpError) as denied:
            await fetch_detail(conn.transport, vm_id("secret-01", sub=SUB_DENIED, rg="rg-x"))
        with pytest.raises(ArmHttpError) as missing:
            await fetch_detail(conn.transport, vm_id("no-such-vm"))
    finally:
        await conn.close()
    assert denied.value.status == 403 and denied.value.code == "AuthorizationFailed"
    assert "secret-01" in str(denied.value) and denied.value.request_id in str(denied.value)
    assert missing.value.status == 404 and "no-such-vm" in str(missing.value)


async def test_a_failing_source_is_recorded_and_the_rest_is_filled(make_sim, fleet, tmp_path):
    backup = attached(fleet, "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems")
    mid = next(m["id"] for m in machines(fleet, MACHINE_TYPES[0]) if m["id"].lower() in backup)
    running = make_sim(fleet, throttle=False, graph_quota=False, faults="500:1.0/POST")
    conn = await connection(running)
    conn.transport.sleep = no_sleep  # the transport retries the 500s; no need to wait for its backoff here
    try:
        detail = await fetch_detail(conn.transport, mid)
    finally:
        await conn.close()
    # POST reads: policy summarize and queryResults, backupStatus. Everything else arrived.
    assert set(detail.errors) == {Source.POLICY, Source.BACKUP}
    assert "failed (HTTP 500 InternalServerError), request id " in detail.errors[Source.BACKUP]
    assert detail.errors[Source.POLICY].startswith("queryResults: failed") and "; summarize: failed" in detail.errors[Source.POLICY]
    assert detail.machine and detail.extensions and detail.pricing and detail.backup is None and detail.policy is None

    now = datetime.now(UTC)
    raw, statuses, dcrs = detail_to_raw(detail)
    sub = mid.split("/")[2].lower()
    assert statuses[(sub, Source.BACKUP)].error == detail.errors[Source.BACKUP]
    assert statuses[(sub, Source.EXTENSIONS)].ok
    alone = build_server(raw, FleetContext(now=now, dcrs=dcrs, sources=statuses))
    assert alone.capabilities["backup"].state is State.UNKNOWN
    assert "HTTP 500" in alone.capabilities["backup"].unknown_reason
    assert alone.capabilities["extensions"].state is not State.UNKNOWN

    # Over the inventory's documents, the failed source keeps Resource Graph's answer and status.
    base = RawServer(machine={"id": mid}, backup_items=[backup[mid.lower()][0]])
    raw, statuses, _ = detail_to_raw(detail, base)
    assert (sub, Source.BACKUP) not in statuses and raw.backup_items == base.backup_items


async def test_deleted_rule_is_not_a_failed_read(make_sim):
    fleet = scenario_fleet()
    machine = next(r for r in fleet["resources"] if r["id"] == vm_id("web-00"))
    gone = f"/subscriptions/{SUB_A}/resourceGroups/rg-mon/providers/Microsoft.Insights/dataCollectionRules/dcr-deleted"
    fleet["resources"].append({
        "id": f"{machine['id']}/providers/Microsoft.Insights/dataCollectionRuleAssociations/assoc-1", "name": "assoc-1",
        "type": "Microsoft.Insights/dataCollectionRuleAssociations", "properties": {"dataCollectionRuleId": gone}})
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn = await connection(running)
    try:
        detail = await fetch_detail(conn.transport, machine["id"])
    finally:
        await conn.close()
    assert detail.errors == {} and detail.dcrs == {} and len(detail.dcr_associations) == 1
    raw, statuses, dcrs = detail_to_raw(detail)
    monitor = build_server(raw, FleetContext(now=datetime.now(UTC), dcrs=dcrs, sources=statuses)).capabilities["monitor"]
    assert monitor.state is State.ON and "dcr-deleted" in monitor.summary
