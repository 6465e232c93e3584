"""`:kql` (wsam_tui/kqlquery.py): the cache answers like the simulator's Resource Graph for what it holds;
online through the simulator; errors with positions and request ids; hostile text stays data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.fleetbuilder import SUB_A, SUB_B, SUB_DENIED, scenario_fleet, vm
from tests.test_multitenant import (
    GRAPH_PATH,
    TENANT_TOKEN_PREFIX,
    Sent,
    TenantCredential,
    connect_with,
    home_tenant,
    machine_ids,
    tenants_of,
    two_tenant_fleet,
)
from wsam_tui.arm.transport import ArmHttpError
from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.kql import KqlError
from wsam_tui.kqlquery import (
    OFFLINE_TABLES,
    SOURCE_CACHE,
    SOURCE_GRAPH,
    GraphQueryError,
    offline_tables,
    run_offline,
    run_online,
)
from wsam_tui.store.cache import Store

pytestmark = pytest.mark.asyncio

VISIBLE = [SUB_A, SUB_B]


async def connection(running):
    return await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))


async def filled(running, directory):
    """A store filled by Inventory.refresh from the simulator, and an open connection to it."""
    conn = await connection(running)
    store = Store(directory)
    await Inventory(store).refresh(conn)
    return store, conn


def canonical(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


async def same_both_ways(store, conn, query: str, subscriptions=VISIBLE) -> list[dict]:
    online = await run_online(conn.transport, query, subscriptions)
    offline = run_offline(store, query, subscriptions=subscriptions)
    assert online.source == SOURCE_GRAPH and offline.source == SOURCE_CACHE
    assert canonical(offline.rows) == canonical(online.rows), query
    assert [n for n, _ in offline.columns] == [n for n, _ in online.columns], query
    assert online.rows, f"the comparison must not be vacuous: {query}"
    return online.rows


# Queries whose answers the cache holds in full (docs/kql.md: what the offline tables have).
SCENARIO_QUERIES = [
    "resources | where type =~ 'microsoft.hybridcompute/machines' | summarize count() by location",
    "resources | where type endswith '/extensions' | summarize count() by name",
    "resources | where type =~ 'microsoft.hybridcompute/machines/extensions'"
    " | project id, name, location, resourceGroup, subscriptionId, publisher = tostring(properties.publisher),"
    " version = tostring(properties.typeHandlerVersion), state = tostring(properties.provisioningState)",
    "resources | where type =~ 'microsoft.compute/virtualmachines'"
    " | project name, resourceGroup, subscriptionId, tenantId, env = tostring(tags.env),"
    " power = tostring(properties.extended.instanceView.powerState.code), size = tostring(properties.hardwareProfile.vmSize)",
    "resources | where type =~ 'microsoft.hybridcompute/machines' | summarize n = count() by status = tostring(properties.status)",
    "resources | summarize count() by type, subscriptionId",
]


async def test_offline_tables_answer_like_resource_graph(scenario_sim, tmp_path):
    store, conn = await filled(scenario_sim, tmp_path / "cache")
    try:
        for query in SCENARIO_QUERIES:
            await same_both_ways(store, conn, query)
        counts = {r["location"]: r["count_"] for r in await same_both_ways(store, conn, SCENARIO_QUERIES[0])}
        assert counts == {"westeurope": 7}
        by_name = {r["name"]: r["count_"] for r in await same_both_ways(store, conn, SCENARIO_QUERIES[1])}
        assert by_name == {"AzureMonitorWindowsAgent": 2, "MDE.Windows": 1}
    finally:
        await conn.close()


async def test_offline_tables_of_a_generated_fleet_answer_like_resource_graph(make_sim, tmp_path):
    from wsam_tui.sim.fleetgen import generate_fleet

    running = make_sim(generate_fleet(size=80, seed=11), throttle=False, graph_quota=False)
    store, conn = await filled(running, tmp_path / "cache")
    try:
        queries = [
            "patchassessmentresources | where type endswith '/patchassessmentresults'"
            " | project id, name, type, subscriptionId, resourceGroup, properties",
            "guestconfigurationresources | summarize count() by status = tostring(properties.complianceStatus), name",
            "policyresources | summarize count() by state = tostring(properties.complianceState), type",
            "securityresources | where type =~ 'microsoft.security/pricings'"
            " | project id, name, subscriptionId, tier = tostring(properties.pricingTier)",
            "securityresources | where type =~ 'microsoft.security/assessments' and tostring(properties.status.code) =~ 'Unhealthy'"
            " | summarize count() by name = tostring(properties.displayName)",
            "recoveryservicesresources | summarize count() by type, state = tostring(properties.protectionState)",
            "insightsresources | summarize count() by rule = tostring(properties.dataCollectionRuleId)",
            "maintenanceresources | project id, type, config = tostring(properties.maintenanceConfigurationId)",
            "resources | where type =~ 'microsoft.insights/datacollectionrules' | project id, name, type, location = 1",
            "resources | where type endswith '/extensions' | summarize count() by tostring(properties.type), type",
            "resources | where type =~ 'microsoft.compute/virtualmachines' or type =~ 'microsoft.hybridcompute/machines'"
            " | summarize count() by subscriptionId, tenantId, resourceGroup",
        ]
        subs = [s["subscriptionId"] for s in (store.get_meta("subscriptions") or [])]
        for query in queries:
            await same_both_ways(store, conn, query, subs)
    finally:
        await conn.close()


async def test_offline_answer_has_its_age_and_truncates(scenario_sim, tmp_path):
    store, conn = await filled(scenario_sim, tmp_path / "cache")
    await conn.close()
    before = datetime.now(UTC)
    answer = run_offline(store, "resources | project id, name", limit=5)
    assert answer.truncated and len(answer.rows) == 5 and answer.total is not None and answer.total > 5
    assert answer.as_of is not None and before - timedelta(minutes=5) < answer.as_of <= before
    whole = run_offline(store, "resources | count")
    assert not whole.truncated and whole.rows == [{"Count": answer.total}]
    one_sub = run_offline(store, "resources | summarize by subscriptionId", subscriptions=[SUB_B])
    assert one_sub.rows == [{"subscriptionId": SUB_B}]
    assert any(SUB_DENIED in n and "AuthorizationFailed" in n for n in run_offline(store, "resources | count").notes), \
        "what the cache lacks is said"


async def test_online_pages_up_to_the_limit_and_says_truncated(scenario_sim):
    # scenario_sim pages ARM lists by 4; Resource Graph pages by the $top the client asks for.
    conn = await connection(scenario_sim)
    try:
        query = "resources | project id | order by id asc"
        everything = await run_online(conn.transport, query, VISIBLE)
        assert not everything.truncated and everything.total == len(everything.rows) > 10
        few = await run_online(conn.transport, query, VISIBLE, limit=7)
        assert few.truncated and few.rows == everything.rows[:7] and few.total == everything.total
        assert few.columns == [("id", "string")]
    finally:
        await conn.close()


async def test_online_paging_follows_skip_tokens(make_sim, tmp_path, monkeypatch):
    import wsam_tui.kqlquery as kqlquery

    monkeypatch.setattr(kqlquery, "PAGE", 3)  # pages of 3: the 7 VMs of SUB_A take 3 requests
    fleet = scenario_fleet()
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn = await connection(running)
    try:
        since = len(running.sim.log.entries)
        answer = await run_online(conn.transport, "resources | where type =~ 'microsoft.compute/virtualmachines'"
                                  " | project name | order by name asc", [SUB_A], limit=10)
        posts = [e for e in running.sim.log.entries[since:] if "resourcegraph" in str(e).lower()]
        assert [r["name"] for r in answer.rows] == [*(f"web-{i:02d}" for i in range(6)), "web-stopped"]
        assert not answer.truncated
        assert len(posts) == 3
    finally:
        await conn.close()


async def test_syntax_error_has_a_position_offline_and_online(scenario_sim, tmp_path):
    store, conn = await filled(scenario_sim, tmp_path / "cache")
    query = "resources\n| where name == "
    try:
        with pytest.raises(KqlError) as offline:
            run_offline(store, query)
        assert offline.value.code == "ParserFailure" and (offline.value.line, offline.value.column) == (2, 17)
        with pytest.raises(GraphQueryError) as online:
            await run_online(conn.transport, query, VISIBLE)
        assert online.value.code == "ParserFailure"
        assert (online.value.line, online.value.column) == (2, 17)
        assert online.value.position == len(query)
        assert online.value.request_id and online.value.request_id in str(online.value)
        assert "expected an expression" in online.value.message
    finally:
        await conn.close()


async def test_unknown_table_offline_names_the_tables_the_cache_has(tmp_path):
    store = Store(tmp_path / "empty")
    with pytest.raises(KqlError) as info:
        run_offline(store, "patchinstallationresources | count")
    assert info.value.code == "UnknownTable"
    assert all(t in str(info.value) for t in OFFLINE_TABLES)
    assert run_offline(store, "resources | count").rows == [{"Count": 0}], "an empty cache is an empty answer"
    with pytest.raises(ValueError, match="limit"):
        run_offline(store, "resources", limit=0)


async def test_online_refusal_other_than_the_query_is_an_arm_error(scenario_sim, tmp_path):
    from wsam_tui.arm.transport import ArmHttpError

    conn = await connection(scenario_sim)
    try:
        with pytest.raises(ArmHttpError) as info:
            await run_online(conn.transport, "resources | count", [SUB_DENIED])
        assert info.value.status == 403 and not isinstance(info.value, KqlError)
        assert info.value.request_id and "AuthorizationFailed" in info.value.describe()
    finally:
        await conn.close()


HOSTILE = "[@click=app.quit]srv[/]\x1b]0;PWNED\x07\x1b[31m-red"


async def test_keys_that_clean_alike_are_all_kept_in_the_header_and_the_rows():
    """A raw ESC and a literal ␛ both show as ␛: the second gets " (2)", in the header and in every row."""
    from wsam_tui.kqlquery import SOURCE_CACHE, _answer

    columns = [("k\x1b", "string"), ("k␛", "string")]
    rows = [{"k␛": "picture", "k\x1b": "escape"}, {"k␛": {"t\x07": 1, "t␇": 2}}]
    answer = _answer(columns, rows, SOURCE_CACHE, None, 10, total=2)
    assert [n for n, _ in answer.columns] == ["k␛", "k␛ (2)"]
    assert answer.rows[0] == {"k␛": "escape", "k␛ (2)": "picture"}
    assert answer.rows[1] == {"k␛": None, "k␛ (2)": {"t␇": 1, "t␇ (2)": 2}}


async def test_hostile_strings_stay_data(make_sim, tmp_path):
    fleet = scenario_fleet()
    fleet["resources"].append(vm("evil", tags={"env": HOSTILE, HOSTILE: "key"}))
    fleet["resources"][-1]["name"] = HOSTILE
    running = make_sim(fleet, throttle=False, graph_quota=False)
    store, conn = await filled(running, tmp_path / "cache")
    try:
        query = "resources | where name startswith '[@click' | project name, env = tostring(tags.env), tags"
        for answer in (run_offline(store, query), await run_online(conn.transport, query, VISIBLE)):
            assert len(answer.rows) == 1
            row = answer.rows[0]
            shown = "[@click=app.quit]srv[/]␛]0;PWNED␇␛[31m-red"
            assert row["name"] == row["env"] == shown, "controls are shown as markers, brackets kept"
            assert list(row["tags"]) == ["env", shown], "dict keys are cleaned too"
        # Hostile text inside the query is a string literal like any other.
        answer = run_offline(store, "resources | where name == '[/]' | project x = '[@click=app.quit]'")
        assert answer.rows == []
        names = {r["name"] for r in offline_tables(store)["resources"]}
        assert HOSTILE in names, "the tables keep the raw value, so queries match what ARG matches"
    finally:
        await conn.close()


async def test_a_malformed_resource_graph_answer_is_a_clear_error(make_sim):
    from wsam_tui.arm.transport import ArmHttpError

    running = make_sim(scenario_fleet(), throttle=False, graph_quota=False, faults="malformed:1/POST")
    conn = await connection(running)

    async def no_sleep(_seconds: float) -> None:
        pass

    conn.transport.sleep = no_sleep  # the backoff between attempts, skipped
    try:
        with pytest.raises(ArmHttpError) as info:
            await run_online(conn.transport, "resources | count", VISIBLE)
        assert info.value.code == "MalformedResponse"
        sent = [e for e in running.sim.log.entries if e.get("fault") == "malformed"]
        assert len(sent) == conn.transport.retry.max_attempts, "a query is a read: retried, within the same attempts"
    finally:
        await conn.close()


# ---- many tenants: each tenant's subscriptions with that tenant's token -------------------------------

MACHINES_QUERY = ("resources | where type =~ 'microsoft.compute/virtualmachines' or type =~ "
                  "'microsoft.hybridcompute/machines' | project id")


async def test_online_asks_each_tenant_with_its_own_token_and_puts_the_answers_together(make_sim):
    """The simulator gives a token one tenant (tokensPerTenant): one query with the home tenant's token over
    both tenants' subscriptions is refused. Each tenant's batch goes with its own token; every machine of both
    tenants is in the answer; the answer says it came in parts."""
    fleet = two_tenant_fleet()
    tenant_of = tenants_of(fleet)
    running = make_sim(fleet, throttle=False, graph_quota=False)
    sent = Sent()
    conn = connect_with(running, TenantCredential(home_tenant(fleet)), sent)
    try:  # no refresh in this connection: the tenants come from the cache's subscriptions
        answer = await run_online(conn.transport, MACHINES_QUERY, sorted(tenant_of), tenants=tenant_of)
    finally:
        await conn.close()
    assert {r["id"].lower() for r in answer.rows} == machine_ids(fleet)
    assert answer.total == len(answer.rows) and not answer.truncated
    assert any("asked in 2 parts" in n for n in answer.notes), answer.notes
    queries = [(token, body) for path, token, body in sent.requests if path.lower() == GRAPH_PATH.lower()]
    assert len(queries) == 2
    for token, body in queries:
        tenants = {tenant_of[s.lower()] for s in body["subscriptions"]}
        assert len(tenants) == 1 and token == TENANT_TOKEN_PREFIX + tenants.pop()


async def test_online_a_refusing_tenant_is_named_and_the_others_answer(make_sim):
    fleet = two_tenant_fleet()
    tenant_of = tenants_of(fleet)
    home = home_tenant(fleet)
    other = (set(tenant_of.values()) - {home}).pop()
    home_subs = {s for s, t in tenant_of.items() if t == home}
    running = make_sim(fleet, throttle=False, graph_quota=False)
    conn = connect_with(running, TenantCredential(home, refuse={other}))
    try:
        answer = await run_online(conn.transport, MACHINES_QUERY, sorted(tenant_of), tenants=tenant_of)
        assert {r["id"].lower() for r in answer.rows} == machine_ids(fleet, home_subs)
        assert len(answer.notes) == 1 and f"tenant {other}" in answer.notes[0]
        assert "multi-factor" in answer.notes[0] and f"az login --tenant {other}" in answer.notes[0]
    finally:
        await conn.close()
    # every tenant refusing: the query fails, with the first refusal
    conn = connect_with(running, TenantCredential(home, refuse={home, other}))
    try:
        with pytest.raises(ArmHttpError, match="no token for tenant"):
            await run_online(conn.transport, MACHINES_QUERY, sorted(tenant_of), tenants=tenant_of)
    finally:
        await conn.close()


async def test_online_a_subscription_resource_graph_refuses_leaves_its_batch(scenario_sim):
    """The scenario's third subscription refuses access: named among the others, it is left out and said;
    the others answer in full."""
    conn = await connection(scenario_sim)
    try:
        both = await run_online(conn.transport, "resources | project id", VISIBLE)
        answer = await run_online(conn.transport, "resources | project id", [*VISIBLE, SUB_DENIED])
    finally:
        await conn.close()
    assert canonical(answer.rows) == canonical(both.rows) and answer.rows
    assert len(answer.notes) == 1 and SUB_DENIED in answer.notes[0] and "403" in answer.notes[0]
