"""The fleet behind tests/test_conformance.py: one well-described Azure VM and one Arc machine, written
the way ARM returns their documents (the shapes of ../shared/arm-examples), plus the details-pane
documents those examples cover and a few extra machines for paging and Resource Graph.

Everything here is fleet data (docs/fleet-format.md): it is what the simulator is given, not what the
tests expect. The tests compare what the simulator *serves* from it with the official examples.
"""

from __future__ import annotations

import copy
import uuid

from tests.fleetbuilder import SUB_A, SUB_B, TENANT, arc, arc_id, software_patch, vm, vm_id

SUB_C = "00000000-0000-4000-8000-00000000000c"
TENANT_2 = "10000000-0000-4000-8000-000000000002"
TENANT_3 = "10000000-0000-4000-8000-000000000003"

VM = "web-01"  # the well-described Azure VM
VM_RG = "rg-web"
ARC = "fs-01"  # the well-described Arc machine
ARC_RG = "rg-arc"
VM_ID = vm_id(VM)
ARC_ID = arc_id(ARC)
VAULT_ID = f"/subscriptions/{SUB_A}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/vault-weu"
DCR_ID = f"/subscriptions/{SUB_A}/resourceGroups/rg-monitor/providers/Microsoft.Insights/dataCollectionRules/dcr-windows-events"
MAINT_ID = f"/subscriptions/{SUB_A}/resourceGroups/rg-patching/providers/Microsoft.Maintenance/maintenanceConfigurations/patch-sunday"
ASSIGNMENT_ID = f"/subscriptions/{SUB_A}/providers/Microsoft.Authorization/policyAssignments/baseline-windows"
RUN_COMMAND = "myRunCommand"
WHEN = "2026-11-20T08:00:00.0000000Z"
SYSTEM_DATA = {"createdBy": "admin@contoso.com", "createdByType": "User", "createdAt": "2026-10-01T09:00:00.0000000Z",
               "lastModifiedBy": "admin@contoso.com", "lastModifiedByType": "User", "lastModifiedAt": "2026-10-02T09:00:00.0000000Z"}


def _status(code: str, display: str, **extra) -> dict:
    return {"code": code, "level": "Info", "displayStatus": display, **extra}


def described_vm(name: str = VM, rg_name: str = VM_RG, tags: dict | None = None) -> dict:
    """An Azure VM with everything its GET and instance view carry (as VirtualMachine_Get.json shows them)."""
    doc = vm(name, rg=rg_name, tags=tags or {"env": "prod", "owner": "web-team"})
    doc["etag"] = '"7"'
    rg = f"/subscriptions/{SUB_A}/resourceGroups/{rg_name}"
    p = doc["properties"]
    p["vmId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, doc["id"]))
    p["availabilitySet"] = {"id": f"{rg}/providers/Microsoft.Compute/availabilitySets/web-avset"}
    p["proximityPlacementGroup"] = {"id": f"{rg}/providers/Microsoft.Compute/proximityPlacementGroups/web-ppg"}
    p["hardwareProfile"] = {"vmSize": "Standard_D4s_v5"}
    p["storageProfile"]["osDisk"].update({
        "caching": "ReadWrite", "diskSizeGB": 127, "deleteOption": "Delete",
        "managedDisk": {"storageAccountType": "Premium_LRS", "id": f"{rg}/providers/Microsoft.Compute/disks/{name}-os"}})
    p["storageProfile"]["dataDisks"] = [{
        "lun": 0, "name": f"{name}-data0", "createOption": "Empty", "caching": "ReadOnly", "diskSizeGB": 256,
        "managedDisk": {"storageAccountType": "Premium_LRS", "id": f"{rg}/providers/Microsoft.Compute/disks/{name}-data0"}}]
    p["applicationProfile"] = {"galleryApplications": [{
        "tags": "iis", "order": 1, "configurationReference": "https://contosoapps.blob.core.windows.net/config/iis.config",
        "packageReferenceId": f"/subscriptions/{SUB_A}/resourceGroups/rg-gallery/providers/Microsoft.Compute/galleries/apps/applications/iis-baseline/versions/1.0.0"}]}
    p["osProfile"]["secrets"] = []
    p["osProfile"]["allowExtensionOperations"] = True
    p["networkProfile"] = {"networkInterfaces": [
        {"id": f"{rg}/providers/Microsoft.Network/networkInterfaces/{name}-nic", "properties": {"primary": True, "deleteOption": "Detach"}}]}
    p["diagnosticsProfile"] = {"bootDiagnostics": {"enabled": True, "storageUri": "https://contosodiag.blob.core.windows.net/"}}
    p["extensionsTimeBudget"] = "PT1H30M"
    p["timeCreated"] = "2026-03-02T09:14:51.1234567+00:00"
    p["instanceView"] = {
        "platformUpdateDomain": 0,
        "platformFaultDomain": 1,
        "computerName": name,
        "osName": "Windows Server 2022 Datacenter Azure Edition",
        "osVersion": "10.0.20348.2340",
        "vmAgent": {
            "vmAgentVersion": "2.7.41491.1102",
            "statuses": [_status("ProvisioningState/succeeded", "Ready",
                                 message="GuestAgent is running and processing the extensions.", time=WHEN)],
            "extensionHandlers": [{"type": "Microsoft.Azure.Security.IaaSAntimalware", "typeHandlerVersion": "1.5.5.9",
                                   "status": _status("ProvisioningState/succeeded", "Ready")}],
        },
        "disks": [{"name": f"{name}-os", "statuses": [_status("ProvisioningState/succeeded", "Provisioning succeeded", time=WHEN)]}],
        "bootDiagnostics": {
            "consoleScreenshotBlobUri": f"https://contosodiag.blob.core.windows.net/bootdiagnostics-{name}/{name}.screenshot.bmp",
            "serialConsoleLogBlobUri": f"https://contosodiag.blob.core.windows.net/bootdiagnostics-{name}/{name}.serialconsole.log",
        },
        "hyperVGeneration": "V2",
        "patchStatus": {
            "availablePatchSummary": {
                "status": "Succeeded", "assessmentActivityId": "0c6a0a57-5a0e-4c87-9d71-3e0b8a6f5f01", "rebootPending": False,
                "criticalAndSecurityPatchCount": 2, "otherPatchCount": 1, "startTime": WHEN, "lastModifiedTime": WHEN, "error": None},
            "lastPatchInstallationSummary": {
                "status": "Succeeded", "installationActivityId": "6b0f7bb2-8a8e-4f54-a3f1-1c8a2a0d9a11",
                "maintenanceWindowExceeded": False, "notSelectedPatchCount": 0, "excludedPatchCount": 0, "pendingPatchCount": 0,
                "installedPatchCount": 4, "failedPatchCount": 0, "startTime": WHEN, "lastModifiedTime": WHEN, "error": None},
            "configurationStatuses": [
                _status("PatchModeConfigurationState/Ready", "Status_PatchModeConfigurationState_Ready", time=WHEN),
                _status("AssessmentModeConfigurationState/Ready", "Status_AssessmentModeConfigurationState_Ready", time=WHEN)],
        },
        "isVMInStandbyPool": False,
        "statuses": [_status("ProvisioningState/succeeded", "Provisioning succeeded", time=WHEN),
                     _status("PowerState/running", "VM running")],
    }
    return doc


def vm_extension(machine: dict, name: str, publisher: str, etype: str, version: str) -> dict:
    status = _status("ProvisioningState/succeeded", "Provisioning succeeded", message="Enable succeeded", time=WHEN)
    return {
        "id": f"{machine['id']}/extensions/{name}", "name": name, "type": "Microsoft.Compute/virtualMachines/extensions",
        "location": machine["location"], "tags": {"managedBy": "wsam"},
        "properties": {
            "autoUpgradeMinorVersion": True, "provisioningState": "Succeeded", "publisher": publisher, "type": etype,
            "typeHandlerVersion": version, "suppressFailures": False, "settings": {}, "forceUpdateTag": "",
            "enableAutomaticUpgrade": False,
            "instanceView": {"name": name, "type": f"{publisher}.{etype}", "typeHandlerVersion": version,
                             "substatuses": [_status("ComponentStatus/StdOut/succeeded", "Provisioning succeeded", message="", time=WHEN)],
                             "statuses": [status]},
        },
    }


def described_arc(name: str = ARC, rg_name: str = ARC_RG) -> dict:
    """An Arc machine with everything its GET carries (as Machines_Get.json shows it)."""
    doc = arc(name, rg=rg_name)
    doc["identity"] = {"type": "SystemAssigned", "principalId": str(uuid.uuid5(uuid.NAMESPACE_OID, doc["id"])), "tenantId": TENANT}
    doc["kind"] = None
    doc["tags"] = {"site": "paris"}
    p = doc["properties"]
    p.update({
        "errorDetails": [], "displayName": name, "vmUuid": "4c4c4544-0038-3010-8052-b4c04f4e3732",
        "osEdition": "Datacenter", "adFqdn": f"{name}.corp.contoso.com", "dnsFqdn": f"{name}.corp.contoso.com",
        "vmId": str(uuid.uuid5(uuid.NAMESPACE_URL, doc["id"])),
        "locationData": {"name": "Paris", "city": "Paris", "district": None, "countryOrRegion": "France"},
        "clientPublicKey": "MIIBCgKCAQEAx9v2example",
        "parentClusterResourceId": None,
        "mssqlDiscovered": "false",
        "privateLinkScopeResourceId": f"/subscriptions/{SUB_A}/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/privateLinkScopes/arc-pls",
        "serviceStatuses": {"extensionService": {"status": "Running", "startupType": "Automatic"},
                            "guestConfigurationService": {"status": "Running", "startupType": "Automatic"}},
        "firmwareProfile": {"serialNumber": "VMware-56 4d 2b 1c", "type": "UEFI"},
        "hardwareProfile": {"totalPhysicalMemoryInBytes": 17179869184, "numberOfCpuSockets": 1,
                            "processors": [{"name": "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "numberOfCores": 4}]},
        "storageProfile": {"disks": [{"path": "C:\\", "diskType": "Fixed", "generatedId": "94318602-6e46-4eaa-997e-0e528afe3d17",
                                      "id": "0", "name": "System", "maxSizeInBytes": 136365211648, "usedSpaceInBytes": 48318382080}]},
        "networkProfile": {"networkInterfaces": [{"name": "Ethernet0", "macAddress": "00:50:56:9a:1b:2c", "id": "12",
                                                  "ipAddresses": [{"address": "10.20.1.15", "ipAddressVersion": "IPv4",
                                                                   "subnet": {"addressPrefix": "10.20.1.0/24"}}]}]},
    })
    p["detectedProperties"] = {"cloudprovider": "N/A", "manufacturer": "VMware, Inc.", "model": "VMware7,1"}
    p["agentConfiguration"] = {"proxyUrl": "http://proxy.corp.contoso.com:8080", "incomingConnectionsPorts": ["6516"],
                               "extensionsAllowList": [], "extensionsBlockList": [], "proxyBypass": ["Arc"],
                               "extensionsEnabled": "true", "guestConfigurationEnabled": "true", "configMode": "full"}
    p["osProfile"] = {
        "computerName": name,
        "windowsConfiguration": {"patchSettings": {"assessmentMode": "AutomaticByPlatform", "patchMode": "AutomaticByPlatform",
                                                   "enableHotpatching": False,
                                                   "status": {"hotpatchEnablementStatus": "Disabled", "error": None}}},
        "linuxConfiguration": {"patchSettings": {"assessmentMode": None, "patchMode": None}},
    }
    p["licenseProfile"] = {
        "licenseStatus": "Licensed", "licenseChannel": "Volume:GVLK",
        "softwareAssurance": {"softwareAssuranceCustomer": True},
        "esuProfile": {"licenseAssignmentState": "NotAssigned", "esuEligibility": "Ineligible", "serverType": "Datacenter",
                       "esuKeyState": "Inactive", "esuKeys": [{"sku": "Windows Server 2019 Datacenter", "licenseStatus": 0}]},
        "productProfile": {"subscriptionStatus": "Disabled", "productType": "WindowsServer",
                           "enrollmentDate": "2026-01-05T10:00:00.000Z", "billingStartDate": "2026-01-05T10:00:00.000Z",
                           "disenrollmentDate": "2026-02-05T10:00:00.000Z", "billingEndDate": "2026-02-05T10:00:00.000Z",
                           "productFeatures": [{"name": "Hotpatch", "subscriptionStatus": "Disabled",
                                                "enrollmentDate": "2026-01-05T10:00:00.000Z",
                                                "billingStartDate": "2026-01-05T10:00:00.000Z",
                                                "disenrollmentDate": "2026-02-05T10:00:00.000Z",
                                                "billingEndDate": "2026-02-05T10:00:00.000Z"}]},
    }
    return doc


def arc_extension(machine: dict, name: str, publisher: str, etype: str, version: str, settings: dict | None = None) -> dict:
    return {
        "id": f"{machine['id']}/extensions/{name}", "name": name, "type": "Microsoft.HybridCompute/machines/extensions",
        "location": machine["location"],
        "properties": {
            "publisher": publisher, "type": etype, "typeHandlerVersion": version, "autoUpgradeMinorVersion": False,
            "enableAutomaticUpgrade": False, "settings": settings or {}, "provisioningState": "Succeeded",
            "instanceView": {"name": name, "type": etype, "typeHandlerVersion": version,
                             "status": {"code": "success", "level": "Information", "displayStatus": "Provisioning succeeded",
                                        "message": "Finished executing command", "time": WHEN}},
        },
    }


def run_command(machine: dict) -> dict:
    arc_kind = machine["type"].startswith("Microsoft.HybridCompute")
    props = {
        "source": {"script": "Write-Host Hello World!"},
        "parameters": [{"name": "param1", "value": "value1"}],
        "asyncExecution": False, "treatFailureAsDeploymentFailure": False, "runAsUser": "svc-wsam",
        "timeoutInSeconds": 3600, "provisioningState": "Succeeded",
        "outputBlobUri": "https://contosoops.blob.core.windows.net/runcommand/output.txt",
        "errorBlobUri": "https://contosoops.blob.core.windows.net/runcommand/error.txt",
        "instanceView": {"executionState": "Succeeded", "executionMessage": "", "exitCode": 0, "output": "Hello World!",
                         "error": "", "startTime": WHEN, "endTime": WHEN, "statuses": []},
    }
    if arc_kind:
        props["protectedParameters"] = []
    return {"id": f"{machine['id']}/runCommands/{RUN_COMMAND}", "name": RUN_COMMAND, "type": machine["type"] + "/runCommands",
            "location": machine["location"], "tags": {"purpose": "health-check"}, "properties": props}


def gc_assignment(machine: dict, name: str) -> dict:
    rid = f"{machine['id']}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/{name}"
    return {
        "id": rid, "name": name, "type": "Microsoft.GuestConfiguration/guestConfigurationAssignments", "location": machine["location"],
        "properties": {
            "complianceStatus": "NonCompliant" if name.startswith("Azure") else "Compliant",
            "assignmentHash": "E0D8941DD713F284284561648C00C18FA76C8602943C7CD38AFD73B56AE4C35F",
            "latestReportId": f"{rid}/reports/7367cbb8-ae99-47d0-a33b-a283564d2cb1",
            "lastComplianceStatusChecked": WHEN, "context": "Azure policy", "assignmentType": "Audit",
            "guestConfiguration": {"kind": None, "name": name, "version": "1.0.0.3",
                                   "contentUri": f"https://oaasguestconfigweus1.blob.core.windows.net/builtinconfig/{name}/{name}_1.0.0.3.zip",
                                   "contentHash": "A1B2C3D4", "configurationParameter": [], "configurationSetting": None},
            "provisioningState": "Succeeded",
        },
    }


def dcr_association(machine: dict, name: str) -> dict:
    return {
        "id": f"{machine['id']}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{name}", "name": name,
        "type": "Microsoft.Insights/dataCollectionRuleAssociations", "etag": "070057da-0000-0000-0000-5ba70d6c0000",
        "systemData": SYSTEM_DATA,
        "properties": {"dataCollectionRuleId": DCR_ID, "description": "Windows security events", "provisioningState": "Succeeded"},
    }


def automanage(machine: dict) -> dict:
    return {
        "id": f"{machine['id']}/providers/Microsoft.Automanage/configurationProfileAssignments/default", "name": "default",
        "type": "Microsoft.Automanage/configurationProfileAssignments", "systemData": SYSTEM_DATA,
        "properties": {"configurationProfile": "/providers/Microsoft.Automanage/bestPractices/AzureBestPracticesProduction",
                       "targetId": machine["id"], "status": "Compliant"},
    }


def maintenance_assignment(machine: dict) -> dict:
    return {
        "id": f"{machine['id']}/providers/Microsoft.Maintenance/configurationAssignments/patch-sunday", "name": "patch-sunday",
        "type": "Microsoft.Maintenance/configurationAssignments", "location": machine["location"],
        "properties": {"maintenanceConfigurationId": MAINT_ID, "resourceId": machine["id"]},
    }


def maintenance_configuration() -> dict:
    return {
        "id": MAINT_ID, "name": "patch-sunday", "type": "Microsoft.Maintenance/maintenanceConfigurations", "location": "westeurope",
        "properties": {
            "namespace": "Microsoft.Maintenance", "maintenanceScope": "InGuestPatch", "visibility": "Custom",
            "extensionProperties": {"InGuestPatchMode": "User"},
            "maintenanceWindow": {"startDateTime": "2026-01-04 02:00", "expirationDateTime": "9999-12-31 00:00", "duration": "03:00",
                                  "timeZone": "W. Europe Standard Time", "recurEvery": "1Week Sunday"},
            "installPatches": {"windowsParameters": {"classificationsToInclude": ["Critical", "Security"], "kbNumbersToInclude": ["KB5044281"],
                                                     "kbNumbersToExclude": ["KB890830"], "excludeKbsRequiringReboot": False},
                               "rebootSetting": "IfRequired"},
        },
    }


def policy_state(machine: dict, definition: str, state: str) -> dict:
    name = f"{definition}-{machine['name']}"
    return {
        "id": f"{machine['id']}/providers/Microsoft.PolicyInsights/policyStates/{name}", "name": name,
        "type": "Microsoft.PolicyInsights/policyStates",
        "properties": {
            "timestamp": WHEN, "resourceId": machine["id"], "policyAssignmentId": ASSIGNMENT_ID,
            "policyDefinitionId": f"/providers/Microsoft.Authorization/policyDefinitions/{definition}",
            "effectiveParameters": "", "isCompliant": state == "Compliant",
            "subscriptionId": SUB_A, "resourceType": machine["type"], "resourceLocation": machine["location"],
            "resourceGroup": machine["id"].split("/")[4], "resourceTags": "tbd",
            "policyAssignmentName": "baseline-windows", "policyAssignmentOwner": "tbd",
            "policyAssignmentParameters": "{}", "policyAssignmentScope": f"/subscriptions/{SUB_A}",
            "policyDefinitionName": definition, "policyDefinitionAction": "auditifnotexists",
            "policyDefinitionCategory": "tbd", "policySetDefinitionId": "", "policySetDefinitionName": "",
            "policySetDefinitionOwner": "", "policySetDefinitionCategory": "", "policySetDefinitionParameters": "",
            "managementGroupIds": "contoso-root", "policyDefinitionReferenceId": "",
            "complianceState": state, "policyDefinitionGroupNames": ["Windows baseline"],
            "policyDefinitionVersion": "1.0.0", "policySetDefinitionVersion": "", "policyAssignmentVersion": "1.0.0",
        },
    }


def assessment(machine: dict, guid: str, name: str, code: str) -> dict:
    status = {"code": code, "statusChangeDate": WHEN, "firstEvaluationDate": "2026-01-10T09:07:18.6759138Z"}
    if code != "Healthy":
        status.update({"cause": "NoRecentScan" if code == "Unhealthy" else "OffByPolicy",
                       "description": f"{name}: not satisfied on this machine."})
    return {
        "id": f"{machine['id']}/providers/Microsoft.Security/assessments/{guid}", "name": guid, "type": "Microsoft.Security/assessments",
        "properties": {"resourceDetails": {"source": "Azure", "id": machine["id"]}, "displayName": name, "status": status,
                       "additionalData": {"linkedWorkspaceId": f"/subscriptions/{SUB_A}/resourceGroups/rg-monitor/providers/Microsoft.OperationalInsights/workspaces/law-weu"}},
    }


def subscription_pricing() -> dict:
    return {
        "id": f"/subscriptions/{SUB_A}/providers/Microsoft.Security/pricings/VirtualMachines", "name": "VirtualMachines",
        "type": "Microsoft.Security/pricings",
        "properties": {"pricingTier": "Standard", "subPlan": "P2", "freeTrialRemainingTime": "PT0S",
                       "enablementTime": "2026-03-01T12:42:42.1921106Z", "enforce": "False", "resourcesCoverageStatus": "FullyCovered",
                       "extensions": [{"name": "AgentlessVmScanning", "isEnabled": "True", "additionalExtensionProperties": {"ExclusionTags": "[]"}},
                                      {"name": "MdeDesignatedSubscription", "isEnabled": "False"}]},
    }


def protected_item(machine: dict) -> dict:
    rg = machine["id"].split("/")[4]
    container = f"IaasVMContainer;iaasvmcontainerv2;{rg};{machine['name']}"
    item = f"VM;iaasvmcontainerv2;{rg};{machine['name']}"
    return {
        "id": f"{VAULT_ID}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}", "name": item,
        "type": "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems",
        "properties": {
            "friendlyName": machine["name"], "virtualMachineId": machine["id"], "protectionStatus": "Healthy",
            "protectionState": "Protected", "healthStatus": "Passed", "lastBackupStatus": "Completed",
            "lastBackupTime": "2026-11-20T01:25:32.048723Z", "protectedItemDataId": "636482643132986882",
            "protectedItemType": "Microsoft.Compute/virtualMachines", "backupManagementType": "AzureIaasVM", "workloadType": "VM",
            "containerName": container.split(";", 1)[1], "sourceResourceId": machine["id"],
            "policyId": f"{VAULT_ID}/backupPolicies/DefaultPolicy", "lastRecoveryPoint": "2026-11-20T01:25:32.048723Z",
            "dataSourceInfo": {"resourceID": machine["id"]},
        },
    }


def replication_item(machine: dict) -> dict:
    base = f"{VAULT_ID}/replicationFabrics/asr-fabric-weu/replicationProtectionContainers/asr-container-weu"
    return {
        "id": f"{base}/replicationProtectedItems/{machine['name']}-asr", "name": f"{machine['name']}-asr",
        "type": "Microsoft.RecoveryServices/vaults/replicationFabrics/replicationProtectionContainers/replicationProtectedItems",
        "properties": {
            "friendlyName": machine["name"], "protectedItemType": "A2AVirtualMachine",
            "protectableItemId": "", "recoveryServicesProviderId": "",
            "primaryFabricFriendlyName": "West Europe", "recoveryFabricFriendlyName": "North Europe",
            "recoveryFabricId": f"{VAULT_ID}/replicationFabrics/asr-fabric-neu",
            "primaryProtectionContainerFriendlyName": "asr-container-weu", "recoveryProtectionContainerFriendlyName": "asr-container-neu",
            "protectionState": "Protected", "protectionStateDescription": "Protected", "activeLocation": "Primary",
            "testFailoverState": "None", "testFailoverStateDescription": "None",
            "allowedOperations": ["PlannedFailover", "UnplannedFailover", "DisableProtection", "TestFailover"],
            "replicationHealth": "Normal", "policyId": f"{VAULT_ID}/replicationPolicies/a2a-24h",
            "policyFriendlyName": "a2a-24h",
            "currentScenario": {"scenarioName": "None", "jobId": f"{VAULT_ID}/replicationJobs/None", "startTime": "1753-01-01T01:01:01Z"},
            "providerSpecificDetails": {"instanceType": "A2A", "fabricObjectId": machine["id"]},
            "recoveryContainerId": f"{VAULT_ID}/replicationFabrics/asr-fabric-neu/replicationProtectionContainers/asr-container-neu",
        },
    }


def _subscription(sub: str, name: str, tenant: str) -> dict:
    return {"id": f"/subscriptions/{sub}", "subscriptionId": sub, "tenantId": tenant, "displayName": name, "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "EnterpriseAgreement_2014-09-01",
                                     "spendingLimit": "Off"},
            "authorizationSource": "RoleBased", "managedByTenants": [{"tenantId": TENANT_3}], "tags": {"costCenter": "it-ops"}}


def _tenant(tid: str, name: str, domain: str, category: str) -> dict:
    return {"id": f"/tenants/{tid}", "tenantId": tid, "countryCode": "FR", "displayName": name, "domains": [domain],
            "tenantCategory": category, "defaultDomain": domain, "tenantType": "AAD"}


def conformance_fleet() -> dict:
    web = described_vm()
    others = [described_vm(f"web-{i:02d}") for i in range(2, 4)]
    tests = [described_vm(f"test-{i:02d}", "rg-test", {"env": "test"}) for i in range(1, 5)]
    fs = described_arc()
    arcs = [described_arc(f"fs-{i:02d}") for i in range(2, 4)]
    test_arcs = [described_arc(f"test-arc-{i:02d}", "rg-test") for i in range(1, 4)]
    resources: list[dict] = [web, *others, *tests, fs, *arcs, *test_arcs]
    resources += [
        vm_extension(web, "IaaSAntimalware", "Microsoft.Azure.Security", "IaaSAntimalware", "1.5"),
        arc_extension(fs, "CustomScriptExtension", "Microsoft.Compute", "CustomScriptExtension", "1.10",
                      {"commandToExecute": "powershell.exe -c \"Get-Service W32Time\""}),
        arc_extension(fs, "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent", "1.22"),
        run_command(web), run_command(fs),
        software_patch(web, "KB5044281", "Security"), software_patch(web, "KB5044033", "Critical"),
        software_patch(web, "KB890830", "Definition", "NeverReboots"),
        software_patch(fs, "KB5044277", "Security"), software_patch(fs, "KB5043050", "UpdateRollUp"),
        gc_assignment(web, "AzureWindowsBaseline"), gc_assignment(web, "WindowsLogonAudit"),
        gc_assignment(fs, "AzureWindowsBaseline"), gc_assignment(fs, "WindowsLogonAudit"),
        {"id": DCR_ID, "name": "dcr-windows-events", "type": "Microsoft.Insights/dataCollectionRules", "location": "westeurope",
         "properties": {"dataSources": {"windowsEventLogs": [{"name": "security", "streams": ["Microsoft-SecurityEvent"],
                                                              "xPathQueries": ["Security!*"]}]},
                        "destinations": {"logAnalytics": [{"name": "law", "workspaceResourceId":
                                                           f"/subscriptions/{SUB_A}/resourceGroups/rg-monitor/providers/Microsoft.OperationalInsights/workspaces/law-weu"}]},
                        "dataFlows": [{"streams": ["Microsoft-SecurityEvent"], "destinations": ["law"]}]}},
        dcr_association(web, "dcra-security"), dcr_association(web, "dcra-changetracking"),
        automanage(web), automanage(fs),
        maintenance_configuration(), maintenance_assignment(web),
        policy_state(web, "ensure-defender-for-servers", "NonCompliant"),
        policy_state(web, "windows-time-zone", "Compliant"),
        assessment(web, "21300918-b2e3-0346-785f-c77ff57d243b", "Install endpoint protection solution on virtual machines", "Healthy"),
        assessment(web, "4ab6e3c5-74dd-8b35-9ab9-f61b30875b27", "System updates should be installed on your machines", "Unhealthy"),
        subscription_pricing(),
        {"id": VAULT_ID, "name": "vault-weu", "type": "Microsoft.RecoveryServices/vaults", "location": "westeurope",
         "etag": 'W/"datetime\'2026-10-01T09%3A00%3A00.000Z\'"', "tags": {"owner": "backup-team"},
         "properties": {"provisioningState": "Succeeded"}, "sku": {"name": "RS0", "tier": "Standard"}},
        protected_item(web), replication_item(web),
    ]
    return copy.deepcopy({
        "format": "wsam-fleet/1",
        "tenants": [_tenant(TENANT, "Contoso", "contoso.com", "Home"),
                    _tenant(TENANT_2, "Contoso Labs", "labs.contoso.com", "ProjectedBy"),
                    _tenant(TENANT_3, "Fabrikam MSP", "fabrikam.com", "ManagedBy")],
        "subscriptions": [_subscription(SUB_A, "Production", TENANT), _subscription(SUB_B, "Apps", TENANT),
                          _subscription(SUB_C, "Labs", TENANT_2)],
        "resources": resources,
        # web-01 has a public IP (the examples' NIC shows one); which of the others have one is the simulator's choice
        "simulation": {"machines": {web["id"]: {"publicIpAddress": "203.0.113.10"}}},
    })
