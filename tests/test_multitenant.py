"""Many tenants in one view: a token per tenant, Resource Graph batches per tenant, a failing tenant costs
only its own subscriptions.

The simulator's ``simulation.access.tokensPerTenant`` knob makes it behave as Azure does: a token is
issued for one tenant (test tokens read ``wsam-tenant:<tenantId>``), ``GET /subscriptions`` lists that
tenant's subscriptions only, and a request for another tenant's subscription answers 401
InvalidAuthenticationTokenTenant. So a console that sent one token everywhere fails these tests.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import ssl
import time
from urllib.parse import urlparse

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from wsam_tui.arm.auth import StaticTokenCredential, TokenCache
from wsam_tui.arm.graph import BATCH, GRAPH_PATH, tenant_batches
from wsam_tui.arm.transport import ArmHttpError, ArmTransport
from wsam_tui.fleet.model import State
from wsam_tui.inventory import Connection, Inventory
from wsam_tui.sim.fleetfile import FleetFileError, validate_fleet
from wsam_tui.sim.fleetgen import generate_fleet
from wsam_tui.sim.server import TENANT_TOKEN_PREFIX
from wsam_tui.store.cache import Store

MACHINE_TYPES = ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")


def two_tenant_fleet() -> dict:
    fleet = generate_fleet(40, seed=23, subscriptions=4, tenants=2)
    fleet.setdefault("simulation", {}).setdefault("access", {})["tokensPerTenant"] = True
    return fleet


def tenants_of(fleet: dict) -> dict[str, str]:
    """lower-case subscription id -> tenant id."""
    return {s["subscriptionId"].lower(): s["tenantId"].lower() for s in fleet["subscriptions"]}


def machine_ids(fleet: dict, subscriptions: set[str] | None = None) -> set[str]:
    return {r["id"].lower() for r in fleet["resources"] if r["type"].lower() in MACHINE_TYPES
            and (subscriptions is None or r["id"].split("/")[2].lower() in subscriptions)}


class TenantCredential:
    """Issues ``wsam-tenant:<tenant>`` tokens (the home tenant's when none is asked for), records every tenant
    asked for, and refuses the tenants in ``refuse`` as Entra ID does when MFA is required."""

    def __init__(self, home: str, refuse: set[str] = frozenset()) -> None:
        self.home, self.refuse = home, refuse
        self.asked: list[str | None] = []

    async def get_token(self, *scopes: str, tenant_id: str | None = None, **kwargs) -> AccessToken:
        self.asked.append(tenant_id)
        tenant = tenant_id or self.home
        if tenant in self.refuse:
            raise ClientAuthenticationError(f"AADSTS50076: you must use multi-factor authentication to access tenant {tenant}")
        return AccessToken(f"{TENANT_TOKEN_PREFIX}{tenant}", int(time.time()) + 3600)

    async def close(self) -> None:
        pass


class Sent:
    """Every request the transport sent: (path, bearer token, Resource Graph body or None)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict | None]] = []

    async def __call__(self, request: httpx.Request) -> None:
        body = json.loads(request.content) if request.content else None
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.requests.append((urlparse(str(request.url)).path, token, body))


def connect_with(running, credential, sent: Sent | None = None) -> Connection:
    verify = ssl.create_default_context(cafile=str(running.ca_path))
    client = httpx.AsyncClient(verify=verify, event_hooks={"request": [sent]} if sent else {})
    transport = ArmTransport(running.base_url, TokenCache(credential, "https://management.azure.com/.default"),
                             verify=verify, client=client)
    return Connection(transport, running.base_url, "https://management.azure.com/.default", credential, "test")


def refresh(running, credential, cache, *, graph: bool = True, sent: Sent | None = None):
    async def go():
        conn = connect_with(running, credential, sent)
        try:
            return await Inventory(Store(cache)).refresh(conn, graph=graph)
        finally:
            await conn.close()

    return asyncio.run(go())


def failures(report) -> list[tuple[str, str, str]]:
    """The report's failures but the one the ARM fallback always has (no ARM read of Arc patch assessments)."""
    return [f for f in report.failures if "NotAvailableThroughArm" not in f[2]]


def fully_known(servers, graph: bool) -> bool:
    """No unknown cell but in-guest probes (and, through ARM, those that need Arc patch assessments)."""
    return not graph or not any(c.state is State.UNKNOWN for s in servers for c in s.capabilities.values()
                                if c.capability != "inguest")


def home_tenant(fleet: dict) -> str:
    return fleet["subscriptions"][0]["tenantId"].lower()


@pytest.mark.parametrize("graph", [True, False], ids=["resource-graph", "arm-fallback"])
def test_two_tenants_refresh_completely_each_request_with_its_tenants_token(make_sim, tmp_path, graph):
    fleet = two_tenant_fleet()
    tenant_of = tenants_of(fleet)
    assert len(set(tenant_of.values())) == 2
    running = make_sim(fleet, throttle=False, graph_quota=False, page_size=7)
    credential = TenantCredential(home_tenant(fleet))
    sent = Sent()
    report = refresh(running, credential, tmp_path / "cache", graph=graph, sent=sent)

    assert not failures(report), report.failures[:3]
    assert not report.tenant_failures
    assert {s["subscriptionId"].lower() for s in report.subscriptions} == set(tenant_of), \
        "the other tenant's subscriptions are listed with its own token"
    other = (set(tenant_of.values()) - {home_tenant(fleet)}).pop()
    assert other in credential.asked
    servers = Inventory(Store(tmp_path / "cache")).load().servers
    assert {s.id.lower() for s in servers} == machine_ids(fleet)
    assert {s.tenant_id.lower() for s in servers} == set(tenant_of.values())

    per_sub = [(p, t) for p, t, _ in sent.requests if p.lower().startswith("/subscriptions/")]
    assert bool(per_sub) is not graph  # the fallback reads per subscription; Resource Graph needs no such read
    for path, token in per_sub:
        assert token == TENANT_TOKEN_PREFIX + tenant_of[path.split("/")[2].lower()], path
    queries = [(t, b) for p, t, b in sent.requests if p.lower() == GRAPH_PATH.lower()]
    assert bool(queries) is graph
    for token, body in queries:
        batch_tenants = {tenant_of[s.lower()] for s in body["subscriptions"]}
        assert len(batch_tenants) == 1, "a Resource Graph query never mixes tenants"
        assert token == TENANT_TOKEN_PREFIX + batch_tenants.pop()


@pytest.mark.parametrize("graph", [True, False], ids=["resource-graph", "arm-fallback"])
def test_a_tenant_without_a_token_costs_only_its_subscriptions(make_sim, tmp_path, graph):
    fleet = two_tenant_fleet()
    tenant_of = tenants_of(fleet)
    home = home_tenant(fleet)
    other = (set(tenant_of.values()) - {home}).pop()
    home_subs = {s for s, t in tenant_of.items() if t == home}
    other_subs = set(tenant_of) - home_subs
    running = make_sim(fleet, throttle=False, graph_quota=False, page_size=7)
    cache = tmp_path / "cache"

    # First look: the refused tenant's subscriptions cannot even be listed; the report says which tenant and how to fix it.
    refusing = TenantCredential(home, refuse={other})
    report = refresh(running, refusing, cache, graph=graph)
    assert set(report.tenant_failures) == {other}
    assert "multi-factor" in report.tenant_failures[other] and f"az login --tenant {other}" in report.tenant_failures[other]
    assert any(other in sub and other in message for sub, _, message in failures(report))
    assert refusing.asked.count(other) == 1, "a refused tenant is asked once, not once per request"
    servers = Inventory(Store(cache)).load().servers
    assert {s.id.lower() for s in servers} == machine_ids(fleet, home_subs), "the home tenant's servers are intact"
    assert fully_known(servers, graph)

    # Then both tenants answer, and then the other tenant refuses again: its known subscriptions fail, each
    # naming the tenant, with their last known rows kept; the home tenant's are refreshed in full.
    refresh(running, TenantCredential(home), cache, graph=graph)
    report = refresh(running, refusing, cache, graph=graph)
    assert {sub.lower() for sub, _, _ in failures(report)} == other_subs
    assert all(f"no token for tenant {other}" in message for _, _, message in failures(report))
    manifests = Store(cache).manifests(sorted(other_subs))
    assert manifests and all(m.error and other in m.error for m in manifests)
    assert not any(m.error and "token" in m.error for m in Store(cache).manifests(sorted(home_subs)))
    servers = Inventory(Store(cache)).load().servers
    assert {s.id.lower() for s in servers} == machine_ids(fleet), "last known state of the refused tenant is kept"
    home_servers = [s for s in servers if s.subscription_id.lower() in home_subs]
    assert home_servers and fully_known(home_servers, graph)


def test_one_token_everywhere_is_refused_for_the_other_tenant(make_sim, tmp_path):
    """The knob is what makes the tests above able to fail: the home tenant's token does not read the other
    tenant's subscriptions, and the error is ARM's."""
    fleet = two_tenant_fleet()
    tenant_of = tenants_of(fleet)
    home = home_tenant(fleet)
    other_sub = next(s for s, t in tenant_of.items() if t != home)
    running = make_sim(fleet, throttle=False, graph_quota=False)

    async def go():
        conn = connect_with(running, StaticTokenCredential(TENANT_TOKEN_PREFIX + home))
        try:
            resp = await conn.transport.client.get(f"{running.base_url}/subscriptions/{other_sub}/providers/"
                                                   "Microsoft.Compute/virtualMachines?api-version=2024-07-01",
                                                   headers={"Authorization": f"Bearer {TENANT_TOKEN_PREFIX}{home}"})
            listed = [p async for p in conn.transport.paged("/subscriptions", {"api-version": "2022-12-01"})]
        finally:
            await conn.close()
        return resp, [s["subscriptionId"].lower() for page in listed for s in page]

    resp, listed = asyncio.run(go())
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["code"] == "InvalidAuthenticationTokenTenant"
    assert tenant_of[other_sub] in error["message"]
    assert set(listed) == {s for s, t in tenant_of.items() if t == home}, "a token lists its own tenant's subscriptions"


def test_lighthouse_delegated_subscription_goes_with_the_managing_tenants_token(make_sim, tmp_path):
    fleet = two_tenant_fleet()
    home = home_tenant(fleet)
    other = next(s["tenantId"].lower() for s in fleet["subscriptions"] if s["tenantId"].lower() != home)
    delegated = next(s for s in fleet["subscriptions"] if s["tenantId"].lower() == other)
    delegated["managedByTenants"] = [{"tenantId": home}]
    running = make_sim(fleet, throttle=False, graph_quota=False, page_size=7)
    credential = TenantCredential(home, refuse={other})  # the customer's tenant is never signed in to
    sent = Sent()
    report = refresh(running, credential, tmp_path / "cache", sent=sent)
    sub = delegated["subscriptionId"].lower()
    assert sub not in {s.lower() for s, _, _ in failures(report)}, "the customer tenant's refusal is not the delegated subscription's"
    listed = {s["subscriptionId"].lower(): s for s in report.subscriptions}
    assert listed[sub]["tenantId"].lower() == home and listed[sub]["homeTenantId"].lower() == other
    assert all(t == TENANT_TOKEN_PREFIX + home for p, t, _ in sent.requests if f"/subscriptions/{sub}" in p.lower())
    servers = Inventory(Store(tmp_path / "cache")).load().servers
    assert machine_ids(fleet, {sub}) <= {s.id.lower() for s in servers}


def test_resource_graph_batches_hold_one_tenant_and_at_most_a_batch():
    subs = [f"s{i:04d}" for i in range(450)]
    tenant_of = {s: ("t1" if i % 3 else "t2") for i, s in enumerate(subs)}
    batches = tenant_batches(subs, tenant_of)
    assert sorted(s for _, b in batches for s in b) == sorted(subs)
    for tenant, batch in batches:
        assert 0 < len(batch) <= BATCH
        assert {tenant_of[s] for s in batch} == {tenant}
    assert [t for t, _ in batches] == ["t2", "t1", "t1"]  # 150 of t2, 300 of t1 in two
    assert tenant_batches(["x", "y"], {}) == [(None, ("x", "y"))], "no known tenant: one batch, the home token"


def test_tokens_are_cached_per_tenant_and_never_shared():
    credential = TenantCredential("home")
    cache = TokenCache(credential, "scope")

    async def go():
        return [await cache(), await cache("t1"), await cache("T1"), await cache(), await cache("t2")]

    assert asyncio.run(go()) == [f"{TENANT_TOKEN_PREFIX}home", f"{TENANT_TOKEN_PREFIX}t1", f"{TENANT_TOKEN_PREFIX}t1",
                                 f"{TENANT_TOKEN_PREFIX}home", f"{TENANT_TOKEN_PREFIX}t2"]
    assert credential.asked == [None, "t1", "t2"]


def test_fleet_file_knob_must_be_a_boolean():
    fleet = generate_fleet(2, seed=1, subscriptions=1, tenants=1)
    fleet["simulation"] = {"access": {"tokensPerTenant": "yes"}}
    with pytest.raises(FleetFileError, match="tokensPerTenant"):
        validate_fleet(fleet)
    fleet["simulation"]["access"]["tokensPerTenant"] = True
    validate_fleet(fleet)


def test_asking_for_a_subscription_of_a_tenant_without_a_token_says_which_tenant(make_sim, tmp_path):
    fleet = two_tenant_fleet()
    home = home_tenant(fleet)
    other_sub, other = next((s["subscriptionId"], s["tenantId"].lower()) for s in fleet["subscriptions"]
                            if s["tenantId"].lower() != home)
    running = make_sim(fleet, throttle=False, graph_quota=False)

    async def go():
        conn = connect_with(running, TenantCredential(home, refuse={other}))
        try:
            await Inventory(Store(tmp_path / "cache")).refresh(conn, [other_sub])
        finally:
            await conn.close()

    with pytest.raises(ArmHttpError) as caught:
        asyncio.run(go())
    assert caught.value.code == "SubscriptionNotFound"
    assert other_sub in caught.value.message and f"az login --tenant {other}" in caught.value.message


FAKE_AZ = """#!/bin/sh
echo "$@" >> "{log}"
case "$*" in
  *"--tenant {refused}"*) echo "ERROR: AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication" >&2; exit 1;;
esac
tenant=home
prev=""
for a in "$@"; do [ "$prev" = "--tenant" ] && tenant="$a"; prev="$a"; done
echo '{{"accessToken": "cli-token-'"$tenant"'", "expiresOn": "2099-01-01 00:00:00.000000", "expires_on": 4070908800, "tokenType": "Bearer"}}'
"""


@pytest.mark.parametrize("configured", [None, "10000000-0000-4000-8000-0000000000aa"], ids=["default-tenant", "--tenant"])
def test_the_azure_cli_credential_is_asked_per_tenant_with_az_tenant(tmp_path, monkeypatch, configured):
    """The real chain (``build_credential``) against a stand-in ``az``: another tenant's token is
    ``az account get-access-token --tenant T``, also when ``--tenant`` chose the home tenant; a tenant
    that wants MFA fails with a message naming it and the fix."""
    from wsam_tui.arm.auth import CLOUDS, TenantTokenError, build_credential

    other, refused = "20000000-0000-4000-8000-0000000000bb", "30000000-0000-4000-8000-0000000000cc"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(log=tmp_path / "az.log", refused=refused))
    az.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    credential = build_credential("cli", tenant=configured, cloud=CLOUDS["AzureCloud"], interactive=False)
    cache = TokenCache(credential, CLOUDS["AzureCloud"].scope)

    async def go():
        home, theirs = await cache(), await cache(other)
        with pytest.raises(TenantTokenError) as caught:
            await cache(refused)
        return home, theirs, caught.value

    home, theirs, refusal = asyncio.run(go())
    assert home == f"cli-token-{configured or 'home'}"
    assert theirs == f"cli-token-{other}"
    calls = (tmp_path / "az.log").read_text().splitlines()
    assert len(calls) == 3 and all(c.startswith("account get-access-token") for c in calls)
    assert f"--tenant {other}" in calls[1]
    assert refusal.tenant == refused and "multi-factor" in refusal.message
    assert f"az login --tenant {refused}" in refusal.message


def test_a_subscription_not_yet_mapped_learns_its_tenant_from_arms_challenge(make_sim, tmp_path):
    """A depth read before the first refresh (the console painted from the cache): the transport does not
    know the subscription's tenant yet, ARM's 401 challenge names it, and the read succeeds with that
    tenant's token; later reads go with it at once."""
    fleet = two_tenant_fleet()
    home = home_tenant(fleet)
    other_sub, other = next((s["subscriptionId"], s["tenantId"].lower()) for s in fleet["subscriptions"]
                            if s["tenantId"].lower() != home)
    running = make_sim(fleet, throttle=False, graph_quota=False)
    credential = TenantCredential(home)
    sent = Sent()
    path = f"/subscriptions/{other_sub}/providers/Microsoft.HybridCompute/machines"

    async def go():
        conn = connect_with(running, credential, sent)
        try:
            first = [m async for page in conn.transport.paged(path, {"api-version": "2024-07-10"}) for m in page]
            again = await conn.transport.get_json(path, {"api-version": "2024-07-10"})
            return first, again, dict(conn.transport.tenant_of)
        finally:
            await conn.close()

    first, again, learned = asyncio.run(go())
    expected = {r["id"].lower() for r in fleet["resources"] if r["type"].lower() == MACHINE_TYPES[1]
                and r["id"].split("/")[2].lower() == other_sub.lower()}
    assert expected and {m["id"].lower() for m in first} == expected
    assert {m["id"].lower() for m in again["value"]} == expected
    assert learned == {other_sub.lower(): other}
    tokens = [t for p, t, _ in sent.requests]
    assert tokens[0] == TENANT_TOKEN_PREFIX + home and set(tokens[1:]) == {TENANT_TOKEN_PREFIX + other}, \
        "one refused request, then every read with the subscription's own tenant's token"
    assert credential.asked == [None, other]


def test_export_through_the_azure_cli_reads_both_tenants_and_names_a_refused_one(make_sim, tmp_path, monkeypatch, capsys):
    """`wsam-tui export --auth cli` end to end: the simulator wants a token per tenant, a stand-in `az`
    issues them (``az account get-access-token --tenant T``)."""
    from wsam_tui.cli import main

    fleet = two_tenant_fleet()
    home = home_tenant(fleet)
    other = next(s["tenantId"].lower() for s in fleet["subscriptions"] if s["tenantId"].lower() != home)
    running = make_sim(fleet, throttle=False, graph_quota=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def export(refused: str) -> tuple[int, str, str]:
        script = FAKE_AZ.format(log=tmp_path / "az.log", refused=refused).replace("cli-token-", TENANT_TOKEN_PREFIX)
        (bin_dir / "az").write_text(script.replace("tenant=home", f"tenant={home}"))
        (bin_dir / "az").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        code = main(["export", "-o", "csv", "--cache-dir", str(tmp_path / f"cache-{refused}"), "--auth", "cli",
                     "--endpoint", running.base_url, "--ca-bundle", str(running.ca_path)])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = export(refused="nobody")
    assert code == 0, err
    assert {row["id"].lower() for row in csv.DictReader(io.StringIO(out))} == machine_ids(fleet)

    code, out, err = export(refused=other)
    assert code == 3, "a partial result is visible to scripts"
    assert f"no token for tenant {other}" in err and f"az login --tenant {other}" in err
    home_subs = {s for s, t in tenants_of(fleet).items() if t == home}
    assert {row["id"].lower() for row in csv.DictReader(io.StringIO(out))} == machine_ids(fleet, home_subs)
