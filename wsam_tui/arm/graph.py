"""Breadth: the whole fleet from a handful of paged Resource Graph queries, batched by subscription.

Every query returns one row per server (or fewer): extensions, guest configuration assignments,
DCR associations and Defender findings are folded per machine with ``summarize make_list(pack(…))``,
so row count — and page count — grows with servers, not servers × extensions. Pages after the first
are fetched in parallel with ``$skip`` (the query orders by a stable key), inside the caller's
Resource Graph quota, which the transport enforces.

A query's subscriptions all belong to one tenant: its token is issued for that tenant, and a token of
tenant A does not read tenant B's subscriptions. So batches are cut per tenant, each sent with its
tenant's token (Lighthouse-delegated subscriptions are listed under the managing tenant and go with it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..fleet.model import Source
from .common import ArmHttpError

if TYPE_CHECKING:
    from .transport import ArmTransport

GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
GRAPH_API = "2022-10-01"
PAGE = 1000
BATCH = 200  # subscriptions per query (ARG advises fewer than 300 per request)

# Machine properties kept by the inventory (the rest of a machine document is not needed for the
# table or the matrix; the details pane reads the full document through ARM). Each path is
# projected as its own column and nested back into ``properties`` on arrival.
MACHINE_PROPERTY_PATHS: tuple[str, ...] = (
    "provisioningState",
    "storageProfile.imageReference",
    "storageProfile.osDisk.osType",
    "hardwareProfile.vmSize",
    "osProfile.computerName",
    "osProfile.windowsConfiguration.patchSettings",
    "securityProfile",
    "extended.instanceView",
    "licenseType",
    "status",
    "lastStatusChange",
    "agentVersion",
    "osName",
    "osVersion",
    "osSku",
    "osType",
    "machineFqdn",
    "domainName",
    "dnsFqdn",
    "agentConfiguration",
    "licenseProfile",
    "cloudMetadata",
    "detectedProperties",
)


def _col(path: str) -> str:
    return "p_" + path.replace(".", "_")


_MACHINE_COLS = ", ".join(f"{_col(p)} = properties.{p}" for p in MACHINE_PROPERTY_PATHS)
_MACHINE_ID = "machineId"


def _folded(table: str, where: str, split_on: str, pack: str, name: str) -> str:
    return (
        f"{table} | where {where}"
        f" | extend {_MACHINE_ID} = tostring(split(tolower(id), '{split_on}')[0])"
        f" | summarize {name} = make_list(pack({pack})) by {_MACHINE_ID}"
        f" | order by {_MACHINE_ID} asc"
    )


@dataclass(frozen=True)
class SourceQuery:
    source: Source
    query: str


QUERIES: tuple[SourceQuery, ...] = (
    SourceQuery(Source.MACHINES, (
        "resources"
        " | where type =~ 'microsoft.compute/virtualmachines' or type =~ 'microsoft.hybridcompute/machines'"
        " | extend osKind = iff(type =~ 'microsoft.compute/virtualmachines', tostring(properties.storageProfile.osDisk.osType), tostring(properties.osType))"
        " | where osKind =~ 'windows'"
        f" | project id, name, type, tenantId, location, resourceGroup, subscriptionId, kind, tags, identity, {_MACHINE_COLS}"
        " | order by id asc"
    )),
    SourceQuery(Source.EXTENSIONS, _folded(
        "resources",
        "type =~ 'microsoft.compute/virtualmachines/extensions' or type =~ 'microsoft.hybridcompute/machines/extensions'",
        "/extensions/",
        "'id', id, 'name', name, 'publisher', properties.publisher, 'type', properties.type, "
        "'typeHandlerVersion', properties.typeHandlerVersion, 'provisioningState', properties.provisioningState, "
        "'enableAutomaticUpgrade', properties.enableAutomaticUpgrade",
        "extensions",
    )),
    SourceQuery(Source.PATCH, (
        "patchassessmentresources | where type endswith '/patchassessmentresults'"
        f" | extend {_MACHINE_ID} = tostring(split(tolower(id), '/patchassessmentresults/')[0])"
        f" | project {_MACHINE_ID}, id, properties | order by {_MACHINE_ID} asc"
    )),
    SourceQuery(Source.GUEST_CONFIGURATION, _folded(
        "guestconfigurationresources",
        "type =~ 'microsoft.guestconfiguration/guestconfigurationassignments'",
        "/providers/microsoft.guestconfiguration/",
        "'id', id, 'name', name, 'complianceStatus', properties.complianceStatus, "
        "'lastComplianceStatusChecked', properties.lastComplianceStatusChecked, 'assignmentType', properties.assignmentType",
        "assignments",
    )),
    SourceQuery(Source.POLICY, _folded(
        "policyresources",
        "type =~ 'microsoft.policyinsights/policystates'",
        "/providers/microsoft.policyinsights/",
        "'id', id, 'complianceState', properties.complianceState, 'policyDefinitionName', properties.policyDefinitionName, "
        "'policyAssignmentName', properties.policyAssignmentName, 'timestamp', properties.timestamp",
        "states",
    )),
    SourceQuery(Source.SECURITY, (
        "securityresources"
        " | where type =~ 'microsoft.security/assessments' or type =~ 'microsoft.security/pricings'"
        " | where type =~ 'microsoft.security/pricings' or tostring(properties.status.code) =~ 'Unhealthy'"
        " | project id, name, type, subscriptionId, pricingTier = properties.pricingTier, subPlan = properties.subPlan,"
        " displayName = properties.displayName, statusCode = properties.status.code, resourceId = coalesce(properties.resourceDetails.Id, properties.resourceDetails.id)"
        " | order by id asc"
    )),
    SourceQuery(Source.BACKUP, (
        "recoveryservicesresources"
        " | where type =~ 'microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems'"
        f" | extend {_MACHINE_ID} = tolower(tostring(coalesce(properties.sourceResourceId, properties.dataSourceInfo.resourceID, properties.virtualMachineId)))"
        f" | project {_MACHINE_ID}, id, type, protectionState = properties.protectionState, protectionStatus = properties.protectionStatus,"
        " healthStatus = properties.healthStatus, lastBackupStatus = properties.lastBackupStatus, lastBackupTime = properties.lastBackupTime,"
        " backupManagementType = properties.backupManagementType, friendlyName = properties.friendlyName"
        " | order by id asc"
    )),
    SourceQuery(Source.SITE_RECOVERY, (
        "recoveryservicesresources"
        " | where type =~ 'microsoft.recoveryservices/vaults/replicationfabrics/replicationprotectioncontainers/replicationprotecteditems'"
        f" | extend {_MACHINE_ID} = tolower(tostring(properties.providerSpecificDetails.fabricObjectId))"
        f" | project {_MACHINE_ID}, id, type, protectionState = properties.protectionState, replicationHealth = properties.replicationHealth,"
        " friendlyName = properties.friendlyName, instanceType = properties.providerSpecificDetails.instanceType"
        " | order by id asc"
    )),
    SourceQuery(Source.DCR_ASSOCIATIONS, _folded(
        "insightsresources",
        "type =~ 'microsoft.insights/datacollectionruleassociations'",
        "/providers/microsoft.insights/",
        "'id', id, 'dataCollectionRuleId', properties.dataCollectionRuleId",
        "associations",
    )),
    SourceQuery(Source.DCRS, (
        "resources"
        " | where type =~ 'microsoft.insights/datacollectionrules' or type =~ 'microsoft.operationsmanagement/solutions'"
        " | project id, name, type, subscriptionId, dataFlows = properties.dataFlows, destinations = properties.destinations,"
        " workspaceResourceId = properties.workspaceResourceId"
        " | order by id asc"
    )),
    SourceQuery(Source.AUTOMANAGE, (
        "resources | where type =~ 'microsoft.automanage/configurationprofileassignments'"
        f" | extend {_MACHINE_ID} = tostring(split(tolower(id), '/providers/microsoft.automanage/')[0])"
        f" | project {_MACHINE_ID}, id, configurationProfile = properties.configurationProfile, status = properties.status"
        f" | order by id asc"
    )),
    SourceQuery(Source.MAINTENANCE, (
        "maintenanceresources | where type =~ 'microsoft.maintenance/configurationassignments'"
        f" | extend {_MACHINE_ID} = tostring(split(tolower(id), '/providers/microsoft.maintenance/')[0])"
        f" | project {_MACHINE_ID}, id, maintenanceConfigurationId = properties.maintenanceConfigurationId"
        " | order by id asc"
    )),
    SourceQuery(Source.FILE_SYNC, (
        "resources | where type =~ 'microsoft.storagesync/storagesyncservices/registeredservers'"
        " | project id, subscriptionId, serverName = properties.serverName, lastHeartBeat = properties.lastHeartBeat,"
        " agentVersion = properties.agentVersion, serverOSVersion = properties.serverOSVersion"
        " | order by id asc"
    )),
)


@dataclass
class SourceResult:
    """Rows of one source for one batch of subscriptions, or the error that stopped it. When the rows went
    page by page to a ``PageSink``, a successful result carries none."""

    source: Source
    subscriptions: tuple[str, ...]
    rows: list[dict]
    error: ArmHttpError | None = None


Progress = Callable[[Source, int, int], None]  # (source, rows so far, total rows)


class PageSink(Protocol):
    """Where one query's pages go as they arrive, so that no one holds a whole source (50,000 machines)."""

    def add(self, position: int, rows: list[dict]) -> None:
        """One page's rows; ``position`` is the page's place in the query's order (pages arrive in any order)."""

    def complete(self) -> None:
        """Every page has arrived."""

    def discard(self) -> None:
        """The query failed or was cancelled: forget the pages added."""


class _Collected:
    """A sink that keeps the pages, for callers that want the rows as one list."""

    def __init__(self) -> None:
        self.pages: dict[int, list[dict]] = {}

    def add(self, position: int, rows: list[dict]) -> None:
        self.pages[position] = rows

    def complete(self) -> None:
        pass

    def discard(self) -> None:
        self.pages.clear()

    def rows(self) -> list[dict]:
        return [row for position in sorted(self.pages) for row in self.pages[position]]


async def run_query(transport: ArmTransport, query: str, subscriptions: Sequence[str], *,
                    on_page: Callable[[int, int], None] | None = None, parallel_pages: int = 4,
                    sink: PageSink | None = None) -> list[dict]:
    """All rows of one query: the first page tells the total; the rest are fetched in parallel with $skip.
    With ``sink``, each page is handed to it as it arrives and not kept (the answer is then empty); the
    caller completes or discards the sink. The transport sends the token of the subscriptions' tenant."""
    into = sink if sink is not None else _Collected()

    received = total = 0

    async def page(skip: int) -> None:
        nonlocal received, total
        body = {"subscriptions": list(subscriptions), "query": query,
                "options": {"$top": PAGE, "$skip": skip, "resultFormat": "objectArray"}}
        data = await transport.post_json(GRAPH_PATH, body, params={"api-version": GRAPH_API})
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ArmHttpError(200, "MalformedResponse", "Resource Graph answered without a 'data' list",
                               method="POST", url=GRAPH_PATH)
        rows = data["data"]
        if skip == 0:
            total = int(data.get("totalRecords") or len(rows))
        received += len(rows)
        into.add(skip // PAGE, rows)
        if on_page:
            on_page(received, max(total, received))

    await page(0)
    gate = asyncio.Semaphore(parallel_pages)

    async def fetch(skip: int) -> None:
        async with gate:
            await page(skip)

    await asyncio.gather(*(fetch(s) for s in range(PAGE, total, PAGE)))
    return into.rows() if isinstance(into, _Collected) else []


async def fetch_sources(transport: ArmTransport, subscriptions: Sequence[str], *,
                        sources: Sequence[Source] | None = None, progress: Progress | None = None,
                        concurrency: int = 6,
                        on_result: Callable[[SourceResult], None] | None = None,
                        open_sink: Callable[[Source, tuple[str, ...]], PageSink] | None = None) -> list[SourceResult]:
    """Every source for every subscription batch. A batch that fails is retried one subscription at a
    time, so one subscription without access costs that subscription, not the fleet. Batches hold one
    tenant's subscriptions (the transport's ``tenant_of``, which also picks the token a batch carries); a
    tenant whose token cannot be had fails its own batches only.

    With ``on_result``, each result is handed over as soon as it is complete and not kept. With
    ``open_sink``, each query's pages go to the sink it opens for (source, subscriptions) as they
    arrive: the sink is completed before the (row-less) result is handed over, or discarded if the
    query fails (memory at 50,000 servers: a few pages, not whole sources)."""
    wanted = [q for q in QUERIES if sources is None or q.source in sources]
    batches = tenant_batches(subscriptions, {} if transport.one_token_for_all_tenants else transport.tenant_of)
    gate = asyncio.Semaphore(concurrency)
    out: list[SourceResult] = []
    emit = on_result or out.append

    async def one(q: SourceQuery, subs: tuple[str, ...]) -> None:
        async with gate:
            sink = open_sink(q.source, subs) if open_sink is not None else None
            try:
                rows = await run_query(transport, q.query, subs, sink=sink,
                                       on_page=(lambda n, t: progress(q.source, n, t)) if progress else None)
            except ArmHttpError as e:
                if sink is not None:
                    sink.discard()
                if len(subs) == 1 or e.status not in (400, 403, 404):
                    emit(SourceResult(q.source, subs, [], e))
                    return
                error = e
                named = _named_subscriptions(e, subs)
            except BaseException:
                if sink is not None:
                    sink.discard()
                raise
            else:
                if sink is not None:
                    sink.complete()
                emit(SourceResult(q.source, subs, rows))
                return
        if named:
            # The error names the subscriptions it refuses: they fail, the rest of the batch runs again.
            emit(SourceResult(q.source, tuple(named), [], error))
            rest = tuple(s for s in subs if s not in named)
            if rest:
                await one(q, rest)
            return
        await asyncio.gather(*(one(q, (s,)) for s in subs))

    await asyncio.gather(*(one(q, b) for q in wanted for _, b in batches))
    return out


def tenant_batches(subscriptions: Sequence[str], tenant_of: Mapping[str, str]) -> list[tuple[str | None, tuple[str, ...]]]:
    """(tenant, up to BATCH subscriptions of that tenant), in the order the subscriptions were given.
    Subscriptions of no known tenant go together with the home tenant's token (tenant None)."""
    lowered = {k.lower(): v for k, v in tenant_of.items()}
    by_tenant: dict[str | None, list[str]] = {}
    for sub in subscriptions:
        by_tenant.setdefault(lowered.get(sub.lower()) or None, []).append(sub)
    return [(tenant, tuple(subs[i : i + BATCH])) for tenant, subs in by_tenant.items()
            for i in range(0, len(subs), BATCH)]


def _named_subscriptions(error: ArmHttpError, subs: Sequence[str]) -> list[str]:
    text = str(error.body or "").lower() + error.message.lower()
    return [s for s in subs if s.lower() in text]


def unflatten_machine(row: dict) -> dict:
    """Nest the projected ``p_*`` columns back into ``properties`` so detectors see ARG's document shape."""
    props: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for key, value in row.items():
        if not key.startswith("p_"):
            out[key] = value
    for path in MACHINE_PROPERTY_PATHS:
        value = row.get(_col(path))
        if value is None:
            continue
        node = props
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    out["properties"] = props
    return out
