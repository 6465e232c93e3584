"""The details pane's service (wsam_tui/depth.py) against the simulator: the cached view is the inventory's
server with its evidence; the fresh view reads ARM over the cache, keeps cached evidence where a source
fails, says why, and raises when the machine itself cannot be read."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fleetbuilder import SUB_A, SUB_B, SUB_DENIED, TENANT, arc_id, extension, scenario_fleet, vm, vm_id
from wsam_tui.arm.transport import ArmHttpError
from wsam_tui.depth import ServerView, cached_view, fresh_view, subscription_cache
from wsam_tui.fleet.model import Source, State
from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.store.cache import Store

pytestmark = pytest.mark.asyncio

AMA = "AzureMonitorWindowsAgent"


async def connection(running):
    return await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))


async def refreshed(running, tmp_path):
    """A connection and an inventory whose store the simulator's fleet has filled."""
    conn = await connection(running)
    inventory = Inventory(Store(tmp_path / "store"))
    await inventory.refresh(conn)
    return conn, inventory


def handlers(server) -> set[str]:
    return {e.handler for e in server.extensions}


def dumped(view: ServerView) -> str:
    return json.dumps(dataclasses.asdict(view), default=str)


async def test_cached_view_is_the_inventorys_server_with_evidence(scenario_sim, tmp_path):
    conn, inventory = await refreshed(scenario_sim, tmp_path)
    await conn.close()
    now = datetime.now(UTC) + timedelta(minutes=5)
    servers = inventory.load(evidence=True, now=now).servers
    assert len(servers) == 17  # all but the denied subscription's VM
    fetched = {m.subscription: m.fetched_at for m in inventory.store.manifests() if m.source == "machines"}
    for server in servers:
        view = cached_view(inventory, server.id, now=now)
        assert view is not None and view.source == "cache" and view.detail is None
        assert view.server == server, server.name
        assert view.as_of is not None and view.as_of <= fetched[server.subscription_id.lower()]
        assert view.errors == {}
    web = cached_view(inventory, vm_id("web-00"), now=now).server
    assert web.tenant_id == TENANT
    assert any(ev.document_id.lower().endswith(f"/extensions/{AMA.lower()}")
               for ev in web.capabilities["monitor"].evidence)
    # The id as a user types it (case, trailing slash) finds the same server.
    assert cached_view(inventory, vm_id("WEB-00").upper() + "/", now=now).server == web
    assert cached_view(inventory, vm_id("no-such-vm"), now=now) is None
    assert cached_view(inventory, vm_id("secret-01", sub=SUB_DENIED, rg="rg-x"), now=now) is None
    assert cached_view(inventory, "not a resource id", now=now) is None


async def test_cached_view_equals_load_on_a_generated_fleet(make_sim, tmp_path):
    """Three subscriptions with every kind of document (rules shared across subscriptions, vault items,
    policy states, Defender pricings per subscription and per machine, File Sync servers)."""
    from wsam_tui.sim.fleetgen import generate_fleet

    running = make_sim(generate_fleet(size=90, seed=11, subscriptions=3), throttle=False, graph_quota=False)
    conn, inventory = await refreshed(running, tmp_path)
    await conn.close()
    now = datetime.now(UTC)
    servers = inventory.load(evidence=True, now=now).servers
    assert len(servers) == 90 and len({s.subscription_id for s in servers}) == 3
    evidence_sources = set()
    for server in servers:
        view = cached_view(inventory, server.id, now=now)
        assert view is not None and view.server == server, server.name
        evidence_sources |= {ev.source for c in view.server.capabilities.values() for ev in c.evidence}
    assert {Source.DCR_ASSOCIATIONS, Source.BACKUP, Source.SECURITY, Source.FILE_SYNC} <= evidence_sources
    # Rules are read fleet-wide: a cell that needs a rule's data flows is on somewhere.
    assert any(s.capabilities["sentinel"].state is State.ON for s in servers)
    assert any(s.capabilities["changetracking"].state is State.ON for s in servers)


async def test_a_rule_in_another_subscription_serves_the_machine(make_sim, tmp_path):
    fleet = scenario_fleet()
    mid = vm_id("web-00")
    rule = f"/subscriptions/{SUB_B}/resourceGroups/rg-mon/providers/Microsoft.Insights/dataCollectionRules/dcr-perf"
    fleet["resources"] += [
        {"id": rule, "name": "dcr-perf", "type": "Microsoft.Insights/dataCollectionRules", "location": "westeurope",
         "properties": {"dataFlows": [{"streams": ["Microsoft-InsightsMetrics"], "destinations": ["la"]}],
                        "destinations": {"logAnalytics": [{"name": "la", "workspaceResourceId": "/subscriptions/x/ws"}]}}},
        {"id": f"{mid}/providers/Microsoft.Insights/dataCollectionRuleAssociations/assoc-perf", "name": "assoc-perf",
         "type": "Microsoft.Insights/dataCollectionRuleAssociations", "properties": {"dataCollectionRuleId": rule}},
    ]
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn, inventory = await refreshed(running, tmp_path)
    await conn.close()
    now = datetime.now(UTC)
    loaded = next(s for s in inventory.load(evidence=True, now=now).servers if s.id == mid)
    monitor = cached_view(inventory, mid, now=now).server.capabilities["monitor"]
    assert monitor == loaded.capabilities["monitor"]
    # The rule's data flows are known (VM insights), though the rule lives in another subscription.
    assert monitor.state is State.ON and "VM insights (performance)" in monitor.summary, monitor


async def test_a_source_the_last_refresh_could_not_read_is_named_and_its_older_rows_stay(scenario_sim, tmp_path):
    conn, inventory = await refreshed(scenario_sim, tmp_path)
    await conn.close()
    before = cached_view(inventory, vm_id("web-01"))
    inventory.store.put_error(SUB_A, Source.PATCH.value, "HTTP 429 RateLimiting: \x1b]0;x\x07too many", tenant=TENANT)
    after = cached_view(inventory, vm_id("web-01"))
    assert after.errors == {Source.PATCH: "HTTP 429 RateLimiting: ␛]0;x␇too many"}  # controls shown as markers
    kept, was = after.server.capabilities["updates"], before.server.capabilities["updates"]
    assert (kept.state, kept.summary) == (was.state, was.summary) and kept.state is not State.UNKNOWN
    assert "stale" in kept.flags and "patch: last fetched" in kept.stale_reason and "too many" in kept.stale_reason


async def test_two_threads_asking_at_once_index_the_subscription_once(scenario_sim, tmp_path):
    """The console's cursor worker and a fresh read's cache read may ask at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    conn, inventory = await refreshed(scenario_sim, tmp_path)
    await conn.close()
    reads: list[tuple[str, str]] = []
    rows = inventory.store.rows

    def counted(subscription, source, *args):
        reads.append((subscription, source))
        time.sleep(0.01)  # a slow disk: the other threads arrive while the first is indexing
        return rows(subscription, source, *args)

    inventory.store.rows = counted
    with ThreadPoolExecutor(4) as pool:
        views = list(pool.map(lambda name: cached_view(inventory, vm_id(name)), ["web-00", "web-01", "web-02", "web-03"]))
    assert [v.server.name for v in views] == ["web-00", "web-01", "web-02", "web-03"]
    assert reads and len(reads) == len(set(reads)), reads


async def test_cached_view_follows_a_refresh(scenario_sim, tmp_path):
    """The subscription index is reused between views and read again once a refresh rewrote the store."""
    conn, inventory = await refreshed(scenario_sim, tmp_path)
    try:
        first = cached_view(inventory, vm_id("web-00"))
        cache = subscription_cache(inventory)
        index = cache.get(SUB_A)
        assert cache.get(SUB_A) is index, "unchanged manifests: the index is reused"
        await conn.transport.request("DELETE", f"{vm_id('web-00')}/extensions/{AMA}", params={"api-version": "2024-07-01"})
        await wait_until_gone(conn, vm_id("web-00"), AMA)
        assert f"Microsoft.Azure.Monitor.{AMA}" in handlers(cached_view(inventory, vm_id("web-00")).server)
        await inventory.refresh(conn)
    finally:
        await conn.close()
    after = cached_view(inventory, vm_id("web-00"))
    assert cache.get(SUB_A) is not index
    assert f"Microsoft.Azure.Monitor.{AMA}" not in handlers(after.server)
    assert after.as_of > first.as_of
    # Another subscription's server: its own index (only the last viewed subscription is kept).
    assert cached_view(inventory, vm_id("app-00", sub=SUB_B, rg="rg-app")).server.subscription_id == SUB_B


async def wait_until_gone(conn, machine_id: str, extension: str) -> None:
    """ARM deletes an extension through a long-running operation: wait until a read no longer lists it."""
    for _ in range(100):
        body = await conn.transport.get_json(f"{machine_id}/extensions", {"api-version": "2024-07-01"})
        if not any(e.get("name") == extension for e in body.get("value", [])):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{extension} was never removed")


async def test_fresh_view_shows_a_change_the_cache_does_not_have(scenario_sim, tmp_path):
    mid = vm_id("web-00")
    conn, inventory = await refreshed(scenario_sim, tmp_path)
    try:
        await conn.transport.request("DELETE", f"{mid}/extensions/{AMA}", params={"api-version": "2024-07-01"})
        await wait_until_gone(conn, mid, AMA)
        started = datetime.now(UTC)
        view = await fresh_view(inventory, conn.transport, mid)
    finally:
        await conn.close()
    cached = cached_view(inventory, mid)
    assert f"Microsoft.Azure.Monitor.{AMA}" in handlers(cached.server)
    assert cached.server.capabilities["monitor"].state is State.PARTIAL  # the agent, no rule

    assert view.source == "arm" and view.errors == {} and view.detail is not None
    assert view.as_of == view.detail.fetched_at and view.as_of >= started
    assert f"Microsoft.Azure.Monitor.{AMA}" not in handlers(view.server)
    monitor = view.server.capabilities["monitor"]
    assert monitor.state is State.OFF
    assert monitor.evidence and all(ev.fetched_at == view.as_of for ev in monitor.evidence if ev.source is Source.EXTENSIONS)
    # What ARM does not read in depth (site recovery, File Sync) keeps the cache's evidence and age.
    siterecovery = view.server.capabilities["siterecovery"]
    assert siterecovery.state is cached.server.capabilities["siterecovery"].state
    assert all(ev.fetched_at < view.as_of for ev in siterecovery.evidence)
    assert view.server.tenant_id == TENANT, "ARM's machine document has no tenant: the cache's is kept"


async def test_a_failing_source_keeps_the_cached_evidence_and_says_why(make_sim, tmp_path):
    """A data collection rule in a subscription the caller cannot read (403) and every POST read failing
    (500: policy summary and states, backupStatus): the view names each, the rest is fresh."""
    fleet = scenario_fleet()
    mid = vm_id("web-00")
    denied_rule = f"/subscriptions/{SUB_DENIED}/resourceGroups/rg-x/providers/Microsoft.Insights/dataCollectionRules/dcr-locked"
    fleet["resources"] += [
        {"id": denied_rule, "name": "dcr-locked", "type": "Microsoft.Insights/dataCollectionRules", "location": "westeurope",
         "properties": {"dataFlows": [], "destinations": {}}},
        {"id": f"{mid}/providers/Microsoft.Insights/dataCollectionRuleAssociations/assoc-locked", "name": "assoc-locked",
         "type": "Microsoft.Insights/dataCollectionRuleAssociations", "properties": {"dataCollectionRuleId": denied_rule}},
    ]
    healthy = make_sim(fleet, throttle=False, graph_quota=False)
    conn, inventory = await refreshed(healthy, tmp_path)
    await conn.close()
    cached = cached_view(inventory, mid)
    faulty = make_sim(fleet, throttle=False, graph_quota=False, faults="500:1.0/POST")
    conn = await connection(faulty)

    async def no_sleep(_seconds: float) -> None:
        return None

    conn.transport.sleep = no_sleep  # the transport retries the 500s; no need to wait for its backoff
    try:
        view = await fresh_view(inventory, conn.transport, mid)
    finally:
        await conn.close()
    assert set(view.errors) == {Source.DCRS, Source.POLICY, Source.BACKUP}
    assert "dcr-locked: no access (403 AuthorizationFailed)" in view.errors[Source.DCRS]
    assert "failed (HTTP 500 InternalServerError), request id " in view.errors[Source.BACKUP]
    backup, fresh_ext = view.server.capabilities["backup"], view.server.capabilities["extensions"]
    assert backup.state is cached.server.capabilities["backup"].state is not State.UNKNOWN
    assert backup.evidence == cached.server.capabilities["backup"].evidence, "the cache's evidence, with its age"
    assert all(ev.fetched_at == cached.as_of or ev.fetched_at < view.as_of for ev in backup.evidence)
    assert fresh_ext.evidence and all(ev.fetched_at == view.as_of for ev in fresh_ext.evidence)
    monitor = view.server.capabilities["monitor"]
    assert monitor.state is not State.UNKNOWN
    assert any("assoc-locked" in ev.document_id for ev in monitor.evidence)


async def test_a_machine_that_cannot_be_read_raises_and_the_cache_still_answers(scenario_sim, tmp_path):
    conn, inventory = await refreshed(scenario_sim, tmp_path)
    gone = arc_id("fs-03")
    scenario_sim.sim.state.delete(gone)  # deleted after the refresh: the cache still has it
    try:
        with pytest.raises(ArmHttpError) as missing:
            await fresh_view(inventory, conn.transport, gone)
        with pytest.raises(ArmHttpError) as denied:
            await fresh_view(inventory, conn.transport, vm_id("secret-01", sub=SUB_DENIED, rg="rg-x"))
    finally:
        await conn.close()
    assert missing.value.status == 404 and "fs-03" in str(missing.value)
    assert denied.value.status == 403 and denied.value.code == "AuthorizationFailed"
    assert cached_view(inventory, gone).server.name == "fs-03"


async def test_a_server_the_cache_does_not_hold(make_sim, tmp_path):
    """Created after the refresh: its subscription's lists (site recovery …) stand as read then, with their
    age. With an empty store, depth stands alone and what it does not read is "not fetched"."""
    fleet = scenario_fleet()
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn, inventory = await refreshed(running, tmp_path)
    empty = Inventory(Store(tmp_path / "empty"))
    try:
        running.sim.state.put(vm("web-new"))
        view = await fresh_view(inventory, conn.transport, vm_id("web-new"))
        alone = await fresh_view(empty, conn.transport, vm_id("web-new"))
    finally:
        await conn.close()
    assert cached_view(inventory, vm_id("web-new")) is None and cached_view(empty, vm_id("web-new")) is None
    assert view.server.name == "web-new" and view.server.tenant_id == TENANT
    siterecovery = view.server.capabilities["siterecovery"]
    assert siterecovery.state is State.OFF and all(ev.fetched_at < view.as_of for ev in siterecovery.evidence)
    assert alone.server.name == "web-new" and alone.server.tenant_id == ""
    assert alone.server.capabilities["siterecovery"].state is State.UNKNOWN
    assert alone.server.capabilities["siterecovery"].unknown_reason == "siterecovery: not fetched"
    for view_ in (view, alone):
        assert view_.server.capabilities["extensions"].state is State.OFF  # read fresh: none installed


async def test_a_server_created_since_the_refresh_still_knows_the_sentinel_workspaces(make_sim, tmp_path):
    """Sentinel is on when security events flow to a workspace with the Sentinel solution: ARM's depth
    reads give the rule, only the cache knows which workspaces have Sentinel."""
    fleet = scenario_fleet()
    mon = f"/subscriptions/{SUB_B}/resourceGroups/rg-sec"
    ws = f"{mon}/providers/Microsoft.OperationalInsights/workspaces/law-sec"
    rule = f"{mon}/providers/Microsoft.Insights/dataCollectionRules/dcr-security"
    fleet["resources"] += [
        {"id": ws, "name": "law-sec", "type": "Microsoft.OperationalInsights/workspaces", "location": "westeurope",
         "properties": {"provisioningState": "Succeeded"}},
        {"id": f"{mon}/providers/Microsoft.OperationsManagement/solutions/SecurityInsights(law-sec)",
         "name": "SecurityInsights(law-sec)", "type": "Microsoft.OperationsManagement/solutions", "location": "westeurope",
         "plan": {"name": "SecurityInsights(law-sec)", "publisher": "Microsoft", "product": "OMSGallery/SecurityInsights"},
         "properties": {"workspaceResourceId": ws, "provisioningState": "Succeeded"}},
        {"id": rule, "name": "dcr-security", "type": "Microsoft.Insights/dataCollectionRules", "location": "westeurope",
         "properties": {"dataFlows": [{"streams": ["Microsoft-SecurityEvent"], "destinations": ["sec"]}],
                        "destinations": {"logAnalytics": [{"name": "sec", "workspaceResourceId": ws}]}}},
    ]
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn, inventory = await refreshed(running, tmp_path)
    newcomer = vm("web-new")
    try:
        running.sim.state.put(newcomer)
        running.sim.state.put(extension(newcomer, AMA, "Microsoft.Azure.Monitor", AMA, version="1.22"))
        running.sim.state.put({"id": f"{newcomer['id']}/providers/Microsoft.Insights/dataCollectionRuleAssociations/a1",
                               "name": "a1", "type": "Microsoft.Insights/dataCollectionRuleAssociations",
                               "properties": {"dataCollectionRuleId": rule}})
        view = await fresh_view(inventory, conn.transport, newcomer["id"])
    finally:
        await conn.close()
    sentinel = view.server.capabilities["sentinel"]
    assert sentinel.state is State.ON, sentinel
    assert "Sentinel workspace law-sec" in sentinel.summary


async def test_no_secret_reaches_a_view(scenario_sim, tmp_path):
    mid = vm_id("web-03")
    secret = "hunter2-do-not-show"
    conn, inventory = await refreshed(scenario_sim, tmp_path)
    try:
        await conn.transport.request("PUT", f"{mid}/extensions/CustomScriptExtension", params={"api-version": "2024-07-01"},
                                     json_body={"location": "westeurope", "properties": {
                                         "publisher": "Microsoft.Compute", "type": "CustomScriptExtension",
                                         "typeHandlerVersion": "1.10", "settings": {"fileUris": []},
                                         "protectedSettings": {"commandToExecute": f"net user admin {secret}"}}})
        view = await fresh_view(inventory, conn.transport, mid)
        await inventory.refresh(conn)
    finally:
        await conn.close()
    assert "Microsoft.Compute.CustomScriptExtension" in handlers(view.server)
    cached = cached_view(inventory, mid)
    assert "Microsoft.Compute.CustomScriptExtension" in handlers(cached.server)
    for text in (dumped(view), dumped(cached)):
        assert secret not in text and "protectedSettings" not in text
