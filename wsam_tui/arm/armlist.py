"""The ARM fallback: the sources of ``graph.fetch_sources``, read through ARM's own lists, per subscription.

For scopes where Resource Graph is denied (and for ``wsam-tui export --no-graph``). Every row comes out
in exactly the shape the Resource Graph query of its source produces (``graph.QUERIES``): MACHINES rows
with the projected ``p_*`` columns (so ``unflatten_machine`` applies unchanged), folded per-machine rows
keyed by the lower-case ``machineId``, the same projected columns elsewhere. The store, ``assemble`` and
the detectors therefore have one code path, whichever way the rows were read.

What is read, per subscription (subscription-wide lists wherever ARM has one; per machine only where it
has none; Windows machines only, as the MACHINES query keeps only those):

==================== =====================================================================================
machines             VM list and Arc machine list (paged); per VM ``GET {vm}?$expand=instanceView``, which
                     carries the power state, computer and OS name (ARG's ``extended.instanceView``), the
                     patch summary and ``resources[]`` (the VM's extensions) in one read
extensions           VMs: that same per-VM read; Arc: ``GET {arc}/extensions`` (paged)
patch                VMs: ``instanceView.patchStatus.availablePatchSummary`` of the same read. Arc machines:
                     ARM has no read of their assessment (only the ``assessPatches`` action, which runs a
                     new one), so a subscription holding Windows Arc machines records this source as an
                     error "not available through ARM" (one status per subscription and source)
guestconfiguration   the subscription's assignment list (VM assignments taken from it); per Arc machine
                     its own list (whether ARM's subscription list includes Arc machines is not verified)
policy               ``POST …/policyStates/latest/queryResults`` for the subscription, filtered to VMs and
                     Arc machines (``@odata.nextLink`` pages)
security             the subscription's pricings and assessments (Unhealthy kept); per machine its own
                     Defender for Servers pricing (inherited answers are the subscription's, not kept)
backup, siterecovery the subscription's Recovery Services vaults; per vault ``backupProtectedItems`` and
                     ``replicationProtectedItems`` (paged)
dcrassociations      per machine ``…/providers/Microsoft.Insights/dataCollectionRuleAssociations``
dcrs                 the subscription's data collection rules and ``Microsoft.OperationsManagement/solutions``
automanage           per machine ``…/providers/Microsoft.Automanage/configurationProfileAssignments``
maintenance          per machine ``…/providers/Microsoft.Maintenance/configurationAssignments``
filesync             the subscription's storage sync services; per service ``registeredServers``
==================== =====================================================================================

So a full read costs, per subscription, about 10 list reads plus 2 per vault, 1 per sync service and
the pages; per Azure VM 5 reads (details, pricing, DCR associations, Automanage, maintenance) and per
Arc machine 6 (extensions, guest configuration, and the same four). The transport keeps every read
inside the subscription's ARM read budget (250, refilled at 25/s), so a subscription of 2,500 servers
(about 13,500 reads) takes about 9 minutes where Resource Graph takes seconds: this is a fallback, not the
way in. Measured on the simulator with ARM's budget: 1,000 servers in 3 subscriptions, 5,465 reads in
101 s, the time of the largest subscription's 2,517 reads (Resource Graph: 15 queries, 1 s), no 429.

Budgets are per subscription, so subscriptions are read side by side: up to ``max_connections // 2`` at
once, each with at most ``concurrency`` requests in flight. A subscription waiting for its budget waits
before it takes a connection (the transport's budget wait comes first), so it holds none that another
one could use.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..fleet.model import Source
from .graph import MACHINE_PROPERTY_PATHS, QUERIES, Progress, SourceResult, _col
from .transport import ArmHttpError, ArmTransport, parse_json

T = TypeVar("T")

API_VERSIONS = {
    "subscriptions": "2022-12-01",
    "vm": "2024-07-01",
    "arc": "2024-07-10",
    "guestConfiguration": "2024-04-05",
    "policyInsights": "2019-10-01",
    "pricings": "2024-01-01",
    "assessments": "2021-06-01",
    "vaults": "2023-04-01",
    "backup": "2023-08-01",
    "siteRecovery": "2023-08-01",
    "insights": "2022-06-01",
    "solutions": "2015-11-01-preview",
    "automanage": "2022-05-04",
    "maintenance": "2023-04-01",
    "storageSync": "2022-06-01",
}

VM_TYPE, ARC_TYPE = "microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines"
# Progress of the sources read machine by machine counts machines (which ones: "vm", "arc" or "all");
# the others count subscriptions.
_COUNTED: dict[Source, str] = {Source.MACHINES: "vm", Source.EXTENSIONS: "all", Source.PATCH: "vm",
                               Source.GUEST_CONFIGURATION: "arc", Source.SECURITY: "all", Source.DCR_ASSOCIATIONS: "all",
                               Source.AUTOMANAGE: "all", Source.MAINTENANCE: "all"}
ALL_SOURCES: tuple[Source, ...] = tuple(q.source for q in QUERIES)
_SUB_RG = re.compile(r"^/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?", re.IGNORECASE)

# ARM answers these for a resource provider the subscription is not registered with: no resource of its
# types can exist there, so the list is empty.
_UNREGISTERED = frozenset({"MissingSubscriptionRegistration", "SubscriptionNotRegistered"})


def arc_patch_unavailable(arc_machines: int) -> ArmHttpError:
    return ArmHttpError(0, "NotAvailableThroughArm", (
        "patch assessments of Arc machines are not available through ARM, only through Resource Graph "
        f"(patchassessmentresources): unknown for this subscription's {arc_machines} Windows Arc machines, and so "
        "for its VMs (one status per subscription and source)"))


def _lower(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _path(node: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _coalesce(*values: Any) -> Any:
    """KQL's coalesce: the first value that is neither null nor an empty string."""
    return next((v for v in values if v is not None and v != ""), None)


def _sub_rg(resource_id: str) -> tuple[str, str]:
    m = _SUB_RG.match(resource_id or "")
    return (m.group(1), m.group(2) or "") if m else ("", "")


def _with_id(items: Iterable[dict]) -> list[dict]:
    return [d for d in items if isinstance(d.get("id"), str) and d["id"]]


def _is_windows(doc: dict) -> bool:
    props = _d(doc.get("properties"))
    if _lower(doc.get("type")) == VM_TYPE:
        return _lower(_path(props, "storageProfile.osDisk.osType")) == "windows"
    return _lower(props.get("osType")) == "windows"


# ---- rows in the shapes of graph.QUERIES --------------------------------------------------------------


def machine_row(doc: dict, *, tenant: str) -> dict:
    """A VM (GET with ``$expand=instanceView``) or Arc machine document → the MACHINES query's row."""
    rid = str(doc.get("id") or "")
    sub, rg = _sub_rg(rid)
    rtype = _lower(doc.get("type"))
    props = dict(_d(doc.get("properties")))
    if rtype == VM_TYPE:
        # As Resource Graph: no instanceView, but properties.extended.instanceView (power state, names).
        iv = _d(props.pop("instanceView", None))
        extended: dict[str, Any] = {k: iv[k] for k in ("computerName", "osName", "osVersion", "hyperVGeneration") if k in iv}
        for status in iv.get("statuses") or []:
            if isinstance(status, dict) and str(status.get("code", "")).startswith("PowerState/"):
                extended["powerState"] = {"code": status["code"], "displayStatus": status.get("displayStatus", "")}
                break
        props["extended"] = {"instanceView": extended}
    row: dict[str, Any] = {
        "id": rid,
        "name": doc.get("name") or "",
        "type": rtype,
        "tenantId": tenant,
        "location": _lower(doc.get("location")).replace(" ", ""),
        "resourceGroup": rg.lower(),
        "subscriptionId": sub,
        "kind": doc.get("kind") or "",
        "tags": doc.get("tags"),
        "identity": doc.get("identity"),
    }
    for path in MACHINE_PROPERTY_PATHS:
        row[_col(path)] = _path(props, path)
    return row


def extension_pack(ext: dict) -> dict:
    p = _d(ext.get("properties"))
    return {"id": ext.get("id"), "name": ext.get("name"), "publisher": p.get("publisher"), "type": p.get("type"),
            "typeHandlerVersion": p.get("typeHandlerVersion"), "provisioningState": p.get("provisioningState"),
            "enableAutomaticUpgrade": p.get("enableAutomaticUpgrade")}


def vm_patch_row(vm: dict) -> dict | None:
    """A VM's ``instanceView.patchStatus.availablePatchSummary`` → the PATCH query's row; None if never assessed.

    ARM counts critical and security patches together (``criticalAndSecurityPatchCount``), Resource Graph
    by classification. The combined count goes under ``critical`` so that the detectors see the same
    pending-critical/security state; the row says so in ``criticalAndSecurityCombined`` and keeps ARM's
    two counts as they came."""
    iv = _d(_d(vm.get("properties")).get("instanceView"))
    summary = _d(_d(iv.get("patchStatus")).get("availablePatchSummary"))
    if not (summary.get("status") or summary.get("lastModifiedTime")):
        return None
    combined, other = summary.get("criticalAndSecurityPatchCount"), summary.get("otherPatchCount")
    return {
        "machineId": _lower(vm.get("id")),
        "id": f"{vm.get('id')}/instanceView",
        "properties": {
            "status": summary.get("status"),
            "rebootPending": summary.get("rebootPending"),
            "startDateTime": summary.get("startTime"),
            "lastModifiedDateTime": summary.get("lastModifiedTime"),
            "assessmentActivityId": summary.get("assessmentActivityId"),
            "osType": "Windows",
            "availablePatchCountByClassification": {"critical": combined or 0, "other": other or 0},
            "criticalAndSecurityCombined": True,
            "criticalAndSecurityPatchCount": combined,
            "otherPatchCount": other,
            "errorDetails": summary.get("error"),
        },
    }


def assignment_pack(doc: dict) -> dict:
    p = _d(doc.get("properties"))
    return {"id": doc.get("id"), "name": doc.get("name"), "complianceStatus": p.get("complianceStatus"),
            "lastComplianceStatusChecked": p.get("lastComplianceStatusChecked"), "assignmentType": p.get("assignmentType")}


def policy_pack(state: dict) -> dict:
    # queryResults rows carry no id of the state document (@odata.id is null): the id stays null.
    return {"id": state.get("@odata.id"), "complianceState": state.get("complianceState"),
            "policyDefinitionName": state.get("policyDefinitionName"),
            "policyAssignmentName": state.get("policyAssignmentName"), "timestamp": state.get("timestamp")}


def security_row(doc: dict) -> dict:
    p = _d(doc.get("properties"))
    details = _d(p.get("resourceDetails"))
    return {"id": doc.get("id"), "name": doc.get("name"), "type": _lower(doc.get("type")),
            "subscriptionId": _sub_rg(str(doc.get("id") or ""))[0], "pricingTier": p.get("pricingTier"),
            "subPlan": p.get("subPlan"), "displayName": p.get("displayName"), "statusCode": _d(p.get("status")).get("code"),
            "resourceId": _coalesce(details.get("Id"), details.get("id"))}


def backup_row(item: dict) -> dict:
    p = _d(item.get("properties"))
    source = _coalesce(p.get("sourceResourceId"), _d(p.get("dataSourceInfo")).get("resourceID"), p.get("virtualMachineId"))
    return {"machineId": _lower(source), "id": item.get("id"), "type": _lower(item.get("type")),
            **{k: p.get(k) for k in ("protectionState", "protectionStatus", "healthStatus", "lastBackupStatus",
                                     "lastBackupTime", "backupManagementType", "friendlyName")}}


def replication_row(item: dict) -> dict:
    p = _d(item.get("properties"))
    details = _d(p.get("providerSpecificDetails"))
    return {"machineId": _lower(details.get("fabricObjectId")), "id": item.get("id"), "type": _lower(item.get("type")),
            "protectionState": p.get("protectionState"), "replicationHealth": p.get("replicationHealth"),
            "friendlyName": p.get("friendlyName"), "instanceType": details.get("instanceType")}


def dcr_row(doc: dict) -> dict:
    p = _d(doc.get("properties"))
    return {"id": doc.get("id"), "name": doc.get("name"), "type": _lower(doc.get("type")),
            "subscriptionId": _sub_rg(str(doc.get("id") or ""))[0], "dataFlows": p.get("dataFlows"),
            "destinations": p.get("destinations"), "workspaceResourceId": p.get("workspaceResourceId")}


def file_sync_row(doc: dict) -> dict:
    p = _d(doc.get("properties"))
    return {"id": doc.get("id"), "subscriptionId": _sub_rg(str(doc.get("id") or ""))[0],
            **{k: p.get(k) for k in ("serverName", "lastHeartBeat", "agentVersion", "serverOSVersion")}}


# The column each Resource Graph query orders by (``order by … asc``: nulls first, then ordinal).
_ORDER_BY = {Source.EXTENSIONS: "machineId", Source.PATCH: "machineId", Source.GUEST_CONFIGURATION: "machineId",
             Source.POLICY: "machineId", Source.DCR_ASSOCIATIONS: "machineId"}


def order_rows(source: Source, rows: list[dict]) -> list[dict]:
    """Rows in the order of the source's query, so that what depends on order (the evidence list of a
    server's Defender findings) reads the same either way."""
    col = _ORDER_BY.get(source, "id")
    rows.sort(key=lambda r: (r.get(col) is not None, str(r.get(col) or "")))
    return rows


def _folded(machine_id: str, key: str, items: list[dict]) -> list[dict]:
    """One row per machine that has items, as ``summarize make_list(…) by machineId`` gives it."""
    return [{"machineId": machine_id.lower(), key: items}] if items else []


# ---- reading ------------------------------------------------------------------------------------------


class _Reader:
    """ARM reads for one subscription: at most ``concurrency`` in flight; shared reads done once."""

    def __init__(self, transport: ArmTransport, concurrency: int) -> None:
        self.transport = transport
        self.gate = asyncio.Semaphore(concurrency)
        self.workers = concurrency
        self._once: dict[Any, asyncio.Future] = {}

    async def get(self, path: str, api: str, params: dict[str, str] | None = None, *, missing_ok: bool = False) -> Any:
        async with self.gate:
            try:
                return await self.transport.get_json(path, {"api-version": api, **(params or {})})
            except ArmHttpError as e:
                if (missing_ok and e.status == 404) or e.code in _UNREGISTERED:
                    return None
                raise

    async def list(self, path: str, api: str, params: dict[str, str] | None = None, *, missing_ok: bool = False) -> list[dict]:
        """Every item of an ARM list, following nextLink (absolute URLs, as ARM sends them)."""
        items: list[dict] = []
        url: str | None = path
        query: dict[str, str] | None = {"api-version": api, **(params or {})}
        while url:
            async with self.gate:
                try:
                    body = await self.transport.get_json(url, query)
                except ArmHttpError as e:
                    if (missing_ok and e.status == 404) or e.code in _UNREGISTERED:
                        return []
                    raise
            if body is None and items == []:
                return []  # an empty list answered 204 (Guest Configuration does)
            if not isinstance(body, dict) or not isinstance(body.get("value", []), list):
                raise ArmHttpError(200, "MalformedResponse", f"expected a list page from {url}", method="GET", url=str(url))
            items.extend(v for v in body.get("value") or [] if isinstance(v, dict))
            url, query = body.get("nextLink") or body.get("@odata.nextLink"), None
        return items

    async def post_list(self, path: str, api: str, params: dict[str, str]) -> list[dict]:
        """A POST query that pages with ``@odata.nextLink`` (PolicyInsights); read-only, so retried like a GET."""
        items: list[dict] = []
        url: str | None = path
        query: dict[str, str] | None = {"api-version": api, **params}
        while url:
            async with self.gate:
                try:
                    resp = await self.transport.request("POST", url, params=query, idempotent=True)
                except ArmHttpError as e:
                    if e.code in _UNREGISTERED:
                        return []
                    raise
            body = parse_json(resp, "POST", self.transport.url(url))
            if not isinstance(body, dict) or not isinstance(body.get("value", []), list):
                raise ArmHttpError(200, "MalformedResponse", f"expected a list page from {url}", method="POST", url=str(url))
            items.extend(v for v in body.get("value") or [] if isinstance(v, dict))
            url, query = body.get("@odata.nextLink") or body.get("nextLink"), None
        return items

    async def once(self, key: Any, make: Callable[[], Awaitable[T]]) -> T:
        """A read several sources need (the machine lists, a VM's details, the vaults), done once."""
        fut = self._once.get(key)
        if fut is None:
            fut = self._once[key] = asyncio.ensure_future(make())
        return await asyncio.shield(fut)

    async def each(self, items: Sequence[T], fn: Callable[[T], Awaitable[Any]],
                   done: Callable[[], None] | None = None) -> list[Any]:
        """fn over items by ``workers`` workers, results in item order; the first error stops new work and is raised."""
        results: list[Any] = [None] * len(items)
        it = iter(range(len(items)))
        failure: list[BaseException] = []

        async def worker() -> None:
            for i in it:
                if failure:
                    return
                try:
                    results[i] = await fn(items[i])
                except ArmHttpError as e:
                    failure.append(e)
                    return
                if done is not None:
                    done()

        await asyncio.gather(*(worker() for _ in range(min(self.workers, len(items)) or 1)))
        if failure:
            raise failure[0]
        return results

    def settle(self) -> None:
        """Retrieve the outcome of every shared read (nobody is left to await a failed one)."""
        for fut in self._once.values():
            if fut.done() and not fut.cancelled():
                fut.exception()


class _Subscription:
    """The reads of one subscription, and the rows of each source built from them."""

    def __init__(self, reader: _Reader, sub: str, tenant: str, tick: Callable[[Source], None]) -> None:
        self.r, self.sub, self.tenant, self.tick = reader, sub, tenant, tick
        self.base = f"/subscriptions/{sub}"

    # shared reads

    async def machines(self) -> tuple[list[dict], list[dict]]:
        async def read() -> tuple[list[dict], list[dict]]:
            vms, arcs = await asyncio.gather(
                self.r.list(f"{self.base}/providers/Microsoft.Compute/virtualMachines", API_VERSIONS["vm"]),
                self.r.list(f"{self.base}/providers/Microsoft.HybridCompute/machines", API_VERSIONS["arc"]))
            return [d for d in _with_id(vms) if _is_windows(d)], [d for d in _with_id(arcs) if _is_windows(d)]

        return await self.r.once("machines", read)

    async def vm_detail(self, vm: dict) -> dict | None:
        """GET {vm}?$expand=instanceView: model, instance view and resources[] (its extensions); None if gone."""
        rid = str(vm.get("id"))
        return await self.r.once(("vm", rid.lower()), lambda: self.r.get(
            rid, API_VERSIONS["vm"], {"$expand": "instanceView"}, missing_ok=True))

    async def vm_details(self, source: Source) -> list[dict]:
        vms, _ = await self.machines()
        found = await self.r.each(vms, self.vm_detail, lambda: self.tick(source))
        return [d for d in found if d is not None]

    async def vaults(self) -> list[dict]:
        async def read() -> list[dict]:
            return _with_id(await self.r.list(f"{self.base}/providers/Microsoft.RecoveryServices/vaults", API_VERSIONS["vaults"]))

        return await self.r.once("vaults", read)

    async def per_machine(self, source: Source, fn: Callable[[dict], Awaitable[list[dict]]], *,
                          kinds: Iterable[str] = (VM_TYPE, ARC_TYPE)) -> list[dict]:
        vms, arcs = await self.machines()
        machines = [m for m in (*vms, *arcs) if _lower(m.get("type")) in set(kinds)]
        rows = await self.r.each(machines, fn, lambda: self.tick(source))
        return [row for part in rows for row in part or ()]

    def attached(self, machine: dict, suffix: str, api: str) -> Awaitable[list[dict]]:
        return self.r.list(f"{machine['id']}/providers/{suffix}", api, missing_ok=True)

    # one method per source: rows in the shape of that source's Resource Graph query

    async def rows(self, source: Source) -> list[dict]:
        return order_rows(source, await getattr(self, "_" + source.value)())

    async def _machines(self) -> list[dict]:
        _, arcs = await self.machines()
        vms = await self.vm_details(Source.MACHINES)
        return [machine_row(d, tenant=self.tenant) for d in (*vms, *arcs)]

    async def _extensions(self) -> list[dict]:
        vms = await self.vm_details(Source.EXTENSIONS)
        rows = []
        for vm in vms:
            exts = [e for e in vm.get("resources") or [] if isinstance(e, dict) and _lower(e.get("type")).endswith("/extensions")]
            rows += _folded(vm["id"], "extensions", [extension_pack(e) for e in exts])

        async def arc(machine: dict) -> list[dict]:
            exts = await self.r.list(f"{machine['id']}/extensions", API_VERSIONS["arc"], missing_ok=True)
            return _folded(machine["id"], "extensions", [extension_pack(e) for e in exts])

        return rows + await self.per_machine(Source.EXTENSIONS, arc, kinds=(ARC_TYPE,))

    async def _patch(self) -> list[dict]:
        _, arcs = await self.machines()
        if arcs:
            raise arc_patch_unavailable(len(arcs))
        vms = await self.vm_details(Source.PATCH)
        return [row for row in map(vm_patch_row, vms) if row is not None]

    async def _guestconfiguration(self) -> list[dict]:
        listed = await self.r.list(f"{self.base}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments",
                                   API_VERSIONS["guestConfiguration"])
        by_vm: dict[str, list[dict]] = {}
        for doc in listed:
            mid = _lower(doc.get("id")).split("/providers/microsoft.guestconfiguration/")[0]
            if "/providers/microsoft.compute/virtualmachines/" in mid:
                by_vm.setdefault(mid, []).append(assignment_pack(doc))
        rows = [r for mid, packs in by_vm.items() for r in _folded(mid, "assignments", packs)]

        async def arc(machine: dict) -> list[dict]:
            docs = await self.attached(machine, "Microsoft.GuestConfiguration/guestConfigurationAssignments",
                                       API_VERSIONS["guestConfiguration"])
            return _folded(machine["id"], "assignments", [assignment_pack(d) for d in docs])

        return rows + await self.per_machine(Source.GUEST_CONFIGURATION, arc, kinds=(ARC_TYPE,))

    async def _policy(self) -> list[dict]:
        states = await self.r.post_list(
            f"{self.base}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults", API_VERSIONS["policyInsights"],
            {"$filter": "resourceType eq 'Microsoft.Compute/virtualMachines' or resourceType eq 'Microsoft.HybridCompute/machines'"})
        by_machine: dict[str, list[dict]] = {}
        for state in states:
            by_machine.setdefault(_lower(state.get("resourceId")), []).append(policy_pack(state))
        return [r for mid, packs in by_machine.items() if mid for r in _folded(mid, "states", packs)]

    async def _security(self) -> list[dict]:
        pricings, assessments = await asyncio.gather(
            self.r.list(f"{self.base}/providers/Microsoft.Security/pricings", API_VERSIONS["pricings"]),
            self.r.list(f"{self.base}/providers/Microsoft.Security/assessments", API_VERSIONS["assessments"]))
        rows = [security_row(p) for p in pricings]
        rows += [security_row(a) for a in assessments if _lower(_path(a, "properties.status.code")) == "unhealthy"]

        async def own_pricing(machine: dict) -> list[dict]:
            doc = await self.r.get(f"{machine['id']}/providers/Microsoft.Security/pricings/virtualMachines",
                                   API_VERSIONS["pricings"], missing_ok=True)
            if not isinstance(doc, dict) or str(_path(doc, "properties.inherited")).lower() == "true":
                return []  # the subscription's plan, reported through the machine: not a resource-level pricing
            return [security_row(doc)]

        return rows + await self.per_machine(Source.SECURITY, own_pricing)

    async def _backup(self) -> list[dict]:
        vaults = await self.vaults()
        items = await self.r.each(vaults, lambda v: self.r.list(f"{v['id']}/backupProtectedItems", API_VERSIONS["backup"],
                                                                 missing_ok=True))
        return [backup_row(i) for part in items for i in part
                if _lower(i.get("type")) == "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems"]

    async def _siterecovery(self) -> list[dict]:
        vaults = await self.vaults()
        items = await self.r.each(vaults, lambda v: self.r.list(f"{v['id']}/replicationProtectedItems",
                                                                 API_VERSIONS["siteRecovery"], missing_ok=True))
        return [replication_row(i) for part in items for i in part]

    async def _dcrassociations(self) -> list[dict]:
        async def one(machine: dict) -> list[dict]:
            docs = await self.attached(machine, "Microsoft.Insights/dataCollectionRuleAssociations", API_VERSIONS["insights"])
            return _folded(machine["id"], "associations", [
                {"id": d.get("id"), "dataCollectionRuleId": _path(d, "properties.dataCollectionRuleId")} for d in docs])

        return await self.per_machine(Source.DCR_ASSOCIATIONS, one)

    async def _dcrs(self) -> list[dict]:
        rules, solutions = await asyncio.gather(
            self.r.list(f"{self.base}/providers/Microsoft.Insights/dataCollectionRules", API_VERSIONS["insights"]),
            self.r.list(f"{self.base}/providers/Microsoft.OperationsManagement/solutions", API_VERSIONS["solutions"]))
        return [dcr_row(d) for d in (*rules, *solutions)]

    async def _automanage(self) -> list[dict]:
        async def one(machine: dict) -> list[dict]:
            docs = await self.attached(machine, "Microsoft.Automanage/configurationProfileAssignments", API_VERSIONS["automanage"])
            return [{"machineId": _lower(machine["id"]), "id": d.get("id"),
                     "configurationProfile": _path(d, "properties.configurationProfile"),
                     "status": _path(d, "properties.status")} for d in docs]

        return await self.per_machine(Source.AUTOMANAGE, one)

    async def _maintenance(self) -> list[dict]:
        async def one(machine: dict) -> list[dict]:
            docs = await self.attached(machine, "Microsoft.Maintenance/configurationAssignments", API_VERSIONS["maintenance"])
            return [{"machineId": _lower(machine["id"]), "id": d.get("id"),
                     "maintenanceConfigurationId": _path(d, "properties.maintenanceConfigurationId")} for d in docs]

        return await self.per_machine(Source.MAINTENANCE, one)

    async def _filesync(self) -> list[dict]:
        services = _with_id(await self.r.list(f"{self.base}/providers/Microsoft.StorageSync/storageSyncServices",
                                              API_VERSIONS["storageSync"]))
        servers = await self.r.each(services, lambda s: self.r.list(f"{s['id']}/registeredServers", API_VERSIONS["storageSync"],
                                                                     missing_ok=True))
        return [file_sync_row(d) for part in servers for d in part]


# Vaults may protect machines of other subscriptions: these sources are handed over once for every
# subscription read, so that a row lands with its machine's subscription, as in a Resource Graph batch.
_ACROSS_SUBSCRIPTIONS = (Source.BACKUP, Source.SITE_RECOVERY)


async def fetch_sources_arm(transport: ArmTransport, subscriptions: Sequence[str], *,
                            sources: Sequence[Source] | None = None, progress: Progress | None = None,
                            concurrency: int = 8, tenants: dict[str, str] | None = None,
                            on_result: Callable[[SourceResult], None] | None = None) -> list[SourceResult]:
    """Every source for every subscription, read through ARM: one SourceResult per (source, subscription)
    (backup and site recovery: one for all the subscriptions read, and one per failed subscription).

    ``tenants`` maps a subscription id to its tenant id (ARM documents carry none; without it each
    subscription is read once more). Each read carries the token of its subscription's tenant as the
    transport knows it (``ArmTransport.set_tenants``, done by the inventory after listing subscriptions),
    so a tenant whose token fails costs its own subscriptions only. With ``on_result``, each result is handed over as soon as it is
    complete and not kept. ``progress(source, done, total)`` counts machines for the per-machine sources
    and subscriptions for the others."""
    wanted = [s for s in ALL_SOURCES if sources is None or s in sources]
    out: list[SourceResult] = []
    emit = on_result or out.append
    tenant_of = {k.lower(): v for k, v in (tenants or {}).items()}
    at_once = asyncio.Semaphore(max(1, transport.max_connections // 2))
    across: dict[Source, tuple[list[str], list[dict]]] = {s: ([], []) for s in _ACROSS_SUBSCRIPTIONS if s in wanted}
    counts: dict[Source, list[int]] = {s: [0, 0] for s in wanted}  # done, total (machines or subscriptions)
    for source in wanted:
        if source not in _COUNTED:
            counts[source][1] = len(subscriptions)

    def tick(source: Source) -> None:
        counts[source][0] += 1
        if progress is not None:
            progress(source, counts[source][0], max(counts[source]))

    def finished(source: Source) -> None:
        if source not in _COUNTED:
            tick(source)

    async def subscription(sub: str) -> None:
        async with at_once:
            reader = _Reader(transport, concurrency)
            tenant = tenant_of.get(sub.lower())
            if tenant is None:
                try:
                    doc = await reader.get(f"/subscriptions/{sub}", API_VERSIONS["subscriptions"])
                    tenant = str(_d(doc).get("tenantId") or "")
                except ArmHttpError:
                    tenant = ""  # the reads below say why, source by source
            s = _Subscription(reader, sub, tenant, tick)
            try:
                vms, arcs = await s.machines()
                for source in wanted:
                    kind = _COUNTED.get(source)
                    counts[source][1] += {"vm": len(vms), "arc": len(arcs), "all": len(vms) + len(arcs)}.get(kind or "", 0)
            except ArmHttpError:
                pass  # each source that needs the machines fails with this error below

            async def one(source: Source) -> None:
                try:
                    rows = await s.rows(source)
                except ArmHttpError as e:
                    emit(SourceResult(source, (sub,), [], e))
                    finished(source)
                    return
                if source in across:
                    across[source][0].append(sub)
                    across[source][1].extend(rows)
                else:
                    emit(SourceResult(source, (sub,), rows))
                finished(source)

            try:
                await asyncio.gather(*(one(source) for source in wanted))
            finally:
                reader.settle()

    await asyncio.gather(*(subscription(sub) for sub in subscriptions))
    for source, (subs, rows) in across.items():
        if subs:
            emit(SourceResult(source, tuple(subs), order_rows(source, rows)))
    return out
