"""Deterministic fleet generator: `generate_fleet(size, seed)` writes a `wsam-fleet/1` document.

A fleet of ``size`` Windows servers — Azure VMs (~60 %) and Azure Arc machines (~40 %: on-premises
Hyper-V and physical, VMware, AWS, GCP) — across subscriptions and tenants, with every document the
console reads about them (docs/fleet-format.md): extensions, patch assessments and installations,
guest configuration, policy states, Defender pricings and assessments, DCRs and their associations,
Log Analytics workspaces and Sentinel, backup and Site Recovery items, Automanage, maintenance
configurations, Azure File Sync registered servers.

How it is built:

* every server first gets a *profile* — plain facts (power state, which extensions in which state,
  backup health, …) drawn from ``random.Random(seed)`` with realistic, correlated distributions (a
  well-run production server has most things, a forgotten test box few);
* the first servers of each kind then get one *coverage scenario* each (``_PLAN_VM``,
  ``_PLAN_ARC``): the facts that put one capability column in one state, so that a fleet of 300 or
  more servers holds every state of every column for each kind, whatever the seed;
* the profile is rendered into ARM documents. All timestamps are relative to ``now`` (by default
  a fixed instant, so that the output is byte-identical for a seed); the simulator shifts them at load.

`coverage_report(fleet)` reads the documents back (not the profiles) and says which states each
column reaches per kind, by the console's rules (docs/capabilities.md), so that tests can check the
guarantee from what is actually written.

Run ``python -m wsam_tui.sim.fleetgen --size N --seed S -o FILE`` to write a fleet file.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

VERSION = 1
DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
REQUIRED_TAGS = ("env", "owner", "costCenter")
STALE_DAYS = 7  # the console's default: an assessment / backup / heartbeat older than this is stale
VM_SHARE = 0.6

VM_TYPE = "Microsoft.Compute/virtualMachines"
ARC_TYPE = "Microsoft.HybridCompute/machines"

# ---- catalogs ------------------------------------------------------------------------------------

# Operating systems: key -> (VM image sku, VM osName, Arc osSku (Datacenter), build, UBR range, Gen2 image)
_OS: dict[str, tuple[str, str, str, str, tuple[int, int], bool]] = {
    "2012r2": ("2012-R2-Datacenter", "Windows Server 2012 R2 Datacenter", "Windows Server 2012 R2 Datacenter",
               "6.3.9600", (21500, 22650), False),
    "2016": ("2016-Datacenter", "Windows Server 2016 Datacenter", "Windows Server 2016 Datacenter",
             "10.0.14393", (6800, 8600), False),
    "2019": ("2019-Datacenter", "Windows Server 2019 Datacenter", "Windows Server 2019 Datacenter",
             "10.0.17763", (6000, 7900), False),
    "2022": ("2022-datacenter-g2", "Windows Server 2022 Datacenter", "Windows Server 2022 Datacenter",
             "10.0.20348", (2700, 4400), True),
    "2022ae": ("2022-datacenter-azure-edition", "Windows Server 2022 Datacenter: Azure Edition",
               "Windows Server 2022 Datacenter: Azure Edition", "10.0.20348", (2700, 4400), True),
    "2022ae-hotpatch": ("2022-datacenter-azure-edition-hotpatch", "Windows Server 2022 Datacenter: Azure Edition",
                        "Windows Server 2022 Datacenter: Azure Edition", "10.0.20348", (2700, 4400), True),
    "2025": ("2025-datacenter-g2", "Windows Server 2025 Datacenter", "Windows Server 2025 Datacenter",
             "10.0.26100", (2900, 7100), True),
    "2025ae": ("2025-datacenter-azure-edition", "Windows Server 2025 Datacenter: Azure Edition",
               "Windows Server 2025 Datacenter: Azure Edition", "10.0.26100", (2900, 7100), True),
}
_OS_FAMILY = {"2012r2": "2012r2", "2016": "2016", "2019": "2019", "2022": "2022", "2022ae": "2022",
              "2022ae-hotpatch": "2022", "2025": "2025", "2025ae": "2025"}
_VM_OS_WEIGHTS = (("2012r2", 3), ("2016", 12), ("2019", 25), ("2022", 22), ("2022ae", 12), ("2022ae-hotpatch", 6),
                  ("2025", 12), ("2025ae", 8))
_ARC_OS_WEIGHTS = (("2012r2", 10), ("2016", 22), ("2019", 30), ("2022", 26), ("2025", 12))

_VM_SIZES = ("Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5", "Standard_E4s_v5", "Standard_E8s_v5",
             "Standard_B2ms", "Standard_D2as_v5", "Standard_D4as_v5", "Standard_F4s_v2", "Standard_DS3_v2",
             "Standard_D4ds_v5", "Standard_E16s_v5")
_CVM_SIZES = ("Standard_DC2as_v5", "Standard_DC4as_v5", "Standard_EC4as_v5")

# Roles: prefix, Windows features the in-guest probe reports, notable services
_ROLES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "web": (("Web-Server", "Web-Asp-Net45", "Web-Mgmt-Console", "NET-Framework-45-Core"), {"W3SVC": "Running"}),
    "api": (("Web-Server", "Web-Asp-Net45", "NET-Framework-45-Core"), {"W3SVC": "Running"}),
    "app": (("NET-Framework-45-Core", "MSMQ"), {}),
    "sql": (("NET-Framework-45-Core", "Failover-Clustering"), {"MSSQLSERVER": "Running", "SQLSERVERAGENT": "Running"}),
    "dc": (("AD-Domain-Services", "DNS", "GPMC", "RSAT-AD-Tools"), {"NTDS": "Running", "DNS": "Running"}),
    "fs": (("FS-FileServer", "FS-DFS-Namespace", "FS-DFS-Replication", "FS-Data-Deduplication"), {"LanmanServer": "Running"}),
    "rds": (("RDS-RD-Server", "RDS-Licensing"), {"TermService": "Running"}),
    "prt": (("Print-Server",), {"Spooler": "Running"}),
    "wsus": (("UpdateServices", "UpdateServices-WidDB"), {"WsusService": "Running"}),
    "pki": (("ADCS-Cert-Authority",), {"CertSvc": "Running"}),
    "adfs": (("ADFS-Federation",), {"adfssrv": "Running"}),
    "bi": (("NET-Framework-45-Core",), {"MSSQLServerOLAPService": "Running"}),
    "erp": (("NET-Framework-45-Core", "Web-Server"), {"W3SVC": "Running"}),
    "jmp": (("RSAT-AD-Tools", "RSAT-DNS-Server"), {}),
}
_VM_ROLE_WEIGHTS = (("web", 18), ("api", 10), ("app", 20), ("sql", 12), ("dc", 4), ("fs", 6), ("rds", 6),
                    ("bi", 4), ("erp", 5), ("jmp", 3), ("wsus", 1), ("pki", 1), ("adfs", 1), ("prt", 2))
_ARC_ROLE_WEIGHTS = (("app", 20), ("sql", 16), ("fs", 14), ("dc", 8), ("web", 12), ("prt", 6), ("rds", 5),
                     ("erp", 6), ("wsus", 2), ("pki", 2), ("api", 5), ("bi", 4))
_ENVS = (("prd", 55), ("stg", 10), ("uat", 10), ("tst", 12), ("dev", 13))
_ENV_TAG = {"prd": "production", "stg": "staging", "uat": "uat", "tst": "test", "dev": "development"}

# Azure regions and their Site Recovery targets (the region pair)
_REGIONS = (("westeurope", "northeurope"), ("northeurope", "westeurope"), ("eastus", "westus"),
            ("eastus2", "centralus"), ("westus2", "westcentralus"), ("uksouth", "ukwest"),
            ("swedencentral", "swedensouth"), ("germanywestcentral", "germanynorth"),
            ("centralus", "eastus2"), ("southeastasia", "eastasia"), ("australiaeast", "australiasoutheast"),
            ("canadacentral", "canadaeast"), ("francecentral", "francesouth"), ("japaneast", "japanwest"))
_PAIR = dict(_REGIONS)
_TZ = {"westeurope": "W. Europe Standard Time", "northeurope": "GMT Standard Time", "eastus": "Eastern Standard Time",
       "eastus2": "Eastern Standard Time", "westus2": "Pacific Standard Time", "uksouth": "GMT Standard Time",
       "swedencentral": "W. Europe Standard Time", "germanywestcentral": "W. Europe Standard Time",
       "centralus": "Central Standard Time", "southeastasia": "Singapore Standard Time",
       "australiaeast": "AUS Eastern Standard Time", "canadacentral": "Eastern Standard Time",
       "francecentral": "Romance Standard Time", "japaneast": "Tokyo Standard Time"}

# On-premises sites for Arc servers: code, data-centre name, city, country
_SITES = (("NYC", "New York DC1", "New York", "usa"), ("CHI", "Chicago DC2", "Chicago", "usa"),
          ("LON", "London Docklands", "London", "gbr"), ("FRA", "Frankfurt DC", "Frankfurt", "deu"),
          ("AMS", "Amsterdam Science Park", "Amsterdam", "nld"), ("SIN", "Singapore Jurong", "Singapore", "sgp"),
          ("SEA", "Seattle Westin", "Seattle", "usa"), ("PAR", "Paris Saclay", "Paris", "fra"))

_ORGS = (("Contoso", "contoso", "corp.contoso.com", "US"), ("Fabrikam", "fabrikam", "fabrikam.local", "US"),
         ("Northwind Traders", "northwind", "ad.northwindtraders.com", "GB"),
         ("Woodgrove Bank", "woodgrove", "woodgrove.corp", "US"), ("Tailspin Toys", "tailspin", "tailspin.local", "DE"),
         ("Adventure Works", "adventureworks", "corp.adventure-works.com", "US"),
         ("Litware", "litware", "litware.local", "FR"), ("Proseware", "proseware", "ad.proseware.com", "NL"))
_SUB_PURPOSES = ("Production", "Non-Production", "Hybrid Infrastructure", "Shared Services", "Line of Business",
                 "Datacenter Migration")
_VM_SUB_WEIGHT = {"Production": 1.0, "Non-Production": 0.7, "Hybrid Infrastructure": 0.15, "Shared Services": 0.5,
                  "Line of Business": 0.8, "Datacenter Migration": 0.4}
_ARC_SUB_WEIGHT = {"Production": 0.3, "Non-Production": 0.2, "Hybrid Infrastructure": 1.0, "Shared Services": 0.3,
                   "Line of Business": 0.2, "Datacenter Migration": 0.9}
_OWNERS = ("infra-team@{d}", "web-platform@{d}", "dba-team@{d}", "erp-support@{d}", "identity-team@{d}",
           "j.doe@{d}", "m.garcia@{d}", "a.khan@{d}", "s.chen@{d}", "l.rossi@{d}", "p.novak@{d}")
_OPTIONAL_TAGS = (("application", ("Payroll", "CRM", "Intranet", "SAP ECC", "Citrix", "File Services", "Data Warehouse",
                                   "Identity", "E-commerce", "Reporting")),
                  ("criticality", ("High", "Medium", "Low", "Mission Critical")),
                  ("patchGroup", ("wave-1", "wave-2", "wave-3", "manual")),
                  ("dataClassification", ("Confidential", "Internal", "Public")),
                  ("businessUnit", ("Finance", "HR", "Sales", "Manufacturing", "IT")))

_ARC_AGENTS_CURRENT = ("1.58.03228.2573", "1.59.03262.2634", "1.60.03293.2687", "1.61.03319.2713")
_ARC_AGENTS_OLD = ("1.28.02260.736", "1.34.02440.1130", "1.39.02628.1196", "1.43.02767.1490")
_VM_AGENTS = ("2.7.41491.1133", "2.7.41491.1157", "2.7.41491.1176", "2.7.41491.1102", "2.7.41491.1010")

# Extensions (research/arm-api.md §11): key -> (VM name, Arc name, publisher, type, typeHandlerVersion,
# installed versions, enableAutomaticUpgrade, VM only)
_EXT: dict[str, tuple[str, str, str, str, str, tuple[str, ...], bool, bool]] = {
    "ama": ("AzureMonitorWindowsAgent", "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent",
            "1.2", ("1.36.0.0", "1.38.0.0", "1.40.0.0", "1.41.0.0"), True, False),
    "mma": ("MicrosoftMonitoringAgent", "MicrosoftMonitoringAgent", "Microsoft.EnterpriseCloud.Monitoring",
            "MicrosoftMonitoringAgent", "1.0", ("10.20.18067.0", "10.20.18069.0"), False, False),
    "mde": ("MDE.Windows", "MDE.Windows", "Microsoft.Azure.AzureDefenderForServers", "MDE.Windows", "1.0",
            ("1.0.11.1", "1.0.12.0", "1.0.12.3"), False, False),
    "aad": ("AADLoginForWindows", "AADLoginForWindows", "Microsoft.Azure.ActiveDirectory", "AADLoginForWindows", "1.0",
            ("1.0.0.1", "2.2.0.0"), False, True),
    "wac": ("AdminCenter", "AdminCenter", "Microsoft.AdminCenter", "AdminCenter", "0.0",
            ("0.42.0.0", "0.44.0.0"), False, False),
    "ct": ("ChangeTracking-Windows", "ChangeTracking-Windows", "Microsoft.Azure.ChangeTrackingAndInventory",
           "ChangeTracking-Windows", "2.0", ("2.24.0.0", "2.26.0.0", "2.27.0.0"), True, False),
    "gc": ("AzurePolicyforWindows", "", "Microsoft.GuestConfiguration", "ConfigurationforWindows", "1.1",
           ("1.29.82.0", "1.29.96.0", "1.29.98.0"), True, True),
    "dep": ("DependencyAgentWindows", "DependencyAgentWindows", "Microsoft.Azure.Monitoring.DependencyAgent",
            "DependencyAgentWindows", "9.10", ("9.10.20.3990", "9.10.21.4470"), True, False),
    "cse": ("CustomScriptExtension", "CustomScriptExtension", "Microsoft.Compute", "CustomScriptExtension", "1.10",
            ("1.10.18", "1.10.19"), False, False),
    "iaasam": ("IaaSAntimalware", "", "Microsoft.Azure.Security", "IaaSAntimalware", "1.3",
               ("1.7.1.0", "1.7.2.0"), False, True),
    "patch": ("WindowsPatchExtension", "WindowsPatchExtension", "Microsoft.CPlat.Core", "WindowsPatchExtension", "1.0",
              ("1.5.68", "1.5.71"), False, False),
}


def extension_images() -> dict[str, dict[str, tuple[str, ...]]]:
    """The VM extension image catalogue the simulator serves: publisher -> type -> versions, oldest first."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for _vm, _arc, publisher, etype, _handler, versions, _auto, _vm_only in _EXT.values():
        out.setdefault(publisher, {})[etype] = versions
    return out


_EXT_FAIL_MESSAGES = {
    "ama": "Extension 'AzureMonitorWindowsAgent' failed: could not obtain a managed identity token for the Azure "
           "Monitor control plane (IMDS returned 400). Assign a managed identity to the machine.",
    "mma": "Failed to connect to the Log Analytics workspace: the workspace ID or key is not valid (error 0x80072ee2).",
    "mde": "MDE onboarding failed: the onboarding package could not be downloaded from the Defender for Cloud "
           "service (HTTP 403). Verify the machine can reach *.wd.microsoft.com.",
    "aad": "AADLoginForWindows failed: the device could not be joined to Microsoft Entra ID (dsregcmd exit code 0x801c03f2).",
    "wac": "Windows Admin Center installation failed: port 6516 is already in use by another process.",
    "ct": "Change Tracking extension failed to start: the Azure Monitor Agent service (AzureMonitorAgent) is not running.",
    "gc": "Guest Configuration extension failed: no system-assigned managed identity is available on the virtual machine.",
    "dep": "Dependency Agent installation failed with exit code 1603 (a fatal error during installation).",
    "cse": "Command execution finished, but failed because it returned a non-zero exit code of: '1'. The command had "
           "an error output of: 'configure-iis.ps1 : Access to the path C:\\inetpub is denied.'",
    "iaasam": "Microsoft Antimalware could not be enabled: another antimalware product is installed and active.",
    "patch": "Patch operation failed: the Windows Update service (wuauserv) is disabled (0x80070422).",
}
_EXT_OK_MESSAGES = {
    "cse": "Command execution finished, StdOut: Configuration applied., StdErr: ",
    "mde": "Microsoft Defender for Endpoint onboarded successfully.",
    "iaasam": "Microsoft Antimalware enabled",
    "aad": "AADLoginForWindows is installed and the device is joined to Microsoft Entra ID.",
}

# Guest configuration (machine configuration) packages: name, version
_GC_PACKAGES = (("AzureWindowsBaseline", "1.2.0.0"), ("AuditSecureProtocol", "1.0.0.3"), ("WindowsTimeZone", "1.0.0.0"),
                ("WindowsPendingReboot", "1.2.0.0"), ("WindowsDefenderExploitGuard", "1.1.0.0"))
_GC_REASONS = {
    "AzureWindowsBaseline": ("Security Options - Network Security: LAN Manager authentication level is 'Send LM & NTLM "
                             "responses'; expected 'Send NTLMv2 response only. Refuse LM & NTLM'"),
    "AuditSecureProtocol": "Windows web servers allow TLS 1.0 (SCHANNEL\\Protocols\\TLS 1.0\\Server Enabled = 1)",
    "WindowsTimeZone": "The time zone is 'Pacific Standard Time'; expected 'UTC'",
    "WindowsPendingReboot": "The machine has a pending reboot (Component Based Servicing)",
    "WindowsDefenderExploitGuard": "Microsoft Defender Exploit Guard is not enabled",
}

# Built-in policy definitions seen on Windows servers: (definition name, display, effect)
_POLICIES = (
    ("72650e9f-97bc-4b2a-ab5f-9781a9fcecbc", "Windows machines should meet requirements of the Azure compute security baseline",
     "auditifnotexists"),
    ("bd876905-5b84-4f73-ab2d-2e7a7c4568d9", "Machines should be configured to periodically check for missing system updates",
     "audit"),
    ("f85bf3e0-d513-442e-89c3-1784ad63382b", "System updates should be installed on your machines (powered by Update Center)",
     "auditifnotexists"),
    ("ae89ebca-1c92-4898-ac2c-9f63decb045c", "Guest Configuration extension should be installed on your machines",
     "auditifnotexists"),
    ("013e242c-8828-4970-87b3-ab247555486d", "Azure Backup should be enabled for Virtual Machines", "auditifnotexists"),
)
_POLICY_ASSIGNMENTS = (("SecurityCenterBuiltIn", "1f3afdf9-d0c9-4c3d-847f-89da613e70a8", "Microsoft cloud security benchmark"),
                       ("windows-baseline", None, None), ("update-manager-periodic-assessment", None, None))

# Defender for Cloud assessments: assessment key, display name
_ASSESSMENTS = (
    ("4ab6e3c5-74dd-8b35-9ab9-f61b30875b27", "System updates should be installed on your machines"),
    ("1195afff-c881-495e-9bc5-1486211ae03f", "Machines should have vulnerability findings resolved"),
    ("8c3d9ad0-3639-4686-9cd2-2b2ab2609bda",
     "Vulnerabilities in security configuration on your Windows machines should be remediated (powered by Guest Configuration)"),
    ("06e3a6db-6c0c-4ad9-943f-31d9d73ecf6c", "EDR solution should be installed on Virtual Machines"),
    ("6c99f570-2ce7-46bc-8175-cde013df43bc", "Guest Configuration extension should be installed on machines"),
)

_NIL_UUID = "00000000-0000-0000-0000-000000000000"


# ---- small helpers -----------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    """ARM's timestamp form: 7 fractional digits and Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def _accumulate(values: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for v in values:
        total += v
        yield total


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, float], ...]) -> Any:
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


class _Rand:
    """random.Random plus the few draws the generator repeats; every value comes from the seed."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.r = random.Random(seed)
        self.now = now

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def hex(self, n: int) -> str:
        return f"{self.r.getrandbits(4 * n):0{n}x}"

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def ago(self, lo_s: float, hi_s: float) -> str:
        """A timestamp between hi_s and lo_s seconds before now."""
        return _iso(self.now - timedelta(seconds=self.r.uniform(lo_s, hi_s)))

    def days_ago(self, lo: float, hi: float) -> str:
        return self.ago(lo * 86400, hi * 86400)


# ---- the fleet builder -------------------------------------------------------------------------


class _Sub:
    __slots__ = ("arc_weight", "display", "domain", "id", "index", "infra", "mail", "org", "primary", "purpose",
                 "regions", "short", "tenant", "tier", "vm_weight")

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


class _Builder:
    def __init__(self, size: int, seed: int, n_subs: int, n_tenants: int, now: datetime) -> None:
        self.size = size
        self.seed = seed
        self.now = now
        self.rnd = _Rand(seed, now)
        self.r = self.rnd.r
        self.shared: list[dict] = []  # subscription-level documents (pricings, DCRs, vaults, …)
        self.docs: list[dict] = []  # machines and their documents
        self.sim_machines: dict[str, dict] = {}
        self.lazy: dict[tuple, dict] = {}  # lazily created shared resources (vaults, sync services)
        self.used_names: set[str] = set()
        self.tenants = self._tenants(n_tenants)
        self.subs = self._subscriptions(n_subs)
        self.patches = self._patch_catalog()
        self.cum_vm = list(_accumulate(s.vm_weight for s in self.subs))
        self.cum_arc = list(_accumulate(s.arc_weight for s in self.subs))
        for sub in self.subs:
            self._subscription_infra(sub)

    # -- tenants and subscriptions --------------------------------------------------------------

    def _tenants(self, n: int) -> list[dict]:
        out = []
        for i in range(n):
            org, slug, _, country = _ORGS[i % len(_ORGS)]
            suffix = "" if i < len(_ORGS) else str(i // len(_ORGS) + 1)
            tid = self.rnd.uuid()
            domains = [f"{slug}{suffix}.onmicrosoft.com", f"{slug}{suffix}.com"]
            out.append({"id": f"/tenants/{tid}", "tenantId": tid, "countryCode": country,
                        "displayName": f"{org}{(' ' + suffix) if suffix else ''}", "domains": domains,
                        "tenantCategory": "Home", "defaultDomain": domains[0], "tenantType": "AAD"})
        return out

    def _subscriptions(self, n: int) -> list[_Sub]:
        subs: list[_Sub] = []
        per_tenant: dict[int, int] = {}
        tiers = (("Standard", "P2"), ("Standard", "P1"), ("Free", None))
        for i in range(n):
            t = i % len(self.tenants)
            k = per_tenant.get(t, 0)
            per_tenant[t] = k + 1
            tenant = self.tenants[t]
            _, slug, domain, _ = _ORGS[t % len(_ORGS)]
            purpose = _SUB_PURPOSES[(i + t) % len(_SUB_PURPOSES)] if n > 1 else "Production"
            rounds = k // len(_SUB_PURPOSES)
            display = f"{tenant['displayName']} {purpose}" + (f" {rounds + 1:02d}" if rounds else "")
            primary, _ = _REGIONS[(i * 3 + t) % len(_REGIONS)]
            secondary, _ = _REGIONS[(i * 3 + t + 5) % len(_REGIONS)]
            subs.append(_Sub(index=i, id=self.rnd.uuid(), tenant=tenant["tenantId"], org=slug, domain=domain,
                             mail=tenant["domains"][1],
                             display=display, purpose=purpose, primary=primary, regions=(primary, primary, secondary),
                             tier=tiers[i % 3], short=f"{slug[:4]}{i + 1:02d}", infra={},
                             vm_weight=_VM_SUB_WEIGHT[purpose] * self.r.uniform(0.8, 1.2),
                             arc_weight=_ARC_SUB_WEIGHT[purpose] * self.r.uniform(0.8, 1.2)))
        return subs

    def subscription_docs(self) -> list[dict]:
        out = []
        for s in self.subs:
            quota = "EnterpriseAgreement_2014-09-01" if s.purpose != "Non-Production" else "MSDNDevTest_2014-09-01"
            out.append({"id": f"/subscriptions/{s.id}", "subscriptionId": s.id, "tenantId": s.tenant,
                        "displayName": s.display, "state": "Enabled",
                        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": quota,
                                                 "spendingLimit": "Off"},
                        "authorizationSource": "RoleBased", "managedByTenants": [],
                        "tags": {"costCenter": f"CC-{1000 + s.index * 7}", "owner": f"cloud-platform@{s.mail}"}})
        return out

    # -- shared documents per subscription ------------------------------------------------------

    def _rg(self, sub: _Sub, name: str) -> str:
        return f"/subscriptions/{sub.id}/resourceGroups/{name}"

    def _subscription_infra(self, sub: _Sub) -> None:
        rnd, loc = self.rnd, sub.primary
        tier, plan = sub.tier
        pricing = {"id": f"/subscriptions/{sub.id}/providers/Microsoft.Security/pricings/VirtualMachines",
                   "name": "VirtualMachines", "type": "Microsoft.Security/pricings",
                   "properties": {"pricingTier": tier, "freeTrialRemainingTime": "PT0S"}}
        if tier == "Standard":
            pricing["properties"].update({
                "subPlan": plan, "enablementTime": rnd.days_ago(200, 700), "enforce": "False",
                "resourcesCoverageStatus": "PartiallyCovered",
                "extensions": [{"name": "AgentlessVmScanning", "isEnabled": "True"},
                               {"name": "MdeDesignatedSubscription", "isEnabled": "False"}] if plan == "P2" else []})
        self.shared.append(pricing)

        mon = self._rg(sub, "rg-monitoring")
        ws: dict[str, str] = {}
        for role in ("ops", "sec"):
            name = f"law-{sub.short}-{role}-{loc}"
            wid = f"{mon}/providers/Microsoft.OperationalInsights/workspaces/{name}"
            ws[role] = wid
            self.shared.append({
                "id": wid, "name": name, "type": "Microsoft.OperationalInsights/workspaces", "location": loc,
                "tags": {"env": "production", "owner": f"cloud-platform@{sub.mail}"},
                "properties": {"customerId": rnd.uuid(), "provisioningState": "Succeeded", "sku": {"name": "PerGB2018"},
                               "retentionInDays": 90 if role == "sec" else 30,
                               "features": {"enableLogAccessUsingOnlyResourcePermissions": True},
                               "workspaceCapping": {"dailyQuotaGb": -1.0},
                               "publicNetworkAccessForIngestion": "Enabled", "publicNetworkAccessForQuery": "Enabled",
                               "createdDate": rnd.days_ago(300, 900)}})
        # Microsoft Sentinel on the security workspace only
        sec_name = ws["sec"].rsplit("/", 1)[1]
        sol = f"SecurityInsights({sec_name})"
        self.shared.append({
            "id": f"{mon}/providers/Microsoft.OperationsManagement/solutions/{sol}", "name": sol,
            "type": "Microsoft.OperationsManagement/solutions", "location": loc,
            "plan": {"name": sol, "publisher": "Microsoft", "product": "OMSGallery/SecurityInsights", "promotionCode": ""},
            "properties": {"workspaceResourceId": ws["sec"], "provisioningState": "Succeeded",
                           "containedResources": [f"{ws['sec']}/views/{sol}"]}})
        sub.infra["workspaces"] = ws

        def dcr(name: str, description: str, sources: dict, flows: list[tuple[list[str], str]]) -> str:
            rid = f"{mon}/providers/Microsoft.Insights/dataCollectionRules/{name}"
            dests = []
            seen = set()
            for _, role in flows:
                if role not in seen:
                    seen.add(role)
                    dests.append({"workspaceResourceId": ws[role], "workspaceId": rnd.uuid(), "name": f"la-{role}"})
            self.shared.append({
                "id": rid, "name": name, "type": "Microsoft.Insights/dataCollectionRules", "location": loc,
                "kind": "Windows", "tags": {"owner": f"cloud-platform@{sub.mail}"},
                "properties": {"immutableId": f"dcr-{rnd.hex(32)}", "description": description, "dataSources": sources,
                               "destinations": {"logAnalytics": dests},
                               "dataFlows": [{"streams": streams, "destinations": [f"la-{role}"]} for streams, role in flows],
                               "provisioningState": "Succeeded"}})
            return rid

        sub.infra["dcr"] = {
            "insights": dcr(
                f"dcr-{sub.short}-vminsights", "VM insights: performance counters and the dependency map",
                {"performanceCounters": [{"streams": ["Microsoft-InsightsMetrics"], "samplingFrequencyInSeconds": 60,
                                          "counterSpecifiers": ["\\VmInsights\\DetailedMetrics"],
                                          "name": "VMInsightsPerfCounters"}],
                 "extensions": [{"streams": ["Microsoft-ServiceMap"], "extensionName": "DependencyAgent",
                                 "extensionSettings": {}, "name": "DependencyAgentDataSource"}]},
                [(["Microsoft-InsightsMetrics"], "ops"), (["Microsoft-ServiceMap"], "ops")]),
            "perf": dcr(
                f"dcr-{sub.short}-windows-perf", "Windows performance counters and event logs",
                {"performanceCounters": [{"streams": ["Microsoft-Perf"], "samplingFrequencyInSeconds": 60,
                                          "counterSpecifiers": ["\\Processor Information(_Total)\\% Processor Time",
                                                                "\\Memory\\Available Bytes",
                                                                "\\LogicalDisk(_Total)\\% Free Space"],
                                          "name": "perfCounterDataSource60"}],
                 "windowsEventLogs": [{"streams": ["Microsoft-Event"],
                                       "xPathQueries": ["Application!*[System[(Level=1 or Level=2 or Level=3)]]",
                                                        "System!*[System[(Level=1 or Level=2 or Level=3)]]"],
                                       "name": "eventLogsDataSource"}]},
                [(["Microsoft-Perf", "Microsoft-Event"], "ops")]),
            "ct": dcr(
                f"dcr-{sub.short}-changetracking", "Change Tracking and Inventory (AMA)",
                {"extensions": [{"streams": ["Microsoft-ConfigurationChange", "Microsoft-ConfigurationChangeV2",
                                             "Microsoft-ConfigurationData"],
                                 "extensionName": "ChangeTracking-Windows",
                                 "extensionSettings": {"enableFiles": True, "enableSoftware": True, "enableRegistry": True,
                                                       "enableServices": True, "enableInventory": True},
                                 "name": "CTDataSource-Windows"}]},
                [(["Microsoft-ConfigurationChange", "Microsoft-ConfigurationChangeV2", "Microsoft-ConfigurationData"],
                  "ops")]),
            "sentinel": dcr(
                f"dcr-{sub.short}-sentinel-securityevents", "Windows security events for Microsoft Sentinel (Common)",
                {"windowsEventLogs": [{"streams": ["Microsoft-SecurityEvent"],
                                       "xPathQueries": ["Security!*[System[(EventID=4624 or EventID=4625 or EventID=4648 "
                                                        "or EventID=4672 or EventID=4688 or EventID=4720 or EventID=4740)]]"],
                                       "name": "eventLogsDataSource"}]},
                [(["Microsoft-SecurityEvent"], "sec")]),
            "secaudit": dcr(
                f"dcr-{sub.short}-security-audit", "Security audit events to the operations workspace",
                {"windowsEventLogs": [{"streams": ["Microsoft-SecurityEvent"],
                                       "xPathQueries": ["Security!*[System[(EventID=4625 or EventID=4740)]]"],
                                       "name": "eventLogsDataSource"}]},
                [(["Microsoft-SecurityEvent"], "ops")]),
        }

        patching = self._rg(sub, "rg-patching")
        configs = []
        for name, day, hour, classes, reboot in (("mc-win-sun-0200", "Sunday", "02:00", ["Critical", "Security"], "IfRequired"),
                                                 ("mc-win-wed-2200", "Wednesday", "22:00",
                                                  ["Critical", "Security", "UpdateRollup", "Definition", "Updates"],
                                                  "IfRequired"),
                                                 ("mc-win-sat-0400-noreboot", "Saturday", "04:00",
                                                  ["Critical", "Security"], "Never")):
            rid = f"{patching}/providers/Microsoft.Maintenance/maintenanceConfigurations/{name}"
            configs.append(rid)
            self.shared.append({
                "id": rid, "name": name, "type": "Microsoft.Maintenance/maintenanceConfigurations", "location": loc,
                "tags": {"owner": f"infra-team@{sub.mail}"},
                "properties": {"namespace": "Microsoft.Maintenance", "maintenanceScope": "InGuestPatch", "visibility": "Custom",
                               "extensionProperties": {"InGuestPatchMode": "User"},
                               "maintenanceWindow": {"startDateTime": f"2025-01-05 {hour}", "expirationDateTime": None,
                                                     "duration": "03:55", "timeZone": _TZ.get(loc, "UTC"),
                                                     "recurEvery": f"1Week {day}"},
                               "installPatches": {"rebootSetting": reboot,
                                                  "windowsParameters": {"classificationsToInclude": classes,
                                                                        "kbNumbersToInclude": [], "kbNumbersToExclude": [],
                                                                        "excludeKbsRequiringReboot": False}}}})
        sub.infra["maintenance"] = configs

    def vault(self, sub: _Sub, region: str, purpose: str) -> str:
        key = ("vault", sub.id, region, purpose)
        doc = self.lazy.get(key)
        if doc is None:
            name = f"rsv-{sub.short}-{'asr-' if purpose == 'asr' else ''}{region}"
            doc = {"id": f"{self._rg(sub, 'rg-backup')}/providers/Microsoft.RecoveryServices/vaults/{name}",
                   "name": name, "type": "Microsoft.RecoveryServices/vaults", "location": region,
                   "tags": {"owner": f"infra-team@{sub.mail}"},
                   "sku": {"name": "RS0", "tier": "Standard"},
                   "properties": {"provisioningState": "Succeeded", "privateEndpointStateForBackup": "None",
                                  "privateEndpointStateForSiteRecovery": "None", "publicNetworkAccess": "Enabled",
                                  "redundancySettings": {"standardTierStorageRedundancy": "GeoRedundant",
                                                         "crossRegionRestore": "Disabled"},
                                  "securitySettings": {"immutabilitySettings": {"state": "Disabled"},
                                                       "softDeleteSettings": {"softDeleteState": "Enabled",
                                                                              "softDeleteRetentionPeriodInDays": 14}}}}
            self.lazy[key] = doc
            self.shared.append(doc)
        return doc["id"]

    def sync_service(self, sub: _Sub) -> str:
        key = ("sss", sub.id)
        doc = self.lazy.get(key)
        if doc is None:
            name = f"sss-{sub.short}-{sub.primary}"
            doc = {"id": f"{self._rg(sub, 'rg-filesync')}/providers/Microsoft.StorageSync/storageSyncServices/{name}",
                   "name": name, "type": "Microsoft.StorageSync/storageSyncServices", "location": sub.primary,
                   "tags": {"owner": f"infra-team@{sub.mail}"},
                   "properties": {"incomingTrafficPolicy": "AllowAllTraffic", "storageSyncServiceStatus": 0,
                                  "storageSyncServiceUid": self.rnd.uuid(), "provisioningState": "Succeeded",
                                  "useIdentity": False}}
            self.lazy[key] = doc
            self.shared.append(doc)
        return doc["id"]

    # -- patch catalog --------------------------------------------------------------------------

    def _patch_catalog(self) -> dict[str, list[dict]]:
        """Per OS family, the updates an assessment can find, relative to now: this month's and last
        month's cumulative updates, .NET, MSRT, Defender intelligence and platform updates, …"""
        now = self.now

        def patch_tuesday(months_back: int) -> datetime:
            y, m = now.year, now.month - months_back
            while m < 1:
                y, m = y - 1, m + 12
            first = datetime(y, m, 1, 17, 0, tzinfo=UTC)
            return first + timedelta(days=(1 - first.weekday()) % 7 + 7)

        def kb(month: datetime, offset: int) -> str:
            n = (month.year - 2024) * 12 + month.month - 1
            return str(5044000 + n * 1750 + offset)

        names = {"2012r2": ("Security Monthly Quality Rollup for Windows Server 2012 R2 for x64-based Systems", 0),
                 "2016": ("Cumulative Update for Windows Server 2016 for x64-based Systems", 11),
                 "2019": ("Cumulative Update for Windows Server 2019 for x64-based Systems", 23),
                 "2022": ("Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems", 37),
                 "2025": ("Cumulative Update for Microsoft server operating system version 24H2 for x64-based Systems", 49)}
        rnd = self.rnd
        catalog: dict[str, list[dict]] = {}
        back = 0 if patch_tuesday(0) <= now else 1  # this month's, once released
        latest, previous = patch_tuesday(back), patch_tuesday(back + 1)
        for fam, (title, off) in names.items():
            items = []
            for when, sup in ((latest, False), (previous, True)):
                k = kb(when, off)
                items.append({"patchId": rnd.uuid(), "name": f"{when:%Y-%m} {title} (KB{k})", "kbId": k,
                              "classifications": ["Security"], "rebootBehavior": "CanRequestReboot",
                              "published": when, "superseded": sup, "lcu": True})
            k = kb(latest, off + 5)
            items.append({"patchId": rnd.uuid(),
                          "name": f"{latest:%Y-%m} Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for "
                                  f"{'Windows Server 2012 R2' if fam == '2012r2' else 'Windows Server ' + fam} (KB{k})",
                          "kbId": k, "classifications": ["Security"], "rebootBehavior": "CanRequestReboot",
                          "published": latest})
            if fam in ("2016", "2012r2"):
                k = kb(latest, off + 7)
                items.append({"patchId": rnd.uuid(), "name": f"{latest:%Y-%m} Servicing Stack Update for Windows Server "
                                                            f"{'2012 R2' if fam == '2012r2' else fam} for x64-based Systems (KB{k})",
                              "kbId": k, "classifications": ["Critical"], "rebootBehavior": "NeverReboots",
                              "published": latest})
            k = kb(previous, off + 9)
            items.append({"patchId": rnd.uuid(),
                          "name": f"Update for Windows Server {'2012 R2' if fam == '2012r2' else fam} for x64-based Systems (KB{k})",
                          "kbId": k, "classifications": ["Critical"], "rebootBehavior": "CanRequestReboot",
                          "published": previous + timedelta(days=9)})
            catalog[fam] = items
        common = [
            {"patchId": rnd.uuid(), "name": f"Windows Malicious Software Removal Tool x64 - v5.{131 + (latest.year - 2025) * 12 + latest.month} (KB890830)",
             "kbId": "890830", "classifications": ["UpdateRollUp"], "rebootBehavior": "CanRequestReboot", "published": latest},
            {"patchId": rnd.uuid(),
             "name": f"Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.4{(latest.year - 2020) * 12 + latest.month:02d}.{rnd.r.randint(100, 999)}.0)",
             "kbId": "2267602", "classifications": ["Definition"], "rebootBehavior": "NeverReboots",
             "published": now - timedelta(hours=30)},
            {"patchId": rnd.uuid(), "name": "Update for Microsoft Defender Antivirus antimalware platform - KB4052623 "
                                            f"(Version 4.18.{(latest.year - 2000) * 100 + latest.month}.{rnd.r.randint(1, 9)})",
             "kbId": "4052623", "classifications": ["Updates"], "rebootBehavior": "NeverReboots",
             "published": latest - timedelta(days=6)},
            {"patchId": rnd.uuid(), "name": "Microsoft Edge-Stable Channel Version 14{0} Update for x64 based Editions (Build 14{0}.0.3{1}.{2})".format(
                latest.month % 10, rnd.r.randint(100, 999), rnd.r.randint(10, 99)),
             "kbId": "", "classifications": ["Updates"], "rebootBehavior": "NeverReboots", "published": latest + timedelta(days=2)},
        ]
        for fam in catalog:
            catalog[fam] += [dict(p) for p in common]
        return catalog

    # -- naming ---------------------------------------------------------------------------------

    def unique(self, name: str) -> str:
        base, n = name, 1
        while name.lower() in self.used_names:
            n += 1
            name = f"{base[:13]}{n}"
        self.used_names.add(name.lower())
        return name


# ---- profiles ------------------------------------------------------------------------------------


def _digits(size: int) -> int:
    return max(4, len(str(size - 1)))


def _new_profile(b: _Builder, kind: str, idx: int) -> dict:
    """The random facts of one server (before any coverage scenario is applied)."""
    r = b.r
    vm = kind == "vm"
    sub = _pick_sub(b, vm)
    env = _weighted(r, _ENVS)
    prod = env == "prd"
    # how well this server is looked after: drives most of what follows
    care = _weighted(r, (("high", 45 if prod else 25), ("medium", 35), ("low", 20 if prod else 40)))
    hi, med = care == "high", care == "medium"
    role = _weighted(r, _VM_ROLE_WEIGHTS if vm else _ARC_ROLE_WEIGHTS)
    os_key = _weighted(r, _VM_OS_WEIGHTS if vm else _ARC_OS_WEIGHTS)
    p: dict[str, Any] = {"kind": kind, "idx": idx, "sub": sub, "env": env, "care": care, "role": role, "os": os_key}
    width = _digits(b.size)

    if vm:
        p["location"] = r.choice(sub.regions)
        p["name"] = b.unique(f"{role}-{env}-{idx:0{width}d}")
        p["rg"] = f"rg-{role}-{env}-{p['location'][:6]}"
        p["power"] = _weighted(r, (("running", 84), ("deallocated", 11), ("stopped", 3), ("starting", 0.6)))
        p["prov_failed"] = r.random() < 0.004
        p["agent"] = "Ready" if r.random() < 0.96 else "Not Ready"
        p["security"] = _weighted(r, ((None, 30), ("TrustedLaunch", 55 if _OS[os_key][5] else 0), ("Standard", 10),
                                      ("ConfidentialVM", 1.5 if os_key in ("2022", "2019") else 0)))
        p["identity"] = "system" if r.random() < (0.9 if hi else 0.6 if med else 0.25) else "none"
        if p["identity"] == "system" and r.random() < 0.08:
            p["identity"] = "both"
        p["ahb"] = r.random() < 0.45
        p["domain_joined"] = role in ("dc", "fs", "sql", "pki", "adfs", "prt", "rds", "wsus") or r.random() < 0.55
    else:
        p["cloud"] = _weighted(r, (("hyperv", 30), ("physical", 15), ("vmware", 35), ("aws", 12), ("gcp", 8)))
        p["location"] = r.choice(sub.regions)
        p["rg"] = f"rg-arc-{p['cloud'] if p['cloud'] in ('aws', 'gcp') else 'onprem'}-{env}"
        site = r.choice(_SITES)
        p["site"] = site
        if p["cloud"] == "aws":
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            p["name"] = b.unique("EC2AMAZ-" + "".join(r.choice(alphabet) for _ in range(7)))
        elif p["cloud"] == "gcp":
            p["name"] = b.unique(f"gcp-{role}-{idx:0{width}d}")
        else:
            p["name"] = b.unique(f"{site[0]}{role.upper()}{idx:0{width}d}")
        p["status"] = _weighted(r, (("Connected", 86), ("Disconnected", 8), ("Expired", 4), ("Error", 2)))
        p["agent_old"] = r.random() < (0.12 if hi else 0.3)
        p["ext_enabled"] = r.random() > 0.02
        p["gc_enabled"] = r.random() > 0.03
        p["identity"] = "system" if r.random() < 0.93 else "none"
        p["domain_joined"] = p["cloud"] not in ("aws", "gcp") or r.random() < 0.6
        p["esu"] = os_key == "2012r2" and r.random() < 0.7
    p["tags"] = _weighted(r, (("all", 70 if hi else 45 if med else 20), ("some", 20), ("none", 10 if hi else 30)))

    # extensions
    exts: dict[str, str] = {}
    standard_sub = sub.tier[0] == "Standard"
    p["pricing_override"] = None
    if standard_sub and r.random() < 0.02:
        p["pricing_override"] = "Free"
    elif not standard_sub and r.random() < 0.04:
        p["pricing_override"] = "Standard"
    defended = (p["pricing_override"] or sub.tier[0]) == "Standard"
    if r.random() < (0.93 if hi else 0.7 if med else 0.35):
        exts["ama"] = "Succeeded"
    old_os = os_key in ("2012r2", "2016")
    if r.random() < (0.35 if old_os else 0.08) * (1.5 if care == "low" else 1):
        exts["mma"] = "Succeeded"
    if defended and r.random() < (0.95 if hi else 0.8):
        exts["mde"] = "Succeeded"
    elif not defended and r.random() < 0.04:
        exts["mde"] = "Succeeded"  # left over from a trial
    if r.random() < (0.35 if hi else 0.15):
        exts["wac"] = "Succeeded"
    if "ama" in exts and r.random() < (0.6 if hi else 0.3):
        exts["ct"] = "Succeeded"
    if "ama" in exts and r.random() < (0.45 if hi else 0.2):
        exts["dep"] = "Succeeded"
    if r.random() < 0.15:
        exts["cse"] = "Succeeded"
    if vm:
        if r.random() < (0.85 if hi else 0.55 if med else 0.2):
            exts["gc"] = "Succeeded"
        if p["identity"] != "none" and r.random() < (0.3 if hi else 0.1):
            exts["aad"] = "Succeeded"
        if old_os and r.random() < 0.25:
            exts["iaasam"] = "Succeeded"
    # some installs fail, a few never settle
    for k in exts:
        x = r.random()
        if x < 0.035:
            exts[k] = "Failed"
        elif x < 0.045:
            exts[k] = "Creating"
    if not vm and not p["ext_enabled"]:
        exts = {k: v for k, v in exts.items() if r.random() < 0.3}  # installed before extensions were disabled
    p["exts"] = exts

    # data collection rule associations
    dcrs: list[str] = []
    if "ama" in exts or r.random() < 0.05:  # a policy can associate before the agent is in place
        if r.random() < (0.85 if hi else 0.5):
            dcrs.append("insights" if "dep" in exts or r.random() < 0.5 else "perf")
        if "ct" in exts and r.random() < 0.9:
            dcrs.append("ct")
        if r.random() < (0.7 if hi else 0.35):
            dcrs.append("sentinel")
        elif r.random() < 0.08:
            dcrs.append("secaudit")
    p["dcrs"] = dcrs

    # guest configuration and policy
    n_gc = 0 if r.random() < (0.1 if hi else 0.35 if med else 0.7) else 1 if r.random() < 0.75 else 2
    ready = (exts.get("gc") == "Succeeded" and p["identity"] != "none") if vm else p["gc_enabled"]
    statuses = []
    for _ in range(n_gc):
        if not ready:
            statuses.append("Pending")
        else:
            statuses.append(_weighted(r, (("Compliant", 70), ("NonCompliant", 25), ("Pending", 5))))
    p["gc"] = statuses
    p["unhealthy"] = 0
    if defended and r.random() < 0.28:
        p["unhealthy"] = r.randint(1, 3)

    # updates
    periodic = r.random() < (0.9 if hi else 0.55 if med else 0.15)
    p["assess_mode"] = "AutomaticByPlatform" if periodic else "ImageDefault"
    if vm:
        p["patch_mode"] = (_weighted(r, (("AutomaticByPlatform", 60), ("AutomaticByOS", 25), ("Manual", 15))) if periodic
                           else _weighted(r, (("AutomaticByOS", 70), ("Manual", 30))))
    else:
        p["patch_mode"] = (_weighted(r, (("AutomaticByPlatform", 55), ("AutomaticByOS", 25), ("Manual", 20))) if periodic
                           else _weighted(r, (("AutomaticByOS", 50), ("ImageDefault", 30), ("Manual", 20))))
    if periodic:
        p["assessment"] = _weighted(r, (("ok", 55), ("critical", 25), ("reboot", 8), ("stale", 8), ("failed", 4)))
    else:
        p["assessment"] = None if r.random() < 0.6 else _weighted(r, (("stale", 50), ("ok", 20), ("critical", 30)))
    p["installs"] = r.random() < 0.5 if p["assessment"] else False
    if p["assessment"] and r.random() < 0.7 and (vm or p["ext_enabled"]):
        exts["patch"] = "Failed" if p["assessment"] == "failed" and r.random() < 0.5 else "Succeeded"
    p["hotpatch"] = None
    if vm and os_key in ("2022ae-hotpatch", "2025ae") and r.random() < 0.8:
        p["hotpatch"] = "on"
    elif not vm and os_key == "2025" and r.random() < 0.35:
        p["hotpatch"] = "on" if r.random() < 0.75 else "pending"
    if p["hotpatch"] == "on" and vm:
        p["patch_mode"], p["assess_mode"] = "AutomaticByPlatform", "AutomaticByPlatform"
    p["maintenance"] = (r.randrange(3) if p["patch_mode"] == "AutomaticByPlatform" and r.random() < 0.6 else None)
    p["automanage"] = None
    if r.random() < 0.08:
        p["automanage"] = "Compliant" if r.random() < 0.7 else "NonCompliant"

    # protection
    backup_p = (0.9 if hi else 0.6 if med else 0.2) * (1 if vm else 0.55)
    p["backup"] = (_weighted(r, (("ok", 80), ("stale", 5), ("failed", 6), ("error", 4), ("stopped", 3), ("irpending", 2)))
                   if r.random() < backup_p else None)
    p["asr"] = (_weighted(r, (("Normal", 85), ("Warning", 10), ("Critical", 5)))
                if r.random() < (0.2 if prod and hi else 0.04) else None)
    p["filesync"] = ("fresh" if r.random() < 0.85 else "stale") if role == "fs" and r.random() < 0.6 else None
    if p["filesync"] is None and r.random() < 0.01:
        p["filesync"] = "fresh"
    p["fail_types"] = [] if r.random() > 0.01 else [r.choice(("MDE.Windows", "AzureMonitorWindowsAgent", "AdminCenter"))]
    return p


def _pick_sub(b: _Builder, vm: bool) -> _Sub:
    return b.r.choices(b.subs, cum_weights=b.cum_vm if vm else b.cum_arc)[0]


# ---- coverage scenarios ------------------------------------------------------------------------
#
# One scenario per server, for the first servers of each kind: each sets the facts that put one
# column (or one extra dimension: OS, power state, Arc status, …) in one state, whatever else the
# server has. The list is ordered so that the most-asked-for states come first.


def _set_defender(p: dict, tier: str) -> None:
    p["pricing_override"] = None if p["sub"].tier[0] == tier else tier


def _force(p: dict, key: str) -> None:
    feature, _, state = key.partition(":")
    state, _, variant = state.partition(":")
    exts: dict[str, str] = p["exts"]
    vm = p["kind"] == "vm"
    if feature == "policy":
        if state == "off":
            p["gc"] = []
            exts.pop("gc", None)
            return
        if vm:
            exts["gc"] = "Succeeded"
            if p["identity"] == "none":
                p["identity"] = "system"
        else:
            p["gc_enabled"] = True
        if state == "on":
            p["gc"] = ["Compliant", "Compliant"]
        elif variant == "prereq":
            if vm:
                exts.pop("gc", None)
            else:
                p["gc_enabled"] = False
            p["gc"] = ["Pending"]
        elif variant == "pending":
            p["gc"] = ["Compliant", "Pending"]
        else:
            p["gc"] = ["Compliant", "NonCompliant"]
    elif feature == "tags":
        p["tags"] = {"on": "all", "partial": "some", "off": "none"}[state]
        if state == "off" and variant:
            p["tags"] = "null"
    elif feature == "defender":
        if state == "on":
            _set_defender(p, "Standard")
            exts["mde"] = "Succeeded"
            p["unhealthy"] = 0
        elif state == "partial":
            _set_defender(p, "Standard")
            if variant == "unhealthy":
                exts["mde"] = "Succeeded"
                p["unhealthy"] = 2
            elif variant == "override":  # a resource-level Standard pricing in a Free subscription, no MDE yet
                p["pricing_override"] = "Standard"
                exts.pop("mde", None)
                p["unhealthy"] = 0
            else:
                exts["mde"] = "Failed"
        else:
            _set_defender(p, "Free")
            if variant == "override":
                p["pricing_override"] = "Free"
            else:  # and installing Defender for Endpoint here fails (the simulator's failExtensionTypes)
                p["fail_types"] = ["MDE.Windows"]
            exts.pop("mde", None)
    elif feature == "sentinel":
        p["dcrs"] = [d for d in p["dcrs"] if d not in ("sentinel", "secaudit")]
        if state == "on":
            exts["ama"] = "Succeeded"
            p["dcrs"].append("sentinel")
        elif state == "partial":
            if variant == "otherws":
                exts["ama"] = "Succeeded"
                p["dcrs"].append("secaudit")
            else:
                exts.pop("ama", None)
                p["dcrs"].append("sentinel")
    elif feature == "backup":
        p["backup"] = {"on": variant or "ok", "partial": variant or "error", "off": None}[state]
        if state == "on" and not vm:
            _online(p)
    elif feature == "siterecovery":
        p["asr"] = {"on": "Normal", "partial": variant or "Warning", "off": None}[state]
    elif feature == "confidential":
        if state == "on":
            p["security"] = "ConfidentialVM"
            if p["os"] not in ("2019", "2022"):
                p["os"] = "2022"
        else:
            p["security"] = {"trustedlaunch": "TrustedLaunch", "standard": "Standard"}.get(variant)
            if p["security"] == "TrustedLaunch" and not _OS[p["os"]][5]:
                p["os"] = "2022"
    elif feature == "updates":
        if state == "off":
            p["assess_mode"], p["assessment"], p["installs"] = "ImageDefault", None, False
            if p["patch_mode"] == "AutomaticByPlatform":
                p["patch_mode"] = "AutomaticByOS"
            p["maintenance"] = None
            if vm and p["hotpatch"]:
                p["hotpatch"] = None
        else:
            p["assess_mode"] = "AutomaticByPlatform"
            p["assessment"] = "ok" if state == "on" else (variant or "critical")
            if state == "on":
                _online(p)
    elif feature == "changetracking":
        p["dcrs"] = [d for d in p["dcrs"] if d != "ct"]
        if state == "on":
            exts["ct"] = exts["ama"] = "Succeeded"
            p["dcrs"].append("ct")
        elif state == "partial":
            exts["ct"] = "Succeeded"
            if variant == "failed":
                exts["ct"] = "Failed"
                exts["ama"] = "Succeeded"
                p["dcrs"].append("ct")
        else:
            exts.pop("ct", None)
    elif feature == "automanage":
        if state == "on":
            if variant == "hotpatch":
                _hotpatch_on(p)
                p["automanage"] = None
            else:
                p["automanage"] = "Compliant"
        elif state == "partial":
            p["automanage"] = None if variant == "hotpatch" else "NonCompliant"
            if variant == "hotpatch":  # Arc WS2025: enrolled, but the machine needs action (VBS off, …)
                p["os"], p["hotpatch"] = "2025", "pending"
            elif p["hotpatch"] == "on":
                p["hotpatch"] = None
        else:
            p["automanage"] = None
            p["hotpatch"] = None
    elif feature == "extensions":
        if state == "on":
            if not vm:
                p["ext_enabled"] = True
            for k in exts:
                exts[k] = "Succeeded"
            if not exts:
                exts["ama"] = "Succeeded"
        elif state == "partial":
            if not vm:
                p["ext_enabled"] = True
            if variant == "creating":
                exts["cse"] = "Creating"
            else:
                exts["wac" if "wac" in exts else "cse"] = "Failed"
        elif variant == "disabled":
            p["ext_enabled"] = False
            exts.clear()
        else:
            exts.clear()
            if not vm:
                p["ext_enabled"] = True
    elif feature == "wac":
        if state == "off":
            exts.pop("wac", None)
        else:
            exts["wac"] = "Succeeded" if state == "on" else "Failed"
    elif feature == "runcommand":
        if vm:
            p["prov_failed"] = False
            if state == "on":
                p["power"], p["agent"] = "running", "Ready"
            elif state == "partial":
                if variant == "notready":
                    p["power"], p["agent"] = "running", "Not Ready"
                else:
                    p["power"] = "starting"
            else:
                p["power"] = variant or "deallocated"
        else:
            p["status"] = {"on": "Connected", "partial": "Error", "off": variant or "Disconnected"}[state]
    elif feature == "monitor":
        for k in ("ama", "mma"):
            exts.pop(k, None)
        if state == "on":
            exts["ama"] = "Succeeded"
            if variant == "mma":
                exts["mma"] = "Succeeded"
            if not p["dcrs"]:
                p["dcrs"] = ["perf"]
        elif state == "partial":
            if variant == "nodcr":
                exts["ama"] = "Succeeded"
                p["dcrs"] = []
            elif variant == "mma":
                exts["mma"] = "Succeeded"
                p["dcrs"] = []
            else:
                exts["ama"] = "Failed"
        else:
            p["dcrs"] = []
            p["fail_types"] = ["AzureMonitorWindowsAgent"]  # an agent install that will fail
    elif feature == "entra":
        if state == "on":
            exts["aad"] = "Succeeded"
            if p["identity"] == "none":
                p["identity"] = "system"
        elif state == "partial":
            if variant == "noidentity":
                exts["aad"] = "Succeeded"
                p["identity"] = "none"
            else:
                exts["aad"] = "Failed"
        else:
            exts.pop("aad", None)
    elif feature == "identity":
        p["identity"] = {"on": variant or "system", "off": "none"}[state]
        if state == "off" and vm and exts.get("aad") == "Succeeded":
            exts["aad"] = "Failed"
    elif feature == "filesync":
        p["filesync"] = {"on": "fresh", "partial": "stale", "off": None}[state]
        if state == "on":
            _online(p)
    elif feature == "os":
        p["os"] = state
        if p["os"] in ("2022ae-hotpatch", "2025ae") and vm:
            _hotpatch_on(p)
        if vm and p.get("security") == "ConfidentialVM" and state not in ("2019", "2022"):
            p["security"] = "TrustedLaunch"
        if vm and p.get("security") == "TrustedLaunch" and not _OS[state][5]:
            p["security"] = None
    elif feature == "power":
        p["power"], p["prov_failed"] = state, False
    elif feature == "provisioning":
        p["prov_failed"], p["power"], p["agent"] = True, "running", "Not Ready"
    elif feature == "arcstatus":
        p["status"] = state
    elif feature == "arckind":
        p["cloud"] = state
    elif feature == "arcagent":
        p["agent_old"] = state == "old"
    elif feature == "extstate":
        exts["dep" if state == "Creating" else "cse"] = state
    else:  # pragma: no cover - a typo in a plan
        raise ValueError(f"unknown coverage scenario {key!r}")


def _online(p: dict) -> None:
    """The machine is up and its agent reports (a target that needs fresh data from inside it)."""
    if p["kind"] == "vm":
        p["power"], p["agent"], p["prov_failed"] = "running", "Ready", False
    else:
        p["status"] = "Connected"


def _hotpatch_on(p: dict) -> None:
    if p["kind"] == "vm":
        if p["os"] not in ("2022ae-hotpatch", "2025ae"):
            p["os"] = "2022ae-hotpatch"
        p["patch_mode"] = p["assess_mode"] = "AutomaticByPlatform"
        if p.get("security") == "ConfidentialVM":
            p["security"] = "TrustedLaunch"
    else:
        p["os"] = "2025"
    p["hotpatch"] = "on"


_COMMON_PLAN = (
    "policy:on", "policy:partial", "policy:off", "policy:partial:pending", "policy:partial:prereq",
    "tags:on", "tags:partial", "tags:off",
    "defender:on", "defender:partial", "defender:off", "defender:partial:unhealthy", "defender:partial:override",
    "defender:off:override",
    "sentinel:on", "sentinel:partial", "sentinel:off", "sentinel:partial:otherws",
    "backup:on", "backup:partial", "backup:off", "backup:partial:stopped", "backup:partial:failed",
    "backup:partial:stale", "backup:on:irpending",
    "siterecovery:on", "siterecovery:partial", "siterecovery:off", "siterecovery:partial:Critical",
    "updates:on", "updates:partial", "updates:off", "updates:partial:stale", "updates:partial:failed",
    "updates:partial:reboot",
    "changetracking:on", "changetracking:partial", "changetracking:off", "changetracking:partial:failed",
    "automanage:on", "automanage:partial", "automanage:off", "automanage:on:hotpatch",
    "extensions:on", "extensions:partial", "extensions:off", "extensions:partial:creating",
    "wac:on", "wac:partial", "wac:off",
    "runcommand:on", "runcommand:partial", "runcommand:off",
    "monitor:on", "monitor:partial", "monitor:off", "monitor:partial:nodcr", "monitor:partial:mma", "monitor:on:mma",
    "identity:on", "identity:off",
    "filesync:on", "filesync:partial", "filesync:off",
    "extstate:Failed", "extstate:Creating",
)
_PLAN_VM = (
    *_COMMON_PLAN,
    "confidential:on", "confidential:off:trustedlaunch", "confidential:off:standard", "confidential:off",
    "entra:on", "entra:partial", "entra:off", "entra:partial:noidentity", "identity:on:both",
    "runcommand:partial:notready", "runcommand:off:stopped",
    "power:running", "power:stopped", "power:deallocated", "power:starting", "provisioning:failed",
    *(f"os:{k}" for k in _OS),
)
_PLAN_ARC = (
    *_COMMON_PLAN,
    "automanage:partial:hotpatch", "extensions:off:disabled", "runcommand:off:Expired", "tags:off:null",
    "arcstatus:Connected", "arcstatus:Disconnected", "arcstatus:Expired", "arcstatus:Error",
    "arckind:hyperv", "arckind:physical", "arckind:vmware", "arckind:aws", "arckind:gcp",
    "arcagent:old", "arcagent:current",
    *(f"os:{k}" for k in ("2012r2", "2016", "2019", "2022", "2025")),
)


# ---- rendering ---------------------------------------------------------------------------------


def _tags(b: _Builder, p: dict) -> dict | None:
    r, mode = b.r, p["tags"]
    sub: _Sub = p["sub"]
    if mode == "null":
        return None
    tags: dict[str, str] = {}
    if mode == "all":
        keys = list(REQUIRED_TAGS)
    elif mode == "some":
        keys = r.sample(REQUIRED_TAGS, r.randint(1, 2))
    else:
        keys = []
    for key in REQUIRED_TAGS:
        if key not in keys:
            continue
        if key == "env":
            tags["env"] = _ENV_TAG[p["env"]]
        elif key == "owner":
            tags["owner"] = r.choice(_OWNERS).format(d=sub.mail)
        else:
            tags["costCenter"] = f"CC-{r.randint(1000, 9999)}"
    if mode == "none" and r.random() < 0.5:
        return {} if p["kind"] == "arc" else None
    for key, values in _OPTIONAL_TAGS:
        if r.random() < 0.3:
            tags[key] = r.choice(values)
    if mode == "some" and r.random() < 0.25:  # a required key present but empty: still missing
        missing = [k for k in REQUIRED_TAGS if k not in tags]
        if missing:
            tags[missing[0]] = ""
    return tags


def _os_version(b: _Builder, p: dict) -> str:
    _, _, _, build, (lo, hi), _ = _OS[p["os"]]
    ubr = b.r.randint(lo, hi)
    if p["kind"] == "arc" and p["agent_old"]:
        ubr = max(lo, ubr - (hi - lo) // 2)
    return f"{build}.{ubr}"


def _ext_status_vm(key: str, state: str, when: str) -> list[dict]:
    if state == "Succeeded":
        st = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": when}
        if key in _EXT_OK_MESSAGES:
            st["message"] = _EXT_OK_MESSAGES[key]
        return [st]
    if state == "Failed":
        return [{"code": "ProvisioningState/failed/-2147024894" if key != "cse" else "ProvisioningState/failed/3",
                 "level": "Error", "displayStatus": "Provisioning failed", "message": _EXT_FAIL_MESSAGES[key], "time": when}]
    return [{"code": "ProvisioningState/transitioning", "level": "Info", "displayStatus": "Transitioning",
             "message": "Enable in progress", "time": when}]


def _ext_settings(b: _Builder, p: dict, key: str, mid: str) -> dict | None:
    sub: _Sub = p["sub"]
    if key == "mma":
        return {"workspaceId": _customer_id(b, sub), "stopOnMultipleConnections": True}
    if key == "mde":
        return {"azureResourceId": mid, "vNextEnabled": "true", "forceReOnboarding": False,
                "provisionedBy": "Microsoft.Security", "autoUpdate": True}
    if key == "aad":
        return {"mdmId": ""}
    if key == "wac":
        return {"port": "6516"}
    if key == "dep":
        return {"enableAMA": "true"}
    if key == "cse":
        return {"fileUris": [f"https://st{sub.short}deploy.blob.core.windows.net/scripts/configure-{p['role']}.ps1"],
                "commandToExecute": f"powershell.exe -ExecutionPolicy Bypass -File configure-{p['role']}.ps1"}
    if key == "iaasam":
        return {"AntimalwareEnabled": True, "RealtimeProtectionEnabled": "true",
                "ScheduledScanSettings": {"isEnabled": "true", "scanType": "Quick", "day": "7", "time": "120"}}
    return None


def _customer_id(b: _Builder, sub: _Sub) -> str:
    key = ("customerId", sub.id)
    if key not in b.lazy:
        ws_id = sub.infra["workspaces"]["ops"]
        doc = next(d for d in b.shared if d["id"] == ws_id)
        b.lazy[key] = {"value": doc["properties"]["customerId"]}
    return b.lazy[key]["value"]


def _extensions(b: _Builder, p: dict, mid: str, mtype: str) -> list[dict]:
    rnd, r = b.rnd, b.r
    vm = p["kind"] == "vm"
    out = []
    for key, state in p["exts"].items():
        vm_name, arc_name, publisher, etype, handler, installed, auto_upgrade, _ = _EXT[key]
        name = vm_name if vm else arc_name
        when = rnd.days_ago(0.2, 120)
        version = r.choice(installed)
        props: dict[str, Any] = {"publisher": publisher, "type": etype, "typeHandlerVersion": handler,
                                 "autoUpgradeMinorVersion": True}
        if auto_upgrade:
            props["enableAutomaticUpgrade"] = True
        settings = _ext_settings(b, p, key, p["id"])
        if settings is not None:
            props["settings"] = settings
        props["provisioningState"] = state
        if vm:
            props["instanceView"] = {"name": name, "type": f"{publisher}.{etype}", "typeHandlerVersion": version,
                                     "statuses": _ext_status_vm(key, state, when)}
        elif state != "Creating":
            ok = state == "Succeeded"
            props["instanceView"] = {"name": name, "type": etype, "typeHandlerVersion": version,
                                     "status": {"code": "success" if ok else "failed",
                                                "level": "Information" if ok else "Error",
                                                "displayStatus": "Provisioning succeeded" if ok else "Provisioning failed",
                                                "message": (_EXT_OK_MESSAGES.get(key, f"Extension Message: {etype} "
                                                                                     "enabled successfully.")
                                                            if ok else _EXT_FAIL_MESSAGES[key]),
                                                "time": when}}
        out.append({"id": f"{mid}/extensions/{name}", "name": name, "type": f"{mtype}/extensions",
                    "location": p["location"], "properties": props})
    return out


def _vm_doc(b: _Builder, p: dict) -> dict:
    rnd, r = b.rnd, b.r
    sub: _Sub = p["sub"]
    name, loc = p["name"], p["location"]
    rg = f"/subscriptions/{sub.id}/resourceGroups/{p['rg']}"
    mid = p["id"]
    sku, os_name, _, _, _, gen2 = _OS[p["os"]]
    image = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": sku, "version": "latest"}
    cvm = p["security"] == "ConfidentialVM"
    if cvm:
        # the marketplace's confidential images: offer windows-cvm, the SKU names the version
        image = {"publisher": "MicrosoftWindowsServer", "offer": "windows-cvm",
                 "sku": "2019-datacenter-cvm" if p["os"] == "2019" else "2022-datacenter-cvm", "version": "latest"}
    os_version = _os_version(b, p)
    build, ubr = os_version.rsplit(".", 2)[-2:]
    image["exactVersion"] = f"{build}.{ubr}.{(b.now - timedelta(days=r.randint(20, 400))):%y%m%d}"
    managed_disk: dict[str, Any] = {"storageAccountType": r.choice(("Premium_LRS", "Premium_LRS", "StandardSSD_LRS")),
                                    "id": f"{rg}/providers/Microsoft.Compute/disks/{name}_OsDisk_1_{rnd.hex(32)}"}
    if cvm:
        managed_disk["securityProfile"] = {"securityEncryptionType": "DiskWithVMGuestState"}
    data_disks = []
    for lun in range(r.choice((0, 0, 1, 1, 2)) if p["role"] in ("sql", "fs", "bi", "erp") else r.choice((0, 0, 0, 1))):
        data_disks.append({"lun": lun, "name": f"{name}-data{lun}", "createOption": "Attach", "caching": "ReadOnly",
                           "diskSizeGB": r.choice((128, 256, 512, 1024)), "deleteOption": "Detach",
                           "managedDisk": {"storageAccountType": "Premium_LRS",
                                           "id": f"{rg}/providers/Microsoft.Compute/disks/{name}-data{lun}"}})
    patch_settings: dict[str, Any] = {"patchMode": p["patch_mode"], "assessmentMode": p["assess_mode"]}
    if p["patch_mode"] == "AutomaticByPlatform":
        patch_settings["enableHotpatching"] = p["hotpatch"] == "on"
        patch_settings["automaticByPlatformSettings"] = {
            "rebootSetting": "IfRequired", "bypassPlatformSafetyChecksOnUserSchedule": p["maintenance"] is not None}
    elif p["os"] in ("2022ae-hotpatch", "2025ae"):
        patch_settings["enableHotpatching"] = False
    props: dict[str, Any] = {
        "vmId": rnd.uuid(),
        "hardwareProfile": {"vmSize": r.choice(_CVM_SIZES) if cvm else r.choice(_VM_SIZES)},
        "storageProfile": {"imageReference": image,
                           "osDisk": {"osType": "Windows", "name": managed_disk["id"].rsplit("/", 1)[1],
                                      "createOption": "FromImage", "caching": "ReadWrite", "managedDisk": managed_disk,
                                      "deleteOption": "Delete", "diskSizeGB": 127},
                           "dataDisks": data_disks},
        "osProfile": {"computerName": p["computer"], "adminUsername": "azureadmin",
                      "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": p["patch_mode"] != "Manual",
                                               "patchSettings": patch_settings},
                      "secrets": [], "allowExtensionOperations": True},
        "networkProfile": {"networkInterfaces": [{"id": f"{rg}/providers/Microsoft.Network/networkInterfaces/{name}-nic01",
                                                  "properties": {"deleteOption": "Delete"}}]},
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
    }
    if p["security"] is not None:
        sp: dict[str, Any] = {"securityType": p["security"]}
        if p["security"] in ("TrustedLaunch", "ConfidentialVM"):
            sp["uefiSettings"] = {"secureBootEnabled": True, "vTpmEnabled": True}
        props["securityProfile"] = sp
    if p["ahb"]:
        props["licenseType"] = "Windows_Server"
    props["provisioningState"] = "Failed" if p["prov_failed"] else "Succeeded"
    props["timeCreated"] = b.rnd.days_ago(30, 1500)[:-1] + "+00:00"
    props["instanceView"] = _vm_instance_view(b, p, os_name, os_version, gen2)
    doc: dict[str, Any] = {"id": mid, "name": name, "type": VM_TYPE, "location": loc}
    tags = _tags(b, p)
    if tags is not None:
        doc["tags"] = tags
    if p["identity"] != "none":
        ident: dict[str, Any] = {"type": "SystemAssigned", "principalId": rnd.uuid(), "tenantId": sub.tenant}
        if p["identity"] == "both":
            ident["type"] = "SystemAssigned, UserAssigned"
            uai = f"/subscriptions/{sub.id}/resourceGroups/rg-identity/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{p['role']}-{p['env']}"
            ident["userAssignedIdentities"] = {uai: {"principalId": rnd.uuid(), "clientId": rnd.uuid()}}
        doc["identity"] = ident
    if r.random() < 0.35:
        doc["zones"] = [r.choice(("1", "2", "3"))]
    doc["properties"] = props
    return doc


def _vm_instance_view(b: _Builder, p: dict, os_name: str, os_version: str, gen2: bool) -> dict:
    rnd, r = b.rnd, b.r
    power = p["power"]
    iv: dict[str, Any] = {}
    reporting = power in ("running", "stopped", "starting") and not (power == "starting" and r.random() < 0.5)
    if reporting or p["prov_failed"]:
        iv["computerName"] = p["computer"]
        iv["osName"] = os_name
        iv["osVersion"] = os_version
    iv["hyperVGeneration"] = "V2" if gen2 or p["security"] in ("TrustedLaunch", "ConfidentialVM") else "V1"
    if power != "deallocated":
        if power == "running" and p["agent"] == "Ready" and not p["prov_failed"]:
            st = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
                  "message": "GuestAgent is running and processing the extensions.", "time": rnd.ago(5, 600)}
        else:
            st = {"code": "ProvisioningState/Unavailable", "level": "Warning", "displayStatus": "Not Ready",
                  "message": "VM Agent is unresponsive.", "time": rnd.ago(600, 86400 * 3)}
        iv["vmAgent"] = {"vmAgentVersion": r.choice(_VM_AGENTS) if reporting else "Unknown", "statuses": [st]}
    if p["prov_failed"]:
        prov = {"code": "ProvisioningState/failed/OSProvisioningTimedOut", "level": "Error",
                "displayStatus": "Provisioning failed",
                "message": f"OS Provisioning for VM '{p['name']}' did not finish in the allotted time. The VM may still "
                           "finish provisioning successfully. Please check provisioning state later.",
                "time": rnd.days_ago(0.5, 20)}
    else:
        prov = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
                "time": rnd.days_ago(0.5, 90)}
    display = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated", "starting": "VM starting"}
    iv["statuses"] = [prov, {"code": f"PowerState/{power}", "level": "Info", "displayStatus": display[power]}]
    summary = p.get("_summary")
    if summary is not None:
        ps: dict[str, Any] = {"availablePatchSummary": {
            "status": summary["status"], "assessmentActivityId": summary["assessmentActivityId"],
            "rebootPending": summary["rebootPending"], "criticalAndSecurityPatchCount": summary["_critsec"],
            "otherPatchCount": summary["_other"], "startTime": summary["startDateTime"],
            "lastModifiedTime": summary["lastModifiedDateTime"],
            "error": summary["errorDetails"]}}
        last = p.get("_last_install")
        if last is not None:
            ps["lastPatchInstallationSummary"] = {
                k: last[k] for k in ("status", "installationActivityId", "maintenanceWindowExceeded", "notSelectedPatchCount",
                                     "excludedPatchCount", "pendingPatchCount", "installedPatchCount", "failedPatchCount")}
            ps["lastPatchInstallationSummary"]["startTime"] = last["startDateTime"]
            ps["lastPatchInstallationSummary"]["lastModifiedTime"] = last["lastModifiedDateTime"]
            ps["lastPatchInstallationSummary"]["error"] = last["errorDetails"]
        iv["patchStatus"] = ps
    return iv


def _arc_doc(b: _Builder, p: dict) -> dict:
    rnd, r = b.rnd, b.r
    sub: _Sub = p["sub"]
    name = p["name"]
    _, _, sku_name, _, _, _ = _OS[p["os"]]
    edition = "Datacenter" if r.random() < 0.55 else "Standard"
    os_sku = sku_name.replace("Datacenter", edition)
    cloud = p["cloud"]
    status = p["status"]
    changed = _iso(b.now - timedelta(days=p["status_days"]))
    domain = sub.domain if p["domain_joined"] else None
    computer = p["computer"]
    fqdn = f"{computer}.{domain}" if domain else computer
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "status": status,
        "lastStatusChange": changed,
        "errorDetails": [],
        "agentVersion": r.choice(_ARC_AGENTS_OLD if p["agent_old"] else _ARC_AGENTS_CURRENT),
        "vmId": rnd.uuid(),
        "displayName": computer,
        "machineFqdn": fqdn,
        "osName": "windows",
        "osVersion": _os_version(b, p),
        "osType": "windows",
        "osSku": os_sku,
        "osEdition": f"Server{edition}",
        "domainName": domain or "WORKGROUP",
        "adFqdn": fqdn if domain else None,
        "dnsFqdn": fqdn,
        "vmUuid": rnd.uuid().upper(),
        "osProfile": {"computerName": computer, "windowsConfiguration": {"patchSettings": {
            "assessmentMode": p["assess_mode"], "patchMode": p["patch_mode"]}}},
        "mssqlDiscovered": "true" if p["role"] == "sql" else "false",
        "cloudMetadata": {"provider": {"aws": "AWS", "gcp": "GCP"}.get(cloud, "N/A")},
        "agentConfiguration": {"proxyUrl": "", "incomingConnectionsPorts": [], "extensionsAllowList": [],
                               "extensionsBlockList": [], "proxyBypass": [],
                               "extensionsEnabled": "true" if p["ext_enabled"] else "false",
                               "guestConfigurationEnabled": "true" if p["gc_enabled"] else "false",
                               "configMode": "full" if p["ext_enabled"] else "monitor"},
        "serviceStatuses": {"extensionService": {"status": "Running" if status == "Connected" else "Stopped",
                                                 "startupType": "Automatic"},
                            "guestConfigurationService": {"status": "Running" if status == "Connected" else "Stopped",
                                                          "startupType": "Automatic"}},
    }
    if status == "Error":
        props["errorDetails"] = [{"code": "AZCM0026", "message": "The Azure Connected Machine agent could not refresh its "
                                  "managed identity certificate: the system clock is more than 5 minutes out of sync."}]
    if cloud == "aws":
        detected = {"cloudprovider": "AWS", "manufacturer": "Amazon EC2", "model": r.choice(("m5.xlarge", "m6i.large", "r5.2xlarge", "t3.large"))}
    elif cloud == "gcp":
        detected = {"cloudprovider": "GCP", "manufacturer": "Google", "model": "Google Compute Engine"}
    elif cloud == "vmware":
        detected = {"cloudprovider": "N/A", "manufacturer": "VMware, Inc.", "model": r.choice(("VMware7,1", "VMware20,1"))}
    elif cloud == "hyperv":
        detected = {"cloudprovider": "N/A", "manufacturer": "Microsoft Corporation", "model": "Virtual Machine"}
    else:
        detected = {"cloudprovider": "N/A"} | r.choice((
            {"manufacturer": "Dell Inc.", "model": "PowerEdge R750"}, {"manufacturer": "HPE", "model": "ProLiant DL380 Gen10 Plus"},
            {"manufacturer": "Lenovo", "model": "ThinkSystem SR650 V2"}))
    cores = r.choice((2, 4, 8, 16))
    detected.update({"coreCount": str(cores), "logicalCoreCount": str(cores * 2 if cloud == "physical" else cores),
                     "mssqldiscovered": props["mssqlDiscovered"], "processorCount": "1" if cloud != "physical" else "2",
                     "totalPhysicalMemoryInGigabytes": str(r.choice((8, 16, 32, 64, 128)))})
    props["detectedProperties"] = detected
    if cloud not in ("aws", "gcp"):
        site = p["site"]
        props["locationData"] = {"name": site[1], "city": site[2], "countryOrRegion": site[3]}
    lic: dict[str, Any] = {"licenseStatus": "Licensed", "licenseChannel": r.choice(("Volume:GVLK", "Retail", "OEM:DM"))}
    if p["os"] == "2012r2":
        assigned = p["esu"]
        lic["esuProfile"] = {"esuEligibility": "Eligible", "esuKeyState": "Active" if assigned else "Inactive",
                             "serverType": edition, "licenseAssignmentState": "Assigned" if assigned else "NotAssigned",
                             "esuKeys": [{"sku": f"ESU Year 3 {edition}", "licenseStatus": "1"}] if assigned else []}
    if p["hotpatch"] is not None:
        enrolled = rnd.days_ago(60, 300)
        lic["productProfile"] = {"subscriptionStatus": "Enabled", "productType": "WindowsServer", "enrollmentDate": enrolled,
                                 "billingStartDate": enrolled,
                                 "productFeatures": [{"name": "Hotpatch", "subscriptionStatus": "Enabled",
                                                      "enrollmentDate": enrolled, "billingStartDate": enrolled}]}
        props["osProfile"]["windowsConfiguration"]["patchSettings"]["status"] = {
            "hotpatchEnablementStatus": "Enabled" if p["hotpatch"] == "on" else "ActionRequired", "error": None}
        if p["hotpatch"] == "pending":
            lic["productProfile"]["productFeatures"][0]["subscriptionStatus"] = "Enrolling"
    props["licenseProfile"] = lic
    doc: dict[str, Any] = {"id": p["id"], "name": name, "type": ARC_TYPE, "location": p["location"]}
    tags = _tags(b, p)
    doc["tags"] = tags
    if p["identity"] != "none":
        doc["identity"] = {"type": "SystemAssigned", "principalId": rnd.uuid(), "tenantId": sub.tenant}
    doc["kind"] = {"vmware": "VMware", "aws": "AWS", "gcp": "GCP"}.get(cloud)
    doc["properties"] = props
    p["fqdn"] = fqdn
    return doc


_CLASS_KEYS = {"critical": "critical", "security": "security", "updaterollup": "updateRollup",
               "featurepack": "featurePack", "servicepack": "servicePack", "definition": "definition",
               "tools": "tools", "updates": "updates"}


def _patch_docs(b: _Builder, p: dict, mid: str, mtype: str) -> list[dict]:
    """The latest assessment summary, its softwarePatches and the installation history."""
    rnd, r = b.rnd, b.r
    state = p["assessment"]
    if state is None:
        return []
    fam = _OS_FAMILY[p["os"]]
    catalog = b.patches[fam]
    if state == "stale":
        age = r.uniform(8, 60)
    elif state == "ok":
        age = r.uniform(0.05, 2.5) if p["assess_mode"] == "AutomaticByPlatform" else r.uniform(0.5, 6.5)
    else:
        age = r.uniform(0.05, 3)
    age = max(age, p["offline_days"] + r.uniform(0.01, 0.5)) if p["offline_days"] else age
    finished = b.now - timedelta(days=age)
    started = finished - timedelta(seconds=r.uniform(40, 300))
    # what the assessment found
    if state == "ok":
        found = [x for x in catalog if x["classifications"][0] in ("Definition", "Updates", "UpdateRollUp")
                 and r.random() < 0.35]
    elif state == "failed":
        found = []
    else:
        wanted = [x for x in catalog if not x.get("superseded")]
        found = [x for x in wanted if x.get("lcu") or r.random() < 0.3]
        if state in ("reboot",) and r.random() < 0.5:
            found = [x for x in found if x["classifications"][0] not in ("Security", "Critical")]
        if state == "stale" and r.random() < 0.3:
            found = [x for x in catalog if x.get("superseded")] + found[1:]
    counts = dict.fromkeys(("critical", "security", "updateRollup", "featurePack", "servicePack", "definition", "tools",
                            "updates", "other"), 0)
    for x in found:
        counts[_CLASS_KEYS.get(x["classifications"][0].lower(), "other")] += 1
    critsec = counts["critical"] + counts["security"]
    activity = rnd.uuid()
    started_by = "Platform" if p["assess_mode"] == "AutomaticByPlatform" else "User"
    error = None
    if state == "failed":
        error = {"code": "PatchAssessmentFailed" if r.random() < 0.5 else "WindowsUpdateError",
                 "message": "Windows Update service is disabled or not running (0x80070422). Enable the wuauserv service "
                            "and retry the assessment.", "details": []}
    summary = {"status": "Failed" if state == "failed" else "Succeeded",
               "rebootPending": state == "reboot",
               "patchServiceUsed": "WU",
               "osType": "Windows",
               "startedBy": started_by,
               "startDateTime": _iso(started),
               "lastModifiedDateTime": _iso(finished),
               "assessmentActivityId": activity,
               "availablePatchCountByClassification": counts,
               "errorDetails": error}
    base = f"{mid}/patchAssessmentResults/latest"
    docs = [{"id": base, "name": "latest", "type": f"{mtype}/patchAssessmentResults", "properties": summary}]
    for x in found:
        docs.append({"id": f"{base}/softwarePatches/{x['patchId']}", "name": x["patchId"],
                     "type": f"{mtype}/patchAssessmentResults/softwarePatches",
                     "properties": {"patchId": x["patchId"], "patchName": x["name"], "kbId": x["kbId"], "version": "",
                                    "classifications": list(x["classifications"]), "rebootBehavior": x["rebootBehavior"],
                                    "publishedDateTime": _iso(x["published"]), "lastModifiedDateTime": _iso(finished),
                                    "osType": "Windows", "patchAssessmentStatus": "Available"}})
    p["_summary"] = dict(summary, _critsec=critsec, _other=len(found) - critsec)
    p["_found"] = found
    if p["installs"]:
        for n in range(1 if r.random() < 0.8 else 2):
            inst_end = finished - timedelta(days=r.uniform(1, 25) + n * 7)
            inst_start = inst_end - timedelta(minutes=r.uniform(6, 80))
            outcome = _weighted(r, (("Succeeded", 80), ("CompletedWithWarnings", 10), ("Failed", 10)))
            installed = r.randint(1, 4) if outcome != "Failed" else 0
            failed = 0 if outcome == "Succeeded" else r.randint(1, 2)
            aid = rnd.uuid()
            maint = p["maintenance"] is not None
            inst = {"status": outcome, "installationActivityId": aid,
                    "rebootStatus": "Completed" if installed else "NotNeeded",
                    "maintenanceWindowExceeded": outcome == "Failed" and r.random() < 0.5,
                    "installedPatchCount": installed, "failedPatchCount": failed, "pendingPatchCount": 0,
                    "excludedPatchCount": 0, "notSelectedPatchCount": r.randint(0, 3),
                    "startDateTime": _iso(inst_start), "lastModifiedDateTime": _iso(inst_end),
                    "startedBy": "Platform" if maint else "User", "patchServiceUsed": "WU", "osType": "Windows",
                    "maintenanceRunId": (f"{_iso(inst_start)[:10]}/{p['sub'].infra['maintenance'][p['maintenance']].rsplit('/', 1)[1]}"
                                         if maint else None),
                    "errorDetails": ({"code": "InstallationFailed",
                                      "message": "One or more patches failed to install (0x800f0922).", "details": []}
                                     if outcome != "Succeeded" else None)}
            if n == 0:
                p["_last_install"] = inst
            docs.append({"id": f"{mid}/patchInstallationResults/{aid}", "name": aid,
                         "type": f"{mtype}/patchInstallationResults", "properties": inst})
    return docs


def _machine_docs(b: _Builder, p: dict) -> list[dict]:
    """Everything below or about one machine, except the machine document itself."""
    rnd, r = b.rnd, b.r
    sub: _Sub = p["sub"]
    mid = p["id"]
    vm = p["kind"] == "vm"
    mtype = VM_TYPE if vm else ARC_TYPE
    loc = p["location"]
    docs = _extensions(b, p, mid, mtype)

    # guest configuration assignments
    for i, status in enumerate(p["gc"]):
        gc_name, gc_version = _GC_PACKAGES[(p["idx"] + i) % len(_GC_PACKAGES)]
        rid = f"{mid}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/{gc_name}"
        checked = None if status == "Pending" else rnd.days_ago(0.01 + p["offline_days"], 1.5 + p["offline_days"])
        gprops: dict[str, Any] = {
            "complianceStatus": status,
            "latestReportId": f"{rid}/reports/{rnd.uuid()}" if status != "Pending" else None,
            "lastComplianceStatusChecked": checked,
            "context": "Azure policy",
            "guestConfiguration": {"name": gc_name, "version": gc_version,
                                   "contentUri": f"https://oaasguestconfig{sub.primary[:4]}1.blob.core.windows.net/builtinconfig/{gc_name}/{gc_name}_{gc_version}.zip",
                                   "contentType": "BuiltIn",
                                   "assignmentType": "ApplyAndMonitor" if gc_name == "WindowsTimeZone" else "Audit",
                                   "configurationParameter": [], "configurationSetting": None},
            "resourceType": mtype,
            "provisioningState": "Succeeded",
        }
        if status == "NonCompliant":
            gprops["latestAssignmentReport"] = {
                "complianceStatus": "NonCompliant",
                "resources": [{"complianceStatus": "NonCompliant", "resourceId": f"[{gc_name}]{gc_name}",
                               "reasons": [{"code": f"{gc_name}:{gc_name}:Audit", "phrase": _GC_REASONS[gc_name]}]}]}
        docs.append({"id": rid, "name": gc_name, "type": "Microsoft.GuestConfiguration/guestConfigurationAssignments",
                     "location": loc, "properties": gprops})

    # policy states: the baseline (follows guest configuration) and the update policies
    states: list[tuple[int, str]] = []
    if p["gc"]:
        states.append((0, "NonCompliant" if any(s != "Compliant" for s in p["gc"]) else "Compliant"))
    if r.random() < 0.35:
        states.append((1, "Compliant" if p["assess_mode"] == "AutomaticByPlatform" else "NonCompliant"))
    summary = p.get("_summary")
    if summary is not None and r.random() < 0.25:
        states.append((2, "NonCompliant" if summary["_critsec"] else "Compliant"))
    if vm and r.random() < 0.1:
        states.append((3, "Compliant" if "gc" in p["exts"] else "NonCompliant"))
    if vm and r.random() < 0.1:
        states.append((4, "Compliant" if p["backup"] else "NonCompliant"))
    for pi, compliance in states:
        def_name, _, effect = _POLICIES[pi]
        a_name, set_name, _ = _POLICY_ASSIGNMENTS[0 if pi in (2, 3, 4) else 1 if pi == 0 else 2]
        scope = f"/subscriptions/{sub.id}"
        state_name = rnd.hex(32)
        sprops: dict[str, Any] = {
            "timestamp": rnd.days_ago(0.05, 1), "resourceId": mid,
            "policyAssignmentId": f"{scope}/providers/Microsoft.Authorization/policyAssignments/{a_name}",
            "policyAssignmentName": a_name, "policyAssignmentScope": scope,
            "policyDefinitionId": f"/providers/Microsoft.Authorization/policyDefinitions/{def_name}",
            "policyDefinitionName": def_name, "policyDefinitionAction": effect, "complianceState": compliance}
        if set_name:
            sprops["policySetDefinitionName"] = set_name
            sprops["policySetDefinitionId"] = f"/providers/Microsoft.Authorization/policySetDefinitions/{set_name}"
        docs.append({"id": f"{mid}/providers/Microsoft.PolicyInsights/policyStates/{state_name}", "name": state_name,
                     "type": "Microsoft.PolicyInsights/policyStates", "properties": sprops})

    # Defender: a resource-level pricing override, assessments
    if p["pricing_override"] is not None:
        tier = p["pricing_override"]
        pprops: dict[str, Any] = {"pricingTier": tier, "freeTrialRemainingTime": "PT0S", "inherited": "False"}
        if tier == "Standard":
            pprops.update({"subPlan": "P1", "enablementTime": rnd.days_ago(10, 200)})
        docs.append({"id": f"{mid}/providers/Microsoft.Security/pricings/virtualMachines", "name": "virtualMachines",
                     "type": "Microsoft.Security/pricings", "properties": pprops})
    defended = (p["pricing_override"] or sub.tier[0]) == "Standard"
    assessments: list[tuple[int, str]] = []
    if defended or r.random() < 0.3:  # foundational CSPM assesses free machines too
        unhealthy = p["unhealthy"]
        pool = [0, 1, 2, 3, 4]
        r.shuffle(pool)
        for k in pool[:unhealthy]:
            assessments.append((k, "Unhealthy"))
        if unhealthy == 0 and r.random() < 0.3:
            assessments.append((pool[0], "Healthy"))
    for k, code in assessments:
        key, display = _ASSESSMENTS[k]
        first = rnd.days_ago(30, 400)
        status: dict[str, Any] = {"code": code, "statusChangeDate": rnd.days_ago(0.5, 30), "firstEvaluationDate": first}
        if code == "Unhealthy":
            status["cause"] = ""
            status["description"] = ""
        docs.append({"id": f"{mid}/providers/Microsoft.Security/assessments/{key}", "name": key,
                     "type": "Microsoft.Security/assessments",
                     "properties": {"resourceDetails": {"Source": "Azure", "Id": mid}, "displayName": display,
                                    "status": status}})

    # data collection rule associations
    for key in p["dcrs"]:
        dcr_id = sub.infra["dcr"][key]
        name = f"{dcr_id.rsplit('/', 1)[1]}-association"
        aprops: dict[str, Any] = {"dataCollectionRuleId": dcr_id, "provisioningState": "Succeeded"}
        if r.random() < 0.5:
            aprops["metadata"] = {"provisionedBy": "Azure Policy"}
        docs.append({"id": f"{mid}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{name}", "name": name,
                     "type": "Microsoft.Insights/dataCollectionRuleAssociations", "properties": aprops})

    # backup
    if p["backup"] is not None:
        docs.append(_backup_item(b, p))
    # site recovery
    if p["asr"] is not None:
        docs.append(_replication_item(b, p))

    # Automanage
    if p["automanage"] is not None:
        docs.append({"id": f"{mid}/providers/Microsoft.Automanage/configurationProfileAssignments/default", "name": "default",
                     "type": "Microsoft.Automanage/configurationProfileAssignments",
                     "properties": {"configurationProfile": "/providers/Microsoft.Automanage/bestPractices/"
                                                            + ("AzureBestPracticesProduction" if p["env"] == "prd"
                                                               else "AzureBestPracticesDevTest"),
                                    "targetId": mid, "status": p["automanage"]}})
    # scheduled patching
    if p["maintenance"] is not None:
        mc = sub.infra["maintenance"][p["maintenance"]]
        name = mc.rsplit("/", 1)[1]
        docs.append({"id": f"{mid}/providers/Microsoft.Maintenance/configurationAssignments/{name}", "name": name,
                     "type": "Microsoft.Maintenance/configurationAssignments", "location": loc,
                     "properties": {"maintenanceConfigurationId": mc, "resourceId": mid}})
    # Azure File Sync: a registered server, matched by name (documents live under the sync service)
    if p["filesync"] is not None:
        svc = b.sync_service(sub)
        server_id = rnd.uuid()
        beat_age = r.uniform(0.001, 0.2) if p["filesync"] == "fresh" else r.uniform(9, 120)
        beat = _iso(b.now - timedelta(days=max(beat_age, p["offline_days"])))
        server_name = p.get("fqdn") or p["computer"]
        docs.append({"id": f"{svc}/registeredServers/{server_id}", "name": server_id,
                     "type": "Microsoft.StorageSync/storageSyncServices/registeredServers",
                     "properties": {"serverId": server_id, "serverName": server_name, "friendlyName": server_name,
                                    "agentVersion": r.choice(("18.2.0.0", "19.1.0.0", "20.0.0.0")),
                                    "agentVersionStatus": "Ok",
                                    "serverOSVersion": _os_version(b, p).rsplit(".", 1)[0] + ".0",
                                    "serverRole": "Standalone", "clusterId": _NIL_UUID, "clusterName": "",
                                    "lastHeartBeat": beat, "serverManagementErrorCode": 0,
                                    "storageSyncServiceUid": b.lazy[("sss", sub.id)]["properties"]["storageSyncServiceUid"],
                                    "lastOperationName": "ICreateRegisteredServerWorkflow",
                                    "lastWorkflowId": f"storageSyncServices/{svc.rsplit('/', 1)[1]}/workflows/{rnd.uuid()}",
                                    "provisioningState": "Succeeded", "resourceLocation": sub.primary,
                                    "serviceLocation": sub.primary}})
    return docs


def _backup_item(b: _Builder, p: dict) -> dict:
    rnd, r = b.rnd, b.r
    sub: _Sub = p["sub"]
    mid = p["id"]
    health = p["backup"]
    vm = p["kind"] == "vm"
    vault = b.vault(sub, p["location"] if vm else sub.primary, "backup")
    policy = f"{vault}/backupPolicies/{r.choice(('DefaultPolicy', 'EnhancedPolicy-Daily', 'Daily-30d-Weekly-12w'))}"
    state, last_status, age = {
        "ok": ("Protected", "Completed", (0.05, 1.5)),
        "stale": ("Protected", "Completed", (9, 40)),
        "failed": ("Protected", "Failed", (0.05, 1.5)),
        "error": ("ProtectionError", "Failed", (2, 12)),
        "stopped": ("ProtectionStopped", "Completed", (20, 200)),  # protection stopped, data retained
        "irpending": ("IRPending", "", None),
    }[health]
    last = None
    if age is not None:
        days = r.uniform(*age)
        if not vm:  # the MARS agent backs up from inside the server: nothing since it went offline
            days = max(days, p["offline_days"])
        last = _iso(b.now - timedelta(days=days))
    healthy = health in ("ok", "irpending")
    props: dict[str, Any] = {"friendlyName": p["name"].lower() if vm else p["fqdn"],
                             "protectionStatus": "Healthy" if healthy else "Unhealthy",
                             "protectionState": state,
                             "healthStatus": "Passed" if healthy else "ActionRequired" if health in ("error", "failed") else "ActionSuggested",
                             "lastBackupStatus": last_status, "lastBackupTime": last}
    if vm:
        rg_low, name_low = p["rg"].lower(), p["name"].lower()
        container = f"iaasvmcontainerv2;{rg_low};{name_low}"
        rid = f"{vault}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}/protectedItems/VM;{container}"
        props.update({"virtualMachineId": mid, "protectedItemDataId": str(r.randint(10**17, 10**18 - 1)),
                      "protectedItemType": "Microsoft.Compute/virtualMachines", "backupManagementType": "AzureIaasVM",
                      "workloadType": "VM", "containerName": container, "sourceResourceId": mid, "policyId": policy,
                      "policyName": policy.rsplit("/", 1)[1],
                      "lastRecoveryPoint": last})
    else:
        fqdn = p["fqdn"].lower()
        rid = f"{vault}/backupFabrics/Azure/protectionContainers/Windows;{fqdn}/protectedItems/FileFolder;{fqdn}"
        props.update({"computerName": p["fqdn"], "protectedItemType": "MabFileFolderProtectedItem",
                      "backupManagementType": "MAB", "workloadType": "FileFolder", "containerName": f"Windows;{fqdn}",
                      "sourceResourceId": mid, "deferredDeleteSyncTimeInUTC": 0,
                      "extendedInfo": {"lastRefreshedAt": rnd.days_ago(0.01, 1), "recoveryPointCount": r.randint(7, 60)}})
    if health == "error":
        props["healthDetails"] = [{"code": 400114 if vm else 100105,
                                   "title": "UserErrorVmNotFoundV2" if vm else "MARSAgentNotReachable",
                                   "message": ("Backup failed: the VM agent is unable to communicate with the Azure Backup "
                                               "service." if vm else "The MARS agent on the server has not contacted the "
                                               "vault for more than 2 days."),
                                   "recommendations": ["Ensure the agent is running and has outbound connectivity."]}]
    return {"id": rid, "name": rid.rsplit("/", 1)[1],
            "type": "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems",
            "properties": props}


def _replication_item(b: _Builder, p: dict) -> dict:
    rnd, r = b.rnd, b.r
    sub: _Sub = p["sub"]
    mid = p["id"]
    health = p["asr"]
    vm = p["kind"] == "vm"
    src = p["location"]
    target = _PAIR.get(src, "northeurope") if vm else sub.primary
    vault = b.vault(sub, target, "asr")
    item = rnd.uuid()
    if vm:
        fabric, container = f"asr-a2a-default-{src}", f"asr-a2a-default-{src}-container"
    else:
        site = p["site"][0].lower() if p["cloud"] not in ("aws", "gcp") else p["cloud"]
        fabric, container = f"{site}-appliance-fabric", f"{site}-appliance-container"
    rid = f"{vault}/replicationFabrics/{fabric}/replicationProtectionContainers/{container}/replicationProtectedItems/{item}"
    errors = []
    if health != "Normal":
        code, msg = (("153039", "Replication is not progressing: the Site Recovery Mobility service cannot reach the cache "
                      "storage account.") if health == "Critical" else
                     ("150127", "The recovery point objective (RPO) has exceeded the configured threshold of 30 minutes."))
        errors.append({"errorCode": code, "errorLevel": "Error" if health == "Critical" else "Warning",
                       "summaryMessage": msg, "creationTimeUtc": rnd.days_ago(0.1, 5), "errorSource": "ProtectionContainer"})
    rpo = r.randint(20, 300) if health == "Normal" else r.randint(1900, 86400)
    if vm:
        specific = {"instanceType": "A2A", "fabricObjectId": mid, "primaryFabricLocation": src,
                    "recoveryFabricLocation": target, "osType": "Windows", "vmProtectionState": "Protected",
                    "vmProtectionStateDescription": "Protected", "rpoInSeconds": rpo,
                    "lastRpoCalculatedTime": rnd.ago(30, 900), "lastHeartbeat": rnd.ago(30, 600),
                    "recoveryAzureVMName": f"{p['name']}-asr"[:64], "multiVmGroupName": ""}
    else:
        specific = {"instanceType": "InMageRcm", "fabricObjectId": mid, "internalIdentifier": rnd.uuid(),
                    "fabricDiscoveryMachineId": rnd.uuid(), "osType": "Windows", "targetVmName": p["name"][:64],
                    "targetLocation": target, "lastRpoInSeconds": rpo, "lastRpoCalculatedTime": rnd.ago(30, 900),
                    "lastRecoveryPointReceived": rnd.ago(30, 900) if health == "Normal" else rnd.days_ago(0.5, 3),
                    "processServerName": f"{(p['site'][0] if p['cloud'] not in ('aws', 'gcp') else 'CLD')}ASRPS01",
                    "resyncRequired": "false" if health != "Critical" else "true",
                    "lastAgentUpgradeType": "", "agentUpgradeBlockingErrorDetails": []}
    return {"id": rid, "name": item,
            "type": "Microsoft.RecoveryServices/vaults/replicationFabrics/replicationProtectionContainers/replicationProtectedItems",
            "properties": {"friendlyName": p["name"],
                           "primaryFabricFriendlyName": src if vm else fabric,
                           "recoveryFabricFriendlyName": target if vm else "Microsoft Azure",
                           "protectionState": "Protected", "protectionStateDescription": "Protected",
                           "activeLocation": "Primary", "testFailoverState": "None",
                           "testFailoverStateDescription": "None",
                           "allowedOperations": ["PlannedFailover", "UnplannedFailover", "DisableProtection", "TestFailover"],
                           "replicationHealth": health, "failoverHealth": "Normal",
                           "healthErrors": errors,
                           "policyId": f"{vault}/replicationPolicies/24-hour-retention-policy",
                           "policyFriendlyName": "24-hour-retention-policy",
                           "providerSpecificDetails": specific}}


def _guest_facts(b: _Builder, p: dict) -> dict:
    r = b.r
    features, services = _ROLES[p["role"]]
    # roles on top of the OS baseline; the simulator derives the rest (hotfixes from the OS build,
    # agent services from the extensions and the agent's status)
    facts: dict[str, Any] = {"windowsFeatures": sorted(features)}
    if p["kind"] == "vm" and p["fqdn"]:
        facts["domain"] = p["sub"].domain
    azure_edition = p["os"] in ("2022ae", "2022ae-hotpatch", "2025ae")
    facts["azureNetworkAdapter"] = p["kind"] == "arc" and p["cloud"] in ("hyperv", "physical", "vmware") and r.random() < 0.04
    facts["extendedNetwork"] = azure_edition and r.random() < 0.08
    facts["smbOverQuic"] = p["role"] == "fs" and (azure_edition or p["os"].startswith("2025")) and r.random() < 0.4
    if p["role"] == "fs" and r.random() < 0.15 and _OS_FAMILY[p["os"]] not in ("2012r2",):
        facts["windowsFeatures"] = sorted({*facts["windowsFeatures"], "Storage-Replica"})
    svc: dict[str, str] = dict(services)
    # Windows Update: stopped where the last assessment failed on it, running where assessments work
    svc["wuauserv"] = "Stopped" if p["assessment"] == "failed" else "Running"
    facts["services"] = svc
    return facts


def _render(b: _Builder, p: dict) -> None:
    sub: _Sub = p["sub"]
    vm = p["kind"] == "vm"
    provider = "Microsoft.Compute/virtualMachines" if vm else "Microsoft.HybridCompute/machines"
    p["id"] = f"/subscriptions/{sub.id}/resourceGroups/{p['rg']}/providers/{provider}/{p['name']}"
    p["computer"] = p["name"]
    if vm:
        p["fqdn"] = f"{p['computer']}.{sub.domain}" if p["domain_joined"] else None
    mtype = VM_TYPE if vm else ARC_TYPE
    # how long the machine has been unreachable: nothing reported from inside it is newer than that
    r = b.r
    if vm:
        p["offline_days"] = r.uniform(0.5, 120) if p["power"] in ("stopped", "deallocated") else 0.0
    else:
        p["status_days"] = {"Connected": r.uniform(1, 120), "Disconnected": r.uniform(0.1, 40),
                            "Expired": r.uniform(46, 400)}.get(p["status"], r.uniform(0.05, 10))
        p["offline_days"] = p["status_days"] if p["status"] in ("Disconnected", "Expired") else 0.0
    # the patch documents first: the VM's instance view repeats the latest summary
    patch_docs = _patch_docs(b, p, p["id"], mtype)
    machine = _vm_doc(b, p) if vm else _arc_doc(b, p)
    b.docs.append(machine)
    b.docs.extend(_machine_docs(b, p))
    b.docs.extend(patch_docs)
    entry: dict[str, Any] = {"guest": _guest_facts(b, p)}
    if p["fail_types"]:
        entry["failExtensionTypes"] = list(p["fail_types"])
    b.sim_machines[p["id"]] = entry


# ---- the public API ----------------------------------------------------------------------------


def default_subscriptions(size: int) -> int:
    """3 up to 1,000 servers, then one per 2,500 servers (never fewer than 3)."""
    return 3 if size <= 1000 else max(3, math.ceil(size / 2500))


def generate_fleet(size: int, seed: int = 1, subscriptions: int | None = None, tenants: int | None = None,
                   now: datetime | None = None) -> dict:
    """A deterministic fleet of ``size`` Windows servers (docs/fleet-format.md): same arguments, same JSON."""
    if not isinstance(size, int) or size < 1 or size > 100_000:
        raise ValueError(f"size must be an integer from 1 to 100000, not {size!r}")
    n_tenants = 2 if tenants is None else tenants
    n_subs = default_subscriptions(size) if subscriptions is None else subscriptions
    if n_tenants < 1 or n_subs < 1:
        raise ValueError("subscriptions and tenants must be at least 1")
    n_tenants = min(n_tenants, n_subs)
    now = DEFAULT_NOW if now is None else (now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC))
    collecting = gc.isenabled()
    gc.disable()  # a million small acyclic containers: the cyclic collector only costs time here (2x)
    try:
        return _generate(size, seed, n_subs, n_tenants, now)
    finally:
        if collecting:
            gc.enable()


def _generate(size: int, seed: int, n_subs: int, n_tenants: int, now: datetime) -> dict:
    b = _Builder(size, seed, n_subs, n_tenants, now)
    n_vm = round(size * VM_SHARE)
    if size >= 2:
        n_vm = min(max(n_vm, 1), size - 1)
    for kind, count, plan in (("vm", n_vm, _PLAN_VM), ("arc", size - n_vm, _PLAN_ARC)):
        offset = 0 if kind == "vm" else n_vm
        for j in range(count):
            p = _new_profile(b, kind, offset + j)
            if j < len(plan):
                _force(p, plan[j])
            _render(b, p)
    return {
        "format": "wsam-fleet/1",
        "generator": {"seed": seed, "size": size, "version": VERSION, "generatedAt": _iso(now)},
        "tenants": b.tenants,
        "subscriptions": b.subscription_docs(),
        "resources": b.shared + b.docs,
        "simulation": {"machines": b.sim_machines},
    }


# ---- reading a fleet back: the coverage report -------------------------------------------------
#
# The console's rules (docs/capabilities.md, wsam_tui/fleet/capabilities.py), restated over fleet
# documents. Kept separate from the console's code on purpose: the generator's promise is checked
# against the documents it wrote, and tests compare both readings.

_EXT_IDS = {key: (spec[2].lower(), spec[3].lower()) for key, spec in _EXT.items()}
_SECURITY_STREAMS = ("microsoft-securityevent", "microsoft-windowsevent")
_HOTPATCH_PENDING = ("actionrequired", "pendingevaluation", "enabling", "pending", "failed")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or len(text) < 19:
        return None
    t = text.strip().replace("Z", "+00:00")
    head, sep, rest = t.partition(".")
    if sep:
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits):]
        t = f"{head}.{(digits + '000000')[:6]}{tz}"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _low(v: Any) -> str:
    return v.strip().lower() if isinstance(v, str) else ""


def _props(d: Any) -> dict:
    p = d.get("properties") if isinstance(d, dict) else None
    return p if isinstance(p, dict) else {}


class _Index:
    """The fleet's documents grouped per machine, as the console joins them."""

    def __init__(self, fleet: dict) -> None:
        self.machines: dict[str, dict] = {}
        self.by_machine: dict[str, list[dict]] = {}
        self.sub_pricing: dict[str, dict] = {}
        self.dcrs: dict[str, dict] = {}
        self.sentinel: set[str] = set()
        self.backup: dict[str, list[dict]] = {}
        self.asr: dict[str, list[dict]] = {}
        self.sync: list[dict] = []
        resources = [r for r in fleet.get("resources") or [] if isinstance(r, dict)]
        for r in resources:
            t = _low(r.get("type"))
            if t in ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines"):
                self.machines[_low(r.get("id"))] = r
        for r in resources:
            t, rid = _low(r.get("type")), _low(r.get("id"))
            props = _props(r)
            if t == "microsoft.insights/datacollectionrules":
                self.dcrs[rid] = r
            elif t == "microsoft.operationsmanagement/solutions" and _low(r.get("name")).startswith("securityinsights"):
                self.sentinel.add(_low(props.get("workspaceResourceId")))
            elif t.endswith("/protecteditems") and "/backupfabrics/" in rid:
                self.backup.setdefault(_low(props.get("sourceResourceId") or props.get("virtualMachineId")), []).append(r)
            elif t.endswith("/replicationprotecteditems"):
                fo = (props.get("providerSpecificDetails") or {}).get("fabricObjectId")
                self.asr.setdefault(_low(fo), []).append(r)
            elif t == "microsoft.storagesync/storagesyncservices/registeredservers":
                self.sync.append(r)
            elif t == "microsoft.security/pricings" and "/providers/microsoft.security/pricings/" in rid:
                owner = rid.split("/providers/microsoft.security/")[0]
                if owner in self.machines:
                    self.by_machine.setdefault(owner, []).append(r)
                else:
                    self.sub_pricing[owner.rsplit("/", 1)[-1]] = r
            elif t not in ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines"):
                owner = _owner(rid)
                if owner in self.machines:
                    self.by_machine.setdefault(owner, []).append(r)
        self.names: dict[str, list[str]] = {}
        for mid, m in self.machines.items():
            props = _props(m)
            names = {_low(m.get("name")), _low(props.get("machineFqdn")), _low(props.get("dnsFqdn")),
                     _low((props.get("osProfile") or {}).get("computerName")),
                     _low((props.get("instanceView") or {}).get("computerName"))}
            for n in names - {""}:
                self.names.setdefault(n, []).append(mid)
        self.sync_by_machine: dict[str, list[dict]] = {}
        for r in self.sync:
            name = _low(_props(r).get("serverName"))
            for mid in self.names.get(name) or self.names.get(name.split(".", 1)[0]) or []:
                self.sync_by_machine.setdefault(mid, []).append(r)


def _owner(lid: str) -> str:
    for marker in ("/providers/microsoft.compute/virtualmachines/", "/providers/microsoft.hybridcompute/machines/"):
        i = lid.find(marker)
        if i >= 0:
            end = lid.find("/", i + len(marker))
            return lid if end < 0 else lid[:end]
    return ""


def _ext_health(state: str) -> str:
    s = _low(state)
    if s == "succeeded":
        return "ok"
    if s in ("failed", "canceled", "cancelled"):
        return "failed"
    return "busy"


def classify_machine(m: dict, docs: list[dict], idx: _Index, now: datetime) -> dict[str, str]:
    """Capability column -> on | partial | off (n/a columns left out) for one machine, from its documents."""
    vm = _low(m.get("type")) == "microsoft.compute/virtualmachines"
    props = _props(m)
    mid = _low(m.get("id"))
    stale = timedelta(days=STALE_DAYS)
    by_type: dict[str, list[dict]] = {}
    for d in docs:
        by_type.setdefault(_low(d.get("type")).rsplit("/", 1)[-1] if "/extensions" not in _low(d.get("type"))
                           else "extensions", []).append(d)
    exts = by_type.get("extensions", [])

    def ext(key: str) -> str | None:
        pub, typ = _EXT_IDS[key]
        found = [_ext_health(_props(e).get("provisioningState", "")) for e in exts
                 if _low(_props(e).get("publisher")) == pub and _low(_props(e).get("type")) == typ]
        for want in ("ok", "busy", "failed"):
            if want in found:
                return want
        return None

    ident = _low((m.get("identity") or {}).get("type") if isinstance(m.get("identity"), dict) else "")
    system = "systemassigned" in ident.replace(" ", "").split(",")
    out: dict[str, str] = {}

    # policy
    gcs = by_type.get("guestconfigurationassignments", [])
    statuses = [_low(_props(a).get("complianceStatus")) for a in gcs]
    missing = False
    gc_ext = ext("gc") if vm else None
    if vm:
        missing = gc_ext != "ok" or not system
    elif _low((props.get("agentConfiguration") or {}).get("guestConfigurationEnabled")) == "false":
        missing = True
    if not gcs:
        out["policy"] = "partial" if vm and gc_ext is not None else "off"
    else:
        out["policy"] = "on" if not missing and all(s == "compliant" for s in statuses) else "partial"

    # tags
    tags = m.get("tags") if isinstance(m.get("tags"), dict) else {}
    lower = {str(k).lower(): v for k, v in tags.items()}
    present = [k for k in REQUIRED_TAGS if isinstance(lower.get(k.lower()), str) and lower[k.lower()].strip()]
    out["tags"] = "off" if not tags or not present else "on" if len(present) == len(REQUIRED_TAGS) else "partial"

    # defender
    pricing = next((d for d in by_type.get("pricings", [])), None) or idx.sub_pricing.get(mid.split("/")[2])
    standard = _low(_props(pricing).get("pricingTier")) == "standard" if pricing else False
    mde = ext("mde")
    unhealthy = any(_low((_props(a).get("status") or {}).get("code")) == "unhealthy" for a in by_type.get("assessments", []))
    out["defender"] = ("on" if standard and mde == "ok" and not unhealthy else
                       "off" if not standard and mde is None else "partial")

    # DCR links
    links = []
    for a in by_type.get("datacollectionruleassociations", []):
        dcr = idx.dcrs.get(_low(_props(a).get("dataCollectionRuleId")))
        streams: set[str] = set()
        security: set[str] = set()
        if dcr is not None:
            dp = _props(dcr)
            names = {_low(d.get("name")): _low(d.get("workspaceResourceId"))
                     for d in (dp.get("destinations") or {}).get("logAnalytics") or []}
            for flow in dp.get("dataFlows") or []:
                fs = {_low(s) for s in flow.get("streams") or []}
                streams |= fs
                if fs & set(_SECURITY_STREAMS):
                    security |= {names[_low(x)] for x in flow.get("destinations") or [] if _low(x) in names}
            for sources in (dp.get("dataSources") or {}).values():
                for src in sources or []:
                    streams |= {_low(s) for s in src.get("streams") or []}
        links.append((streams, security))
    ama = ext("ama")

    # sentinel
    to_sentinel = any(sec & idx.sentinel for _, sec in links)
    to_other = any(sec and not sec & idx.sentinel for _, sec in links)
    out["sentinel"] = "on" if to_sentinel and ama == "ok" else "partial" if to_sentinel or to_other else "off"

    # backup
    items = idx.backup.get(mid, [])
    if not items:
        out["backup"] = "off"
    else:
        best = 99
        for it in items:
            ip = _props(it)
            problems = 0
            pstate = _low(ip.get("protectionState"))
            if pstate not in ("protected", "irpending"):
                problems += 1
            if _low(ip.get("lastBackupStatus")) == "failed":
                problems += 1
            t = _parse_time(ip.get("lastBackupTime"))
            if (t is None and pstate != "irpending") or (t is not None and now - t > stale):
                problems += 1
            best = min(best, problems)
        out["backup"] = "on" if best == 0 else "partial"

    # site recovery
    reps = idx.asr.get(mid, [])
    if not reps:
        out["siterecovery"] = "off"
    else:
        ok = any(_low(_props(x).get("replicationHealth")) == "normal"
                 and _low(_props(x).get("protectionState")) in ("protected", "") for x in reps)
        out["siterecovery"] = "on" if ok else "partial"

    # confidential
    if vm:
        sec_type = _low((props.get("securityProfile") or {}).get("securityType"))
        out["confidential"] = "on" if sec_type == "confidentialvm" else "off"

    # updates
    settings = ((props.get("osProfile") or {}).get("windowsConfiguration") or {}).get("patchSettings") or {}
    periodic = _low(settings.get("assessmentMode")) == "automaticbyplatform"
    summary = next((d for d in by_type.get("patchassessmentresults", [])), None)
    assessment = None
    if summary is not None:
        sp = _props(summary)
        counts = sp.get("availablePatchCountByClassification") or {}
        assessment = (_low(sp.get("status")), bool(sp.get("rebootPending")),
                      int(counts.get("critical") or 0) + int(counts.get("security") or 0),
                      _parse_time(sp.get("lastModifiedDateTime")) or _parse_time(sp.get("startDateTime")))
    elif vm:
        aps = ((props.get("instanceView") or {}).get("patchStatus") or {}).get("availablePatchSummary")
        if isinstance(aps, dict) and (aps.get("status") or aps.get("lastModifiedTime")):
            assessment = (_low(aps.get("status")), bool(aps.get("rebootPending")),
                          int(aps.get("criticalAndSecurityPatchCount") or 0),
                          _parse_time(aps.get("lastModifiedTime")) or _parse_time(aps.get("startTime")))
    if assessment is None:
        out["updates"] = "partial" if periodic else "off"
    else:
        status, reboot, critsec, when = assessment
        recent = when is not None and now - when <= stale
        good = status in ("succeeded", "completedwithwarnings")
        out["updates"] = "on" if periodic and recent and good and not critsec and not reboot else "partial"

    # change tracking
    ct = ext("ct")
    ct_links = any(any(s.startswith("microsoft-configurationchange") for s in streams) for streams, _ in links)
    if ct is None and not ct_links:
        out["changetracking"] = "off"
    else:
        out["changetracking"] = "on" if ct == "ok" and ama == "ok" and ct_links else "partial"

    # automanage / hotpatch
    am = [_low(_props(a).get("status")) for a in by_type.get("configurationprofileassignments", [])]
    hot = "off"
    if vm:
        if settings.get("enableHotpatching") is True:
            hot = "on" if _low(settings.get("patchMode")) == "automaticbyplatform" else "pending"
    else:
        feats = ((props.get("licenseProfile") or {}).get("productProfile") or {}).get("productFeatures") or []
        decided = False
        for f in feats:
            if _low(f.get("name")) == "hotpatch":
                st = _low(f.get("subscriptionStatus"))
                if st == "enabled" or st in _HOTPATCH_PENDING:
                    hot, decided = ("on" if st == "enabled" else "pending"), True
                    break
        if not decided:
            st = _low((settings.get("status") or {}).get("hotpatchEnablementStatus"))
            hot = "on" if st == "enabled" else "pending" if st in _HOTPATCH_PENDING[:-1] else "off"
    if "compliant" in am or hot == "on":
        out["automanage"] = "on"
    elif any(s != "compliant" for s in am) or hot == "pending":
        out["automanage"] = "partial"
    else:
        out["automanage"] = "off"

    # extensions
    healths = [_ext_health(_props(e).get("provisioningState", "")) for e in exts]
    if (not vm and _low((props.get("agentConfiguration") or {}).get("extensionsEnabled")) == "false") or not healths:
        out["extensions"] = "off"
    else:
        out["extensions"] = "on" if all(h == "ok" for h in healths) else "partial"

    # Windows Admin Center
    wac = ext("wac")
    out["wac"] = "off" if wac is None else "on" if wac == "ok" else "partial"

    # run command
    if vm:
        power = ""
        for st in (props.get("instanceView") or {}).get("statuses") or []:
            if _low(st.get("code")).startswith("powerstate/"):
                power = _low(st.get("code")).split("/", 1)[1]
        agent = (props.get("instanceView") or {}).get("vmAgent")
        agent_status = ""
        if isinstance(agent, dict):
            for st in agent.get("statuses") or []:
                agent_status = _low(st.get("displayStatus") or st.get("code"))
                if agent_status:
                    break
        if power in ("stopped", "deallocated", "stopping", "deallocating"):
            out["runcommand"] = "off"
        elif power != "running":
            out["runcommand"] = "partial"
        elif (props.get("osProfile") or {}).get("allowExtensionOperations") is False:
            out["runcommand"] = "off"
        else:
            out["runcommand"] = "on" if agent is None or agent_status in ("ready", "") else "partial"
    else:
        status = _low(props.get("status"))
        out["runcommand"] = "on" if status == "connected" else "partial" if status == "error" else "off"

    # monitor
    mma = ext("mma")
    out["monitor"] = "on" if ama == "ok" and links else "partial" if ama or mma or links else "off"

    # Entra ID login
    if vm:
        aad = ext("aad")
        out["entra"] = "off" if aad is None else "on" if aad == "ok" and system else "partial"

    # identity
    out["identity"] = "on" if "systemassigned" in ident.replace(" ", "").split(",") or "userassigned" in ident else "off"

    # Azure File Sync
    servers = idx.sync_by_machine.get(mid, [])
    if not servers:
        out["filesync"] = "off"
    else:
        beats = [t for t in (_parse_time(_props(s).get("lastHeartBeat")) for s in servers) if t is not None]
        out["filesync"] = "on" if beats and now - max(beats) <= stale else "partial"
    return out


def classify_fleet(fleet: dict, now: datetime | None = None) -> dict[str, dict[str, str]]:
    """Machine id -> column -> state, for every machine in the fleet (times judged at ``now``, by default
    the fleet's generatedAt)."""
    if now is None:
        now = _parse_time((fleet.get("generator") or {}).get("generatedAt")) or datetime.now(UTC)
    idx = _Index(fleet)
    return {m["id"]: classify_machine(m, idx.by_machine.get(mid, []), idx, now) for mid, m in idx.machines.items()}


def _machine_facts(m: dict, docs: list[dict]) -> dict[str, str]:
    """The extra dimensions the generator promises: OS, power state, Arc status/kind/agent, extension states."""
    vm = _low(m.get("type")) == "microsoft.compute/virtualmachines"
    props = _props(m)
    out: dict[str, str] = {}
    for d in docs:
        if "/extensions" in _low(d.get("type")):
            out.setdefault("extstate", "")
            out["extstate"] += "," + str(_props(d).get("provisioningState"))
    if vm:
        sku = _low(((props.get("storageProfile") or {}).get("imageReference") or {}).get("sku"))
        for key, spec in _OS.items():
            if sku == spec[0].lower():
                out["os"] = key
        if "cvm" in sku:
            out["os"] = "cvm"
        for st in (props.get("instanceView") or {}).get("statuses") or []:
            code = str(st.get("code"))
            if code.startswith("PowerState/"):
                out["power"] = code.split("/", 1)[1]
            if code.startswith("ProvisioningState/"):
                out["provisioning"] = "failed" if code.lower().startswith("provisioningstate/failed") else "succeeded"
    else:
        sku = str(props.get("osSku") or "")
        for year in ("2012 R2", "2016", "2019", "2022", "2025"):
            if year in sku:
                out["os"] = year.replace(" ", "").lower()
        out["arcstatus"] = str(props.get("status"))
        cloud = _low((props.get("cloudMetadata") or {}).get("provider"))
        model = _low((props.get("detectedProperties") or {}).get("model"))
        out["arckind"] = (cloud if cloud in ("aws", "gcp") else "vmware" if _low(m.get("kind")) == "vmware"
                          else "hyperv" if model == "virtual machine" else "physical")
        version = str(props.get("agentVersion") or "0.0")
        minor = int(version.split(".")[1]) if version.count(".") >= 1 and version.split(".")[1].isdigit() else 0
        out["arcagent"] = "old" if minor < 50 else "current"
    return out


def coverage_report(fleet: dict, now: datetime | None = None) -> dict[str, set[str]]:
    """``"<column>/<vm|arc>"`` -> the states (on, partial, off) its machines reach, read from the documents;
    plus the scenario dimensions ``os``, ``power``, ``provisioning``, ``extstate`` (extension provisioning
    states), ``arcstatus``, ``arckind``, ``arcagent`` (old/current), in the same form."""
    if now is None:
        now = _parse_time((fleet.get("generator") or {}).get("generatedAt")) or datetime.now(UTC)
    idx = _Index(fleet)
    report: dict[str, set[str]] = {}
    for mid, m in idx.machines.items():
        kind = "vm" if _low(m.get("type")) == "microsoft.compute/virtualmachines" else "arc"
        docs = idx.by_machine.get(mid, [])
        for col, state in classify_machine(m, docs, idx, now).items():
            report.setdefault(f"{col}/{kind}", set()).add(state)
        for dim, value in _machine_facts(m, docs).items():
            values = [v for v in value.split(",") if v] if dim == "extstate" else [value]
            report.setdefault(f"{dim}/{kind}", set()).update(values)
    return report


# ---- command line ------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    from .fleetfile import dump_fleet

    parser = argparse.ArgumentParser(prog="python -m wsam_tui.sim.fleetgen",
                                     description="Write a deterministic simulated fleet (wsam-fleet/1).")
    parser.add_argument("--size", type=int, default=320, help="number of servers (1-100000; default 320)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--subscriptions", type=int, default=None,
                        help="number of subscriptions (default 3 up to 1000 servers, else one per 2500)")
    parser.add_argument("--tenants", type=int, default=None, help="number of tenants (default 2)")
    parser.add_argument("--now", default=None, help="the instant timestamps are relative to (ISO 8601; default "
                                                    f"{_iso(DEFAULT_NOW)})")
    parser.add_argument("-o", "--output", required=True, help="the fleet file to write ('-' for stdout)")
    parser.add_argument("--report", action="store_true", help="print sizes, timings and the coverage report to stderr")
    args = parser.parse_args(list(argv) if argv is not None else None)
    now = None
    if args.now:
        now = _parse_time(args.now)
        if now is None:
            parser.error(f"--now: not an ISO 8601 timestamp: {args.now!r}")
    try:
        t0 = time.perf_counter()
        fleet = generate_fleet(args.size, args.seed, args.subscriptions, args.tenants, now)
        t1 = time.perf_counter()
    except ValueError as e:
        parser.error(str(e))
    if args.output == "-":
        dump_fleet(fleet, sys.stdout.buffer)
    else:
        dump_fleet(fleet, args.output)
    t2 = time.perf_counter()
    if args.report:
        print(f"{args.size} servers, {len(fleet['resources'])} documents; generated in {t1 - t0:.2f} s, "
              f"written in {t2 - t1:.2f} s", file=sys.stderr)
        for key, states in sorted(coverage_report(fleet).items()):
            print(f"  {key}: {', '.join(sorted(states))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
