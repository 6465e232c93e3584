"""Small, explicit fleets for scenario tests: every machine's state is written here, not drawn at random."""

from __future__ import annotations

SUB_A = "00000000-0000-4000-8000-00000000000a"
SUB_B = "00000000-0000-4000-8000-00000000000b"
SUB_DENIED = "00000000-0000-4000-8000-00000000000d"
TENANT = "10000000-0000-4000-8000-000000000001"


def vm_id(name: str, sub: str = SUB_A, rg: str = "rg-web") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def arc_id(name: str, sub: str = SUB_A, rg: str = "rg-arc") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HybridCompute/machines/{name}"


def vm(name: str, *, sub: str = SUB_A, rg: str = "rg-web", power: str = "running", tags: dict | None = None) -> dict:
    return {
        "id": vm_id(name, sub, rg), "name": name, "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
        "tags": {"env": "prod"} if tags is None else tags,
        "properties": {
            "vmId": f"vmid-{name}", "provisioningState": "Succeeded",
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {"imageReference": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                                  "sku": "2022-datacenter-azure-edition", "version": "latest"},
                               "osDisk": {"osType": "Windows", "name": f"{name}-os", "createOption": "FromImage"}},
            "osProfile": {"computerName": name, "adminUsername": "azureadmin",
                          "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True,
                                                   "patchSettings": {"patchMode": "AutomaticByPlatform",
                                                                     "assessmentMode": "AutomaticByPlatform"}}},
            "instanceView": {
                "computerName": name, "osName": "Windows Server 2022 Datacenter Azure Edition", "osVersion": "10.0.20348.2340",
                "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                             {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"}],
                "vmAgent": {"vmAgentVersion": "2.7.41491.1102",
                            "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"}]},
            },
        },
    }


def arc(name: str, *, sub: str = SUB_A, rg: str = "rg-arc", status: str = "Connected", extensions_enabled: bool = True) -> dict:
    return {
        "id": arc_id(name, sub, rg), "name": name, "type": "Microsoft.HybridCompute/machines", "location": "westeurope",
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded", "status": status, "lastStatusChange": "2026-11-20T08:00:00.0000000Z",
            "agentVersion": "1.47.02878.1850", "osName": "windows", "osVersion": "10.0.17763.5576", "osType": "windows",
            "osSku": "Windows Server 2019 Datacenter", "machineFqdn": f"{name}.corp.contoso.com", "domainName": "corp.contoso.com",
            "osProfile": {"computerName": name, "windowsConfiguration": {"patchSettings": {"assessmentMode": "ImageDefault", "patchMode": "AutomaticByOS"}}},
            "agentConfiguration": {"extensionsEnabled": "true" if extensions_enabled else "false", "guestConfigurationEnabled": "true"},
            "detectedProperties": {"manufacturer": "VMware, Inc.", "model": "VMware7,1"},
        },
    }


def extension(machine: dict, name: str, publisher: str, etype: str, state: str = "Succeeded", version: str = "1.0") -> dict:
    arc_kind = machine["type"].startswith("Microsoft.HybridCompute")
    view = ({"name": name, "type": etype, "typeHandlerVersion": version,
             "status": {"code": "success", "level": "Information", "displayStatus": "Provisioning succeeded", "message": "ok"}}
            if arc_kind else
            {"name": name, "type": f"{publisher}.{etype}", "typeHandlerVersion": version,
             "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}]})
    return {"id": f"{machine['id']}/extensions/{name}", "name": name, "type": machine["type"] + "/extensions",
            "location": machine["location"],
            "properties": {"publisher": publisher, "type": etype, "typeHandlerVersion": version,
                           "autoUpgradeMinorVersion": True, "provisioningState": state, "instanceView": view}}


def software_patch(machine: dict, kb: str, classification: str, reboot: str = "CanRequestReboot") -> dict:
    pid = f"{kb}-{classification}".lower()
    return {"id": f"{machine['id']}/patchAssessmentResults/latest/softwarePatches/{pid}", "name": pid,
            "type": machine["type"] + "/patchAssessmentResults/softwarePatches",
            "properties": {"patchId": pid, "patchName": f"Update {kb}", "kbId": kb.removeprefix("KB"), "version": "",
                           "classifications": [classification], "rebootBehavior": reboot,
                           "publishedDateTime": "2026-11-11T00:00:00.0000000Z"}}


def scenario_fleet() -> dict:
    """Two subscriptions plus a denied one; VMs in each power state; Arc machines in each agent state."""
    web = [vm(f"web-{i:02d}") for i in range(6)]
    stopped = vm("web-stopped", power="deallocated")
    arcs = [arc(f"fs-{i:02d}") for i in range(4)]
    off = arc("fs-disconnected", status="Disconnected")
    expired = arc("fs-expired", status="Expired")
    locked = arc("fs-noext", extensions_enabled=False)
    other = [vm(f"app-{i:02d}", sub=SUB_B, rg="rg-app") for i in range(3)]
    denied = [vm("secret-01", sub=SUB_DENIED, rg="rg-x")]
    resources = [*web, stopped, *arcs, off, expired, locked, *other, *denied]
    resources.append(extension(web[0], "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent", version="1.2"))
    resources.append(extension(arcs[0], "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent", version="1.2"))
    resources.append(extension(arcs[0], "MDE.Windows", "Microsoft.Azure.AzureDefenderForServers", "MDE.Windows", version="1.0"))
    resources += [software_patch(web[1], "KB5044281", "Security"), software_patch(web[1], "KB5044033", "Critical"),
                  software_patch(web[1], "KB890830", "Definition", "NeverReboots"),
                  software_patch(arcs[1], "KB5044277", "Security"), software_patch(arcs[1], "KB5043050", "UpdateRollUp")]
    subs = [
        {"id": f"/subscriptions/{s}", "subscriptionId": s, "tenantId": TENANT, "displayName": n, "state": "Enabled",
         "authorizationSource": "RoleBased", "managedByTenants": [], "tags": {},
         "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "EnterpriseAgreement_2014-09-01", "spendingLimit": "Off"}}
        for s, n in ((SUB_A, "Production"), (SUB_B, "Apps"), (SUB_DENIED, "Locked"))
    ]
    return {
        "format": "wsam-fleet/1",
        "tenants": [{"id": f"/tenants/{TENANT}", "tenantId": TENANT, "tenantCategory": "Home", "countryCode": "US",
                     "displayName": "Contoso", "domains": ["contoso.com"], "defaultDomain": "contoso.com", "tenantType": "AAD"}],
        "subscriptions": subs,
        "resources": resources,
        "simulation": {
            "machines": {web[2]["id"]: {"failExtensionTypes": ["MDE.Windows"]}},
            "access": {"deniedSubscriptions": [SUB_DENIED]},
        },
    }


def dcr(name: str, *, sub: str = SUB_A, rg: str = "rg-monitor") -> dict:
    """A data collection rule sending Windows performance counters to a workspace."""
    workspace = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/law-ops"
    return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Insights/dataCollectionRules/{name}",
            "name": name, "type": "Microsoft.Insights/dataCollectionRules", "location": "westeurope",
            "properties": {"description": "Windows performance counters",
                           "dataSources": {"performanceCounters": [{"name": "perf", "streams": ["Microsoft-Perf"],
                                                                    "samplingFrequencyInSeconds": 60,
                                                                    "counterSpecifiers": ["\\Processor(_Total)\\% Processor Time"]}]},
                           "destinations": {"logAnalytics": [{"name": "la", "workspaceResourceId": workspace}]},
                           "dataFlows": [{"streams": ["Microsoft-Perf"], "destinations": ["la"]}]}}
