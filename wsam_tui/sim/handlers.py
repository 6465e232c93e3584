"""ARM routes served by the simulator: reads, lists, actions and their long-running operations.

Shapes follow ../shared/arm-examples and research/arm-api.md; status codes follow what the Python
SDKs accept (Compute PUT 200/201, Arc extension PUT 200/202, POST actions 202 + Location).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from . import actions, graph, resources
from .common import check_resource_group, check_subscription, not_found, page
from .server import ArmError, Ctx, Reply, Router, Simulator
from .state import ARC_TYPE, VM_TYPE, Operation, iso, machine_id_of, sub_rg_of

SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<rg>[^/]+)"
MACHINE = RG + r"/providers/(?P<ns>Microsoft\.Compute/virtualMachines|Microsoft\.HybridCompute/machines)/(?P<name>[^/]+)"
VM = RG + r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)"
ARC = RG + r"/providers/Microsoft\.HybridCompute/machines/(?P<name>[^/]+)"
ANY_RESOURCE = r"(?P<rid>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/.+?)"
VAULT = r"(?P<parent>" + RG + r"/providers/Microsoft\.RecoveryServices/vaults/[^/]+)"
SYNC_SERVICE = r"(?P<parent>" + RG + r"/providers/Microsoft\.StorageSync/storageSyncServices/[^/]+)"


def register(r: Router) -> None:
    r.add("GET", r"/metadata/endpoints", metadata_endpoints)
    r.add("GET", r"/tenants", list_tenants)
    r.add("GET", r"/subscriptions", list_subscriptions)
    r.add("GET", SUB, get_subscription)
    r.add("GET", SUB + r"/resourceGroups", resources.list_resource_groups)
    r.add("GET HEAD", RG, resources.get_resource_group)
    r.add("GET", SUB + r"/resources", resources.list_resources)
    r.add("GET", RG + r"/resources", resources.list_resources)
    r.add("GET", SUB + r"/providers", resources.list_providers)
    r.add("GET", SUB + r"/providers/(?P<ns>[^/]+)", resources.get_provider)
    # what VMs reference, and the extension image catalogue (az vm list -d, az vm extension set)
    r.add("GET", RG + r"/providers/Microsoft\.Network/networkInterfaces/(?P<name>[^/]+)", resources.get_network_interface)
    r.add("GET", RG + r"/providers/Microsoft\.Network/publicIPAddresses/(?P<name>[^/]+)", resources.get_public_ip)
    for collection in ("networkInterfaces", "publicIPAddresses"):
        r.add("GET", SUB + rf"/providers/Microsoft\.Network/{collection}", resources.list_network(collection))
        r.add("GET", RG + rf"/providers/Microsoft\.Network/{collection}", resources.list_network(collection))
    images = SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/publishers"
    extension_types = images + r"/(?P<publisher>[^/]+)/artifacttypes/vmextension/types"
    r.add("GET", images, resources.list_image_publishers)
    r.add("GET", extension_types, resources.list_extension_types)
    r.add("GET", extension_types + r"/(?P<etype>[^/]+)/versions", resources.list_extension_versions)
    r.add("GET", extension_types + r"/(?P<etype>[^/]+)/versions/(?P<version>[^/]+)", resources.get_extension_version)
    r.add("POST", r"/providers/Microsoft\.ResourceGraph/resources", graph.resources)
    # operation status monitors (both providers)
    r.add("GET", SUB + r"/providers/(?P<prov>Microsoft\.Compute|Microsoft\.HybridCompute)/locations/(?P<loc>[^/]+)/(?P<kind>operations|operationStatus|operationResults)/(?P<op>[^/]+)", operation_status)
    # machine lists
    r.add("GET", SUB + r"/providers/(?P<ns>Microsoft\.Compute/virtualMachines|Microsoft\.HybridCompute/machines)", list_machines)
    r.add("GET", RG + r"/providers/(?P<ns>Microsoft\.Compute/virtualMachines|Microsoft\.HybridCompute/machines)", list_machines)
    # one machine
    r.add("GET", MACHINE, get_machine)
    r.add("PATCH", MACHINE, actions.patch_machine)
    r.add("GET", VM + r"/instanceView", vm_instance_view)
    r.add("POST", VM + r"/(?P<action>start|powerOff|restart|deallocate)", actions.vm_power)
    r.add("POST", MACHINE + r"/(?P<action>assessPatches)", actions.assess_patches)
    r.add("POST", MACHINE + r"/(?P<action>installPatches)", actions.install_patches)
    r.add("POST", VM + r"/runCommand", actions.legacy_run_command)
    r.add("POST", ARC + r"/upgradeExtensions", actions.upgrade_extensions)
    r.add("POST", ARC + r"/(?P<action>start|powerOff|restart|deallocate|runCommand)", arc_unknown_action)
    # extensions and run commands
    r.add("GET", MACHINE + r"/extensions", list_extensions)
    r.add("GET", MACHINE + r"/extensions/(?P<child>[^/]+)", get_extension)
    r.add("PUT PATCH", MACHINE + r"/extensions/(?P<child>[^/]+)", actions.put_extension)
    r.add("DELETE", MACHINE + r"/extensions/(?P<child>[^/]+)", actions.delete_extension)
    r.add("GET", MACHINE + r"/runCommands", list_run_commands)
    r.add("GET", MACHINE + r"/runCommands/(?P<child>[^/]+)", get_run_command)
    r.add("PUT", MACHINE + r"/runCommands/(?P<child>[^/]+)", actions.put_run_command)
    r.add("DELETE", MACHINE + r"/runCommands/(?P<child>[^/]+)", actions.delete_run_command)
    # the per-server reads a details pane needs
    r.add("GET", MACHINE + r"/providers/Microsoft\.GuestConfiguration/guestConfigurationAssignments", list_attached("microsoft.guestconfiguration/guestconfigurationassignments"))
    r.add("GET", MACHINE + r"/providers/Microsoft\.Insights/dataCollectionRuleAssociations", list_attached("microsoft.insights/datacollectionruleassociations", paged=True))
    r.add("GET", MACHINE + r"/providers/Microsoft\.Insights/dataCollectionRuleAssociations/(?P<child>[^/]+)", actions.get_dcr_association)
    r.add("PUT", MACHINE + r"/providers/Microsoft\.Insights/dataCollectionRuleAssociations/(?P<child>[^/]+)", actions.put_dcr_association)
    r.add("DELETE", MACHINE + r"/providers/Microsoft\.Insights/dataCollectionRuleAssociations/(?P<child>[^/]+)", actions.delete_dcr_association)
    r.add("GET", MACHINE + r"/providers/Microsoft\.Security/assessments", list_attached("microsoft.security/assessments", paged=True))
    r.add("GET", MACHINE + r"/providers/Microsoft\.Automanage/configurationProfileAssignments", list_attached("microsoft.automanage/configurationprofileassignments"))
    r.add("GET", MACHINE + r"/providers/Microsoft\.Maintenance/configurationAssignments", list_attached("microsoft.maintenance/configurationassignments"))
    r.add("GET", MACHINE + r"/providers/Microsoft\.Security/pricings", list_resource_pricings)
    r.add("GET", MACHINE + r"/providers/Microsoft\.Security/pricings/(?P<child>[^/]+)", get_resource_pricing)
    r.add("POST", MACHINE + r"/providers/Microsoft\.PolicyInsights/policyStates/(?P<which>latest|default)/summarize", policy_summarize)
    r.add("POST", MACHINE + r"/providers/Microsoft\.PolicyInsights/policyStates/(?P<which>latest|default)/queryResults", policy_query_results)
    r.add("GET", SUB + r"/providers/Microsoft\.Security/pricings", list_subscription_pricings)
    r.add("POST", SUB + r"/providers/Microsoft\.RecoveryServices/locations/(?P<loc>[^/]+)/backupStatus", backup_status)
    # subscription- and vault-wide lists (what the console's ARM fallback reads where Resource Graph is denied)
    r.add("GET", SUB + r"/providers/Microsoft\.Insights/dataCollectionRules", list_of_type("microsoft.insights/datacollectionrules", paged=True))
    r.add("GET", SUB + r"/providers/Microsoft\.OperationsManagement/solutions", list_of_type("microsoft.operationsmanagement/solutions"))
    r.add("GET", SUB + r"/providers/Microsoft\.RecoveryServices/vaults", list_of_type("microsoft.recoveryservices/vaults", paged=True))
    r.add("GET", SUB + r"/providers/Microsoft\.StorageSync/storageSyncServices", list_of_type("microsoft.storagesync/storagesyncservices"))
    r.add("GET", SUB + r"/providers/Microsoft\.GuestConfiguration/guestConfigurationAssignments",
          list_of_type("microsoft.guestconfiguration/guestconfigurationassignments"))
    r.add("GET", SUB + r"/providers/Microsoft\.Security/assessments", list_of_type("microsoft.security/assessments", paged=True))
    r.add("POST", SUB + r"/providers/Microsoft\.PolicyInsights/policyStates/(?P<which>latest|default)/queryResults",
          subscription_policy_query_results)
    r.add("GET", VAULT + r"/backupProtectedItems", list_backup_protected_items)
    r.add("GET", VAULT + r"/replicationProtectedItems", list_below(
        "microsoft.recoveryservices/vaults",
        "microsoft.recoveryservices/vaults/replicationfabrics/replicationprotectioncontainers/replicationprotecteditems", paged=True))
    r.add("GET", SYNC_SERVICE + r"/registeredServers", list_below(
        "microsoft.storagesync/storagesyncservices", "microsoft.storagesync/storagesyncservices/registeredservers"))
    # tags
    r.add("GET PUT PATCH", r"(?P<rid>/subscriptions/.+?)/providers/Microsoft\.Resources/tags/default", actions.tags)
    # any other document the fleet holds, by id
    r.add("GET", ANY_RESOURCE, get_any)


# ---- helpers ------------------------------------------------------------------------------------


def machine_from(sim: Simulator, ctx: Ctx) -> dict:
    g = ctx.match.groupdict()
    check_resource_group(sim, g["sub"], g["rg"])
    ns = g.get("ns") or ("Microsoft.Compute/virtualMachines" if "/microsoft.compute/" in ctx.path.lower() else "Microsoft.HybridCompute/machines")
    rid = f"/subscriptions/{g['sub']}/resourceGroups/{g['rg']}/providers/{ns}/{g['name']}"
    doc = sim.state.get(rid)
    if doc is None or doc["type"].lower() not in (VM_TYPE, ARC_TYPE):
        raise not_found(ns, g["name"], g["rg"])
    return doc


def is_vm(doc: dict) -> bool:
    return doc["type"].lower() == VM_TYPE


# ---- tenant-level ------------------------------------------------------------------------------


def metadata_endpoints(sim: Simulator, ctx: Ctx) -> Reply:
    """The cloud's endpoints document, in the format the api-version asks for: from 2022-09-01 the one object
    current az and SDKs read (`az cloud register --endpoint-resource-manager`; research/arm-metadata-endpoints.md
    lists the keys az reads), from 2019-05-01 a list of clouds (``ARM_CLOUD_METADATA_URL``), before that the
    Azure Stack Hub document. Every endpoint is on the simulator's own address; suffixes are under .localhost."""
    base = ctx.base_url
    simulator = {"acceptsAnyToken": not sim.state.config.tokens_per_tenant, "audience": sim.audience,
                 "tenants": [t.get("tenantId") for t in sim.state.tenants]}
    if ctx.api_version < "2019-05-01":
        return Reply(200, {
            "galleryEndpoint": f"{base}/", "graphEndpoint": f"{base}/", "portalEndpoint": f"{base}/",
            "resourceManager": f"{base}/",
            "authentication": {"loginEndpoint": f"{base}/", "audiences": [sim.audience]},
            "wsamSimulator": simulator,
        })
    cloud = {
        "name": "WsamSimulator",
        "portal": f"{base}/portal",
        "authentication": {"loginEndpoint": f"{base}/", "audiences": [sim.audience, "https://management.core.windows.net/"],
                           "tenant": "common", "identityProvider": "AAD"},
        "media": f"{base}/media",
        "graphAudience": f"{base}/graph/",
        "graph": f"{base}/graph/",
        "batch": f"{base}/batch/",
        "resourceManager": f"{base}/",
        "vmImageAliasDoc": f"{base}/vmImageAliasDoc",
        "activeDirectoryDataLake": f"{base}/datalake/",
        "sqlManagement": f"{base}/sql/",
        "gallery": f"{base}/gallery/",
        "microsoftGraphResourceId": f"{base}/graph/",
        "appInsightsResourceId": f"{base}/appinsights",
        "appInsightsTelemetryChannelResourceId": f"{base}/appinsights/v2/track",
        "attestationResourceId": f"{base}/attestation",
        "synapseAnalyticsResourceId": f"{base}/synapse",
        "logAnalyticsResourceId": f"{base}/loganalytics",
        "ossrdbmsResourceId": f"{base}/ossrdbms",
        "suffixes": {
            "azureDataLakeStoreFileSystem": "datalake.localhost", "acrLoginServer": "acr.localhost",
            "sqlServerHostname": "sql.localhost", "azureDataLakeAnalyticsCatalogAndJob": "datalakeanalytics.localhost",
            "keyVaultDns": "vault.localhost", "storage": "storage.localhost", "azureFrontDoorEndpointSuffix": "afd.localhost",
            "storageSyncEndpointSuffix": "afs.localhost", "mhsmDns": "managedhsm.localhost",
            "mysqlServerEndpoint": "mysql.localhost", "postgresqlServerEndpoint": "postgres.localhost",
            "mariadbServerEndpoint": "mariadb.localhost", "synapseAnalytics": "synapse.localhost",
            "attestationEndpoint": "attest.localhost",
        },
        "wsamSimulator": simulator,
    }
    return Reply(200, cloud if ctx.api_version >= "2022-09-01" else [cloud])


def list_tenants(sim: Simulator, ctx: Ctx) -> Reply:
    return page(sim, ctx, sim.state.tenants)


def list_subscriptions(sim: Simulator, ctx: Ctx) -> Reply:
    subs = list(sim.state.subscriptions.values())
    if ctx.tenant is not None:
        # As ARM: the token's tenant's subscriptions, and those delegated to it (listed under it, as
        # Lighthouse shows them: tenantId the caller's, homeTenantId the owner's).
        subs = [s if str(s.get("tenantId", "")).lower() == ctx.tenant
                else {**s, "tenantId": ctx.tenant, "homeTenantId": s.get("tenantId")}
                for s in subs if sim.state.tenant_reaches(s["subscriptionId"], ctx.tenant)]
    return page(sim, ctx, subs)


def get_subscription(sim: Simulator, ctx: Ctx) -> Reply:
    return Reply(200, check_subscription(sim, ctx.match["sub"]))


# ---- operations ---------------------------------------------------------------------------------


def operation_status(sim: Simulator, ctx: Ctx) -> Reply:
    op = sim.state.operations.get(ctx.match["op"])
    if op is None or op.subscription.lower() != ctx.match["sub"].lower():
        raise ArmError(404, "OperationNotFound", f"The operation '{ctx.match['op']}' was not found.")
    monitor = ctx.match["kind"].lower() == "operationresults" or (ctx.q("monitor") or "").lower() == "true"
    headers = poll_headers(sim, op)
    if monitor:
        # The Location URL: 202 while running, then the action's result (POST) or an empty 200.
        if not op.done:
            return Reply(202, None, headers)
        if op.status != "Succeeded":
            return Reply(200, status_body(op), {})
        return Reply(200, op.result, {}) if op.result is not None else Reply(200, None, {})
    return Reply(200, status_body(op), headers if not op.done else {})


def status_body(op: Operation) -> dict:
    body: dict[str, Any] = {"name": op.id, "status": op.status, "startTime": iso_from_epoch(op.started)}
    if op.done:
        body["endTime"] = iso_from_epoch(op.ended or op.finish_at)
    if op.error:
        body["error"] = op.error
    if op.provider == "Microsoft.HybridCompute":
        body["id"] = f"/subscriptions/{op.subscription}/providers/Microsoft.HybridCompute/locations/{op.location}/operationStatus/{op.id}"
    return body


def poll_headers(sim: Simulator, op: Operation) -> dict[str, str]:
    """Every poll response says when to come back: never Retry-After: 0 (the SDK then waits 30 s)."""
    remaining = max(0.0, op.finish_at - sim.state.clock())
    if remaining >= 1 or sim.state.config.lro_seconds >= 1:
        return {"Retry-After": str(max(1, min(10, math.ceil(remaining))))}
    return {"retry-after-ms": str(max(10, int(remaining * 1000) + 10))}


def iso_from_epoch(t: float) -> str:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(t, UTC))


def lro_headers(sim: Simulator, ctx: Ctx, op: Operation) -> dict[str, str]:
    base = f"/subscriptions/{op.subscription}/providers/{op.provider}/locations/{op.location}"
    if op.provider == "Microsoft.HybridCompute":
        async_url = ctx.url(f"{base}/operationStatus/{op.id}")
        location = ctx.url(f"{base}/operationResults/{op.id}")
    else:
        async_url = ctx.url(f"{base}/operations/{op.id}")
        location = ctx.url(f"{base}/operations/{op.id}", monitor="true")
    return {"Azure-AsyncOperation": async_url, "Location": location, **poll_headers(sim, op)}


# ---- machines -----------------------------------------------------------------------------------


def render_vm(sim: Simulator, doc: dict, *, instance_view: bool, with_resources: bool = True) -> dict:
    out = dict(doc)
    props = dict(doc.get("properties") or {})
    iv = props.pop("instanceView", None)
    if instance_view and iv is not None:
        props["instanceView"] = render_vm_instance_view(sim, doc, iv)
    out["properties"] = props
    if with_resources:
        exts = sim.state.extensions_of(doc["id"])
        if exts:
            out["resources"] = [render_extension(e, instance_view=False) for e in exts]
    return out


def render_vm_instance_view(sim: Simulator, doc: dict, iv: dict | None = None) -> dict:
    iv = dict(iv if iv is not None else (doc.get("properties") or {}).get("instanceView") or {})
    exts = sim.state.extensions_of(doc["id"])
    if exts:
        iv["extensions"] = [
            {k: v for k, v in ((e.get("properties") or {}).get("instanceView") or {}).items()} or {"name": e["name"]}
            for e in exts
        ]
    return iv


def vm_status_only(doc: dict) -> dict:
    iv = (doc.get("properties") or {}).get("instanceView") or {}
    return {
        "id": doc["id"], "name": doc["name"], "type": doc["type"], "location": doc.get("location"),
        "properties": {"instanceView": {"statuses": iv.get("statuses", [])}},
    }


def list_machines(sim: Simulator, ctx: Ctx) -> Reply:
    g = ctx.match.groupdict()
    rg = g.get("rg")
    if rg:
        check_resource_group(sim, g["sub"], rg)
    else:
        check_subscription(sim, g["sub"])
    tl = g["ns"].lower()
    docs = sim.state.machines(tl, g["sub"], rg)
    if tl == VM_TYPE:
        if (ctx.q("statusonly") or "").lower() == "true":
            return page(sim, ctx, docs, vm_status_only)
        expand = (ctx.q("$expand") or "").lower() == "instanceview"
        return page(sim, ctx, docs, lambda d: render_vm(sim, d, instance_view=expand, with_resources=False))
    return page(sim, ctx, docs, render_arc)


def render_arc(doc: dict) -> dict:
    return doc


def get_machine(sim: Simulator, ctx: Ctx) -> Reply:
    doc = machine_from(sim, ctx)
    if is_vm(doc):
        expand = (ctx.q("$expand") or "").lower()
        return Reply(200, render_vm(sim, doc, instance_view=expand == "instanceview"))
    # Machines_Get lists the machine's extensions in resources[], as a VM GET does (Machines_Get.json).
    return Reply(200, {**render_arc(doc), "resources": [render_extension(e, instance_view=False)
                                                        for e in sim.state.extensions_of(doc["id"])]})


def vm_instance_view(sim: Simulator, ctx: Ctx) -> Reply:
    doc = machine_from(sim, ctx)
    return Reply(200, render_vm_instance_view(sim, doc))


def arc_unknown_action(sim: Simulator, ctx: Ctx) -> Reply:
    machine_from(sim, ctx)
    action = ctx.path.rstrip("/").rsplit("/", 1)[-1]
    raise ArmError(
        404, "InvalidResourceType",
        f"The resource type 'machines/{action}' could not be found in the namespace 'Microsoft.HybridCompute' "
        f"for api version '{ctx.api_version}'.",
    )


# ---- extensions, run commands ---------------------------------------------------------------------


def render_extension(doc: dict, *, instance_view: bool) -> dict:
    if instance_view or doc["type"].lower().startswith("microsoft.hybridcompute"):
        return doc
    out = dict(doc)
    out["properties"] = {k: v for k, v in (doc.get("properties") or {}).items() if k != "instanceView"}
    return out


def list_extensions(sim: Simulator, ctx: Ctx) -> Reply:
    doc = machine_from(sim, ctx)
    expand = (ctx.q("$expand") or "").lower() == "instanceview"
    exts = [render_extension(e, instance_view=expand) for e in sim.state.extensions_of(doc["id"])]
    if is_vm(doc):
        return Reply(200, {"value": exts})  # Compute's extension list has no nextLink
    return page(sim, ctx, exts)


def child_of_machine(sim: Simulator, ctx: Ctx, collection: str) -> tuple[dict, bool]:
    """The machine's child named in the path (extensions/…, runCommands/…), and whether $expand=instanceView."""
    doc = machine_from(sim, ctx)
    child = sim.state.get(f"{doc['id']}/{collection}/{ctx.match['child']}")
    if child is None:
        raise not_found(f"{doc['type']}/{collection}", f"{doc['name']}/{ctx.match['child']}", ctx.match["rg"])
    return child, (ctx.q("$expand") or "").lower() == "instanceview"


def get_extension(sim: Simulator, ctx: Ctx) -> Reply:
    ext, expand = child_of_machine(sim, ctx, "extensions")
    return Reply(200, render_extension(ext, instance_view=expand))


def render_run_command(sim: Simulator, doc: dict, *, instance_view: bool) -> dict:
    out = copy.deepcopy(doc)
    props = out.setdefault("properties", {})
    if not (instance_view or doc["type"].lower().startswith("microsoft.hybridcompute")):
        props.pop("instanceView", None)
    elif "instanceView" in props:
        actions.refresh_execution_state(sim, doc, props["instanceView"])
    return out


def list_run_commands(sim: Simulator, ctx: Ctx) -> Reply:
    doc = machine_from(sim, ctx)
    expand = (ctx.q("$expand") or "").lower() == "instanceview"
    rcs = [render_run_command(sim, d, instance_view=expand) for d in sim.state.children_of(doc["id"], "/runcommands")]
    return page(sim, ctx, rcs)


def get_run_command(sim: Simulator, ctx: Ctx) -> Reply:
    rc, expand = child_of_machine(sim, ctx, "runCommands")
    return Reply(200, render_run_command(sim, rc, instance_view=expand))


# ---- per-server reads -----------------------------------------------------------------------------


def list_attached(type_lower: str, *, paged: bool = False):
    def handler(sim: Simulator, ctx: Ctx) -> Reply:
        doc = machine_from(sim, ctx)
        items = sim.state.attached_to(doc["id"], type_lower)
        return page(sim, ctx, items) if paged else Reply(200, {"value": items})

    return handler


def _subscription_pricing(sim: Simulator, sub: str, name: str) -> dict:
    doc = sim.state.get(f"/subscriptions/{sub}/providers/Microsoft.Security/pricings/{name}")
    if doc is not None:
        return doc
    return {"id": f"/subscriptions/{sub}/providers/Microsoft.Security/pricings/{name}", "name": name,
            "type": "Microsoft.Security/pricings", "properties": {"pricingTier": "Free", "freeTrialRemainingTime": "PT0S"}}


def list_subscription_pricings(sim: Simulator, ctx: Ctx) -> Reply:
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    docs = [d for d in sim.state.children_of(f"/subscriptions/{sub}") if d["type"].lower() == "microsoft.security/pricings"]
    if not any(d["name"].lower() == "virtualmachines" for d in docs):
        docs.append(_subscription_pricing(sim, sub, "VirtualMachines"))
    return Reply(200, {"value": docs})


def resource_pricing(sim: Simulator, machine: dict, name: str) -> dict:
    """A resource-level pricing, or the subscription's, marked inherited, as Defender answers it."""
    own = sim.state.get(f"{machine['id']}/providers/Microsoft.Security/pricings/{name}")
    if own is not None:
        return own
    sub, _ = sub_rg_of(machine["id"])
    inherited = copy.deepcopy(_subscription_pricing(sim, sub, name))
    inherited["id"] = f"{machine['id']}/providers/Microsoft.Security/pricings/{name}"
    inherited.setdefault("properties", {}).update({"inherited": "True", "inheritedFrom": f"/subscriptions/{sub}"})
    return inherited


def get_resource_pricing(sim: Simulator, ctx: Ctx) -> Reply:
    return Reply(200, resource_pricing(sim, machine_from(sim, ctx), ctx.match["child"]))


def list_resource_pricings(sim: Simulator, ctx: Ctx) -> Reply:
    return Reply(200, {"value": [resource_pricing(sim, machine_from(sim, ctx), "virtualMachines")]})


def policy_states_of(sim: Simulator, machine_id: str) -> list[dict]:
    return sim.state.attached_to(machine_id, "microsoft.policyinsights/policystates")


def policy_summarize(sim: Simulator, ctx: Ctx) -> Reply:
    doc = machine_from(sim, ctx)
    states = [s.get("properties") or {} for s in policy_states_of(sim, doc["id"])]
    non_compliant = [s for s in states if str(s.get("complianceState", "")).lower() == "noncompliant"]
    by_assignment: dict[str, list[dict]] = {}
    for s in states:
        by_assignment.setdefault(s.get("policyAssignmentId", ""), []).append(s)

    def results(items: list[dict]) -> dict:
        nc = [i for i in items if str(i.get("complianceState", "")).lower() == "noncompliant"]
        counts: dict[str, int] = {}
        for i in items:
            counts[i.get("complianceState", "Unknown")] = counts.get(i.get("complianceState", "Unknown"), 0) + 1
        return {
            "queryResultsUri": ctx.url(f"{doc['id']}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"),
            "nonCompliantResources": 1 if nc else 0,
            "nonCompliantPolicies": len(nc),
            "resourceDetails": [{"complianceState": k.lower(), "count": v} for k, v in sorted(counts.items())],
            "policyDetails": [{"complianceState": "noncompliant", "count": len(nc)}],
            "policyGroupDetails": [{"complianceState": "noncompliant", "count": len(nc)}],
        }

    assignments = [
        {
            "policyAssignmentId": aid,
            "policySetDefinitionId": "",
            "results": results(items),
            "policyDefinitions": [
                {
                    "policyDefinitionId": i.get("policyDefinitionId", ""),
                    "policyDefinitionReferenceId": "",
                    "effect": i.get("policyDefinitionAction", "audit"),
                    "results": {k: v for k, v in results([i]).items() if k != "nonCompliantPolicies"},
                }
                for i in items
            ],
            "policyGroups": [],
        }
        for aid, items in by_assignment.items()
    ]
    return Reply(200, {
        "@odata.context": "https://management.azure.com/providers/Microsoft.PolicyInsights/policyStates/$metadata#summary",
        "@odata.count": 1,
        "value": [{
            "@odata.id": None,
            "@odata.context": "https://management.azure.com/providers/Microsoft.PolicyInsights/policyStates/$metadata#summary/$entity",
            "results": results(states) | {"nonCompliantResources": 1 if non_compliant else 0},
            "policyAssignments": assignments,
        }],
    })


_DERIVED_POLICY_STATE_KEYS = {"timestamp", "resourceId", "policyAssignmentId", "policyDefinitionId", "policyAssignmentName",
                               "policyDefinitionName", "policyDefinitionAction", "complianceState", "isCompliant",
                               "subscriptionId", "resourceType", "resourceLocation", "resourceGroup"}


def policy_state_row(machine: dict, state: dict) -> dict:
    """One PolicyState as queryResults returns it, from the fleet's policy state document of a machine."""
    p = state.get("properties") or {}
    assignment = str(p.get("policyAssignmentId") or "")
    scope_end = assignment.lower().find("/providers/microsoft.authorization/")
    return {
        "@odata.id": None,
        "@odata.context": "https://management.azure.com/providers/Microsoft.PolicyInsights/policyStates/$metadata#latest/$entity",
        "timestamp": p.get("timestamp"),
        "resourceId": p.get("resourceId", machine["id"]),
        "policyAssignmentId": p.get("policyAssignmentId"),
        "policyDefinitionId": p.get("policyDefinitionId"),
        "policyAssignmentName": p.get("policyAssignmentName"),
        "policyDefinitionName": p.get("policyDefinitionName"),
        "policyDefinitionAction": p.get("policyDefinitionAction"),
        "complianceState": p.get("complianceState"),
        "isCompliant": str(p.get("complianceState", "")).lower() == "compliant",
        "subscriptionId": sub_rg_of(machine["id"])[0],
        "resourceType": machine["type"],
        "resourceLocation": machine.get("location"),
        "resourceGroup": sub_rg_of(machine["id"])[1],
        "policyAssignmentScope": assignment[:scope_end] if scope_end > 0 else None,
        "policyDefinitionGroupNames": [],
        # the rest of the fleet's PolicyState document (owner, parameters, versions, management groups, ...)
        **{k: v for k, v in p.items() if k not in _DERIVED_POLICY_STATE_KEYS},
    }


_POLICY_CONTEXT = "https://management.azure.com/providers/Microsoft.PolicyInsights/policyStates/$metadata#latest"


def policy_query_results(sim: Simulator, ctx: Ctx) -> Reply:
    doc = machine_from(sim, ctx)
    rows = [policy_state_row(doc, s) for s in policy_states_of(sim, doc["id"])]
    return Reply(200, {"@odata.context": _POLICY_CONTEXT, "@odata.count": len(rows), "value": rows})


def subscription_policy_query_results(sim: Simulator, ctx: Ctx) -> Reply:
    """PolicyStates_ListQueryResultsForSubscription: every machine's states, paged with @odata.nextLink
    ($skiptoken); ``$filter`` on ``resourceType`` (eq, joined by or) and ``$top`` (records in all) are honoured."""
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    wanted = odata_eq_filter(ctx, {"resourcetype"}).get("resourcetype")
    rows = []
    for s in sim.state.of_type("microsoft.policyinsights/policystates", sub):
        machine = sim.state.get(machine_id_of(s["id"]) or "")
        if machine is None or (wanted is not None and machine["type"].lower() not in wanted):
            continue
        rows.append(policy_state_row(machine, s))
    top = ctx.q("$top")
    if top is not None:
        if not top.isdigit():
            raise ArmError(400, "InvalidQueryParameterValue", f"The value '{top}' of $top is not a non-negative integer.")
        rows = rows[: int(top)]
    listed = page(sim, ctx, rows).body
    body = {"@odata.context": _POLICY_CONTEXT, "@odata.count": len(listed["value"]), "value": listed["value"]}
    if listed.get("nextLink"):
        body["@odata.nextLink"] = listed["nextLink"]
    return Reply(200, body)


def odata_eq_filter(ctx: Ctx, fields: set[str]) -> dict[str, set[str]]:
    """The simple OData filters the console and the official examples send: ``field eq 'value'`` clauses
    joined by ``and`` (different fields) or ``or`` (values of one field). Anything else is refused by name,
    never ignored (ignoring a filter would be a silently wrong answer)."""
    text = (ctx.q("$filter") or "").strip()
    if not text:
        return {}
    out: dict[str, set[str]] = {}
    parts = re.split(r"\s+(and|or)\s+", text, flags=re.IGNORECASE)
    joins = {j.lower() for j in parts[1::2]}
    for clause in parts[::2]:
        m = re.fullmatch(r"\(?\s*(\w+)\s+eq\s+'([^']*)'\s*\)?", clause.strip(), re.IGNORECASE)
        if m is None or m.group(1).lower() not in fields:
            raise ArmError(400, "InvalidFilterInQueryString",
                           f"The simulator does not support the filter '{clause.strip()}' (supported: "
                           f"{' | '.join(sorted(fields))} eq '<value>', joined by and/or).")
        out.setdefault(m.group(1).lower(), set()).add(m.group(2).lower())
    if len(joins) > 1 or (joins == {"or"} and len(out) > 1) or (joins == {"and"} and len(out) < len(parts[::2])):
        raise ArmError(400, "InvalidFilterInQueryString",
                       f"The simulator does not support the filter '{text}': 'or' joins values of one field, "
                       "'and' joins different fields.")
    return out


_BACKUP_STATUS = {"protected": "Protected", "irpending": "Protecting", "protectionerror": "ProtectionFailed",
                  "protectionstopped": "NotProtected", "protectionpaused": "Protected"}


def backup_status(sim: Simulator, ctx: Ctx) -> Reply:
    check_subscription(sim, ctx.match["sub"])
    body = ctx.body or {}
    rid = str(body.get("resourceId") or "")
    if not rid:
        raise ArmError(400, "BMSUserErrorInvalidInput", "Input is invalid: resourceId is required.")
    machine = sim.state.get(rid)
    if machine is None:
        raise ArmError(404, "ResourceNotFound", f"The Resource '{rid}' was not found.")
    for item in sim.state.arg["recoveryservicesresources"].get(ctx.match["sub"].lower(), {}).values():
        props = item.get("properties") or {}
        src = str(props.get("sourceResourceId") or (props.get("dataSourceInfo") or {}).get("resourceID") or "")
        if src.lower() != rid.lower() or "/protecteditems/" not in item["id"].lower():
            continue
        parts = item["id"].split("/")
        vault_id = "/".join(parts[:9])
        state = str(props.get("protectionState", "")).lower()
        return Reply(200, {
            "protectionStatus": _BACKUP_STATUS.get(state, "Protected"),
            "vaultId": vault_id,
            "fabricName": "Azure",
            "containerName": parts[-3] if len(parts) > 3 else "",
            "protectedItemName": parts[-1],
            "errorCode": None if state != "protectionerror" else "UserErrorGuestAgentStatusUnavailable",
            "errorMessage": None if state != "protectionerror" else "VM agent is unable to communicate with the Azure Backup Service.",
            "policyName": str(props.get("policyId") or "").rsplit("/", 1)[-1] or None,
            "registrationStatus": "Registered",
            "protectedItemsCount": 1,
            "acquireStorageAccountLock": "NotAcquire",
        })
    return Reply(200, {"protectionStatus": "NotProtected", "vaultId": None, "fabricName": None,
                       "containerName": None, "protectedItemName": None, "errorCode": None, "errorMessage": None,
                       "policyName": None, "registrationStatus": None, "protectedItemsCount": 0})


def list_of_type(type_lower: str, *, paged: bool = False):
    """A subscription-wide list of one resource type (``{value}``, with nextLink when the API pages)."""

    def handler(sim: Simulator, ctx: Ctx) -> Reply:
        sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
        docs = sim.state.of_type(type_lower, sub)
        return page(sim, ctx, docs) if paged else Reply(200, {"value": docs})

    return handler


def _parent_from(sim: Simulator, ctx: Ctx, parent_type: str) -> dict:
    g = ctx.match.groupdict()
    check_resource_group(sim, g["sub"], g["rg"])
    doc = sim.state.get(g["parent"])
    if doc is None or doc["type"].lower() != parent_type:
        parts = g["parent"].split("/")
        raise not_found("/".join(parts[6:-1]), parts[-1], g["rg"])
    return doc


def list_below(parent_type: str, type_lower: str, *, paged: bool = False):
    """Every document of one type below a parent (a vault's protected items, a sync service's servers)."""

    def handler(sim: Simulator, ctx: Ctx) -> Reply:
        parent = _parent_from(sim, ctx, parent_type)
        docs = sim.state.of_type(type_lower, ctx.match["sub"], under=parent["id"])
        return page(sim, ctx, docs) if paged else Reply(200, {"value": docs})

    return handler


_PROTECTED_ITEM = "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems"


def list_backup_protected_items(sim: Simulator, ctx: Ctx) -> Reply:
    """BackupProtectedItems_List: a vault's protected items, paged; ``$filter`` on backupManagementType and
    itemType (the item's workloadType), as the official example sends it."""
    vault = _parent_from(sim, ctx, "microsoft.recoveryservices/vaults")
    wanted = odata_eq_filter(ctx, {"backupmanagementtype", "itemtype"})
    docs = []
    for doc in sim.state.of_type(_PROTECTED_ITEM, ctx.match["sub"], under=vault["id"]):
        props = doc.get("properties") or {}
        if "backupmanagementtype" in wanted and str(props.get("backupManagementType", "")).lower() not in wanted["backupmanagementtype"]:
            continue
        if "itemtype" in wanted and str(props.get("workloadType", "")).lower() not in wanted["itemtype"]:
            continue
        docs.append(doc)
    return page(sim, ctx, docs)


def get_any(sim: Simulator, ctx: Ctx) -> Reply:
    rid = ctx.match["rid"]
    sub, rg = sub_rg_of(rid)
    check_resource_group(sim, sub, rg)
    doc = sim.state.get(rid)
    if doc is None:
        parts = rid.split("/")
        raise not_found("/".join(parts[6:-1]) if len(parts) > 7 else rid, parts[-1], rg)
    if doc["type"].lower().endswith("/runcommands"):
        return Reply(200, render_run_command(sim, doc, instance_view=True))
    return Reply(200, doc)
