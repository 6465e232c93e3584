"""The simulated Windows Server guest behind Run Command (wsam_tui/sim/guest.py).

Machine documents are built here, in the shapes of ../shared/arm-examples (a VM with
properties.instanceView, an Arc machine with its Machines_Get properties), so that these tests do not
depend on fixtures other modules write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from wsam_tui.sim.guest import (
    LINUX_COMMAND_IDS,
    WINDOWS_COMMAND_IDS,
    ScriptResult,
    cap_output,
    simulate_command_id,
    simulate_script,
)

NOW = datetime(2024, 3, 5, 14, 30, 12, tzinfo=UTC)
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-prod/providers"


def vm(name: str = "web-01", *, computer: str | None = None, sku: str = "2022-datacenter-azure-edition",
       os_name: str = "Windows Server 2022 Datacenter Azure Edition", os_version: str = "10.0.20348.2322",
       size: str = "Standard_D2s_v5", **props: object) -> dict:
    computer = computer or name
    doc = {
        "id": f"{SUB}/Microsoft.Compute/virtualMachines/{name}", "name": name,
        "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
        "properties": {
            "vmId": "0f47b100-583c-48e3-a4c0-aefc2c9bbcc1", "hardwareProfile": {"vmSize": size},
            "storageProfile": {"imageReference": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                                  "sku": sku, "version": "latest"},
                               "osDisk": {"osType": "Windows", "name": f"{name}-os", "diskSizeGB": 127}},
            "osProfile": {"computerName": computer, "adminUsername": "azureadmin",
                          "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True}},
            "provisioningState": "Succeeded", "timeCreated": "2024-01-10T15:02:11.3138469+00:00",
            "instanceView": {
                "computerName": computer, "osName": os_name, "osVersion": os_version, "hyperVGeneration": "V2",
                "vmAgent": {"vmAgentVersion": "2.7.41491.1102",
                            "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"}]},
                "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info"},
                             {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}],
            },
        },
    }
    doc["properties"].update(props)
    return doc


def arc(name: str = "fs01", *, os_version: str = "10.0.17763.5576", os_sku: str = "Windows Server 2019 Standard",
        domain: str | None = "corp.contoso.com", ip: str = "192.168.10.21", **props: object) -> dict:
    doc = {
        "id": f"{SUB}/Microsoft.HybridCompute/machines/{name}", "name": name,
        "type": "Microsoft.HybridCompute/machines", "location": "eastus", "kind": None,
        "properties": {
            "provisioningState": "Succeeded", "status": "Connected", "agentVersion": "1.38.02628.1130",
            "osName": "windows", "osType": "windows", "osVersion": os_version, "osSku": os_sku,
            "machineFqdn": f"{name}.{domain}" if domain else name, "domainName": domain,
            "osProfile": {"computerName": name.upper()},
            "detectedProperties": {"manufacturer": "VMware, Inc.", "model": "VMware7,1",
                                   "totalPhysicalMemoryInGigabytes": "16"},
            "networkProfile": {"networkInterfaces": [{"name": "Ethernet0", "macAddress": "00:50:56:aa:bb:cc", "id": "5",
                                                      "ipAddresses": [{"address": ip, "ipAddressVersion": "IPv4",
                                                                       "subnet": {"addressPrefix": "192.168.10.0/24"}}]}]},
            "storageProfile": {"disks": [{"path": "C:/", "diskType": "Fixed", "name": "Windows",
                                          "maxSizeInBytes": 274877906944, "usedSpaceInBytes": 107374182400}]},
            "serviceStatuses": {"extensionService": {"status": "Running", "startupType": "Automatic"},
                                "guestConfigurationService": {"status": "Running", "startupType": "Automatic"}},
        },
    }
    doc["properties"].update(props)
    return doc


def ext(machine: dict, publisher: str, type_: str, state: str = "Succeeded") -> dict:
    child = "Microsoft.Compute/virtualMachines/extensions" if "virtualMachines" in machine["id"] else \
        "Microsoft.HybridCompute/machines/extensions"
    return {"id": f"{machine['id']}/extensions/{type_}", "name": type_, "type": child, "location": machine["location"],
            "properties": {"publisher": publisher, "type": type_, "typeHandlerVersion": "1.0",
                           "autoUpgradeMinorVersion": True, "provisioningState": state}}


def ama(machine: dict, state: str = "Succeeded") -> dict:
    return ext(machine, "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent", state)


def mde(machine: dict, state: str = "Succeeded") -> dict:
    return ext(machine, "Microsoft.Azure.AzureDefenderForServers", "MDE.Windows", state)


def mma(machine: dict) -> dict:
    return ext(machine, "Microsoft.EnterpriseCloud.Monitoring", "MicrosoftMonitoringAgent")


def run(script: str, machine: dict | None = None, **kw: object) -> ScriptResult:
    kw.setdefault("now", NOW)
    r = simulate_script(script, machine if machine is not None else vm(), **kw)
    assert not [u for u in r.unrecognised if u.startswith(("<error", "<internal"))], r.unrecognised
    return r


def service_rows(stdout: str) -> dict[str, str]:
    """Name -> Status from Get-Service's table."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("Running", "Stopped", "StartPending", "StopPending", "Paused"):
            rows[parts[1]] = parts[0]
    return rows


# ------------------------------------------------------------------------------ names and identity


def test_hostname_is_the_instance_view_computer_name():
    r = run("hostname", vm("vm-resource-name", computer="web-01"))
    assert r == ScriptResult("web-01\n", "", 0, r.duration_s)


def test_computername_env_is_the_upper_case_netbios_name():
    assert run("$env:COMPUTERNAME", vm(computer="app-frontend-westeurope-01")).stdout == "APP-FRONTEND-WE\n"


def test_arc_machine_names_come_from_its_properties():
    r = run("hostname; $env:COMPUTERNAME; $env:USERDOMAIN", arc("fs01"))
    assert r.stdout.splitlines() == ["FS01", "FS01", "CORP"]


def test_whoami_is_local_system():
    assert run("whoami").stdout == "nt authority\\system\n"


def test_echo_of_environment_and_static_names():
    r = run("echo $env:COMPUTERNAME; [Environment]::MachineName; [System.Net.Dns]::GetHostName()", vm(computer="Web-01"))
    assert r.stdout.splitlines() == ["WEB-01", "WEB-01", "Web-01"]


# ---------------------------------------------------------------------------------------- services


def test_services_reflect_vm_agent_and_extensions():
    m = vm()
    rows = service_rows(run("Get-Service", m, extensions=[ama(m), mde(m)]).stdout)
    assert rows["AzureMonitorAgent"] == "Running"
    assert rows["Sense"] == "Running"
    assert rows["WindowsAzureGuestAgent"] == "Running" and rows["RdAgent"] == "Running"
    assert rows["W32Time"] == "Running" and rows["WinRM"] == "Running"
    assert "himds" not in rows and "HealthService" not in rows


def test_services_without_extensions():
    rows = service_rows(run("Get-Service", vm()).stdout)
    assert "AzureMonitorAgent" not in rows
    assert rows["Sense"] == "Stopped"  # built into 2019+, not onboarded


def test_failed_extension_leaves_its_service_stopped():
    m = vm()
    rows = service_rows(run("Get-Service AzureMonitorAgent", m, extensions=[ama(m, "Failed")]).stdout)
    assert rows == {"AzureMonitorAgent": "Stopped"}


def test_arc_services_and_legacy_mma():
    m = arc(serviceStatuses={"extensionService": {"status": "Running"}, "guestConfigurationService": {"status": "Stopped"}})
    rows = service_rows(run("Get-Service", m, extensions=[mma(m)]).stdout)
    assert rows["himds"] == "Running"
    assert rows["ExtensionService"] == "Running"
    assert rows["GCArcService"] == "Stopped"
    assert rows["HealthService"] == "Running"
    assert "WindowsAzureGuestAgent" not in rows


def test_service_facts_override_and_add():
    sim = {"guest": {"services": {"Spooler": "Stopped", "W32Time": None,
                                  "Contoso.Agent": {"status": "Running", "displayName": "Contoso Agent"}}}}
    out = run("Get-Service", vm(), sim=sim).stdout
    rows = service_rows(out)
    assert rows["Spooler"] == "Stopped" and rows["Contoso.Agent"] == "Running" and "W32Time" not in rows
    assert "Contoso Agent" in out


def test_get_service_table_looks_like_powershell():
    lines = run("Get-Service -Name W32Time").stdout.split("\n")
    assert lines[0] == ""
    assert lines[1].split() == ["Status", "Name", "DisplayName"]
    assert lines[2].split() == ["------", "----", "-----------"]
    assert lines[3].split(None, 2) == ["Running", "W32Time", "Windows Time"]
    assert lines[1].index("Name") == lines[3].index("W32Time") == 9  # Status column is 8 wide + 1


@pytest.mark.parametrize("script", ["Get-Service W32Time | Select -ExpandProperty Status",
                                    "Get-Service -Name W32Time | Select-Object -ExpandProperty Status",
                                    "(Get-Service W32Time).Status",
                                    "GET-SERVICE w32time|select-object   -expandproperty STATUS",
                                    "gsv W32Time | % { $_.Status }"])
def test_expand_property_and_friends(script):
    assert run(script).stdout == "Running\n"


def test_unknown_service_is_an_error_on_stderr_with_exit_1():
    r = run("Get-Service NoSuchSvc")
    assert r.stdout == ""
    assert r.exit_code == 1
    assert r.stderr.startswith("Get-Service : Cannot find any service with service name 'NoSuchSvc'.\n")
    assert "char:1\n+ Get-Service NoSuchSvc\n+ ~~~~~~~~~~~~~~~~~~~~~\n" in r.stderr
    assert "ObjectNotFound: (NoSuchSvc:String) [Get-Service], ServiceCommandException" in r.stderr
    assert "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand" in r.stderr


@pytest.mark.parametrize("script", ["Get-Service NoSuchSvc -ErrorAction SilentlyContinue; 'done'",
                                    "Get-Service NoSuchSvc -ea 0; 'done'", "Get-Service NoSuchSvc 2>$null; 'done'",
                                    "$ErrorActionPreference = 'SilentlyContinue'; Get-Service NoSuchSvc; 'done'"])
def test_error_action_silently_continue_suppresses_the_error(script):
    r = run(script)
    assert (r.stdout, r.stderr, r.exit_code) == ("done\n", "", 0)


def test_try_catch_with_stop():
    r = run("try { Get-Service Nope -ErrorAction Stop; 'not here' } catch { \"caught: $($_.Exception.Message)\" }")
    assert (r.stdout, r.stderr, r.exit_code) == ("caught: Cannot find any service with service name 'Nope'.\n", "", 0)


def test_service_state_changes_within_a_script():
    r = run("Stop-Service W32Time; (Get-Service W32Time).Status; Start-Service W32Time; (Get-Service W32Time).Status")
    assert r.stdout == "Stopped\nRunning\n"


# ----------------------------------------------------------------------------------------- hotfixes


def test_hotfixes_match_facts():
    sim = {"guest": {"hotfixes": ["KB5035849", {"hotFixId": "KB5005112", "description": "Update",
                                                "installedOn": "2021-08-12"}]}}
    out = run("Get-HotFix", arc(), sim=sim).stdout
    lines = out.split("\n")
    assert lines[1].split() == ["Source", "Description", "HotFixID", "InstalledBy", "InstalledOn"]
    assert lines[3].split()[1:4] == ["Security", "Update", "KB5035849"]  # a known cumulative update
    assert lines[4].split()[1:3] == ["Update", "KB5005112"]
    assert "FS01" in lines[3] and "8/12/2021 12:00:00 AM" in lines[4]
    assert len([x for x in lines if "KB" in x]) == 2


def test_derived_hotfixes_follow_the_os_build():
    out = run("Get-HotFix | Select-Object -ExpandProperty HotFixID", vm(os_version="10.0.20348.2322")).stdout
    assert "KB5034770" in out.split()  # the February 2024 cumulative update is build 20348.2322
    out19 = run("Get-HotFix | Select-Object -ExpandProperty HotFixID", arc(os_version="10.0.17763.5576")).stdout
    assert "KB5035849" in out19.split() and not set(out.split()) & set(out19.split())


def test_get_hotfix_by_id():
    r = run("Get-HotFix -Id KB5034770", vm(os_version="10.0.20348.2322"))
    assert r.exit_code == 0 and r.stdout.count("KB5034770") == 1 and "KB5008882" not in r.stdout
    missing = run("Get-HotFix -Id KB1234567")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.startswith("Get-HotFix : Cannot find the requested hotfix on the 'localhost' computer.")


# ------------------------------------------------------------------------------ versions, computer


def test_psversiontable():
    out = run("$PSVersionTable", vm(os_version="10.0.20348.2322")).stdout.split("\n")
    assert out[1].split() == ["Name", "Value"] and out[2].split() == ["----", "-----"]
    assert out[3].split() == ["PSVersion", "5.1.20348.2322"]
    assert "PSCompatibleVersions           {1.0, 2.0, 3.0, 4.0...}" in out
    assert run("$PSVersionTable.PSVersion", vm(os_version="10.0.17763.5576")).stdout == (
        "\nMajor  Minor  Build  Revision\n-----  -----  -----  --------\n5      1      17763  5576\n\n\n")
    assert run("$PSVersionTable.PSVersion.Major").stdout == "5\n"


def test_get_computer_info_property_subset():
    r = run("Get-ComputerInfo -Property OsName, OsVersion, WindowsVersion, CsDomain", arc(os_sku="Windows Server 2019 Standard"))
    assert r.stdout == ("\nOsName         : Microsoft Windows Server 2019 Standard\nOsVersion      : 10.0.17763\n"
                        "WindowsVersion : 1809\nCsDomain       : corp.contoso.com\n\n\n")


def test_get_computer_info_full_is_a_list_and_slow():
    r = run("Get-ComputerInfo", vm())
    pairs = dict(line.split(" : ", 1) for line in r.stdout.split("\n") if " : " in line)
    pairs = {k.rstrip(): v for k, v in pairs.items()}
    assert pairs["WindowsProductName"] == "Windows Server 2022 Datacenter: Azure Edition"
    assert pairs["CsName"] == "WEB-01" and pairs["OsHotFixes"].startswith("{KB")
    assert len({line.index(" : ") for line in r.stdout.split("\n") if " : " in line}) == 1
    assert r.duration_s > run("hostname").duration_s + 3


def test_os_from_image_sku_when_the_instance_view_is_silent():
    m = vm(sku="2019-datacenter-core")
    del m["properties"]["instanceView"]["osName"], m["properties"]["instanceView"]["osVersion"]
    out = run("(Get-ComputerInfo).OsName; (Get-ComputerInfo).OsServerLevel", m).stdout
    assert out == "Microsoft Windows Server 2019 Datacenter\nServerCore\n"


def test_systeminfo():
    r = run("systeminfo", arc())
    lines = r.stdout.split("\n")
    assert "Host Name:                 FS01" in lines
    assert "OS Name:                   Microsoft Windows Server 2019 Standard" in lines
    assert "Domain:                    corp.contoso.com" in lines
    assert any(line.startswith("Hotfix(s):") and "Hotfix(s) Installed." in line for line in lines)
    assert r.duration_s > 3


# ---------------------------------------------------------------------------------------- features


def test_windows_feature_from_facts():
    sim = {"guest": {"windowsFeatures": ["Storage-Replica"]}}
    out = run("Get-WindowsFeature Storage-Replica", vm(), sim=sim).stdout.split("\n")
    assert out[1].split() == ["Display", "Name", "Name", "Install", "State"]
    assert out[3].startswith("[X] Storage Replica") and out[3].split()[-2:] == ["Storage-Replica", "Installed"]
    assert len([x for x in out if x]) == 3
    sim_off = {"guest": {"windowsFeatures": {"Storage-Replica": False}}}
    off = run("Get-WindowsFeature -Name Storage-Replica", vm(), sim=sim_off).stdout
    assert "[ ] Storage Replica" in off and off.rstrip().endswith("Available")


def test_windows_feature_tree_and_properties():
    sim = {"guest": {"windowsFeatures": ["FS-FileServer"]}}
    out = run("Get-WindowsFeature", vm(), sim=sim).stdout
    assert "[X] File and Storage Services" in out
    assert "        [X] File Server" in out  # depth 2, parents installed with it
    r = run("(Get-WindowsFeature Storage-Replica).Installed; Get-WindowsFeature | Where Installed | Measure | % Count",
            vm(), sim={"guest": {"windowsFeatures": []}})
    assert r.stdout.split("\n")[0] == "False"


def test_install_windows_feature_changes_the_rest_of_the_script():
    r = run("Install-WindowsFeature Storage-Replica; (Get-WindowsFeature Storage-Replica).InstallState",
            vm(), sim={"guest": {"windowsFeatures": []}})
    assert "True    Yes            SuccessRestartRequired {Storage Replica}" in r.stdout
    assert r.stdout.rstrip().endswith("Installed")
    assert not r.restart_requested
    assert run("Install-WindowsFeature Storage-Replica -Restart", vm(), sim={"guest": {"windowsFeatures": []}}).restart_requested


# ------------------------------------------------------------------------------------------ network


def test_ipconfig_uses_the_arc_addresses():
    out = run("ipconfig", arc(ip="192.168.10.21")).stdout
    assert "Ethernet adapter Ethernet0:" in out
    assert "   IPv4 Address. . . . . . . . . . . : 192.168.10.21\n" in out
    assert "   Subnet Mask . . . . . . . . . . . : 255.255.255.0\n" in out
    assert "   Default Gateway . . . . . . . . . : 192.168.10.1\n" in out
    assert "Physical Address" not in out


def test_ipconfig_all():
    out = run("ipconfig /all", vm(computer="web-01")).stdout
    assert "   Host Name . . . . . . . . . . . . : web-01\n" in out
    assert "   DHCP Server . . . . . . . . . . . : 168.63.129.16\n" in out
    assert "(Preferred)" in out
    labels = [line for line in out.split("\n") if line.startswith("   ") and " : " in line]
    assert {line.index(" : ") for line in labels} == {36}  # the dotted labels line up, as ipconfig's do


def test_get_net_adapter_shows_azure_network_adapter_when_the_guest_has_one():
    out = run("Get-NetAdapter", vm(), sim={"guest": {"azureNetworkAdapter": True}}).stdout
    assert "Azure Network Adapter" in out and "Microsoft Hyper-V Network Adapter" in out
    out = run("Get-NetAdapter", vm(), sim={"guest": {"azureNetworkAdapter": False, "extendedNetwork": False}}).stdout
    assert "Azure Network Adapter" not in out and "Azure Extended Network" not in out
    assert "Azure Extended Network" in run("Get-NetAdapter", vm(), sim={"guest": {"extendedNetwork": True}}).stdout


def test_test_net_connection():
    r = run("Test-NetConnection management.azure.com -Port 443")
    assert "ComputerName     : management.azure.com\n" in r.stdout
    assert "RemotePort       : 443\n" in r.stdout and "TcpTestSucceeded : True\n" in r.stdout
    assert r.exit_code == 0
    assert run("Test-NetConnection localhost -Port 3389 -InformationLevel Quiet").stdout == "True\n"
    closed = run("Test-NetConnection localhost -Port 12345")
    assert closed.stdout.startswith("WARNING: TCP connect to (::1 : 12345) failed\n")
    assert "TcpTestSucceeded       : False" in closed.stdout and closed.exit_code == 0
    probe = run("(Test-NetConnection sql01 -Port 1433).TcpTestSucceeded").stdout
    assert probe.splitlines()[-1] in ("True", "False")
    assert all(run("(Test-NetConnection sql01 -Port 1433).TcpTestSucceeded").stdout == probe for _ in range(3))


# ----------------------------------------------------------------------------- storage and processes


def test_get_psdrive_and_volume():
    out = run("Get-PSDrive C", vm()).stdout.split("\n")
    assert out[1].split()[:5] == ["Name", "Used", "(GB)", "Free", "(GB)"]
    name, used, free, provider, root, *_ = out[3].split()
    assert (name, provider, root) == ("C", "FileSystem", "C:\\")
    assert abs(float(used) + float(free) - 126.45) < 0.02
    vol = run("Get-Volume -DriveLetter C").stdout
    assert "DriveLetter FriendlyName FileSystemType" in vol and "C           Windows      NTFS" in vol


def test_get_process():
    m = vm()
    out = run("Get-Process", m, extensions=[ama(m)]).stdout
    header = out.split("\n")[1].split()
    assert header == ["Handles", "NPM(K)", "PM(K)", "WS(K)", "CPU(s)", "Id", "SI", "ProcessName"]
    names = [line.split()[-1] for line in out.split("\n")[3:] if line]
    assert {"svchost", "lsass", "powershell", "MonAgentCore", "WindowsAzureGuestAgent"} <= set(names)
    assert names == sorted(names, key=str.lower)
    r = run("Get-Process nosuch")
    assert r.exit_code == 1 and 'Cannot find a process with the name "nosuch".' in r.stderr


# ------------------------------------------------------------------------------------------- SMB


def test_smb_over_quic_probe_on_capable_and_older_servers():
    quic = run("Get-SmbServerCertificateMapping", vm(), sim={"guest": {"smbOverQuic": {"subject": "CN=fs.contoso.com"}}})
    assert quic.exit_code == 0 and "CN=fs.contoso.com" in quic.stdout and " QUIC " in quic.stdout
    none = run("Get-SmbServerCertificateMapping", vm(), sim={"guest": {"smbOverQuic": False}})
    assert (none.stdout, none.exit_code) == ("", 0)
    old = run("Get-SmbServerCertificateMapping", arc(os_version="10.0.17763.5576"))
    assert old.exit_code == 1
    assert old.stderr.startswith("Get-SmbServerCertificateMapping : The term 'Get-SmbServerCertificateMapping' "
                                 "is not recognized as the name of a cmdlet")
    assert run("(Get-SmbServerConfiguration).EnableSMBQUIC", vm()).stdout == "True\n"
    assert run("(Get-SmbServerConfiguration).EnableSMBQUIC", arc()).stdout == ""
    assert "EnableSMB2Protocol" in run("Get-SmbServerConfiguration", arc()).stdout


# ----------------------------------------------------------------------- output, parameters, flow


def test_write_output_with_parameter_substitution():
    r = run('Write-Output "Hello $Name"; echo \'literal $Name\'; Write-Host "from $($env:COMPUTERNAME)" -ForegroundColor Green',
            vm(computer="web-01"), parameters={"Name": "World"})
    assert r.stdout == "Hello World\nliteral $Name\nfrom WEB-01\n"


def test_param_block_defaults_and_parameters():
    script = "param([string]$Name = 'nobody', [int]$Count = 2)\nforeach ($i in 1..$Count) { \"$i $Name\" }"
    assert run(script).stdout == "1 nobody\n2 nobody\n"
    assert run(script, parameters={"Name": "ops", "Count": "3"}).stdout == "1 ops\n2 ops\n3 ops\n"


def test_hostile_parameter_values_are_data_not_code():
    r = run('Write-Output "v=$Name"', parameters={"Name": "$(Restart-Computer) `e[31m [@click=app.quit]"})
    assert r.stdout == "v=$(Restart-Computer) `e[31m [@click=app.quit]\n"
    assert not r.restart_requested


def test_statements_in_order_across_lines_and_semicolons():
    r = run("hostname\r\n'two'; Write-Output three\n\n# a comment\n<# block\ncomment #>\nwhoami")
    assert r.stdout == "web-01\ntwo\nthree\nnt authority\\system\n"


def test_exit_code():
    assert run("exit 3").exit_code == 3
    assert run("'a'; exit 3; 'b'").stdout == "a\n"
    assert run("Write-Error 'x'; exit 0").exit_code == 0


def test_throw_goes_to_stderr_and_stops():
    r = run("'before'\nthrow \"disk full\"\n'after'")
    assert r.stdout == "before\n" and r.exit_code == 1
    assert r.stderr.startswith("disk full\nAt ") and ":2 char:1\n+ throw \"disk full\"\n" in r.stderr
    assert "OperationStopped: (disk full:String) [], RuntimeException" in r.stderr


def test_write_error_goes_to_stderr_and_continues():
    r = run("Write-Error 'bad thing'; 'after'")
    assert r.stdout == "after\n" and r.exit_code == 1
    assert r.stderr.splitlines()[0].endswith("script0.ps1 : bad thing")
    assert "[Write-Error], WriteErrorException" in r.stderr


def test_restart_computer():
    r = run("Restart-Computer -Force")
    assert (r.stdout, r.stderr, r.exit_code, r.restart_requested) == ("", "", 0, True)
    dry = run("Restart-Computer -WhatIf")
    assert dry.stdout.startswith("What if:") and not dry.restart_requested


def test_get_date_uses_now():
    assert run("Get-Date").stdout == "\nTuesday, March 5, 2024 2:30:12 PM\n\n\n"
    assert run('Get-Date -Format "yyyy-MM-dd HH:mm:ss"').stdout == "2024-03-05 14:30:12\n"
    assert run("Get-Date -Format o").stdout == "2024-03-05T14:30:12.0000000+00:00\n"
    assert run("(Get-Date).ToUniversalTime().ToString('u')").stdout == "2024-03-05 14:30:12Z\n"


def test_get_date_in_the_vm_time_zone():
    m = vm()
    m["properties"]["osProfile"]["windowsConfiguration"]["timeZone"] = "Pacific Standard Time"
    assert run("Get-Date -Format 'HH:mm zzz'", m).stdout == "06:30 -08:00\n"


def test_format_table_list_and_json():
    ft = run("Get-Service W32Time | Format-Table Name, Status").stdout
    assert ft == "\nName    Status\n----    ------\nW32Time Running\n\n\n"
    fl = run("Get-Service W32Time | Format-List Name, StartType").stdout
    assert fl == "\nName      : W32Time\nStartType : Automatic\n\n\n"
    doc = json.loads(run("Get-Service W32Time | Select-Object Name, Status | ConvertTo-Json").stdout)
    assert doc == {"Name": "W32Time", "Status": 4}  # enums serialise as numbers in Windows PowerShell 5.1
    compact = run("Get-Service W32Time, WinRM | Select Name | ConvertTo-Json -Compress").stdout
    assert compact == '[{"Name":"W32Time"},{"Name":"WinRM"}]\n'


def test_where_object_sort_measure_and_custom_objects():
    r = run("Get-Service | Where-Object { $_.Status -eq 'Running' -and $_.Name -like 'Win*' } | "
            "Sort-Object Name -Descending | Select-Object -First 2 -ExpandProperty Name")
    assert r.stdout == "WinRM\nWinmgmt\n"
    count = run("Get-Service | ? Status -eq Stopped | Measure-Object | Select -ExpandProperty Count").stdout
    assert int(count) >= 2
    obj = run("[PSCustomObject]@{ Host = $env:COMPUTERNAME; Ok = $true }", vm(computer="web-01")).stdout
    assert obj == "\nHost   Ok\n----   --\nWEB-01 True\n\n\n"
    calc = run("Get-PSDrive C | Select-Object @{n='FreeGB';e={[math]::Round($_.Free / 1GB)}} | % FreeGB").stdout
    assert calc.strip().isdigit()


def test_functions_if_and_format_operator():
    script = ("function Test-Thing($a, $b = 5) { if ($a -gt 1) { 'big' } elseif ($a -eq 1) { 'one' } else { 'small' } }\n"
              "Test-Thing 2; Test-Thing -a 1; Test-Thing 0\n'{0:N1} GB' -f 1.25")
    assert run(script).stdout == "big\none\nsmall\n1.3 GB\n"


# ----------------------------------------------------------------------------- generic fallback


def test_unrecognised_commands_are_accepted_silently_and_listed():
    r = run("Set-NetFirewallProfile -Enabled True\nGet-SomethingElse | Format-Table\nhostname")
    assert (r.stdout, r.stderr, r.exit_code) == ("web-01\n", "", 0)
    assert r.unrecognised == ("Set-NetFirewallProfile", "Get-SomethingElse")


@pytest.mark.parametrize("script", ["", "   \n\n", "((((", "'unterminated", "\"$(unterminated", "}{)(", "Get-Service |",
                                    "@{", "[", "`", "\x00\x1b]0;t\x07", "function", "if (", "try {", "$", "- -- ---",
                                    "(" * 3000 + ")" * 3000, "while ($true) { 'x' }", "function f { f }; f",
                                    "foreach ($i in 1..10000) { foreach ($j in 1..10000) { $i } }"])
def test_never_raises_for_a_script(script):
    r = run(script)
    assert isinstance(r, ScriptResult) and isinstance(r.stdout, str) and isinstance(r.exit_code, int)
    assert "<internal error>" not in r.unrecognised


@pytest.mark.parametrize("machine", [{}, {"id": 5}, {"id": "/x", "properties": "nope"},
                                     {"id": "/x", "type": "Microsoft.Compute/virtualMachines",
                                      "properties": {"instanceView": {"computerName": 7, "osVersion": ["?"]},
                                                     "storageProfile": {"osDisk": {"diskSizeGB": "huge"}}}},
                                     {"id": "/x", "type": "Microsoft.HybridCompute/machines",
                                      "properties": {"networkProfile": {"networkInterfaces": [None, {"ipAddresses": 3}]},
                                                     "storageProfile": {"disks": [{"path": "C:/", "maxSizeInBytes": -1}]},
                                                     "hardwareProfile": {"processors": [{"numberOfCores": "a"}],
                                                                         "numberOfCpuSockets": -3},
                                                     "detectedProperties": []}},
                                     {"id": "/x", "type": "Microsoft.Compute/virtualMachines",
                                      "properties": {"storageProfile": {"osDisk": {"diskSizeGB": -5}, "dataDisks": 7},
                                                     "hardwareProfile": {"vmSize": "Standard_Q99zz_v0"}}}])
def test_hostile_machine_documents_do_not_break_answers(machine):
    r = simulate_script("hostname; Get-Service W32Time | % Status; ipconfig; Get-PSDrive C; systeminfo", machine,
                        extensions=[{"properties": None}, "junk", {"properties": {"publisher": 3}}], now=NOW)
    assert r.exit_code == 0 and "Running" in r.stdout and r.unrecognised == ()


# -------------------------------------------------------------------------------------- determinism


def test_same_machine_same_script_same_result():
    m = vm()
    script = "ipconfig /all; Get-Process; systeminfo; Get-HotFix; Get-Service; Test-NetConnection x.example.org -Port 8443"
    first = run(script, m, extensions=[ama(m)])
    assert all(run(script, vm(), extensions=[ama(vm())]) == first for _ in range(3))


def test_machines_differ():
    a, b = run("ipconfig", vm("web-01")).stdout, run("ipconfig", vm("web-02")).stdout
    assert a != b


def test_deterministic_across_processes():
    code = ("import sys; from datetime import datetime, UTC; from wsam_tui.sim.guest import simulate_script; "
            "m = {'id': '/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v1', 'name': 'v1', "
            "'type': 'Microsoft.Compute/virtualMachines', 'properties': {}}; "
            "r = simulate_script('ipconfig /all; Get-Service; Get-Process; Get-WindowsFeature; Get-HotFix', m, "
            "now=datetime(2024, 1, 1, tzinfo=UTC)); sys.stdout.write(repr(r))")
    outs = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)
    assert len(outs) == 1


def test_duration_is_small_deterministic_and_grows_with_work():
    quick = run("hostname")
    assert 1.0 <= quick.duration_s <= 2.0 and quick.duration_s == run("hostname").duration_s
    assert 1.0 <= run("Get-Service; Get-HotFix; ipconfig").duration_s <= 8.0
    assert run("systeminfo").duration_s > quick.duration_s + 3
    assert run("Start-Sleep -Seconds 120").duration_s >= 120


def test_line_endings_are_newlines():
    assert "\r" not in run("systeminfo; ipconfig /all; Get-Service; Get-Date; $PSVersionTable").stdout


# -------------------------------------------------------------------------------------- overrides


HOSTILE = "\x1b]0;pwned\x07\x1b[31mred\x1b[0m [@click=app.quit]quit[/] [b]bold[/b] \u202eevil \ud800 \x00end"


def test_run_command_output_override_is_byte_exact():
    sim = {"runCommandOutput": {"stdout": HOSTILE, "stderr": "\x1b[2Jerr\r\n", "exitCode": 7}}
    r = run("hostname; Restart-Computer", vm(), sim=sim)
    assert (r.stdout, r.stderr, r.exit_code, r.restart_requested) == (HOSTILE, "\x1b[2Jerr\r\n", 7, False)
    legacy = simulate_command_id("EnableRemotePS", [], vm(), sim=sim, now=NOW)
    assert (legacy.stdout, legacy.stderr, legacy.exit_code) == (HOSTILE, "\x1b[2Jerr\r\n", 7)
    ps = simulate_command_id("RunPowerShellScript", ["whoami"], vm(), sim=sim, now=NOW)
    assert ps.stdout == HOSTILE


def test_override_with_missing_fields():
    r = run("hostname", vm(), sim={"runCommandOutput": {"stdout": "only this"}})
    assert (r.stdout, r.stderr, r.exit_code) == ("only this", "", 0)


def test_hostile_facts_pass_through():
    sim = {"guest": {"services": {"Evil\x1b[31m": "Running\x07"}, "hotfixes": ["KB[@click=app.quit]"]}}
    out = run("Get-Service 'Evil*'; Get-HotFix", vm(), sim=sim).stdout
    assert "Running\x07" in out and "Evil\x1b[31m" in out and "KB[@click=app.quit]" in out


# ------------------------------------------------------------------------------------- cap_output


def test_cap_output_short_text_is_unchanged():
    assert cap_output("hello") == ("hello", False)
    exact = "x" * 4096
    assert cap_output(exact) == (exact, False)


def test_cap_output_keeps_the_last_4096_bytes():
    text = "".join(f"line {i}\n" for i in range(2000))
    capped, cut = cap_output(text)
    assert cut and len(capped.encode()) == 4096 and text.endswith(capped)


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_cap_output_never_splits_a_character(char):
    text = "start" + char * 5000
    capped, cut = cap_output(text)
    data = capped.encode()
    assert cut and text.endswith(capped)
    assert 4096 - len(char.encode()) < len(data) <= 4096
    assert set(capped) == {char}


def test_cap_output_other_limits_and_surrogates():
    assert cap_output("abcdef", 3) == ("def", True)
    assert cap_output("abc", 0) == ("", True)
    capped, cut = cap_output("a" * 10 + "\ud800", 4)
    assert cut and capped.endswith("\ud800")


# ------------------------------------------------------------------------------ legacy command ids


def test_run_powershell_script_runs_the_lines():
    r = simulate_command_id("RunPowerShellScript", ["hostname", "Get-Date -Format yyyy"], vm(computer="web-01"), now=NOW)
    assert r.stdout == "web-01\n2024\n" and r.exit_code == 0
    err = simulate_command_id("RunPowerShellScript", ["Get-Service Nope"], vm(), now=NOW)
    assert "RunCommandWindows" in err.stderr and err.exit_code == 1


def test_legacy_ipconfig():
    r = simulate_command_id("IPConfig", [], arc(ip="192.168.10.21"), now=NOW)
    assert "Windows IP Configuration" in r.stdout and "192.168.10.21" in r.stdout and "Physical Address" in r.stdout


@pytest.mark.parametrize("command_id", [c for c in WINDOWS_COMMAND_IDS if c not in ("RunPowerShellScript", "IPConfig")])
def test_fixed_legacy_commands_give_plausible_output(command_id):
    r = simulate_command_id(command_id, [], vm(), now=NOW)
    assert r.stdout.strip() and r.stderr == "" and r.exit_code == 0
    assert r == simulate_command_id(command_id.upper(), [], vm(), now=NOW)
    assert 1.0 <= r.duration_s <= 8.0


def test_legacy_commands_use_machine_facts_and_parameters():
    assert "'azureadmin'" in simulate_command_id("EnableAdminAccount", [], vm(), now=NOW).stdout
    port = simulate_command_id("SetRDPPort", [], vm(), now=NOW, parameters={"RDPPORT": "3390"})
    assert "port to 3390" in port.stdout
    bad = simulate_command_id("SetRDPPort", [], vm(), now=NOW, parameters={"RDPPORT": "99999"})
    assert bad.exit_code == 1 and "99999" in bad.stderr
    assert "joined to corp.contoso.com" in simulate_command_id("RDPSettings", [], arc(), now=NOW).stdout


@pytest.mark.parametrize("command_id", ["NoSuchCommand", "", *LINUX_COMMAND_IDS])
def test_unknown_or_linux_command_id_raises_value_error(command_id):
    with pytest.raises(ValueError):
        simulate_command_id(command_id, ["hostname"], vm(), now=NOW)
    with pytest.raises(ValueError):  # even when the fleet overrides the output
        simulate_command_id(command_id, [], vm(), sim={"runCommandOutput": {"stdout": "x"}}, now=NOW)


# ------------------------------------------------------------------------- the in-guest capability probe


PROBE = """
$r = [ordered]@{}
$r.azureNetworkAdapter = [bool](Get-NetAdapter -ErrorAction SilentlyContinue |
    Where-Object { $_.Name -like 'Azure Network Adapter*' -or $_.InterfaceDescription -like '*Azure Network Adapter*' })
$r.extendedNetwork = [bool](Get-NetAdapter -ErrorAction SilentlyContinue | Where-Object { $_.Name -like '*Extended Network*' })
$r.storageReplica = [bool]((Get-WindowsFeature -Name Storage-Replica -ErrorAction SilentlyContinue).Installed)
$r.smbOverQuic = $false
if (Get-Command Get-SmbServerCertificateMapping -ErrorAction SilentlyContinue) {
    $r.smbOverQuic = [bool](Get-SmbServerCertificateMapping -ErrorAction SilentlyContinue)
}
[PSCustomObject]$r | ConvertTo-Json -Compress
"""


@pytest.mark.parametrize("facts", [
    {"azureNetworkAdapter": True, "extendedNetwork": False, "windowsFeatures": ["Storage-Replica"], "smbOverQuic": True},
    {"azureNetworkAdapter": False, "extendedNetwork": True, "windowsFeatures": [], "smbOverQuic": False},
    {"azureNetworkAdapter": False, "extendedNetwork": False, "windowsFeatures": ["Web-Server"], "smbOverQuic": True},
])
@pytest.mark.parametrize("machine", [vm, arc])
def test_a_probe_script_reads_back_the_guest_facts(facts, machine):
    m = machine()
    r = run(PROBE, m, sim={"guest": facts})
    assert r.exit_code == 0 and r.stderr == ""
    # an explicit smbOverQuic fact wins even on an OS that would not have it (the fleet said so)
    assert json.loads(r.stdout) == {"azureNetworkAdapter": facts["azureNetworkAdapter"],
                                    "extendedNetwork": facts["extendedNetwork"],
                                    "storageReplica": "Storage-Replica" in facts["windowsFeatures"],
                                    "smbOverQuic": facts["smbOverQuic"]}


def test_command_not_found_is_like_powershell():
    old = arc(os_version="10.0.17763.5576")
    # -ErrorAction cannot silence a command that does not exist; the script goes on
    r = run("Get-SmbServerCertificateMapping -ErrorAction SilentlyContinue; 'next'", old)
    assert r.stdout == "next\n" and r.exit_code == 1 and "CommandNotFoundException" in r.stderr
    # try/catch catches it, 2>$null hides it
    assert run("try { Get-SmbServerCertificateMapping } catch { 'caught' }", old).stdout == "caught\n"
    quiet = run("Get-SmbServerCertificateMapping 2>$null; 'next'", old)
    assert (quiet.stdout, quiet.stderr, quiet.exit_code) == ("next\n", "", 0)
    assert run("[bool](Get-Command Get-SmbServerCertificateMapping -ErrorAction SilentlyContinue)", old).stdout == "False\n"
    assert run("(Get-Command Get-Service).CommandType; (Get-Command ipconfig).Name").stdout == "Cmdlet\nipconfig.exe\n"


def test_fleet_generator_feature_and_service_names_are_understood():
    sim = {"guest": {"windowsFeatures": ["Web-Server", "Web-Asp-Net45", "FS-Data-Deduplication", "RDS-RD-Server"],
                     "services": {"MSSQLSERVER": "Running", "NTDS": "Running"}}}
    out = run("Get-WindowsFeature | Where-Object Installed | Select-Object -ExpandProperty DisplayName; "
              "Get-Service MSSQLSERVER, NTDS", vm(), sim=sim).stdout
    assert {"ASP.NET 4.8", "Application Development", "Data Deduplication", "Remote Desktop Session Host",
            "Remote Desktop Services"} <= set(out.splitlines())
    assert "SQL Server (MSSQLSERVER)" in out and "Active Directory Domain Services" in out
