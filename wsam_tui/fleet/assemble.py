"""Raw rows per source → one RawServer per machine and the FleetContext detectors need.

The row shapes are those of the inventory's Resource Graph queries (wsam_tui/arm/graph.py) and of
its ARM fallback, which produces the same shapes. Pure: no I/O. Anything malformed is skipped, never
raised: a bad row costs that row, not the fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .model import FleetContext, RawServer, Source, SourceStatus


def _lower(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def _dicts(rows: Iterable[Any]) -> Iterable[dict]:
    return (r for r in rows or () if isinstance(r, dict))


def assemble(
    rows: Mapping[Source, list[dict]],
    *,
    sources: Mapping[tuple[str, Source], SourceStatus],
    now: datetime,
    required_tags: tuple[str, ...] = ("env", "owner", "costCenter"),
    stale_after_days: int = 7,
) -> tuple[list[RawServer], FleetContext]:
    servers: dict[str, RawServer] = {}
    for machine in _dicts(rows.get(Source.MACHINES, [])):
        mid = _lower(machine.get("id"))
        if mid:
            servers[mid] = RawServer(machine=machine)

    def each(source: Source):
        for row in _dicts(rows.get(source, [])):
            server = servers.get(_lower(row.get("machineId")))
            if server is not None:
                yield server, row

    for server, row in each(Source.EXTENSIONS):
        for ext in _dicts(row.get("extensions")):
            server.extensions.append(_extension_doc(ext))
    for server, row in each(Source.PATCH):
        server.patch_assessment = {"id": row.get("id"), "properties": row.get("properties") or {}}
    for server, row in each(Source.GUEST_CONFIGURATION):
        for a in _dicts(row.get("assignments")):
            server.guest_configuration.append({"id": a.get("id"), "name": a.get("name"), "properties": {
                k: a.get(k) for k in ("complianceStatus", "lastComplianceStatusChecked", "assignmentType")}})
    for server, row in each(Source.POLICY):
        for s in _dicts(row.get("states")):
            server.policy_states.append({"id": s.get("id"), "properties": {
                k: s.get(k) for k in ("complianceState", "policyDefinitionName", "policyAssignmentName", "timestamp")}})
    for server, row in each(Source.BACKUP):
        server.backup_items.append({"id": row.get("id"), "type": row.get("type"), "properties": {
            k: row.get(k) for k in ("protectionState", "protectionStatus", "healthStatus", "lastBackupStatus",
                                    "lastBackupTime", "backupManagementType", "friendlyName")}})
    for server, row in each(Source.SITE_RECOVERY):
        server.replication_items.append({"id": row.get("id"), "type": row.get("type"), "properties": {
            "protectionState": row.get("protectionState"), "replicationHealth": row.get("replicationHealth"),
            "friendlyName": row.get("friendlyName"),
            "providerSpecificDetails": {"instanceType": row.get("instanceType")}}})
    for server, row in each(Source.DCR_ASSOCIATIONS):
        for a in _dicts(row.get("associations")):
            server.dcr_associations.append({"id": a.get("id"), "properties": {"dataCollectionRuleId": a.get("dataCollectionRuleId")}})
    for server, row in each(Source.AUTOMANAGE):
        server.automanage.append({"id": row.get("id"), "properties": {
            "configurationProfile": row.get("configurationProfile"), "status": row.get("status")}})
    for server, row in each(Source.MAINTENANCE):
        server.maintenance.append({"id": row.get("id"), "properties": {
            "maintenanceConfigurationId": row.get("maintenanceConfigurationId")}})

    # Defender: resource-level pricing overrides the subscription's; Unhealthy assessments per machine.
    sub_pricing: dict[str, dict] = {}
    for row in _dicts(rows.get(Source.SECURITY, [])):
        rid = _lower(row.get("id"))
        doc = {"id": row.get("id"), "name": row.get("name"), "properties": {
            "pricingTier": row.get("pricingTier"), "subPlan": row.get("subPlan"),
            "displayName": row.get("displayName"), "status": {"code": row.get("statusCode")}}}
        if _lower(row.get("type")) == "microsoft.security/pricings":
            if _lower(row.get("name")) != "virtualmachines":
                continue
            owner = rid.split("/providers/microsoft.security/")[0]
            if owner in servers:
                servers[owner].pricing = doc
            else:
                sub_pricing[_lower(row.get("subscriptionId")) or owner.rsplit("/", 1)[-1]] = doc
        else:
            server = servers.get(_lower(row.get("resourceId"))) or servers.get(rid.split("/providers/microsoft.security/")[0])
            if server is not None:
                server.security_assessments.append(doc)
    for server in servers.values():
        if server.pricing is None:
            server.pricing = sub_pricing.get(_lower(server.machine.get("subscriptionId")))

    # Azure File Sync registered servers match machines by name (FQDN or computer name), fleet-wide.
    by_name: dict[str, list[RawServer]] = {}
    for server in servers.values():
        for name in _machine_names(server.machine):
            by_name.setdefault(name, []).append(server)
    for row in _dicts(rows.get(Source.FILE_SYNC, [])):
        name = _lower(row.get("serverName"))
        matches = by_name.get(name) or by_name.get(name.split(".", 1)[0]) or []
        for server in matches:
            server.file_sync.append({"id": row.get("id"), "properties": {
                k: row.get(k) for k in ("serverName", "lastHeartBeat", "agentVersion", "serverOSVersion")}})

    dcrs: dict[str, dict] = {}
    sentinel: set[str] = set()
    for row in _dicts(rows.get(Source.DCRS, [])):
        rtype = _lower(row.get("type"))
        if rtype == "microsoft.insights/datacollectionrules":
            dcrs[_lower(row.get("id"))] = {"id": row.get("id"), "name": row.get("name"), "properties": {
                "dataFlows": row.get("dataFlows") or [], "destinations": row.get("destinations") or {}}}
        elif rtype == "microsoft.operationsmanagement/solutions" and _lower(row.get("name")).startswith("securityinsights"):
            ws = _lower(row.get("workspaceResourceId"))
            if ws:
                sentinel.add(ws)

    ctx = FleetContext(now=now, dcrs=dcrs, sentinel_workspaces=frozenset(sentinel), required_tags=required_tags,
                       sources=dict(sources), stale_after_days=stale_after_days)
    return list(servers.values()), ctx


def _extension_doc(ext: dict) -> dict:
    return {"id": ext.get("id"), "name": ext.get("name"), "properties": {
        "publisher": ext.get("publisher"), "type": ext.get("type"), "typeHandlerVersion": ext.get("typeHandlerVersion"),
        "provisioningState": ext.get("provisioningState"), "enableAutomaticUpgrade": ext.get("enableAutomaticUpgrade")}}


def _machine_names(machine: dict) -> set[str]:
    props = machine.get("properties") if isinstance(machine.get("properties"), dict) else {}
    names = {_lower(machine.get("name"))}
    for key in ("machineFqdn", "dnsFqdn"):
        names.add(_lower(props.get(key)))
    os_profile = props.get("osProfile") if isinstance(props.get("osProfile"), dict) else {}
    names.add(_lower(os_profile.get("computerName")))
    iv = ((props.get("extended") or {}) if isinstance(props.get("extended"), dict) else {}).get("instanceView")
    if isinstance(iv, dict):
        names.add(_lower(iv.get("computerName")))
    names.discard("")
    return names
