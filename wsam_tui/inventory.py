"""The inventory service: connect, refresh from Resource Graph into the store, load servers from the store.

The UI and the `export` command ask this service; neither talks to ARM nor reads the store directly.
Stale-while-revalidate: ``load()`` answers from the store at once; ``refresh()`` replaces it source by
source, and a failed source keeps its last known rows (with their age) and says why it failed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .arm import graph
from .arm.common import ArmHttpError, EndpointError, TenantTokenError, TransportEvent
from .arm.graph import QUERIES, SourceResult, fetch_sources, unflatten_machine
from .fleet.assemble import assemble
from .fleet.capabilities import build_server
from .fleet.model import Server, Source, SourceStatus, clean_text
from .store.cache import CHUNK, Manifest, Store

if TYPE_CHECKING:
    from .arm.transport import ArmTransport

SIMULATOR_TOKEN = "wsam-simulator-accepts-any-token"
_SUB_IN = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)


@dataclass
class ConnectOptions:
    endpoint: str | None = None
    ca_bundle: str | None = None
    cloud: str = "AzureCloud"
    auth: str | None = None
    tenant: str | None = None
    subscriptions: Sequence[str] = ()
    on_event: Callable[[TransportEvent], None] | None = None


@dataclass
class Connection:
    transport: ArmTransport
    arm_url: str
    scope: str
    credential: Any
    description: str
    tenant: str | None = None  # --tenant: only this tenant is read; otherwise every tenant the account reaches

    async def close(self) -> None:
        await self.transport.aclose()
        close = getattr(self.credential, "close", None)
        if close is not None:
            await close()


async def connect(opts: ConnectOptions) -> Connection:
    """Build the transport for Azure (a cloud) or any ARM-compatible endpoint (--endpoint, --ca-bundle)."""
    # Here, not at the top: the console draws its first frame from the cache before it needs httpx.
    from .arm.auth import (
        CLOUDS,
        StaticTokenCredential,
        TokenCache,
        build_credential,
        discover_endpoint,
        ssl_context,
    )
    from .arm.transport import ArmTransport

    verify = ssl_context(opts.ca_bundle)
    any_token = False
    if opts.endpoint:
        info = await discover_endpoint(opts.endpoint, verify)
        arm_url, scope = info.arm_url, info.scope
        if info.accepts_any_token and not opts.auth:
            credential: Any = StaticTokenCredential(SIMULATOR_TOKEN)
            any_token = True
            description = f"{arm_url} (accepts any token)"
        else:
            credential = build_credential(opts.auth, tenant=opts.tenant, cloud=CLOUDS[opts.cloud])
            description = arm_url
    else:
        if opts.cloud not in CLOUDS:
            raise EndpointError(f"--cloud must be one of {', '.join(CLOUDS)}")
        cloud = CLOUDS[opts.cloud]
        arm_url, scope = cloud.arm_url, cloud.scope
        credential = build_credential(opts.auth, tenant=opts.tenant, cloud=cloud)
        description = cloud.name
    transport = ArmTransport(arm_url, TokenCache(credential, scope), verify=verify, on_event=opts.on_event,
                             one_token_for_all_tenants=any_token)
    return Connection(transport, arm_url, scope, credential, description, tenant=opts.tenant)


@dataclass
class RefreshReport:
    subscriptions: list[dict]
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (subscription, source, message)
    seconds: float = 0.0
    through_arm: list[str] = field(default_factory=list)  # subscriptions read through ARM's lists, not Resource Graph
    tenant_failures: dict[str, str] = field(default_factory=dict)  # tenant -> why no token could be had for it

    @property
    def complete(self) -> bool:
        return not self.failures


@dataclass
class Snapshot:
    servers: list[Server]
    subscriptions: list[dict]
    oldest: datetime | None
    newest: datetime | None
    notices: list[str]
    known_subscriptions: list[dict] = field(default_factory=list)  # in scope or not, as last listed


def subscription_of(row: dict) -> str:
    for key in ("subscriptionId",):
        value = row.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    for key in ("machineId", "id"):
        value = row.get(key)
        if isinstance(value, str):
            m = _SUB_IN.search(value)
            if m:
                return m.group(1).lower()
    return ""


class _StoreSink:
    """One source of a batch of subscriptions into the store as its pages arrive: each page's rows go to
    their subscription's writer; the batch's subscriptions switch to the new rows together on completion."""

    def __init__(self, store: Store, source: Source, subscriptions: Sequence[str], tenant_of: dict[str, str],
                 fetched_at: datetime) -> None:
        self.writers = {s.lower(): store.begin_rows(s, source.value, tenant=tenant_of.get(s.lower(), ""))
                        for s in subscriptions}
        self.machines = source is Source.MACHINES
        self.fetched_at = fetched_at

    def add(self, position: int, rows: list[dict]) -> None:
        by_sub: dict[str, list[dict]] = {}
        for row in rows:
            if self.machines:
                row = unflatten_machine(row)
            sub = subscription_of(row)
            if sub in self.writers:
                by_sub.setdefault(sub, []).append(row)
        for sub, part in by_sub.items():
            self.writers[sub].add(position, part)

    def complete(self) -> None:
        for writer in self.writers.values():
            writer.commit(fetched_at=self.fetched_at)

    def discard(self) -> None:
        for writer in self.writers.values():
            writer.discard()


class Inventory:
    def __init__(self, store: Store, *, required_tags: tuple[str, ...] = ("env", "owner", "costCenter"),
                 stale_after_days: int = 7) -> None:
        self.store = store
        self.required_tags = required_tags
        self.stale_after_days = stale_after_days

    async def list_subscriptions(self, conn: Connection, wanted: Sequence[str] = ()) -> list[dict]:
        subs, failed = await self._list_subscriptions(conn)
        return _in_scope(subs, wanted, failed)

    async def _list_subscriptions(self, conn: Connection) -> tuple[list[dict], dict[str, str]]:
        """The subscriptions of every tenant the account reaches, and the tenants whose token failed.

        ARM lists the subscriptions of the token's tenant only (and those delegated to it through
        Lighthouse), so, as ``az login`` does, each tenant of ``GET /tenants`` that the home listing did
        not cover is listed again with its own token. A tenant whose token fails keeps the subscriptions
        the store last knew for it: their refresh fails with the tenant's message, their last known rows stay."""
        subs: list[dict] = []
        failed: dict[str, str] = {}
        async for page in conn.transport.paged("/subscriptions", {"api-version": "2022-12-01"}):
            subs.extend(s for s in page if isinstance(s, dict) and s.get("subscriptionId"))
        if not conn.tenant and not conn.transport.one_token_for_all_tenants:  # one token: the same answer again
            seen = {s["subscriptionId"].lower() for s in subs}
            covered = {str(s.get("tenantId") or "").lower() for s in subs}
            for tenant in await self._other_tenants(conn, covered):
                try:
                    async for page in conn.transport.paged("/subscriptions", {"api-version": "2022-12-01"}, tenant=tenant):
                        for s in page:
                            if isinstance(s, dict) and s.get("subscriptionId") and s["subscriptionId"].lower() not in seen:
                                seen.add(s["subscriptionId"].lower())
                                subs.append(s)
                except TenantTokenError as e:
                    failed[tenant] = e.describe()
                    known = self.store.get_meta("subscriptions", []) or []
                    subs.extend(dict(s) for s in known if isinstance(s, dict) and str(s.get("tenantId") or "").lower() == tenant
                                and str(s.get("subscriptionId") or "").lower() not in seen)
        return subs, failed

    async def _other_tenants(self, conn: Connection, covered: set[str]) -> list[str]:
        """Tenant ids of ``GET /tenants`` not in ``covered`` (lower-case). An endpoint without the list
        (some ARM-compatible endpoints) has just the home tenant."""
        tenants: list[str] = []
        try:
            async for page in conn.transport.paged("/tenants", {"api-version": "2022-12-01"}):
                tenants.extend(str(t["tenantId"]).lower() for t in page if isinstance(t, dict) and t.get("tenantId"))
        except ArmHttpError:
            return []
        return [t for t in dict.fromkeys(tenants) if t not in covered]

    async def refresh(self, conn: Connection, wanted: Sequence[str] = (), *,
                      progress: graph.Progress | None = None, graph: bool = True) -> RefreshReport:
        """Every source of every subscription into the store. Resource Graph first; a subscription it refuses
        outright (403 on every source) is read again through ARM's own lists (arm/armlist.py), and
        ``graph=False`` reads every subscription that way."""
        started = time.monotonic()
        listed, tenant_failures = await self._list_subscriptions(conn)
        # Every enabled subscription listed, not only the scope's: :subs offers them all (one taken out of
        # scope can be brought back) and its last known rows stay readable.
        self.store.put_meta("subscriptions", [
            {k: s.get(k) for k in ("subscriptionId", "displayName", "tenantId", "state")}
            for s in _in_scope(listed, (), tenant_failures)])
        subs = _in_scope(listed, wanted, tenant_failures)
        tenant_of = {s["subscriptionId"].lower(): str(s.get("tenantId") or "") for s in subs}
        conn.transport.set_tenants(tenant_of)  # each subscription's requests carry its own tenant's token
        ids = [s["subscriptionId"] for s in subs]
        report = RefreshReport(subscriptions=subs, tenant_failures=tenant_failures)
        for tenant, message in tenant_failures.items():
            if not any(t.lower() == tenant for t in tenant_of.values()):  # else its subscriptions' failures say it
                report.failures.append((f"(tenant {tenant})", "subscription list", message))
        now = datetime.now(UTC)

        def open_sink(source: Source, subscriptions: tuple[str, ...]) -> _StoreSink:
            return _StoreSink(self.store, source, subscriptions, tenant_of, now)

        def store_result(result: SourceResult) -> None:
            if result.error is not None:
                message = result.error.describe()
                for sub in result.subscriptions:
                    self.store.put_error(sub, result.source.value, message, tenant=tenant_of.get(sub.lower(), ""))
                    report.failures.append((sub, result.source.value, message))
                return
            sink = open_sink(result.source, result.subscriptions)
            for position, start in enumerate(range(0, len(result.rows), CHUNK)):
                sink.add(position, result.rows[start : start + CHUNK])
            result.rows = []
            sink.complete()

        through_arm = list(ids)
        if graph:
            refused: dict[str, set[Source]] = {}  # subscription -> sources Resource Graph answered 403 for
            held: list[SourceResult] = []

            def from_graph(result: SourceResult) -> None:
                if result.error is None:
                    return  # its pages are in the store already (open_sink)
                if result.error.status == 403:
                    for sub in result.subscriptions:
                        refused.setdefault(sub.lower(), set()).add(result.source)
                    held.append(result)
                    return
                store_result(result)

            await fetch_sources(conn.transport, ids, progress=progress, on_result=from_graph, open_sink=open_sink)
            every = {q.source for q in QUERIES}
            through_arm = [s for s in ids if refused.get(s.lower()) == every]
            again = {s.lower() for s in through_arm}
            for result in held:  # a refusal is a failure only where ARM does not read the subscription again
                rest = tuple(s for s in result.subscriptions if s.lower() not in again)
                if rest:
                    store_result(SourceResult(result.source, rest, [], result.error))
        if through_arm:
            report.through_arm = through_arm
            from .arm import armlist

            await armlist.fetch_sources_arm(conn.transport, through_arm, progress=progress, tenants=tenant_of,
                                            on_result=store_result)
        report.seconds = time.monotonic() - started
        return report

    def load(self, wanted: Sequence[str] = (), *, now: datetime | None = None, evidence: bool = False,
             part: tuple[int, int] = (0, 1)) -> Snapshot:
        """Servers from the store. Without ``evidence`` (the table), cells keep state, summary and flags only.

        ``part=(k, n)``: only the servers of the k-th of n shares of the subscriptions (balanced by server
        count), for deriving in n processes at once; the snapshot's other fields are the whole fleet's."""
        subs_meta = known = self.store.get_meta("subscriptions", []) or []
        if wanted:
            keys = {w.lower() for w in wanted}
            subs_meta = [s for s in subs_meta if str(s.get("subscriptionId", "")).lower() in keys
                         or str(s.get("displayName", "")).lower() in keys]
        sub_ids = [str(s.get("subscriptionId", "")).lower() for s in subs_meta]
        manifests = self.store.manifests(sub_ids)
        statuses: dict[tuple[str, Source], SourceStatus] = {}
        fetched: list[datetime] = []
        by_sub: dict[str, list] = {}
        for m in manifests:
            try:
                source = Source(m.source)
            except ValueError:
                continue
            status = source_status(m)
            if status is not None:
                statuses[(m.subscription, source)] = status
            if m.fetched_at is not None:
                fetched.append(m.fetched_at)
                by_sub.setdefault(m.subscription, []).append((source, m))
        # Rules, workspaces and File Sync servers serve machines of any subscription: read them once.
        fleet_wide = {Source.DCRS, Source.FILE_SYNC}
        shared_rows: dict[Source, list[dict]] = {s: [] for s in fleet_wide}
        def rows_of(source: Source, m) -> list[dict]:
            rows = self.store.rows_of(m)
            damage = self.store.damaged.get((m.subscription, m.source))
            if damage:  # its cells say why they are unknown, rather than change with the rows lost
                statuses[(m.subscription, source)] = SourceStatus(error=damage)
            return rows

        for entries in by_sub.values():
            for source, m in entries:
                if source in fleet_wide:
                    shared_rows[source].extend(rows_of(source, m))
        # The rest one subscription at a time, so memory peaks at one subscription's raw rows.
        when = now or datetime.now(UTC)
        shared: dict = {}
        servers: list[Server] = []
        for entries in _share(by_sub, *part):
            rows: dict[Source, list[dict]] = dict(shared_rows)
            for source, m in entries:
                if source not in fleet_wide:
                    rows[source] = rows_of(source, m)
            if not rows.get(Source.MACHINES):
                continue
            raw, ctx = assemble(rows, sources=statuses, now=when, required_tags=self.required_tags,
                                stale_after_days=self.stale_after_days)
            servers.extend(build_server(r, ctx, evidence=evidence, shared=shared) for r in raw)
            del raw, rows
        servers.sort(key=lambda s: (s.name.lower(), s.id.lower()))
        return Snapshot(servers=servers, subscriptions=subs_meta, oldest=min(fetched, default=None),
                        newest=max(fetched, default=None), notices=list(self.store.notices), known_subscriptions=known)


def _in_scope(subs: list[dict], wanted: Sequence[str], failed: dict[str, str]) -> list[dict]:
    """The enabled subscriptions of ``subs`` that ``wanted`` names (by id or display name; none: all of them).
    A name that matches none raises SubscriptionNotFound (``failed``: the tenants without a token, which may
    hold it)."""
    if wanted:
        keys = {w.lower() for w in wanted}
        chosen = [s for s in subs if s["subscriptionId"].lower() in keys or str(s.get("displayName", "")).lower() in keys]
        missing = keys - {s["subscriptionId"].lower() for s in chosen} - {str(s.get("displayName", "")).lower() for s in chosen}
        if missing:
            unread = "".join(f"; {message}" for message in failed.values())  # perhaps in a tenant without a token
            raise ArmHttpError(404, "SubscriptionNotFound",
                               f"not visible to this credential: {', '.join(sorted(missing))}{unread}")
        subs = chosen
    return [s for s in subs if str(s.get("state", "Enabled")) not in ("Disabled", "Deleted")]


def source_status(m: Manifest) -> SourceStatus | None:
    """What a source's manifest says: fetched, failed, or failed since it was last fetched (``stale``:
    its rows are the last known state, and the cells read from them say so)."""
    error = clean_text(m.error, limit=300) if m.error else None
    if m.fetched_at is None and error is None:
        return None
    return SourceStatus(fetched_at=m.fetched_at, error=error)


def _share(by_sub: dict[str, list], k: int, n: int) -> list[list]:
    """The k-th of n shares of the subscriptions' entries, balanced by machine count (largest first, each to
    the lightest share), so that n processes deriving a share each finish together."""
    if n <= 1:
        return list(by_sub.values())
    loads, shares = [0] * n, [[] for _ in range(n)]

    def machines(entries: list) -> int:
        return sum(m.count for source, m in entries if source is Source.MACHINES)

    for sub in sorted(by_sub, key=lambda sub: (-machines(by_sub[sub]), sub)):
        lightest = loads.index(min(loads))
        loads[lightest] += machines(by_sub[sub])
        shares[lightest].append(by_sub[sub])
    return shares[k]
