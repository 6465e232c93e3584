"""The capability catalog: every column in each of its states, for each kind it applies to.

Documents are built here with small helpers, in the shapes of docs/fleet-format.md: ARM GET documents
for machines (VMs with ``properties.instanceView``) and Resource Graph rows (``arg_row``), child
documents with their fields under ``properties``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from wsam_tui.fleet.capabilities import (
    BY_ID,
    CATALOG,
    VALUE_LIMIT,
    build_server,
    evaluate,
    os_name_from_image,
)
from wsam_tui.fleet.model import (
    FleetContext,
    Group,
    Kind,
    RawServer,
    Source,
    SourceStatus,
    State,
    clean_text,
)

SUB = "00000000-0000-4000-8000-00000000000a"
OTHER_SUB = "00000000-0000-4000-8000-00000000000b"
TENANT = "10000000-0000-4000-8000-000000000001"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FETCHED = NOW - timedelta(minutes=5)
WS_SENTINEL = f"/subscriptions/{SUB}/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/workspaces/law-sentinel"
WS_PLAIN = f"/subscriptions/{SUB}/resourceGroups/rg-mon/providers/Microsoft.OperationalInsights/workspaces/law-ops"
DENIED = "no access (403 AuthorizationFailed)"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def ago(days: float = 0, hours: float = 0) -> str:
    return iso(NOW - timedelta(days=days, hours=hours))


# ---- machine documents ------------------------------------------------------------------------


def vm(name: str = "web-01", *, power: str | None = "running", agent: str | None = "Ready",
       identity: str | None = "SystemAssigned", tags: dict | None = None, security_type: str | None = None,
       assessment_mode: str = "AutomaticByPlatform", patch_mode: str = "AutomaticByPlatform",
       hotpatch: bool | None = None, os_name: str | None = "Windows Server 2022 Datacenter Azure Edition",
       sku: str = "2022-datacenter-azure-edition") -> dict:
    """An ARM GET document of a VM with $expand=instanceView."""
    statuses = [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}]
    if power:
        statuses.append({"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"})
    iv: dict = {"computerName": name, "osVersion": "10.0.20348.2340", "statuses": statuses}
    if os_name:
        iv["osName"] = os_name
    if agent is not None:
        iv["vmAgent"] = {"vmAgentVersion": "2.7.41491.1102",
                         "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": agent}]}
    patch = {"patchMode": patch_mode, "assessmentMode": assessment_mode}
    if hotpatch is not None:
        patch["enableHotpatching"] = hotpatch
    doc = {
        "id": f"/subscriptions/{SUB}/resourceGroups/RG-Web/providers/Microsoft.Compute/virtualMachines/{name}",
        "name": name, "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
        "tags": {"env": "prod", "owner": "ops", "costCenter": "42"} if tags is None else tags,
        "properties": {
            "vmId": f"vmid-{name}", "provisioningState": "Succeeded",
            "storageProfile": {"imageReference": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                                  "sku": sku, "version": "latest"},
                               "osDisk": {"osType": "Windows"}},
            "osProfile": {"computerName": name, "windowsConfiguration": {"provisionVMAgent": True, "patchSettings": patch}},
            "instanceView": iv,
        },
    }
    if identity:
        doc["identity"] = {"type": identity, "principalId": "p-1", "tenantId": TENANT}
    if security_type:
        doc["properties"]["securityProfile"] = {"securityType": security_type}
    return doc


def arc(name: str = "fs-01", *, status: str = "Connected", identity: str | None = "SystemAssigned",
        tags: dict | None = None, extensions_enabled: str = "true", guest_configuration: str = "true",
        assessment_mode: str = "AutomaticByPlatform", patch_mode: str = "AutomaticByPlatform",
        hotpatch_status: str | None = None, hotpatch_feature: str | None = None) -> dict:
    patch: dict = {"assessmentMode": assessment_mode, "patchMode": patch_mode}
    if hotpatch_status:
        patch["status"] = {"hotpatchEnablementStatus": hotpatch_status}
    props: dict = {
        "provisioningState": "Succeeded", "status": status, "lastStatusChange": ago(3),
        "agentVersion": "1.47.02878.1850", "osName": "windows", "osVersion": "10.0.17763.5576", "osType": "windows",
        "osSku": "Windows Server 2019 Datacenter", "machineFqdn": f"{name}.corp.contoso.com",
        "osProfile": {"computerName": name, "windowsConfiguration": {"patchSettings": patch}},
        "agentConfiguration": {"extensionsEnabled": extensions_enabled, "guestConfigurationEnabled": guest_configuration},
    }
    if hotpatch_feature:
        props["licenseProfile"] = {"productProfile": {"productType": "WindowsServer", "subscriptionStatus": "Enabled",
                                                      "productFeatures": [{"name": "Hotpatch", "subscriptionStatus": hotpatch_feature}]}}
    doc = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/machines/{name}",
        "name": name, "type": "Microsoft.HybridCompute/machines", "location": "westeurope",
        "tags": {"env": "prod", "owner": "ops", "costCenter": "42"} if tags is None else tags,
        "properties": props,
    }
    if identity:
        doc["identity"] = {"type": identity, "principalId": "p-2", "tenantId": TENANT}
    return doc


def arg_row(doc: dict) -> dict:
    """The Resource Graph row of a machine document: lower-case type, extra columns, a VM's instanceView
    replaced by properties.extended.instanceView (power state, OS, computer name; no agent)."""
    doc = copy.deepcopy(doc)
    props = doc.get("properties") or {}
    if doc["type"].lower() == "microsoft.compute/virtualmachines":
        iv = props.pop("instanceView", {})
        ext = {k: iv[k] for k in ("computerName", "osName", "osVersion") if k in iv}
        power = [s for s in iv.get("statuses", []) if s["code"].startswith("PowerState/")]
        if power:
            ext["powerState"] = {"code": power[0]["code"], "displayStatus": power[0]["displayStatus"]}
        props["extended"] = {"instanceView": ext}
    rg = doc["id"].split("/")[4]
    return {**doc, "type": doc["type"].lower(), "subscriptionId": SUB, "resourceGroup": rg.lower(), "tenantId": TENANT,
            "properties": props}


# ---- child documents --------------------------------------------------------------------------

GC = ("Microsoft.GuestConfiguration", "ConfigurationforWindows")
MDE = ("Microsoft.Azure.AzureDefenderForServers", "MDE.Windows")
AMA = ("Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent")
MMA = ("Microsoft.EnterpriseCloud.Monitoring", "MicrosoftMonitoringAgent")
DEP = ("Microsoft.Azure.Monitoring.DependencyAgent", "DependencyAgentWindows")
CT = ("Microsoft.Azure.ChangeTrackingAndInventory", "ChangeTracking-Windows")
WAC = ("Microsoft.AdminCenter", "AdminCenter")
AAD = ("Microsoft.Azure.ActiveDirectory", "AADLoginForWindows")
CSE = ("Microsoft.Compute", "CustomScriptExtension")


def ext(machine: dict, identity: tuple[str, str], state: str = "Succeeded", *, name: str | None = None,
        version: str = "1.0") -> dict:
    publisher, etype = identity
    name = name or f"x-{etype}"  # names are free: detectors must not rely on them
    return {"id": f"{machine['id']}/extensions/{name}", "name": name, "type": machine["type"] + "/extensions",
            "properties": {"publisher": publisher, "type": etype, "typeHandlerVersion": version,
                           "provisioningState": state}}


def gc_assignment(machine: dict, status: str, name: str = "AzureWindowsBaseline") -> dict:
    return {"id": f"{machine['id']}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/{name}",
            "name": name, "properties": {"complianceStatus": status, "guestConfiguration": {"name": name}}}


def policy_state(machine: dict, state: str, n: int) -> dict:
    return {"id": f"{machine['id']}/providers/Microsoft.PolicyInsights/policyStates/s{n}",
            "properties": {"complianceState": state, "policyDefinitionName": f"def-{n}"}}


def pricing(tier: str, sub_plan: str = "P2") -> dict:
    return {"id": f"/subscriptions/{SUB}/providers/Microsoft.Security/pricings/VirtualMachines", "name": "VirtualMachines",
            "properties": {"pricingTier": tier, "subPlan": sub_plan}}


def assessment(machine: dict, code: str, n: int = 1) -> dict:
    return {"id": f"{machine['id']}/providers/Microsoft.Security/assessments/a{n}",
            "properties": {"displayName": f"Finding {n}", "status": {"code": code}, "resourceDetails": {"Id": machine["id"]}}}


def backup_item(machine: dict, state: str = "Protected", last: str | None = "Completed", days: float | None = 1,
                *, mab: bool = False) -> dict:
    props: dict = {"protectionState": state, "sourceResourceId": machine["id"],
                   "backupManagementType": "MAB" if mab else "AzureIaasVM"}
    if last:
        props["lastBackupStatus"] = last
    if days is not None:
        props["lastBackupTime"] = ago(days)
    return {"id": f"/subscriptions/{SUB}/resourceGroups/rg-bk/providers/Microsoft.RecoveryServices/vaults/vault-1/"
                  f"backupFabrics/Azure/protectionContainers/c1/protectedItems/{machine['name']}", "properties": props}


def replication_item(machine: dict, health: str = "Normal", state: str = "Protected") -> dict:
    return {"id": f"/subscriptions/{SUB}/resourceGroups/rg-dr/providers/Microsoft.RecoveryServices/vaults/vault-dr/"
                  f"replicationFabrics/f/replicationProtectionContainers/c/replicationProtectedItems/{machine['name']}",
            "properties": {"protectionState": state, "replicationHealth": health,
                           "providerSpecificDetails": {"instanceType": "A2A", "fabricObjectId": machine["id"]}}}


def dcr(name: str, streams: list[str], workspace: str = WS_PLAIN) -> dict:
    return {"id": f"/subscriptions/{SUB}/resourceGroups/rg-mon/providers/Microsoft.Insights/dataCollectionRules/{name}",
            "name": name,
            "properties": {"destinations": {"logAnalytics": [{"name": "la", "workspaceResourceId": workspace}]},
                           "dataFlows": [{"streams": streams, "destinations": ["la"]}]}}


DCR_SECURITY = dcr("dcr-security", ["Microsoft-SecurityEvent"], WS_SENTINEL)
DCR_WINEVENT = dcr("dcr-winevent", ["Microsoft-WindowsEvent"], WS_SENTINEL)
DCR_SECURITY_PLAIN = dcr("dcr-security-plain", ["Microsoft-SecurityEvent"], WS_PLAIN)
DCR_CHANGE = dcr("dcr-ct", ["Microsoft-ConfigurationChange", "Microsoft-ConfigurationChangeV2"])
DCR_PERF = dcr("dcr-insights", ["Microsoft-InsightsMetrics", "Microsoft-Perf"])
ALL_DCRS = {d["id"].lower(): d for d in (DCR_SECURITY, DCR_WINEVENT, DCR_SECURITY_PLAIN, DCR_CHANGE, DCR_PERF)}


def assoc(machine: dict, rule: dict) -> dict:
    return {"id": f"{machine['id']}/providers/Microsoft.Insights/dataCollectionRuleAssociations/a-{rule['name']}",
            "properties": {"dataCollectionRuleId": rule["id"]}}


def patch(machine: dict, status: str = "Succeeded", *, critical: int = 0, security: int = 0, other: int = 2,
          reboot: bool = False, days: float = 1) -> dict:
    return {"id": f"{machine['id']}/patchAssessmentResults/latest",
            "properties": {"status": status, "rebootPending": reboot, "lastModifiedDateTime": ago(days),
                           "availablePatchCountByClassification": {"critical": critical, "security": security,
                                                                   "updateRollup": other, "definition": 0}}}


def automanage(machine: dict, status: str) -> dict:
    return {"id": f"{machine['id']}/providers/Microsoft.Automanage/configurationProfileAssignments/default",
            "properties": {"configurationProfile": "/providers/Microsoft.Automanage/bestPractices/AzureBestPracticesProduction",
                           "status": status}}


def maintenance(machine: dict) -> dict:
    return {"id": f"{machine['id']}/providers/Microsoft.Maintenance/configurationAssignments/weekly",
            "properties": {"maintenanceConfigurationId": f"/subscriptions/{SUB}/resourceGroups/rg-upd/providers/"
                                                         "Microsoft.Maintenance/maintenanceConfigurations/patch-tuesday"}}


def sync_server(machine: dict, days: float) -> dict:
    return {"id": f"/subscriptions/{SUB}/resourceGroups/rg-fs/providers/Microsoft.StorageSync/storageSyncServices/sync-1/"
                  "registeredServers/0f1e2d3c",
            "properties": {"serverName": machine["name"], "agentVersion": "17.2.0.0", "lastHeartBeat": ago(days)}}


def probe(**features: bool) -> dict:
    return {"fetchedAt": ago(hours=2), **features}


# ---- context ----------------------------------------------------------------------------------


def context(*, failed: dict[Source, str] | None = None, unfetched: tuple[Source, ...] = (), **kwargs) -> FleetContext:
    sources = {}
    for sub in (SUB.lower(), OTHER_SUB.lower()):
        for source in Source:
            if source is Source.IN_GUEST:
                continue  # a per-server probe: the inventory records no subscription-wide fetch for it
            sources[(sub, source)] = SourceStatus(fetched_at=FETCHED)
    for source, error in (failed or {}).items():
        sources[(SUB.lower(), source)] = SourceStatus(error=error)
    for source in unfetched:
        sources.pop((SUB.lower(), source), None)
    kwargs.setdefault("dcrs", ALL_DCRS)
    kwargs.setdefault("sentinel_workspaces", frozenset({WS_SENTINEL.lower()}))
    return FleetContext(now=NOW, sources=sources, subscription_tenants={SUB.lower(): TENANT}, **kwargs)


CTX = context()


def cell(raw: RawServer, cap: str, ctx: FleetContext = CTX):
    return evaluate(raw, ctx)[cap]


# ---- the state table --------------------------------------------------------------------------


@dataclass
class Case:
    cap: str
    kind: Kind
    build: Callable[[], RawServer]
    state: State
    flags: tuple[str, ...] = ()
    summary: tuple[str, ...] = ()  # substrings the summary must contain
    ctx: dict = field(default_factory=dict)


def machine_for(kind: Kind, **kw) -> dict:
    return vm(**kw) if kind is Kind.VM else arc(**kw)


CASES: list[tuple[str, Case]] = []


def case(label: str, cap: str, kind: Kind, build, state: State, flags=(), summary=(), **ctx) -> None:
    CASES.append((f"{cap}-{kind.value}-{label}", Case(cap, kind, build, state, tuple(flags), tuple(summary), ctx)))


def with_docs(m: dict, *, exts=(), **fields) -> RawServer:
    return RawServer(machine=m, extensions=[ext(m, *e) if isinstance(e, tuple) and isinstance(e[0], tuple) else ext(m, e)
                                            for e in exts], **fields)


# policy
def _vm_policy(statuses=("Compliant",), gc_state="Succeeded", identity="SystemAssigned", states=()):
    m = vm(identity=identity)
    exts = [(GC, gc_state)] if gc_state else []
    return with_docs(m, exts=exts, guest_configuration=[gc_assignment(m, s, f"cfg{i}") for i, s in enumerate(statuses)],
                     policy_states=[policy_state(m, s, i) for i, s in enumerate(states)])


def _arc_policy(statuses=("Compliant",), enabled="true"):
    m = arc(guest_configuration=enabled)
    return with_docs(m, guest_configuration=[gc_assignment(m, s, f"cfg{i}") for i, s in enumerate(statuses)])


case("all-compliant", "policy", Kind.VM, lambda: _vm_policy(("Compliant", "Compliant")), State.ON, summary=["2 assignments"])
case("non-compliant", "policy", Kind.VM, lambda: _vm_policy(("Compliant", "NonCompliant")), State.PARTIAL, ["non-compliant"])
case("pending", "policy", Kind.VM, lambda: _vm_policy(("Pending",)), State.PARTIAL)
case("no-identity", "policy", Kind.VM, lambda: _vm_policy(identity=None), State.PARTIAL, ["prerequisite-missing"],
     ["no system-assigned identity"])
case("user-identity-only", "policy", Kind.VM, lambda: _vm_policy(identity="UserAssigned"), State.PARTIAL, ["prerequisite-missing"])
case("extension-failed", "policy", Kind.VM, lambda: _vm_policy(gc_state="Failed"), State.PARTIAL, ["prerequisite-missing"])
case("no-extension", "policy", Kind.VM, lambda: _vm_policy(gc_state=None), State.PARTIAL, ["prerequisite-missing"])
case("extension-only", "policy", Kind.VM, lambda: _vm_policy(statuses=()), State.PARTIAL)
case("nothing", "policy", Kind.VM, lambda: _vm_policy(statuses=(), gc_state=None), State.OFF)
case("policy-states-note", "policy", Kind.VM,
     lambda: _vm_policy(states=("NonCompliant", "NonCompliant", "Compliant")), State.ON, summary=["2 non-compliant policies"])
case("all-compliant", "policy", Kind.ARC, lambda: _arc_policy(), State.ON, summary=["built into the Arc agent"])
case("non-compliant", "policy", Kind.ARC, lambda: _arc_policy(("NonCompliant",)), State.PARTIAL, ["non-compliant"])
case("pending", "policy", Kind.ARC, lambda: _arc_policy(("Pending",)), State.PARTIAL)
case("disabled", "policy", Kind.ARC, lambda: _arc_policy(enabled="false"), State.PARTIAL, ["prerequisite-missing"],
     ["disabled on the agent"])
case("nothing", "policy", Kind.ARC, lambda: _arc_policy(()), State.OFF)

# tags
for kind in Kind:
    case("all-case-insensitive", "tags", kind, lambda k=kind: RawServer(machine_for(k, tags={"ENV": "prod", "Owner": "a", "costcenter": "7"})),
         State.ON)
    case("some", "tags", kind, lambda k=kind: RawServer(machine_for(k, tags={"env": "prod", "owner": " ", "app": "x"})),
         State.PARTIAL, ["missing-tags"], ["env set", "owner empty", "costCenter missing"])
    case("none-required", "tags", kind, lambda k=kind: RawServer(machine_for(k, tags={"app": "x"})), State.OFF, ["missing-tags"])
    case("no-tags", "tags", kind, lambda k=kind: RawServer(machine_for(k, tags={})), State.OFF, summary=["no tags"])


# defender
def _defender(kind, tier="Standard", mde="Succeeded", unhealthy=0, with_pricing=True):
    m = machine_for(kind)
    return with_docs(m, exts=[(MDE, mde)] if mde else [], pricing=pricing(tier) if with_pricing else None,
                     security_assessments=[assessment(m, "Unhealthy", i) for i in range(unhealthy)]
                     + [assessment(m, "Healthy", 99)])


for kind in Kind:
    case("standard-mde", "defender", kind, lambda k=kind: _defender(k), State.ON, summary=["Standard (P2)", "MDE.Windows"])
    case("unhealthy", "defender", kind, lambda k=kind: _defender(k, unhealthy=3), State.PARTIAL, ["unhealthy-assessments"],
         ["3 unhealthy assessments"])
    case("standard-no-mde", "defender", kind, lambda k=kind: _defender(k, mde=None), State.PARTIAL)
    case("free-with-mde", "defender", kind, lambda k=kind: _defender(k, tier="Free"), State.PARTIAL)
    case("mde-failed", "defender", kind, lambda k=kind: _defender(k, mde="Failed"), State.PARTIAL, ["extension-failed"])
    case("free-no-mde", "defender", kind, lambda k=kind: _defender(k, tier="Free", mde=None), State.OFF)
    case("no-pricing", "defender", kind, lambda k=kind: _defender(k, mde=None, with_pricing=False), State.OFF, summary=["Free"])


# sentinel
def _sentinel(kind, ama="Succeeded", rules=(DCR_SECURITY,)):
    m = machine_for(kind)
    return with_docs(m, exts=[(AMA, ama)] if ama else [], dcr_associations=[assoc(m, r) for r in rules])


for kind in Kind:
    case("ama-securityevent", "sentinel", kind, lambda k=kind: _sentinel(k), State.ON, summary=["law-sentinel"])
    case("ama-windowsevent", "sentinel", kind, lambda k=kind: _sentinel(k, rules=(DCR_WINEVENT,)), State.ON)
    case("workspace-without-sentinel", "sentinel", kind, lambda k=kind: _sentinel(k, rules=(DCR_SECURITY_PLAIN,)),
         State.PARTIAL, ["no-sentinel-workspace"], ["without Sentinel"])
    case("dcr-without-ama", "sentinel", kind, lambda k=kind: _sentinel(k, ama=None), State.PARTIAL,
         summary=["no AzureMonitorWindowsAgent"])
    case("ama-failed", "sentinel", kind, lambda k=kind: _sentinel(k, ama="Failed"), State.PARTIAL, ["agent-failed"])
    case("ama-only", "sentinel", kind, lambda k=kind: _sentinel(k, rules=(DCR_PERF,)), State.OFF)
    case("nothing", "sentinel", kind, lambda k=kind: _sentinel(k, ama=None, rules=()), State.OFF)


# backup
def _backup(kind, *args, **kw):
    m = machine_for(kind)
    return RawServer(m, backup_items=[backup_item(m, *args, mab=kind is Kind.ARC, **kw)] if args != (None,) else [])


for kind in Kind:
    case("protected", "backup", kind, lambda k=kind: _backup(k, "Protected"), State.ON, summary=["vault-1"])
    case("ir-pending", "backup", kind, lambda k=kind: _backup(k, "IRPending", None, None), State.ON,
         summary=["initial backup pending"])
    case("protection-error", "backup", kind, lambda k=kind: _backup(k, "ProtectionError"), State.PARTIAL, ["protection-error"])
    case("protection-stopped", "backup", kind, lambda k=kind: _backup(k, "ProtectionStopped"), State.PARTIAL, ["protection-stopped"])
    case("protection-paused", "backup", kind, lambda k=kind: _backup(k, "ProtectionPaused"), State.PARTIAL, ["protection-paused"])
    case("last-failed", "backup", kind, lambda k=kind: _backup(k, "Protected", "Failed"), State.PARTIAL, ["backup-failed"])
    case("stale", "backup", kind, lambda k=kind: _backup(k, "Protected", "Completed", 30), State.PARTIAL, ["stale-backup"])
    case("none", "backup", kind, lambda k=kind: _backup(k, None), State.OFF)
case("mars", "backup", Kind.ARC, lambda: _backup(Kind.ARC, "Protected"), State.ON, summary=["MARS"])


# site recovery
def _asr(kind, *args):
    m = machine_for(kind)
    return RawServer(m, replication_items=[replication_item(m, *args)] if args != (None,) else [])


for kind in Kind:
    case("normal", "siterecovery", kind, lambda k=kind: _asr(k, "Normal"), State.ON)
    case("warning", "siterecovery", kind, lambda k=kind: _asr(k, "Warning"), State.PARTIAL, ["replication-warning"])
    case("critical", "siterecovery", kind, lambda k=kind: _asr(k, "Critical"), State.PARTIAL, ["replication-critical"])
    case("not-protected", "siterecovery", kind, lambda k=kind: _asr(k, "Normal", "UnprotectedStatesBegin"), State.PARTIAL)
    case("none", "siterecovery", kind, lambda k=kind: _asr(k, None), State.OFF)

# confidential
case("cvm", "confidential", Kind.VM, lambda: RawServer(vm(security_type="ConfidentialVM")), State.ON)
case("trusted-launch", "confidential", Kind.VM, lambda: RawServer(vm(security_type="TrustedLaunch")), State.OFF,
     summary=["TrustedLaunch"])
case("absent-is-standard", "confidential", Kind.VM, lambda: RawServer(vm()), State.OFF, summary=["Standard"])
case("any", "confidential", Kind.ARC, lambda: RawServer(arc()), State.NOT_APPLICABLE)


# updates
def _updates(kind, mode="AutomaticByPlatform", *, assessed=True, maint=False, **kw):
    m = machine_for(kind, assessment_mode=mode)
    return RawServer(m, patch_assessment=patch(m, **kw) if assessed else None, maintenance=[maintenance(m)] if maint else [])


for kind in Kind:
    case("healthy", "updates", kind, lambda k=kind: _updates(k), State.ON,
         summary=["patchMode AutomaticByPlatform", "0 critical, 0 security, 2 other"])
    case("scheduled", "updates", kind, lambda k=kind: _updates(k, maint=True), State.ON, summary=["scheduled patching (patch-tuesday)"])
    case("stale", "updates", kind, lambda k=kind: _updates(k, days=20), State.PARTIAL, ["stale-assessment"])
    case("failed", "updates", kind, lambda k=kind: _updates(k, "AutomaticByPlatform", status="Failed"), State.PARTIAL,
         ["assessment-failed"])
    case("pending-critical", "updates", kind, lambda k=kind: _updates(k, critical=1, security=2), State.PARTIAL,
         ["pending-critical"], ["1 critical, 2 security"])
    case("reboot-pending", "updates", kind, lambda k=kind: _updates(k, reboot=True), State.PARTIAL, ["reboot-pending"])
    case("periodic-off-recent", "updates", kind, lambda k=kind: _updates(k, "ImageDefault"), State.PARTIAL,
         summary=["periodic assessment off"])
    case("periodic-on-never-assessed", "updates", kind, lambda k=kind: _updates(k, assessed=False), State.PARTIAL)
    case("nothing", "updates", kind, lambda k=kind: _updates(k, "ImageDefault", assessed=False), State.OFF)


# change tracking
def _ct(kind, ct="Succeeded", ama="Succeeded", rules=(DCR_CHANGE,)):
    m = machine_for(kind)
    exts = ([(CT, ct)] if ct else []) + ([(AMA, ama)] if ama else [])
    return with_docs(m, exts=exts, dcr_associations=[assoc(m, r) for r in rules])


for kind in Kind:
    case("complete", "changetracking", kind, lambda k=kind: _ct(k), State.ON)
    case("no-dcr", "changetracking", kind, lambda k=kind: _ct(k, rules=(DCR_PERF,)), State.PARTIAL, summary=["no change-tracking DCR"])
    case("dcr-no-extension", "changetracking", kind, lambda k=kind: _ct(k, ct=None), State.PARTIAL)
    case("extension-failed", "changetracking", kind, lambda k=kind: _ct(k, ct="Failed"), State.PARTIAL, ["extension-failed"])
    case("no-ama", "changetracking", kind, lambda k=kind: _ct(k, ama=None), State.PARTIAL, summary=["no AzureMonitorWindowsAgent"])
    case("ama-only", "changetracking", kind, lambda k=kind: _ct(k, ct=None, rules=(DCR_PERF,)), State.OFF)
    case("nothing", "changetracking", kind, lambda k=kind: _ct(k, ct=None, ama=None, rules=()), State.OFF)


# automanage
def _am(m, status=None, in_guest=None):
    return RawServer(m, automanage=[automanage(m, status)] if status else [], in_guest=in_guest)


for kind in Kind:
    case("compliant", "automanage", kind, lambda k=kind: _am(machine_for(k), "Compliant"), State.ON,
         summary=["AzureBestPracticesProduction"])
    case("non-compliant", "automanage", kind, lambda k=kind: _am(machine_for(k), "NonCompliant"), State.PARTIAL, ["non-compliant"])
    case("nothing", "automanage", kind, lambda k=kind: _am(machine_for(k)), State.OFF)
case("hotpatch", "automanage", Kind.VM, lambda: _am(vm(hotpatch=True)), State.ON, summary=["hotpatch enabled"])
case("hotpatch-wrong-mode", "automanage", Kind.VM, lambda: _am(vm(hotpatch=True, patch_mode="AutomaticByOS")), State.PARTIAL,
     ["hotpatch-pending"])
case("hotpatch-false", "automanage", Kind.VM, lambda: _am(vm(hotpatch=False)), State.OFF)
case("hotpatch-feature", "automanage", Kind.ARC, lambda: _am(arc(hotpatch_feature="Enabled")), State.ON)
case("hotpatch-status", "automanage", Kind.ARC, lambda: _am(arc(hotpatch_status="Enabled")), State.ON)
case("hotpatch-action-required", "automanage", Kind.ARC, lambda: _am(arc(hotpatch_status="ActionRequired")), State.PARTIAL,
     ["hotpatch-pending"])
case("hotpatch-pending-evaluation", "automanage", Kind.ARC, lambda: _am(arc(hotpatch_status="PendingEvaluation")),
     State.PARTIAL)
case("hotpatch-disabled", "automanage", Kind.ARC, lambda: _am(arc(hotpatch_status="Disabled")), State.OFF)
case("smb-over-quic-probe", "automanage", Kind.VM, lambda: _am(vm(), "Compliant", probe(smbOverQuic=True)), State.ON,
     summary=["SMB over QUIC on"])


# extensions
def _exts(m, *states):
    return with_docs(m, exts=[((CSE[0], f"T{i}"), s) for i, s in enumerate(states)])


for kind in Kind:
    case("all-succeeded", "extensions", kind, lambda k=kind: _exts(machine_for(k), "Succeeded", "Succeeded"), State.ON,
         summary=["2 extensions, all Succeeded"])
    case("failed", "extensions", kind, lambda k=kind: _exts(machine_for(k), "Succeeded", "Failed", "Failed"), State.PARTIAL,
         ["extension-failed"], ["2 failed"])
    case("transitioning", "extensions", kind, lambda k=kind: _exts(machine_for(k), "Succeeded", "Creating"), State.PARTIAL,
         ["extension-transitioning"])
    case("none", "extensions", kind, lambda k=kind: _exts(machine_for(k)), State.OFF)
case("disabled", "extensions", Kind.ARC, lambda: _exts(arc(extensions_enabled="false"), "Succeeded"), State.OFF,
     ["extensions-disabled"])

# Windows Admin Center
for kind in Kind:
    case("succeeded", "wac", kind, lambda k=kind: with_docs(machine_for(k), exts=[(WAC, "Succeeded")]), State.ON)
    case("failed", "wac", kind, lambda k=kind: with_docs(machine_for(k), exts=[(WAC, "Failed")]), State.PARTIAL, ["extension-failed"])
    case("updating", "wac", kind, lambda k=kind: with_docs(machine_for(k), exts=[(WAC, "Updating")]), State.PARTIAL)
    case("absent", "wac", kind, lambda k=kind: with_docs(machine_for(k), exts=[(MDE, "Succeeded")]), State.OFF)

# Run Command
case("running-ready", "runcommand", Kind.VM, lambda: RawServer(vm()), State.ON)
case("running-not-ready", "runcommand", Kind.VM, lambda: RawServer(vm(agent="Not Ready")), State.PARTIAL, ["agent-not-ready"])
case("running-arg-row", "runcommand", Kind.VM, lambda: RawServer(arg_row(vm())), State.ON, ["agent-unverified"],
     ["unverified"])
case("stopped", "runcommand", Kind.VM, lambda: RawServer(vm(power="stopped")), State.OFF)
case("deallocated", "runcommand", Kind.VM, lambda: RawServer(arg_row(vm(power="deallocated"))), State.OFF)
case("starting", "runcommand", Kind.VM, lambda: RawServer(vm(power="starting")), State.PARTIAL)
case("power-unknown", "runcommand", Kind.VM, lambda: RawServer(vm(power="unknown")), State.UNKNOWN)
case("connected", "runcommand", Kind.ARC, lambda: RawServer(arc()), State.ON, summary=["Connected since"])
case("error", "runcommand", Kind.ARC, lambda: RawServer(arc(status="Error")), State.PARTIAL)
for status in ("Disconnected", "Expired", "AwaitingConnection"):
    case(status.lower(), "runcommand", Kind.ARC, lambda s=status: RawServer(arc(status=s)), State.OFF, summary=[f"{status} since"])


# monitor
def _mon(kind, *exts, rules=(DCR_PERF,)):
    m = machine_for(kind)
    return with_docs(m, exts=list(exts), dcr_associations=[assoc(m, r) for r in rules])


for kind in Kind:
    case("ama-dcr", "monitor", kind, lambda k=kind: _mon(k, (AMA, "Succeeded")), State.ON, summary=["dcr-insights"])
    case("vm-insights", "monitor", kind, lambda k=kind: _mon(k, (AMA, "Succeeded"), (DEP, "Succeeded")), State.ON,
         summary=["VM insights (DependencyAgentWindows"])
    case("ama-and-mma", "monitor", kind, lambda k=kind: _mon(k, (AMA, "Succeeded"), (MMA, "Succeeded")), State.ON, ["legacy-mma"])
    case("ama-no-dcr", "monitor", kind, lambda k=kind: _mon(k, (AMA, "Succeeded"), rules=()), State.PARTIAL,
         summary=["no DCR association"])
    case("ama-failed", "monitor", kind, lambda k=kind: _mon(k, (AMA, "Failed")), State.PARTIAL, ["agent-failed"])
    case("mma-only", "monitor", kind, lambda k=kind: _mon(k, (MMA, "Succeeded"), rules=()), State.PARTIAL, ["legacy-mma"],
         ["legacy Log Analytics agent"])
    case("mma-with-dcr-no-ama", "monitor", kind, lambda k=kind: _mon(k, (MMA, "Succeeded")), State.PARTIAL, ["legacy-mma"])
    case("nothing", "monitor", kind, lambda k=kind: _mon(k, rules=()), State.OFF)

# Entra ID login
case("ext-and-identity", "entra", Kind.VM, lambda: with_docs(vm(), exts=[(AAD, "Succeeded")]), State.ON)
case("ext-failed", "entra", Kind.VM, lambda: with_docs(vm(), exts=[(AAD, "Failed")]), State.PARTIAL, ["extension-failed"])
case("no-identity", "entra", Kind.VM, lambda: with_docs(vm(identity=None), exts=[(AAD, "Succeeded")]), State.PARTIAL,
     ["no-identity"])
case("absent", "entra", Kind.VM, lambda: RawServer(vm()), State.OFF)
case("any", "entra", Kind.ARC, lambda: with_docs(arc(), exts=[(AAD, "Succeeded")]), State.NOT_APPLICABLE)

# managed identity
for kind in Kind:
    case("system", "identity", kind, lambda k=kind: RawServer(machine_for(k)), State.ON, summary=["system-assigned"])
    case("none", "identity", kind, lambda k=kind: RawServer(machine_for(k, identity=None)), State.OFF)
case("user-only", "identity", Kind.VM, lambda: RawServer(vm(identity="UserAssigned")), State.ON, summary=["user-assigned only"])
case("system-and-user", "identity", Kind.VM, lambda: RawServer(vm(identity="SystemAssigned, UserAssigned")), State.ON)
case("type-none", "identity", Kind.VM, lambda: RawServer(vm(identity="None")), State.OFF)

# File Sync
for kind in Kind:
    case("fresh", "filesync", kind, lambda k=kind: RawServer(m := machine_for(k), file_sync=[sync_server(m, 0.1)]), State.ON,
         summary=["sync-1"])
    case("stale", "filesync", kind, lambda k=kind: RawServer(m := machine_for(k), file_sync=[sync_server(m, 30)]), State.PARTIAL,
         ["stale-heartbeat"])
    case("none", "filesync", kind, lambda k=kind: RawServer(machine_for(k)), State.OFF)

# in-guest features
for kind in Kind:
    case("not-probed", "inguest", kind, lambda k=kind: RawServer(machine_for(k)), State.UNKNOWN)
    case("adapter", "inguest", kind,
         lambda k=kind: RawServer(machine_for(k), in_guest=probe(azureNetworkAdapter=True, extendedNetwork=False, storageReplica=False)),
         State.ON, summary=["Azure Network Adapter yes", "Extended Network no", "Storage Replica no"])
    case("replica", "inguest", kind,
         lambda k=kind: RawServer(machine_for(k), in_guest=probe(azureNetworkAdapter=False, extendedNetwork=False, storageReplica=True)),
         State.ON)
    case("none", "inguest", kind,
         lambda k=kind: RawServer(machine_for(k), in_guest=probe(azureNetworkAdapter=False, extendedNetwork=False, storageReplica=False)),
         State.OFF)


@pytest.mark.parametrize("c", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_detector_states(c: Case) -> None:
    raw = c.build()
    ctx = context(**c.ctx) if c.ctx else CTX
    got = cell(raw, c.cap, ctx)
    assert got.capability == c.cap
    assert got.state is c.state, got
    for flag in c.flags:
        assert flag in got.flags, got
    for text in c.summary:
        assert text in got.summary, got
    if c.state in (State.ON, State.PARTIAL, State.OFF):
        assert got.evidence, f"{c.cap}: a decided cell carries its evidence"
        assert got.unknown_reason is None


TWO_STATE = {"confidential", "identity", "inguest"}  # no partial state by their rules


def test_every_column_reaches_every_state_for_each_kind_it_applies_to() -> None:
    seen = {(c.cap, c.kind, c.state) for _, c in CASES}
    for cap in CATALOG:
        for kind in Kind:
            if kind in cap.applies_to:
                wanted = (State.ON, State.OFF) if cap.id in TWO_STATE else (State.ON, State.PARTIAL, State.OFF)
                for state in wanted:
                    assert (cap.id, kind, state) in seen, (cap.id, kind, state)


# ---- catalog, N/A, UNKNOWN -----------------------------------------------------------------------


def test_catalog_order_and_shape() -> None:
    ids = [c.id for c in CATALOG]
    assert ids == ["policy", "tags", "defender", "sentinel", "backup", "siterecovery", "confidential", "updates",
                   "changetracking", "automanage", "extensions", "wac", "runcommand", "monitor", "entra", "identity",
                   "filesync", "inguest"]
    groups = [c.group for c in CATALOG]
    order = [Group.GOVERN, Group.PROTECT, Group.CONFIGURE, Group.MONITOR, Group.EXTEND]
    assert groups == sorted(groups, key=order.index)
    assert set(BY_ID) == set(ids)
    for cap in CATALOG:
        assert 1 <= len(cap.short) <= 4 and cap.sources and cap.description.endswith(".")
    assert len({c.short for c in CATALOG}) == len(CATALOG)
    assert BY_ID["confidential"].applies_to == {Kind.VM} and BY_ID["entra"].applies_to == {Kind.VM}


def test_detect_callable_matches_evaluate() -> None:
    m = vm()
    raw = with_docs(m, exts=[(AMA, "Succeeded")], dcr_associations=[assoc(m, DCR_PERF)])
    states = evaluate(raw, CTX)
    for cap in CATALOG:
        if Kind.VM in cap.applies_to:
            assert cap.detect(raw, CTX) == states[cap.id]


@pytest.mark.parametrize("cap", [c.id for c in CATALOG if c.applies_to != {Kind.VM, Kind.ARC}])
def test_not_applicable_comes_first(cap: str) -> None:
    every_source_denied = context(failed=dict.fromkeys(Source, DENIED))
    got = cell(RawServer(arc()), cap, every_source_denied)
    assert got.state is State.NOT_APPLICABLE and "Arc servers" in got.summary


@pytest.mark.parametrize("cap", [c.id for c in CATALOG])
@pytest.mark.parametrize("why", ["denied", "not-fetched"])
def test_unknown_when_a_source_is_missing(cap: str, why: str) -> None:
    source = BY_ID[cap].sources[-1]
    ctx = context(failed={source: DENIED}) if why == "denied" else context(unfetched=(source,))
    m = vm()
    raw = RawServer(m, in_guest=probe(storageReplica=True))
    got = cell(raw, cap, ctx)
    if source is Source.IN_GUEST and why == "not-fetched":
        assert got.state is State.ON  # a per-server probe needs no subscription-wide fetch
        return
    assert got.state is State.UNKNOWN
    expected = DENIED if why == "denied" else "not fetched"
    assert expected in got.unknown_reason and source.value in got.unknown_reason
    assert expected in got.summary


def test_unknown_is_per_subscription() -> None:
    m = vm()
    other = copy.deepcopy(m)
    other["id"] = other["id"].replace(SUB, OTHER_SUB)
    ctx = context(failed={Source.BACKUP: DENIED})
    assert cell(RawServer(m), "backup", ctx).state is State.UNKNOWN
    assert cell(RawServer(other), "backup", ctx).state is State.OFF
    assert cell(RawServer(m), "siterecovery", ctx).state is State.OFF


def test_in_guest_not_probed_reason() -> None:
    got = cell(RawServer(arc()), "inguest")
    assert got.state is State.UNKNOWN
    assert got.unknown_reason == "not probed (opt-in Run Command probe)"


def test_in_guest_evidence_carries_probe_time() -> None:
    got = cell(RawServer(vm(), in_guest=probe(azureNetworkAdapter=True, extendedNetwork=False, storageReplica=False)), "inguest")
    assert {e.fetched_at for e in got.evidence} == {NOW - timedelta(hours=2)}
    assert "probed 2h ago" in got.summary


def test_smb_over_quic_only_from_a_probe() -> None:
    assert "QUIC" not in cell(_am(vm(), "Compliant"), "automanage").summary
    assert "SMB over QUIC off" in cell(_am(vm(), "Compliant", probe(smbOverQuic=False)), "automanage").summary


# ---- specific rules ---------------------------------------------------------------------------


def test_legacy_mma_is_flagged_and_never_on() -> None:
    for kind in Kind:
        m = machine_for(kind)
        alone = with_docs(m, exts=[(MMA, "Succeeded")], dcr_associations=[assoc(m, DCR_PERF)])
        got = cell(alone, "monitor")
        assert got.state is State.PARTIAL and "legacy-mma" in got.flags
        with_ama = with_docs(m, exts=[(MMA, "Succeeded"), (AMA, "Succeeded")], dcr_associations=[assoc(m, DCR_PERF)])
        got = cell(with_ama, "monitor")
        assert got.state is State.ON and "legacy-mma" in got.flags


def test_extensions_match_by_publisher_and_type_not_name() -> None:
    m = vm()
    misnamed = ext(m, ("Contoso.Tools", "Helper"), name="AzureMonitorWindowsAgent")
    raw = RawServer(m, extensions=[misnamed], dcr_associations=[assoc(m, DCR_PERF)])
    assert cell(raw, "monitor").state is State.PARTIAL  # a DCR, but no real AMA
    odd_case = ext(m, ("microsoft.azure.MONITOR", "azuremonitorwindowsagent"), name="whatever")
    raw = RawServer(m, extensions=[odd_case], dcr_associations=[assoc(m, DCR_PERF)])
    assert cell(raw, "monitor").state is State.ON


def test_succeeded_duplicate_extension_wins() -> None:
    m = vm()
    raw = RawServer(m, extensions=[ext(m, AMA, "Failed", name="ama-old"), ext(m, AMA, "Succeeded", name="ama")],
                    dcr_associations=[assoc(m, DCR_PERF)])
    assert cell(raw, "monitor").state is State.ON
    assert cell(raw, "extensions").state is State.PARTIAL


def test_flat_projected_child_documents_are_read_too() -> None:
    m = arc()
    flat_ext = {"id": f"{m['id']}/extensions/wac", "name": "wac", "publisher": WAC[0], "type": WAC[1],
                "typeHandlerVersion": "0.0", "provisioningState": "Succeeded"}
    flat_gc = {"id": "x", "name": "cfg", "complianceStatus": "NonCompliant"}
    raw = RawServer(m, extensions=[flat_ext], guest_configuration=[flat_gc])
    assert cell(raw, "wac").state is State.ON
    assert cell(raw, "policy").state is State.PARTIAL


def test_dcr_association_to_an_unknown_rule_is_named() -> None:
    m = vm()
    ghost = dcr("dcr-elsewhere", ["Microsoft-SecurityEvent"], WS_SENTINEL)
    raw = with_docs(m, exts=[(AMA, "Succeeded")], dcr_associations=[assoc(m, ghost)])
    got = cell(raw, "sentinel", context(dcrs={}))
    assert got.state is State.OFF and "not readable: dcr-elsewhere" in got.summary
    assert cell(raw, "monitor", context(dcrs={})).state is State.ON


def test_updates_reads_a_vm_instance_view_patch_summary() -> None:
    m = vm()
    m["properties"]["instanceView"]["patchStatus"] = {"availablePatchSummary": {
        "status": "Succeeded", "rebootPending": False, "criticalAndSecurityPatchCount": 3, "otherPatchCount": 1,
        "lastModifiedTime": ago(1)}}
    got = cell(RawServer(m), "updates")
    assert got.state is State.PARTIAL and "pending-critical" in got.flags
    assert "3 critical/security, 1 other" in got.summary


def test_evidence_names_document_field_value_and_fetch_time() -> None:
    m = vm()
    raw = with_docs(m, exts=[(WAC, "Failed")])
    got = cell(raw, "wac")
    (ev,) = got.evidence
    assert ev.source is Source.EXTENSIONS
    assert ev.document_id == f"{m['id']}/extensions/x-AdminCenter"
    assert ev.field == "properties.provisioningState" and "Failed" in ev.value
    assert ev.fetched_at == FETCHED


def test_pending_assessment_without_time_is_stale() -> None:
    m = vm()
    row = patch(m)
    del row["properties"]["lastModifiedDateTime"]
    got = cell(RawServer(m, patch_assessment=row), "updates")
    assert got.state is State.PARTIAL and "stale-assessment" in got.flags


# ---- ARG row vs ARM document --------------------------------------------------------------------


def _rich(m: dict) -> RawServer:
    return RawServer(
        machine=m,
        extensions=[ext(m, AMA), ext(m, MDE), ext(m, GC), ext(m, CT), ext(m, WAC), ext(m, AAD, "Failed")],
        patch_assessment=patch(m, critical=1),
        guest_configuration=[gc_assignment(m, "Compliant")],
        pricing=pricing("Standard"),
        backup_items=[backup_item(m)],
        replication_items=[replication_item(m, "Warning")],
        dcr_associations=[assoc(m, DCR_SECURITY), assoc(m, DCR_CHANGE)],
        automanage=[automanage(m, "Compliant")],
        file_sync=[sync_server(m, 1)],
    )


@pytest.mark.parametrize("power", ["running", "deallocated"])
def test_arg_row_and_arm_document_give_the_same_states(power: str) -> None:
    doc = vm(power=power, security_type="TrustedLaunch")
    arm = evaluate(_rich(doc), CTX)
    arg = evaluate(_rich(arg_row(doc)), CTX)
    assert {k: s.state for k, s in arm.items()} == {k: s.state for k, s in arg.items()}
    if power == "running":
        assert "agent-unverified" in arg["runcommand"].flags and "agent-unverified" not in arm["runcommand"].flags


def test_arg_row_and_arm_document_build_the_same_row() -> None:
    doc = vm()
    a, b = build_server(RawServer(doc), CTX), build_server(RawServer(arg_row(doc)), CTX)
    for f in ("id", "name", "kind", "subscription_id", "tenant_id", "resource_group", "location", "os_name", "os_version",
              "state", "tags", "identity_type"):
        assert getattr(a, f) == getattr(b, f), f
    assert a.agent_version == "2.7.41491.1102" and b.agent_version == ""  # ARG rows carry no agent


# ---- malformed documents ----------------------------------------------------------------------

MALFORMED_MACHINES = [
    {},
    {"id": None, "type": None, "properties": None},
    {"id": 42, "name": ["x"], "type": "Microsoft.Compute/virtualMachines", "properties": [], "tags": ["a"], "identity": "x"},
    {"id": f"/subscriptions/{SUB}/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v", "type": "Microsoft.Compute/virtualMachines",
     "properties": {"instanceView": {"statuses": [None, 3, {"code": None}], "vmAgent": {"statuses": "Ready"}},
                    "osProfile": {"windowsConfiguration": {"patchSettings": "AutomaticByPlatform"}},
                    "securityProfile": None, "storageProfile": {"imageReference": {"sku": 2022, "offer": None}},
                    "extended": {"instanceView": {"powerState": "running"}}}, "tags": {"env": None, 5: {"x": 1}},
     "identity": {"type": None}},
    {"id": f"/subscriptions/{SUB}/resourceGroups/r/providers/Microsoft.HybridCompute/machines/a", "type": "microsoft.hybridcompute/machines",
     "properties": {"status": None, "agentConfiguration": "off", "licenseProfile": {"productProfile": {"productFeatures": [None, "x"]}},
                    "osProfile": {"windowsConfiguration": {"patchSettings": {"status": "Enabled"}}}}},
    "not a document",
    None,
]


def _garbage_children(m: dict) -> dict:
    return dict(
        extensions=[None, 1, "x", {"properties": None}, {"properties": {"publisher": 5, "type": None}},
                    {"id": "e", "properties": {"publisher": AMA[0], "type": AMA[1], "provisioningState": None}}],
        patch_assessment={"properties": {"availablePatchCountByClassification": "many", "status": ["x"],
                                         "lastModifiedDateTime": "yesterday", "rebootPending": "maybe"}},
        guest_configuration=[None, {"properties": {"complianceStatus": None}}],
        policy_states=["x", {"properties": None}],
        security_assessments=[{"properties": {"status": "Unhealthy"}}],
        pricing={"properties": {"pricingTier": None}},
        backup_items=[{"properties": {"protectionState": 3, "lastBackupTime": "not a time"}}, None],
        replication_items=[{"properties": None}],
        dcr_associations=[{"properties": {"dataCollectionRuleId": 7}}, {"properties": {"dataCollectionRuleId": DCR_SECURITY["id"]}}],
        automanage=[{"properties": {"status": {}}}],
        maintenance=[{"properties": None}],
        file_sync=[{"properties": {"lastHeartBeat": 12}}],
        in_guest={"fetchedAt": None, "storageReplica": "yes"},
    )


@pytest.mark.parametrize("machine", MALFORMED_MACHINES, ids=lambda m: repr(m)[:40])
@pytest.mark.parametrize("children", [False, True])
def test_malformed_documents_never_raise(machine, children: bool) -> None:
    broken_dcrs = {DCR_SECURITY["id"].lower(): {"properties": {"dataFlows": [None, {"streams": "x"}, {"streams": [None],
                                                                                                      "destinations": 5}],
                                                               "destinations": {"logAnalytics": "x"}, "dataSources": []}}}
    ctx = context(dcrs=broken_dcrs)
    raw = RawServer(machine, **(_garbage_children(machine) if children else {}))
    states = evaluate(raw, ctx)
    assert list(states) == [c.id for c in CATALOG]
    for s in states.values():
        assert isinstance(s.state, State) and isinstance(s.summary, str)
        assert "could not read" not in s.summary, s  # degraded on purpose, not by catching a crash
    for cap in CATALOG:  # the detectors themselves, whatever the source gate would have said
        direct = cap.detect(raw, ctx)
        assert isinstance(direct.state, State) and "could not read" not in direct.summary, direct
    server = build_server(raw, ctx)
    assert isinstance(server.name, str) and isinstance(server.tags, dict)


def test_malformed_vm_degrades_with_a_clear_summary() -> None:
    got = evaluate(RawServer({"id": f"/subscriptions/{SUB}/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v",
                              "type": "Microsoft.Compute/virtualMachines"}), CTX)
    assert got["runcommand"].state is State.UNKNOWN and got["runcommand"].unknown_reason == "no power state in the document"
    assert got["confidential"].state is State.OFF and "Standard" in got["confidential"].summary
    assert got["tags"].state is State.OFF


def test_a_crashing_detector_costs_one_cell(monkeypatch) -> None:
    detector = BY_ID["wac"].detect

    def boom(view):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(detector, "impl", boom)
    states = evaluate(RawServer(vm()), CTX)
    assert states["wac"].state is State.UNKNOWN and "RuntimeError" in states["wac"].unknown_reason
    assert states["tags"].state is State.ON


# ---- clean_text -------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "clean"), [
    ("web\x1b]0;pwned\x07-01", "web␛]0;pwned␇-01"),  # OSC title, BEL-terminated: each control a marker
    ("web\x1b]52;c;ZXZpbA==\x1b\\-01", "web␛]52;c;ZXZpbA==␛\\-01"),  # OSC 52 clipboard, ST-terminated
    ("\x1b[31mred\x1b[0m", "␛[31mred␛[0m"),  # CSI colours
    ("a\x9b31mb", "a⟨U+009B⟩31mb"),  # 8-bit CSI
    ("a\x9d0;t\x9cb", "a⟨U+009D⟩0;t⟨U+009C⟩b"),  # 8-bit OSC … ST
    ("a\x85b\x80c", "a⟨U+0085⟩b⟨U+0080⟩c"),  # other C1 controls
    ("admin\u202etxt.exe", "admin⟨U+202E⟩txt.exe"),  # right-to-left override
    ("x\u2066y\u2069z", "x⟨U+2066⟩y⟨U+2069⟩z"),  # isolates
    ("line1\nline2\ttab\r", "line1 line2 tab "),
    ("a\x00b\x7fc\x1fd", "a␀b␡c␟d"),
    ("שרת-קבצים", "שרת-קבצים"),  # RTL letters stay
    ("خادم ١", "خادم ١"),
    ("srv 🚀 ✓", "srv 🚀 ✓"),  # emoji stay
    ("日本語サーバー", "日本語サーバー"),
])
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    assert clean_text(raw).isprintable()


def test_clean_text_keeps_values_that_differ_only_in_controls_distinct() -> None:
    assert clean_text("k\x1b]0;PWNED\x07") != clean_text("k\x1b]52;c;aGk=\x07")
    controls = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n\r"]
    assert len({clean_text(c) for c in controls}) == len(controls)


def test_clean_text_limits_and_keeps_newlines_when_asked() -> None:
    assert clean_text("abcdef", limit=4) == "abc…"
    assert clean_text("a\nb", keep_newlines=True) == "a\nb"
    assert clean_text("out\r\nnext\rthird\tx\x1b[2J", keep_newlines=True) == "out\nnext\nthird\tx␛[2J"
    assert clean_text(None) == "" and clean_text(5) == "5"


def test_tag_keys_that_clean_alike_are_all_kept() -> None:
    """Cut at the limit, a tab folded into a space, a marker typed literally: no tag overwrites another."""
    long = "k" * VALUE_LIMIT
    tags = {"a\tb": "tab", "a b": "space", long + "1": "one", long + "2": "two", "x\x1b": "esc", "x␛": "picture"}
    server = build_server(RawServer(vm(tags=tags)), CTX)
    assert sorted(server.tags.values()) == sorted(tags.values())
    assert server.tags["a b"] == "tab" and server.tags["a b (2)"] == "space"
    assert server.tags["x␛"] == "esc" and server.tags["x␛ (2)"] == "picture"


def test_hostile_strings_are_cleaned_in_records() -> None:
    m = vm(name="web\x1b]0;owned\x07-01", tags={"env\x1b[2J": "prod\u202e", "owner": "o", "costCenter": "c"})
    m["properties"]["instanceView"]["osName"] = "Windows\x9b2J Server"
    raw = with_docs(m, exts=[((WAC[0], WAC[1]), "Failed")])
    raw.extensions[0]["name"] = "wac\x1b]8;;http://x\x07"
    raw.extensions[0]["properties"]["instanceView"] = {"statuses": [{"message": "boom\x1b[1m\nagain"}]}
    server = build_server(raw, CTX)
    assert server.name == "web␛]0;owned␇-01" and server.os_name == "Windows⟨U+009B⟩2J Server"
    assert server.tags == {"env␛[2J": "prod⟨U+202E⟩", "owner": "o", "costCenter": "c"}
    assert server.extensions[0].name == "wac␛]8;;http://x␇"
    assert server.extensions[0].status_message == "boom␛[1m again"
    for state in server.capabilities.values():
        texts = [state.summary, *(e.value for e in state.evidence), *(e.document_id for e in state.evidence)]
        for text in texts:
            assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


# ---- build_server -----------------------------------------------------------------------------


def test_table_records_share_what_repeats_and_keep_what_the_table_and_planner_read() -> None:
    """evidence=False (the console's 50,000-row table): same fields and states as the full record, no
    evidence, extensions without status message and id, and repeated values held once per snapshot."""
    shared: dict = {}
    raws = [with_docs(vm(name=f"web-{i:02}", tags={"env": "prod"}), exts=[(AMA, "Succeeded")]) for i in range(3)]
    for raw in raws:
        raw.extensions[0]["properties"]["instanceView"] = {"statuses": [{"message": "all good"}]}
    full = [build_server(r, CTX) for r in raws]
    lite = [build_server(r, CTX, evidence=False, shared=shared) for r in raws]
    for f, t in zip(full, lite, strict=True):
        assert (t.id, t.name, t.kind, t.location, t.os_name, t.state, t.tags) == \
               (f.id, f.name, f.kind, f.location, f.os_name, f.state, f.tags)
        assert {k: c.state for k, c in t.capabilities.items()} == {k: c.state for k, c in f.capabilities.items()}
        assert all(not c.evidence for c in t.capabilities.values())
        assert [(e.handler, e.version, e.provisioning_state) for e in t.extensions] == \
               [(e.handler, e.version, e.provisioning_state) for e in f.extensions]
        assert t.extensions[0].status_message == "" and f.extensions[0].status_message == "all good"
    assert lite[0].extensions[0] is lite[2].extensions[0]  # one object for identical extensions
    assert lite[0].os_name is lite[1].os_name and lite[0].capabilities["tags"] is lite[1].capabilities["tags"]


def test_build_server_vm_from_arm_document() -> None:
    m = vm(tags={"env": "prod"})
    raw = with_docs(m, exts=[(AMA, "Succeeded")])
    s = build_server(raw, CTX)
    assert s.id == m["id"] and s.name == "web-01" and s.kind is Kind.VM
    assert s.subscription_id == SUB and s.tenant_id == TENANT and s.resource_group == "RG-Web"
    assert s.location == "westeurope"
    assert s.os_name == "Windows Server 2022 Datacenter Azure Edition" and s.os_version == "10.0.20348.2340"
    assert s.state == "running" and s.agent_version == "2.7.41491.1102"
    assert s.tags == {"env": "prod"} and s.identity_type == "SystemAssigned"
    assert [e.handler for e in s.extensions] == ["Microsoft.Azure.Monitor.AzureMonitorWindowsAgent"]
    assert s.extensions[0].provisioning_state == "Succeeded" and s.extensions[0].version == "1.0"
    assert list(s.capabilities) == [c.id for c in CATALOG]
    assert s.fetched_at == FETCHED
    assert 0.0 < s.coverage < 1.0


def test_build_server_vm_from_arg_row_and_image() -> None:
    doc = vm(power="deallocated", os_name=None, sku="2022-datacenter-azure-edition", identity=None)
    s = build_server(RawServer(arg_row(doc)), CTX)
    assert s.state == "deallocated" and s.tenant_id == TENANT and s.resource_group == "RG-Web"
    assert s.os_name == "Windows Server 2022 Datacenter: Azure Edition"
    assert s.identity_type == "None" and s.agent_version == ""


def test_build_server_vm_without_power_state() -> None:
    doc = vm(power=None)
    del doc["properties"]["instanceView"]
    s = build_server(RawServer(doc), CTX)
    assert s.state == "unknown" and s.os_name == "Windows Server 2022 Datacenter: Azure Edition"


def test_build_server_vm_extensions_from_resources_are_merged() -> None:
    m = vm()
    m["resources"] = [ext(m, WAC), ext(m, AMA)]
    s = build_server(RawServer(m, extensions=[ext(m, AMA)]), CTX)
    assert sorted(e.type for e in s.extensions) == ["AdminCenter", "AzureMonitorWindowsAgent"]
    assert s.capabilities["wac"].state is State.ON


def test_build_server_arc() -> None:
    m = arc(status="Disconnected")
    s = build_server(RawServer(m), CTX)
    assert s.kind is Kind.ARC and s.name == "fs-01" and s.resource_group == "rg-arc"
    assert s.os_name == "Windows Server 2019 Datacenter" and s.os_version == "10.0.17763.5576"
    assert s.state == "Disconnected" and s.agent_version == "1.47.02878.1850"
    assert s.capabilities["confidential"].state is State.NOT_APPLICABLE
    del m["properties"]["osSku"]
    assert build_server(RawServer(m), CTX).os_name == "windows"


@pytest.mark.parametrize(("image", "name"), [
    ({"offer": "WindowsServer", "sku": "2022-datacenter-azure-edition"}, "Windows Server 2022 Datacenter: Azure Edition"),
    ({"offer": "WindowsServer", "sku": "2022-datacenter-azure-edition-hotpatch-smalldisk"},
     "Windows Server 2022 Datacenter: Azure Edition Hotpatch"),
    ({"offer": "WindowsServer", "sku": "2022-datacenter-azure-edition-core"}, "Windows Server 2022 Datacenter: Azure Edition Core"),
    ({"offer": "WindowsServer", "sku": "2019-Datacenter"}, "Windows Server 2019 Datacenter"),
    ({"offer": "WindowsServer", "sku": "2016-Datacenter-Server-Core-smalldisk"}, "Windows Server 2016 Datacenter Core"),
    ({"offer": "WindowsServer", "sku": "2012-R2-Datacenter"}, "Windows Server 2012 R2 Datacenter"),
    ({"offer": "WindowsServer", "sku": "2025-datacenter-g2"}, "Windows Server 2025 Datacenter"),
    ({"offer": "sql2022-ws2022", "sku": "enterprise-gen2"}, "sql2022-ws2022 enterprise-gen2"),
    ({"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/i"}, ""),
    (None, ""),
])
def test_os_name_from_image(image, name: str) -> None:
    assert os_name_from_image(image) == name


# ---- the generated demo fleet -------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    """The demo fleet generator's output, read back through the simulator's Resource Graph rows."""
    fleetgen = pytest.importorskip("wsam_tui.sim.fleetgen")
    from wsam_tui.sim.state import SimState

    fleet = fleetgen.generate_fleet(400, 7)
    now = datetime.strptime(fleet["generator"]["generatedAt"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    raws, ctx = raw_servers_from_sim(SimState(fleet, rebase_time=False), now)
    return fleetgen, fleet, now, [build_server(raw, ctx) for raw in raws]


def test_generated_fleet_reaches_every_state(generated) -> None:
    _, _, _, servers = generated
    seen: dict[tuple[str, Kind], set[State]] = {}
    for server in servers:
        for cap_id, cs in server.capabilities.items():
            seen.setdefault((cap_id, server.kind), set()).add(cs.state)
    missing = []
    for cap in CATALOG:
        for kind in cap.applies_to:
            wanted = {State.ON, State.OFF} if cap.id in TWO_STATE else {State.ON, State.PARTIAL, State.OFF}
            if not wanted <= seen.get((cap.id, kind), set()):
                missing.append((cap.id, kind.value, sorted(s.value for s in wanted - seen.get((cap.id, kind), set()))))
    assert not missing, missing


def test_generated_fleet_agrees_with_the_generators_own_reading(generated) -> None:
    """fleetgen.classify_fleet restates docs/capabilities.md over the fleet file independently; both
    readings must agree. The one expected difference: a VM whose agent is Not Ready is partial from
    its ARM document, but Resource Graph rows carry no agent status, so it reads on + agent-unverified."""
    fleetgen, fleet, now, servers = generated
    theirs = fleetgen.classify_fleet(fleet, now=now)
    disagreements = []
    for server in servers:
        for column, expected in theirs[server.id].items():
            got = server.capabilities[column]
            if got.state.value == expected:
                continue
            if (column, server.kind, expected, got.state) == ("runcommand", Kind.VM, "partial", State.ON) \
                    and "agent-unverified" in got.flags:
                continue
            disagreements.append((server.name, column, expected, got.state.value, got.summary))
    assert not disagreements, disagreements[:10]


def raw_servers_from_sim(state, now: datetime) -> tuple[list[RawServer], FleetContext]:
    """RawServers from the simulator's Resource Graph rows, joined per machine as the inventory does;
    the in-guest probe's answer from the simulated guest's facts."""
    from wsam_tui.sim.state import machine_id_of
    rows = [row for table in state.arg.values() for per_sub in table.values() for row in per_sub.values()]
    machines = {r["id"].lower(): RawServer(machine=r) for r in rows
                if r["type"] in ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")}

    def owner(rid: str) -> RawServer | None:
        mid = machine_id_of(rid)
        return machines.get(mid.lower()) if mid and mid.lower() != rid.lower() else None

    dcrs, sentinel, sub_pricing = {}, set(), {}
    for r in rows:
        t, props = r["type"], r.get("properties") or {}
        if t.endswith("/extensions") and (srv := owner(r["id"])):
            srv.extensions.append(r)
        elif t.endswith("/patchassessmentresults") and (srv := owner(r["id"])):
            srv.patch_assessment = r
        elif t == "microsoft.guestconfiguration/guestconfigurationassignments" and (srv := owner(r["id"])):
            srv.guest_configuration.append(r)
        elif t == "microsoft.policyinsights/policystates" and (srv := owner(r["id"])):
            srv.policy_states.append(r)
        elif t == "microsoft.security/assessments" and (srv := owner(r["id"])):
            srv.security_assessments.append(r)
        elif t == "microsoft.security/pricings":
            if srv := owner(r["id"]):
                srv.pricing = r
            else:
                sub_pricing[r["subscriptionId"].lower()] = r
        elif t.endswith("/protecteditems") and (srv := machines.get(str(props.get("sourceResourceId", "")).lower())):
            srv.backup_items.append(r)
        elif t.endswith("/replicationprotecteditems") and (
                srv := machines.get(str((props.get("providerSpecificDetails") or {}).get("fabricObjectId", "")).lower())):
            srv.replication_items.append(r)
        elif t == "microsoft.insights/datacollectionruleassociations" and (srv := owner(r["id"])):
            srv.dcr_associations.append(r)
        elif t == "microsoft.automanage/configurationprofileassignments" and (srv := owner(r["id"])):
            srv.automanage.append(r)
        elif t == "microsoft.maintenance/configurationassignments" and (srv := owner(r["id"])):
            srv.maintenance.append(r)
        elif t == "microsoft.insights/datacollectionrules":
            dcrs[r["id"].lower()] = r
        elif t == "microsoft.operationsmanagement/solutions" and r["name"].lower().startswith("securityinsights"):
            sentinel.add(str(props.get("workspaceResourceId", "")).lower())
    by_name = {}
    for srv in machines.values():
        p = srv.machine.get("properties") or {}
        for n in (srv.machine["name"], p.get("machineFqdn"), (p.get("osProfile") or {}).get("computerName"),
                  ((p.get("extended") or {}).get("instanceView") or {}).get("computerName")):
            if isinstance(n, str) and n:
                by_name.setdefault(n.lower(), srv)
    for r in rows:
        if r["type"] == "microsoft.storagesync/storagesyncservices/registeredservers":
            name = str((r.get("properties") or {}).get("serverName", "")).lower()
            srv = by_name.get(name) or by_name.get(name.split(".", 1)[0])
            if srv:
                srv.file_sync.append(r)
    for srv in machines.values():
        if srv.pricing is None:
            srv.pricing = sub_pricing.get(srv.machine["subscriptionId"].lower())
        guest = state.sim_for(srv.machine["id"]).get("guest")
        if isinstance(guest, dict):
            srv.in_guest = {"fetchedAt": iso(now - timedelta(hours=1)),
                            "azureNetworkAdapter": bool(guest.get("azureNetworkAdapter")),
                            "extendedNetwork": bool(guest.get("extendedNetwork")),
                            "storageReplica": "Storage-Replica" in (guest.get("windowsFeatures") or []),
                            "smbOverQuic": bool(guest.get("smbOverQuic"))}
    subs = {srv.machine["subscriptionId"].lower() for srv in machines.values()}
    sources = {(s, src): SourceStatus(fetched_at=now) for s in subs for src in Source if src is not Source.IN_GUEST}
    ctx = FleetContext(now=now, dcrs=dcrs, sentinel_workspaces=frozenset(sentinel), sources=sources)
    return list(machines.values()), ctx
