"""Depth: one server's fresh detail through ARM, for the details pane and to confirm an action's effect.

Breadth (the table) comes from Resource Graph; this module reads one server through ARM's own APIs,
concurrently and bounded, about a dozen GETs and POSTs per server (see ``fetch_detail``). A read that
fails costs its source, never the detail: the failure is kept in ``ServerDetail.errors`` (with the
request id to quote), and ``detail_to_raw`` then keeps the Resource Graph documents for that source.
Only the machine itself is essential: a 401/403/404 on it raises ``ArmHttpError``.

``detail_to_raw`` maps the API documents to the shapes the detectors read (fleet/capabilities.py),
so ``build_server`` derives the same columns from depth as from breadth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..fleet.capabilities import _time, kind_of, subscription_of
from ..fleet.model import Kind, RawServer, Source, SourceStatus
from .transport import ArmConnectionError, ArmHttpError, ArmTransport, parse_json

__all__ = ["API_VERSIONS", "SECRET_KEYS", "ServerDetail", "describe_failure", "detail_to_raw", "fetch_detail"]

API_VERSIONS = {
    "vm": "2024-07-01",
    "arc": "2024-07-10",
    "guestConfiguration": "2024-04-05",
    "insights": "2022-06-01",
    "policyInsights": "2019-10-01",
    "pricings": "2024-01-01",
    "assessments": "2020-01-01",
    "recoveryServices": "2023-04-01",
    "automanage": "2022-05-04",
    "maintenance": "2023-04-01",
}

# Keys ARM never returns, dropped at any depth all the same: a secret must not reach the pane or the store.
SECRET_KEYS = frozenset({"protectedsettings", "protectedparameters", "runaspassword", "adminpassword"})

_BACKUP_STATES = {"protected": "Protected", "protecting": "IRPending", "protectionfailed": "ProtectionError"}
_PROTECTED_ITEM_TYPE = "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"


@dataclass
class ServerDetail:
    """One server as ARM answered it, document by document, at ``fetched_at`` (when the reads started)."""

    machine_id: str
    fetched_at: datetime
    machine: dict | None = None  # GET {id}?$expand=instanceView
    extensions: list[dict] = field(default_factory=list)  # with instanceView (statuses, messages)
    guest_configuration: list[dict] = field(default_factory=list)
    dcr_associations: list[dict] = field(default_factory=list)
    dcrs: dict[str, dict] = field(default_factory=dict)  # lower-case DCR id -> DCR document
    policy: dict | None = None  # policyStates/latest/summarize: the summary (value[0])
    policy_states: list[dict] = field(default_factory=list)  # policyStates/latest/queryResults rows
    pricing: dict | None = None  # Defender for Servers pricing of the machine (inherited or its own)
    assessments: list[dict] = field(default_factory=list)  # every Defender assessment (healthy ones too)
    backup: dict | None = None  # VMs: the backupStatus answer
    backup_item: dict | None = None  # VMs: the protected item that backupStatus names
    automanage: list[dict] = field(default_factory=list)
    maintenance: list[dict] = field(default_factory=list)
    errors: dict[Source, str] = field(default_factory=dict)  # source -> why it could not be read

    @property
    def kind(self) -> Kind:
        return kind_of(self.machine or {"id": self.machine_id})


def describe_failure(error: ArmHttpError) -> str:
    """A short reason for a cell or a status line, with the request id to quote to support."""
    if isinstance(error, ArmConnectionError) or error.status == 0:
        text = f"unreachable ({error.code})"
    elif error.status in (401, 403):
        text = f"no access ({error.status} {error.code})"
    elif error.status == 404:
        text = f"not found (404 {error.code})"
    elif error.status == 429:
        text = f"throttled (429 {error.code})"
    elif error.code == "MalformedResponse":
        text = f"malformed answer ({error.message})"
    else:
        text = f"failed (HTTP {error.status} {error.code})"
    return f"{text}, request id {error.request_id}" if error.request_id else text


def _scrub(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _scrub(v) for k, v in node.items() if not (isinstance(k, str) and k.lower() in SECRET_KEYS)}
    if isinstance(node, list):
        return [_scrub(v) for v in node]
    return node


def _doc(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ArmHttpError(200, "MalformedResponse", f"{what}: expected a JSON object")
    return _scrub(value)


def _field(doc: Any, path: str) -> Any:
    """``doc["a"]["b"]…`` for path "a.b…", None where a step is missing or not an object."""
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _docs(values: list) -> list[dict]:
    return [_scrub(v) for v in values if isinstance(v, dict)]


class _Reader:
    """The reads of one detail: bounded, each failure recorded against its source."""

    def __init__(self, transport: ArmTransport, concurrency: int) -> None:
        self.transport = transport
        self.gate = asyncio.Semaphore(max(1, concurrency))
        self.errors: dict[Source, list[str]] = {}

    def note(self, source: Source, text: str) -> None:
        self.errors.setdefault(source, []).append(text)

    def fail(self, source: Source, what: str, error: ArmHttpError) -> None:
        self.note(source, f"{what}: {describe_failure(error)}")

    async def get(self, path: str, api: str, **params: str) -> dict:
        async with self.gate:
            return _doc(await self.transport.get_json(path, {"api-version": api, **params}), path)

    async def post(self, path: str, api: str, body: Any = None) -> dict:
        """A read that ARM serves as POST: retried like a GET."""
        async with self.gate:
            resp = await self.transport.request("POST", path, params={"api-version": api}, json_body=body, idempotent=True)
            return _doc(parse_json(resp, "POST", self.transport.url(path)), path)

    async def list(self, path: str, api: str, **params: str) -> list[dict]:
        out: list[dict] = []
        async with self.gate:
            async for page in self.transport.paged(path, {"api-version": api, **params}):
                out.extend(_docs(page))
        return out

    async def post_list(self, path: str, api: str) -> list[dict]:
        """PolicyInsights' POST lists page with ``@odata.nextLink`` (a POST URL too)."""
        out: list[dict] = []
        body = await self.post(path, api)
        while True:
            value = body.get("value")
            if not isinstance(value, list):
                raise ArmHttpError(200, "MalformedResponse", f"{path}: expected a list page")
            out.extend(_docs(value))
            link = body.get("@odata.nextLink") or body.get("nextLink")
            if not link:
                return out
            async with self.gate:
                resp = await self.transport.request("POST", link, idempotent=True)
                body = _doc(parse_json(resp, "POST", link), link)

    async def read(self, source: Source, what: str, call: Awaitable[Any], default: Any = None) -> Any:
        try:
            return await call
        except ArmHttpError as e:
            self.fail(source, what, e)
            return default


async def fetch_detail(transport: ArmTransport, machine_id: str, *, concurrency: int = 6) -> ServerDetail:
    """Every depth read of one server, at most ``concurrency`` at a time.

    Reads: the machine with its instance view, extensions with theirs, guest configuration assignments,
    DCR associations and each associated DCR, policy summary and states, Defender pricing and
    assessments, Automanage and maintenance assignments; for VMs also backupStatus and the protected
    item it names. 11 reads for a VM (+1 per DCR, +1 when backed up), 10 for an Arc machine (+1 per DCR).
    Raises ``ArmHttpError`` only when the machine itself is refused or absent (401, 403, 404)."""
    mid = machine_id.rstrip("/")
    detail = ServerDetail(machine_id=mid, fetched_at=datetime.now(UTC))
    kind = detail.kind
    api = API_VERSIONS["vm" if kind is Kind.VM else "arc"]
    r = _Reader(transport, concurrency)
    S = Source

    async def machine() -> dict | None:
        try:
            return await r.get(mid, api, **{"$expand": "instanceView"})
        except ArmHttpError as e:
            if e.status in (401, 403, 404):
                raise ArmHttpError(e.status, e.code, f"cannot read {mid}: {e.message}", request_id=e.request_id,
                                   correlation_id=e.correlation_id, method=e.method, url=e.url, body=e.body) from e
            r.fail(S.MACHINES, "machine", e)
            return None

    machine_task = asyncio.create_task(machine())

    async def dcrs() -> tuple[list[dict], dict[str, dict]]:
        assocs = await r.read(S.DCR_ASSOCIATIONS, "associations", r.list(
            f"{mid}/providers/Microsoft.Insights/dataCollectionRuleAssociations", API_VERSIONS["insights"]))
        if assocs is None:
            r.note(S.DCRS, "rules: not read (their associations could not be read)")
            return [], {}
        ids = {str(_field(a, "properties.dataCollectionRuleId") or "").lower(): None for a in assocs}
        ids.pop("", None)

        async def one(dcr_id: str) -> tuple[str, dict | None]:
            try:
                return dcr_id, await r.get(dcr_id, API_VERSIONS["insights"])
            except ArmHttpError as e:
                if e.status != 404:  # a deleted rule is a fact the detectors show, not a failed read
                    r.fail(S.DCRS, dcr_id.rsplit("/", 1)[-1], e)
                return dcr_id, None

        rules = await asyncio.gather(*(one(i) for i in ids))
        return assocs, {i: d for i, d in rules if d is not None}

    async def backup() -> tuple[dict | None, dict | None]:
        doc = await machine_task
        location = str((doc or {}).get("location") or "").replace(" ", "").lower()
        if not location:
            r.note(S.BACKUP, "backupStatus: not read (the machine's location is unknown)")
            return None, None
        sub = subscription_of({"id": mid})
        status = await r.read(S.BACKUP, "backupStatus", r.post(
            f"/subscriptions/{sub}/providers/Microsoft.RecoveryServices/locations/{location}/backupStatus",
            API_VERSIONS["recoveryServices"], {"resourceId": mid, "resourceType": "VM"}))
        path = _protected_item_path(status)
        if status is None or path is None:
            return status, None
        item = await r.read(S.BACKUP, "protected item", r.get(path, API_VERSIONS["recoveryServices"]))
        return status, item

    async def summary() -> dict | None:
        body = await r.post(f"{mid}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize",
                            API_VERSIONS["policyInsights"])
        value = body.get("value")
        return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else None

    sec = f"{mid}/providers/Microsoft.Security"
    calls = {
        "extensions": r.read(S.EXTENSIONS, "extensions", r.list(f"{mid}/extensions", api, **{"$expand": "instanceView"}), []),
        "guest_configuration": r.read(S.GUEST_CONFIGURATION, "assignments", r.list(
            f"{mid}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments",
            API_VERSIONS["guestConfiguration"]), []),
        "policy": r.read(S.POLICY, "summarize", summary()),
        "policy_states": r.read(S.POLICY, "queryResults", r.post_list(
            f"{mid}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults", API_VERSIONS["policyInsights"]), []),
        "pricing": r.read(S.SECURITY, "pricing", r.get(f"{sec}/pricings/virtualMachines", API_VERSIONS["pricings"])),
        "assessments": r.read(S.SECURITY, "assessments", r.list(f"{sec}/assessments", API_VERSIONS["assessments"]), []),
        "automanage": r.read(S.AUTOMANAGE, "assignments", r.list(
            f"{mid}/providers/Microsoft.Automanage/configurationProfileAssignments", API_VERSIONS["automanage"]), []),
        "maintenance": r.read(S.MAINTENANCE, "assignments", r.list(
            f"{mid}/providers/Microsoft.Maintenance/configurationAssignments", API_VERSIONS["maintenance"]), []),
        "dcrs": dcrs(),
    }
    if kind is Kind.VM:
        calls["backup"] = backup()
    tasks = {name: asyncio.create_task(call) for name, call in calls.items()}
    try:
        detail.machine = await machine_task
    except ArmHttpError:
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    results = dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))
    detail.dcr_associations, detail.dcrs = results.pop("dcrs")
    detail.backup, detail.backup_item = results.pop("backup", (None, None))
    for name, value in results.items():
        setattr(detail, name, value)
    detail.errors = {source: "; ".join(sorted(msgs)) for source, msgs in r.errors.items()}
    return detail


def _protected_item_path(status: dict | None) -> str | None:
    s = status or {}
    parts = [str(s.get(k) or "") for k in ("vaultId", "fabricName", "containerName", "protectedItemName")]
    if not all(parts):
        return None
    vault, fabric, container, item = parts
    return f"{vault}/backupFabrics/{fabric}/protectionContainers/{container}/protectedItems/{item}"


# ---- detail -> the detectors' shapes ------------------------------------------------------------


def _backup_like(status: dict | None) -> list[dict]:
    """A protected-item-like document from a backupStatus answer alone (when it names no item to read)."""
    state = _BACKUP_STATES.get(str((status or {}).get("protectionStatus") or "").lower())
    if state is None:
        return []
    return [{"id": _protected_item_path(status) or str(status.get("vaultId") or ""), "type": _PROTECTED_ITEM_TYPE,
             "properties": {"protectionState": state, "protectionStatus": status.get("protectionStatus"),
                            "backupManagementType": "AzureIaasVM", "policyName": status.get("policyName"),
                            "friendlyName": status.get("protectedItemName")}}]


def _pricing(doc: dict | None) -> dict | None:
    """An inherited resource-level pricing reads as the subscription's (the detector names the scope by id)."""
    if doc is None:
        return None
    origin = str(_field(doc, "properties.inheritedFrom") or "")
    if str(_field(doc, "properties.inherited")).lower() == "true" and origin:
        name = str(doc.get("name") or "VirtualMachines")
        return {**doc, "id": f"{origin.rstrip('/')}/providers/Microsoft.Security/pricings/{name}"}
    return doc


def _policy_state(row: dict) -> dict:
    return {"id": row.get("@odata.id") or row.get("policyAssignmentId"), "properties": {
        k: row.get(k) for k in ("complianceState", "policyDefinitionName", "policyAssignmentName", "timestamp")}}


def _newer_instance_view_patch(machine: dict, row: dict | None) -> bool:
    """True when the VM's instanceView patchStatus is a newer assessment than Resource Graph's row."""
    summary = _field(machine, "properties.instanceView.patchStatus.availablePatchSummary")
    if not isinstance(summary, dict):
        return False
    if row is None:
        return True
    fresh = _time(summary.get("lastModifiedTime"))
    known = _time(_field(row, "properties.lastModifiedDateTime"))
    return fresh is not None and (known is None or fresh > known)


def detail_to_raw(detail: ServerDetail, base: RawServer | None = None
                  ) -> tuple[RawServer, dict[tuple[str, Source], SourceStatus], dict[str, dict]]:
    """The detail as the detectors read it, over ``base`` (the server's Resource Graph documents).

    Each source depth read successfully replaces base's documents and gets a status fetched at
    ``detail.fetched_at``. A source that failed keeps base's documents and no status (the inventory's
    status stands), or, without a base, gets an error status (its columns read UNKNOWN with the reason).
    Sources depth does not read (site recovery, file sync, the in-guest probe; backup and patch
    assessment of Arc machines) keep base's documents. Returns (raw, statuses, dcrs): merge the statuses
    over the inventory's and the dcrs over its rules, in a FleetContext for this one server."""
    raw = RawServer(machine={"id": detail.machine_id}) if base is None else RawServer(
        machine=base.machine, extensions=list(base.extensions), patch_assessment=base.patch_assessment,
        guest_configuration=list(base.guest_configuration), policy_states=list(base.policy_states),
        security_assessments=list(base.security_assessments), pricing=base.pricing,
        backup_items=list(base.backup_items), replication_items=list(base.replication_items),
        dcr_associations=list(base.dcr_associations), automanage=list(base.automanage),
        maintenance=list(base.maintenance), file_sync=list(base.file_sync), in_guest=base.in_guest)
    sub = subscription_of({"id": detail.machine_id}).lower()
    statuses: dict[tuple[str, Source], SourceStatus] = {}
    kind = detail.kind

    def fresh(source: Source, failed: bool = False) -> bool:
        error = detail.errors.get(source)
        if error is None and not failed:
            statuses[(sub, source)] = SourceStatus(fetched_at=detail.fetched_at)
            return True
        if base is None:
            statuses[(sub, source)] = SourceStatus(error=error or "not read")
        return False

    if fresh(Source.MACHINES, failed=detail.machine is None):
        machine = dict(detail.machine or {})
        tenant = base.machine.get("tenantId") if base is not None and isinstance(base.machine, dict) else None
        if tenant and not machine.get("tenantId"):
            machine["tenantId"] = tenant  # ARM documents carry no tenant; Resource Graph rows do
        raw.machine = machine
        if kind is Kind.VM:
            statuses[(sub, Source.PATCH)] = SourceStatus(fetched_at=detail.fetched_at)
            if _newer_instance_view_patch(machine, raw.patch_assessment):
                raw.patch_assessment = None  # the detector reads the instance view's patchStatus
    elif kind is Kind.VM and base is None:
        statuses[(sub, Source.PATCH)] = SourceStatus(error=detail.errors.get(Source.MACHINES, "not read"))
    if fresh(Source.EXTENSIONS):
        raw.extensions = list(detail.extensions)
    if fresh(Source.GUEST_CONFIGURATION):
        raw.guest_configuration = list(detail.guest_configuration)
    if fresh(Source.POLICY):
        raw.policy_states = [_policy_state(s) for s in detail.policy_states]
    if fresh(Source.SECURITY):
        raw.pricing = _pricing(detail.pricing)
        raw.security_assessments = [a for a in detail.assessments
                                    if str(_field(a, "properties.status.code")).lower() == "unhealthy"]
    if kind is Kind.VM and fresh(Source.BACKUP):
        raw.backup_items = [detail.backup_item] if detail.backup_item else _backup_like(detail.backup)
    if fresh(Source.DCR_ASSOCIATIONS):
        raw.dcr_associations = list(detail.dcr_associations)
    fresh(Source.DCRS)
    if fresh(Source.AUTOMANAGE):
        raw.automanage = list(detail.automanage)
    if fresh(Source.MAINTENANCE):
        raw.maintenance = list(detail.maintenance)
    return raw, statuses, dict(detail.dcrs)
