"""Deterministic, plausible Windows Server guest answers for the ARM simulator's Run Command.

When an operator runs PowerShell on a simulated machine (the legacy ``runCommand`` action with a
``commandId`` and ``script`` lines, or a Run Command v2 resource on a VM or an Arc machine), the
simulator asks this module what the machine prints. The answer is computed from the machine's ARM
document (a VM with ``properties.instanceView``, or an Arc machine), its extension documents and the
fleet file's ``simulation.machines[id]`` entry (``sim``):

* ``sim["runCommandOutput"] = {"stdout", "stderr", "exitCode"}`` replaces every answer on that
  machine, byte-exact. Hostile fleets use it; nothing here sanitises (the console does, on arrival).
* ``sim["guest"]`` pins guest facts. All keys are optional::

      "guest": {
        "windowsFeatures": ["Storage-Replica"],   # installed on top of the OS baseline (no derived roles)
                       # or {"Storage-Replica": true, "FS-SMB1": "Removed", "Web-Server": false}
        "hotfixes": ["KB5034439", {"hotFixId": "KB5034770", "description": "Security Update",
                                   "installedOn": "2024-02-13", "installedBy": "NT AUTHORITY\\SYSTEM"}],
                                                  # the complete Get-HotFix list
        "services": {"Spooler": "Stopped", "W32Time": null,   # override / remove (null)
                     "MyApp": {"status": "Running", "displayName": "My App", "startType": "Automatic"}},
        "azureNetworkAdapter": true,              # or {"name": ..., "address": ...}
        "extendedNetwork": true,
        "smbOverQuic": true,                      # or {"subject": "CN=...", "thumbprint": ...}
        "domain": "corp.contoso.com", "ipAddress": "10.1.2.3", "timeZone": "Pacific Standard Time"
      }

  When a fact is absent it is derived: the OS build (instance view, Arc properties or image SKU)
  gives versions, hotfixes, the feature baseline and the built-in services; extensions give agent
  services (AMA → ``AzureMonitorAgent``, MMA → ``HealthService``, MDE.Windows → ``Sense`` running,
  Arc → ``himds``/``ExtensionService``/``GCArcService``, VM → ``WindowsAzureGuestAgent``/``RdAgent``);
  a SHA-256 of the lower-cased machine id gives variety (IP, MAC, uptime, Spooler and wuauserv state,
  which optional roles are installed; about 1 machine in 7 has Storage Replica, 1 in 10 an Azure
  Network Adapter, 1 in 20 Extended Network, 1 in 3 of the capable ones SMB over QUIC). Same inputs,
  same output: no randomness and no use of Python's salted ``hash()``.

What a script can do: a small PowerShell 5.1 interpreter — statements separated by newlines or ``;``,
pipelines, ``$variables`` and assignments, ``param()`` blocks (``parameters`` become variables, their
values are data and never re-expanded), expandable strings with ``$(…)``, arithmetic, comparison and
``-f``/``-join``/``-split``/``-replace`` operators, ``[type]`` casts (``[PSCustomObject]@{…}``),
``if``/``elseif``/``else``, ``foreach``, ``try``/``catch``/``finally``, simple functions, ``exit N``,
``throw``, ``Write-Error``, ``-ErrorAction``, ``$ErrorActionPreference``, ``2>$null``/``>$null``, and
these commands (case-insensitive, aliases included, ``Get-`` prefix optional as in PowerShell)::

    hostname  whoami  ipconfig [/all]  systeminfo  findstr  shutdown /r
    $env:COMPUTERNAME (and other $env:*)  $PSVersionTable[.PSVersion]  [Environment]::MachineName
    Get-Service [-Name X | X] [-DisplayName]   Start-/Stop-/Restart-/Set-Service
    Get-HotFix [-Id KB…]   Get-ComputerInfo [-Property …]   Get-WindowsFeature [-Name X | X]
    Install-/Uninstall-WindowsFeature   Get-Date [-Format|-UFormat]   Get-TimeZone   Get-Location
    Get-PSDrive  Get-Volume  Get-NetAdapter  Get-NetIPAddress  Test-NetConnection host [-Port N]
    Get-Process [-Name|-Id]  Get-SmbServerConfiguration  Get-SmbServerCertificateMapping
    Get-MpComputerStatus  Get-Command  Test-Path  Restart-Computer [-WhatIf]  Start-Sleep
    Get-CimInstance/Get-WmiObject Win32_OperatingSystem|ComputerSystem|QuickFixEngineering|
        LogicalDisk|Service|BIOS|Processor (-Filter/-Query)
    Get-ItemProperty[Value] HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion, the RDP keys,
        the Defender for Endpoint onboarding key
    Write-Output/echo/Write-Host/Write-Warning/Write-Error   Invoke-Command -ScriptBlock
    Invoke-Expression   New-Object PSObject   Set-Variable
    | Select-Object [-Property …|@{n=…;e={…}}] [-ExpandProperty X] [-First N] [-Last N] [-Skip N]
    | Where-Object {…} / Where-Object Prop -op value   | ForEach-Object {…}   | Sort-Object
    | Group-Object   | Measure-Object   | Format-Table   | Format-List   | ConvertTo-Json
    | ConvertFrom-Json   | Out-String   | Select-String   | Out-Null   | Tee-Object
    | Out-File/Set-Content/Export-Csv (accepted, nothing written)

Output looks like a PowerShell 5.1 console (Format-Table headers with dashes, Format-List, the
``Get-WindowsFeature`` ``[X]`` tree, error records with ``At …:line char:N`` and ``CategoryInfo``),
with ``\\n`` line endings. Cmdlets a server would not have are reported as PowerShell does: on
Windows Server 2022 (not Azure Edition) and older, ``Get-SmbServerCertificateMapping`` "is not
recognized" — an error ``-ErrorAction`` cannot silence, which ends the statement and which
``try``/``catch``, ``2>$null`` and ``Get-Command … -ErrorAction SilentlyContinue`` handle.

In-guest probes read back the facts: ``Get-NetAdapter`` lists "Azure Network Adapter" and "Azure
Extended Network" adapters, ``(Get-WindowsFeature Storage-Replica).Installed``, and
``Get-SmbServerCertificateMapping`` returns a QUIC mapping when ``smbOverQuic``.

Generic fallback (the documented choice): a statement this module does not recognise is accepted
silently — it prints nothing and leaves the exit code alone, like a successful cmdlet that writes no
output (which is what most Set-/New-/Enable-/Install- commands do). Claiming "not recognized" would
be wrong for real cmdlets the simulator does not model. Likewise ``Test-Path`` answers True only for
paths the simulated guest is known to have, and registry keys it does not model fall back silently.
The names of unrecognised commands are listed in ``ScriptResult.unrecognised`` for the simulator's
logs (an interpreter gap shows there as ``<error …>``). A script never makes this module raise.

Exit code: ``exit N`` wins; otherwise 1 if a terminating error ended the script or any error record
was written to stderr (an unknown service, ``Write-Error`` …), else 0. (Real PowerShell returns 0 for
non-terminating errors; the simulator's contract asks for 1 so that a failed probe reads as failed.)

``duration_s`` is deterministic: about 1-2 s plus a per-command cost (``systeminfo`` ≈ 3.5 s,
``Get-ComputerInfo`` ≈ 4.5 s, a failing ``Test-NetConnection`` ≈ 5 s, an ``Install-WindowsFeature``
that changes something ≈ 12 s) plus every ``Start-Sleep`` — so ``Start-Sleep 120`` lets the
simulator exercise ``timeoutInSeconds``. Scripts are bounded (200,000 steps, ranges of 10,000,
strings of 1 MB), so hostile scripts cost milliseconds.
"""

from __future__ import annotations

import contextlib
import decimal
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = [
    "LINUX_COMMAND_IDS",
    "RUN_COMMAND_OUTPUT_LIMIT",
    "WINDOWS_COMMAND_IDS",
    "ScriptResult",
    "cap_output",
    "simulate_command_id",
    "simulate_script",
]

RUN_COMMAND_OUTPUT_LIMIT = 4096

#: Legacy ``runCommand`` ids a Windows machine accepts (RunCommand_List.json plus the ones the
#: portal lists for Windows). Matching is case-insensitive.
WINDOWS_COMMAND_IDS: tuple[str, ...] = (
    "RunPowerShellScript", "IPConfig", "EnableRemotePS", "EnableAdminAccount", "ResetAccountPassword",
    "RDPSettings", "SetRDPPort", "ResetRDPCert", "DisableNLA", "DisableWindowsUpdate",
    "EnableWindowsUpdate", "EnableEMS",
)
LINUX_COMMAND_IDS: tuple[str, ...] = ("RunShellScript", "ifconfig")

_LEGACY_SCRIPT_PATH = r"C:\Packages\Plugins\Microsoft.CPlat.Core.RunCommandWindows\1.1.18\Downloads\script0.ps1"
_V2_SCRIPT_PATH = r"C:\Packages\Plugins\Microsoft.CPlat.Core.RunCommandHandlerWindows\2.0.14\Downloads\script0.ps1"


@dataclass(frozen=True)
class ScriptResult:
    """What one script printed. ``restart_requested`` is set by ``Restart-Computer``/``shutdown /r``
    (the simulator may reboot the machine); ``unrecognised`` lists commands answered by the
    silent generic fallback."""

    stdout: str
    stderr: str
    exit_code: int
    duration_s: float
    restart_requested: bool = False
    unrecognised: tuple[str, ...] = ()


def cap_output(text: str, limit_bytes: int = RUN_COMMAND_OUTPUT_LIMIT) -> tuple[str, bool]:
    """Keep the last ``limit_bytes`` bytes of ``text`` (UTF-8), never splitting a character.

    Returns ``(text, truncated)``. Lone surrogates (possible in JSON-loaded hostile text) are kept
    and counted as the three bytes ``surrogatepass`` gives them.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit_bytes:
        return text, False
    if limit_bytes <= 0:
        return "", True
    tail = data[len(data) - limit_bytes:]
    i = 0
    while i < len(tail) and (tail[i] & 0xC0) == 0x80:  # skip a partial character's continuation bytes
        i += 1
    return tail[i:].decode("utf-8", "surrogatepass"), True


def simulate_script(script: str, machine: dict, *, extensions: Sequence[dict] = (), sim: Mapping | None = None,
                    now: datetime, parameters: Mapping[str, str] | None = None) -> ScriptResult:
    """Run ``script`` (PowerShell text) on the simulated ``machine``. Never raises."""
    return _simulate(str(script or ""), machine, extensions, sim, now, parameters, _V2_SCRIPT_PATH)


def simulate_command_id(command_id: str, script_lines: Sequence[str], machine: dict, *,
                        extensions: Sequence[dict] = (), sim: Mapping | None = None, now: datetime,
                        parameters: Mapping[str, str] | None = None) -> ScriptResult:
    """The legacy ``runCommand`` action. ``RunPowerShellScript`` runs ``script_lines``; the other
    Windows ids give fixed, plausible outputs. Raises ``ValueError`` for an id Windows does not have
    (the message completes "The run command 'X' is not supported: …")."""
    cid = str(command_id or "").strip()
    canon = next((c for c in WINDOWS_COMMAND_IDS if c.lower() == cid.lower()), None)
    if canon is None:
        if any(c.lower() == cid.lower() for c in LINUX_COMMAND_IDS):
            raise ValueError(f"'{cid}' is a Linux command and this machine runs Windows")
        raise ValueError(f"'{cid}' is not a known command id (known: {', '.join(WINDOWS_COMMAND_IDS)})")
    if canon in ("RunPowerShellScript", "IPConfig"):
        script = "\n".join(str(s) for s in script_lines or ()) if canon == "RunPowerShellScript" else "ipconfig /all"
        return _simulate(script, machine, extensions, sim, now, parameters, _LEGACY_SCRIPT_PATH)
    override = _override(sim, machine, canon)
    if override is not None:
        return override
    g = _safe_guest(machine, extensions, sim)
    params = {str(k).lstrip("$").lower(): str(v) for k, v in (parameters or {}).items()}
    stdout, stderr, code, cost = _legacy_output(canon, g, params)
    return ScriptResult(stdout, stderr, code, round(1.0 + cost + (_h(g.machine_id.lower(), canon) % 100) / 100, 2))


# ----------------------------------------------------------------------------------------- helpers


def _h(*parts: object) -> int:
    """A stable 64-bit hash (never Python's salted ``hash``)."""
    data = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _get(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _s(v: Any) -> str | None:
    """A non-blank string, or None."""
    return v if isinstance(v, str) and v.strip() else None


def _as_utc(now: datetime) -> datetime:
    if not isinstance(now, datetime):
        return datetime(2024, 1, 1, tzinfo=UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _parse_iso(v: Any) -> datetime | None:
    if not isinstance(v, str) or not v.strip():
        return None
    text = v.strip().replace("Z", "+00:00")
    m = re.match(r"^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(\.\d+)?([+-]\d{2}:\d{2})?$", text)
    if not m:
        return None
    try:
        dt = datetime.fromisoformat(m[1] + (m[2][:7] if m[2] else "") + (m[3] or ""))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _override(sim: Mapping | None, machine: Any, salt: str) -> ScriptResult | None:
    rco = _get(sim, "runCommandOutput")
    if not isinstance(rco, Mapping):
        return None

    def text(v: Any) -> str:
        return v if isinstance(v, str) else ("" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else str(v))

    code = rco.get("exitCode", 0)
    try:
        exit_code = int(code) if code is not None else 0
    except (TypeError, ValueError, OverflowError):
        exit_code = 1
    mid = _s(_get(machine, "id")) or ""
    return ScriptResult(text(rco.get("stdout")), text(rco.get("stderr")), exit_code,
                        round(1.0 + (_h(mid.lower(), salt) % 300) / 100, 2))


# ------------------------------------------------------------------------------ the guest's facts


@dataclass(frozen=True)
class _Build:
    year: str
    build: int
    kernel: str  # CurrentVersion / OsVersion prefix
    release_id: str
    display_version: str
    build_lab: str
    product_prefix: str
    ps_version: str | None  # None: 5.1.<build>.<ubr>
    cus: tuple[tuple[str, int, str], ...]  # monthly cumulative updates (KB, UBR, release date)
    extras: tuple[tuple[str, str, str], ...]  # other hotfixes Get-HotFix lists (KB, description, date)


_BUILDS: dict[int, _Build] = {
    9600: _Build("2012 R2", 9600, "6.3", "", "", "9600.21620.amd64fre.winblue_ltsb_escrow.230912-1700", "00253",
                 "5.1.14409.1018",
                 (("KB5031419", 21620, "2023-10-10"), ("KB5032249", 21668, "2023-11-14"),
                  ("KB5033420", 21715, "2023-12-12"), ("KB5034171", 21763, "2024-01-09")),
                 (("KB3191564", "Update", "2017-07-19"), ("KB5029368", "Update", "2023-08-08"))),
    14393: _Build("2016", 14393, "10.0", "1607", "", "14393.0.amd64fre.rs1_release.160715-1616", "00376", None,
                  (("KB5032197", 6452, "2023-11-14"), ("KB5033373", 6529, "2023-12-12"),
                   ("KB5034119", 6614, "2024-01-09"), ("KB5034767", 6709, "2024-02-13"),
                   ("KB5035855", 6796, "2024-03-12"), ("KB5036899", 6897, "2024-04-09"),
                   ("KB5037763", 6981, "2024-05-14"), ("KB5039214", 7070, "2024-06-11")),
                  (("KB4049065", "Update", "2017-11-14"), ("KB5034862", "Update", "2024-02-13"))),
    17763: _Build("2019", 17763, "10.0", "1809", "", "17763.1.amd64fre.rs5_release.180914-1434", "00430", None,
                  (("KB5032196", 5122, "2023-11-14"), ("KB5033371", 5206, "2023-12-12"),
                   ("KB5034127", 5329, "2024-01-09"), ("KB5034768", 5458, "2024-02-13"),
                   ("KB5035849", 5576, "2024-03-12"), ("KB5036896", 5696, "2024-04-09"),
                   ("KB5037765", 5820, "2024-05-14"), ("KB5039217", 5936, "2024-06-11")),
                  (("KB5005112", "Update", "2021-08-10"), ("KB5034657", "Update", "2024-01-09"))),
    20348: _Build("2022", 20348, "10.0", "2009", "21H2", "20348.1.amd64fre.fe_release.210507-1500", "00454", None,
                  (("KB5032198", 2113, "2023-11-14"), ("KB5033118", 2159, "2023-12-12"),
                   ("KB5034129", 2227, "2024-01-09"), ("KB5034770", 2322, "2024-02-13"),
                   ("KB5035857", 2340, "2024-03-12"), ("KB5036909", 2402, "2024-04-09"),
                   ("KB5037782", 2461, "2024-05-14"), ("KB5039227", 2527, "2024-06-11")),
                  (("KB5008882", "Update", "2022-01-11"), ("KB5034439", "Security Update", "2024-01-09"))),
    26100: _Build("2025", 26100, "10.0", "2009", "24H2", "26100.1.amd64fre.ge_release.240331-1435", "00486", None,
                  (("KB5046617", 2314, "2024-11-12"), ("KB5048667", 2605, "2024-12-10"),
                   ("KB5050009", 2894, "2025-01-14"), ("KB5051987", 3194, "2025-02-11"),
                   ("KB5053598", 3476, "2025-03-11"), ("KB5055523", 3775, "2025-04-08")),
                  (("KB5043080", "Security Update", "2024-09-10"), ("KB5054979", "Update", "2025-03-11"))),
}


@dataclass(frozen=True)
class _Os:
    info: _Build
    build: int
    ubr: int
    edition: str  # Datacenter | Standard
    azure_edition: bool
    core: bool
    cu_index: int  # the installed cumulative update in info.cus

    @property
    def year(self) -> str:
        return self.info.year

    @property
    def product_name(self) -> str:
        return f"Windows Server {self.year} {self.edition}" + (": Azure Edition" if self.azure_edition else "")

    @property
    def caption(self) -> str:
        return "Microsoft " + self.product_name

    @property
    def version(self) -> str:
        return f"{self.info.kernel}.{self.build}"

    @property
    def edition_id(self) -> str:
        return "ServerTurbine" if self.azure_edition else f"Server{self.edition}"

    @property
    def installation_type(self) -> str:
        return "Server Core" if self.core else "Server"

    @property
    def sku_number(self) -> int:
        if self.azure_edition:
            return 407
        return {("Datacenter", False): 8, ("Standard", False): 7, ("Datacenter", True): 12,
                ("Standard", True): 13}[(self.edition, self.core)]

    @property
    def sku_name(self) -> str:
        return {7: "StandardServerEdition", 8: "DatacenterServerEdition", 12: "DatacenterServerCoreEdition",
                13: "StandardServerCoreEdition"}.get(self.sku_number, str(self.sku_number))

    @property
    def ps_version(self) -> str:
        return self.info.ps_version or f"5.1.{self.build}.{self.ubr}"


def _parse_os(texts: Sequence[str | None], version_text: str | None, seed: int) -> _Os:
    build = ubr = None
    if version_text:
        m = re.search(r"(\d+)\.(\d+)\.(\d{4,5})(?:\.(\d+))?", version_text)
        if m:
            build, ubr = int(m[3]), int(m[4] or 0)
    joined = " ".join(t for t in texts if t).lower()
    if build is None:
        if re.search(r"2012[\s_-]*r2", joined):
            build = 9600
        else:
            m = re.search(r"20(16|19|22|25)", joined)
            build = {"16": 14393, "19": 17763, "22": 20348, "25": 26100}[m[1]] if m else 20348
    known = [b for b in sorted(_BUILDS) if b <= build]
    info = _BUILDS[known[-1] if known else 9600]
    edition = "Standard" if "standard" in joined else "Datacenter"
    azure = bool(re.search(r"azure[\s_-]*edition|turbine", joined))
    core = bool(re.search(r"(^|[\s_-])core($|[\s_-])", joined))
    if ubr:
        fitting = [i for i, cu in enumerate(info.cus) if cu[1] <= ubr]
        cu_index = fitting[-1] if fitting else 0
    else:
        cu_index = len(info.cus) - 1 - seed % 3  # 0-2 months behind
        ubr = info.cus[cu_index][1] if build == info.build else 1
    return _Os(info, build, ubr, edition, azure, core, cu_index)


@dataclass
class _Svc:
    name: str
    display: str
    status: str
    start_type: str


@dataclass
class _Feature:
    name: str
    display: str
    depth: int
    ftype: str
    parent: str | None
    state: str  # Installed | Available | Removed


@dataclass(frozen=True)
class _HotFix:
    kb: str
    description: str
    installed_on: datetime | str | None
    installed_by: str


@dataclass(frozen=True)
class _Nic:
    name: str
    description: str
    if_index: int
    mac: str
    ipv4: str
    prefix: int
    gateway: str
    dhcp: bool
    dns_servers: tuple[str, ...]
    link_speed: str
    ipv6_ll: str
    kind: str = "Ethernet"  # Ethernet | PPP


@dataclass(frozen=True)
class _Disk:
    letter: str
    label: str
    size: int
    free: int


@dataclass(frozen=True)
class _Ext:
    publisher: str
    type: str
    state: str
    settings: Mapping


@dataclass
class _Guest:
    machine_id: str
    kind: str  # vm | arc
    seed: int
    computer_name: str
    netbios: str
    domain: str  # WORKGROUP or a DNS domain
    dns_suffix: str
    os: _Os
    exts: list[_Ext]
    services: list[_Svc]
    features: list[_Feature]
    hotfixes: list[_HotFix]
    nics: list[_Nic]
    disks: list[_Disk]
    cpus: int
    memory_mb: int
    cpu_name: str
    manufacturer: str
    model: str
    bios: str
    firmware: str  # Uefi | Bios
    install_date: datetime
    uptime: timedelta
    tz: tuple[str, str, str, str, Any]  # id, display, standard name, daylight name, tzinfo
    admin_user: str
    agent_version: str
    smb_quic_capable: bool
    smb_quic: Mapping | None
    serial: str

    @property
    def joined(self) -> bool:
        return self.domain.upper() != "WORKGROUP"

    @property
    def fqdn(self) -> str:
        return f"{self.computer_name}.{self.dns_suffix}" if self.dns_suffix else self.computer_name

    @property
    def product_id(self) -> str:
        s = _h(self.seed, "product-id")
        return f"{self.os.info.product_prefix}-{60000 + s % 10000:05d}-{(s >> 16) % 100000:05d}-AA{(s >> 40) % 1000:03d}"

    def ext(self, publisher: str, type_: str) -> _Ext | None:
        for e in self.exts:
            if e.publisher.lower() == publisher.lower() and e.type.lower() == type_.lower():
                return e
        return None

    def service(self, name: str) -> _Svc | None:
        return next((s for s in self.services if s.name.lower() == name.lower()), None)

    def feature_installed(self, name: str) -> bool:
        return any(f.name.lower() == name.lower() and f.state == "Installed" for f in self.features)


_TIMEZONES: dict[str, tuple[str, str, str, str, str, int]] = {
    # windows id (lower) -> id, display, standard name, daylight name, IANA zone, standard offset (min)
    "utc": ("UTC", "(UTC) Coordinated Universal Time", "Coordinated Universal Time", "Coordinated Universal Time", "", 0),
    "pacific standard time": ("Pacific Standard Time", "(UTC-08:00) Pacific Time (US & Canada)", "Pacific Standard Time",
                              "Pacific Daylight Time", "America/Los_Angeles", -480),
    "mountain standard time": ("Mountain Standard Time", "(UTC-07:00) Mountain Time (US & Canada)", "Mountain Standard Time",
                               "Mountain Daylight Time", "America/Denver", -420),
    "central standard time": ("Central Standard Time", "(UTC-06:00) Central Time (US & Canada)", "Central Standard Time",
                              "Central Daylight Time", "America/Chicago", -360),
    "eastern standard time": ("Eastern Standard Time", "(UTC-05:00) Eastern Time (US & Canada)", "Eastern Standard Time",
                              "Eastern Daylight Time", "America/New_York", -300),
    "gmt standard time": ("GMT Standard Time", "(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "GMT Standard Time",
                          "GMT Summer Time", "Europe/London", 0),
    "w. europe standard time": ("W. Europe Standard Time", "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
                                "W. Europe Standard Time", "W. Europe Daylight Time", "Europe/Berlin", 60),
    "romance standard time": ("Romance Standard Time", "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris",
                              "Romance Standard Time", "Romance Daylight Time", "Europe/Paris", 60),
    "central europe standard time": ("Central Europe Standard Time",
                                     "(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague",
                                     "Central Europe Standard Time", "Central Europe Daylight Time", "Europe/Budapest", 60),
    "india standard time": ("India Standard Time", "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi", "India Standard Time",
                            "India Daylight Time", "Asia/Kolkata", 330),
    "singapore standard time": ("Singapore Standard Time", "(UTC+08:00) Kuala Lumpur, Singapore", "Malay Peninsula Standard Time",
                                "Malay Peninsula Daylight Time", "Asia/Singapore", 480),
    "tokyo standard time": ("Tokyo Standard Time", "(UTC+09:00) Osaka, Sapporo, Tokyo", "Tokyo Standard Time",
                            "Tokyo Daylight Time", "Asia/Tokyo", 540),
    "aus eastern standard time": ("AUS Eastern Standard Time", "(UTC+10:00) Canberra, Melbourne, Sydney",
                                  "AUS Eastern Standard Time", "AUS Eastern Daylight Time", "Australia/Sydney", 600),
}


def _timezone(name: str | None) -> tuple[str, str, str, str, Any]:
    tid, display, std, dst, iana, offset = _TIMEZONES.get((name or "").strip().lower(), _TIMEZONES["utc"])
    tzinfo: Any = timezone(timedelta(minutes=offset), std)  # never datetime.UTC: that marks UTC-kind values
    if iana:
        try:
            from zoneinfo import ZoneInfo

            tzinfo = ZoneInfo(iana)
        except Exception:  # no tz database here: the standard offset, without daylight saving
            pass
    return tid, display, std, dst, tzinfo


# Services every Windows Server has: name, display, status, start type, first build.
_BASE_SERVICES: tuple[tuple[str, str, str, str, int], ...] = (
    ("BFE", "Base Filtering Engine", "Running", "Automatic", 0),
    ("BITS", "Background Intelligent Transfer Service", "Stopped", "Manual", 0),
    ("CryptSvc", "Cryptographic Services", "Running", "Automatic", 0),
    ("DcomLaunch", "DCOM Server Process Launcher", "Running", "Automatic", 0),
    ("Dhcp", "DHCP Client", "Running", "Automatic", 0),
    ("Dnscache", "DNS Client", "Running", "Automatic", 0),
    ("EventLog", "Windows Event Log", "Running", "Automatic", 0),
    ("gpsvc", "Group Policy Client", "Running", "Automatic", 0),
    ("LanmanServer", "Server", "Running", "Automatic", 0),
    ("LanmanWorkstation", "Workstation", "Running", "Automatic", 0),
    ("MpsSvc", "Windows Defender Firewall", "Running", "Automatic", 0),
    ("MSDTC", "Distributed Transaction Coordinator", "Running", "Automatic", 0),
    ("RemoteRegistry", "Remote Registry", "Running", "Automatic", 0),
    ("RpcSs", "Remote Procedure Call (RPC)", "Running", "Automatic", 0),
    ("SamSs", "Security Accounts Manager", "Running", "Automatic", 0),
    ("Schedule", "Task Scheduler", "Running", "Automatic", 0),
    ("TermService", "Remote Desktop Services", "Running", "Manual", 0),
    ("TrustedInstaller", "Windows Modules Installer", "Stopped", "Manual", 0),
    ("UsoSvc", "Update Orchestrator Service", "Running", "Automatic", 17763),
    ("W32Time", "Windows Time", "Running", "Automatic", 0),
    ("WinDefend", "Microsoft Defender Antivirus Service", "Running", "Automatic", 14393),
    ("Winmgmt", "Windows Management Instrumentation", "Running", "Automatic", 0),
    ("WinRM", "Windows Remote Management (WS-Management)", "Running", "Automatic", 0),
)

# Extension (publisher, type) -> the service it installs.
_EXT_SERVICES: dict[tuple[str, str], tuple[str, str]] = {
    ("microsoft.azure.monitor", "azuremonitorwindowsagent"): ("AzureMonitorAgent", "Azure Monitor Agent"),
    ("microsoft.enterprisecloud.monitoring", "microsoftmonitoringagent"): ("HealthService", "Microsoft Monitoring Agent"),
    ("microsoft.azure.monitoring.dependencyagent", "dependencyagentwindows"): ("MicrosoftDependencyAgent", "Microsoft Dependency Agent"),
    ("microsoft.admincenter", "admincenter"): ("ServerManagementGateway", "Windows Admin Center"),
    ("microsoft.azuredata", "windowsagent.sqlserver"): ("SqlServerExtension", "Microsoft SQL Server Extension Service"),
}
_MDE = ("microsoft.azure.azuredefenderforservers", "mde.windows")

# Get-WindowsFeature catalog, in display order: name, display name, depth, type, first build, last build.
_FEATURES: tuple[tuple[str, str, int, str, int, int], ...] = (
    ("AD-Certificate", "Active Directory Certificate Services", 0, "Role", 0, 99999),
    ("ADCS-Cert-Authority", "Certification Authority", 1, "Role Service", 0, 99999),
    ("AD-Domain-Services", "Active Directory Domain Services", 0, "Role", 0, 99999),
    ("ADFS-Federation", "Active Directory Federation Services", 0, "Role", 0, 99999),
    ("DHCP", "DHCP Server", 0, "Role", 0, 99999),
    ("DNS", "DNS Server", 0, "Role", 0, 99999),
    ("FileAndStorage-Services", "File and Storage Services", 0, "Role", 0, 99999),
    ("File-Services", "File and iSCSI Services", 1, "Role Service", 0, 99999),
    ("FS-FileServer", "File Server", 2, "Role Service", 0, 99999),
    ("FS-DFS-Namespace", "DFS Namespaces", 2, "Role Service", 0, 99999),
    ("FS-DFS-Replication", "DFS Replication", 2, "Role Service", 0, 99999),
    ("FS-Data-Deduplication", "Data Deduplication", 2, "Role Service", 0, 99999),
    ("FS-Resource-Manager", "File Server Resource Manager", 2, "Role Service", 0, 99999),
    ("Storage-Services", "Storage Services", 1, "Role Service", 0, 99999),
    ("Hyper-V", "Hyper-V", 0, "Role", 0, 99999),
    ("Print-Services", "Print and Document Services", 0, "Role", 0, 99999),
    ("Print-Server", "Print Server", 1, "Role Service", 0, 99999),
    ("Remote-Desktop-Services", "Remote Desktop Services", 0, "Role", 0, 99999),
    ("RDS-Licensing", "Remote Desktop Licensing", 1, "Role Service", 0, 99999),
    ("RDS-RD-Server", "Remote Desktop Session Host", 1, "Role Service", 0, 99999),
    ("Web-Server", "Web Server (IIS)", 0, "Role", 0, 99999),
    ("Web-WebServer", "Web Server", 1, "Role Service", 0, 99999),
    ("Web-App-Dev", "Application Development", 2, "Role Service", 0, 99999),
    ("Web-Asp-Net45", "ASP.NET 4.8", 3, "Role Service", 0, 99999),
    ("Web-Mgmt-Tools", "Management Tools", 1, "Role Service", 0, 99999),
    ("Web-Mgmt-Console", "IIS Management Console", 2, "Role Service", 0, 99999),
    ("UpdateServices", "Windows Server Update Services", 0, "Role", 0, 99999),
    ("UpdateServices-WidDB", "WID Connectivity", 1, "Role Service", 0, 99999),
    ("UpdateServices-Services", "WSUS Services", 1, "Role Service", 0, 99999),
    ("NET-Framework-Features", ".NET Framework 3.5 Features", 0, "Feature", 0, 99999),
    ("NET-Framework-Core", ".NET Framework 3.5 (includes .NET 2.0 and 3.0)", 1, "Feature", 0, 99999),
    ("NET-Framework-45-Features", ".NET Framework 4.8 Features", 0, "Feature", 0, 99999),
    ("NET-Framework-45-Core", ".NET Framework 4.8", 1, "Feature", 0, 99999),
    ("NET-WCF-Services45", "WCF Services", 1, "Feature", 0, 99999),
    ("NET-WCF-TCP-PortSharing45", "TCP Port Sharing", 2, "Feature", 0, 99999),
    ("BitLocker", "BitLocker Drive Encryption", 0, "Feature", 0, 99999),
    ("Failover-Clustering", "Failover Clustering", 0, "Feature", 0, 99999),
    ("GPMC", "Group Policy Management", 0, "Feature", 0, 99999),
    ("MSMQ", "Message Queuing", 0, "Feature", 0, 99999),
    ("Windows-Defender", "Microsoft Defender Antivirus", 0, "Feature", 14393, 99999),
    ("RSAT", "Remote Server Administration Tools", 0, "Feature", 0, 99999),
    ("RSAT-Role-Tools", "Role Administration Tools", 1, "Feature", 0, 99999),
    ("RSAT-AD-Tools", "AD DS and AD LDS Tools", 2, "Feature", 0, 99999),
    ("RSAT-AD-PowerShell", "Active Directory module for Windows PowerShell", 3, "Feature", 0, 99999),
    ("RSAT-DNS-Server", "DNS Server Tools", 2, "Feature", 0, 99999),
    ("FS-SMB1", "SMB 1.0/CIFS File Sharing Support", 0, "Feature", 0, 99999),
    ("Storage-Replica", "Storage Replica", 0, "Feature", 14393, 99999),
    ("System-DataArchiver", "System Data Archiver", 0, "Feature", 17763, 99999),
    ("Telnet-Client", "Telnet Client", 0, "Feature", 0, 99999),
    ("PowerShellRoot", "Windows PowerShell", 0, "Feature", 0, 99999),
    ("PowerShell", "Windows PowerShell 5.1", 1, "Feature", 0, 99999),
    ("PowerShell-V2", "Windows PowerShell 2.0 Engine", 1, "Feature", 0, 20348),
    ("PowerShell-ISE", "Windows PowerShell ISE", 1, "Feature", 0, 99999),
    ("Windows-Server-Backup", "Windows Server Backup", 0, "Feature", 0, 99999),
    ("WoW64-Support", "WoW64 Support", 0, "Feature", 0, 99999),
    ("XPS-Viewer", "XPS Viewer", 0, "Feature", 0, 20348),
)
_BASELINE_FEATURES = (
    "FileAndStorage-Services", "Storage-Services", "NET-Framework-45-Features", "NET-Framework-45-Core",
    "NET-WCF-Services45", "NET-WCF-TCP-PortSharing45", "Windows-Defender", "System-DataArchiver",
    "PowerShellRoot", "PowerShell", "PowerShell-V2", "WoW64-Support",
)
# Features whose installation asks for a restart.
_RESTART_FEATURES = ("storage-replica", "hyper-v", "windows-defender", "fs-smb1")


def _extensions(machine: Mapping, extensions: Sequence[Any]) -> list[_Ext]:
    rank = {"succeeded": 0, "updating": 1, "creating": 2, "failed": 3, "deleting": 4}
    found: dict[tuple[str, str], _Ext] = {}
    docs = list(extensions or ())
    embedded = machine.get("resources") if isinstance(machine, Mapping) else None
    if isinstance(embedded, list):
        docs += embedded
    for doc in docs:
        props = _get(doc, "properties")
        pub, typ = _s(_get(props, "publisher")), _s(_get(props, "type"))
        if not pub or not typ:
            continue
        state = _s(_get(props, "provisioningState")) or "Succeeded"
        settings = _get(props, "settings")
        ext = _Ext(pub, typ, state, settings if isinstance(settings, Mapping) else {})
        key = (pub.lower(), typ.lower())
        old = found.get(key)
        if old is None or rank.get(state.lower(), 5) < rank.get(old.state.lower(), 5):
            found[key] = ext
    return list(found.values())


def _svc_state_for(ext: _Ext) -> str:
    return {"succeeded": "Running", "updating": "Running", "creating": "StartPending",
            "deleting": "StopPending"}.get(ext.state.lower(), "Stopped")


def _vm_size(size: str, seed: int) -> tuple[int, int, int | None, str]:
    """vCPUs, memory (MB), temporary disk (GB) and CPU model for an Azure VM size."""
    m = re.match(r"(?i)(?:standard|basic)_([a-z]+)(\d+)([a-z]*)(?:[_-]v(\d+))?", size or "")
    if not m:
        return 2, 8191, 16, "Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz"
    fam, num, suffix, ver = m[1].upper(), int(m[2]), m[3].lower(), int(m[4] or 1)
    if fam in ("D", "DS") and ver == 2 and num < 20:
        cpus = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 11: 1, 12: 2, 13: 4, 14: 8, 15: 20}.get(num, max(1, num))
        per_cpu = 3.5 if num < 10 else 7.0
    else:
        cpus = max(1, num)
        per_cpu = {"B": 4, "D": 4, "DS": 4, "E": 8, "F": 2, "FS": 2, "L": 8, "M": 28, "A": 2, "DC": 4, "EC": 8}.get(fam, 4)
    memory_mb = int(cpus * per_cpu * 1024) - 1
    temp = None if ver >= 4 and "d" not in suffix else (cpus * 8 if ver < 4 else int(cpus * 37.5))
    if "a" in suffix:
        cpu = "AMD EPYC 7763 64-Core Processor"
    elif ver >= 5:
        cpu = "Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz"
    elif ver == 4:
        cpu = "Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz"
    else:
        cpu = ("Intel(R) Xeon(R) Platinum 8171M CPU @ 2.60GHz", "Intel(R) Xeon(R) CPU E5-2673 v4 @ 2.30GHz")[seed % 2]
    return cpus, memory_mb, temp, cpu


def _mac(raw: str | None, seed: int) -> str:
    if raw:
        hexes = re.findall(r"[0-9a-fA-F]{2}", raw)
        if len(hexes) == 6:
            return "-".join(h.upper() for h in hexes)
        return raw
    oui = ("00-0D-3A", "00-22-48", "60-45-BD", "7C-1E-52")[seed % 4]
    return oui + "".join(f"-{(seed >> (8 * i + 3)) & 0xFF:02X}" for i in range(3))


def _gateway(ip: str, prefix: int) -> str:
    try:
        net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        return str(next(net.hosts())) if net.num_addresses > 2 else ""
    except (ValueError, StopIteration):
        parts = ip.split(".")
        return ".".join([*parts[:3], "1"]) if len(parts) == 4 else ""


def _ipv6_ll(seed: int, index: int, salt: str) -> str:
    x = _h(seed, salt)
    groups = [f"{(x >> (16 * i)) & 0xFFFF:x}" for i in range(4)]
    return f"fe80::{':'.join(groups)}%{index}"


def _fact_obj(v: Any) -> Mapping | None:
    """A guest fact that is either a bool or an object: its object form, ``{}`` for plain truth."""
    if isinstance(v, Mapping):
        return v
    if isinstance(v, str):
        return {} if v.strip().lower() in ("true", "yes", "1", "installed", "enabled", "on") else None
    return {} if v else None


def vm_primary_address(machine: Mapping, sim: Mapping | None) -> tuple[str, str]:
    """(private IPv4, MAC) of an Azure VM's primary network adapter, as ``ipconfig`` in the guest shows them;
    the simulator's network interface documents carry the same values (sim/network.py)."""
    mid = _s(machine.get("id")) or _s(machine.get("name")) or "machine"
    seed = _h(mid.lower())
    ip_fact = _s(_get(sim, "guest", "ipAddress"))
    return (ip_fact or f"10.{(seed >> 8) % 250}.{(seed >> 16) % 16}.{4 + (seed >> 24) % 200}"), _mac(None, seed)


def _guest_of(machine: Any, extensions: Sequence[Any], sim: Mapping | None) -> _Guest:
    m = machine if isinstance(machine, Mapping) else {}
    props = m.get("properties") if isinstance(m.get("properties"), Mapping) else {}
    facts = _get(sim, "guest")
    facts = facts if isinstance(facts, Mapping) else {}
    mid = _s(m.get("id")) or _s(m.get("name")) or "machine"
    seed = _h(mid.lower())
    mtype = (_s(m.get("type")) or "").lower()
    kind = "arc" if "hybridcompute" in mtype or (not mtype and ("agentVersion" in props or "osSku" in props)) else "vm"
    iv = props.get("instanceView") if isinstance(props.get("instanceView"), Mapping) else {}
    exts = _extensions(m, extensions)

    # names
    if kind == "vm":
        computer = _s(iv.get("computerName")) or _s(_get(props, "osProfile", "computerName")) or _s(m.get("name"))
    else:
        fqdn = _s(props.get("machineFqdn")) or _s(props.get("dnsFqdn"))
        computer = (_s(_get(props, "osProfile", "computerName")) or (fqdn.split(".")[0] if fqdn else None)
                    or _s(props.get("displayName")) or _s(m.get("name")))
    computer = computer or "WIN-" + f"{seed:X}"[:11]
    netbios = computer.split(".")[0].upper()[:15]

    # operating system
    if kind == "vm":
        texts = [_s(iv.get("osName")), _s(_get(props, "storageProfile", "imageReference", "sku")),
                 _s(_get(props, "storageProfile", "imageReference", "offer"))]
        version_text = _s(iv.get("osVersion"))
    else:
        texts = [_s(props.get("osSku")), _s(props.get("osName")), _s(props.get("osEdition"))]
        version_text = _s(props.get("osVersion"))
    os_ = _parse_os(texts, version_text, seed)

    # domain
    domain = _s(facts.get("domain"))
    if domain is None and kind == "vm":
        join = next((e for e in exts if e.type.lower() == "jsonaddomainextension"), None)
        domain = _s(join.settings.get("Name")) if join else None
    if domain is None and kind == "arc":
        domain = _s(props.get("domainName"))
        if domain is None and _s(props.get("adFqdn")) and "." in props["adFqdn"]:
            domain = props["adFqdn"].split(".", 1)[1]
    domain = domain or "WORKGROUP"
    joined = domain.upper() != "WORKGROUP"
    if joined:
        dns_suffix = domain
    elif kind == "arc" and _s(props.get("machineFqdn")) and "." in props["machineFqdn"]:
        dns_suffix = props["machineFqdn"].split(".", 1)[1]
    elif kind == "vm":
        letters = "abcdefghijklmnopqrstuvwxyz0123456789"
        x = _h(seed, "dns")
        label = "".join(letters[(x >> (5 * i)) % 36 if i < 12 else _h(seed, i) % 36] for i in range(26))
        dns_suffix = f"{label}.{('bx', 'ax', 'cx', 'dx')[seed % 4]}.internal.cloudapp.net"
    else:
        dns_suffix = ""

    # hardware
    detected = props.get("detectedProperties") if isinstance(props.get("detectedProperties"), Mapping) else {}
    if kind == "vm":
        cpus, memory_mb, temp_gb, cpu_name = _vm_size(_s(_get(props, "hardwareProfile", "vmSize")) or "", seed)
        manufacturer, model = "Microsoft Corporation", "Virtual Machine"
        gen2 = str(iv.get("hyperVGeneration") or "").upper() == "V2" or "g2" in (texts[1] or "").lower()
        firmware = "Uefi" if gen2 else "Bios"
        bios = "Hyper-V UEFI Release v4.1" if gen2 else "090008"
    else:
        procs = _get(props, "hardwareProfile", "processors")
        cores = sum(_intish(p.get("numberOfCores")) for p in procs if isinstance(p, Mapping)) if isinstance(procs, list) else 0
        sockets = _intish(_get(props, "hardwareProfile", "numberOfCpuSockets"))
        cpus = cores * max(1, sockets) or _intish(detected.get("processorCount")) or 4
        cpus = max(1, min(cpus, 1024))
        mem_bytes = _intish(_get(props, "hardwareProfile", "totalPhysicalMemoryInBytes"))
        mem_gb = _intish(detected.get("totalPhysicalMemoryInGigabytes"))
        memory_mb = max(511, min((mem_bytes // 1048576 if mem_bytes > 0 else (mem_gb * 1024 if mem_gb > 0 else 16384)),
                                 1 << 32) - 1)
        temp_gb = None
        cpu_name = (_s(procs[0].get("name")) if isinstance(procs, list) and procs and isinstance(procs[0], Mapping) else None) \
            or _s(detected.get("processorNames")) or "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz"
        vendors = (("Dell Inc.", "PowerEdge R740"), ("HPE", "ProLiant DL380 Gen10"), ("VMware, Inc.", "VMware7,1"),
                   ("Microsoft Corporation", "Virtual Machine"))
        manufacturer = _s(detected.get("manufacturer")) or vendors[seed % 4][0]
        model = _s(detected.get("model")) or (vendors[seed % 4][1] if manufacturer == vendors[seed % 4][0] else "Server")
        firmware = "Bios" if str(_get(props, "firmwareProfile", "type") or "").upper() == "BIOS" else "Uefi"
        bios = {"Dell Inc.": "2.19.1", "HPE": "U30", "VMware, Inc.": "VMW71.00V.21100432.B64.2301110304"}.get(
            manufacturer, "Hyper-V UEFI Release v4.1")

    # network
    nics: list[_Nic] = []
    ip_fact = _s(facts.get("ipAddress"))
    if kind == "arc":
        for i, nic in enumerate(_list(_get(props, "networkProfile", "networkInterfaces"))):
            if not isinstance(nic, Mapping):
                continue
            addr = next((a for a in _list(nic.get("ipAddresses")) if isinstance(a, Mapping)
                         and str(a.get("ipAddressVersion") or "IPv4").lower() == "ipv4" and _s(a.get("address"))), None)
            if addr is None:
                continue
            prefix_text = _s(_get(addr, "subnet", "addressPrefix")) or ""
            prefix = int(prefix_text.split("/")[1]) if re.match(r"^[^/]+/\d{1,2}$", prefix_text) else 24
            virtual = "virtual" in model.lower() or "vmware" in manufacturer.lower()
            desc = ("vmxnet3 Ethernet Adapter" if "vmware" in manufacturer.lower() else
                    "Microsoft Hyper-V Network Adapter" if virtual else "Intel(R) Ethernet Controller X710 for 10GbE SFP+")
            index = int(nic["id"]) if str(nic.get("id") or "").isdigit() else 4 + 2 * i
            ip = ip_fact if ip_fact and not nics else addr["address"]
            nics.append(_Nic(_s(nic.get("name")) or f"Ethernet{' ' + str(i + 1) if i else ''}", desc, index,
                             _mac(_s(nic.get("macAddress")), seed + i), ip, prefix, _gateway(ip, prefix), False,
                             (_gateway(ip, prefix).rsplit(".", 1)[0] + ".10",) if "." in ip else (), "10 Gbps",
                             _ipv6_ll(seed, index, f"nic{i}")))
        if not nics:
            ip = ip_fact or f"192.168.{(seed >> 8) % 250}.{20 + (seed >> 16) % 200}"
            nics.append(_Nic("Ethernet", "Microsoft Hyper-V Network Adapter" if "virtual" in model.lower()
                             else "Intel(R) Ethernet Controller X710 for 10GbE SFP+", 4, _mac(None, seed), ip, 24,
                             _gateway(ip, 24), False, (_gateway(ip, 24).rsplit(".", 1)[0] + ".10",), "10 Gbps",
                             _ipv6_ll(seed, 4, "nic0")))
    else:
        ip, mac = vm_primary_address(m, sim)
        nics.append(_Nic("Ethernet", "Microsoft Hyper-V Network Adapter", 6, mac, ip, 24, _gateway(ip, 24),
                         True, ("168.63.129.16",), "50 Gbps", _ipv6_ll(seed, 6, "nic0")))
    ana_fact = facts.get("azureNetworkAdapter") if "azureNetworkAdapter" in facts else ((seed >> 32) % 10 == 0)
    ana = _fact_obj(ana_fact)
    if ana is not None:
        addr = _s(ana.get("address")) or f"172.16.{200 + seed % 50}.{2 + (seed >> 12) % 200}"
        nics.append(_Nic(_s(ana.get("name")) or "Azure Network Adapter", "WAN Miniport (IKEv2)", 12 + len(nics),
                         "", addr, 32, "", False, (), "1 Gbps", "", "PPP"))
    en_fact = facts.get("extendedNetwork") if "extendedNetwork" in facts else ((seed >> 36) % 20 == 0)
    if _fact_obj(en_fact) is not None:
        addr = f"10.{200 + (seed >> 40) % 50}.{(seed >> 44) % 250}.{4 + (seed >> 48) % 200}"
        nics.append(_Nic("Azure Extended Network", "Microsoft Hyper-V Network Adapter #2", 20 + len(nics),
                         _mac(None, seed + 7), addr, 24, "", False, (), "10 Gbps", _ipv6_ll(seed, 20, "en")))

    # disks
    disks: list[_Disk] = []
    gb = 1024 ** 3
    if kind == "vm":
        sku = (texts[1] or "").lower()
        size_gb = _intish(_get(props, "storageProfile", "osDisk", "diskSizeGB"))
        size_gb = min(size_gb, 65536) if size_gb > 0 else (30 if "smalldisk" in sku else 127)
        size = int(size_gb * gb - 0.55 * gb)
        used = int(size * (0.22 + ((seed >> 20) % 45) / 100))
        disks.append(_Disk("C", "Windows", size, size - used))
        if temp_gb:
            disks.append(_Disk("D", "Temporary Storage", temp_gb * gb, int(temp_gb * gb * 0.94)))
        for j, dd in enumerate(d for d in _list(_get(props, "storageProfile", "dataDisks")) if isinstance(d, Mapping)):
            dsize = (min(_intish(dd.get("diskSizeGB")), 65536) if _intish(dd.get("diskSizeGB")) > 0 else 128) * gb - 137 * 1048576
            disks.append(_Disk(chr(ord("F") + j) if j < 20 else "Z", f"Data{dd.get('lun', j)}", dsize,
                               int(dsize * (0.6 + ((seed >> (j + 3)) % 35) / 100))))
    else:
        for d in _list(_get(props, "storageProfile", "disks")):
            if not isinstance(d, Mapping):
                continue
            mm = re.match(r"^([A-Za-z]):", str(d.get("path") or ""))
            size = _intish(d.get("maxSizeInBytes"))
            if not mm or size <= 0 or any(x.letter == mm[1].upper() for x in disks):
                continue
            used = _intish(d.get("usedSpaceInBytes")) or int(size * 0.4)
            disks.append(_Disk(mm[1].upper(), _s(d.get("name")) or "", size, max(0, size - min(used, size))))
        if not any(d.letter == "C" for d in disks):
            size = 255 * gb
            disks.insert(0, _Disk("C", "", size, int(size * (0.35 + ((seed >> 20) % 40) / 100))))

    # times
    install = _parse_iso(props.get("timeCreated")) or (
        datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=seed % 300, seconds=(seed >> 9) % 86400))
    uptime = timedelta(hours=1 + seed % 720, minutes=(seed >> 10) % 60, seconds=(seed >> 16) % 60)
    tz_name = _s(facts.get("timeZone")) or _s(_get(props, "osProfile", "windowsConfiguration", "timeZone"))
    tz = _timezone(tz_name)

    # SMB over QUIC: Windows Server 2022 Azure Edition, Windows Server 2025 - unless the facts say
    capable = os_.build >= 26100 or (os_.build == 20348 and os_.azure_edition)
    if "smbOverQuic" in facts:
        smb = _fact_obj(facts.get("smbOverQuic"))
        capable = capable or smb is not None
    else:
        smb = {} if capable and (seed >> 40) % 3 == 0 else None

    g = _Guest(
        machine_id=mid, kind=kind, seed=seed, computer_name=computer, netbios=netbios, domain=domain,
        dns_suffix=dns_suffix, os=os_, exts=exts, services=[], features=[], hotfixes=[], nics=nics, disks=disks,
        cpus=cpus, memory_mb=memory_mb, cpu_name=cpu_name, manufacturer=manufacturer, model=model, bios=bios,
        firmware=firmware, install_date=install, uptime=uptime, tz=tz,
        admin_user=_s(_get(props, "osProfile", "adminUsername")) or "Administrator",
        agent_version=_s(props.get("agentVersion")) or _s(_get(iv, "vmAgent", "vmAgentVersion")) or "",
        smb_quic_capable=capable, smb_quic=smb,
        serial=_serial(seed, kind),
    )
    g.features = _features_for(g, facts.get("windowsFeatures"))
    g.hotfixes = _hotfixes_for(g, facts.get("hotfixes")) + _installed_by_update_manager(g, sim)
    g.services = _services_for(g, props, iv, facts.get("services"))
    return g


def _serial(seed: int, kind: str) -> str:
    digits = f"{_h(seed, 'serial'):020d}{_h(seed, 'serial2'):020d}"
    if kind == "vm":  # Hyper-V BIOS serial numbers: 0000-0012-3456-7890-1234-5678-90
        return "-".join(digits[i:i + 4] for i in range(0, 24, 4)) + "-" + digits[24:26]
    return f"{_h(seed, 'serial'):X}"[:7]


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _intish(v: Any) -> int:
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", v):
        return int(float(v))
    return 0


def _features_for(g: _Guest, fact: Any) -> list[_Feature]:
    build = g.os.build
    installed: dict[str, str] = {}
    for name in _BASELINE_FEATURES:
        installed[name.lower()] = "Installed"
    if not g.os.core:
        installed["powershell-ise"] = "Installed"
        if build < 26100:
            installed["xps-viewer"] = "Installed"
    if build <= 14393:
        installed["fs-smb1"] = "Installed"
    elif build >= 26100:
        installed["fs-smb1"] = "Removed"
    if fact is None:  # derived variety
        s = g.seed
        if (s >> 44) % 7 == 0:
            installed["storage-replica"] = "Installed"
        if (s >> 50) % 3 == 0:
            for n in ("Web-Server", "Web-WebServer", "Web-Mgmt-Tools", "Web-Mgmt-Console"):
                installed[n.lower()] = "Installed"
        if (s >> 52) % 5 < 2:
            for n in ("File-Services", "FS-FileServer"):
                installed[n.lower()] = "Installed"
        if (s >> 54) % 4 == 0:
            for n in ("RSAT", "RSAT-Role-Tools", "RSAT-AD-Tools", "RSAT-AD-PowerShell"):
                installed[n.lower()] = "Installed"
        if (s >> 56) % 10 == 0:
            installed["failover-clustering"] = "Installed"
    elif isinstance(fact, Mapping):
        for k, v in fact.items():
            if isinstance(v, str):
                state = {"installed": "Installed", "removed": "Removed"}.get(v.strip().lower(), "Available")
            else:
                state = "Installed" if v else "Available"
            installed[str(k).lower()] = state
    elif isinstance(fact, (list, tuple)):
        for k in fact:
            installed[str(k).lower()] = "Installed"
    feats: list[_Feature] = []
    parents: list[str] = []
    known = set()
    for name, display, depth, ftype, first, last in _FEATURES:
        if not first <= build <= last:
            continue
        parents[depth:] = [name]
        known.add(name.lower())
        feats.append(_Feature(name, display, depth, ftype, parents[depth - 1] if depth else None,
                              installed.get(name.lower(), "Available")))
    # A fact may name a feature outside the catalog: list it, installed, at the end.
    for key, state in installed.items():
        if key not in known and isinstance(fact, (Mapping, list, tuple)):
            original = next((str(k) for k in fact if str(k).lower() == key), key)
            feats.append(_Feature(original, original, 0, "Feature", None, state))
            known.add(key)
    _close_features(feats)
    return feats


def _close_features(feats: list[_Feature]) -> None:
    """A parent is installed when one of its sub-features is."""
    by_name = {f.name: f for f in feats}
    for f in reversed(feats):
        if f.state == "Installed" and f.parent and f.parent in by_name:
            by_name[f.parent].state = "Installed"


def _hotfixes_for(g: _Guest, fact: Any) -> list[_HotFix]:
    by = "NT AUTHORITY\\SYSTEM"
    if isinstance(fact, (list, tuple)):
        out = []
        for item in fact:
            if isinstance(item, Mapping):
                kb = item.get("hotFixId") or item.get("HotFixID") or item.get("kbId") or item.get("id") or ""
                when = item.get("installedOn") or item.get("InstalledOn")
                out.append(_HotFix(_kb(kb), str(item.get("description") or item.get("Description") or "Update"),
                                   _parse_iso(when) or (when if isinstance(when, str) else None),
                                   str(item.get("installedBy") or item.get("InstalledBy") or by)))
            elif item is not None:
                kb = _kb(item)
                known = _KNOWN_KBS.get(kb.upper())
                out.append(_HotFix(kb, known[0] if known else "Update",
                                   _parse_iso(known[1]) + timedelta(days=g.seed % 5) if known else None, by))
        return out
    info = g.os.info
    lag_days = g.seed % 5
    out = [_HotFix(kb, desc, _parse_iso(day) + timedelta(days=lag_days), by) for kb, desc, day in info.extras]
    kb, _ubr, day = info.cus[g.os.cu_index]
    out.append(_HotFix(kb, "Security Update", _parse_iso(day) + timedelta(days=lag_days), by))
    return out


def _installed_by_update_manager(g: _Guest, sim: Mapping | None) -> list[_HotFix]:
    """The KBs an installPatches run put on the machine (the simulator records them as
    ``_installedPatches``), after those already listed: Get-HotFix shows what was just installed."""
    listed = {h.kb.upper() for h in g.hotfixes}
    out = []
    for p in _list(_get(sim, "_installedPatches")):
        kb = _kb(p.get("kbId")) if isinstance(p, Mapping) and _s(str(p.get("kbId") or "")) else None
        if kb is None or kb.upper() in listed:
            continue
        listed.add(kb.upper())
        security = bool({"Security", "Critical"} & set(_list(p.get("classifications"))))
        out.append(_HotFix(kb, "Security Update" if security else "Update", _parse_iso(p.get("installedOn")),
                           "NT AUTHORITY\\SYSTEM"))
    return out


_KNOWN_KBS: dict[str, tuple[str, str]] = {
    **{kb: ("Security Update", day) for b in _BUILDS.values() for kb, _ubr, day in b.cus},
    **{kb: (desc, day) for b in _BUILDS.values() for kb, desc, day in b.extras},
}


def _kb(v: Any) -> str:
    text = str(v)
    return "KB" + text if text.isdigit() else text


def _services_for(g: _Guest, props: Mapping, iv: Mapping, fact: Any) -> list[_Svc]:
    s = g.seed
    build = g.os.build
    svcs: list[_Svc] = []
    for name, display, status, start, first in _BASE_SERVICES:
        if build < first:
            continue
        if name == "WinDefend" and build < 17763:
            display = "Windows Defender Antivirus Service" if build == 14393 else display
        if name == "MpsSvc" and build <= 14393:
            display = "Windows Firewall"
        svcs.append(_Svc(name, display, status, start))
    svcs.append(_Svc("Netlogon", "Netlogon", "Running" if g.joined else "Stopped", "Automatic" if g.joined else "Manual"))
    svcs.append(_Svc("Spooler", "Print Spooler", *(("Stopped", "Disabled") if (s >> 5) % 3 == 0 else ("Running", "Automatic"))))
    svcs.append(_Svc("wuauserv", "Windows Update", "Running" if (s >> 7) % 2 else "Stopped", "Manual"))
    mde = next((e for e in g.exts if (e.publisher.lower(), e.type.lower()) == _MDE), None)
    if mde is not None:
        svcs.append(_Svc("Sense", "Windows Defender Advanced Threat Protection Service", _svc_state_for(mde), "Automatic"))
    elif build >= 17763:
        svcs.append(_Svc("Sense", "Windows Defender Advanced Threat Protection Service", "Stopped", "Manual"))
    if g.feature_installed("Web-Server"):
        svcs.append(_Svc("W3SVC", "World Wide Web Publishing Service", "Running", "Automatic"))
    if g.feature_installed("FS-DFS-Replication"):
        svcs.append(_Svc("DFSR", "DFS Replication", "Running", "Automatic"))
    if g.kind == "vm":
        agent_ok = True
        statuses = _get(iv, "vmAgent", "statuses")
        if isinstance(statuses, list) and statuses and isinstance(statuses[0], Mapping):
            agent_ok = str(statuses[0].get("displayStatus") or "Ready").lower() == "ready"
        if _get(props, "osProfile", "windowsConfiguration", "provisionVMAgent") is not False:
            svcs.append(_Svc("WindowsAzureGuestAgent", "Windows Azure Guest Agent", "Running" if agent_ok else "Stopped", "Automatic"))
            svcs.append(_Svc("RdAgent", "RdAgent", "Running" if agent_ok else "Stopped", "Automatic"))
    else:
        statuses = props.get("serviceStatuses") if isinstance(props.get("serviceStatuses"), Mapping) else {}
        ext_status = _s(_get(statuses, "extensionService", "status")) or "Running"
        gc_status = _s(_get(statuses, "guestConfigurationService", "status")) or "Running"
        svcs.append(_Svc("himds", "Azure Hybrid Instance Metadata Service", "Running", "Automatic"))
        svcs.append(_Svc("ExtensionService", "Guest Configuration Extension Service", ext_status,
                         _s(_get(statuses, "extensionService", "startupType")) or "Automatic"))
        svcs.append(_Svc("GCArcService", "Guest Configuration Arc Service", gc_status,
                         _s(_get(statuses, "guestConfigurationService", "startupType")) or "Automatic"))
        svcs.append(_Svc("arcproxy", "Azure Arc Proxy", "Stopped", "Manual"))
    for e in g.exts:
        spec = _EXT_SERVICES.get((e.publisher.lower(), e.type.lower()))
        if spec and not any(x.name == spec[0] for x in svcs):
            svcs.append(_Svc(spec[0], spec[1], _svc_state_for(e), "Automatic"))
    if isinstance(fact, Mapping):
        for name, v in fact.items():
            name = str(name)
            existing = next((x for x in svcs if x.name.lower() == name.lower()), None)
            if v is None or (isinstance(v, str) and v.strip().lower() in ("absent", "missing", "notinstalled")):
                if existing:
                    svcs.remove(existing)
                continue
            if isinstance(v, Mapping):
                status = str(v.get("status") or (existing.status if existing else "Running"))
                display = str(v.get("displayName") or (existing.display if existing else name))
                start = str(v.get("startType") or (existing.start_type if existing else "Automatic"))
            else:
                status = str(v) if not isinstance(v, bool) else ("Running" if v else "Stopped")
                display = existing.display if existing else name
                start = existing.start_type if existing else "Automatic"
            if existing:
                existing.status, existing.display, existing.start_type = status, display, start
            else:
                if display == name:
                    display = _KNOWN_SERVICE_NAMES.get(name.lower(), name)
                svcs.append(_Svc(name, display, status, start))
    svcs.sort(key=lambda x: x.name.lower())
    return svcs


# Display names of role services a fleet's facts may name.
_KNOWN_SERVICE_NAMES = {
    "mssqlserver": "SQL Server (MSSQLSERVER)", "sqlserveragent": "SQL Server Agent (MSSQLSERVER)",
    "mssqlserverolapservice": "SQL Server Analysis Services (MSSQLSERVER)", "sqlbrowser": "SQL Server Browser",
    "sqlwriter": "SQL Server VSS Writer", "ntds": "Active Directory Domain Services", "dns": "DNS Server",
    "kdc": "Kerberos Key Distribution Center", "adws": "Active Directory Web Services", "dfsr": "DFS Replication",
    "dfs": "DFS Namespace", "w3svc": "World Wide Web Publishing Service", "was": "Windows Process Activation Service",
    "iisadmin": "IIS Admin Service", "wsusservice": "WSUS Service", "certsvc": "Active Directory Certificate Services",
    "adfssrv": "Active Directory Federation Services", "dhcpserver": "DHCP Server", "clussvc": "Cluster Service",
    "msmq": "Message Queuing", "vmms": "Hyper-V Virtual Machine Management", "termservice": "Remote Desktop Services",
    "sessionenv": "Remote Desktop Configuration", "umrdpservice": "Remote Desktop Services UserMode Port Redirector",
    "termservlicensing": "Remote Desktop Licensing", "spooler": "Print Spooler", "lanmanserver": "Server",
}


# ---------------------------------------------------------------------------------- PowerShell values


class _Enum:
    __slots__ = ("name", "value")

    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"_Enum({self.name!r})"


_SERVICE_STATUS = {"Stopped": 1, "StartPending": 2, "StopPending": 3, "Running": 4, "ContinuePending": 5,
                   "PausePending": 6, "Paused": 7}
_START_TYPE = {"Boot": 0, "System": 1, "Automatic": 2, "Manual": 3, "Disabled": 4}
_INSTALL_STATE = {"Available": 0, "Installed": 1, "InstallPending": 2, "Removed": 3, "UninstallPending": 4}


def _enum(table: Mapping[str, int], name: str) -> _Enum:
    for k, v in table.items():
        if k.lower() == name.lower():
            return _Enum(k, v)
    return _Enum(name, 0)


class _Version:
    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[int]) -> None:
        self.parts = tuple(parts)

    @classmethod
    def parse(cls, text: str) -> _Version | None:
        if not re.fullmatch(r"\d+(\.\d+){1,3}", text.strip()):
            return None
        return cls([int(p) for p in text.strip().split(".")])

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)

    def member(self, name: str) -> Any:
        idx = {"major": 0, "minor": 1, "build": 2, "revision": 3}.get(name.lower())
        if idx is None:
            return None
        return self.parts[idx] if idx < len(self.parts) else -1


class _Obj:
    """A PowerShell object: a type name for formatting and ordered properties."""

    __slots__ = ("props", "string", "type")

    def __init__(self, type_: str, props: Mapping[str, Any], string: str | None = None) -> None:
        self.type, self.props, self.string = type_, dict(props), string

    def find(self, name: str) -> tuple[bool, Any]:
        if name in self.props:
            return True, self.props[name]
        low = name.lower()
        for k, v in self.props.items():
            if k.lower() == low:
                return True, v
        return False, None

    def to_string(self) -> str:
        if self.string is not None:
            return self.string
        return "@{" + "; ".join(f"{k}={_to_str(v)}" for k, v in self.props.items()) + "}"


class _Hashtable(dict):
    """A hashtable / ordered dictionary (keys compared case-insensitively)."""

    def find(self, name: str) -> tuple[bool, Any]:
        for k, v in self.items():
            if str(k).lower() == str(name).lower():
                return True, v
        return False, None


@dataclass
class _Text:
    """Already formatted output lines (Format-*, native commands with layout)."""

    lines: list[str]


@dataclass
class _ScriptBlock:
    stmts: list
    text: str
    params: list = field(default_factory=list)


@dataclass
class _ErrorRecord:
    message: str
    command: str | None = None  # "Get-Service" → "Get-Service : message"
    category: str = "NotSpecified"
    target: str = ""
    activity: str = ""
    reason: str = "RuntimeException"
    fqid: str = ""
    position: tuple[int, int, str, int] | None = None  # line, column, source line, length
    script_level: bool = False

    def render(self, script_path: str) -> str:
        if self.script_level:
            first = f"{script_path} : {self.message}"
        elif self.command:
            first = f"{self.command} : {self.message}"
        else:
            first = self.message
        lines = [first]
        if self.position and not self.script_level:
            line, col, source, length = self.position
            lines.append(f"At {script_path}:{line} char:{col}")
            lines.append("+ " + source)
            lines.append("+ " + " " * (col - 1) + "~" * max(1, length))
        target = f"({self.target}:String)" if self.target else "(:)"
        lines.append(f"    + CategoryInfo          : {self.category}: {target} [{self.activity}], {self.reason}")
        lines.append(f"    + FullyQualifiedErrorId : {self.fqid or self.message}")
        lines.append(" ")
        return "\n".join(lines) + "\n"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ampm(dt: datetime) -> tuple[int, str]:
    return (dt.hour % 12 or 12), ("AM" if dt.hour < 12 else "PM")


def _dt_general(dt: datetime) -> str:
    """Culture (en-US) short date + long time, as tables and lists show a DateTime."""
    h, ap = _ampm(dt)
    return f"{dt.month}/{dt.day}/{dt.year} {h}:{dt.minute:02}:{dt.second:02} {ap}"


def _dt_long(dt: datetime) -> str:
    """How a bare DateTime prints (Get-Date)."""
    h, ap = _ampm(dt)
    return f"{_DAYS[dt.weekday()]}, {_MONTHS[dt.month - 1]} {dt.day}, {dt.year} {h}:{dt.minute:02}:{dt.second:02} {ap}"


def _dt_invariant(dt: datetime) -> str:
    """How a DateTime converts to a string inside "…$date…" (invariant culture)."""
    return f"{dt.month:02}/{dt.day:02}/{dt.year} {dt.hour:02}:{dt.minute:02}:{dt.second:02}"


def _offset(dt: datetime, style: str) -> str:
    off = dt.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    total = abs(int(off.total_seconds())) // 60
    hh, mm = divmod(total, 60)
    if style == "zzz":
        return f"{sign}{hh:02}:{mm:02}"
    return f"{sign}{hh:02}" if style == "zz" else f"{sign}{hh}"


_NET_STANDARD = {
    "d": "M/d/yyyy", "D": "dddd, MMMM d, yyyy", "f": "dddd, MMMM d, yyyy h:mm tt", "F": "dddd, MMMM d, yyyy h:mm:ss tt",
    "g": "M/d/yyyy h:mm tt", "G": "M/d/yyyy h:mm:ss tt", "m": "MMMM d", "M": "MMMM d",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK", "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'", "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss", "t": "h:mm tt", "T": "h:mm:ss tt", "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "U": "dddd, MMMM d, yyyy h:mm:ss tt", "y": "MMMM yyyy", "Y": "MMMM yyyy",
}
_NET_TOKEN = re.compile(r"'[^']*'?|\"[^\"]*\"?|\\.|%|y{3,}|yy|y|M{4,}|MMM|MM|M|d{4,}|ddd|dd|d|HH|H|hh|h|mm|m|ss|s|"
                        r"f{1,7}|F{1,7}|tt|t|K|zzz|zz|z|.", re.S)


def _net_format(dt: datetime, fmt: str) -> str:
    """A .NET DateTime format string (standard or custom), en-US."""
    if len(fmt) == 1 and fmt in _NET_STANDARD:
        if fmt in "rRuU":
            dt = dt.astimezone(UTC)
        fmt = _NET_STANDARD[fmt]
    out = []
    for tok in _NET_TOKEN.findall(fmt):
        c = tok[0]
        if c in "'\"":
            out.append(tok[1:-1] if len(tok) > 1 and tok[-1] == c else tok[1:])
        elif c == "\\":
            out.append(tok[1:])
        elif tok == "%":
            continue
        elif c == "y":
            out.append(f"{dt.year % 100:02}" if len(tok) == 2 else str(dt.year % 100) if len(tok) == 1 else f"{dt.year:0{len(tok)}}")
        elif c == "M":
            out.append({1: str(dt.month), 2: f"{dt.month:02}", 3: _MONTHS[dt.month - 1][:3]}.get(len(tok), _MONTHS[dt.month - 1]))
        elif c == "d":
            out.append({1: str(dt.day), 2: f"{dt.day:02}", 3: _DAYS[dt.weekday()][:3]}.get(len(tok), _DAYS[dt.weekday()]))
        elif c == "H":
            out.append(f"{dt.hour:02}" if len(tok) == 2 else str(dt.hour))
        elif c == "h":
            out.append(f"{_ampm(dt)[0]:02}" if len(tok) == 2 else str(_ampm(dt)[0]))
        elif c == "m":
            out.append(f"{dt.minute:02}" if len(tok) == 2 else str(dt.minute))
        elif c == "s":
            out.append(f"{dt.second:02}" if len(tok) == 2 else str(dt.second))
        elif c in "fF":
            digits = f"{dt.microsecond:06}0"[: len(tok)]
            out.append(digits.rstrip("0") if c == "F" else digits)
        elif c == "t":
            out.append(_ampm(dt)[1] if len(tok) == 2 else _ampm(dt)[1][0])
        elif tok == "K":
            out.append("Z" if dt.tzinfo is UTC else _offset(dt, "zzz"))
        elif c == "z":
            out.append(_offset(dt, tok))
        else:
            out.append(tok)
    return "".join(out)


def _uformat(dt: datetime, fmt: str) -> str:
    """Get-Date -UFormat (the Unix-style format PowerShell understands)."""
    h, ap = _ampm(dt)
    table = {
        "Y": str(dt.year), "y": f"{dt.year % 100:02}", "m": f"{dt.month:02}", "d": f"{dt.day:02}", "e": f"{dt.day:>2}",
        "H": f"{dt.hour:02}", "I": f"{h:02}", "M": f"{dt.minute:02}", "S": f"{dt.second:02}", "p": ap,
        "A": _DAYS[dt.weekday()], "a": _DAYS[dt.weekday()][:3], "B": _MONTHS[dt.month - 1], "b": _MONTHS[dt.month - 1][:3],
        "h": _MONTHS[dt.month - 1][:3], "j": f"{dt.timetuple().tm_yday:03}", "Z": _offset(dt, "zz"),
        "s": str(int(dt.timestamp())), "T": f"{dt.hour:02}:{dt.minute:02}:{dt.second:02}",
        "D": f"{dt.month:02}/{dt.day:02}/{dt.year % 100:02}", "R": f"{dt.hour:02}:{dt.minute:02}",
        "F": f"{dt.year}-{dt.month:02}-{dt.day:02}", "u": str(dt.isoweekday()), "w": str(dt.isoweekday() % 7),
        "n": "\n", "t": "\t", "%": "%",
    }
    return re.sub(r"%(.)", lambda m: table.get(m[1], m[0]), fmt)


def _timespan(td: timedelta) -> str:
    sign = "-" if td < timedelta(0) else ""
    td = abs(td)
    hh, rem = divmod(td.seconds, 3600)
    mm, ss = divmod(rem, 60)
    text = f"{td.days}." if td.days else ""
    text += f"{hh:02}:{mm:02}:{ss:02}"
    if td.microseconds:
        text += f".{td.microseconds:06}0"
    return sign + text


def _num(x: float) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.15g}".replace("e+", "E+").replace("e-", "E-")


def _to_str(v: Any) -> str:
    """PowerShell's conversion to string (as in "…$x…" and -join)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, (int, float)):
        return _num(v)
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return " ".join(_to_str(x) for x in v)
    if isinstance(v, datetime):
        return _dt_invariant(v)
    if isinstance(v, timedelta):
        return _timespan(v)
    if isinstance(v, _Obj):
        return v.to_string()
    if isinstance(v, _Hashtable):
        return "System.Collections.Hashtable"
    if isinstance(v, _ScriptBlock):
        return v.text
    if isinstance(v, _ErrorRecord):
        return v.message
    if isinstance(v, _Text):
        return "\n".join(v.lines)
    return str(v)


_DISPLAY_PROPERTY = {"ServiceController": "Name", "HotFix": "HotFixID", "Feature": "Name", "NetAdapter": "Name"}


def _cell(v: Any) -> str:
    """How a value shows in a table cell or a list line."""
    if isinstance(v, list):
        shown = ", ".join(_cell(x.find(_DISPLAY_PROPERTY[x.type])[1]) if isinstance(x, _Obj) and x.type in _DISPLAY_PROPERTY
                          else _cell(x) for x in v[:4])
        return "{" + shown + ("..." if len(v) > 4 else "") + "}"
    if isinstance(v, datetime):
        return _dt_general(v)
    if isinstance(v, _Obj) and v.string is None and v.type.startswith("Selected."):
        return v.to_string()
    return _to_str(v)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --------------------------------------------------------------------------------------- formatting


@dataclass(frozen=True)
class _Col:
    header: str
    key: str | Callable[[_Obj], Any]
    align: str = "auto"  # auto | left | right
    width: int = 0  # minimum width (PowerShell's format views fix some columns)


@dataclass(frozen=True)
class _View:
    table: tuple[_Col, ...] = ()
    mode: str = "table"  # table | list | custom
    list_props: tuple[str, ...] = ()
    gap: int = 1
    custom: Callable[[list[_Obj]], list[str]] | None = None


def _col_value(o: _Obj, c: _Col) -> Any:
    if callable(c.key):
        return c.key(o)
    return o.find(c.key)[1]


def _format_table(objs: Sequence[Any], cols: Sequence[_Col], gap: int = 1, hide_headers: bool = False) -> list[str]:
    raw = [[(_col_value(o, c) if isinstance(o, _Obj) else o) for c in cols] for o in objs]
    cells = [[_cell(v) for v in row] for row in raw]
    rights = []
    for i, c in enumerate(cols):
        if c.align == "auto":
            vals = [row[i] for row in raw if row[i] is not None]
            rights.append(bool(vals) and all(_is_num(v) for v in vals))
        else:
            rights.append(c.align == "right")
    widths = [max([c.width, len(c.header), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    sep = " " * gap

    def line(row: Sequence[str]) -> str:
        return sep.join(v.rjust(w) if right else v.ljust(w) for v, w, right in zip(row, widths, rights, strict=True)).rstrip()

    out = [""]
    if not hide_headers:
        out.append(line([c.header for c in cols]))
        out.append(line(["-" * len(c.header) for c in cols]))
    out.extend(line(r) for r in cells)
    out += ["", ""]
    return out


def _format_list(objs: Sequence[Any], props: Callable[[Any], list[tuple[str, Any]]]) -> list[str]:
    out = [""]
    for o in objs:
        pairs = props(o)
        if not pairs:
            continue
        width = max(len(k) for k, _ in pairs)
        for k, v in pairs:
            text = _cell(v)
            first, *rest = text.split("\n")
            out.append(f"{k.ljust(width)} : {first}".rstrip())
            out.extend(" " * (width + 3) + r for r in rest)
        out.append("")
    out.append("")
    return out


def _features_view(objs: list[_Obj]) -> list[str]:
    out = ["", f"{'Display Name':<56}{'Name':<27}Install State", f"{'------------':<56}{'----':<27}-------------"]
    for o in objs:
        depth = _intish(o.find("Depth")[1])
        installed = _to_str(o.find("InstallState")[1]) == "Installed"
        display = "    " * max(0, depth - 1) + f"[{'X' if installed else ' '}] " + _to_str(o.find("DisplayName")[1])
        name = _to_str(o.find("Name")[1])
        out.append(f"{display:<55} {name:<26} {_to_str(o.find('InstallState')[1]):>13}".rstrip())
    return [*out, "", ""]


def _process_cols() -> tuple[_Col, ...]:
    def k(v: Any) -> int:
        return _intish(v) // 1024

    return (
        _Col("Handles", "Handles", "right"),
        _Col("NPM(K)", lambda o: k(o.find("NPM")[1]), "right"),
        _Col("PM(K)", lambda o: k(o.find("PM")[1]), "right"),
        _Col("WS(K)", lambda o: k(o.find("WS")[1]), "right"),
        _Col("CPU(s)", lambda o: f"{o.find('CPU')[1]:.2f}" if _is_num(o.find("CPU")[1]) else "", "right"),
        _Col("Id", "Id", "right"),
        _Col("SI", "SI", "right"),
        _Col("ProcessName", "ProcessName", "left"),
    )


def _size_text(n: Any) -> str:
    if not _is_num(n):
        return ""
    for unit, size in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.2f}".rstrip("0").rstrip(".") + " " + unit
    return f"{int(n)} B"


def _gb(n: Any) -> str:
    return f"{n / 1024 ** 3:.2f}" if _is_num(n) else ""


_VIEWS: dict[str, _View] = {
    "ServiceController": _View((_Col("Status", "Status", "left", 8), _Col("Name", "Name", "auto", 18),
                                _Col("DisplayName", "DisplayName")),
                               list_props=("Name", "DisplayName", "Status", "DependentServices", "ServicesDependedOn",
                                           "CanPauseAndContinue", "CanShutdown", "CanStop", "ServiceType")),
    "HotFix": _View((_Col("Source", "Source"), _Col("Description", "Description"), _Col("HotFixID", "HotFixID"),
                     _Col("InstalledBy", "InstalledBy"), _Col("InstalledOn", "InstalledOn", "left"))),
    "Process": _View(_process_cols()),
    "PSDrive": _View((_Col("Name", "Name"), _Col("Used (GB)", lambda o: _gb(o.find("Used")[1]), "right"),
                      _Col("Free (GB)", lambda o: _gb(o.find("Free")[1]), "right"), _Col("Provider", "Provider"),
                      _Col("Root", "Root"), _Col("CurrentLocation", "CurrentLocation"))),
    "Volume": _View((_Col("DriveLetter", "DriveLetter"), _Col("FriendlyName", "FriendlyName"),
                     _Col("FileSystemType", "FileSystemType"), _Col("DriveType", "DriveType"),
                     _Col("HealthStatus", "HealthStatus"), _Col("OperationalStatus", "OperationalStatus"),
                     _Col("SizeRemaining", lambda o: _size_text(o.find("SizeRemaining")[1]), "right"),
                     _Col("Size", lambda o: _size_text(o.find("Size")[1]), "right"))),
    "NetAdapter": _View((_Col("Name", "Name"), _Col("InterfaceDescription", "InterfaceDescription"),
                         _Col("ifIndex", "ifIndex", "right"), _Col("Status", "Status"), _Col("MacAddress", "MacAddress"),
                         _Col("LinkSpeed", "LinkSpeed", "right"))),
    "SmbServerCertificateMapping": _View(tuple(_Col(n, n) for n in ("Name", "Subject", "Thumbprint", "DisplayName",
                                                                  "StoreName", "Type", "Flags"))),
    "Feature": _View(mode="custom", custom=_features_view),
    "FeatureOperationResult": _View((_Col("Success", "Success"), _Col("Restart Needed", "RestartNeeded"),
                                     _Col("Exit Code", "ExitCode"), _Col("Feature Result", "FeatureResult"))),
    "Win32_OperatingSystem": _View(tuple(_Col(n, n) for n in ("SystemDirectory", "Organization", "BuildNumber",
                                                            "RegisteredUser", "SerialNumber", "Version"))),
    "Win32_ComputerSystem": _View(tuple(_Col(n, n) for n in ("Name", "PrimaryOwnerName", "Domain", "TotalPhysicalMemory",
                                                           "Model", "Manufacturer"))),
    "Win32_LogicalDisk": _View(tuple(_Col(n, n) for n in ("DeviceID", "DriveType", "ProviderName", "VolumeName", "Size",
                                                        "FreeSpace"))),
    "Win32_Service": _View(tuple(_Col(n, n) for n in ("ProcessId", "Name", "StartMode", "State", "Status", "ExitCode"))),
    "Win32_BIOS": _View(mode="list", list_props=("SMBIOSBIOSVersion", "Manufacturer", "Name", "SerialNumber", "Version")),
    "Win32_OperatingSystem#wmi": _View(mode="list", list_props=("SystemDirectory", "Organization", "BuildNumber",
                                                                 "RegisteredUser", "SerialNumber", "Version")),
    "Win32_ComputerSystem#wmi": _View(mode="list", list_props=("Domain", "Manufacturer", "Model", "Name",
                                                                "PrimaryOwnerName", "TotalPhysicalMemory")),
    "ComputerInfo": _View(mode="list"),
    "SmbServerConfiguration": _View(mode="list"),
    "TestNetConnectionResult": _View(mode="list"),
    "GenericMeasureInfo": _View(mode="list"),
    "TimeZoneInfo": _View(mode="list"),
    "ItemProperty": _View(mode="list"),
    "PathInfo": _View((_Col("Path", "Path"),)),
    "Version": _View((_Col("Major", "Major", "left"), _Col("Minor", "Minor", "left"), _Col("Build", "Build", "left"),
                      _Col("Revision", "Revision", "left")), gap=2),
}


def _all_props(o: Any) -> list[tuple[str, Any]]:
    return list(o.props.items()) if isinstance(o, _Obj) else [("Value", o)]


def _render_objects(objs: list[_Obj]) -> list[str]:
    view = _VIEWS.get(objs[0].type)
    if view is None:
        props = list(objs[0].props)
        if len(props) <= 4:
            return _format_table(objs, [_Col(p, p) for p in props])
        return _format_list(objs, _all_props)
    if view.mode == "custom" and view.custom:
        return view.custom(objs)
    if view.mode == "list":
        if view.list_props:
            return _format_list(objs, lambda o: [(p, o.find(p)[1]) for p in view.list_props])
        return _format_list(objs, _all_props)
    return _format_table(objs, view.table, view.gap)


def _version_obj(v: _Version) -> _Obj:
    return _Obj("Version", {"Major": v.member("Major"), "Minor": v.member("Minor"), "Build": v.member("Build"),
                            "Revision": v.member("Revision")}, str(v))


def _timespan_obj(td: timedelta) -> _Obj:
    secs = td.total_seconds()
    sign = -1 if secs < 0 else 1
    a = abs(td)
    return _Obj("TimeSpan", {
        "Days": sign * a.days, "Hours": sign * (a.seconds // 3600), "Minutes": sign * (a.seconds // 60 % 60),
        "Seconds": sign * (a.seconds % 60), "Milliseconds": sign * (a.microseconds // 1000),
        "Ticks": int(secs * 10_000_000), "TotalDays": secs / 86400, "TotalHours": secs / 3600,
        "TotalMinutes": secs / 60, "TotalSeconds": secs, "TotalMilliseconds": secs * 1000,
    }, _timespan(td))


def _render(values: Iterable[Any]) -> list[str]:
    """Out-Default: turn pipeline output into console lines."""
    lines: list[str] = []
    group: list[_Obj] = []

    def flush() -> None:
        if group:
            lines.extend(_render_objects(group))
            group.clear()

    for v in values:
        if isinstance(v, _Version):
            v = _version_obj(v)
        elif isinstance(v, timedelta):
            v = _timespan_obj(v)
            flush()
            lines.extend(_format_list([v], _all_props))
            continue
        if isinstance(v, _Obj):
            if group and group[0].type != v.type:
                flush()
            group.append(v)
            continue
        flush()
        if v is None:
            continue
        if isinstance(v, _Text):
            lines.extend(v.lines)
        elif isinstance(v, datetime):
            lines += ["", _dt_long(v), "", ""]
        elif isinstance(v, _Hashtable):
            lines += ["", f"{'Name':<30} Value", f"{'----':<30} -----"]
            lines += [f"{_to_str(k):<30} {_cell(val)}".rstrip() for k, val in v.items()]
            lines += ["", ""]
        elif isinstance(v, list):
            lines.extend(_render(v))
        else:
            lines.append(_to_str(v))
    flush()
    return lines


def _to_json_value(v: Any, depth: int) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, float)):
        return v if not isinstance(v, float) or math.isfinite(v) else _num(v)
    if isinstance(v, _Enum):
        return v.value
    if isinstance(v, datetime):
        return _JsonDate(int(v.timestamp() * 1000))
    if isinstance(v, _Version):
        v = _version_obj(v)
    if isinstance(v, timedelta):
        v = _timespan_obj(v)
    if isinstance(v, list):
        if depth < 0:
            return _to_str(v)
        return [_to_json_value(x, depth - 1) for x in v]
    if isinstance(v, (_Obj, _Hashtable)):
        if depth < 0:
            return _to_str(v)
        items = v.props.items() if isinstance(v, _Obj) else v.items()
        return {str(k): _to_json_value(x, depth - 1) for k, x in items}
    return _to_str(v)


class _JsonDate(int):
    """A DateTime in ConvertTo-Json: Windows PowerShell 5.1 writes "\\/Date(<ms>)\\/"."""


def _json_scalar(v: Any) -> str:
    if isinstance(v, _JsonDate):
        return f'"\\/Date({int(v)})\\/"'
    return json.dumps(v, ensure_ascii=False)


def _json_compact(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json_compact(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_json_compact(x) for x in v) + "]"
    return _json_scalar(v)


def _ps_json(v: Any, indent: int = 0) -> str:
    """ConvertTo-Json's layout in Windows PowerShell 5.1 (4-space indent, two spaces after ':')."""
    pad = " " * (indent + 4)
    if isinstance(v, dict):
        if not v:
            return "{\n\n" + " " * indent + "}"
        body = ",\n".join(f"{pad}{json.dumps(k, ensure_ascii=False)}:  {_ps_json(x, indent + 4)}" for k, x in v.items())
        return "{\n" + body + "\n" + " " * indent + "}"
    if isinstance(v, list):
        if not v:
            return "[\n\n" + " " * indent + "]"
        body = ",\n".join(pad + _ps_json(x, indent + 4) for x in v)
        return "[\n" + body + "\n" + " " * indent + "]"
    return _json_scalar(v)


# -------------------------------------------------------------------------- lexer (PowerShell subset)


class _Tok:
    __slots__ = ("end", "kind", "space", "start", "value")

    def __init__(self, kind: str, value: Any, start: int, end: int, space: bool) -> None:
        self.kind, self.value, self.start, self.end, self.space = kind, value, start, end, space

    def __repr__(self) -> str:
        return f"<{self.kind} {self.value!r}>"


_BLANKS = " \t\f\v\u00a0\ufeff\u200b"
_WORD_STOP = frozenset(_BLANKS + "\r\n;|(){},")
_QUOTES_S = "'\u2018\u2019\u201a\u201b"
_QUOTES_D = "\"\u201c\u201d\u201e"
_DASHES = "-\u2013\u2014\u2015"
_VAR_RE = re.compile(r"\$(?:\{([^}]*)\}|((?:[A-Za-z_][A-Za-z0-9_]*:)?[A-Za-z0-9_]+|[_?$^]))")
_NUM_RE = re.compile(r"(0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([kKmMgGtTpP][bB])?")
_TYPE_RE = re.compile(r"\[([A-Za-z_][\w.`]*(?:\[\])?)\]")
_ATTR_RE = re.compile(r"\[[A-Za-z_][\w.]*\(")
_INDEX_RE = re.compile(r"\[\s*(-?\d+)\s*\]")
_REDIR_RE = re.compile(r"(?:[*1-6])?>>?(?:&[12])?")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAM_RE = re.compile(r"[A-Za-z_?][A-Za-z0-9_?]*")
_OPERANDS = frozenset(("VAR", ")", "MEMBER", "NUM", "STR", "XSTR", "INDEX"))
_OPERATOR_NEXT = frozenset(" \t0123456789$(\"'" + _QUOTES_S + _QUOTES_D)
_MULT = {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4, "pb": 1024 ** 5}


def _skip_single(src: str, k: int) -> int:
    """From an opening single quote, the index after the closing one."""
    n = len(src)
    k += 1
    while k < n:
        if src[k] in _QUOTES_S:
            if k + 1 < n and src[k + 1] in _QUOTES_S:
                k += 2
                continue
            return k + 1
        k += 1
    return n


def _skip_double(src: str, k: int) -> int:
    """From an opening double quote, the index after the closing one (``$( )`` and escapes inside)."""
    n = len(src)
    k += 1
    while k < n:
        ch = src[k]
        if ch == "`":
            k += 2
        elif ch in _QUOTES_D:
            if k + 1 < n and src[k + 1] in _QUOTES_D:
                k += 2
                continue
            return k + 1
        elif ch == "$" and k + 1 < n and src[k + 1] == "(":
            k = _scan_subexpr(src, k + 1)
        else:
            k += 1
    return n


def _scan_subexpr(src: str, k: int) -> int:
    """From an opening parenthesis, the index after its matching one (strings inside skipped)."""
    n = len(src)
    depth = 0
    while k < n:
        ch = src[k]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return k + 1
        elif ch in _QUOTES_S:
            k = _skip_single(src, k)
            continue
        elif ch in _QUOTES_D:
            k = _skip_double(src, k)
            continue
        elif ch == "`":
            k += 2
            continue
        k += 1
    return n


def _lex(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)
    space = True
    nesting: list[str] = []  # open brackets, to know when a word is a hashtable key

    def emit(kind: str, value: Any, start: int, end: int) -> None:
        toks.append(_Tok(kind, value, start, end, space))

    while i < n:
        c = src[i]
        if c in _BLANKS:
            i += 1
            space = True
            continue
        if c == "`" and i + 1 < n and src[i + 1] in "\r\n":
            i += 3 if src.startswith("\r\n", i + 1) else 2
            space = True
            continue
        if c == "\r" and i + 1 < n and src[i + 1] == "\n":
            i += 1
            continue
        if c in "\r\n":
            emit("NL", None, i, i + 1)
            i += 1
            space = True
            continue
        if c == "#":
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("<#", i):
            j = src.find("#>", i + 2)
            i = n if j < 0 else j + 2
            space = True
            continue
        prev = toks[-1] if toks else None
        adjacent = not space and prev is not None and prev.kind in ("VAR", ")", "MEMBER", "INDEX")
        start = i
        if c == ";":
            emit(";", None, i, i + 1)
            i += 1
        elif c == "|":
            if i + 1 < n and src[i + 1] == "|":  # PowerShell 7 chain operator: run the next statement
                emit(";", None, i, i + 2)
                i += 2
            else:
                emit("|", None, i, i + 1)
                i += 1
        elif c == "&":
            if i + 1 < n and src[i + 1] == "&":
                emit(";", None, i, i + 2)
                i += 2
            else:
                emit("&", None, i, i + 1)
                i += 1
        elif c in "(){},":
            emit(c, None, i, i + 1)
            if c in "({":
                nesting.append(c)
            elif c in ")}" and nesting:
                nesting.pop()
            i += 1
        elif c == "@" and i + 1 < n and src[i + 1] in "({":
            emit("@" + src[i + 1], None, i, i + 2)
            nesting.append("@" + src[i + 1])
            i += 2
        elif c == "@" and i + 1 < n and src[i + 1] in _QUOTES_D + _QUOTES_S:
            quote_double = src[i + 1] in _QUOTES_D
            nl = src.find("\n", i)
            body_start = n if nl < 0 else nl + 1
            m = re.compile(r"\r?\n[" + (_QUOTES_D if quote_double else _QUOTES_S) + "]@").search(src, body_start - 1)
            body_end, end = (m.start(), m.end()) if m else (n, n)
            body = src[body_start:body_end] if body_start <= body_end else ""
            emit("XSTR" if quote_double else "STR", body, start, end)
            i = end
        elif c == "$" and i + 1 < n and src[i + 1] == "(":
            emit("$(", None, i, i + 2)
            nesting.append("(")
            i += 2
        elif c == "$" and (m := _VAR_RE.match(src, i)):
            emit("VAR", m[1] if m[1] is not None else m[2], i, m.end())
            i = m.end()
        elif c in _QUOTES_S:
            end = _skip_single(src, i)
            raw = src[i + 1:end - 1] if end - 1 > i and src[end - 1] in _QUOTES_S else src[i + 1:end]
            emit("STR", re.sub("[" + _QUOTES_S + "]{2}", lambda mm: mm[0][0], raw), i, end)
            i = end
        elif c in _QUOTES_D:
            end = _skip_double(src, i)
            raw = src[i + 1:end - 1] if end - 1 > i and src[end - 1] in _QUOTES_D else src[i + 1:end]
            emit("XSTR", raw, i, end)
            i = end
        elif c == "[" and adjacent and (m := _INDEX_RE.match(src, i)):
            emit("INDEX", int(m[1]), i, m.end())
            i = m.end()
        elif c == "[" and _ATTR_RE.match(src, i):
            depth, j = 0, i
            while j < n:
                if src[j] == "[":
                    depth += 1
                elif src[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                elif src[j] in _QUOTES_S:
                    j = _skip_single(src, j) - 1
                elif src[j] in _QUOTES_D:
                    j = _skip_double(src, j) - 1
                j += 1
            emit("ATTR", src[i:j + 1], i, min(n, j + 1))
            i = min(n, j + 1)
        elif c == "[" and (m := _TYPE_RE.match(src, i)):
            emit("TYPE", m[1].replace("`", ""), i, m.end())
            i = m.end()
        elif c == "." and src.startswith("..", i) and prev is not None and not space and prev.kind in ("NUM", "VAR", ")"):
            emit("RANGE", None, i, i + 2)
            i += 2
        elif c == "." and adjacent and (m := _IDENT_RE.match(src, i + 1)):
            emit("DOT", None, i, i + 1)
            space = False
            emit("MEMBER", m[0], i + 1, m.end())
            i = m.end()
        elif src.startswith("::", i) and prev is not None and prev.kind == "TYPE" and (m := _IDENT_RE.match(src, i + 2)):
            emit("::", None, i, i + 2)
            space = False
            emit("MEMBER", m[0], i + 2, m.end())
            i = m.end()
        elif (c == ">" or (c in "*123456" and i + 1 < n and src[i + 1] == ">")) and (m := _REDIR_RE.match(src, i)):
            emit("REDIR", m[0], i, m.end())
            i = m.end()
        elif src[i:i + 2] in ("+=", "-=", "*=", "/=") or (c == "=" and src[i:i + 2] != "=="):
            op = "=" if c == "=" else src[i:i + 2]
            emit("=", op, i, i + len(op))
            i += len(op)
        elif (c in "+*/%" or c in _DASHES) and prev is not None and prev.kind in _OPERANDS and (
                i + 1 >= n or src[i + 1] in _OPERATOR_NEXT):
            emit("WORD", "-" if c in _DASHES else c, i, i + 1)  # a binary operator after an operand
            i += 1
        elif c == "!" and src[i:i + 2] != "!=":
            emit("OP", "!", i, i + 1)
            i += 1
        elif c in _DASHES and i + 1 < n and (m := _PARAM_RE.match(src, i + 1)):
            j = m.end()
            colon = j < n and src[j] == ":"
            emit("PARAM", (m[0], colon), i, j + (1 if colon else 0))
            i = j + (1 if colon else 0)
        elif (c.isdigit() or (c in _DASHES and i + 1 < n and src[i + 1].isdigit())) and (
                m := _NUM_RE.match(src, i + (1 if c in _DASHES else 0))) and (
                m.end() == n or src[m.end()] in _WORD_STOP or src.startswith("..", m.end()) or src[m.end()] in "]+-*/%"):
            text = m[1]
            value: Any = int(text, 16) if text.lower().startswith("0x") else (
                float(text) if any(ch in text for ch in ".eE") else int(text))
            if m[2]:
                value = value * _MULT[m[2].lower()]
            emit("NUM", -value if c in _DASHES else value, i, m.end())
            i = m.end()
        else:
            buf = []
            j = i
            in_hash = bool(nesting) and nesting[-1] == "@{"
            while j < n and src[j] not in _WORD_STOP and not (in_hash and src[j] == "="):
                if src[j] == "`" and j + 1 < n:
                    buf.append(src[j + 1])
                    j += 2
                    continue
                buf.append(src[j])
                j += 1
            if j == i:  # a lone stop character we do not know: keep it as a word
                buf.append(src[j])
                j += 1
            emit("WORD", "".join(buf), i, j)
            i = j
        space = False
    return toks


# ------------------------------------------------------------------------- parser (PowerShell subset)


@dataclass(slots=True)
class _Cmd:
    name: Any
    args: list
    redirs: list
    start: int
    end: int


@dataclass(slots=True)
class _Pipe:
    elems: list
    redirs: list
    start: int
    end: int


_UNSUPPORTED_KW = frozenset(("while", "do", "for", "switch", "trap", "class", "enum", "using", "workflow",
                             "configuration", "data", "begin", "process", "end", "dynamicparam", "until"))
_CMP_BASE = ("eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch", "contains", "notcontains",
             "in", "notin", "replace", "split", "join", "is", "isnot", "as")
_CMP_OPS = frozenset([*_CMP_BASE, *("c" + o for o in _CMP_BASE), *("i" + o for o in _CMP_BASE)])


class _Parser:
    def __init__(self, toks: list[_Tok], src: str) -> None:
        self.t, self.src, self.i, self.no_comma = toks, src, 0, 0
        self.eof = _Tok("EOF", None, len(src), len(src), True)

    # -- cursor
    def peek(self, k: int = 0) -> _Tok:
        j = self.i + k
        return self.t[j] if j < len(self.t) else self.eof

    def kind(self, k: int = 0) -> str:
        return self.peek(k).kind

    def next(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def prev_end(self) -> int:
        return self.t[min(self.i, len(self.t)) - 1].end if self.i > 0 and self.t else 0

    def skip_nl(self) -> None:
        while self.kind() == "NL":
            self.i += 1

    def skip_terms(self) -> None:
        while self.kind() in ("NL", ";", "ATTR"):
            self.i += 1

    def expect(self, kind: str) -> None:
        if self.kind() == kind:
            self.i += 1

    def word_is(self, k: int, *words: str) -> bool:
        tok = self.peek(k)
        return tok.kind == "WORD" and tok.value.lower() in words

    def at_stmt_end(self) -> bool:
        return self.kind() in ("NL", ";", "}", ")", "EOF")

    def at_cmd_end(self) -> bool:
        return self.kind() in ("NL", ";", "|", ")", "}", "EOF")

    # -- statements
    def block(self, end: tuple[str, ...] = ()) -> list:
        stmts: list = []
        saved, self.no_comma = self.no_comma, 0
        while True:
            self.skip_terms()
            k = self.kind()
            if k == "EOF" or k in end:
                break
            before = self.i
            if k in (")", "}"):  # a stray closer
                self.i += 1
                continue
            stmt = self.statement()
            if stmt is not None:
                stmts.append(stmt)
            if self.i == before:
                self.i += 1
        self.no_comma = saved
        return stmts

    def statement(self) -> Any:
        t = self.peek()
        if t.kind == "WORD":
            kw = t.value.lower()
            if kw == "param" and self.kind(1) == "(":
                self.next()
                return ("param", self.param_list())
            if kw in ("exit", "throw", "return"):
                self.next()
                value = None if self.at_stmt_end() else self.pipeline()
                return (kw, value, t.start, self.prev_end())
            if kw in ("break", "continue"):
                self.next()
                return (kw,)
            if kw == "if" and self.kind(1) in ("(", "NL"):
                return self.if_stmt()
            if kw == "try" and self.kind(1) in ("{", "NL"):
                return self.try_stmt()
            if kw == "foreach" and self.kind(1) == "(":
                return self.foreach_stmt()
            if kw in ("function", "filter") and self.kind(1) == "WORD":
                return self.function_stmt()
            if kw in _UNSUPPORTED_KW:
                return self.skip_statement()
        j = 1 if t.kind == "TYPE" and self.kind(1) == "VAR" else 0
        if self.kind(j) == "VAR":
            k = j + 1
            while self.kind(k) in ("DOT", "MEMBER", "INDEX"):
                k += 1
            if self.kind(k) == "=":
                self.i += j
                target = self.postfix(("var", self.next().value))
                op = self.next().value
                self.skip_nl()
                value = self.pipeline() if not self.at_stmt_end() else _Pipe([("lit", None)], [], t.start, t.end)
                return ("assign", target, op, value, t.start)
        return ("pipe", self.pipeline())

    def skip_statement(self) -> Any:
        start = self.peek().start
        name = self.peek().value
        depth = 0
        while True:
            k = self.kind()
            if k == "EOF":
                break
            if depth == 0 and k in ("NL", ";"):
                j = self.i
                while j < len(self.t) and self.t[j].kind == "NL":
                    j += 1
                if j < len(self.t) and self.t[j].kind == "{":
                    self.i = j
                    continue
                break
            if depth == 0 and k in (")", "}"):
                break
            if k in ("(", "{", "$(", "@(", "@{"):
                depth += 1
            elif k in (")", "}"):
                depth -= 1
            self.i += 1
        return ("unsupported", name, start, self.prev_end())

    def param_list(self, close: str = ")") -> list:
        """After 'param', a '(' … ')' list of $names with optional defaults."""
        self.expect("(")
        items = []
        saved, self.no_comma = self.no_comma, 1
        while self.kind() not in (close, "EOF"):
            k = self.kind()
            if k == "VAR":
                name = self.next().value
                self.skip_nl()
                default = None
                if self.kind() == "=":
                    self.next()
                    self.skip_nl()
                    default = self.expr()
                items.append((name, default))
                continue
            self.i += 1
        self.expect(close)
        self.no_comma = saved
        return items

    def brace_block(self) -> list:
        self.skip_nl()
        if self.kind() != "{":
            return []
        self.next()
        stmts = self.block(("}",))
        self.expect("}")
        return stmts

    def condition(self) -> Any:
        self.skip_nl()
        if self.kind() != "(":
            return _Pipe([("lit", False)], [], 0, 0)
        self.next()
        self.skip_nl()
        saved, self.no_comma = self.no_comma, 0
        cond = self.statement() if self.kind() != ")" else ("pipe", _Pipe([("lit", False)], [], 0, 0))
        self.no_comma = saved
        self.skip_nl()
        self.expect(")")
        return cond

    def if_stmt(self) -> Any:
        self.next()
        clauses = [(self.condition(), self.brace_block())]
        else_ = None
        while True:
            save = self.i
            self.skip_nl()
            if self.word_is(0, "elseif"):
                self.next()
                clauses.append((self.condition(), self.brace_block()))
                continue
            if self.word_is(0, "else"):
                self.next()
                else_ = self.brace_block()
                break
            self.i = save
            break
        return ("if", clauses, else_)

    def try_stmt(self) -> Any:
        self.next()
        body = self.brace_block()
        catches: list = []
        final = None
        while True:
            save = self.i
            self.skip_nl()
            if self.word_is(0, "catch"):
                self.next()
                while self.kind() in ("TYPE", ","):
                    self.next()
                catches.append(self.brace_block())
                continue
            if self.word_is(0, "finally"):
                self.next()
                final = self.brace_block()
                continue
            self.i = save
            break
        return ("try", body, catches, final)

    def foreach_stmt(self) -> Any:
        self.next()
        self.next()  # (
        self.skip_nl()
        var = self.next().value if self.kind() == "VAR" else "_"
        if self.word_is(0, "in"):
            self.next()
        saved, self.no_comma = self.no_comma, 0
        coll = self.pipeline() if not self.at_stmt_end() else _Pipe([("lit", None)], [], 0, 0)
        self.no_comma = saved
        self.skip_nl()
        self.expect(")")
        return ("foreach", var, coll, self.brace_block())

    def function_stmt(self) -> Any:
        self.next()
        name = self.next().value
        params = self.param_list() if self.kind() == "(" else []
        body = self.brace_block()
        if body and body[0][0] == "param":
            params = body[0][1]
            body = body[1:]
        return ("function", name, params, body)

    # -- pipelines and commands
    def pipeline(self) -> _Pipe:
        start = self.peek().start
        elems = [self.element()]
        while self.kind() == "|":
            self.next()
            self.skip_nl()
            if self.at_stmt_end():
                break
            elems.append(self.element())
        redirs = []
        while self.kind() == "REDIR":
            r = self.next()
            target = None if "&" in r.value or self.at_cmd_end() else self.arg_primary()
            redirs.append((r.value, target))
        return _Pipe(elems, redirs, start, self.prev_end())

    def element(self) -> Any:
        t = self.peek()
        if t.kind == "&" or (t.kind == "WORD" and t.value == "." and self.kind(1) != "EOF"):
            self.next()
            return self.command(self.arg_primary(), t.start)
        if t.kind == "WORD":
            self.next()
            return self.command(("lit", t.value), t.start)
        return self.expr()

    def command(self, name: Any, start: int) -> _Cmd:
        args: list = []
        redirs: list = []
        while not self.at_cmd_end():
            t = self.peek()
            if t.kind == "PARAM":
                self.next()
                pname, colon = t.value
                args.append(("param", pname, self.arg_value() if colon and not self.at_cmd_end() else None, colon))
            elif t.kind == "REDIR":
                self.next()
                target = None if "&" in t.value or self.at_cmd_end() else self.arg_primary()
                redirs.append((t.value, target))
            else:
                args.append(("val", self.arg_value()))
        return _Cmd(name, args, redirs, start, self.prev_end())

    def arg_value(self) -> Any:
        items = [self.arg_primary()]
        while self.kind() == ",":
            self.next()
            self.skip_nl()
            if self.at_cmd_end():
                break
            items.append(self.arg_primary())
        return items[0] if len(items) == 1 else ("list", items)

    def arg_primary(self) -> Any:
        t = self.peek()
        if t.kind in ("WORD", "PARAM", "=", "OP", "RANGE", "ATTR", "::", "DOT", "MEMBER", "INDEX", "&"):
            self.next()
            if t.kind == "WORD":
                return ("lit", t.value)
            return ("lit", self.src[t.start:t.end])
        return self.postfix(self.primary())

    # -- expressions
    def expr(self) -> Any:
        left = self.comparison()
        while self.kind() == "PARAM" and self.peek().value[0].lower() in ("and", "or", "xor"):
            op = self.next().value[0].lower()
            self.skip_nl()
            left = ("bin", op, left, self.comparison())
        return left

    def comparison(self) -> Any:
        left = self.additive()
        while self.kind() == "PARAM" and self.peek().value[0].lower() in _CMP_OPS:
            op = self.next().value[0].lower()
            self.skip_nl()
            left = ("bin", op, left, self.additive())
        return left

    def additive(self) -> Any:
        left = self.multiplicative()
        while self.kind() == "WORD" and self.peek().value in ("+", "-"):
            op = self.next().value
            self.skip_nl()
            left = ("bin", op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Any:
        left = self.format_range()
        while self.kind() == "WORD" and self.peek().value in ("*", "/", "%"):
            op = self.next().value
            self.skip_nl()
            left = ("bin", op, left, self.format_range())
        return left

    def format_range(self) -> Any:
        left = self.unary()
        if self.kind() == "PARAM" and self.peek().value[0].lower() == "f":
            self.next()
            return ("fmt", left, self.unary())
        if self.kind() == "RANGE":
            self.next()
            return ("range", left, self.unary())
        return left

    def unary(self) -> Any:
        t = self.peek()
        if (t.kind == "OP" and t.value == "!") or (t.kind == "PARAM" and t.value[0].lower() == "not"):
            self.next()
            return ("not", self.unary())
        if t.kind == "WORD" and t.value == "-":
            self.next()
            return ("neg", self.unary())
        if t.kind == "TYPE" and self.kind(1) != "::":
            self.next()
            return ("cast", t.value, self.unary())
        return self.comma_list()

    def comma_list(self) -> Any:
        first = self.postfix(self.primary())
        if self.no_comma or self.kind() != ",":
            return first
        items = [first]
        while self.kind() == ",":
            self.next()
            self.skip_nl()
            items.append(self.postfix(self.primary()))
        return ("list", items)

    def primary(self) -> Any:
        t = self.peek()
        k = t.kind
        if k in ("NUM", "STR"):
            self.next()
            return ("lit", t.value)
        if k == "XSTR":
            self.next()
            return ("xstr", t.value)
        if k == "VAR":
            self.next()
            return ("var", t.value)
        if k == "(":
            self.next()
            self.skip_nl()
            saved, self.no_comma = self.no_comma, 0
            inner = self.statement() if self.kind() != ")" else None
            self.no_comma = saved
            self.skip_terms()
            self.expect(")")
            return ("paren", inner)
        if k in ("$(", "@("):
            self.next()
            stmts = self.block((")",))
            self.expect(")")
            return ("sub" if k == "$(" else "arr", stmts)
        if k == "@{":
            self.next()
            return self.hashtable()
        if k == "{":
            self.next()
            return self.scriptblock(t)
        if k == "TYPE":
            self.next()
            if self.kind() == "::":
                self.next()
                member = self.next().value
                args = self.call_args() if self.kind() == "(" and not self.peek().space else None
                return ("static", t.value, member, args)
            return ("cast", t.value, self.unary())
        if k in ("NL", ";", "|", ")", "}", "EOF", ","):
            return ("lit", None)
        self.next()
        return ("lit", t.value if k == "WORD" else self.src[t.start:t.end])

    def postfix(self, node: Any) -> Any:
        while True:
            k = self.kind()
            if k == "DOT" and self.kind(1) == "MEMBER":
                self.next()
                name = self.next().value
                if self.kind() == "(" and not self.peek().space:
                    node = ("call", node, name, self.call_args())
                else:
                    node = ("member", node, name)
            elif k == "INDEX":
                node = ("index", node, self.next().value)
            else:
                return node

    def call_args(self) -> list:
        self.next()  # (
        args = []
        saved, self.no_comma = self.no_comma, 1
        self.skip_nl()
        while self.kind() not in (")", "EOF"):
            before = self.i
            args.append(self.expr())
            self.skip_nl()
            if self.kind() == ",":
                self.next()
                self.skip_nl()
            elif self.i == before:
                self.i += 1
            elif self.kind() != ")":
                break
        self.expect(")")
        self.no_comma = saved
        return args

    def hashtable(self) -> Any:
        pairs = []
        saved, self.no_comma = self.no_comma, 0
        while True:
            self.skip_terms()
            k = self.kind()
            if k in ("}", "EOF"):
                self.expect("}")
                break
            key_tok = self.next()
            key = key_tok.value if key_tok.kind in ("WORD", "STR", "XSTR", "NUM") else self.src[key_tok.start:key_tok.end]
            self.skip_nl()
            if self.kind() != "=":
                continue
            self.next()
            self.skip_nl()
            pairs.append((_to_str(key), self.pipeline()))
        self.no_comma = saved
        return ("hash", pairs)

    def scriptblock(self, open_tok: _Tok) -> Any:
        stmts = self.block(("}",))
        close = self.peek()
        self.expect("}")
        text = self.src[open_tok.end:close.start] if close.kind == "}" else self.src[open_tok.end:]
        params: list = []
        if stmts and stmts[0][0] == "param":
            params = stmts[0][1]
            stmts = stmts[1:]
        return ("block", stmts, text, params)


def _parse(src: str) -> list:
    return _Parser(_lex(src), src).block()


# ------------------------------------------------------------------------------------- interpreter


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class _Terminating(Exception):
    def __init__(self, record: _ErrorRecord) -> None:
        self.record = record


class _StatementTerminating(_Terminating):
    """Ends the statement (caught by try/catch); at script level the script goes on with the next one."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ReturnSignal(Exception):
    pass


class _Budget(Exception):
    pass


_NOVAL = object()
_MISSING = object()
_MAX_STEPS = 200_000
_MAX_RANGE = 10_000
_MAX_STRING = 1_000_000
_BACKTICK = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class _Spec:
    __slots__ = ("aliases", "names", "positional", "switches")

    def __init__(self, params: Sequence[str], positional: Sequence[str], switches: Sequence[str],
                 aliases: Mapping[str, str]) -> None:
        self.switches = frozenset(s.lower() for s in switches)
        self.names = [p.lower() for p in params] + [s.lower() for s in switches]
        self.positional = [p.lower() for p in positional]
        self.aliases = {k.lower(): v.lower() for k, v in aliases.items()}


_COMMON_PARAMS = {"erroraction": "erroraction", "ea": "erroraction", "warningaction": "warningaction",
                  "wa": "warningaction", "informationaction": "informationaction", "infa": "informationaction",
                  "errorvariable": "errorvariable", "ev": "errorvariable", "outvariable": "outvariable",
                  "ov": "outvariable", "warningvariable": "warningvariable", "wv": "warningvariable",
                  "informationvariable": "informationvariable", "iv": "informationvariable", "outbuffer": "outbuffer",
                  "ob": "outbuffer", "pipelinevariable": "pipelinevariable", "pv": "pipelinevariable"}
_COMMON_SWITCHES = {"verbose": "verbose", "vb": "verbose", "debug": "debug", "db": "debug", "whatif": "whatif",
                    "wi": "whatif", "confirm": "confirm", "cf": "confirm"}


def _resolve(spec: _Spec, name: str) -> tuple[str, bool]:
    low = spec.aliases.get(name.lower(), name.lower())
    if low in spec.names:
        return low, low in spec.switches
    if low in _COMMON_PARAMS:
        return _COMMON_PARAMS[low], False
    if low in _COMMON_SWITCHES:
        return _COMMON_SWITCHES[low], True
    cands = [p for p in spec.names if p.startswith(low)]
    if len(cands) == 1:
        return cands[0], cands[0] in spec.switches
    cands = [p for p in ("erroraction", "warningaction", "informationaction", "errorvariable", "outvariable")
             if p.startswith(low)]
    if len(cands) == 1:
        return cands[0], False
    return low, False


def _bind(spec: _Spec, raw: list[tuple[str, str | None, Any]]) -> tuple[dict[str, Any], list[Any]]:
    named: dict[str, Any] = {}
    positional: list[Any] = []
    i = 0
    while i < len(raw):
        kind, name, value = raw[i]
        if kind == "val":
            positional.append(value)
        else:
            canon, is_switch = _resolve(spec, name or "")
            if value is _NOVAL:
                if not is_switch and i + 1 < len(raw) and raw[i + 1][0] == "val":
                    value = raw[i + 1][2]
                    i += 1
                else:
                    value = True
            named[canon] = value
        i += 1
    free = [p for p in spec.positional if p not in named]
    extra = []
    for j, v in enumerate(positional):
        if j < len(free):
            named[free[j]] = v
        else:
            extra.append(v)
    return named, extra


@dataclass
class _Call:
    name: str
    args: dict[str, Any]
    extra: list[Any]
    input: list[Any] | None
    node: _Cmd
    ea: str
    raw: list[tuple[str, str | None, Any]] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)

    def flag(self, key: str) -> bool:
        return _truthy(self.args.get(key, False))

    def items(self) -> list[Any]:
        return list(self.input) if self.input is not None else []


_COMMANDS: dict[str, tuple[Callable[..., Any], _Spec, str, float]] = {}
_ALIASES: dict[str, str] = {}


def _command(name: str, *, params: str = "", positional: str = "", switches: str = "", aliases: Sequence[str] = (),
             cost: float = 0.05, palias: Mapping[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    spec = _Spec(params.split(), positional.split(), switches.split(), palias or {})

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _COMMANDS[name.lower()] = (fn, spec, name, cost)
        for a in aliases:
            _ALIASES[a.lower()] = name.lower()
        return fn

    return deco


def _collapse(vals: list[Any]) -> Any:
    if not vals:
        return None
    return vals[0] if len(vals) == 1 else list(vals)


def _enumerate(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _as_list(v: Any) -> list[Any]:
    if v is None or v is _NOVAL:
        return []
    out: list[Any] = []
    for x in v if isinstance(v, list) else [v]:
        out.extend(x if isinstance(x, list) else [x])
    return out


def _truthy(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        return len(v) > 0
    if isinstance(v, list):
        return len(v) > 1 or (len(v) == 1 and _truthy(v[0]))
    if isinstance(v, _Enum):
        return v.value != 0
    return True


def _truthy_list(vals: list[Any]) -> bool:
    if not vals:
        return False
    return _truthy(vals[0]) if len(vals) == 1 else True


_NUM_TEXT = re.compile(r"^\s*([+-]?)(0x[0-9a-f]+|\d*\.?\d+(?:e[+-]?\d+)?)(kb|mb|gb|tb|pb)?\s*$", re.I)


def _to_num(v: Any) -> int | float:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if v is None:
        return 0
    if isinstance(v, _Enum):
        return v.value
    if isinstance(v, str):
        if not v.strip():
            return 0
        m = _NUM_TEXT.match(v)
        if m:
            body = m[2].lower()
            n: int | float = int(body, 16) if body.startswith("0x") else (
                float(body) if any(ch in body for ch in ".e") else int(body))
            if m[3]:
                n *= _MULT[m[3].lower()]
            return -n if m[1] == "-" else n
    raise ValueError(f"not a number: {v!r}")


def _to_int(v: Any, default: int = 0) -> int:
    try:
        n = _to_num(v)
    except ValueError:
        return default
    if isinstance(n, float):
        if not math.isfinite(n):
            return default
        return round(n)
    return n


def _has_wild(s: str) -> bool:
    return any(ch in s for ch in "*?[")


_WILD_CACHE: dict[tuple[str, bool], re.Pattern[str]] = {}


def _wild(pattern: str, text: str, cs: bool = False) -> bool:
    key = (pattern, cs)
    rx = _WILD_CACHE.get(key)
    if rx is None:
        out = []
        i = 0
        while i < len(pattern):
            c = pattern[i]
            if c == "`" and i + 1 < len(pattern):
                out.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            if c == "*":
                out.append(".*")
            elif c == "?":
                out.append(".")
            elif c == "[" and (j := pattern.find("]", i + 1)) > i + 1:
                out.append("[" + pattern[i + 1:j].replace("\\", "\\\\").replace("^", "\\^") + "]")
                i = j + 1
                continue
            else:
                out.append(re.escape(c))
            i += 1
        try:
            rx = re.compile("".join(out), re.S | (0 if cs else re.I))
        except re.error:
            rx = re.compile(re.escape(pattern), re.S | (0 if cs else re.I))
        if len(_WILD_CACHE) < 512:
            _WILD_CACHE[key] = rx
    return rx.fullmatch(text) is not None


def _parse_date(text: str) -> datetime | None:
    t = text.strip()
    dt = _parse_iso(t)
    if dt:
        return dt
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?", t)
    if m:
        hour = int(m[4] or 0)
        if m[7]:
            hour = hour % 12 + (12 if m[7].lower() == "pm" else 0)
        try:
            return datetime(int(m[3]), int(m[1]), int(m[2]), hour, int(m[5] or 0), int(m[6] or 0), tzinfo=UTC)
        except ValueError:
            return None
    return None


def _compare(left: Any, right: Any, cs: bool = False) -> int | None:
    """-1/0/1 like PowerShell compares (right converted to left's type), None if incomparable."""
    if isinstance(left, list):
        left = _to_str(left)
    if left is None:
        return 0 if right is None else -1
    if right is None:
        return 1
    if isinstance(left, bool):
        rb = _truthy(right)
        return (left > rb) - (left < rb)
    if _is_num(left) or (isinstance(left, _Enum) and _is_num(right)):
        try:
            a, b = _to_num(left), _to_num(right)
            return (a > b) - (a < b)
        except ValueError:
            pass
    if isinstance(left, datetime):
        other = right if isinstance(right, datetime) else _parse_date(_to_str(right))
        if other is not None:
            a_ts, b_ts = left.timestamp(), (other if other.tzinfo else other.replace(tzinfo=UTC)).timestamp()
            return (a_ts > b_ts) - (a_ts < b_ts)
    if isinstance(left, timedelta) and isinstance(right, timedelta):
        return (left > right) - (left < right)
    if isinstance(left, _Version):
        other_v = right if isinstance(right, _Version) else _Version.parse(_to_str(right))
        if other_v is not None:
            return (left.parts > other_v.parts) - (left.parts < other_v.parts)
    a, b = _to_str(left), _to_str(right)
    if not cs:
        a, b = a.lower(), b.lower()
    return (a > b) - (a < b)


def _cmp(op: str, left: Any, right: Any, cs: bool = False) -> bool:
    if op in ("like", "notlike"):
        res = _wild(_to_str(right), _to_str(left), cs)
        return res if op == "like" else not res
    if op in ("match", "notmatch"):
        try:
            res = re.search(_to_str(right), _to_str(left), 0 if cs else re.I) is not None
        except re.error:
            res = False
        return res if op == "match" else not res
    c = _compare(left, right, cs)
    if op == "eq":
        return c == 0
    if op == "ne":
        return c != 0
    if c is None:
        return False
    return {"gt": c > 0, "ge": c >= 0, "lt": c < 0, "le": c <= 0}.get(op, False)


def _sort_key(v: Any) -> tuple:
    if v is None:
        return (0, 0)
    if isinstance(v, (bool, int, float, _Enum)):
        try:
            return (1, float(_to_num(v)))
        except (ValueError, OverflowError):
            return (1, 0.0)
    if isinstance(v, datetime):
        return (2, v.timestamp())
    if isinstance(v, timedelta):
        return (2, v.total_seconds())
    if isinstance(v, _Version):
        return (3, v.parts)
    return (4, _to_str(v).lower())


def _type_name(v: Any) -> str:
    if isinstance(v, _Obj):
        return v.type
    return {bool: "System.Boolean", int: "System.Int32", float: "System.Double", str: "System.String"}.get(
        type(v), "System.Object")


def _composite(fmt: str, args: list[Any]) -> str:
    """The -f operator: {0}, {0,-10}, {0:N2}, {0:yyyy-MM-dd}."""
    def one(m: re.Match[str]) -> str:
        idx, align, spec = int(m[1]), m[2], m[3]
        v = args[idx] if idx < len(args) else None
        text = _format_value(v, spec) if spec else _to_str(v)
        if align:
            width = int(align)
            text = text.rjust(width) if width > 0 else text.ljust(-width)
        return text

    out = re.sub(r"\{(\d+)(?:,\s*(-?\d+))?(?::([^}]*))?\}", one, fmt)
    return out.replace("{{", "{").replace("}}", "}")


def _format_value(v: Any, spec: str) -> str:
    if isinstance(v, datetime):
        return _net_format(v, spec)
    try:
        n = _to_num(v)
    except ValueError:
        return _to_str(v)
    m = re.fullmatch(r"([NnFfDdPpXxCc])(\d*)", spec)
    if not m:
        if re.fullmatch(r"[#0,.]+", spec):
            decimals = len(spec.split(".")[1]) if "." in spec else 0
            return f"{n:{',' if ',' in spec else ''}.{decimals}f}"
        return _to_str(v)
    kind, digits = m[1].upper(), m[2]
    if kind in ("N", "F", "P") and isinstance(n, float) and math.isfinite(n):
        # .NET rounds midpoints away from zero when formatting (1.25 -> "1.3"); Python rounds to even
        places = int(digits or 2) + (2 if kind == "P" else 0)
        n = float(decimal.Decimal(repr(n)).quantize(decimal.Decimal(1).scaleb(-places), decimal.ROUND_HALF_UP))
    if kind == "N":
        return f"{n:,.{int(digits or 2)}f}"
    if kind == "F":
        return f"{n:.{int(digits or 2)}f}"
    if kind == "D":
        return f"{int(n):0{int(digits or 1)}d}"
    if kind == "P":
        return f"{n * 100:,.{int(digits or 2)}f} %"
    if kind == "X":
        return f"{int(n):0{int(digits or 1)}{'X' if m[1] == 'X' else 'x'}}"
    return f"${n:,.{int(digits or 2)}f}"


class _Interp:
    def __init__(self, g: _Guest, now_utc: datetime, parameters: Mapping[str, str] | None, script_path: str) -> None:
        self.g = g
        self.now_utc = now_utc
        self.tz = g.tz[4]
        self.now = now_utc.astimezone(self.tz)
        self.boot = (now_utc - g.uptime).astimezone(self.tz).replace(microsecond=0)
        self.script_path = script_path
        self.cwd = script_path.rsplit("\\", 1)[0]
        self.src = ""
        self.out: list[str] = []
        self.err: list[str] = []
        self.errors: list[_ErrorRecord] = []
        self.had_error = False
        self.cost = 0.0
        self.restart = False
        self.unrec: list[str] = []
        self.vars: dict[str, Any] = {}
        self.env_over: dict[str, str] = {}
        self.functions: dict[str, tuple[list, list]] = {}
        self.ea_pref = "continue"
        self.suppress_err = 0
        self.depth = 0
        self.try_depth = 0
        self.steps = 0
        self.services = [_Svc(s.name, s.display, s.status, s.start_type) for s in g.services]
        self.features = [_Feature(f.name, f.display, f.depth, f.ftype, f.parent, f.state) for f in g.features]
        for k, v in (parameters or {}).items():
            name = str(k).lstrip("$").lower()
            if name:
                self.vars[name] = v if isinstance(v, str) else _to_str(v)

    # -- running
    def run(self, script: str) -> ScriptResult:
        self.src = script
        exit_code: int | None = None
        try:
            stmts = _parse(script)
        except RecursionError:
            stmts = []
            self.unrec.append("<script too deeply nested>")
        try:
            for s in stmts:
                sink: list[Any] = []
                try:
                    self.exec_stmt(s, sink)
                except _StatementTerminating as e:
                    self.write_error(e.record)
                except (_Exit, _Terminating, _ReturnSignal, _Break, _Continue, _Budget):
                    raise
                except RecursionError:
                    self.unrec.append("<statement too deeply nested>")
                except Exception as e:  # an interpreter gap must never fail the run; it is reported
                    self.unrec.append(f"<error {type(e).__name__} in {_stmt_label(s)}>")
                finally:
                    self.emit(sink)
        except _Exit as e:
            exit_code = e.code
        except _Terminating as e:
            self.write_error(e.record)
            exit_code = 1
        except (_ReturnSignal, _Break, _Continue):
            pass
        except _Budget:
            self.unrec.append("<step budget exhausted>")
        if exit_code is None:
            exit_code = 1 if self.had_error else 0
        jitter = (_h(self.g.machine_id.lower(), script) % 80) / 100
        duration = round(1.0 + jitter + self.cost, 2)
        seen: list[str] = []
        for u in self.unrec:
            u = u if len(u) <= 80 else u[:77] + "..."
            if u not in seen and len(seen) < 50:
                seen.append(u)
        return ScriptResult("".join(self.out), "".join(self.err), exit_code, duration, self.restart, tuple(seen))

    def emit(self, values: list[Any]) -> None:
        lines = _render(values)
        if lines:
            self.out.append("\n".join(lines) + "\n")

    def host(self, text: str, newline: bool = True) -> None:
        self.out.append(text + ("\n" if newline else ""))

    def write_error(self, rec: _ErrorRecord) -> None:
        self.err.append(rec.render(self.script_path))
        self.had_error = True

    def position(self, start: int, end: int) -> tuple[int, int, str, int]:
        src = self.src
        start = max(0, min(start, len(src)))
        line_start = src.rfind("\n", 0, start) + 1
        line_end = src.find("\n", start)
        line_end = len(src) if line_end < 0 else line_end
        text = src[line_start:line_end].rstrip("\r")
        return src.count("\n", 0, start) + 1, start - line_start + 1, text, max(1, min(end, line_end) - start)

    def error(self, call: _Call | None, message: str, *, category: str = "NotSpecified", target: str = "",
              reason: str = "Exception", fqid: str = "", node: Any = None, activity: str | None = None) -> None:
        where = node if node is not None else (call.node if call else None)
        pos = self.position(where.start, where.end) if where is not None else None
        act = activity if activity is not None else (call.name if call else "")
        rec = _ErrorRecord(message, call.name if call else None, category, target, act, reason, fqid, pos)
        self.raise_or_write(rec, call.ea if call else self.ea_pref)

    def raise_or_write(self, rec: _ErrorRecord, ea: str) -> None:
        if ea == "stop":
            raise _Terminating(rec)
        if ea != "ignore":
            self.errors.append(rec)
        if ea in ("silentlycontinue", "ignore") or self.suppress_err:
            return
        self.write_error(rec)

    def tick(self) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise _Budget

    # -- statements
    def exec_block(self, stmts: list, sink: list[Any]) -> None:
        for s in stmts:
            try:
                self.exec_stmt(s, sink)
            except _StatementTerminating as e:
                if self.try_depth:  # a surrounding try/catch takes it
                    raise
                self.write_error(e.record)

    def exec_stmt(self, s: Any, sink: list[Any]) -> None:
        self.tick()
        tag = s[0]
        if tag == "pipe":
            sink.extend(self.run_pipe(s[1]))
        elif tag == "assign":
            _, target, op, pipe, _start = s
            value = _collapse(self.run_pipe(pipe))
            if op != "=":
                value = self.binop(op[0], self.eval(target), value)
            self.assign(target, value)
        elif tag == "if":
            for cond, body in s[1]:
                if self.cond_true(cond):
                    self.exec_block(body, sink)
                    return
            if s[2]:
                self.exec_block(s[2], sink)
        elif tag == "try":
            _, body, catches, final = s
            try:
                self.try_depth += 1
                try:
                    self.exec_block(body, sink)
                finally:
                    self.try_depth -= 1
            except _Terminating as e:
                if not catches:
                    raise
                saved = self.vars.get("_", _MISSING)
                self.vars["_"] = e.record
                try:
                    self.exec_block(catches[0], sink)
                finally:
                    self.restore("_", saved)
            finally:
                if final:
                    self.exec_block(final, sink)
        elif tag == "foreach":
            _, var, pipe, body = s
            for item in self.run_pipe(pipe):
                self.setvar(var, item)
                try:
                    self.exec_block(body, sink)
                except _Continue:
                    continue
                except _Break:
                    break
        elif tag == "exit":
            code = _to_int(_collapse(self.run_pipe(s[1])), 0) if s[1] is not None else 0
            raise _Exit((code + 2 ** 31) % 2 ** 32 - 2 ** 31)  # a process exit code is a 32-bit integer
        elif tag == "throw":
            value = _collapse(self.run_pipe(s[1])) if s[1] is not None else "ScriptHalted"
            if isinstance(value, _ErrorRecord):
                raise _Terminating(value)
            msg = _to_str(value)
            raise _Terminating(_ErrorRecord(msg, None, "OperationStopped", msg, "", "RuntimeException", msg,
                                            self.position(s[2], s[3])))
        elif tag == "return":
            if s[1] is not None:
                sink.extend(self.run_pipe(s[1]))
            raise _ReturnSignal
        elif tag == "break":
            raise _Break
        elif tag == "continue":
            raise _Continue
        elif tag == "param":
            for name, default in s[1]:
                if name.lower() not in self.vars:
                    self.vars[name.lower()] = self.eval(default) if default is not None else None
        elif tag == "function":
            self.functions[s[1].lower()] = (s[2], s[3])
        elif tag == "unsupported":
            self.unrec.append(_to_str(s[1]))

    def cond_true(self, cond: Any) -> bool:
        if isinstance(cond, _Pipe):
            return _truthy_list(self.run_pipe(cond))
        if cond[0] == "assign":
            self.exec_stmt(cond, [])
            return _truthy(self.eval(cond[1]))
        sink: list[Any] = []
        self.exec_stmt(cond, sink)
        return _truthy_list(sink)

    def restore(self, name: str, saved: Any) -> None:
        if saved is _MISSING:
            self.vars.pop(name, None)
        else:
            self.vars[name] = saved

    # -- variables
    def env(self, name: str) -> str | None:
        low = name.lower()
        if low in self.env_over:
            return self.env_over[low]
        g = self.g
        table = {
            "computername": g.netbios, "username": g.netbios + "$",
            "userdomain": g.domain.split(".")[0].upper() if g.joined else "WORKGROUP",
            "userdnsdomain": g.domain.upper() if g.joined else None, "os": "Windows_NT",
            "processor_architecture": "AMD64", "number_of_processors": str(g.cpus), "systemroot": "C:\\Windows",
            "windir": "C:\\Windows", "systemdrive": "C:", "programfiles": "C:\\Program Files",
            "programfiles(x86)": "C:\\Program Files (x86)", "programdata": "C:\\ProgramData",
            "programw6432": "C:\\Program Files", "temp": "C:\\Windows\\TEMP", "tmp": "C:\\Windows\\TEMP",
            "comspec": "C:\\Windows\\system32\\cmd.exe", "public": "C:\\Users\\Public",
            "userprofile": "C:\\Windows\\system32\\config\\systemprofile", "allusersprofile": "C:\\ProgramData",
            "appdata": "C:\\Windows\\system32\\config\\systemprofile\\AppData\\Roaming",
            "localappdata": "C:\\Windows\\system32\\config\\systemprofile\\AppData\\Local",
            "pathext": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC;.CPL",
            "path": "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;"
                    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\;C:\\Windows\\System32\\OpenSSH\\",
            "psmodulepath": "C:\\Program Files\\WindowsPowerShell\\Modules;C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules",
        }
        return table.get(low)

    def psversiontable(self) -> _Hashtable:
        v = _Version.parse(self.g.os.ps_version) or _Version([5, 1, 0, 0])
        build = _Version([10, 0, *v.parts[2:]])
        return _Hashtable([
            ("PSVersion", v), ("PSEdition", "Desktop"),
            ("PSCompatibleVersions", [_Version(p) for p in ((1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (5, 1, *v.parts[2:]))]),
            ("BuildVersion", build), ("CLRVersion", _Version([4, 0, 30319, 42000])), ("WSManStackVersion", _Version([3, 0])),
            ("PSRemotingProtocolVersion", _Version([2, 3])), ("SerializationVersion", _Version([1, 1, 0, 1])),
        ])

    def getvar(self, name: str) -> Any:
        low = name.lower()
        if low == "psitem":
            low = "_"
        if low in self.vars:
            return self.vars[low]
        if low.startswith("env:"):
            return self.env(low[4:])
        for scope in ("script:", "global:", "local:", "private:", "using:"):
            if low.startswith(scope):
                return self.getvar(name[len(scope):])
        builtin = {
            "true": True, "false": False, "null": None, "pshome": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0",
            "home": "C:\\Windows\\system32\\config\\systemprofile", "erroractionpreference": self.ea_pref.title(),
            "psculture": "en-US", "psuiculture": "en-US", "ofs": " ", "args": [], "psscriptroot": self.cwd,
            "pscommandpath": self.script_path, "?": not self.had_error, "pid": 4000 + (self.g.seed % 2000) * 4,
            "error": list(reversed(self.errors)), "lastexitcode": self.vars.get("__lastexitcode"),
        }
        if low == "psversiontable":
            return self.psversiontable()
        if low == "pwd":
            return _Obj("PathInfo", {"Drive": "C", "Provider": "Microsoft.PowerShell.Core\\FileSystem",
                                     "ProviderPath": self.cwd, "Path": self.cwd}, self.cwd)
        return builtin.get(low)

    def setvar(self, name: str, value: Any) -> None:
        low = name.lower()
        for scope in ("script:", "global:", "local:", "private:"):
            if low.startswith(scope):
                low = low[len(scope):]
        if low.startswith("env:"):
            self.env_over[low[4:]] = _to_str(value)
            return
        if low == "null":
            return
        if low == "erroractionpreference":
            self.ea_pref = _action_preference(value)
        if low == "psitem":
            low = "_"
        self.vars[low] = value

    def assign(self, target: Any, value: Any) -> None:
        if target[0] == "var":
            self.setvar(target[1], value)
        elif target[0] == "member":
            obj = self.eval(target[1])
            if isinstance(obj, _Obj):
                found = next((k for k in obj.props if k.lower() == target[2].lower()), target[2])
                obj.props[found] = value
            elif isinstance(obj, _Hashtable):
                found = next((k for k in obj if str(k).lower() == target[2].lower()), target[2])
                obj[found] = value
        elif target[0] == "index":
            obj = self.eval(target[1])
            if isinstance(obj, list) and -len(obj) <= target[2] < len(obj):
                obj[target[2]] = value

    # -- pipelines
    def run_pipe(self, p: _Pipe) -> list[Any]:
        out_null, err_null = _redirects(p.redirs)
        if err_null:
            self.suppress_err += 1
        try:
            data: list[Any] | None = None
            for el in p.elems:
                data = self.invoke(el, data) if isinstance(el, _Cmd) else _enumerate(self.eval(el))
        finally:
            if err_null:
                self.suppress_err -= 1
        return [] if out_null else list(data or [])

    def invoke(self, cmd: _Cmd, data: list[Any] | None) -> list[Any]:
        self.tick()
        name_val = self.eval(cmd.name)
        raw: list[tuple[str, str | None, Any]] = []
        for a in cmd.args:
            if a[0] == "param":
                raw.append(("param", a[1], self.eval(a[2]) if a[2] is not None else (_NOVAL if not a[3] else None)))
            else:
                raw.append(("val", None, self.eval(a[1])))
        if isinstance(name_val, _ScriptBlock):  # & { … } and . { … }
            return self.run_block(name_val, data[0] if data else _MISSING, [v for k, _, v in raw if k == "val"])
        typed = _to_str(name_val)
        base = re.split(r"[\\/]", typed)[-1]
        low = base.lower()
        if low.endswith(".exe"):
            low = low[:-4]
        if low in self.functions:
            return self.call_function(low, raw, data)
        canon = _ALIASES.get(low, low)
        entry = _COMMANDS.get(canon)
        if entry is None and "-" not in canon:
            entry = _COMMANDS.get("get-" + canon)
        if entry is None:
            self.unrec.append(typed)
            return []
        fn, spec, display, cost = entry
        named, extra = _bind(spec, raw)
        ea = named.pop("erroraction", None)
        ea_text = _action_preference(ea) if ea is not None else self.ea_pref
        call = _Call(display, named, extra, data, cmd, ea_text, raw)
        self.cost += cost
        out_null, err_null = _redirects(cmd.redirs)
        if err_null:
            self.suppress_err += 1
        try:
            result = fn(self, call)
        finally:
            if err_null:
                self.suppress_err -= 1
        return [] if out_null or result is None else list(result)

    def run_block(self, sb: _ScriptBlock, item: Any = _MISSING, args: Sequence[Any] = ()) -> list[Any]:
        self.tick()
        saved = self.vars.get("_", _MISSING)
        saved_params = {}
        if item is not _MISSING:
            self.vars["_"] = item
        for j, (pname, default) in enumerate(sb.params):
            low = pname.lower()
            saved_params[low] = self.vars.get(low, _MISSING)
            self.vars[low] = args[j] if j < len(args) else (self.eval(default) if default is not None else None)
        sink: list[Any] = []
        self.depth += 1
        try:
            if self.depth > 100:
                raise _Terminating(_ErrorRecord("The script failed due to call depth overflow.", None,
                                                "InvalidOperation", "", "", "ScriptCallDepthException",
                                                "CallDepthOverflow"))
            self.exec_block(sb.stmts, sink)
        except (_ReturnSignal, _Continue):
            pass
        finally:
            self.depth -= 1
            self.restore("_", saved)
            for low, old in saved_params.items():
                self.restore(low, old)
        return sink

    def call_function(self, low: str, raw: list, data: list[Any] | None) -> list[Any]:
        params, body = self.functions[low]
        names = [p[0].lower() for p in params]
        bound: dict[str, Any] = {}
        positional: list[Any] = []
        i = 0
        while i < len(raw):
            kind, pname, value = raw[i]
            if kind == "val":
                positional.append(value)
            else:
                key = (pname or "").lower()
                cands = [n for n in names if n == key] or [n for n in names if n.startswith(key)]
                if value is _NOVAL:
                    if i + 1 < len(raw) and raw[i + 1][0] == "val":
                        value = raw[i + 1][2]
                        i += 1
                    else:
                        value = True
                if cands:
                    bound[cands[0]] = value
            i += 1
        free = [n for n in names if n not in bound]
        for n, v in zip(free, positional, strict=False):
            bound[n] = v
        sb = _ScriptBlock(body, "", [])
        saved = {n: self.vars.get(n, _MISSING) for n in [*names, "args", "input"]}
        for (_pname, default), n in zip(params, names, strict=True):
            self.vars[n] = bound[n] if n in bound else (self.eval(default) if default is not None else None)
        self.vars["args"] = positional[len(free):]
        self.vars["input"] = list(data or [])
        try:
            return self.run_block(sb)
        finally:
            for n, old in saved.items():
                self.restore(n, old)

    # -- expressions
    def eval(self, n: Any) -> Any:
        tag = n[0]
        if tag == "lit":
            return n[1]
        if tag == "xstr":
            return self.expand(n[1])
        if tag == "var":
            return self.getvar(n[1])
        if tag == "member":
            return self.member(self.eval(n[1]), n[2])
        if tag == "call":
            return self.call_method(self.eval(n[1]), n[2], [self.eval(a) for a in n[3]])
        if tag == "static":
            return self.static(n[1], n[2], None if n[3] is None else [self.eval(a) for a in n[3]])
        if tag == "index":
            v = self.eval(n[1])
            idx = n[2]
            if isinstance(v, (list, str)):
                return v[idx] if -len(v) <= idx < len(v) else None
            if isinstance(v, _Hashtable):
                return v.find(str(idx))[1]
            return v if idx in (0, -1) else None
        if tag == "paren":
            inner = n[1]
            if inner is None:
                return None
            if inner[0] == "pipe":
                return _collapse(self.run_pipe(inner[1]))
            sink: list[Any] = []
            self.exec_stmt(inner, sink)
            return self.eval(inner[1]) if inner[0] == "assign" else _collapse(sink)
        if tag in ("sub", "arr"):
            sink = []
            self.exec_block(n[1], sink)
            return list(sink) if tag == "arr" else _collapse(sink)
        if tag == "list":
            return [self.eval(x) for x in n[1]]
        if tag == "hash":
            return _Hashtable((k, _collapse(self.run_pipe(p))) for k, p in n[1])
        if tag == "block":
            return _ScriptBlock(n[1], n[2], n[3])
        if tag == "not":
            return not _truthy(self.eval(n[1]))
        if tag == "neg":
            try:
                return -_to_num(self.eval(n[1]))
            except ValueError:
                return None
        if tag == "bin":
            op = n[1]
            if op in ("and", "or", "xor"):
                left = _truthy(self.eval(n[2]))
                if op == "and" and not left:
                    return False
                if op == "or" and left:
                    return True
                right = _truthy(self.eval(n[3]))
                return (left != right) if op == "xor" else right
            return self.binop(op, self.eval(n[2]), self.eval(n[3]))
        if tag == "cast":
            return self.cast(n[1], self.eval(n[2]))
        if tag == "range":
            a, b = _to_int(self.eval(n[1])), _to_int(self.eval(n[2]))
            step = 1 if b >= a else -1
            b = a + step * min(abs(b - a), _MAX_RANGE)
            return list(range(a, b + step, step))
        if tag == "fmt":
            return _composite(_to_str(self.eval(n[1])), _as_list(self.eval(n[2])) or [None])
        return None

    def expand(self, raw: str) -> str:
        out: list[str] = []
        i, n = 0, len(raw)
        while i < n:
            c = raw[i]
            if c == "`" and i + 1 < n:
                out.append(_BACKTICK.get(raw[i + 1], raw[i + 1]))
                i += 2
                continue
            if c in _QUOTES_D and i + 1 < n and raw[i + 1] in _QUOTES_D:
                out.append(c)
                i += 2
                continue
            if c == "$" and i + 1 < n:
                if raw[i + 1] == "(":
                    j = _scan_subexpr(raw, i + 1)
                    out.append(" ".join(_to_str(v) for v in self.run_fragment(raw[i + 2:j - 1])))
                    i = j
                    continue
                m = _VAR_RE.match(raw, i)
                if m:
                    out.append(_to_str(self.getvar(m[1] if m[1] is not None else m[2])))
                    i = m.end()
                    continue
            out.append(c)
            i += 1
        return "".join(out)

    def run_fragment(self, text: str) -> list[Any]:
        saved = self.src
        self.src = text
        try:
            sink: list[Any] = []
            self.exec_block(_parse(text), sink)
            return sink
        finally:
            self.src = saved

    def member(self, v: Any, name: str) -> Any:
        low = name.lower()
        if isinstance(v, list):
            if low in ("count", "length"):
                return len(v)
            found: list[Any] = []
            for x in v:
                r = self.member(x, name)
                if r is not None:
                    found.extend(r if isinstance(r, list) else [r])
            return _collapse(found)
        if v is None:
            return None
        if isinstance(v, _Obj):
            ok, val = v.find(name)
            if ok:
                return val
            return 1 if low == "count" else None
        if isinstance(v, _Hashtable):
            if low == "keys":
                return list(v.keys())
            if low == "values":
                return list(v.values())
            if low == "count":
                return len(v)
            return v.find(name)[1]
        if isinstance(v, str):
            return len(v) if low == "length" else (1 if low == "count" else None)
        if isinstance(v, datetime):
            return {
                "year": v.year, "month": v.month, "day": v.day, "hour": v.hour, "minute": v.minute, "second": v.second,
                "millisecond": v.microsecond // 1000, "dayofweek": _Enum(_DAYS[v.weekday()], (v.weekday() + 1) % 7),
                "dayofyear": v.timetuple().tm_yday, "date": v.replace(hour=0, minute=0, second=0, microsecond=0),
                "timeofday": timedelta(hours=v.hour, minutes=v.minute, seconds=v.second, microseconds=v.microsecond),
                "ticks": int((v.replace(tzinfo=None) - datetime(1, 1, 1)).total_seconds() * 10_000_000),
                "kind": _Enum("Utc", 1) if v.tzinfo is UTC else _Enum("Local", 2), "datetime": _dt_long(v),
            }.get(low)
        if isinstance(v, timedelta):
            return _timespan_obj(v).find(name)[1]
        if isinstance(v, _Version):
            return v.member(name)
        if isinstance(v, _Enum):
            return v.value if low == "value__" else None
        if isinstance(v, _ErrorRecord):
            if low == "exception":
                return _Obj("Exception", {"Message": v.message}, v.message)
            if low == "categoryinfo":
                return _Obj("ErrorCategoryInfo", {"Category": v.category, "Reason": v.reason, "TargetName": v.target},
                            f"{v.category}: ({v.target}:String) [{v.activity}], {v.reason}")
            return {"fullyqualifiederrorid": v.fqid, "targetobject": v.target, "message": v.message}.get(low)
        if low == "count":
            return 1
        return None

    def call_method(self, v: Any, name: str, args: list[Any]) -> Any:
        low = name.lower()
        if low == "tostring":
            if args and isinstance(v, datetime):
                return _net_format(v, _to_str(args[0]))
            if args and _is_num(v):
                return _format_value(v, _to_str(args[0]))
            return _dt_general(v) if isinstance(v, datetime) else _to_str(v)
        if low == "gettype":
            t = _type_name(v)
            return _Obj("RuntimeType", {"IsPublic": True, "IsSerial": True, "Name": t.rsplit(".", 1)[-1],
                                        "BaseType": "System.Object"}, t)
        if low == "equals" and args:
            return _compare(v, args[0], cs=True) == 0
        if isinstance(v, str):
            return _str_method(v, low, args)
        if isinstance(v, datetime):
            if low.startswith("add") and args:
                try:
                    amount = float(_to_num(args[0]))
                except ValueError:
                    return None
                unit = low[3:]
                if unit in ("days", "hours", "minutes", "seconds", "milliseconds"):
                    return v + timedelta(**{unit: amount})
                if unit in ("months", "years"):
                    months = int(amount) * (12 if unit == "years" else 1)
                    y, mo = divmod(v.month - 1 + months, 12)
                    day = min(v.day, [31, 29 if (v.year + y) % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo])
                    return v.replace(year=v.year + y, month=mo + 1, day=day)
                return None
            return {
                "touniversaltime": lambda: v.astimezone(UTC), "tolocaltime": lambda: v.astimezone(self.tz),
                "toshortdatestring": lambda: _net_format(v, "d"), "tolongdatestring": lambda: _net_format(v, "D"),
                "toshorttimestring": lambda: _net_format(v, "t"), "tolongtimestring": lambda: _net_format(v, "T"),
                "subtract": lambda: (v - args[0]) if args and isinstance(args[0], (datetime, timedelta)) else None,
            }.get(low, lambda: None)()
        if isinstance(v, list):
            if low == "contains" and args:
                return any(_compare(x, args[0]) == 0 for x in v)
            if low == "indexof" and args:
                return next((i for i, x in enumerate(v) if _compare(x, args[0]) == 0), -1)
            return None
        if isinstance(v, _Hashtable):
            if low in ("containskey", "contains") and args:
                return v.find(_to_str(args[0]))[0]
            if low == "add" and len(args) == 2:
                v[_to_str(args[0])] = args[1]
            return None
        if isinstance(v, _ScriptBlock) and low in ("invoke", "invokereturnasis"):
            return _collapse(self.run_block(v, _MISSING, args))
        return None

    def static(self, type_name: str, member: str, args: list[Any] | None) -> Any:
        t = type_name.lower().removeprefix("system.")
        m = member.lower()
        g = self.g
        a0 = args[0] if args else None
        if t == "net.dns":
            if m == "gethostname":
                return g.computer_name
            if m in ("gethostentry", "gethostbyname", "resolve"):
                return _Obj("IPHostEntry", {"HostName": g.fqdn, "Aliases": [], "AddressList": [g.nics[0].ipv4]},
                            "System.Net.IPHostEntry")
        elif t == "environment":
            osv = f"Microsoft Windows NT {g.os.version}.0"
            return {
                "machinename": lambda: g.netbios, "username": lambda: "SYSTEM", "userdomainname": lambda: "NT AUTHORITY",
                "processorcount": lambda: g.cpus, "is64bitoperatingsystem": lambda: True, "is64bitprocess": lambda: True,
                "newline": lambda: "\n", "systemdirectory": lambda: "C:\\Windows\\system32",
                "currentdirectory": lambda: self.cwd, "tickcount": lambda: int(g.uptime.total_seconds() * 1000) % 2 ** 31,
                "osversion": lambda: _Obj("OperatingSystem", {"Platform": _Enum("Win32NT", 2), "ServicePack": "",
                                                              "Version": _Version.parse(g.os.version + ".0"),
                                                              "VersionString": osv}, osv),
                "getenvironmentvariable": lambda: self.env(_to_str(a0)),
            }.get(m, lambda: None)()
        elif t == "datetime":
            if m == "now":
                return self.now
            if m == "utcnow":
                return self.now_utc
            if m == "today":
                return self.now.replace(hour=0, minute=0, second=0, microsecond=0)
            if m == "parse" and a0 is not None:
                return _parse_date(_to_str(a0))
        elif t == "math":
            try:
                nums = [_to_num(x) for x in args or []]
            except ValueError:
                return None
            if m == "pi":
                return math.pi
            fn = {"round": lambda: round(nums[0], int(nums[1]) if len(nums) > 1 else None),
                  "floor": lambda: math.floor(nums[0]), "ceiling": lambda: math.ceil(nums[0]),
                  "truncate": lambda: math.trunc(nums[0]), "abs": lambda: abs(nums[0]), "max": lambda: max(nums[:2]),
                  "min": lambda: min(nums[:2]), "sqrt": lambda: math.sqrt(nums[0]), "pow": lambda: nums[0] ** nums[1]}.get(m)
            try:
                return fn() if fn and nums else None
            except (ValueError, OverflowError, IndexError, TypeError):
                return None
        elif t == "security.principal.windowsidentity" and m == "getcurrent":
            return _Obj("WindowsIdentity", {"Name": "NT AUTHORITY\\SYSTEM", "AuthenticationType": "Negotiate",
                                            "IsAuthenticated": True, "IsSystem": True, "IsAnonymous": False},
                        "System.Security.Principal.WindowsIdentity")
        elif t == "timespan" and m.startswith("from") and a0 is not None:
            unit = m[4:]
            with contextlib.suppress(ValueError, OverflowError):
                if unit in ("days", "hours", "minutes", "seconds", "milliseconds"):
                    return timedelta(**{unit: float(_to_num(a0))})
        elif t == "string":
            if m in ("isnullorempty", "isnullorwhitespace"):
                s = _to_str(a0)
                return not (s.strip() if m.endswith("whitespace") else s)
            if m == "join" and args and len(args) >= 2:
                return _to_str(args[0]).join(_to_str(x) for x in _as_list(args[1:]))
            if m == "empty":
                return ""
        elif t in ("int", "int32") and m in ("maxvalue", "minvalue"):
            return 2147483647 if m == "maxvalue" else -2147483648
        elif t == "io.path" and m == "combine" and args:
            return "\\".join(_to_str(x).strip("\\") if i else _to_str(x).rstrip("\\") for i, x in enumerate(args))
        self.unrec.append(f"[{type_name}]::{member}")
        return None

    def cast(self, type_name: str, v: Any) -> Any:
        t = type_name.lower().removeprefix("system.")
        if t == "void":
            return None
        if t.endswith("[]") or t == "array":
            return _enumerate(v) if not isinstance(v, list) else v
        try:
            if t in ("int", "int32", "int64", "long", "uint32", "uint64", "byte", "int16"):
                return _to_int(v) if not isinstance(v, str) or _NUM_TEXT.match(v) else None
            if t in ("double", "float", "single", "decimal"):
                return float(_to_num(v))
        except (ValueError, OverflowError):
            return None
        if t == "string":
            return _to_str(v)
        if t in ("bool", "boolean", "switch"):
            return _truthy(v)
        if t == "datetime":
            return v if isinstance(v, datetime) else _parse_date(_to_str(v))
        if t == "version":
            return v if isinstance(v, _Version) else _Version.parse(_to_str(v))
        if t in ("pscustomobject", "psobject") and isinstance(v, _Hashtable):
            return _Obj("PSCustomObject", dict(v.items()))
        return v

    def binop(self, op: str, left: Any, right: Any) -> Any:
        cs = False
        if op[:1] in ("c", "i") and op[1:] in _CMP_BASE:
            cs, op = op[0] == "c", op[1:]
        if op in ("+", "-", "*", "/", "%"):
            return _arith(op, left, right)
        if op in ("eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch"):
            if isinstance(left, list):
                return [x for x in left if _cmp(op, x, right, cs)]
            return _cmp(op, left, right, cs)
        if op in ("contains", "notcontains"):
            res = any(_cmp("eq", x, right, cs) for x in _enumerate(left))
            return res if op == "contains" else not res
        if op in ("in", "notin"):
            res = any(_cmp("eq", x, left, cs) for x in _enumerate(right))
            return res if op == "in" else not res
        if op == "replace":
            pair = _as_list(right)
            pattern = _to_str(pair[0]) if pair else ""
            repl = re.sub(r"\$(\d+)", r"\\g<\1>", _to_str(pair[1]) if len(pair) > 1 else "")
            try:
                rx = re.compile(pattern, 0 if cs else re.I)
                if isinstance(left, list):
                    return [rx.sub(repl, _to_str(x)) for x in left]
                return rx.sub(repl, _to_str(left))
            except (re.error, IndexError):
                return left
        if op == "split":
            try:
                return re.split(_to_str(right), _to_str(left), flags=0 if cs else re.I)
            except re.error:
                return [_to_str(left)]
        if op == "join":
            return _to_str(right).join(_to_str(x) for x in _enumerate(left))
        if op in ("is", "isnot"):
            want = _to_str(right).strip("[]").lower().removeprefix("system.")
            res = want in (_type_name(left).lower().removeprefix("system."), "object", "psobject")
            return res if op == "is" else not res
        if op == "as":
            return self.cast(_to_str(right).strip("[]"), left)
        return None


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        if a is None:
            return b
        if isinstance(a, str):
            res = a + _to_str(b)
            return res[:_MAX_STRING]
        if isinstance(a, list):
            return a + (b if isinstance(b, list) else [b])
        if isinstance(a, _Hashtable) and isinstance(b, _Hashtable):
            merged = _Hashtable(a)
            merged.update(b)
            return merged
        if isinstance(a, datetime) and isinstance(b, timedelta):
            return a + b
        if isinstance(a, timedelta) and isinstance(b, timedelta):
            return a + b
    if op == "-":
        if isinstance(a, datetime) and isinstance(b, datetime):
            return a - b
        if isinstance(a, (datetime, timedelta)) and isinstance(b, timedelta):
            return a - b
    if op == "*":
        if isinstance(a, str):
            return (a * max(0, min(_to_int(b), _MAX_STRING // max(1, len(a)))))[:_MAX_STRING]
        if isinstance(a, list):
            return a * max(0, min(_to_int(b), _MAX_RANGE))
    try:
        x, y = _to_num(a), _to_num(b)
    except ValueError:
        return None
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            if y == 0:
                return None
            res = x / y
            return int(res) if isinstance(x, int) and isinstance(y, int) and x % y == 0 else res
        if op == "%":
            if y == 0:
                return None
            res = math.fmod(x, y)
            return int(res) if isinstance(x, int) and isinstance(y, int) else res
    except OverflowError:
        return None
    return None


def _str_method(v: str, low: str, args: list[Any]) -> Any:
    s = [_to_str(a) for a in args]
    if low == "toupper":
        return v.upper()
    if low == "tolower":
        return v.lower()
    if low in ("trim", "trimstart", "trimend"):
        chars = "".join(s) if s else None
        return {"trim": v.strip, "trimstart": v.lstrip, "trimend": v.rstrip}[low](chars)
    if low == "split":
        if not s:
            return v.split()
        seps = "".join(s)
        return re.split("[" + re.escape(seps) + "]", v) if seps else [v]
    if low == "contains" and s:
        return s[0] in v
    if low == "startswith" and s:
        return v.startswith(s[0])
    if low == "endswith" and s:
        return v.endswith(s[0])
    if low == "replace" and len(s) >= 2:
        return v.replace(s[0], s[1]) if s[0] else v
    if low == "indexof" and s:
        return v.find(s[0])
    if low == "substring" and args:
        start = _to_int(args[0])
        if not 0 <= start <= len(v):
            return None
        return v[start:start + _to_int(args[1])] if len(args) > 1 else v[start:]
    if low in ("padleft", "padright") and args:
        width = min(_to_int(args[0]), 10_000)
        fill = s[1][:1] if len(s) > 1 and s[1] else " "
        return v.rjust(width, fill) if low == "padleft" else v.ljust(width, fill)
    return None


def _action_preference(v: Any) -> str:
    """An ActionPreference by name or number (-ErrorAction 0 is SilentlyContinue)."""
    text = _to_str(_enumerate(v)[0] if isinstance(v, list) and v else v).strip().lower()
    return {"0": "silentlycontinue", "1": "stop", "2": "continue", "3": "inquire", "4": "ignore",
            "5": "suspend"}.get(text, text or "continue")


def _redirects(redirs: list) -> tuple[bool, bool]:
    out_null = err_null = False
    for op, _target in redirs:
        if "&" in op:
            continue
        stream = op.rstrip(">")
        if stream in ("", "1"):
            out_null = True
        elif stream == "2":
            err_null = True
        elif stream == "*":
            out_null = err_null = True
    return out_null, err_null


def _stmt_label(s: Any) -> str:
    if isinstance(s, tuple) and s and s[0] == "pipe" and s[1].elems and isinstance(s[1].elems[0], _Cmd):
        name = s[1].elems[0].name
        return _to_str(name[1]) if isinstance(name, tuple) and name[0] == "lit" else "<command>"
    return f"<{s[0] if isinstance(s, tuple) and s else 'statement'}>"


# ---------------------------------------------------------------------------------------- commands
# Each command takes the interpreter and the bound call, and returns its pipeline output.


def _words(c: _Call) -> list[str]:
    """A native command's arguments as text (switches like /all or -r included)."""
    out = []
    for kind, name, value in c.raw:
        if kind == "param":
            out.append("-" + (name or "") + ("" if value is _NOVAL or value is None else ":" + _to_str(value)))
        else:
            out.extend(_to_str(v) for v in _enumerate(value))
    return out


def _local_date(it: _Interp, d: datetime | str | None) -> Any:
    if isinstance(d, datetime):
        return datetime(d.year, d.month, d.day, tzinfo=it.tz)
    return d


# -- native executables


@_command("hostname", cost=0.1)
def _c_hostname(it: _Interp, c: _Call) -> list[Any]:
    return [it.g.computer_name]


@_command("whoami", cost=0.1)
def _c_whoami(it: _Interp, c: _Call) -> list[Any]:
    if any(w.lower() in ("/user", "-user") for w in _words(c)):
        return ["", "USER INFORMATION", "----------------", "", "User Name           SID",
                "=================== ========", "nt authority\\system S-1-5-18"]
    return ["nt authority\\system"]


_IPC = {
    "host": "   Host Name . . . . . . . . . . . . : ", "primary": "   Primary Dns Suffix  . . . . . . . : ",
    "node": "   Node Type . . . . . . . . . . . . : ", "routing": "   IP Routing Enabled. . . . . . . . : ",
    "wins": "   WINS Proxy Enabled. . . . . . . . : ", "search": "   DNS Suffix Search List. . . . . . : ",
    "suffix": "   Connection-specific DNS Suffix  . : ", "desc": "   Description . . . . . . . . . . . : ",
    "mac": "   Physical Address. . . . . . . . . : ", "dhcp": "   DHCP Enabled. . . . . . . . . . . : ",
    "auto": "   Autoconfiguration Enabled . . . . : ", "ll": "   Link-local IPv6 Address . . . . . : ",
    "ipv4": "   IPv4 Address. . . . . . . . . . . : ", "mask": "   Subnet Mask . . . . . . . . . . . : ",
    "obtained": "   Lease Obtained. . . . . . . . . . : ", "expires": "   Lease Expires . . . . . . . . . . : ",
    "gw": "   Default Gateway . . . . . . . . . : ", "dhcpsrv": "   DHCP Server . . . . . . . . . . . : ",
    "iaid": "   DHCPv6 IAID . . . . . . . . . . . : ", "duid": "   DHCPv6 Client DUID. . . . . . . . : ",
    "dns": "   DNS Servers . . . . . . . . . . . : ", "netbios": "   NetBIOS over Tcpip. . . . . . . . : ",
}


def _mask(prefix: int) -> str:
    bits = (0xFFFFFFFF << (32 - max(0, min(32, prefix)))) & 0xFFFFFFFF
    return ".".join(str((bits >> s) & 0xFF) for s in (24, 16, 8, 0))


def _ipconfig(it: _Interp, full: bool) -> list[str]:
    g = it.g
    lines = ["", "Windows IP Configuration", ""]
    if full:
        lines += [_IPC["host"] + g.computer_name, _IPC["primary"] + (g.domain if g.joined else "").rstrip(),
                  _IPC["node"] + "Hybrid", _IPC["routing"] + "No", _IPC["wins"] + "No"]
        if g.dns_suffix:
            lines.append(_IPC["search"] + g.dns_suffix)
        lines.append("")
    for nic in g.nics:
        lines += [f"{'PPP' if nic.kind == 'PPP' else 'Ethernet'} adapter {nic.name}:", ""]
        suffix = g.dns_suffix if nic.kind != "PPP" and nic is g.nics[0] else ""
        lines.append((_IPC["suffix"] + suffix).rstrip() if suffix else _IPC["suffix"].rstrip())
        pref = "(Preferred)" if full else ""
        if full:
            lines += [_IPC["desc"] + nic.description]
            if nic.mac:
                lines.append(_IPC["mac"] + nic.mac)
            lines += [_IPC["dhcp"] + ("Yes" if nic.dhcp else "No"), _IPC["auto"] + "Yes"]
        if nic.ipv6_ll:
            lines.append(_IPC["ll"] + nic.ipv6_ll + pref)
        lines += [_IPC["ipv4"] + nic.ipv4 + pref, _IPC["mask"] + _mask(nic.prefix)]
        if full and nic.dhcp:
            lines += [_IPC["obtained"] + _dt_long(it.boot), _IPC["expires"] + _dt_long(it.boot + timedelta(days=49710))]
        lines.append((_IPC["gw"] + (nic.gateway or ("0.0.0.0" if nic.kind == "PPP" else ""))).rstrip())
        if full:
            if nic.dhcp:
                lines.append(_IPC["dhcpsrv"] + "168.63.129.16")
            if nic.kind != "PPP":
                lines += [_IPC["iaid"] + str(100000000 + _h(g.seed, nic.name) % 99999999),
                          _IPC["duid"] + "00-01-00-01-" + "-".join(f"{(_h(g.seed, 'duid') >> (8 * i)) & 0xFF:02X}" for i in range(10))]
            if nic.dns_servers:
                lines.append(_IPC["dns"] + nic.dns_servers[0])
                lines += [" " * len(_IPC["dns"]) + d for d in nic.dns_servers[1:]]
            lines.append(_IPC["netbios"] + ("Enabled" if nic.kind != "PPP" else "Disabled"))
        lines.append("")
    return [line.rstrip() for line in lines[:-1]]


@_command("ipconfig", cost=0.2)
def _c_ipconfig(it: _Interp, c: _Call) -> list[Any]:
    return _ipconfig(it, any(w.lower() in ("/all", "-all") for w in _words(c)))


def _systeminfo(it: _Interp) -> list[str]:
    g = it.g

    def row(label: str, value: str) -> str:
        return f"{label + ':':<27}{value}".rstrip()

    pad = " " * 27
    total = g.memory_mb
    avail = int(total * (0.35 + (g.seed % 40) / 100))
    page = 1280 if g.kind == "vm" else 4096
    lines = [
        "", row("Host Name", g.netbios), row("OS Name", g.os.caption),
        row("OS Version", f"{g.os.version} N/A Build {g.os.build}"), row("OS Manufacturer", "Microsoft Corporation"),
        row("OS Configuration", "Member Server" if g.joined else "Standalone Server"),
        row("OS Build Type", "Multiprocessor Free"), row("Registered Owner", "N/A"), row("Registered Organization", "N/A"),
        row("Product ID", g.product_id), row("Original Install Date", _sysinfo_date(g.install_date.astimezone(it.tz))),
        row("System Boot Time", _sysinfo_date(it.boot)), row("System Manufacturer", g.manufacturer),
        row("System Model", g.model), row("System Type", "x64-based PC"),
        row("Processor(s)", f"{max(1, g.cpus // 16)} Processor(s) Installed."),
        pad + f"[01]: Intel64 Family 6 Model 85 Stepping 7 GenuineIntel ~{2100 + g.seed % 800} Mhz"
        if "AMD" not in g.cpu_name else pad + "[01]: AMD64 Family 25 Model 1 Stepping 1 AuthenticAMD ~2445 Mhz",
        row("BIOS Version", f"{g.manufacturer} {g.bios}, {8 + g.seed % 4}/{1 + g.seed % 28}/2023"),
        row("Windows Directory", "C:\\Windows"), row("System Directory", "C:\\Windows\\system32"),
        row("Boot Device", "\\Device\\HarddiskVolume1"), row("System Locale", "en-us;English (United States)"),
        row("Input Locale", "en-us;English (United States)"), row("Time Zone", g.tz[1]),
        row("Total Physical Memory", f"{total:,} MB"), row("Available Physical Memory", f"{avail:,} MB"),
        row("Virtual Memory: Max Size", f"{total + page:,} MB"),
        row("Virtual Memory: Available", f"{avail + page // 2:,} MB"),
        row("Virtual Memory: In Use", f"{total + page - avail - page // 2:,} MB"),
        row("Page File Location(s)", "D:\\pagefile.sys" if any(d.letter == "D" and d.label == "Temporary Storage"
                                                                for d in g.disks) else "C:\\pagefile.sys"),
        row("Domain", g.domain), row("Logon Server", "N/A"),
        row("Hotfix(s)", f"{len(g.hotfixes)} Hotfix(s) Installed."),
    ]
    lines += [pad + f"[{i:02}]: {h.kb}" for i, h in enumerate(g.hotfixes, 1)]
    nics = [n for n in g.nics if n.kind != "PPP"]
    lines.append(row("Network Card(s)", f"{len(nics)} NIC(s) Installed."))
    for i, nic in enumerate(nics, 1):
        lines += [pad + f"[{i:02}]: {nic.description}", pad + f"      Connection Name: {nic.name}"]
        lines.append(pad + f"      DHCP Enabled:    {'Yes' if nic.dhcp else 'No'}")
        if nic.dhcp:
            lines.append(pad + "      DHCP Server:     168.63.129.16")
        lines += [pad + "      IP address(es)", pad + f"      [01]: {nic.ipv4}"]
        if nic.ipv6_ll:
            lines.append(pad + f"      [02]: {nic.ipv6_ll.split('%')[0]}")
    hv = ("A hypervisor has been detected. Features required for Hyper-V will not be displayed."
          if "virtual" in g.model.lower() or "vmware" in g.manufacturer.lower() else "VM Monitor Mode Extensions: Yes")
    lines.append(row("Hyper-V Requirements", hv))
    return lines


def _sysinfo_date(dt: datetime) -> str:
    h, ap = _ampm(dt)
    return f"{dt.month}/{dt.day}/{dt.year}, {h}:{dt.minute:02}:{dt.second:02} {ap}"


@_command("systeminfo", cost=3.5)
def _c_systeminfo(it: _Interp, c: _Call) -> list[Any]:
    return _systeminfo(it)


@_command("findstr", cost=0.05)
def _c_findstr(it: _Interp, c: _Call) -> list[Any]:
    words = _words(c)
    ignore = any(w.lower() in ("/i", "-i") for w in words)
    invert = any(w.lower() in ("/v", "-v") for w in words)
    patterns = [w[3:] for w in words if w.lower().startswith("/c:")]
    if not patterns:
        patterns = [p for w in words if not w.startswith(("/", "-")) for p in w.split()]
    out = []
    for item in c.items():
        for line in _to_str(item).split("\n"):
            hay = line.lower() if ignore else line
            hit = any((p.lower() if ignore else p) in hay for p in patterns)
            if hit != invert:
                out.append(line)
    return out


@_command("shutdown", cost=0.3)
def _c_shutdown(it: _Interp, c: _Call) -> list[Any]:
    if any(w.lower() in ("/r", "-r", "/g", "-g") for w in _words(c)):
        it.restart = True
    return []


# -- output and flow


@_command("Write-Output", params="InputObject", positional="InputObject", switches="NoEnumerate",
          aliases=("echo", "write"), cost=0.0)
def _c_write_output(it: _Interp, c: _Call) -> list[Any]:
    values = [c.get("inputobject"), *c.extra] if "inputobject" in c.args else list(c.extra)
    if "inputobject" not in c.args and c.input is not None:
        return c.items()
    out: list[Any] = []
    for v in values:
        if c.flag("noenumerate"):
            out.append(v)
        else:
            out.extend(_enumerate(v))
    return out


@_command("Write-Host", params="Object ForegroundColor BackgroundColor Separator", positional="Object",
          switches="NoNewline", cost=0.0)
def _c_write_host(it: _Interp, c: _Call) -> list[Any]:
    values = [c.get("object"), *c.extra] if "object" in c.args else list(c.extra)
    if not values and c.input is not None:
        values = c.items()
    sep = _to_str(c.get("separator", " "))
    it.host(sep.join(sep.join(_to_str(x) for x in v) if isinstance(v, list) else _to_str(v) for v in values),
            newline=not c.flag("nonewline"))
    return []


@_command("Write-Warning", params="Message", positional="Message", cost=0.0)
def _c_write_warning(it: _Interp, c: _Call) -> list[Any]:
    if _to_str(c.get("warningaction", "")).lower() not in ("silentlycontinue", "ignore"):
        it.host("WARNING: " + _to_str(c.get("message")))
    return []


@_command("Write-Verbose", params="Message", positional="Message", aliases=("Write-Debug", "Write-Information",
                                                                          "Write-Progress"), cost=0.0)
def _c_write_quiet(it: _Interp, c: _Call) -> list[Any]:
    return []


@_command("Write-Error", params="Message Exception ErrorRecord Category ErrorId TargetObject CategoryReason "
                               "CategoryTargetName RecommendedAction", positional="Message", cost=0.0)
def _c_write_error(it: _Interp, c: _Call) -> list[Any]:
    value = c.get("message", c.get("exception", c.get("errorrecord")))
    if value is None and c.input:
        value = _collapse(c.items())
    if isinstance(value, _ErrorRecord):
        it.raise_or_write(value, c.ea)
        return []
    msg = _to_str(value)
    category = _to_str(c.get("category") or "NotSpecified")
    fqid = _to_str(c.get("errorid")) or f"Microsoft.PowerShell.Commands.WriteErrorException,{it.script_path.rsplit(chr(92), 1)[-1]}"
    rec = _ErrorRecord(msg, None, category, _to_str(c.get("targetobject")), "Write-Error", "WriteErrorException", fqid,
                       it.position(c.node.start, c.node.end), script_level=it.depth == 0)
    it.raise_or_write(rec, c.ea)
    return []


@_command("Start-Sleep", params="Seconds Milliseconds Duration", positional="Seconds", aliases=("sleep",), cost=0.0)
def _c_sleep(it: _Interp, c: _Call) -> list[Any]:
    try:
        secs = float(_to_num(c.get("seconds", 0))) + float(_to_num(c.get("milliseconds", 0))) / 1000
    except ValueError:
        secs = 0.0
    if math.isfinite(secs) and secs > 0:
        it.cost += min(secs, 10 ** 7)
    return []


@_command("Out-Null", cost=0.0)
def _c_out_null(it: _Interp, c: _Call) -> list[Any]:
    return []


@_command("Out-File", params="FilePath Encoding InputObject Width", positional="FilePath",
          switches="Append Force NoClobber NoNewline", aliases=("Set-Content", "Add-Content", "Export-Csv", "Export-Clixml"),
          cost=0.05)
def _c_sink(it: _Interp, c: _Call) -> list[Any]:
    return []


@_command("Out-Host", params="InputObject", aliases=("Out-Default",), switches="Paging", cost=0.0)
def _c_out_host(it: _Interp, c: _Call) -> list[Any]:
    return c.items() if c.input is not None else _enumerate(c.get("inputobject"))


@_command("Tee-Object", params="FilePath Variable InputObject", positional="FilePath", switches="Append", cost=0.0)
def _c_tee(it: _Interp, c: _Call) -> list[Any]:
    if c.get("variable"):
        it.setvar(_to_str(c.get("variable")), _collapse(c.items()))
    return c.items()


@_command("Out-String", params="InputObject Width", switches="Stream", cost=0.0)
def _c_out_string(it: _Interp, c: _Call) -> list[Any]:
    values = c.items() if c.input is not None else _enumerate(c.get("inputobject"))
    lines = _render(values)
    if c.flag("stream"):
        return lines
    return ["\n".join(lines) + "\n"] if lines else [""]


@_command("Invoke-Command", params="ScriptBlock ArgumentList ComputerName Session Credential InputObject",
          positional="ScriptBlock", switches="AsJob HideComputerName", aliases=("icm",), cost=0.2)
def _c_invoke_command(it: _Interp, c: _Call) -> list[Any]:
    sb = c.get("scriptblock")
    if not isinstance(sb, _ScriptBlock):
        return []
    return it.run_block(sb, _MISSING, _as_list(c.get("argumentlist")))


@_command("Invoke-Expression", params="Command", positional="Command", aliases=("iex",), cost=0.0)
def _c_iex(it: _Interp, c: _Call) -> list[Any]:
    return it.run_fragment(_to_str(c.get("command") if "command" in c.args else _collapse(c.items())))


@_command("Set-Variable", params="Name Value Scope Option", positional="Name Value", aliases=("sv", "set"), cost=0.0)
def _c_set_variable(it: _Interp, c: _Call) -> list[Any]:
    if c.get("name") is not None:
        it.setvar(_to_str(c.get("name")), c.get("value", _collapse(c.items())))
    return []


@_command("Import-Module", params="Name", positional="Name", aliases=("ipmo", "Set-StrictMode", "Set-ExecutionPolicy",
                                                                    "Clear-Host", "cls", "Set-Location", "cd", "sl",
                                                                    "Push-Location", "Pop-Location", "Start-Transcript",
                                                                    "Stop-Transcript", "Remove-Variable", "Stop-Computer"),
          switches="Force Global", cost=0.05)
def _c_noop(it: _Interp, c: _Call) -> list[Any]:
    return []


@_command("New-Object", params="TypeName Property ArgumentList ComObject", positional="TypeName ArgumentList", cost=0.0)
def _c_new_object(it: _Interp, c: _Call) -> list[Any]:
    t = _to_str(c.get("typename")).lower().removeprefix("system.").removeprefix("management.automation.")
    if t in ("psobject", "pscustomobject", "object"):
        props = c.get("property")
        return [_Obj("PSCustomObject", dict(props.items()) if isinstance(props, _Hashtable) else {})]
    it.unrec.append("New-Object " + _to_str(c.get("typename")))
    return []


# -- pipeline shaping


def _prop_names(item: Any) -> list[str]:
    if isinstance(item, _Obj):
        return list(item.props)
    if isinstance(item, _Hashtable):
        return [str(k) for k in item]
    return []


def _expand_props(it: _Interp, specs: list[Any], sample: Any) -> list[tuple[str, Any]]:
    """Property specs (names, wildcards, @{Name=…; Expression=…}) → (label, getter spec)."""
    out: list[tuple[str, Any]] = []
    for p in specs:
        if isinstance(p, _Hashtable):
            label = next((_to_str(v) for k, v in p.items() if str(k).lower() in ("name", "n", "label", "l")), "")
            expr = next((v for k, v in p.items() if str(k).lower() in ("expression", "e")), None)
            out.append((label or _to_str(expr), expr))
        elif isinstance(p, _ScriptBlock):
            out.append((p.text.strip(), p))
        else:
            name = _to_str(p)
            if _has_wild(name):
                out.extend((n, n) for n in _prop_names(sample) if _wild(name, n))
            else:
                real = next((n for n in _prop_names(sample) if n.lower() == name.lower()), name)
                out.append((real, real))
    return out


def _prop_value(it: _Interp, item: Any, getter: Any) -> Any:
    if isinstance(getter, _ScriptBlock):
        return _collapse(it.run_block(getter, item))
    return it.member(item, _to_str(getter))


@_command("Select-Object", params="Property ExpandProperty First Last Skip ExcludeProperty Index InputObject",
          positional="Property", switches="Unique Wait", aliases=("select",), cost=0.0)
def _c_select(it: _Interp, c: _Call) -> list[Any]:
    items = c.items() if c.input is not None else _enumerate(c.get("inputobject"))
    if c.get("skip") is not None:
        items = items[max(0, _to_int(c.get("skip"))):]
    if c.get("index") is not None:
        idx = [_to_int(i) for i in _as_list(c.get("index"))]
        items = [items[i] for i in idx if -len(items) <= i < len(items)]
    if c.get("first") is not None or c.get("last") is not None:
        first = items[:max(0, _to_int(c.get("first")))] if c.get("first") is not None else []
        last = items[len(items) - max(0, _to_int(c.get("last"))):] if c.get("last") is not None else []
        items = first + [x for x in last if x not in first] if c.get("first") is not None else last
    props = _as_list(c.get("property"))
    exclude = [_to_str(x) for x in _as_list(c.get("excludeproperty"))]
    out: list[Any] = []
    if c.get("expandproperty") is not None:
        name = _to_str(c.get("expandproperty"))
        for item in items:
            v = it.member(item, name)
            if v is None and not (isinstance(item, _Obj) and item.find(name)[0]):
                it.error(c, f'Property "{name}" cannot be found.', category="InvalidArgument", target=_cell(item),
                         reason="PSArgumentException", fqid="ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand")
                continue
            out.extend(_enumerate(v))
    elif props:
        for item in items:
            new: dict[str, Any] = {}
            for label, getter in _expand_props(it, props, item):
                if any(_wild(x, label) for x in exclude):
                    continue
                new[label] = _prop_value(it, item, getter)
            base = item.type if isinstance(item, _Obj) else _type_name(item)
            out.append(_Obj("Selected." + base.removeprefix("Selected."), new))
    else:
        out = list(items)
    if c.flag("unique"):
        seen: list[str] = []
        uniq = []
        for x in out:
            key = _to_str(x) if not isinstance(x, _Obj) else json.dumps(_to_json_value(x, 1), sort_keys=True, default=str)
            if key not in seen:
                seen.append(key)
                uniq.append(x)
        out = uniq
    return out


_WHERE_OPS = ("eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch", "contains", "notcontains",
              "in", "notin", "ceq", "cne", "clike", "cnotlike", "cmatch", "cnotmatch", "ccontains", "cin",
              "is", "isnot", "not")


@_command("Where-Object", params="FilterScript Property Value InputObject " + " ".join(_WHERE_OPS),
          positional="FilterScript Value", aliases=("where", "?"), cost=0.0)
def _c_where(it: _Interp, c: _Call) -> list[Any]:
    first = c.get("filterscript")
    prop = c.get("property")
    block = first if isinstance(first, _ScriptBlock) else None
    if block is None and prop is None:
        prop = first
    op = next((o for o in _WHERE_OPS if o in c.args), None)
    out = []
    for item in c.items():
        if block is not None:
            keep = _truthy_list(it.run_block(block, item))
        else:
            v = it.member(item, _to_str(prop))
            if op is None:
                keep = _truthy(v)
            elif op == "not":
                keep = not _truthy(v)
            else:
                keep = _truthy(it.binop(op, v, c.get(op)))
        if keep:
            out.append(item)
    return out


@_command("ForEach-Object", params="Process Begin End MemberName ArgumentList InputObject",
          positional="Process", aliases=("foreach", "%"), cost=0.0)
def _c_foreach(it: _Interp, c: _Call) -> list[Any]:
    proc = c.get("process", c.get("membername"))
    out: list[Any] = []
    if isinstance(c.get("begin"), _ScriptBlock):
        out += it.run_block(c.get("begin"))
    items = c.items() if c.input is not None else [None]
    for item in items:
        if isinstance(proc, _ScriptBlock):
            out += it.run_block(proc, item)
        elif isinstance(proc, list) and proc and all(isinstance(p, _ScriptBlock) for p in proc):
            for p in proc:
                out += it.run_block(p, item)
        elif proc is not None:
            name = _to_str(proc)
            v = it.member(item, name)
            if v is None:
                v = it.call_method(item, name, _as_list(c.get("argumentlist")))
            out += _enumerate(v)
    if isinstance(c.get("end"), _ScriptBlock):
        out += it.run_block(c.get("end"))
    return out


@_command("Sort-Object", params="Property InputObject Top Bottom", positional="Property",
          switches="Descending Unique CaseSensitive", aliases=("sort",), cost=0.0)
def _c_sort(it: _Interp, c: _Call) -> list[Any]:
    specs = _as_list(c.get("property"))
    items = c.items()

    def key(item: Any) -> list[tuple]:
        if not specs:
            return [_sort_key(item)]
        keys = []
        for p in specs:
            getter = p
            if isinstance(p, _Hashtable):
                getter = next((v for k, v in p.items() if str(k).lower() in ("expression", "e")), None)
            keys.append(_sort_key(_prop_value(it, item, getter)))
        return keys

    out = sorted(items, key=key, reverse=c.flag("descending"))
    if c.flag("unique"):
        seen: list[Any] = []
        uniq = []
        for x in out:
            k = key(x)
            if k not in seen:
                seen.append(k)
                uniq.append(x)
        out = uniq
    if c.get("top") is not None:
        out = out[:max(0, _to_int(c.get("top")))]
    return out


@_command("Measure-Object", params="Property InputObject", positional="Property",
          switches="Sum Average Maximum Minimum Line Word Character AllStats", aliases=("measure",), cost=0.0)
def _c_measure(it: _Interp, c: _Call) -> list[Any]:
    items = c.items()
    prop = c.get("property")
    values: list[float] = []
    if prop is not None:
        for item in items:
            v = it.member(item, _to_str(_as_list(prop)[0]))
            with contextlib.suppress(ValueError):
                values.append(_to_num(v))
    every = c.flag("allstats")
    props: dict[str, Any] = {"Count": len(values) if prop is not None else len(items),
                             "Average": (sum(values) / len(values)) if (c.flag("average") or every) and values else None,
                             "Sum": sum(values) if c.flag("sum") or every else None,
                             "Maximum": max(values) if (c.flag("maximum") or every) and values else None,
                             "Minimum": min(values) if (c.flag("minimum") or every) and values else None,
                             "Property": _to_str(_as_list(prop)[0]) if prop is not None else None}
    return [_Obj("GenericMeasureInfo", props, "Microsoft.PowerShell.Commands.GenericMeasureInfo")]


@_command("Group-Object", params="Property InputObject", positional="Property", switches="NoElement AsHashTable AsString",
          aliases=("group",), cost=0.0)
def _c_group(it: _Interp, c: _Call) -> list[Any]:
    specs = _as_list(c.get("property"))
    groups: dict[str, list[Any]] = {}
    for item in c.items():
        keys = [_to_str(_prop_value(it, item, p)) for p in specs] if specs else [_to_str(item)]
        groups.setdefault(", ".join(keys), []).append(item)
    out = []
    for name, members in groups.items():
        props: dict[str, Any] = {"Count": len(members), "Name": name}
        if not c.flag("noelement"):
            props["Group"] = members
        props["Values"] = [name]
        out.append(_Obj("GroupInfo", props, "Microsoft.PowerShell.Commands.GroupInfo"))
    return out


_VIEWS["GroupInfo"] = _View((_Col("Count", "Count", "right"), _Col("Name", "Name"),
                             _Col("Group", lambda o: o.find("Group")[1] if o.find("Group")[0] else None)))


def _table_cols(it: _Interp, c: _Call, items: list[Any]) -> list[_Col]:
    props = _as_list(c.get("property"))
    sample = next((x for x in items if isinstance(x, _Obj)), None)
    if props:
        return [_Col(label, lambda o, g=getter: _prop_value(it, o, g)) for label, getter in _expand_props(it, props, sample)]
    if sample is None:
        return []
    view = _VIEWS.get(sample.type)
    if view and view.table:
        return list(view.table)
    return [_Col(p, p) for p in list(sample.props)[:10]]


def _format_input(c: _Call) -> list[Any]:
    """What Format-* formats: hashtables become their Name/Value entries, as PowerShell enumerates them."""
    out: list[Any] = []
    for x in c.items() if c.input is not None else _enumerate(c.get("inputobject")):
        if isinstance(x, _Hashtable):
            out += [_Obj("DictionaryEntry", {"Name": k, "Value": v, "Key": k}, _to_str(k)) for k, v in x.items()]
        else:
            out.append(x)
    return out


_VIEWS["DictionaryEntry"] = _View((_Col("Name", "Name", "left", 30), _Col("Value", "Value")), list_props=("Name", "Value"))


@_command("Format-Table", params="Property GroupBy View InputObject", positional="Property",
          switches="AutoSize Wrap HideTableHeaders RepeatHeader", aliases=("ft",), cost=0.0)
def _c_format_table(it: _Interp, c: _Call) -> list[Any]:
    items = _format_input(c)
    if not items:
        return []
    objs = [x if isinstance(x, _Obj) else (_version_obj(x) if isinstance(x, _Version) else x) for x in items]
    if not any(isinstance(x, _Obj) for x in objs):
        return [_Text([_cell(x) for x in objs])]
    cols = _table_cols(it, c, objs)
    sample = next(x for x in objs if isinstance(x, _Obj))
    view = _VIEWS.get(sample.type)
    gap = view.gap if view and not c.get("property") else 1
    return [_Text(_format_table(objs, cols, gap, c.flag("hidetableheaders")))]


@_command("Format-List", params="Property GroupBy View InputObject", positional="Property", aliases=("fl",), cost=0.0)
def _c_format_list(it: _Interp, c: _Call) -> list[Any]:
    items = _format_input(c)
    if not items:
        return []
    props = _as_list(c.get("property"))

    def pairs(o: Any) -> list[tuple[str, Any]]:
        if isinstance(o, _Version):
            o = _version_obj(o)
        elif isinstance(o, timedelta):
            o = _timespan_obj(o)
        if not isinstance(o, _Obj):
            return [("", o)] if not props else []
        if props:
            return [(label, _prop_value(it, o, getter)) for label, getter in _expand_props(it, props, o)]
        view = _VIEWS.get(o.type)
        if view and view.list_props:
            return [(p, o.find(p)[1]) for p in view.list_props]
        return list(o.props.items())

    if not any(isinstance(x, (_Obj, _Version, timedelta)) for x in items):
        return [_Text([_cell(x) for x in items])]
    return [_Text(_format_list(items, pairs))]


@_command("ConvertTo-Json", params="InputObject Depth", positional="InputObject", switches="Compress EnumsAsStrings AsArray",
          cost=0.0)
def _c_to_json(it: _Interp, c: _Call) -> list[Any]:
    items = c.items() if c.input is not None else _enumerate(c.get("inputobject"))
    if not items:
        return []
    depth = max(0, min(_to_int(c.get("depth", 2), 2), 100))
    value = _to_json_value(items[0] if len(items) == 1 else items, depth)
    return [_json_compact(value) if c.flag("compress") else _ps_json(value)]


def _from_json(v: Any) -> Any:
    if isinstance(v, dict):
        return _Obj("PSCustomObject", {k: _from_json(x) for k, x in v.items()})
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


@_command("ConvertFrom-Json", params="InputObject", positional="InputObject", cost=0.0)
def _c_from_json(it: _Interp, c: _Call) -> list[Any]:
    text = "\n".join(_to_str(x) for x in (c.items() if c.input is not None else _enumerate(c.get("inputobject"))))
    try:
        return _enumerate(_from_json(json.loads(text)))
    except (ValueError, RecursionError):
        it.error(c, f"Invalid JSON primitive: {text[:40]}.", category="NotSpecified", reason="ArgumentException",
                 fqid="System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand")
        return []


def _matchinfo_view(objs: list[_Obj]) -> list[str]:
    return ["", *(_to_str(o.find("Line")[1]) for o in objs), "", ""]


_VIEWS["MatchInfo"] = _View(mode="custom", custom=_matchinfo_view)


@_command("Select-String", params="Pattern InputObject Path Context Encoding", positional="Pattern",
          switches="SimpleMatch NotMatch CaseSensitive AllMatches Quiet List", aliases=("sls",), cost=0.05)
def _c_select_string(it: _Interp, c: _Call) -> list[Any]:
    patterns = [_to_str(p) for p in _as_list(c.get("pattern"))]
    cs = c.flag("casesensitive")
    out: list[Any] = []
    lines: list[str] = []
    for item in (c.items() if c.input is not None else _enumerate(c.get("inputobject"))):
        lines.extend(_to_str(item).split("\n") if isinstance(item, str) else [_to_str(item)])
    for n, line in enumerate(lines, 1):
        hit = False
        for p in patterns:
            if c.flag("simplematch"):
                hit = (p in line) if cs else (p.lower() in line.lower())
            else:
                try:
                    hit = re.search(p, line, 0 if cs else re.I) is not None
                except re.error:
                    hit = False
            if hit:
                break
        if hit != c.flag("notmatch"):
            out.append(_Obj("MatchInfo", {"IgnoreCase": not cs, "LineNumber": n, "Line": line, "Filename": "InputStream",
                                          "Path": "InputStream", "Pattern": patterns[0] if patterns else ""}, line))
    if c.flag("quiet"):
        return [bool(out)]
    return out


# -- Get-Date, time


@_command("Get-Date", params="Date Format UFormat DisplayHint Year Month Day Hour Minute Second Millisecond",
          positional="Date", cost=0.0)
def _c_get_date(it: _Interp, c: _Call) -> list[Any]:
    dt = it.now
    if c.get("date") is not None:
        d = c.get("date")
        parsed = d if isinstance(d, datetime) else _parse_date(_to_str(d))
        if parsed is not None:
            dt = parsed if isinstance(d, datetime) else parsed.astimezone(it.tz)
    parts = {k: c.get(k) for k in ("year", "month", "day", "hour", "minute", "second") if c.get(k) is not None}
    if parts:
        with contextlib.suppress(ValueError):
            dt = dt.replace(**{k: _to_int(v) for k, v in parts.items()})
    if c.get("format") is not None:
        return [_net_format(dt, _to_str(c.get("format")))]
    if c.get("uformat") is not None:
        return [_uformat(dt, _to_str(c.get("uformat")))]
    return [dt]


@_command("Get-TimeZone", params="Id Name", positional="Name", switches="ListAvailable", cost=0.1)
def _c_get_timezone(it: _Interp, c: _Call) -> list[Any]:
    tid, display, std, dst, _tzinfo = it.g.tz
    off = it.now.utcoffset() or timedelta(0)
    return [_Obj("TimeZoneInfo", {"Id": tid, "DisplayName": display, "StandardName": std, "DaylightName": dst,
                                  "BaseUtcOffset": _timespan(off), "SupportsDaylightSavingTime": tid != "UTC"}, display)]


@_command("Get-Location", aliases=("pwd", "gl"), cost=0.0)
def _c_get_location(it: _Interp, c: _Call) -> list[Any]:
    return [it.getvar("pwd")]


# -- services


def _service_obj(s: _Svc) -> _Obj:
    running = s.status.lower() == "running"
    return _Obj("ServiceController", {
        "Name": s.name, "RequiredServices": [], "CanPauseAndContinue": False, "CanShutdown": running, "CanStop": running,
        "DisplayName": s.display, "DependentServices": [], "MachineName": ".", "ServiceName": s.name,
        "ServicesDependedOn": [], "ServiceHandle": None, "Status": _enum(_SERVICE_STATUS, s.status),
        "ServiceType": _Enum("Win32OwnProcess", 16), "StartType": _enum(_START_TYPE, s.start_type), "Site": None,
        "Container": None}, "System.ServiceProcess.ServiceController")


def _find_services(it: _Interp, c: _Call, names: list[Any], cmdlet: str) -> list[_Svc]:
    picked: list[_Svc] = []
    for n in names:
        if isinstance(n, _Obj):
            n = n.find("Name")[1]
        text = _to_str(n)
        if _has_wild(text):
            hits = [s for s in it.services if _wild(text, s.name)]
        else:
            hits = [s for s in it.services if s.name.lower() == text.lower()]
            if not hits:
                it.error(c, f"Cannot find any service with service name '{text}'.", category="ObjectNotFound", target=text,
                         reason="ServiceCommandException", fqid=f"NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.{cmdlet}")
        picked += [s for s in hits if s not in picked]
    return picked


@_command("Get-Service", params="Name DisplayName Include Exclude ComputerName InputObject", positional="Name",
          switches="DependentServices RequiredServices", aliases=("gsv",), palias={"ServiceName": "Name"}, cost=0.3)
def _c_get_service(it: _Interp, c: _Call) -> list[Any]:
    names = _as_list(c.get("name"))
    if not names and c.input is not None:
        names = c.items()
    displays = [_to_str(d) for d in _as_list(c.get("displayname"))]
    if names:
        picked = _find_services(it, c, names, "GetServiceCommand")
    elif displays:
        picked = []
        for d in displays:
            hits = [s for s in it.services if (_wild(d, s.display) if _has_wild(d) else s.display.lower() == d.lower())]
            if not hits and not _has_wild(d):
                it.error(c, f"Cannot find any service with display name '{d}'.", category="ObjectNotFound", target=d,
                         reason="ServiceCommandException",
                         fqid="NoServiceFoundForGivenDisplayName,Microsoft.PowerShell.Commands.GetServiceCommand")
            picked += [s for s in hits if s not in picked]
    else:
        picked = list(it.services)
    include = [_to_str(x) for x in _as_list(c.get("include"))]
    exclude = [_to_str(x) for x in _as_list(c.get("exclude"))]
    picked = [s for s in picked if (not include or any(_wild(p, s.name) for p in include))
              and not any(_wild(p, s.name) for p in exclude)]
    return [_service_obj(s) for s in picked]


def _service_change(it: _Interp, c: _Call, cmdlet: str, status: str | None) -> list[Any]:
    names = _as_list(c.get("name")) + _as_list(c.get("inputobject")) + (c.items() if c.input is not None else [])
    for d in _as_list(c.get("displayname")):
        names += [s.name for s in it.services if _wild(_to_str(d), s.display)]
    svcs = _find_services(it, c, names, cmdlet)
    for s in svcs:
        if status == "Running" and s.start_type.lower() == "disabled":
            it.error(c, f"Service '{s.display} ({s.name})' cannot be started due to the following error: Cannot start "
                        f"service {s.name} on computer '.'.", category="OpenError", target=s.name,
                     reason="ServiceCommandException", fqid=f"CouldNotStartService,Microsoft.PowerShell.Commands.{cmdlet}")
            continue
        if status:
            s.status = status
        if c.get("startuptype") is not None:
            s.start_type = _to_str(c.get("startuptype"))
        if c.get("status") is not None:
            s.status = _to_str(c.get("status"))
        if c.get("displayname") is not None and cmdlet == "SetServiceCommand":
            s.display = _to_str(c.get("displayname"))
    return [_service_obj(s) for s in svcs] if c.flag("passthru") else []


@_command("Start-Service", params="Name DisplayName InputObject Include Exclude", positional="Name", switches="PassThru",
          aliases=("sasv",), cost=0.8)
def _c_start_service(it: _Interp, c: _Call) -> list[Any]:
    return _service_change(it, c, "StartServiceCommand", "Running")


@_command("Stop-Service", params="Name DisplayName InputObject Include Exclude", positional="Name",
          switches="PassThru Force NoWait", aliases=("spsv",), cost=0.8)
def _c_stop_service(it: _Interp, c: _Call) -> list[Any]:
    return _service_change(it, c, "StopServiceCommand", "Stopped")


@_command("Restart-Service", params="Name DisplayName InputObject Include Exclude", positional="Name",
          switches="PassThru Force", cost=1.5)
def _c_restart_service(it: _Interp, c: _Call) -> list[Any]:
    return _service_change(it, c, "RestartServiceCommand", "Running")


@_command("Set-Service", params="Name DisplayName Description StartupType Status InputObject ComputerName",
          positional="Name", switches="PassThru", palias={"StartMode": "StartupType"}, cost=0.3)
def _c_set_service(it: _Interp, c: _Call) -> list[Any]:
    return _service_change(it, c, "SetServiceCommand", None)


# -- hotfixes, computer info


def _hotfix_obj(it: _Interp, h: _HotFix) -> _Obj:
    digits = re.sub(r"\D", "", h.kb)
    netbios = it.g.netbios
    return _Obj("HotFix", {
        "Source": netbios, "Description": h.description, "HotFixID": h.kb, "InstalledBy": h.installed_by,
        "InstalledOn": _local_date(it, h.installed_on), "Caption": f"http://support.microsoft.com/?kbid={digits}",
        "CSName": netbios, "FixComments": "", "InstallDate": None, "Name": None, "ServicePackInEffect": "", "Status": None,
    }, f'\\\\{netbios}\\root\\cimv2:Win32_QuickFixEngineering.HotFixID="{h.kb}",ServicePackInEffect=""')


@_command("Get-HotFix", params="Id Description ComputerName Credential", positional="Id", palias={"HFID": "Id"},
          cost=1.2)
def _c_get_hotfix(it: _Interp, c: _Call) -> list[Any]:
    ids = [_to_str(x) for x in _as_list(c.get("id"))]
    fixes = it.g.hotfixes
    if ids:
        picked: list[_HotFix] = []
        for i in ids:
            hits = [h for h in fixes if (_wild(i, h.kb) if _has_wild(i) else h.kb.lower() == i.lower())]
            if not hits and not _has_wild(i):
                it.error(c, "Cannot find the requested hotfix on the 'localhost' computer. Verify the input and run the "
                            "command again.", category="ObjectNotFound", target=i, reason="ArgumentException",
                         fqid="GetHotFixNoEntriesFound,Microsoft.PowerShell.Commands.GetHotFixCommand")
            picked += [h for h in hits if h not in picked]
    else:
        picked = list(fixes)
    desc = [_to_str(x) for x in _as_list(c.get("description"))]
    if desc:
        picked = [h for h in picked if any(_wild(d, h.description) for d in desc)]
    return [_hotfix_obj(it, h) for h in picked]


def _computer_info(it: _Interp) -> dict[str, Any]:
    g, os_ = it.g, it.g.os
    total_kb = (g.memory_mb + 1) * 1024 - 4 * 1024
    free_kb = int(total_kb * (0.35 + (g.seed % 40) / 100))
    off = it.now.utcoffset() or timedelta(0)
    virtual = "virtual" in g.model.lower() or "vmware" in g.manufacturer.lower()
    return {
        "WindowsBuildLabEx": os_.info.build_lab, "WindowsCurrentVersion": "6.3", "WindowsEditionId": os_.edition_id,
        "WindowsInstallationType": os_.installation_type,
        "WindowsInstallDateFromRegistry": g.install_date.astimezone(it.tz).replace(microsecond=0),
        "WindowsProductId": g.product_id, "WindowsProductName": os_.product_name, "WindowsRegisteredOrganization": "",
        "WindowsRegisteredOwner": "", "WindowsSystemRoot": "C:\\Windows", "WindowsVersion": os_.info.release_id,
        "BiosFirmwareType": g.firmware, "BiosManufacturer": g.manufacturer, "BiosName": g.bios, "BiosSeralNumber": g.serial,
        "BiosSMBIOSBIOSVersion": g.bios, "CsCaption": g.netbios, "CsDNSHostName": g.computer_name, "CsDomain": g.domain,
        "CsDomainRole": "MemberServer" if g.joined else "StandaloneServer", "CsManufacturer": g.manufacturer,
        "CsModel": g.model, "CsName": g.netbios, "CsNumberOfLogicalProcessors": g.cpus,
        "CsNumberOfProcessors": max(1, g.cpus // 16), "CsPartOfDomain": g.joined, "CsPrimaryOwnerName": "",
        "CsProcessors": [g.cpu_name], "CsSystemType": "x64-based PC", "CsTotalPhysicalMemory": total_kb * 1024,
        "CsPhyicallyInstalledMemory": (g.memory_mb + 1) * 1024, "CsWorkgroup": None if g.joined else "WORKGROUP",
        "OsName": os_.caption, "OsType": "WINNT", "OsOperatingSystemSKU": os_.sku_name, "OsVersion": os_.version,
        "OsCSDVersion": None, "OsBuildNumber": str(os_.build), "OsHotFixes": [h.kb for h in g.hotfixes],
        "OsBootDevice": "\\Device\\HarddiskVolume1", "OsSystemDevice": "\\Device\\HarddiskVolume2",
        "OsSystemDirectory": "C:\\Windows\\system32", "OsSystemDrive": "C:", "OsWindowsDirectory": "C:\\Windows",
        "OsCountryCode": "1", "OsCurrentTimeZone": int(off.total_seconds() // 60), "OsLocaleID": "0409",
        "OsLocale": "en-US", "OsLocalDateTime": it.now.replace(microsecond=0), "OsLastBootUpTime": it.boot,
        "OsUptime": it.now.replace(microsecond=0) - it.boot, "OsBuildType": "Multiprocessor Free", "OsCodeSet": "1252",
        "OsInstallDate": g.install_date.astimezone(it.tz).replace(microsecond=0), "OsMuiLanguages": ["en-US"],
        "OsArchitecture": "64-bit", "OsLanguage": "en-US", "OsProductType": "Server", "OsSerialNumber": g.product_id,
        "OsServerLevel": "ServerCore" if os_.core else "FullServer", "OsTotalVisibleMemorySize": total_kb,
        "OsFreePhysicalMemory": free_kb, "OsTotalVirtualMemorySize": total_kb + 1310720,
        "OsFreeVirtualMemory": free_kb + 655360, "OsNumberOfProcesses": len(_processes(it)), "OsNumberOfUsers": 1,
        "OsPortableOperatingSystem": False, "OsPrimary": True, "OsStatus": "OK", "KeyboardLayout": "en-US",
        "TimeZone": g.tz[1], "LogonServer": None, "HyperVisorPresent": virtual, "DeviceGuardSmartStatus": "Off",
    }


@_command("Get-ComputerInfo", params="Property", positional="Property", aliases=("gin",), cost=4.5)
def _c_get_computer_info(it: _Interp, c: _Call) -> list[Any]:
    info = _computer_info(it)
    wanted = [_to_str(p) for p in _as_list(c.get("property"))]
    if wanted:
        picked: dict[str, Any] = {}
        for w in wanted:
            for k, v in info.items():
                if (_wild(w, k) if _has_wild(w) else k.lower() == w.lower()) and k not in picked:
                    picked[k] = v
        info = picked
    return [_Obj("ComputerInfo", info, "Microsoft.PowerShell.Commands.ComputerInfo")]


# -- features


def _feature_obj(it: _Interp, f: _Feature) -> _Obj:
    by_name = {x.name: x for x in it.features}
    path, p = [f.display], f.parent
    while p and p in by_name and len(path) < 10:
        path.insert(0, by_name[p].display)
        p = by_name[p].parent
    return _Obj("Feature", {
        "DisplayName": f.display, "Name": f.name, "Installed": f.state == "Installed",
        "InstallState": _enum(_INSTALL_STATE, f.state), "FeatureType": f.ftype, "Path": "\\".join(path),
        "Depth": f.depth + 1, "DependsOn": [], "Parent": f.parent,
        "ServerComponentDescriptor": "ServerComponent_" + f.name.replace("-", "_"),
        "SubFeatures": [x.name for x in it.features if x.parent == f.name], "SystemService": [], "Notification": [],
        "BestPracticesModelId": None, "EventQuery": None, "PostConfigurationNeeded": False,
    }, f.display)


@_command("Get-WindowsFeature", params="Name ComputerName Vhd Credential LogPath", positional="Name", cost=2.0)
def _c_get_windows_feature(it: _Interp, c: _Call) -> list[Any]:
    names = [_to_str(n) for n in _as_list(c.get("name"))]
    feats = [f for f in it.features if not names or any(_wild(n, f.name) for n in names)]
    return [_feature_obj(it, f) for f in feats]


def _feature_change(it: _Interp, c: _Call, install: bool) -> list[Any]:
    names = [_to_str(n.find("Name")[1] if isinstance(n, _Obj) else n)
             for n in _as_list(c.get("name")) + (c.items() if c.input is not None else [])]
    targets = []
    for n in names:
        f = next((x for x in it.features if x.name.lower() == n.lower()), None)
        if f is None:
            it.error(c, f"ArgumentNotValid: The role, role service, or feature name is not valid: '{n}'. The name was not found.",
                     category="InvalidArgument", target=n, reason="Exception",
                     fqid=f"NameDoesNotExist,Microsoft.Windows.ServerManager.Commands.{'Add' if install else 'Remove'}WindowsFeatureCommand")
            return []
        targets.append(f)
    if c.flag("whatif"):
        for f in targets:
            it.host(f'What if: Continue with {"installation" if install else "removal"}?\nWhat if: Performing '
                    f'{"installation" if install else "uninstallation"} for "[{f.display}] {f.display}".')
        return []
    changed: list[str] = []
    restart = False
    by_name = {x.name: x for x in it.features}
    new_state = "Installed" if install else ("Removed" if c.flag("remove") else "Available")
    for f in targets:
        group = [f]
        if c.flag("includeallsubfeature") or c.flag("includemanagementtools") or not install:
            group += [x for x in it.features if x.parent and _ancestor(by_name, x, f.name)]
        if install:
            p = f.parent
            while p and p in by_name:
                group.append(by_name[p])
                p = by_name[p].parent
        for x in group:
            if x.state != new_state:
                x.state = new_state
                changed.append(x.display)
                restart = restart or x.name.lower() in _RESTART_FEATURES
    if install and any(x.name.lower() == "web-server" and x.state == "Installed" for x in it.features) \
            and not any(s.name == "W3SVC" for s in it.services):
        it.services.append(_Svc("W3SVC", "World Wide Web Publishing Service", "Running", "Automatic"))
        it.services.sort(key=lambda s: s.name.lower())
    if changed:
        it.cost += 10.0
    if restart and c.flag("restart"):
        it.restart = True
    elif restart:
        it.host(f"WARNING: You must restart this server to finish the {'installation' if install else 'removal'} process.")
    code = "NoChangeNeeded" if not changed else ("SuccessRestartRequired" if restart else "Success")
    return [_Obj("FeatureOperationResult", {
        "Success": True, "RestartNeeded": _Enum("Yes" if restart else "No", 1 if restart else 0),
        "FeatureResult": changed, "ExitCode": _Enum(code, {"Success": 0, "NoChangeNeeded": 1003,
                                                            "SuccessRestartRequired": 3010}[code]),
    }, "Microsoft.Windows.ServerManager.Commands.FeatureOperationResult")]


def _ancestor(by_name: Mapping[str, _Feature], f: _Feature, name: str) -> bool:
    p = f.parent
    for _ in range(10):
        if p is None:
            return False
        if p == name:
            return True
        p = by_name[p].parent if p in by_name else None
    return False


@_command("Install-WindowsFeature", params="Name Source ComputerName Credential LogPath Vhd ConfigurationFilePath",
          positional="Name", switches="IncludeAllSubFeature IncludeManagementTools Restart", aliases=("Add-WindowsFeature",),
          cost=2.0)
def _c_install_feature(it: _Interp, c: _Call) -> list[Any]:
    return _feature_change(it, c, True)


@_command("Uninstall-WindowsFeature", params="Name ComputerName Credential LogPath Vhd", positional="Name",
          switches="IncludeManagementTools Restart Remove", aliases=("Remove-WindowsFeature",), cost=2.0)
def _c_uninstall_feature(it: _Interp, c: _Call) -> list[Any]:
    return _feature_change(it, c, False)


# -- storage


@_command("Get-PSDrive", params="Name PSProvider Scope LiteralName", positional="Name", aliases=("gdr",), cost=0.1)
def _c_get_psdrive(it: _Interp, c: _Call) -> list[Any]:
    rel = it.cwd[3:] if it.cwd.lower().startswith("c:\\") else ""
    drives = [_Obj("PSDrive", {"Name": d.letter, "Used": d.size - d.free, "Free": d.free, "Provider": "FileSystem",
                               "Root": f"{d.letter}:\\", "CurrentLocation": rel if d.letter == "C" else "",
                               "Description": d.label}, d.letter) for d in it.g.disks]
    for name, provider, root in (("Alias", "Alias", ""), ("Cert", "Certificate", "\\"), ("Env", "Environment", ""),
                                 ("Function", "Function", ""), ("HKCU", "Registry", "HKEY_CURRENT_USER"),
                                 ("HKLM", "Registry", "HKEY_LOCAL_MACHINE"), ("Variable", "Variable", ""),
                                 ("WSMan", "WSMan", "")):
        drives.append(_Obj("PSDrive", {"Name": name, "Used": None, "Free": None, "Provider": provider, "Root": root,
                                       "CurrentLocation": "", "Description": ""}, name))
    drives.sort(key=lambda o: _to_str(o.props["Name"]).lower())
    names = [_to_str(n) for n in _as_list(c.get("name"))]
    providers = [_to_str(p).split("\\")[-1] for p in _as_list(c.get("psprovider"))]
    out = []
    for n in names or ["*"]:
        hits = [d for d in drives if _wild(n, _to_str(d.props["Name"]))]
        if not hits and not _has_wild(n):
            it.error(c, f"Cannot find drive. A drive with the name '{n}' does not exist.", category="ObjectNotFound",
                     target=n, reason="DriveNotFoundException",
                     fqid="GetLocationNoMatchingDrive,Microsoft.PowerShell.Commands.GetPSDriveCommand")
        out += [d for d in hits if d not in out]
    return [d for d in out if not providers or any(_wild(p, _to_str(d.props["Provider"])) for p in providers)]


@_command("Get-Volume", params="DriveLetter FileSystemLabel Path", positional="DriveLetter", cost=0.5)
def _c_get_volume(it: _Interp, c: _Call) -> list[Any]:
    vols = [_Obj("Volume", {
        "DriveLetter": d.letter, "FriendlyName": d.label, "FileSystemType": "NTFS", "DriveType": "Fixed",
        "HealthStatus": "Healthy", "OperationalStatus": "OK", "SizeRemaining": d.free, "Size": d.size,
        "AllocationUnitSize": 4096, "FileSystemLabel": d.label, "FileSystem": "NTFS",
        "UniqueId": "\\\\?\\Volume{" + _guid(it.g.seed, d.letter) + "}\\",
    }, "MSFT_Volume (DriveLetter = \"" + d.letter + "\")") for d in sorted(it.g.disks, key=lambda d: d.letter)]
    letters = [_to_str(x).rstrip(":") for x in _as_list(c.get("driveletter"))]
    if not letters:
        return vols
    out = []
    for letter in letters:
        hits = [v for v in vols if _to_str(v.props["DriveLetter"]).lower() == letter.lower()]
        if not hits:
            it.error(c, f"No MSFT_Volume objects found with property 'DriveLetter' equal to '{letter}'.  Verify the value "
                        "of the property and retry.", category="ObjectNotFound", target=letter, reason="CimJobException",
                     fqid="CmdletizationQuery_NotFound_DriveLetter,Get-Volume")
        out += hits
    return out


def _guid(*parts: object) -> str:
    x = f"{_h(*parts):016x}{_h(*parts, 'b'):016x}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


# -- network


def _adapter_obj(nic: _Nic) -> _Obj:
    return _Obj("NetAdapter", {
        "Name": nic.name, "InterfaceDescription": nic.description, "ifIndex": nic.if_index, "Status": "Up",
        "MacAddress": nic.mac, "LinkSpeed": nic.link_speed, "MediaType": "802.3", "PhysicalMediaType": "802.3",
        "AdminStatus": "Up", "MediaConnectionState": "Connected", "ifAlias": nic.name, "InterfaceAlias": nic.name,
        "Virtual": nic.kind == "PPP",
    }, f"MSFT_NetAdapter (CreationClassName = \"MSFT_NetAdapter\", DeviceID = \"{{{nic.if_index}}}\")")


@_command("Get-NetAdapter", params="Name InterfaceDescription InterfaceIndex", positional="Name",
          switches="Physical IncludeHidden", cost=0.4)
def _c_get_netadapter(it: _Interp, c: _Call) -> list[Any]:
    nics = [n for n in it.g.nics if not (c.flag("physical") and n.kind == "PPP")]
    names = [_to_str(n) for n in _as_list(c.get("name"))]
    descs = [_to_str(d) for d in _as_list(c.get("interfacedescription"))]
    out = []
    if names:
        for n in names:
            hits = [x for x in nics if _wild(n, x.name)]
            if not hits:
                it.error(c, f"No MSFT_NetAdapter objects found with property 'Name' equal to '{n}'.  Verify the value of "
                            "the property and retry.", category="ObjectNotFound", target=n, reason="CimJobException",
                         fqid="CmdletizationQuery_NotFound_Name,Get-NetAdapter")
            out += [x for x in hits if x not in out]
    else:
        out = nics
    if descs:
        out = [x for x in out if any(_wild(d, x.description) for d in descs)]
    if c.get("interfaceindex") is not None:
        out = [x for x in out if x.if_index == _to_int(c.get("interfaceindex"))]
    return [_adapter_obj(n) for n in out]


@_command("Get-NetIPAddress", params="IPAddress InterfaceAlias InterfaceIndex AddressFamily Type PrefixOrigin",
          positional="IPAddress", cost=0.4)
def _c_get_netipaddress(it: _Interp, c: _Call) -> list[Any]:
    rows = []
    for nic in it.g.nics:
        origin = "Dhcp" if nic.dhcp else "Manual"
        rows.append((nic.ipv4, nic.if_index, nic.name, "IPv4", nic.prefix, origin))
        if nic.ipv6_ll:
            rows.append((nic.ipv6_ll, nic.if_index, nic.name, "IPv6", 64, "WellKnown"))
    rows += [("127.0.0.1", 1, "Loopback Pseudo-Interface 1", "IPv4", 8, "WellKnown"),
             ("::1", 1, "Loopback Pseudo-Interface 1", "IPv6", 128, "WellKnown")]
    fam = _to_str(c.get("addressfamily")).lower()
    alias = [_to_str(a) for a in _as_list(c.get("interfacealias"))]
    out = []
    for ip, idx, name, family, prefix, origin in rows:
        if fam and fam != family.lower():
            continue
        if alias and not any(_wild(a, name) for a in alias):
            continue
        if c.get("interfaceindex") is not None and idx != _to_int(c.get("interfaceindex")):
            continue
        infinite = "Infinite ([TimeSpan]::MaxValue)"
        out.append(_Obj("NetIPAddress", {
            "IPAddress": ip, "InterfaceIndex": idx, "InterfaceAlias": name, "AddressFamily": family, "Type": "Unicast",
            "PrefixLength": prefix, "PrefixOrigin": origin, "SuffixOrigin": "Link" if family == "IPv6" else origin,
            "AddressState": "Preferred", "ValidLifetime": infinite, "PreferredLifetime": infinite,
            "SkipAsSource": False, "PolicyStore": "ActiveStore"}, ip))
    return out


_VIEWS["NetIPAddress"] = _View(mode="list")


def _fake_ip(host: str) -> str:
    x = _h("dns", host.lower())
    first = (20, 40, 52, 13, 104)[x % 5]
    return f"{first}.{(x >> 8) & 0xFF}.{(x >> 16) & 0xFF}.{((x >> 24) & 0xFD) + 1}"


def _private(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_private
    except ValueError:
        return False


def _listening(it: _Interp) -> list[int]:
    running = [s.name.lower() for s in it.services if s.status.lower() == "running"]
    ports = [135]
    ports += [445] if "lanmanserver" in running else []
    ports += [3389] if "termservice" in running else []
    ports += [5985, 47001] if "winrm" in running else []
    ports += [80] if "w3svc" in running else []
    ports += [6516] if "servermanagementgateway" in running else []
    return ports


@_command("Test-NetConnection", params="ComputerName Port CommonTCPPort InformationLevel Hops ConstrainSourceAddress "
                                       "ConstrainInterface", positional="ComputerName",
          switches="TraceRoute DiagnoseRouting", palias={"RemotePort": "Port", "RemoteAddress": "ComputerName",
                                                          "cn": "ComputerName"}, aliases=("tnc",), cost=1.0)
def _c_tnc(it: _Interp, c: _Call) -> list[Any]:
    g = it.g
    host = _to_str(c.get("computername")) or "internetbeacon.msedge.net"
    port: int | None = None
    if c.get("commontcpport") is not None:
        port = {"http": 80, "rdp": 3389, "smb": 445, "winrm": 5985}.get(_to_str(c.get("commontcpport")).lower())
    if c.get("port") is not None:
        port = _to_int(c.get("port"), -1)
        if not 0 < port < 65536:
            it.error(c, f"Cannot validate argument on parameter 'Port'. The {port} argument is greater than the maximum "
                        "allowed range of 65535." if port > 0 else "Cannot validate argument on parameter 'Port'.",
                     category="InvalidData", target="", reason="ParameterBindingValidationException",
                     fqid="ParameterArgumentValidationError,Test-NetConnection")
            return []
    quiet = _to_str(c.get("informationlevel")).lower() == "quiet"
    nic = next((n for n in g.nics if n.kind != "PPP"), g.nics[0])
    low = host.lower()
    local = low in ("localhost", "127.0.0.1", "::1", g.computer_name.lower(), g.netbios.lower(), g.fqdn.lower(), nic.ipv4)
    if not local and low.endswith((".invalid", ".test", ".example", ".localdomain")):
        it.host(f"WARNING: Name resolution of {host} failed")
        if quiet:
            return [False]
        props: dict[str, Any] = {"ComputerName": host, "RemoteAddress": None, "InterfaceAlias": None, "SourceAddress": None}
        props["PingSucceeded" if port is None else "TcpTestSucceeded"] = False
        return [_Obj("TestNetConnectionResult", props, "TestNetConnectionResult")]
    if local:
        remote = "::1" if low in ("localhost", "::1") else ("127.0.0.1" if low == "127.0.0.1" else nic.ipv4)
    else:
        try:
            remote = str(ipaddress.ip_address(host))
        except ValueError:
            remote = _fake_ip(host)
    x = _h(g.seed, low, port)
    ping_ok = local or _private(remote) or x % 4 != 0
    rtt = 0 if local else 1 + x % 40
    base = {"ComputerName": host, "RemoteAddress": remote}
    tail = {"InterfaceAlias": "Loopback Pseudo-Interface 1" if remote in ("::1", "127.0.0.1") else nic.name,
            "SourceAddress": remote if remote in ("::1", "127.0.0.1") else nic.ipv4}
    if port is None:
        if not ping_ok:
            it.host(f"WARNING: Ping to {host} failed with status: TimedOut")
            it.cost += 4.0
        if quiet:
            return [ping_ok]
        return [_Obj("TestNetConnectionResult", {**base, **tail, "PingSucceeded": ping_ok,
                                                  "PingReplyDetails (RTT)": f"{rtt if ping_ok else 0} ms"},
                     "TestNetConnectionResult")]
    if local:
        tcp_ok = port in _listening(it)
    elif port in (80, 443):
        tcp_ok = True
    elif _private(remote):
        tcp_ok = port in (22, 53, 88, 135, 389, 445, 636, 1433, 3389, 5985, 5986) and x % 3 != 0
    else:
        tcp_ok = x % 4 == 0
    if tcp_ok:
        if quiet:
            return [True]
        return [_Obj("TestNetConnectionResult", {**base, "RemotePort": port, **tail, "TcpTestSucceeded": True},
                     "TestNetConnectionResult")]
    it.cost += 4.0
    it.host(f"WARNING: TCP connect to ({remote} : {port}) failed")
    if not ping_ok:
        it.host(f"WARNING: Ping to {host} failed with status: TimedOut")
    if quiet:
        return [False]
    return [_Obj("TestNetConnectionResult", {**base, "RemotePort": port, **tail, "PingSucceeded": ping_ok,
                                              "PingReplyDetails (RTT)": f"{rtt if ping_ok else 0} ms",
                                              "TcpTestSucceeded": False}, "TestNetConnectionResult")]


# -- processes


_SERVICE_PROCESSES = {
    "spooler": ("spoolsv",), "windefend": ("MsMpEng", "NisSrv"), "sense": ("MsSense",),
    "windowsazureguestagent": ("WaAppAgent", "WindowsAzureGuestAgent"),
    "azuremonitoragent": ("AMAExtHealthMonitor", "MonAgentCore", "MonAgentHost", "MonAgentLauncher", "MonAgentManager"),
    "healthservice": ("HealthService", "MonitoringHost"), "himds": ("himds",), "gcarcservice": ("gc_arc_service",),
    "extensionservice": ("gc_extension_service",), "microsoftdependencyagent": ("MicrosoftDependencyAgent",),
    "servermanagementgateway": ("SmeDesktop",), "w3svc": ("w3wp",),
}


def _processes(it: _Interp) -> list[_Obj]:
    g = it.g
    names = ["Idle", "System", "Registry", "smss", "csrss", "csrss", "wininit", "winlogon", "services", "lsass",
             "fontdrvhost", "fontdrvhost", "LogonUI", "dwm", "WmiPrvSE", "conhost", "powershell"]
    names += ["svchost"] * (8 + g.seed % 5)
    for s in it.services:
        if s.status.lower() == "running":
            names += list(_SERVICE_PROCESSES.get(s.name.lower(), ()))
    session1 = {"winlogon", "LogonUI", "dwm"}
    out = []
    seen: dict[str, int] = {}
    for name in names:
        i = seen.get(name, 0)
        seen[name] = i + 1
        x = _h(g.seed, name, i)
        if name == "Idle":
            pid = 0
        elif name == "System":
            pid = 4
        elif name == "powershell":
            pid = 4000 + (g.seed % 2000) * 4
        else:
            pid = 4 * (100 + x % 2900)
        si = 1 if name in session1 or (name in ("csrss", "fontdrvhost") and i == 1) else 0
        pm = 0 if name == "Idle" else (1 + x % 180) * 1048576 + (x >> 20) % 1048576
        cpu = None if name == "Idle" else round(((x >> 8) % 100000) / 1000 * (1 + g.uptime.days), 2)
        sys_path = name not in ("Idle", "System", "Registry", "MsMpEng", "NisSrv", "MsSense") and name[0].islower()
        out.append(_Obj("Process", {
            "Name": name, "Id": pid, "Handles": 0 if name == "Idle" else 80 + x % 2400,
            "NPM": 0 if name == "Idle" else (3 + (x >> 4) % 60) * 1024, "PM": pm,
            "WS": 8192 if name == "Idle" else int(pm * 1.4) + 4 * 1048576, "CPU": cpu, "SI": si, "ProcessName": name,
            "Path": f"C:\\Windows\\system32\\{name}.exe" if sys_path else None,
            "StartTime": None if name == "Idle" else it.boot + timedelta(seconds=5 + x % 600),
        }, f"System.Diagnostics.Process ({name})"))
    out.sort(key=lambda o: (o.props["ProcessName"].lower(), o.props["Id"]))
    return out


@_command("Get-Process", params="Name Id ComputerName InputObject", positional="Name", switches="IncludeUserName Module",
          aliases=("gps", "ps"), palias={"ProcessName": "Name", "PID": "Id"}, cost=0.4)
def _c_get_process(it: _Interp, c: _Call) -> list[Any]:
    procs = _processes(it)
    names = [_to_str(n) for n in _as_list(c.get("name"))]
    ids = _as_list(c.get("id"))
    out: list[_Obj] = []
    for n in names:
        hits = [p for p in procs if _wild(n, p.props["Name"])]
        if not hits and not _has_wild(n):
            it.error(c, f'Cannot find a process with the name "{n}". Verify the process name and call the cmdlet again.',
                     category="ObjectNotFound", target=n, reason="ProcessCommandException",
                     fqid="NoProcessFoundForGivenName,Microsoft.PowerShell.Commands.GetProcessCommand")
        out += [p for p in hits if p not in out]
    for i in ids:
        pid = _to_int(i, -1)
        hits = [p for p in procs if p.props["Id"] == pid]
        if not hits:
            it.error(c, f"Cannot find a process with the process identifier {pid}.", category="ObjectNotFound",
                     target=str(pid), reason="ProcessCommandException",
                     fqid="NoProcessFoundForGivenId,Microsoft.PowerShell.Commands.GetProcessCommand")
        out += [p for p in hits if p not in out]
    return out if names or ids else procs


# -- SMB


@_command("Get-SmbServerConfiguration", params="CimSession", cost=0.5)
def _c_smb_config(it: _Interp, c: _Call) -> list[Any]:
    g = it.g
    quic = g.smb_quic_capable
    props: dict[str, Any] = {
        "AnnounceComment": "", "AnnounceServer": False, "AsynchronousCredits": 512, "AuditSmb1Access": False,
        "AutoDisconnectTimeout": 15, "AutoShareServer": True, "AutoShareWorkstation": True, "CachedOpenLimit": 10,
        "DurableHandleV2TimeoutInSeconds": 180, "EnableAuthenticateUserSharing": False, "EnableDownlevelTimewarp": False,
        "EnableForcedLogoff": True, "EnableLeasing": True, "EnableMultiChannel": True, "EnableOplocks": True,
        "EnableSecuritySignature": False, "EnableSMB1Protocol": g.feature_installed("FS-SMB1") and g.os.build <= 14393,
        "EnableSMB2Protocol": True,
    }
    if quic:
        props["EnableSMBQUIC"] = True
    props.update({
        "EnableStrictNameChecking": True, "EncryptData": False,
        "EncryptionCiphers": "AES_128_GCM, AES_128_CCM, AES_256_GCM, AES_256_CCM" if g.os.build >= 20348 else None,
        "IrpStackSize": 15, "KeepAliveTime": 2, "MaxChannelPerSession": 32, "MaxMpxCount": 50,
        "MaxSessionPerConnection": 16384, "MaxThreadsPerQueue": 20, "MaxWorkItems": 1, "NullSessionPipes": ",,",
        "NullSessionShares": "", "OplockBreakWait": 35, "PendingClientTimeoutInSeconds": 120,
        "RejectUnencryptedAccess": True, "RequireSecuritySignature": g.os.build >= 26100,
    })
    if quic:
        props["RestrictNamedPipeAccessViaQuic"] = True
    props.update({"ServerHidden": True, "Smb2CreditsMax": 8192, "Smb2CreditsMin": 512, "SmbServerNameHardeningLevel": 0,
                  "TreatHostAsStableStorage": False, "ValidateAliasNotCircular": True, "ValidateShareScope": True,
                  "ValidateShareScopeNotAliased": True, "ValidateTargetName": True})
    if props["EncryptionCiphers"] is None:
        del props["EncryptionCiphers"]
    return [_Obj("SmbServerConfiguration", props, "MSFT_SmbServerConfiguration")]


def _not_recognized(name: str) -> str:
    return (f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. "
            "Check the spelling of the name, or if a path was included, verify that the path is correct and try again.")


def _command_not_found(it: _Interp, c: _Call, name: str) -> None:
    """A command this server does not have. As in PowerShell, -ErrorAction does not apply (the command never
    ran); the error ends the statement: try/catch catches it, 2>$null or $ErrorActionPreference hide it."""
    pos = it.position(c.node.start, c.node.end)
    rec = _ErrorRecord(_not_recognized(name), name, "ObjectNotFound", name, "", "CommandNotFoundException",
                       "CommandNotFoundException", pos)
    if it.ea_pref in ("silentlycontinue", "ignore") or it.suppress_err:
        it.errors.append(rec)
        return
    if it.ea_pref == "stop":
        raise _Terminating(rec)
    raise _StatementTerminating(rec)


def _command_available(it: _Interp, canon: str) -> bool:
    if canon == "get-smbservercertificatemapping":
        return it.g.smb_quic_capable
    if canon == "get-mpcomputerstatus":
        return any(s.name.lower() == "windefend" for s in it.services)
    return True


_NATIVE = ("hostname", "whoami", "ipconfig", "systeminfo", "findstr", "shutdown")


@_command("Get-Command", params="Name Module CommandType Noun Verb", positional="Name", switches="ListImported All",
          aliases=("gcm",), cost=0.2)
def _c_get_command(it: _Interp, c: _Call) -> list[Any]:
    out = []
    for n in [_to_str(x) for x in _as_list(c.get("name"))]:
        low = re.split(r"[\\/]", n)[-1].lower().removesuffix(".exe")
        canon = _ALIASES.get(low, low)
        if low in it.functions:
            out.append(_Obj("CommandInfo", {"CommandType": "Function", "Name": n, "Version": "", "Source": ""}, n))
        elif canon in _COMMANDS and _command_available(it, canon):
            display = _COMMANDS[canon][2]
            if canon in _NATIVE:
                out.append(_Obj("CommandInfo", {"CommandType": "Application", "Name": f"{display}.exe", "Version": "10.0.0.0",
                                                "Source": f"C:\\Windows\\system32\\{display}.exe"}, f"{display}.exe"))
            else:
                kind = "Alias" if low != canon else "Cmdlet"
                out.append(_Obj("CommandInfo", {"CommandType": kind, "Name": n if kind == "Alias" else display,
                                                "Version": "3.1.0.0", "Source": "Microsoft.PowerShell.Management"},
                                display))
        else:
            it.error(c, _not_recognized(n), category="ObjectNotFound", target=n, reason="CommandNotFoundException",
                     fqid="CommandNotFoundException,Microsoft.PowerShell.Commands.GetCommandCommand")
    return out


_VIEWS["CommandInfo"] = _View((_Col("CommandType", "CommandType"), _Col("Name", "Name"), _Col("Version", "Version"),
                               _Col("Source", "Source")))


@_command("Get-SmbServerCertificateMapping", params="Name Subject Thumbprint", positional="Name", cost=0.4)
def _c_smb_mapping(it: _Interp, c: _Call) -> list[Any]:
    g = it.g
    if not g.smb_quic_capable:
        _command_not_found(it, c, "Get-SmbServerCertificateMapping")
        return []
    if g.smb_quic is None:
        return []
    fact = g.smb_quic
    name = _to_str(fact.get("name") or g.fqdn)
    thumb = _to_str(fact.get("thumbprint") or f"{_h(g.seed, 'quic'):016X}{_h(g.seed, 'quic2'):016X}{_h(g.seed, 'q3'):08X}"[:40])
    return [_Obj("SmbServerCertificateMapping", {
        "Name": name, "Subject": _to_str(fact.get("subject") or f"CN={g.fqdn}"), "Thumbprint": thumb,
        "DisplayName": name, "StoreName": "My", "Type": "QUIC", "Flags": "None"}, "MSFT_SmbServerCertificateMapping")]


# -- CIM / WMI


def _dmtf(dt: Any) -> Any:
    if not isinstance(dt, datetime):
        return dt
    off = int((dt.utcoffset() or timedelta(0)).total_seconds() // 60)
    return f"{dt:%Y%m%d%H%M%S}.{dt.microsecond:06}{off:+04d}"


def _cim_objects(it: _Interp, cls: str) -> list[_Obj] | None:
    g = it.g
    info = _computer_info(it)
    if cls == "win32_operatingsystem":
        return [_Obj("Win32_OperatingSystem", {
            "Status": "OK", "Name": f"{g.os.caption}|C:\\Windows|\\Device\\Harddisk0\\Partition2",
            "FreePhysicalMemory": info["OsFreePhysicalMemory"], "FreeVirtualMemory": info["OsFreeVirtualMemory"],
            "Caption": g.os.caption, "Description": "", "InstallDate": info["OsInstallDate"],
            "LastBootUpTime": it.boot, "LocalDateTime": info["OsLocalDateTime"], "BuildNumber": str(g.os.build),
            "BuildType": "Multiprocessor Free", "CodeSet": "1252", "CountryCode": "1", "CSName": g.netbios,
            "CurrentTimeZone": info["OsCurrentTimeZone"], "Manufacturer": "Microsoft Corporation",
            "NumberOfProcesses": info["OsNumberOfProcesses"], "NumberOfUsers": 1, "OperatingSystemSKU": g.os.sku_number,
            "Organization": "", "OSArchitecture": "64-bit", "OSLanguage": 1033, "OSType": 18, "ProductType": 3,
            "RegisteredUser": "", "SerialNumber": g.product_id, "ServicePackMajorVersion": 0,
            "SystemDirectory": "C:\\Windows\\system32", "SystemDrive": "C:",
            "TotalVirtualMemorySize": info["OsTotalVirtualMemorySize"],
            "TotalVisibleMemorySize": info["OsTotalVisibleMemorySize"], "Version": g.os.version,
            "WindowsDirectory": "C:\\Windows"}, f'Win32_OperatingSystem: {g.os.caption}')]
    if cls == "win32_computersystem":
        return [_Obj("Win32_ComputerSystem", {
            "Name": g.netbios, "PrimaryOwnerName": "", "Domain": g.domain, "TotalPhysicalMemory": info["CsTotalPhysicalMemory"],
            "Model": g.model, "Manufacturer": g.manufacturer, "DNSHostName": g.computer_name,
            "Workgroup": None if g.joined else "WORKGROUP", "PartOfDomain": g.joined,
            "NumberOfProcessors": info["CsNumberOfProcessors"], "NumberOfLogicalProcessors": g.cpus,
            "DomainRole": 3 if g.joined else 2, "SystemType": "x64-based PC",
            "HypervisorPresent": info["HyperVisorPresent"], "UserName": None}, f'Win32_ComputerSystem (Name = "{g.netbios}")')]
    if cls == "win32_quickfixengineering":
        return [_hotfix_obj(it, h) for h in g.hotfixes]
    if cls == "win32_logicaldisk":
        return [_Obj("Win32_LogicalDisk", {"DeviceID": f"{d.letter}:", "DriveType": 3, "ProviderName": None,
                                           "VolumeName": d.label, "Size": d.size, "FreeSpace": d.free, "FileSystem": "NTFS"},
                     f'Win32_LogicalDisk (DeviceID = "{d.letter}:")') for d in sorted(g.disks, key=lambda d: d.letter)]
    if cls == "win32_service":
        pids = {p.props["Name"].lower(): p.props["Id"] for p in _processes(it)}
        out = []
        for s in it.services:
            running = s.status.lower() == "running"
            proc = _SERVICE_PROCESSES.get(s.name.lower(), ("svchost",))[-1]
            out.append(_Obj("Win32_Service", {
                "ProcessId": pids.get(proc.lower(), 0) if running else 0, "Name": s.name,
                "StartMode": {"automatic": "Auto"}.get(s.start_type.lower(), s.start_type),
                "State": s.status, "Status": "OK", "ExitCode": 0 if running else 1077, "DisplayName": s.display,
                "StartName": "LocalSystem"}, f'Win32_Service (Name = "{s.name}")'))
        return out
    if cls == "win32_bios":
        return [_Obj("Win32_BIOS", {"SMBIOSBIOSVersion": g.bios, "Manufacturer": g.manufacturer, "Name": g.bios,
                                    "SerialNumber": g.serial,
                                    "Version": "VRTUAL - 1" if g.kind == "vm" else f"{g.manufacturer[:5].upper()} - 1"},
                     "Win32_BIOS")]
    if cls == "win32_processor":
        amd = "AMD" in g.cpu_name
        return [_Obj("Win32_Processor", {
            "DeviceID": "CPU0", "Name": g.cpu_name,
            "Caption": "AMD64 Family 25 Model 1 Stepping 1" if amd else "Intel64 Family 6 Model 85 Stepping 7",
            "MaxClockSpeed": 2445 if amd else 2100 + g.seed % 800, "SocketDesignation": "None",
            "Manufacturer": "AuthenticAMD" if amd else "GenuineIntel", "NumberOfCores": max(1, g.cpus // 2),
            "NumberOfLogicalProcessors": g.cpus, "LoadPercentage": g.seed % 30}, "Win32_Processor (DeviceID = \"CPU0\")")]
    return None


_VIEWS["Win32_Processor"] = _View(tuple(_Col(n, n) for n in ("DeviceID", "Name", "Caption", "MaxClockSpeed",
                                                           "SocketDesignation", "Manufacturer")))


def _wql_match(o: _Obj, where: str) -> bool:
    for clause in re.split(r"\s+and\s+", where.strip(), flags=re.I):
        m = re.match(r"""\s*(\w+)\s*(=|<>|!=|like)\s*(?:'([^']*)'|"([^"]*)"|(\S+))\s*$""", clause, re.I)
        if not m:
            return True
        value = m[3] if m[3] is not None else (m[4] if m[4] is not None else m[5])
        have = o.find(m[1])[1]
        op = m[2].lower()
        if op == "like":
            ok = _wild(value.replace("%", "*").replace("_", "?"), _to_str(have))
        else:
            ok = _compare(have, value) == 0
            ok = ok if op == "=" else not ok
        if not ok:
            return False
    return True


def _cim(it: _Interp, c: _Call, wmi: bool) -> list[Any]:
    cls = _to_str(c.get("classname") or c.get("class") or "")
    where = _to_str(c.get("filter") or "")
    if c.get("query") is not None:
        m = re.search(r"from\s+(\w+)(?:\s+where\s+(.+))?", _to_str(c.get("query")), re.I)
        if m:
            cls, where = m[1], m[2] or ""
    objs = _cim_objects(it, cls.lower())
    if objs is None:
        it.unrec.append(f"{c.name} {cls}".strip())
        return []
    if where:
        objs = [o for o in objs if _wql_match(o, where)]
    if wmi:
        for o in objs:
            o.props = {k: _dmtf(v) for k, v in o.props.items()}
            if o.type + "#wmi" in _VIEWS:
                o.type += "#wmi"
    return objs


@_command("Get-CimInstance", params="ClassName Namespace Filter Query Property ComputerName CimSession",
          positional="ClassName", palias={"Class": "ClassName"}, aliases=("gcim",), cost=0.6)
def _c_get_cim(it: _Interp, c: _Call) -> list[Any]:
    return _cim(it, c, False)


@_command("Get-WmiObject", params="Class Namespace Filter Query Property ComputerName Credential", positional="Class Property",
          aliases=("gwmi",), cost=0.6)
def _c_get_wmi(it: _Interp, c: _Call) -> list[Any]:
    return _cim(it, c, True)


# -- registry and paths


def _reg_path(path: str) -> tuple[str, str]:
    """('hklm:\\software\\…' lower-case key, 'SOFTWARE\\…' as typed) for a registry path."""
    p = path.strip().replace("/", "\\")
    p = re.sub(r"(?i)^(microsoft\.powershell\.core\\)?registry::", "", p)
    p = re.sub(r"(?i)^(hkey_local_machine|hklm:?)\\?", "HKLM:\\\\", p)
    p = p.rstrip("\\")
    rest = p[6:] if p.upper().startswith("HKLM:\\") else p
    return p.lower(), rest


def _registry(it: _Interp, key: str) -> dict[str, Any] | None:
    g, os_ = it.g, it.g.os
    if key == "hklm:\\software\\microsoft\\windows nt\\currentversion":
        values: dict[str, Any] = {
            "SystemRoot": "C:\\Windows", "BaseBuildRevisionNumber": 1, "BuildBranch": os_.info.build_lab.split(".")[3],
            "BuildGUID": "ffffffff-ffff-ffff-ffff-ffffffffffff", "BuildLab": os_.info.build_lab.rsplit(".", 2)[0].replace(
                ".amd64fre", "") + "." + os_.info.build_lab.rsplit(".", 1)[1],
            "BuildLabEx": os_.info.build_lab, "CompositionEditionID": os_.edition_id, "CurrentBuild": str(os_.build),
            "CurrentBuildNumber": str(os_.build),
        }
        if os_.info.kernel == "10.0":
            values.update({"CurrentMajorVersionNumber": 10, "CurrentMinorVersionNumber": 0})
        values.update({"CurrentType": "Multiprocessor Free", "CurrentVersion": "6.3"})
        if os_.info.display_version:
            values["DisplayVersion"] = os_.info.display_version
        values.update({
            "EditionID": os_.edition_id, "InstallationType": os_.installation_type,
            "InstallDate": int(g.install_date.timestamp()), "PathName": "C:\\Windows", "ProductId": g.product_id,
            "ProductName": os_.product_name, "RegisteredOrganization": "", "RegisteredOwner": "",
            "ReleaseId": os_.info.release_id or "", "SoftwareType": "System", "UBR": os_.ubr,
        })
        return values
    if key == "hklm:\\system\\currentcontrolset\\control\\terminal server":
        return {"AllowRemoteRPC": 0, "fDenyTSConnections": 0, "fSingleSessionPerUser": 1, "TSUserEnabled": 0}
    if key == "hklm:\\system\\currentcontrolset\\control\\terminal server\\winstations\\rdp-tcp":
        return {"fEnableWinStation": 1, "MinEncryptionLevel": 2, "PortNumber": 3389, "SecurityLayer": 2,
                "UserAuthentication": 1}
    if key == "hklm:\\software\\microsoft\\windows advanced threat protection\\status":
        mde = next((e for e in g.exts if (e.publisher.lower(), e.type.lower()) == _MDE), None)
        if mde is None:
            return None
        return {"OnboardingState": 1 if mde.state.lower() == "succeeded" else 0,
                "LastConnected": int((it.now_utc.timestamp() + 11644473600) * 10_000_000) - 3_000_000_000}
    return None


def _item_property(it: _Interp, c: _Call, path: str, names: list[str]) -> _Obj | None:
    key, rest = _reg_path(path)
    values = _registry(it, key)
    if values is None:
        it.unrec.append(f"{c.name} {path}")
        return None
    full = "HKEY_LOCAL_MACHINE\\" + rest
    props: dict[str, Any] = {}
    for n in names or ["*"]:
        hits = {k: v for k, v in values.items() if _wild(n, k)}
        if not hits:
            it.error(c, f"Property {n} does not exist at path {full}.", category="InvalidArgument", target=n,
                     reason="PSArgumentException",
                     fqid="System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyCommand")
        props.update(hits)
    if not props:
        return None
    parent, _, child = full.rpartition("\\")
    props.update({"PSPath": "Microsoft.PowerShell.Core\\Registry::" + full,
                  "PSParentPath": "Microsoft.PowerShell.Core\\Registry::" + parent, "PSChildName": child,
                  "PSDrive": "HKLM", "PSProvider": "Microsoft.PowerShell.Core\\Registry"})
    return _Obj("ItemProperty", props)


@_command("Get-ItemProperty", params="Path Name LiteralPath", positional="Path Name", aliases=("gp",), cost=0.1)
def _c_get_item_property(it: _Interp, c: _Call) -> list[Any]:
    names = [_to_str(n) for n in _as_list(c.get("name"))]
    out = []
    for path in _as_list(c.get("path", c.get("literalpath"))):
        obj = _item_property(it, c, _to_str(path), names)
        if obj is not None:
            out.append(obj)
    return out


@_command("Get-ItemPropertyValue", params="Path Name LiteralPath", positional="Path Name", aliases=("gpv",), cost=0.1)
def _c_get_item_property_value(it: _Interp, c: _Call) -> list[Any]:
    names = [_to_str(n) for n in _as_list(c.get("name"))]
    out = []
    for path in _as_list(c.get("path", c.get("literalpath"))):
        obj = _item_property(it, c, _to_str(path), names)
        if obj is not None:
            out += [obj.find(n)[1] for n in names if obj.find(n)[0]]
    return out


def _known_paths(it: _Interp) -> list[str]:
    g = it.g
    paths = ["c:", "c:\\windows", "c:\\windows\\system32", "c:\\program files", "c:\\program files (x86)", "c:\\programdata",
             "c:\\users", "c:\\users\\public", "c:\\packages", "c:\\packages\\plugins", "c:\\windows\\temp",
             it.cwd.lower(), it.script_path.lower(), "c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe",
             "hklm:\\software", "hklm:\\system", "hklm:\\software\\microsoft\\windows nt\\currentversion",
             "hklm:\\system\\currentcontrolset\\control\\terminal server",
             "hklm:\\system\\currentcontrolset\\control\\terminal server\\winstations\\rdp-tcp"]
    paths += [f"{d.letter.lower()}:" for d in g.disks]
    if g.kind == "vm":
        paths += ["c:\\windowsazure", "c:\\windowsazure\\logs", "c:\\windowsazure\\packages"]
    else:
        paths += ["c:\\program files\\azureconnectedmachineagent", "c:\\programdata\\azureconnectedmachineagent",
                  "c:\\program files\\azureconnectedmachineagent\\azcmagent.exe"]
    for e in g.exts:
        paths.append(f"c:\\packages\\plugins\\{e.publisher.lower()}.{e.type.lower()}")
        if (e.publisher.lower(), e.type.lower()) == _MDE:
            paths.append("hklm:\\software\\microsoft\\windows advanced threat protection\\status")
        if e.type.lower() == "microsoftmonitoringagent":
            paths.append("c:\\program files\\microsoft monitoring agent")
    if any(f.name == "Web-Server" and f.state == "Installed" for f in it.features):
        paths += ["c:\\inetpub", "c:\\inetpub\\wwwroot"]
    return paths


@_command("Test-Path", params="Path LiteralPath PathType Filter Include Exclude", positional="Path",
          switches="IsValid", cost=0.05)
def _c_test_path(it: _Interp, c: _Call) -> list[Any]:
    known = _known_paths(it)
    out = []
    for p in _as_list(c.get("path", c.get("literalpath"))):
        text = _to_str(p).strip().strip('"')
        key = _reg_path(text)[0] if re.match(r"(?i)^(hklm|hkey_local_machine|registry::)", text) else text.lower()
        key = key.replace("/", "\\").rstrip("\\")
        key = re.sub(r"^\$env:(\w+)", lambda m: (it.env(m[1]) or "").lower(), key)
        out.append(c.flag("isvalid") or key in known)
    return out


@_command("Get-MpComputerStatus", params="CimSession", cost=0.8)
def _c_mp_status(it: _Interp, c: _Call) -> list[Any]:
    g = it.g
    svc = next((s for s in it.services if s.name.lower() == "windefend"), None)
    if svc is None:
        _command_not_found(it, c, "Get-MpComputerStatus")
        return []
    on = svc.status.lower() == "running"
    mde = next((e for e in g.exts if (e.publisher.lower(), e.type.lower()) == _MDE), None)
    updated = (it.now - timedelta(hours=1 + g.seed % 20)).replace(microsecond=0)
    return [_Obj("MpComputerStatus", {
        "AMEngineVersion": "1.1.24030.4", "AMProductVersion": "4.18.24030.9", "AMRunningMode": "Normal" if on else "Not running",
        "AMServiceEnabled": on, "AMServiceVersion": "4.18.24030.9", "AntispywareEnabled": on,
        "AntispywareSignatureLastUpdated": updated, "AntispywareSignatureVersion": f"1.409.{g.seed % 900}.0",
        "AntivirusEnabled": on, "AntivirusSignatureLastUpdated": updated,
        "AntivirusSignatureVersion": f"1.409.{g.seed % 900}.0", "BehaviorMonitorEnabled": on,
        "ComputerID": _guid(g.seed, "mp").upper(), "ComputerState": 0, "DefenderSignaturesOutOfDate": False,
        "IoavProtectionEnabled": on, "IsTamperProtected": mde is not None and mde.state.lower() == "succeeded",
        "NISEnabled": on, "OnAccessProtectionEnabled": on, "RealTimeProtectionEnabled": on,
    }, "MSFT_MpComputerStatus")]


_VIEWS["MpComputerStatus"] = _View(mode="list")


@_command("Restart-Computer", params="ComputerName Credential Delay For Timeout Protocol WsmanAuthentication",
          switches="Force Wait AsJob", cost=0.5)
def _c_restart_computer(it: _Interp, c: _Call) -> list[Any]:
    if c.flag("whatif"):
        it.host('What if: Performing the operation "Enable the Local shutdown access rights and restart the computer." '
                f'on target "localhost ({it.g.netbios})".')
        return []
    it.restart = True
    return []


# ------------------------------------------------------------------------------- entry points glue


def _simulate(script: str, machine: Any, extensions: Sequence[Any], sim: Mapping | None, now: datetime,
              parameters: Mapping[str, str] | None, script_path: str) -> ScriptResult:
    override = _override(sim, machine, script)
    if override is not None:
        return override
    g = _safe_guest(machine, extensions, sim)
    try:
        return _Interp(g, _as_utc(now), parameters, script_path).run(script)
    except Exception:  # a gap in this module must not fail the simulator's request
        return ScriptResult("", "", 0, 1.0, False, ("<internal error>",))


def _safe_guest(machine: Any, extensions: Sequence[Any], sim: Mapping | None) -> _Guest:
    try:
        return _guest_of(machine, extensions, sim)
    except Exception:  # hostile documents: answer for a bare machine with the same id
        mid = _s(_get(machine, "id")) or "machine"
        return _guest_of({"id": mid, "type": _s(_get(machine, "type")) or ""}, (), None)


def _legacy_output(cid: str, g: _Guest, params: Mapping[str, str]) -> tuple[str, str, int, float]:
    """Fixed answers of the legacy Windows run commands other than RunPowerShellScript and IPConfig."""
    rdp = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server"
    term = g.service("TermService")
    term_state = term.status if term else "Stopped"
    if cid == "EnableRemotePS":
        lines = ["WinRM service is already running on this machine.",
                 "WinRM is already set up for remote management on this computer.",
                 f"Created a WinRM listener on HTTPS://* with a self-signed certificate for CN={g.fqdn}.",
                 "Firewall rule 'Windows Remote Management (HTTPS-In)' allows TCP port 5986.",
                 "Remote PowerShell is enabled."]
        return "\n".join(lines) + "\n", "", 0, 3.0
    if cid == "RDPSettings":
        policy = (f"The machine is joined to {g.domain}; no Remote Desktop group policy overrides the local settings."
                  if g.joined else "The machine is not joined to a domain; no Remote Desktop group policy applies.")
        lines = ["Checking registry settings...",
                 f"  {rdp}\\fDenyTSConnections = 0 (Remote Desktop connections are allowed)",
                 f"  {rdp}\\WinStations\\RDP-Tcp\\PortNumber = 3389",
                 f"  {rdp}\\WinStations\\RDP-Tcp\\UserAuthentication = 1 (Network Level Authentication is required)",
                 f"  {rdp}\\WinStations\\RDP-Tcp\\SecurityLayer = 2 (TLS)",
                 "Checking domain policy settings...", f"  {policy}",
                 "Checking firewall rules...", "  'Remote Desktop - User Mode (TCP-In)' is enabled for TCP port 3389.",
                 f"Remote Desktop Services (TermService) is {term_state}.",
                 "The RDP listener settings are at their default values. No changes were made."]
        return "\n".join(lines) + "\n", "", 0, 4.0
    if cid == "SetRDPPort":
        raw = next((v for k, v in params.items() if k in ("rdpport", "port")), "3389")
        port = _to_int(raw, -1)
        if not 0 < port < 65536:
            return "", f"Invalid port '{raw}'. Specify a port number between 1 and 65535.\n", 1, 1.5
        lines = [f"Setting the Remote Desktop port to {port}...",
                 f"  {rdp}\\WinStations\\RDP-Tcp\\PortNumber = {port}",
                 f"  Firewall rule 'Remote Desktop - Custom Port (TCP-In)' allows TCP port {port}.",
                 "Restarting Remote Desktop Services (TermService)...",
                 f"Remote Desktop is now listening on port {port}."]
        return "\n".join(lines) + "\n", "", 0, 5.0
    if cid == "ResetRDPCert":
        thumb = f"{_h(g.seed, 'rdpcert'):016X}{_h(g.seed, 'rdpcert2'):016X}{_h(g.seed, 'rdpcert3'):08X}"[:40]
        lines = ["Removing the SSL certificate bound to the RDP listener...",
                 f"  Removed {rdp}\\WinStations\\RDP-Tcp\\SSLCertificateSHA1Hash ({thumb}).",
                 "  Removed the certificate from the 'Remote Desktop' certificate store.",
                 "Restarting Remote Desktop Services (TermService)...",
                 f"The RDP listener now uses a new self-signed certificate for CN={g.fqdn}."]
        return "\n".join(lines) + "\n", "", 0, 4.0
    if cid == "EnableAdminAccount":
        was_disabled = g.seed % 5 == 0
        line = (f"The local administrator account '{g.admin_user}' was disabled; it has been enabled."
                if was_disabled else f"The local administrator account '{g.admin_user}' is already enabled.")
        return line + "\n", "", 0, 2.0
    if cid == "ResetAccountPassword":
        return (f"The password of the built-in administrator account '{g.admin_user}' has been reset.\n"
                "The account is enabled and the password never expires.\n", "", 0, 2.5)
    if cid == "DisableNLA":
        lines = [f"  {rdp}\\WinStations\\RDP-Tcp\\UserAuthentication = 0",
                 "Network Level Authentication has been disabled for the RDP-Tcp listener.",
                 "Restart the machine for the change to take effect."]
        return "\n".join(lines) + "\n", "", 0, 2.0
    if cid in ("DisableWindowsUpdate", "EnableWindowsUpdate"):
        off = cid == "DisableWindowsUpdate"
        lines = [f"  HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU\\NoAutoUpdate = {1 if off else 0}",
                 f"Automatic Windows Update has been {'disabled' if off else 'enabled'}."]
        return "\n".join(lines) + "\n", "", 0, 2.0
    if cid == "EnableEMS":
        lines = ["bcdedit /ems {current} on", "The operation completed successfully.",
                 "bcdedit /emssettings EMSPORT:1 EMSBAUDRATE:115200", "The operation completed successfully.",
                 "Emergency Management Services is enabled. Restart the machine for the change to take effect."]
        return "\n".join(lines) + "\n", "", 0, 2.0
    return "", "", 0, 1.0
