"""The simulator's responses have the structure of the official ARM examples (../shared/arm-examples).

Every example file is SERVED, NOT_SERVED (never: with the reason) or NOT_SERVED_YET (with the issue that
will serve it). SERVED — the test sends the equivalent request to a running simulator
(paths adapted to machines of tests/conformance_fleet.py, bodies taken from the example's parameters),
follows the long-running operation to its final document where the example shows one, and compares
structures — or NOT_SERVED, with the reason. A meta-test keeps the two tables complete.

Structure comparison (``structure_problems``): every key of the example body is in ours with the same
JSON type (object, array, string, number, boolean), recursively; every element of one of our arrays must
have the structure of the example's first element, or of another element of that example array when the
example shows variants (``statuses[]``: a ProvisioningState entry with ``time``, a PowerState entry
without); problems are reported against the first element. An array the example fills must not be
empty in ours.
``null`` in the example says nothing about structure, so it matches any value and an absent key (the
SDKs deserialize both as None). Extra keys in ours are fine. Values the API defines as string maps
(``additionalProperties``: tags, extension settings, ...) hold data, not structure: only their type is compared. Per-example ``allow`` entries name the paths
(``a.b[].c``) that may be absent, null or empty in ours, each with its reason; an allowance that is no
longer needed fails the test, so the lists stay honest.
"""

from __future__ import annotations

import itertools
import json
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance_fleet import (
    ARC_ID,
    ASSIGNMENT_ID,
    MAINT_ID,
    RUN_COMMAND,
    VAULT_ID,
    VM_ID,
    conformance_fleet,
)
from tests.fleetbuilder import SUB_A, arc_id, vm_id

EXAMPLES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "arm-examples"
GRAPH = "/providers/Microsoft.ResourceGraph/resources"
VM2_ID = vm_id("web-02")
ARC2_ID = arc_id("fs-02")
PROTECTED_ITEM_ID = (f"{VAULT_ID}/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg-web;web-01"
                     "/protectedItems/VM;iaasvmcontainerv2;rg-web;web-01")
REPLICATED_ITEM_ID = (f"{VAULT_ID}/replicationFabrics/asr-fabric-weu/replicationProtectionContainers/asr-container-weu"
                      "/replicationProtectedItems/web-01-asr")

NO_ERROR = "null while the item has no error (the example's 'Success' and 'ErrorMessage' are placeholders)"
PROTECTED_SETTINGS = "write-only secrets: accepted, never stored or returned (docs/simulator.md)"


def examples_dir() -> Path:
    if not EXAMPLES_DIR.is_dir():
        pytest.fail(f"the official ARM examples are missing: expected them at {EXAMPLES_DIR} "
                    "(a copy of shared/ beside the repository; CI always provides it)", pytrace=False)
    return EXAMPLES_DIR


def load_example(rel: str) -> dict:
    return json.loads((examples_dir() / rel).read_text(encoding="utf-8"))


# ---- what is not served ----------------------------------------------------------------------------

NOT_SERVED: dict[str, str] = {
    "Microsoft.Compute/2023-09-01/RunCommand_List.json":
        "the per-location catalogue of built-in run commands; the console only sends RunPowerShellScript",
    "Microsoft.Compute/2023-09-01/VirtualMachine_Create_WindowsVmWithPatchSettingModesOfAutomaticByPlatform.json":
        "creating a whole VM (PUT of the VM); the console manages existing servers, it never creates VMs",
    "Microsoft.Compute/2023-09-01/VirtualMachine_Create_WithSecurityTypeConfidentialVM.json":
        "creating a whole VM (PUT of the VM); the console manages existing servers, it never creates VMs",
    "Microsoft.Compute/2023-09-01/VirtualMachine_Create_WithUefiSettings.json":
        "creating a whole VM (PUT of the VM); the console manages existing servers, it never creates VMs",
    "Microsoft.Compute/2026-04-01/VirtualMachine_Create_WindowsVmWithPatchSettingModeOfAutomaticByPlatformAndEnableHotPatchingTrue.json":
        "creating a whole VM (PUT of the VM); the console manages existing servers, it never creates VMs",
    "Microsoft.PolicyInsights/2019-10-01/PolicyStates_SummarizeSubscriptionScope.json":
        "subscription-scope summary; the console summarizes per machine, and fleet-wide from Resource Graph's policyresources",
    "Microsoft.ResourceGraph/2022-10-01/ResourcesFacetQuery.json":
        "facets are not supported: the simulator answers a request with facets 400 naming them "
        "(test_facet_request_is_refused_by_name); the console runs summarize queries instead",
    "Microsoft.Compute/2026-04-01/VirtualMachine_Update_ForceDetachDataDisk.json":
        "detaching data disks; the console never changes a VM's storage, and the simulator refuses a PATCH of properties "
        "it does not apply (400) rather than answer 200 and ignore them",
    "Microsoft.ResourceGraph/2020-09-01-preview/ResourceChanges.json":
        "a preview-only API (resource change history); no issue plans it, the console reads current state only",
    "Microsoft.ResourceGraph/2020-09-01-preview/ResourceChangeDetails.json":
        "a preview-only API (resource change history); no issue plans it, the console reads current state only",
    "Microsoft.ResourceGraph/2021-06-01-preview/ResourcesHistoryGet.json":
        "a preview-only API (snapshots of past state); no issue plans it, the console reads current state only",
    "Microsoft.Security/2024-01-01/GetPricingByNameVirtualMachines_example.json":
        "subscription-level Get of one plan; the console reads the subscription's plans with Pricings_List and each "
        "machine's effective plan with the resource-level Get (which reports inheritance)",
}


# Examples a planned issue will serve: each names the issue and what it adds. Until then the simulator must
# refuse the request (test_not_served_example_is_refused), so serving one forces it into SERVED, checked.
BACKUP = "issue 12 (Backup: enable protection in a vault, with a policy, optional first backup)"
SITE_RECOVERY = "issue 12 (Site Recovery: Azure-to-Azure replication into a vault)"
DEFENDER = "issue 12 (the Defender for Servers plan, per server and per subscription)"
GUEST_CONFIG = "issue 12 (Policy guest configuration: assign a built-in machine configuration)"
AUTOMANAGE = "issue 12 (Automanage: assign a best-practices configuration profile)"
HOTPATCH_ARC = "issue 12 (hotpatch on Arc: the machine's license profile)"
UPDATE_MANAGER = "issue 12 (Update Manager settings: assign a maintenance configuration)"
FILE_SYNC = "issue 12 (File Sync: the registered server as evidence beside the in-guest probe)"
NOT_SERVED_YET: dict[str, str] = {
    "Microsoft.Automanage/2022-05-04/createOrUpdateConfigurationProfileAssignment.json": AUTOMANAGE,
    "Microsoft.Automanage/2022-05-04/createOrUpdateConfigurationProfileHCRPAssignment.json": AUTOMANAGE,
    "Microsoft.Automanage/2022-05-04/getBestPractice.json": AUTOMANAGE,
    "Microsoft.Automanage/2022-05-04/listBestPracticesByTenant.json": AUTOMANAGE,
    "Microsoft.GuestConfiguration/2024-04-05/createOrUpdateGuestConfigurationAssignment.json": GUEST_CONFIG,
    "Microsoft.GuestConfiguration/2024-04-05/createOrUpdateGuestConfigurationHCRPAssignment.json": GUEST_CONFIG,
    "Microsoft.HybridCompute/2026-09-01/LicenseProfile_CreateOrUpdate.json": HOTPATCH_ARC,
    "Microsoft.HybridCompute/2026-09-01/LicenseProfile_Update.json": HOTPATCH_ARC,
    "Microsoft.Maintenance/2025-11-01/ConfigurationAssignments_CreateOrUpdate.json": UPDATE_MANAGER,
    "Microsoft.Maintenance/2025-11-01/ConfigurationAssignments_CreateOrUpdateParent.json": UPDATE_MANAGER,
    "Microsoft.Maintenance/2025-11-01/MaintenanceConfigurations_List.json": UPDATE_MANAGER,
    "Microsoft.HybridCompute/2026-09-01/Machines_Update.json":
        "issue 12 (Update Manager settings: the machine's patchSettings PATCH; the simulator applies only tags and identity "
        "today and refuses the rest)",
    "Microsoft.RecoveryServices/2026-02-01/BackupPolicies_List.json": BACKUP,
    "Microsoft.RecoveryServices/2026-02-01/ConfigureProtection.json": BACKUP,
    "Microsoft.RecoveryServices/2026-02-01/TriggerBackup_Post.json": BACKUP,
    "Microsoft.RecoveryServices/2026-05-01/ReplicationFabrics_List.json": SITE_RECOVERY,
    "Microsoft.RecoveryServices/2026-05-01/ReplicationPolicies_List.json": SITE_RECOVERY,
    "Microsoft.RecoveryServices/2026-05-01/ReplicationProtectedItems_Create.json": SITE_RECOVERY,
    "Microsoft.RecoveryServices/2026-05-01/ReplicationProtectionContainers_List.json": SITE_RECOVERY,
    "Microsoft.RecoveryServices/2026-05-01/ReplicationProtectionIntents_Create.json": SITE_RECOVERY,
    "Microsoft.Security/2024-01-01/DeleteResourcePricing_example.json": DEFENDER,
    "Microsoft.Security/2024-01-01/PutPricingVMsByName_example.json": DEFENDER,
    "Microsoft.Security/2024-01-01/PutResourcePricingByNameVirtualMachines_example.json": DEFENDER,
    "Microsoft.StorageSync/2025-12-01/RegisteredServers_Get.json": FILE_SYNC,
    "Microsoft.StorageSync/2025-12-01/RegisteredServers_ListByStorageSyncService.json": FILE_SYNC,
}


# The request each NOT_SERVED example makes, adapted to the fleet: the simulator must refuse it, so that
# an operation that becomes served has to move to SERVED (and be checked).
_CREATE_VM = ("PUT", f"{VM_ID}", "parameters")
_NEW_PROTECTED_ITEM = (f"{VAULT_ID}/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg-web;web-02"
                       "/protectedItems/VM;iaasvmcontainerv2;rg-web;web-02")
_SYNC_SERVICE = f"/subscriptions/{SUB_A}/resourceGroups/rg-files/providers/Microsoft.StorageSync/storageSyncServices/sync-weu"
NOT_SERVED_REQUESTS: dict[str, tuple[str, str, str | None]] = {
    "Microsoft.Compute/2023-09-01/RunCommand_List.json":
        ("GET", f"/subscriptions/{SUB_A}/providers/Microsoft.Compute/locations/westeurope/runCommands", None),
    "Microsoft.Compute/2023-09-01/VirtualMachine_Create_WindowsVmWithPatchSettingModesOfAutomaticByPlatform.json": _CREATE_VM,
    "Microsoft.Compute/2023-09-01/VirtualMachine_Create_WithSecurityTypeConfidentialVM.json": _CREATE_VM,
    "Microsoft.Compute/2023-09-01/VirtualMachine_Create_WithUefiSettings.json": _CREATE_VM,
    "Microsoft.Compute/2026-04-01/VirtualMachine_Create_WindowsVmWithPatchSettingModeOfAutomaticByPlatformAndEnableHotPatchingTrue.json":
        _CREATE_VM,
    "Microsoft.PolicyInsights/2019-10-01/PolicyStates_SummarizeSubscriptionScope.json":
        ("POST", f"/subscriptions/{SUB_A}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize", None),
    "Microsoft.ResourceGraph/2022-10-01/ResourcesFacetQuery.json": ("POST", "/providers/Microsoft.ResourceGraph/resources", "query"),
    "Microsoft.Compute/2026-04-01/VirtualMachine_Update_ForceDetachDataDisk.json": ("PATCH", VM2_ID, "parameters"),
    "Microsoft.ResourceGraph/2020-09-01-preview/ResourceChanges.json":
        ("POST", "/providers/Microsoft.ResourceGraph/resourceChanges", "parameters"),
    "Microsoft.ResourceGraph/2020-09-01-preview/ResourceChangeDetails.json":
        ("POST", "/providers/Microsoft.ResourceGraph/resourceChangeDetails", "parameters"),
    "Microsoft.ResourceGraph/2021-06-01-preview/ResourcesHistoryGet.json":
        ("POST", "/providers/Microsoft.ResourceGraph/resourcesHistory", "request"),
    # ---- served by a planned issue (NOT_SERVED_YET)
    "Microsoft.Automanage/2022-05-04/createOrUpdateConfigurationProfileAssignment.json":
        ("PUT", f"{VM2_ID}/providers/Microsoft.Automanage/configurationProfileAssignments/default", "parameters"),
    "Microsoft.Automanage/2022-05-04/createOrUpdateConfigurationProfileHCRPAssignment.json":
        ("PUT", f"{ARC2_ID}/providers/Microsoft.Automanage/configurationProfileAssignments/default", "parameters"),
    "Microsoft.Automanage/2022-05-04/getBestPractice.json":
        ("GET", "/providers/Microsoft.Automanage/bestPractices/azureBestPracticesProduction", None),
    "Microsoft.Automanage/2022-05-04/listBestPracticesByTenant.json": ("GET", "/providers/Microsoft.Automanage/bestPractices", None),
    "Microsoft.GuestConfiguration/2024-04-05/createOrUpdateGuestConfigurationAssignment.json":
        ("PUT", f"{VM2_ID}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/NotInstalledApplicationForWindows",
         "parameters"),
    "Microsoft.GuestConfiguration/2024-04-05/createOrUpdateGuestConfigurationHCRPAssignment.json":
        ("PUT", f"{ARC2_ID}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/NotInstalledApplicationForWindows",
         "parameters"),
    "Microsoft.HybridCompute/2026-09-01/LicenseProfile_CreateOrUpdate.json": ("PUT", f"{ARC_ID}/licenseProfiles/default", "parameters"),
    "Microsoft.HybridCompute/2026-09-01/LicenseProfile_Update.json": ("PATCH", f"{ARC_ID}/licenseProfiles/default", "parameters"),
    "Microsoft.Maintenance/2025-11-01/ConfigurationAssignments_CreateOrUpdate.json":
        ("PUT", f"{VM2_ID}/providers/Microsoft.Maintenance/configurationAssignments/workervmConfiguration", "configurationAssignment"),
    "Microsoft.Maintenance/2025-11-01/ConfigurationAssignments_CreateOrUpdateParent.json":
        ("PUT", f"{ARC2_ID}/providers/Microsoft.Maintenance/configurationAssignments/workervmPolicy", "configurationAssignment"),
    "Microsoft.Maintenance/2025-11-01/MaintenanceConfigurations_List.json":
        ("GET", f"/subscriptions/{SUB_A}/providers/Microsoft.Maintenance/maintenanceConfigurations", None),
    "Microsoft.RecoveryServices/2026-02-01/BackupPolicies_List.json": ("GET", f"{VAULT_ID}/backupPolicies", None),
    "Microsoft.RecoveryServices/2026-02-01/ConfigureProtection.json": ("PUT", _NEW_PROTECTED_ITEM, "parameters"),
    "Microsoft.RecoveryServices/2026-02-01/TriggerBackup_Post.json": ("POST", f"{PROTECTED_ITEM_ID}/backup", "parameters"),
    "Microsoft.RecoveryServices/2026-05-01/ReplicationFabrics_List.json": ("GET", f"{VAULT_ID}/replicationFabrics", None),
    "Microsoft.RecoveryServices/2026-05-01/ReplicationPolicies_List.json": ("GET", f"{VAULT_ID}/replicationPolicies", None),
    "Microsoft.RecoveryServices/2026-05-01/ReplicationProtectedItems_Create.json":
        ("PUT", f"{VAULT_ID}/replicationFabrics/asr-fabric-weu/replicationProtectionContainers/asr-container-weu"
                "/replicationProtectedItems/web-02-asr", "input"),
    "Microsoft.RecoveryServices/2026-05-01/ReplicationProtectionContainers_List.json":
        ("GET", f"{VAULT_ID}/replicationProtectionContainers", None),
    "Microsoft.RecoveryServices/2026-05-01/ReplicationProtectionIntents_Create.json":
        ("PUT", f"{VAULT_ID}/replicationProtectionIntents/web-02", "input"),
    "Microsoft.Security/2024-01-01/DeleteResourcePricing_example.json":
        ("DELETE", f"{VM_ID}/providers/Microsoft.Security/pricings/VirtualMachines", None),
    "Microsoft.Security/2024-01-01/PutPricingVMsByName_example.json":
        ("PUT", f"/subscriptions/{SUB_A}/providers/Microsoft.Security/pricings/VirtualMachines", "pricing"),
    "Microsoft.Security/2024-01-01/PutResourcePricingByNameVirtualMachines_example.json":
        ("PUT", f"{VM2_ID}/providers/Microsoft.Security/pricings/VirtualMachines", "pricing"),
    "Microsoft.StorageSync/2025-12-01/RegisteredServers_Get.json":
        ("GET", f"{_SYNC_SERVICE}/registeredServers/080d4133-bdb5-40a0-96a0-71a6057bfe9a", None),
    "Microsoft.StorageSync/2025-12-01/RegisteredServers_ListByStorageSyncService.json": ("GET", f"{_SYNC_SERVICE}/registeredServers", None),
    "Microsoft.HybridCompute/2026-09-01/Machines_Update.json": ("PATCH", ARC2_ID, "parameters"),

    "Microsoft.Security/2024-01-01/GetPricingByNameVirtualMachines_example.json":
        ("GET", f"/subscriptions/{SUB_A}/providers/Microsoft.Security/pricings/VirtualMachines", None),
}


# ---- what is served, and how it is asked ------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """One example, as the equivalent request against the conformance fleet."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # the example parameter that holds the request body
    adapt: Callable[[Any], Any] | None = None  # changes to that body (explained in `note`)
    prepare: Callable[[httpx.Client, dict], Any] | None = None  # builds the body with earlier requests
    final: str = ""  # "location": poll Location to the action's result; "resource": poll the operation, then GET
    wrap_example: bool = False  # the example shows a bare array where the API answers {"value": [...]}
    allow: dict[str, str] = field(default_factory=dict)
    note: str = ""  # how the request differs from the example's


def _graph_query(example: dict) -> dict:
    body = json.loads(json.dumps(example["parameters"]["query"]))
    if "subscriptions" in body:
        body["subscriptions"] = [SUB_A]
    return body


def _next_page(client: httpx.Client, example: dict) -> dict:
    first = client.post(GRAPH, json=_graph_query(load_example("Microsoft.ResourceGraph/2022-10-01/ResourcesFirstPageQuery.json")),
                        params={"api-version": example["parameters"]["api-version"]})
    assert first.status_code == 200, first.text
    body = _graph_query(example)
    body["options"]["$skipToken"] = first.json()["$skipToken"]
    return body


def _with_publisher(body: dict) -> dict:
    return {**body, "properties": {"publisher": "Microsoft.Azure.Security", "type": "IaaSAntimalware", "typeHandlerVersion": "1.5"}}


def _installed_targets(body: dict) -> dict:
    targets = dict(body["extensionTargets"])
    targets.pop("Microsoft.Azure.Monitoring")
    targets["Microsoft.Azure.Monitor.AzureMonitorWindowsAgent"] = {"targetVersion": "1.23"}
    return {"extensionTargets": targets}


def _tags_only(body: dict) -> dict:
    return {"tags": body["tags"]}


def _backup_status_body(body: dict) -> dict:
    return {**body, "resourceId": VM_ID}


_EXTENSION_IMAGES = f"/subscriptions/{SUB_A}/providers/Microsoft.Compute/locations/westeurope/publishers/Microsoft.Azure.Security/artifacttypes/vmextension"
_IMAGE_ALLOW = {f"properties.{k}": "set by a publisher for some versions only (new in 2026-04-01); the catalogue's have none"
                for k in ("releaseNotes", "releaseCategory", "urgencyLevel", "runProfile", "extensionFeatureMetadata")}

SERVED: dict[str, Served] = {
    # ---- Automanage
    "Microsoft.Automanage/2022-05-04/getConfigurationProfileAssignment.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Automanage/configurationProfileAssignments/default"),
    "Microsoft.Automanage/2022-05-04/getConfigurationProfileHCRPAssignment.json": Served(
        "GET", f"{ARC_ID}/providers/Microsoft.Automanage/configurationProfileAssignments/default"),
    "Microsoft.Automanage/2022-05-04/listConfigurationProfileAssignmentsByVirtualMachines.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Automanage/configurationProfileAssignments"),
    # ---- Compute: extensions
    "Microsoft.Compute/2023-09-01/VirtualMachineExtension_CreateOrUpdate_MinimumSet_Gen.json": Served(
        "PUT", f"{VM2_ID}/extensions/myVMExtension", body="extensionParameters", adapt=_with_publisher, final="resource",
        note="the generated minimum body has no publisher/type, which ARM requires; the test adds them"),
    "Microsoft.Compute/2023-09-01/VirtualMachineExtension_Delete_MinimumSet_Gen.json": Served(
        "DELETE", f"{VM_ID}/extensions/IaaSAntimalware", final="location"),
    "Microsoft.Compute/2023-09-01/VirtualMachineExtension_List_MaximumSet_Gen.json": Served(
        "GET", f"{VM_ID}/extensions", query={"$expand": "instanceView"},
        note="the example's $expand is a generated placeholder; its response shows instanceView, so the test asks for it",
        allow={"value[].properties.protectedSettings": PROTECTED_SETTINGS}),
    # ---- Compute: run commands
    "Microsoft.Compute/2023-09-01/VirtualMachineRunCommand.json": Served(
        "POST", f"{VM_ID}/runCommand", body="parameters", final="location"),
    "Microsoft.Compute/2023-09-01/VirtualMachineRunCommand_List.json": Served("GET", f"{VM_ID}/runCommands"),
    "Microsoft.Compute/2026-04-01/VirtualMachineRunCommand_CreateOrUpdate.json": Served(
        "PUT", f"{VM2_ID}/runCommands/{RUN_COMMAND}", body="runCommand", final="resource"),
    "Microsoft.Compute/2026-04-01/VirtualMachineRunCommand_Get.json": Served("GET", f"{VM_ID}/runCommands/{RUN_COMMAND}"),
    # ---- Compute: virtual machines
    "Microsoft.Compute/2023-09-01/VirtualMachine_Get.json": Served(
        "GET", VM_ID, query={"$expand": "userData"},
        allow={"properties.userData": "set when a VM is created; the fleet holds none and the console never reads it",
               "managedBy": "only for VMs orchestrated by a Flexible scale set; the fleet's VMs are standalone"}),
    "Microsoft.Compute/2023-09-01/VirtualMachine_ListAll_MinimumSet_Gen.json": Served(
        "GET", f"/subscriptions/{SUB_A}/providers/Microsoft.Compute/virtualMachines"),
    "Microsoft.Compute/2023-09-01/VirtualMachine_List_MinimumSet_Gen.json": Served(
        "GET", f"/subscriptions/{SUB_A}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines"),
    "Microsoft.Compute/2026-04-01/VirtualMachine_Get_InstanceView.json": Served(
        "GET", f"{VM_ID}/instanceView",
        allow={"capacityReservationType": "only for VMs in a capacity reservation group; the fleet's VM is in none"}),
    "Microsoft.Compute/2026-04-01/VirtualMachine_Update_WithInstanceProfile.json": Served(
        "PATCH", VM_ID, body="parameters", adapt=_tags_only, final="resource",
        allow={"properties.instanceProfile": "the fleet has no gallery instance profiles (the body is adapted to tags)",
               "properties.osProfile.linuxConfiguration": "a Windows VM: its osProfile has windowsConfiguration instead"},
        note="the fleet has no gallery instance profiles: the test PATCHes the example's tags, as the console's tag and "
             "identity PATCHes do (the simulator refuses properties it does not apply)"),
    "Microsoft.Compute/2023-09-01/VirtualMachine_Deallocate_MinimumSet_Gen.json": Served("POST", f"{VM_ID}/deallocate", final="location"),
    "Microsoft.Compute/2023-09-01/VirtualMachine_PowerOff_MinimumSet_Gen.json": Served("POST", f"{VM_ID}/powerOff", final="location"),
    "Microsoft.Compute/2023-09-01/VirtualMachine_Restart_MinimumSet_Gen.json": Served("POST", f"{VM_ID}/restart", final="location"),
    "Microsoft.Compute/2026-04-01/VirtualMachine_AssessPatches.json": Served(
        "POST", f"{VM_ID}/assessPatches", final="location"),
    "Microsoft.Compute/2026-04-01/VirtualMachine_InstallPatches.json": Served(
        "POST", f"{VM_ID}/installPatches", body="installPatchesInput", final="location"),
    # ---- Guest configuration
    "Microsoft.GuestConfiguration/2022-01-25/getGuestConfigurationAssignment.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/AzureWindowsBaseline"),
    "Microsoft.GuestConfiguration/2022-01-25/getGuestConfigurationHCRPAssignment.json": Served(
        "GET", f"{ARC_ID}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/AzureWindowsBaseline"),
    "Microsoft.GuestConfiguration/2022-01-25/listGuestConfigurationAssignments.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments", wrap_example=True,
        note="the example's body is a bare array; the API's GuestConfigurationAssignmentList (and the SDK) is {value: [...]}"),
    "Microsoft.GuestConfiguration/2022-01-25/listGuestConfigurationHCRPAssignments.json": Served(
        "GET", f"{ARC_ID}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments", wrap_example=True,
        note="the example's body is a bare array; the API's GuestConfigurationAssignmentList (and the SDK) is {value: [...]}"),
    "Microsoft.GuestConfiguration/2022-01-25/listSubGuestConfigurationAssignments.json": Served(
        "GET", f"/subscriptions/{SUB_A}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments", wrap_example=True,
        note="the example's body is a bare array; the API's GuestConfigurationAssignmentList (and the SDK) is {value: [...]}"),
    # ---- Arc machines
    "Microsoft.HybridCompute/2025-01-13/Extension_CreateOrUpdate.json": Served(
        "PUT", f"{ARC2_ID}/extensions/CustomScriptExtension", body="extensionParameters", final="resource",
        allow={"properties.protectedSettings": PROTECTED_SETTINGS}),
    "Microsoft.HybridCompute/2025-01-13/Extension_Get.json": Served(
        "GET", f"{ARC_ID}/extensions/CustomScriptExtension", allow={"properties.protectedSettings": PROTECTED_SETTINGS}),
    "Microsoft.HybridCompute/2025-01-13/Extensions_Upgrade.json": Served(
        "POST", f"{ARC_ID}/upgradeExtensions", body="extensionUpgradeParameters", adapt=_installed_targets, final="location",
        note="'Microsoft.Azure.Monitoring' is no installed publisher.type; the test targets the machine's Azure Monitor agent instead"),
    "Microsoft.HybridCompute/2025-01-13/Machine_AssessPatches.json": Served(
        "POST", f"{ARC_ID}/assessPatches", final="location"),
    "Microsoft.HybridCompute/2025-01-13/Machine_InstallPatches.json": Served(
        "POST", f"{ARC_ID}/installPatches", body="installPatchesInput", final="location"),
    "Microsoft.HybridCompute/2025-01-13/Machines_Get.json": Served(
        "GET", ARC_ID, allow={"properties.parentClusterResourceId": "only for Azure Local (HCI) cluster nodes; the fleet's are not"}),
    "Microsoft.HybridCompute/2025-01-13/Machines_ListBySubscription.json": Served(
        "GET", f"/subscriptions/{SUB_A}/providers/Microsoft.HybridCompute/machines"),
    "Microsoft.HybridCompute/2025-01-13/RunCommands_CreateOrUpdate.json": Served(
        "PUT", f"{ARC2_ID}/runCommands/{RUN_COMMAND}", body="runCommandProperties", final="resource"),
    "Microsoft.HybridCompute/2025-01-13/RunCommands_Get.json": Served("GET", f"{ARC_ID}/runCommands/{RUN_COMMAND}"),
    # ---- Monitor, Maintenance
    "Microsoft.Insights/2022-06-01/DataCollectionRuleAssociationsGet.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Insights/dataCollectionRuleAssociations/dcra-security"),
    "Microsoft.Insights/2022-06-01/DataCollectionRuleAssociationsListByResource.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Insights/dataCollectionRuleAssociations"),
    "Microsoft.Maintenance/2023-04-01/ConfigurationAssignments_Get.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Maintenance/configurationAssignments/patch-sunday",
        note="the example's resource is a scale set; the same generic path is asked for a VM"),
    "Microsoft.Maintenance/2023-04-01/ConfigurationAssignments_List.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Maintenance/configurationAssignments",
        note="the example's resource is a scale set; the same generic path is asked for a VM"),
    "Microsoft.Maintenance/2023-04-01/MaintenanceConfigurations_GetForResource_GuestOSPatchWindows.json": Served("GET", MAINT_ID),
    # ---- Policy
    "Microsoft.PolicyInsights/2019-10-01/PolicyStates_QueryResourceScope.json": Served(
        "POST", f"{VM_ID}/providers/Microsoft.PolicyInsights/policyStates/default/queryResults"),
    "Microsoft.PolicyInsights/2019-10-01/PolicyStates_SummarizeResourceScope.json": Served(
        "POST", f"{VM_ID}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize", query={"$top": "2"},
        allow={"value[].policyAssignments[].policyGroups":
               "not summarized by policy definition group; the console shows assignment and definition results"}),
    # ---- Backup, Site Recovery
    "Microsoft.RecoveryServices/2023-08-01/Compute_ProtectedItem_Get.json": Served("GET", PROTECTED_ITEM_ID),
    "Microsoft.RecoveryServices/2023-08-01/GetBackupStatus.json": Served(
        "POST", f"/subscriptions/{SUB_A}/providers/Microsoft.RecoveryServices/locations/westeurope/backupStatus",
        body="parameters", adapt=_backup_status_body, note="asks about the fleet's backed-up VM",
        allow={"errorCode": NO_ERROR, "errorMessage": NO_ERROR}),
    "Microsoft.RecoveryServices/2023-08-01/ReplicationProtectedItems_Get.json": Served("GET", REPLICATED_ITEM_ID),
    "Microsoft.RecoveryServices/2023-08-01/BackupProtectedItems_List.json": Served(
        "GET", f"{VAULT_ID}/backupProtectedItems", query={"$filter": "backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'"}),
    "Microsoft.RecoveryServices/2026-08-01/ListBySubscriptionIds.json": Served(
        "GET", f"/subscriptions/{SUB_A}/providers/Microsoft.RecoveryServices/vaults"),
    "Microsoft.RecoveryServices/2023-08-01/ReplicationProtectedItems_List.json": Served("GET", f"{VAULT_ID}/replicationProtectedItems"),
    # ---- Resource Graph (subscriptions narrowed to the fleet's)
    "Microsoft.ResourceGraph/2022-10-01/ResourcesBasicQuery.json": Served("POST", GRAPH, prepare=lambda c, ex: _graph_query(ex)),
    "Microsoft.ResourceGraph/2022-10-01/ResourcesFirstPageQuery.json": Served("POST", GRAPH, prepare=lambda c, ex: _graph_query(ex)),
    "Microsoft.ResourceGraph/2022-10-01/ResourcesNextPageQuery.json": Served(
        "POST", GRAPH, prepare=_next_page, note="the $skipToken comes from the first page's answer, as a client gets it"),
    "Microsoft.ResourceGraph/2022-10-01/ResourcesMgBasicQuery.json": Served("POST", GRAPH, prepare=lambda c, ex: _graph_query(ex)),
    "Microsoft.ResourceGraph/2022-10-01/ResourcesPropertiesQuery.json": Served(
        "POST", GRAPH, prepare=lambda c, ex: _graph_query(ex),
        allow={"data[].count": "Kusto, and ARG today, name count()'s column count_ (so does the KQL engine); "
                               "the 2022 example shows count"}),
    "Microsoft.ResourceGraph/2022-10-01/ResourcesSummarizeQuery.json": Served("POST", GRAPH, prepare=lambda c, ex: _graph_query(ex)),
    # ---- Subscriptions and tenants
    "Microsoft.Resources/2022-12-01/GetSubscription.json": Served("GET", f"/subscriptions/{SUB_A}"),
    "Microsoft.Resources/2022-12-01/GetSubscriptions.json": Served("GET", "/subscriptions"),
    "Microsoft.Resources/2022-12-01/GetTenants.json": Served("GET", "/tenants"),
    # ---- Defender for Cloud
    "Microsoft.Security/2021-06-01/GetAssessment_example.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Security/assessments/4ab6e3c5-74dd-8b35-9ab9-f61b30875b27"),
    "Microsoft.Security/2021-06-01/ListAssessments_example.json": Served(
        "GET", f"/subscriptions/{SUB_A}/providers/Microsoft.Security/assessments"),
    "Microsoft.Security/2024-01-01/GetResourcePricingByNameVirtualMachines_example.json": Served(
        "GET", f"{VM_ID}/providers/Microsoft.Security/pricings/VirtualMachines"),
    "Microsoft.Security/2024-01-01/ListPricings_example.json": Served(
        "GET", f"/subscriptions/{SUB_A}/providers/Microsoft.Security/pricings"),
    # ---- what the Azure CLI reads around the machines (az group show, az vm list -d, az vm extension set)
    "Microsoft.Compute/2026-04-01/VirtualMachineExtensionImage_Get_MaximumSet_Gen.json": Served(
        "GET", f"{_EXTENSION_IMAGES}/types/IaaSAntimalware/versions/1.7.2.0", allow=_IMAGE_ALLOW),
    "Microsoft.Compute/2026-04-01/VirtualMachineExtensionImage_ListTypes_MaximumSet_Gen.json": Served(
        "GET", f"{_EXTENSION_IMAGES}/types"),
    "Microsoft.Compute/2026-04-01/VirtualMachineExtensionImage_ListVersions_MaximumSet_Gen.json": Served(
        "GET", f"{_EXTENSION_IMAGES}/types/IaaSAntimalware/versions", query={"$orderby": "name desc", "$top": "22"},
        note="the example's $filter and $orderby are generated placeholders ('aaaa', 'a'); the test orders by name "
             "as az does and keeps its $top"),
    "Microsoft.Network/2025-07-01/NetworkInterfaceGet.json": Served(
        "GET", f"/subscriptions/{SUB_A}/resourceGroups/rg-web/providers/Microsoft.Network/networkInterfaces/web-01-nic",
        allow={"properties.dscpConfiguration": "no DSCP configuration: the fleet's VMs have none (an optional reference)"}),
    "Microsoft.Network/2025-09-01/PublicIpAddressGet.json": Served(
        "GET", f"/subscriptions/{SUB_A}/resourceGroups/rg-web/providers/Microsoft.Network/publicIPAddresses/web-01-ip",
        allow={"properties.ddosSettings.ddosProtectionPlan": "the fleet has no DDoS protection plan: the address "
                                                             "inherits its network's protection (protectionMode)",
               "properties.ipTags": "no IP tags on the fleet's addresses (the example's FirstPartyUsage tags are "
                                    "for Microsoft's own services)"}),
    "Microsoft.Resources/2025-04-01/ResourceGroups_Get.json": Served("GET", f"/subscriptions/{SUB_A}/resourceGroups/rg-web"),
}


# ---- structure comparison -----------------------------------------------------------------------


# Keys whose values are maps of user or provider data (``additionalProperties`` in the API's schema).
FREE_FORM_MAPS = {"tags", "settings", "additionalExtensionProperties", "detectedProperties"}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def structure_problems(example: Any, ours: Any, allow: dict[str, str], used: set[str], path: str = "") -> list[str]:
    """What in ours lacks the example's structure (see the module docstring for the rules)."""
    where = path or "<body>"
    if example is None:
        return []
    if ours is None:
        if path in allow:
            used.add(path)
            return []
        return [f"{where}: null or missing, the example has {json_type(example)}"]
    if json_type(example) != json_type(ours):
        return [f"{where}: {json_type(ours)}, the example has {json_type(example)}"]
    problems: list[str] = []
    if isinstance(example, dict):
        if path.rsplit(".", 1)[-1].removesuffix("[]") in FREE_FORM_MAPS:
            return []
        for key, value in example.items():
            problems += structure_problems(value, ours.get(key), allow, used, f"{path}.{key}" if path else key)
    elif isinstance(example, list) and example:
        if not ours:
            if path in allow:
                used.add(path)
                return []
            return [f"{where}: empty, the example has {len(example)} element(s)"]
        for item in ours:
            problems += _element_problems(example, item, allow, used, f"{path}[]")
    return sorted(set(problems))


def _element_problems(example: list, item: Any, allow: dict[str, str], used: set[str], path: str) -> list[str]:
    """An element has the structure of one of the example's elements (the first, or the variant it is)."""
    best: tuple[list[str], set[str]] | None = None
    for candidate in example:
        local: set[str] = set()
        problems = structure_problems(candidate, item, allow, local, path)
        if not problems:
            used |= local
            return []
        if best is None:
            best = (problems, local)
    assert best is not None
    used |= best[1]
    return best[0]


def test_structure_rules():
    used: set[str] = set()
    example = {"a": {"b": [{"c": 1, "d": None}]}, "e": "x", "f": None, "g": [], "h": [True], "tags": {"k": "v"}}
    ours = {"a": {"b": [{"c": 2}, {"c": 3, "z": 0}]}, "e": "y", "g": [1], "h": [False], "tags": {}}
    assert structure_problems(example, ours, {}, used) == []
    assert structure_problems(example, {"a": {"b": [{"c": "2"}]}, "e": 1, "g": {}, "h": [], "tags": []}, {}, used) == [
        "a.b[].c: string, the example has number", "e: number, the example has string", "g: object, the example has array",
        "h: empty, the example has 1 element(s)", "tags: array, the example has object"]
    variants = {"s": [{"code": "x", "time": "t"}, {"code": "y"}]}
    assert structure_problems(variants, {"s": [{"code": "a", "time": "t"}, {"code": "b"}]}, {}, used) == []
    assert structure_problems(variants, {"s": [{"time": "t"}]}, {}, used) == ["s[].code: null or missing, the example has string"]
    assert structure_problems({"x": {"y": 1}}, {"x": {}}, {"x.y": "reason"}, used) == []
    assert used == {"x.y"}


# ---- the running simulator -----------------------------------------------------------------------


@pytest.fixture
def conformance_sim(make_sim):
    return make_sim(conformance_fleet(), throttle=False, graph_quota=False, page_size=2, lro_seconds=0.2)


@pytest.fixture
def client(conformance_sim):
    ctx = ssl.create_default_context(cafile=str(conformance_sim.ca_path))
    with httpx.Client(base_url=conformance_sim.base_url, verify=ctx, timeout=30,
                      headers={"Authorization": "Bearer conformance-test"}) as c:
        yield c


def _wait(response: httpx.Response) -> None:
    if "retry-after-ms" in response.headers:
        time.sleep(int(response.headers["retry-after-ms"]) / 1000)
    else:
        time.sleep(min(2.0, float(response.headers.get("Retry-After", "1"))))


def poll_location(client: httpx.Client, response: httpx.Response) -> httpx.Response:
    """POST actions: the Location URL answers 202 until the action ends, then its result."""
    url = response.headers["Location"]
    deadline = time.monotonic() + 20
    while True:
        current = client.get(url)
        if current.status_code != 202:
            return current
        assert time.monotonic() < deadline, f"{url} still 202 after 20 s"
        _wait(current)


def poll_async_operation(client: httpx.Client, response: httpx.Response) -> dict:
    url = response.headers["Azure-AsyncOperation"]
    deadline = time.monotonic() + 20
    while True:
        current = client.get(url)
        assert current.status_code == 200, current.text
        status = current.json()
        if status["status"] not in ("InProgress", "Accepted", "Running"):
            return status
        assert time.monotonic() < deadline, f"{url} still {status['status']} after 20 s"
        _wait(current)


def example_body(example: dict, status: int, case: Served) -> Any:
    body = example["responses"].get(str(status), {}).get("body")
    if body is not None and case.wrap_example:
        body = {"value": body}
    return body


def check(example: dict, status: int, ours: Any, case: Served, used: set[str], label: str) -> list[str]:
    expected = example_body(example, status, case)
    if expected is None:
        return []
    return [f"{label}: {p}" for p in structure_problems(expected, ours, case.allow, used)]


def body_of(response: httpx.Response) -> Any:
    return response.json() if response.content else None


@pytest.mark.parametrize("rel", sorted(SERVED))
def test_served_example_has_the_examples_structure(rel: str, client: httpx.Client):
    example = load_example(rel)
    case = SERVED[rel]
    statuses = {int(s) for s in example["responses"]}
    params = {"api-version": example["parameters"]["api-version"], **case.query}
    body = None
    if case.prepare is not None:
        body = case.prepare(client, example)
    elif case.body is not None:
        body = json.loads(json.dumps(example["parameters"][case.body]))
        if case.adapt is not None:
            body = case.adapt(body)
    response = client.request(case.method, case.path, params=params, json=body)
    assert response.status_code in statuses, (
        f"{case.method} {case.path} answered {response.status_code} (the example lists {sorted(statuses)}): {response.text[:500]}")

    used: set[str] = set()
    problems = check(example, response.status_code, body_of(response), case, used, f"{response.status_code} response")
    if case.final == "location":
        final = poll_location(client, response)
        assert final.status_code in statuses, f"final document: {final.status_code} {final.text[:500]}"
        problems += check(example, final.status_code, body_of(final), case, used, "final document")
    elif case.final == "resource":
        if "Azure-AsyncOperation" in response.headers:
            status = poll_async_operation(client, response)
            assert status["status"] == "Succeeded", status
        final = client.get(case.path, params={"api-version": params["api-version"]})
        assert final.status_code == 200, final.text[:500]
        problems += check(example, 200, final.json(), case, used, "resource after the operation")
    assert not problems, "\n".join(problems)
    stale = set(case.allow) - used
    assert not stale, f"allowances no longer needed (remove them): {sorted(stale)}"


# ---- the tables are complete and honest ------------------------------------------------------------


def test_every_example_is_either_served_or_listed_as_not_served():
    files = {p.relative_to(examples_dir()).as_posix() for p in examples_dir().rglob("*.json")}
    tables = {"SERVED": set(SERVED), "NOT_SERVED": set(NOT_SERVED), "NOT_SERVED_YET": set(NOT_SERVED_YET)}
    for (a, sa), (b, sb) in itertools.combinations(tables.items(), 2):
        assert not sa & sb, f"listed in both {a} and {b}: {sorted(sa & sb)}"
    listed = set().union(*tables.values())
    missing = files - listed
    assert not missing, f"examples in none of SERVED, NOT_SERVED, NOT_SERVED_YET (add each to one): {sorted(missing)}"
    gone = listed - files
    assert not gone, f"tables name examples that do not exist: {sorted(gone)}"
    refused = set(NOT_SERVED) | set(NOT_SERVED_YET)
    assert set(NOT_SERVED_REQUESTS) == refused, "every example not served needs its request in NOT_SERVED_REQUESTS"
    assert all(reason.strip() for reason in NOT_SERVED.values())
    for rel, plan in NOT_SERVED_YET.items():
        assert re.match(r"issue \d+ \(.+\)", plan), f"{rel}: name the issue that will serve it and what it adds"
    for rel, case in SERVED.items():
        assert all(reason.strip() for reason in case.allow.values()), rel
        if case.adapt is not None:
            assert case.note, f"{rel}: an adapted request body needs a note saying how and why"


@pytest.mark.parametrize("rel", sorted(NOT_SERVED_REQUESTS))
def test_not_served_example_is_refused(rel: str, client: httpx.Client):
    example = load_example(rel)
    method, path, body_param = NOT_SERVED_REQUESTS[rel]
    body = json.loads(json.dumps(example["parameters"][body_param])) if body_param else None
    response = client.request(method, path, params={"api-version": example["parameters"]["api-version"]}, json=body)
    assert response.status_code >= 400, (
        f"{method} {path} answered {response.status_code}: if the simulator serves it now, move it to SERVED")
    assert "error" in response.json()


def test_the_conformance_fleet_is_a_valid_fleet_file():
    from wsam_tui.sim.fleetfile import validate_fleet

    validate_fleet(conformance_fleet(), source="tests/conformance_fleet.py")


def test_facet_request_is_refused_by_name(client: httpx.Client):
    example = load_example("Microsoft.ResourceGraph/2022-10-01/ResourcesFacetQuery.json")
    response = client.post(GRAPH, json=_graph_query(example), params={"api-version": example["parameters"]["api-version"]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "facets" in json.dumps(error).lower()
    assert any(d.get("code") == "FacetsNotSupported" for d in error.get("details", []))


def test_policy_states_name_the_assignment(client: httpx.Client):
    """The query results carry the fleet's policy states through (a check on the data, not only its shape)."""
    response = client.post(f"{VM_ID}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults",
                           params={"api-version": "2019-10-01"})
    rows = response.json()["value"]
    assert {r["policyAssignmentId"] for r in rows} == {ASSIGNMENT_ID}
    assert {r["complianceState"] for r in rows} == {"NonCompliant", "Compliant"}
