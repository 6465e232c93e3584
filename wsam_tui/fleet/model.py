"""The domain: plain, typed, immutable records. No I/O, no HTTP, no Textual.

Raw ARM / Resource Graph documents come in (``RawServer``), records and capability states come out.
Every string that reaches a record has passed through ``clean_text`` (control characters turned into
visible markers), because names, tags and Arc-reported fields are controlled by whoever controls the server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

_NEWLINES = re.compile("[\t\n\r\u2028\u2029]+")
_CARRIAGE_RETURNS = re.compile("\r\n?")


def control_marker(char: str) -> str:
    """The visible stand-in for one control character: C0 and DEL as their Unicode control pictures
    (ESC → ␛, BEL → ␇), C1 controls and bidi marks as ⟨U+XXXX⟩. A marker, not a deletion, so that two
    raw values differing only in their escape sequences stay distinct and the operator sees them."""
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    return "␡" if code == 0x7F else f"⟨U+{code:04X}⟩"


# C0 and C1 controls, DEL, and the bidi override/isolate marks that reorder what a terminal shows.
_MARKERS = {code: control_marker(chr(code))
            for code in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_KEPT_MARKERS = {code: marker for code, marker in _MARKERS.items() if chr(code) not in "\t\n"}


def clean_text(value: Any, *, limit: int | None = None, keep_newlines: bool = False) -> str:
    """Untrusted text → displayable text: each control shown as a marker (see ``control_marker``), never
    sent to the terminal; tabs/newlines become spaces unless kept (kept: CR LF and a lone CR become LF)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: nothing to mark (every character marked below is non-printable)
        return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
    if keep_newlines:
        text = _CARRIAGE_RETURNS.sub("\n", text).translate(_KEPT_MARKERS)
    else:
        text = _NEWLINES.sub(" ", text).translate(_MARKERS)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def clean_keys(mapping: Mapping[Any, Any], *, limit: int | None = None) -> dict[str, Any]:
    """``mapping`` with each key through ``clean_text``. Keys that still clean into the same text (cut at
    ``limit``, a tab folded into a space, a marker spelled literally) are told apart by " (2)", " (3)", …
    in arrival order, so that no entry overwrites another."""
    out: dict[str, Any] = {}
    for raw, value in mapping.items():
        key = shown = clean_text(raw, limit=limit)
        n = 1
        while shown in out:
            n += 1
            shown = f"{key} ({n})"
        out[shown] = value
    return out


class Kind(StrEnum):
    VM = "vm"
    ARC = "arc"


class State(StrEnum):
    ON = "on"
    PARTIAL = "partial"  # present but unhealthy, incomplete or legacy
    OFF = "off"
    NOT_APPLICABLE = "n/a"  # this capability does not exist for this kind of server
    UNKNOWN = "unknown"  # not fetched, access denied, or the source failed: see unknown_reason


class Group(StrEnum):
    GOVERN = "Govern"
    PROTECT = "Protect"
    CONFIGURE = "Configure"
    MONITOR = "Monitor"
    EXTEND = "Extend"


# Names of the raw sources a detector reads. The inventory records, per subscription, whether each
# was fetched (and when) or failed (and why); a detector whose source is missing answers UNKNOWN.
class Source(StrEnum):
    MACHINES = "machines"
    EXTENSIONS = "extensions"
    PATCH = "patch"
    GUEST_CONFIGURATION = "guestconfiguration"
    POLICY = "policy"
    SECURITY = "security"  # Defender assessments and pricings
    BACKUP = "backup"
    SITE_RECOVERY = "siterecovery"
    DCR_ASSOCIATIONS = "dcrassociations"
    DCRS = "dcrs"  # data collection rules, workspaces and Sentinel solutions
    AUTOMANAGE = "automanage"
    MAINTENANCE = "maintenance"
    FILE_SYNC = "filesync"
    IN_GUEST = "inguest"  # opt-in Run Command probe


@dataclass(frozen=True, slots=True)
class Evidence:
    """Which document said so, in which field, what it said, and when it was fetched."""

    source: Source
    document_id: str  # the ARM id of the document; "" when the absence of documents is the evidence
    field: str  # e.g. "properties.provisioningState"
    value: str  # what it said (clean, short)
    fetched_at: datetime | None


@dataclass(frozen=True, slots=True)
class CapabilityState:
    capability: str  # Capability.id
    state: State
    summary: str  # one line for the details pane, e.g. "AzureMonitorWindowsAgent 1.22 Succeeded; DCR dcr-insights"
    evidence: tuple[Evidence, ...] = ()
    unknown_reason: str | None = None  # for UNKNOWN: "not fetched", "no access (403 AuthorizationFailed)", …
    flags: tuple[str, ...] = ()  # e.g. ("legacy-mma",), ("reboot-pending",), ("stale-assessment",)
    stale_reason: str | None = None  # flag "stale": the last known state; a source failed since (which, why)


@dataclass(frozen=True, slots=True)
class Extension:
    name: str
    publisher: str
    type: str
    version: str
    provisioning_state: str  # Succeeded | Failed | Creating | Updating | Deleting | …
    status_message: str = ""
    auto_upgrade: bool = False
    id: str = ""

    @property
    def handler(self) -> str:
        return f"{self.publisher}.{self.type}"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Whether one raw source was fetched for one subscription: when, or why not."""

    fetched_at: datetime | None = None
    error: str | None = None  # e.g. "no access (403 AuthorizationFailed)"; None when fetched

    @property
    def ok(self) -> bool:
        return self.fetched_at is not None and self.error is None

    @property
    def stale(self) -> bool:
        """Failed since it was last fetched: its rows are the last known state."""
        return self.fetched_at is not None and self.error is not None


@dataclass(slots=True)
class RawServer:
    """Every raw document the inventory holds about one server, as Resource Graph rows / ARM documents.

    Documents keep ARG's row shape (``id``, ``name``, ``type`` lower-case, ``subscriptionId``,
    ``resourceGroup``, ``location``, ``tags``, ``identity``, ``properties`` …); an ARM GET document
    has the same keys, so detectors read either.
    """

    machine: dict
    extensions: list[dict] = field(default_factory=list)
    patch_assessment: dict | None = None  # the */patchassessmentresults summary row
    guest_configuration: list[dict] = field(default_factory=list)
    policy_states: list[dict] = field(default_factory=list)
    security_assessments: list[dict] = field(default_factory=list)
    pricing: dict | None = None  # the effective Defender for Servers pricing (resource-level, else subscription)
    backup_items: list[dict] = field(default_factory=list)
    replication_items: list[dict] = field(default_factory=list)
    dcr_associations: list[dict] = field(default_factory=list)
    automanage: list[dict] = field(default_factory=list)
    maintenance: list[dict] = field(default_factory=list)
    file_sync: list[dict] = field(default_factory=list)  # matched registered servers
    in_guest: dict | None = None  # the latest in-guest probe result, if any


@dataclass(frozen=True, slots=True)
class FleetContext:
    """What detectors need beyond one server: shared documents, settings, the clock, source status."""

    now: datetime
    dcrs: Mapping[str, dict] = field(default_factory=dict)  # lower-case DCR id -> DCR document
    sentinel_workspaces: frozenset[str] = frozenset()  # lower-case workspace ids with Sentinel enabled
    required_tags: tuple[str, ...] = ("env", "owner", "costCenter")
    sources: Mapping[tuple[str, Source], SourceStatus] = field(default_factory=dict)  # (lower sub, source) -> status
    stale_after_days: int = 7  # an assessment/heartbeat older than this is stale
    subscription_tenants: Mapping[str, str] = field(default_factory=dict)  # lower sub -> tenant id (ARM documents carry none)

    def source(self, subscription_id: str, source: Source) -> SourceStatus:
        return self.sources.get((subscription_id.lower(), source), SourceStatus())


@dataclass(frozen=True, slots=True)
class Server:
    """One row of the server table: everything shown without opening the details pane."""

    id: str
    name: str
    kind: Kind
    subscription_id: str
    tenant_id: str
    resource_group: str
    location: str
    os_name: str  # e.g. "Windows Server 2022 Datacenter Azure Edition"
    os_version: str  # e.g. "10.0.20348.2340"
    state: str  # VM power state (running, stopped, deallocated, …) or Arc status (Connected, Disconnected, …)
    agent_version: str  # VM agent or Arc agent version
    tags: Mapping[str, str]
    identity_type: str
    extensions: tuple[Extension, ...]
    capabilities: Mapping[str, CapabilityState]
    fetched_at: datetime | None = None

    @property
    def coverage(self) -> float:
        """Share of applicable capabilities that are on (partial counts half); unknown ones are left out."""
        scored = [c for c in self.capabilities.values() if c.state not in (State.NOT_APPLICABLE, State.UNKNOWN)]
        if not scored:
            return 0.0
        return sum(1.0 if c.state is State.ON else 0.5 if c.state is State.PARTIAL else 0.0 for c in scored) / len(scored)
