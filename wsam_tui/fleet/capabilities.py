"""The capability catalog: one detector per column of the matrix, for Azure VMs and Arc servers.

Each detector reads the raw documents of one server (``RawServer``) plus what the fleet shares
(``FleetContext``: DCRs, Sentinel workspaces, settings, the clock, which sources were fetched) and
answers a ``CapabilityState`` with its evidence. ``evaluate`` applies the common rules first: a column
that does not exist for the server's kind is NOT_APPLICABLE, a column whose source was not fetched
(or was denied) for the server's subscription is UNKNOWN with the reason, and only then does the
detector run. The rules per column are written down in docs/capabilities.md.

Documents are read defensively: a Resource Graph row or an ARM GET document, with a child's fields
under ``properties`` or projected flat at the top level; a malformed document (missing keys, nulls,
wrong types) degrades to an empty value and never raises. Extensions are matched by publisher and
type, case-insensitively, never by name. Every string put into a record passes through ``clean_text``.

No I/O here: no HTTP, no Textual, no disk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar

from .model import (
    CapabilityState,
    Evidence,
    Extension,
    FleetContext,
    Group,
    Kind,
    RawServer,
    Server,
    Source,
    SourceStatus,
    State,
    clean_keys,
    clean_text,
)

__all__ = [
    "BY_ID",
    "CATALOG",
    "Capability",
    "build_server",
    "evaluate",
    "kind_of",
    "os_name_from_image",
    "parse_extension",
    "subscription_of",
]

BOTH = frozenset({Kind.VM, Kind.ARC})
VM_ONLY = frozenset({Kind.VM})

SUMMARY_LIMIT = 300
VALUE_LIMIT = 120
MAX_EVIDENCE = 12

# Extension identities (publisher, type) — research/arm-api.md §11.
GUEST_CONFIG = ("Microsoft.GuestConfiguration", "ConfigurationforWindows")
MDE = ("Microsoft.Azure.AzureDefenderForServers", "MDE.Windows")
AMA = ("Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent")
MMA = ("Microsoft.EnterpriseCloud.Monitoring", "MicrosoftMonitoringAgent")
DEPENDENCY_AGENT = ("Microsoft.Azure.Monitoring.DependencyAgent", "DependencyAgentWindows")
CHANGE_TRACKING = ("Microsoft.Azure.ChangeTrackingAndInventory", "ChangeTracking-Windows")
ADMIN_CENTER = ("Microsoft.AdminCenter", "AdminCenter")
AAD_LOGIN = ("Microsoft.Azure.ActiveDirectory", "AADLoginForWindows")

SECURITY_STREAMS = ("microsoft-securityevent", "microsoft-windowsevent")
CHANGE_STREAM_PREFIX = "microsoft-configurationchange"  # also …ChangeV2
INSIGHTS_STREAMS = ("microsoft-insightsmetrics", "microsoft-servicemap")

# Sources known per server rather than per subscription (an opt-in probe): only an explicit error
# recorded for the subscription makes the column UNKNOWN up front; otherwise the detector decides.
PER_SERVER_SOURCES = frozenset({Source.IN_GUEST})


# ---- defensive readers ------------------------------------------------------------------------


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _path(node: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _pf(doc: Any, path: str, *aliases: str) -> Any:
    """A field of a document: ``properties.<path>``, else ``<path>`` at the top level (a flat
    projection), else the first flat alias present."""
    if not isinstance(doc, dict):
        return None
    value = _path(doc.get("properties"), path)
    if value is None:
        value = _path(doc, path)
    for alias in aliases:
        if value is not None:
            break
        value = doc.get(alias)
    return value


def _s(value: Any) -> str:
    """A scalar as a raw string ("" for anything else); bools as ARM writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def _low(value: Any) -> str:
    return _s(value).strip().lower()


def _bool(value: Any) -> bool:
    return value is True or _low(value) == "true"


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float):
        return max(int(value), 0)
    if isinstance(value, str):
        try:
            return max(int(float(value)), 0)
        except ValueError:
            return 0
    return 0


def _c(value: Any, limit: int = VALUE_LIMIT) -> str:
    return clean_text(_s(value), limit=limit)


def _last_segment(resource_id: Any) -> str:
    text = _s(resource_id).rstrip("/")
    return text.rsplit("/", 1)[-1] if text else ""


def _segment_after(resource_id: Any, key: str) -> str:
    parts = _s(resource_id).split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == key.lower():
            return parts[i + 1]
    return ""


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    text = _s(value).strip()
    if not text:
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    m = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", text)
    if m:  # ARM writes 7 fractional digits; keep 6
        text = f"{m.group(1)}.{(m.group(2) + '000000')[:6]}{m.group(3)}"
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "at an unknown time"
    seconds = (now - then).total_seconds()
    if seconds < -300:
        return "in the future"
    seconds = max(seconds, 0)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---- machine documents ------------------------------------------------------------------------

_SUB = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
_RG = re.compile(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)", re.IGNORECASE)


def kind_of(machine: Any) -> Kind:
    """VM or Arc from the document's type (either casing), else from its id; VM when neither says."""
    m = _d(machine)
    t = _low(m.get("type"))
    if t == "microsoft.hybridcompute/machines":
        return Kind.ARC
    if t == "microsoft.compute/virtualmachines":
        return Kind.VM
    return Kind.ARC if "/providers/microsoft.hybridcompute/machines/" in _low(m.get("id")) else Kind.VM


def subscription_of(machine: Any) -> str:
    m = _d(machine)
    sub = _s(m.get("subscriptionId")).strip()
    if sub:
        return sub
    match = _SUB.match(_s(m.get("id")))
    return match.group(1) if match else ""


def _vm_instance_view(props: dict) -> dict:
    """The ARM instanceView, else the ARG row's properties.extended.instanceView."""
    iv = props.get("instanceView")
    if isinstance(iv, dict):
        return iv
    return _d(_path(props, "extended.instanceView"))


def _power_state(props: dict) -> str:
    """running / stopped / deallocated / starting / … from either document shape; "" if absent."""
    code = ""
    for st in _dicts(_d(props.get("instanceView")).get("statuses")):
        if _s(st.get("code")).lower().startswith("powerstate/"):
            code = _s(st.get("code"))
    if not code:
        code = _s(_path(props, "extended.instanceView.powerState.code"))
    if not code:
        return ""
    return code.split("/", 1)[1].strip().lower() if "/" in code else code.strip().lower()


def _vm_agent(props: dict) -> tuple[str, str] | None:
    """(status, version) of the VM agent from an ARM instanceView; None when the document has none."""
    agent = _d(props.get("instanceView")).get("vmAgent")
    if not isinstance(agent, dict):
        return None
    status = ""
    for st in _dicts(agent.get("statuses")):
        status = _s(st.get("displayStatus")) or _s(st.get("code"))
        if status:
            break
    return status, _s(agent.get("vmAgentVersion"))


def _patch_settings(props: dict) -> dict:
    return _d(_path(props, "osProfile.windowsConfiguration.patchSettings"))


_EDITIONS = {"datacenter": "Datacenter", "standard": "Standard", "essentials": "Essentials"}


def os_name_from_image(image: Any) -> str:
    """A readable name from an imageReference: offer WindowsServer, sku 2022-datacenter-azure-edition →
    "Windows Server 2022 Datacenter: Azure Edition". "" when the reference says nothing usable."""
    ref = _d(image)
    offer, sku = _s(ref.get("offer")).strip(), _s(ref.get("sku")).strip()
    if not sku:
        return clean_text(offer)
    if offer.lower() not in ("windowsserver", "windowsserverhotpatch-previews", "windows-server"):
        return clean_text(f"{offer} {sku}".strip())
    tokens = [t for t in sku.lower().replace("_", "-").split("-") if t]
    words: list[str] = ["Windows Server"]
    if tokens and re.fullmatch(r"\d{4}", tokens[0]):
        words.append(tokens.pop(0))
        if tokens and tokens[0] == "r2":
            words.append("R2")
            tokens.pop(0)
    edition = next((t for t in tokens if t in _EDITIONS), "")
    if edition:
        words.append(_EDITIONS[edition])
    name = " ".join(words)
    joined = "-".join(tokens)
    if "azure-edition" in joined:
        name += ": Azure Edition"
    if "core" in tokens:
        name += " Core"
    if "hotpatch" in tokens:
        name += " Hotpatch"
    if "containers" in tokens:
        name += " with Containers"
    known = {"azure", "edition", "core", "hotpatch", "smalldisk", "g2", "gensecond", "gs", "with", "containers",
             "server", *_EDITIONS}
    rest = [t for t in tokens if t not in known]
    if rest and not edition:
        name += " " + " ".join(rest)
    return clean_text(name)


# ---- extensions -------------------------------------------------------------------------------

_OK, _FAILED, _BUSY, _UNSET = "ok", "failed", "transitioning", "unknown"


def _health(provisioning_state: str) -> str:
    s = provisioning_state.strip().lower()
    if s == "succeeded":
        return _OK
    if s in ("failed", "canceled", "cancelled"):
        return _FAILED
    if not s:
        return _UNSET
    return _BUSY  # Creating, Updating, Deleting, Accepted, …


def parse_extension(doc: Any) -> Extension | None:
    """An extension record from an ARG row, an ARM document or a flat projection; None if unusable."""
    if not isinstance(doc, dict):
        return None
    publisher = _s(_pf(doc, "publisher"))
    etype = _s(_pf(doc, "type"))
    if "/" in etype:  # a resource type fell through from the top level: no extension type here
        etype = ""
    if not publisher and not etype:
        return None
    iv = _d(_pf(doc, "instanceView"))
    version = _s(_pf(doc, "typeHandlerVersion")) or _s(iv.get("typeHandlerVersion"))
    message = ""
    status = iv.get("status")  # Arc: one object
    statuses = [status] if isinstance(status, dict) else _dicts(iv.get("statuses"))  # VM: a list
    for st in statuses:
        message = _s(st.get("message")) or _s(st.get("displayStatus"))
        if message:
            break
    name = _s(doc.get("name")) or _last_segment(doc.get("id"))
    return Extension(
        name=clean_text(name, limit=VALUE_LIMIT),
        publisher=clean_text(publisher, limit=VALUE_LIMIT),
        type=clean_text(etype, limit=VALUE_LIMIT),
        version=clean_text(version, limit=40),
        provisioning_state=clean_text(_s(_pf(doc, "provisioningState")), limit=40),
        status_message=clean_text(message, limit=200),
        auto_upgrade=_bool(_pf(doc, "enableAutomaticUpgrade")),
        id=clean_text(_s(doc.get("id"))),
    )


_HEALTH_RANK = {_OK: 0, _BUSY: 1, _UNSET: 2, _FAILED: 3}


def _ext_text(ext: Extension) -> str:
    state = ext.provisioning_state or "state unknown"
    return " ".join(p for p in (ext.type or ext.name, ext.version, state) if p)


# ---- the per-server view ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DcrLink:
    association_id: str
    dcr_id: str  # lower case
    dcr: dict | None  # None: the DCR is not among ctx.dcrs
    streams: frozenset[str]  # lower-case stream names in dataFlows and dataSources
    security_workspaces: frozenset[str]  # lower-case workspace ids that receive a security-event stream


class _View:
    """One server's documents, parsed once and shared by every detector of an ``evaluate`` call."""

    def __init__(self, raw: RawServer, ctx: FleetContext) -> None:
        self.raw = raw
        self.ctx = ctx
        self.now = _utc(ctx.now)
        self.m: dict = _d(getattr(raw, "machine", None))
        self.props: dict = _d(self.m.get("properties"))
        self.raw_id = _s(self.m.get("id"))
        self.id = clean_text(self.raw_id)
        self.kind = kind_of(self.m)
        self.sub = subscription_of(self.m)
        self._extensions: list[Extension] | None = None
        self._links: list[_DcrLink] | None = None
        self._by_handler: dict[tuple[str, str], list[Extension]] | None = None
        self._status: dict[Source, SourceStatus] = {}

    def status(self, source: Source) -> SourceStatus:
        status = self._status.get(source)
        if status is None:
            status = self._status[source] = self.ctx.source(self.sub, source)
        return status

    def fetched(self, source: Source) -> datetime | None:
        return self.status(source).fetched_at

    def ev(self, source: Source, document_id: Any, field: str, value: Any, at: datetime | None = None) -> Evidence:
        return Evidence(source=source, document_id=clean_text(_s(document_id)), field=field,
                        value=clean_text(_s(value), limit=VALUE_LIMIT),
                        fetched_at=at if at is not None else self.fetched(source))

    def docs(self, attr: str) -> list[dict]:
        return _dicts(getattr(self.raw, attr, None))

    # extensions: RawServer.extensions, plus an ARM GET document's resources[] not already listed
    @property
    def extensions(self) -> list[Extension]:
        if self._extensions is None:
            seen: set[str] = set()
            out: list[Extension] = []
            for doc in [*self.docs("extensions"), *_dicts(self.m.get("resources"))]:
                key = _low(doc.get("id")) or f"#{len(out)}"
                if key in seen:
                    continue
                ext = parse_extension(doc)
                if ext is not None:
                    seen.add(key)
                    out.append(ext)
            self._extensions = out
        return self._extensions

    def ext(self, identity: tuple[str, str]) -> Extension | None:
        """The matching extension (publisher + type, case-insensitive), a Succeeded one first."""
        if self._by_handler is None:
            index: dict[tuple[str, str], list[Extension]] = {}
            for e in self.extensions:
                publisher, etype = e.publisher.lower(), e.type.lower()
                etype = etype.removeprefix(publisher + ".") if publisher else etype
                index.setdefault((publisher, etype), []).append(e)
            self._by_handler = index
        found = self._by_handler.get((identity[0].lower(), identity[1].lower()))
        if not found:
            return None
        return min(found, key=lambda e: _HEALTH_RANK[_health(e.provisioning_state)])

    def ext_ev(self, ext: Extension) -> Evidence:
        return self.ev(Source.EXTENSIONS, ext.id, "properties.provisioningState",
                       f"{ext.publisher}/{ext.type} {ext.provisioning_state}".strip())

    @property
    def dcr_links(self) -> list[_DcrLink]:
        if self._links is None:
            links: list[_DcrLink] = []
            for assoc in self.docs("dcr_associations"):
                rule = _pf(assoc, "dataCollectionRuleId")
                dcr_id = rule.strip().lower() if isinstance(rule, str) else ""
                if not dcr_id:
                    continue  # an endpoint association (dataCollectionEndpointId) is not a rule
                dcr = self.ctx.dcrs.get(dcr_id)
                dcr = dcr if isinstance(dcr, dict) else None
                streams, security = _dcr_streams(dcr) if dcr is not None else (frozenset(), frozenset())
                links.append(_DcrLink(_s(assoc.get("id")), dcr_id, dcr, streams, security))
            self._links = links
        return self._links

    def link_ev(self, link: _DcrLink, note: str = "") -> Evidence:
        value = _last_segment(link.dcr_id) + (f" ({note})" if note else "")
        return self.ev(Source.DCR_ASSOCIATIONS, link.association_id, "properties.dataCollectionRuleId", value)

    def system_identity(self) -> bool:
        return "systemassigned" in _low(_d(self.m.get("identity")).get("type")).replace(" ", "").split(",")


def _dcr_streams(dcr: dict) -> tuple[frozenset[str], frozenset[str]]:
    """(every stream the rule names, the workspaces that receive a security-event stream)."""
    streams: set[str] = set()
    security: set[str] = set()
    destinations = _d(_pf(dcr, "destinations"))
    workspaces = {_low(d.get("name")): _low(d.get("workspaceResourceId")) for d in _dicts(destinations.get("logAnalytics"))}
    for flow in _dicts(_pf(dcr, "dataFlows")):
        names = {_low(s) for s in flow.get("streams") or [] if _low(s)} if isinstance(flow.get("streams"), list) else set()
        streams |= names
        if names & set(SECURITY_STREAMS):
            destinations_of_flow = flow.get("destinations") if isinstance(flow.get("destinations"), list) else []
            for dest in destinations_of_flow:
                ws = workspaces.get(_low(dest))
                if ws:
                    security.add(ws)
    for sources in _d(_pf(dcr, "dataSources")).values():
        for source in _dicts(sources):
            if isinstance(source.get("streams"), list):
                streams |= {_low(s) for s in source["streams"] if _low(s)}
    return frozenset(streams), frozenset(security)


# ---- results ----------------------------------------------------------------------------------


def _result(cap: str, state: State, parts: list[str], evidence: list[Evidence] | tuple[Evidence, ...] = (),
            flags: list[str] | tuple[str, ...] = (), unknown_reason: str | None = None) -> CapabilityState:
    summary = "; ".join(p for p in parts if p)
    unique_flags = tuple(dict.fromkeys(clean_text(f) for f in flags if f))
    return CapabilityState(
        capability=cap,
        state=state,
        summary=clean_text(summary, limit=SUMMARY_LIMIT),
        evidence=tuple(evidence)[:MAX_EVIDENCE],
        unknown_reason=clean_text(unknown_reason, limit=SUMMARY_LIMIT) if unknown_reason is not None else None,
        flags=unique_flags,
    )


def _ext_only(v: _View, cap: str, identity: tuple[str, str]) -> CapabilityState:
    ext = v.ext(identity)
    if ext is None:
        return _result(cap, State.OFF, [f"no {identity[1]} extension"],
                       [v.ev(Source.EXTENSIONS, v.raw_id, "extensions", f"no {identity[0]}/{identity[1]}")])
    health = _health(ext.provisioning_state)
    state = State.ON if health == _OK else State.PARTIAL
    flags = ["extension-failed"] if health == _FAILED else ["extension-transitioning"] if health != _OK else []
    parts = [_ext_text(ext)]
    if health == _FAILED and ext.status_message:
        parts.append(ext.status_message)
    return _result(cap, state, parts, [v.ext_ev(ext)], flags)


# ---- detectors: Govern ------------------------------------------------------------------------


def _policy(v: _View) -> CapabilityState:
    assignments = v.docs("guest_configuration")
    evidence: list[Evidence] = []
    missing: list[str] = []
    prereq_notes: list[str] = []
    ext = None
    if v.kind is Kind.VM:
        ext = v.ext(GUEST_CONFIG)
        if ext is None:
            missing.append("no ConfigurationforWindows extension")
            evidence.append(v.ev(Source.EXTENSIONS, v.raw_id, "extensions", "no Microsoft.GuestConfiguration/ConfigurationforWindows"))
        else:
            evidence.append(v.ext_ev(ext))
            if _health(ext.provisioning_state) == _OK:
                prereq_notes.append(_ext_text(ext))
            else:
                missing.append(_ext_text(ext))
        if not v.system_identity():
            missing.append("no system-assigned identity")
            evidence.append(v.ev(Source.MACHINES, v.raw_id, "identity.type", _s(_d(v.m.get("identity")).get("type")) or "none"))
    else:
        enabled = _pf(v.m, "agentConfiguration.guestConfigurationEnabled")
        if _low(enabled) == "false":
            missing.append("guest configuration disabled on the agent")
            evidence.append(v.ev(Source.MACHINES, v.raw_id, "properties.agentConfiguration.guestConfigurationEnabled", enabled))

    counts: dict[str, int] = {}
    for a in assignments:
        status = _s(_pf(a, "complianceStatus")).strip() or "Unknown"
        counts[status] = counts.get(status, 0) + 1
        if len(evidence) < MAX_EVIDENCE:
            name = _s(_pf(a, "guestConfiguration.name")) or _s(a.get("name"))
            evidence.append(v.ev(Source.GUEST_CONFIGURATION, a.get("id"), "properties.complianceStatus", f"{name}: {status}"))
    noncompliant_policies = sum(1 for p in v.docs("policy_states") if _low(_pf(p, "complianceState")) == "noncompliant")

    n = len(assignments)
    flags: list[str] = []
    if n == 0:
        state = State.PARTIAL if (v.kind is Kind.VM and ext is not None) else State.OFF
        parts = ["no guest configuration assignments"]
        evidence.append(v.ev(Source.GUEST_CONFIGURATION, "", "guestConfigurationAssignments", "none for this machine"))
    else:
        detail = ", ".join(f"{k} {c}" for k, c in sorted(counts.items()))
        parts = [f"{_plural(n, 'assignment')}: {detail}"]
        all_compliant = sum(c for k, c in counts.items() if k.lower() == "compliant") == n
        if missing:
            state = State.PARTIAL
            flags.append("prerequisite-missing")
        elif all_compliant:
            state = State.ON
        else:
            state = State.PARTIAL
        if any(k.lower() == "noncompliant" for k in counts):
            flags.append("non-compliant")
    parts += missing + prereq_notes
    if v.kind is Kind.ARC and not missing:
        parts.append("built into the Arc agent")
    if noncompliant_policies:
        parts.append(f"{noncompliant_policies} non-compliant {'policy' if noncompliant_policies == 1 else 'policies'}")
    return _result("policy", state, parts, evidence, flags)


def _tags(v: _View) -> CapabilityState:
    raw_tags = v.m.get("tags")
    tags = raw_tags if isinstance(raw_tags, dict) else {}
    required = [t for t in v.ctx.required_tags if t]
    by_key = {str(k).lower(): (str(k), val) for k, val in tags.items()}
    present, empty, absent = [], [], []
    evidence = []
    for key in required:
        hit = by_key.get(key.lower())
        if hit is None:
            absent.append(key)
            evidence.append(v.ev(Source.MACHINES, v.raw_id, f"tags.{clean_text(key)}", "absent"))
        elif _s(hit[1]).strip():
            present.append(key)
            evidence.append(v.ev(Source.MACHINES, v.raw_id, f"tags.{clean_text(hit[0])}", hit[1]))
        else:
            empty.append(key)
            evidence.append(v.ev(Source.MACHINES, v.raw_id, f"tags.{clean_text(hit[0])}", ""))
    if not tags:
        return _result("tags", State.OFF, ["no tags"], [v.ev(Source.MACHINES, v.raw_id, "tags", "none")])
    if not required:
        return _result("tags", State.ON, [f"{_plural(len(tags), 'tag')}; no required tags configured"],
                       [v.ev(Source.MACHINES, v.raw_id, "tags", f"{len(tags)} tags")])
    parts = []
    if present:
        parts.append(f"{', '.join(present)} set")
    if empty:
        parts.append(f"{', '.join(empty)} empty")
    if absent:
        parts.append(f"{', '.join(absent)} missing")
    state = State.ON if len(present) == len(required) else State.PARTIAL if present else State.OFF
    flags = ["missing-tags"] if state is not State.ON else []
    return _result("tags", state, parts, evidence, flags)


# ---- detectors: Protect -----------------------------------------------------------------------


def _defender(v: _View) -> CapabilityState:
    pricing = v.raw.pricing if isinstance(v.raw.pricing, dict) else None
    tier = _s(_pf(pricing, "pricingTier")).strip() if pricing else ""
    plan = _s(_pf(pricing, "subPlan")).strip() if pricing else ""
    standard = tier.lower() == "standard"
    evidence: list[Evidence] = []
    parts: list[str] = []
    if pricing is None:
        parts.append("no Defender for Servers pricing (Free)")
        evidence.append(v.ev(Source.SECURITY, "", "pricings/VirtualMachines", "absent"))
    else:
        scope = "resource" if "/providers/microsoft.security/pricings" in _low(pricing.get("id")) and \
            ("/virtualmachines/" in _low(pricing.get("id")) or "/machines/" in _low(pricing.get("id"))) else "subscription"
        parts.append(f"Defender for Servers {tier or 'Free'}" + (f" ({plan})" if plan and standard else "") + f" ({scope})")
        evidence.append(v.ev(Source.SECURITY, pricing.get("id"), "properties.pricingTier", tier or "absent"))
    ext = v.ext(MDE)
    health = _health(ext.provisioning_state) if ext else None
    if ext is None:
        parts.append("no MDE.Windows extension")
        evidence.append(v.ev(Source.EXTENSIONS, v.raw_id, "extensions", "no Microsoft.Azure.AzureDefenderForServers/MDE.Windows"))
    else:
        parts.append(_ext_text(ext))
        evidence.append(v.ext_ev(ext))
    unhealthy = [a for a in v.docs("security_assessments")
                 if _low(_pf(a, "status.code", "statusCode")) == "unhealthy"]
    flags: list[str] = []
    if unhealthy:
        parts.append(_plural(len(unhealthy), "unhealthy assessment"))
        flags.append("unhealthy-assessments")
        for a in unhealthy[:5]:
            evidence.append(v.ev(Source.SECURITY, a.get("id"), "properties.status.code",
                                 f"{_s(_pf(a, 'displayName'))}: Unhealthy".lstrip(": ")))
    if health == _FAILED:
        flags.append("extension-failed")
    if standard and health == _OK and not unhealthy:
        state = State.ON
    elif not standard and ext is None:
        state = State.OFF
    else:
        state = State.PARTIAL
    return _result("defender", state, parts, evidence, flags)


def _sentinel(v: _View) -> CapabilityState:
    ama = v.ext(AMA)
    ama_ok = ama is not None and _health(ama.provisioning_state) == _OK
    sentinel_ws = {w.lower() for w in v.ctx.sentinel_workspaces}
    to_sentinel = [link for link in v.dcr_links if link.security_workspaces & sentinel_ws]
    to_other = [link for link in v.dcr_links if link.security_workspaces and not link.security_workspaces & sentinel_ws]
    unresolved = [link for link in v.dcr_links if link.dcr is None]
    evidence: list[Evidence] = []
    parts: list[str] = []
    flags: list[str] = []
    if ama is not None:
        evidence.append(v.ext_ev(ama))
        parts.append(_ext_text(ama))
    for link in to_sentinel:
        ws = sorted(link.security_workspaces & sentinel_ws)
        parts.append(f"DCR {_last_segment(link.dcr_id)} → Sentinel workspace {', '.join(_last_segment(w) for w in ws)}")
        evidence.append(v.link_ev(link, "security events to Sentinel"))
    for link in to_other:
        ws = sorted(link.security_workspaces)
        parts.append(f"DCR {_last_segment(link.dcr_id)} → workspace {', '.join(_last_segment(w) for w in ws)} without Sentinel")
        evidence.append(v.link_ev(link, "security events, no Sentinel"))
        flags.append("no-sentinel-workspace")
    if unresolved:
        parts.append(f"{_plural(len(unresolved), 'DCR')} not readable: {', '.join(_last_segment(lk.dcr_id) for lk in unresolved[:3])}")
    if to_sentinel and ama_ok:
        state = State.ON
    elif to_sentinel or to_other:
        state = State.PARTIAL
        if ama is None:
            parts.append("no AzureMonitorWindowsAgent")
        elif not ama_ok:
            flags.append("agent-failed" if _health(ama.provisioning_state) == _FAILED else "agent-transitioning")
    else:
        state = State.OFF
        parts.insert(0, "no security-event DCR")
        if not evidence:
            evidence.append(v.ev(Source.DCR_ASSOCIATIONS, v.raw_id, "dataCollectionRuleAssociations",
                                 f"{len(v.dcr_links)} associations, none with {SECURITY_STREAMS[0]}"))
    return _result("sentinel", state, parts, evidence, flags)


_BACKUP_OK = ("protected", "irpending")


def _backup(v: _View) -> CapabilityState:
    items = v.docs("backup_items")
    if not items:
        return _result("backup", State.OFF, ["no backup protected item"],
                       [v.ev(Source.BACKUP, "", "protectedItems", "none for this machine")])
    stale = timedelta(days=v.ctx.stale_after_days)
    graded = []
    for item in items:
        pstate = _s(_pf(item, "protectionState")).strip()
        last_status = _s(_pf(item, "lastBackupStatus")).strip()
        last_time = _time(_pf(item, "lastBackupTime"))
        problems: list[str] = []
        if pstate.lower() not in _BACKUP_OK:
            problems.append("protection-" + (pstate.lower().removeprefix("protection") or "unknown"))
        if last_status.lower() == "failed":
            problems.append("backup-failed")
        if last_time is None:
            if pstate.lower() != "irpending":
                problems.append("no-backup-yet")
        elif v.now - last_time > stale:
            problems.append("stale-backup")
        graded.append((len(problems), item, pstate, last_status, last_time, problems))
    graded.sort(key=lambda g: (g[0], -(g[4].timestamp() if g[4] else 0)))
    _, item, pstate, last_status, last_time, problems = graded[0]
    mab = _low(_pf(item, "backupManagementType")) == "mab"
    vault = _segment_after(item.get("id"), "vaults")
    parts = [f"vault {vault}" if vault else "", f"{pstate or 'state unknown'}"]
    if last_time is not None:
        parts.append(f"last backup {last_status or 'status unknown'} {_ago(v.now, last_time)}")
    elif pstate.lower() == "irpending":
        parts.append("initial backup pending")
    else:
        parts.append("no backup yet")
    if mab:
        parts.append("MARS agent")
    if len(items) > 1:
        parts.append(f"{len(items)} protected items")
    evidence = [v.ev(Source.BACKUP, item.get("id"), "properties.protectionState", pstate or "absent"),
                v.ev(Source.BACKUP, item.get("id"), "properties.lastBackupTime",
                     f"{_s(_pf(item, 'lastBackupTime')) or 'none'} ({last_status or 'no status'})")]
    state = State.ON if not problems else State.PARTIAL
    return _result("backup", state, [p for p in parts if p], evidence, problems)


def _siterecovery(v: _View) -> CapabilityState:
    items = v.docs("replication_items")
    if not items:
        return _result("siterecovery", State.OFF, ["not replicated"],
                       [v.ev(Source.SITE_RECOVERY, "", "replicationProtectedItems", "none for this machine")])

    def grade(item: dict) -> int:
        health = _low(_pf(item, "replicationHealth"))
        prot = _low(_pf(item, "protectionState"))
        return (0 if health == "normal" else 1) + (0 if prot in ("protected", "") else 1)

    item = min(items, key=grade)
    health = _s(_pf(item, "replicationHealth")).strip()
    prot = _s(_pf(item, "protectionState")).strip()
    target = _s(_pf(item, "providerSpecificDetails.recoveryFabricLocation")) or _s(_pf(item, "recoveryFabricLocation"))
    parts = [f"replication health {health or 'unknown'}", f"protection {prot or 'unknown'}",
             f"target {target}" if target else ""]
    vault = _segment_after(item.get("id"), "vaults")
    if vault:
        parts.append(f"vault {vault}")
    evidence = [v.ev(Source.SITE_RECOVERY, item.get("id"), "properties.replicationHealth", health or "absent"),
                v.ev(Source.SITE_RECOVERY, item.get("id"), "properties.protectionState", prot or "absent")]
    flags: list[str] = []
    if health.lower() in ("warning", "critical"):
        flags.append(f"replication-{health.lower()}")
    state = State.ON if grade(item) == 0 and health.lower() == "normal" else State.PARTIAL
    return _result("siterecovery", state, parts, evidence, flags)


def _confidential(v: _View) -> CapabilityState:
    value = _s(_path(v.props, "securityProfile.securityType")).strip()
    shown = value or "Standard"
    ev = [v.ev(Source.MACHINES, v.raw_id, "properties.securityProfile.securityType", value or "absent (Standard)")]
    if value.lower() == "confidentialvm":
        return _result("confidential", State.ON, ["Confidential VM"], ev)
    return _result("confidential", State.OFF, [f"security type {shown}"], ev)


# ---- detectors: Configure ---------------------------------------------------------------------


def _assessment(v: _View) -> tuple[dict, Source, str] | None:
    """(fields, source, document id) of the latest patch assessment: the patchassessmentresults row,
    else an ARM VM instanceView's patchStatus.availablePatchSummary."""
    row = v.raw.patch_assessment if isinstance(v.raw.patch_assessment, dict) else None
    if row is not None:
        counts = _d(_pf(row, "availablePatchCountByClassification"))
        crit, sec = _int(counts.get("critical")), _int(counts.get("security"))
        other = sum(_int(val) for key, val in counts.items() if key not in ("critical", "security"))
        return ({"status": _s(_pf(row, "status")).strip(), "reboot": _bool(_pf(row, "rebootPending")),
                 "critical": crit, "security": sec, "critsec": crit + sec, "other": other,
                 "time": _time(_pf(row, "lastModifiedDateTime")) or _time(_pf(row, "startDateTime")),
                 "time_text": _s(_pf(row, "lastModifiedDateTime")) or _s(_pf(row, "startDateTime"))},
                Source.PATCH, _s(row.get("id")))
    summary = _path(v.props, "instanceView.patchStatus.availablePatchSummary")
    if isinstance(summary, dict) and (_s(summary.get("status")) or summary.get("lastModifiedTime")):
        cs = _int(summary.get("criticalAndSecurityPatchCount"))
        return ({"status": _s(summary.get("status")).strip(), "reboot": _bool(summary.get("rebootPending")),
                 "critical": None, "security": None, "critsec": cs, "other": _int(summary.get("otherPatchCount")),
                 "time": _time(summary.get("lastModifiedTime")) or _time(summary.get("startTime")),
                 "time_text": _s(summary.get("lastModifiedTime"))},
                Source.MACHINES, v.raw_id)
    return None


def _updates(v: _View) -> CapabilityState:
    settings = _patch_settings(v.props)
    assessment_mode = _s(settings.get("assessmentMode")).strip()
    patch_mode = _s(settings.get("patchMode")).strip()
    periodic = assessment_mode.lower() == "automaticbyplatform"
    parts = [f"patchMode {patch_mode or 'unset'}", "periodic assessment on" if periodic else "periodic assessment off"]
    evidence = [v.ev(Source.MACHINES, v.raw_id, "properties.osProfile.windowsConfiguration.patchSettings.assessmentMode",
                     assessment_mode or "absent")]
    flags: list[str] = []
    found = _assessment(v)
    if found is None:
        state = State.PARTIAL if periodic else State.OFF
        parts.append("no patch assessment")
        if periodic:
            flags.append("no-assessment")
    else:
        a, source, doc_id = found
        status = a["status"] or "Unknown"
        when = a["time"]
        recent = when is not None and v.now - when <= timedelta(days=v.ctx.stale_after_days)
        succeeded = status.lower() in ("succeeded", "completedwithwarnings")
        if a["critical"] is not None:
            counts = f"{a['critical']} critical, {a['security']} security, {a['other']} other"
        else:
            counts = f"{a['critsec']} critical/security, {a['other']} other"
        parts.append(f"assessment {status} {_ago(v.now, when)}: {counts}")
        evidence.append(v.ev(source, doc_id, "properties.status" if source is Source.PATCH else
                             "properties.instanceView.patchStatus.availablePatchSummary.status",
                             f"{status} at {a['time_text'] or 'unknown time'}"))
        if not recent:
            flags.append("stale-assessment")
        if not succeeded:
            flags.append("assessment-failed" if status.lower() == "failed" else "assessment-incomplete")
        if a["critsec"]:
            flags.append("pending-critical")
            evidence.append(v.ev(source, doc_id, "properties.availablePatchCountByClassification", counts))
        if a["reboot"]:
            flags.append("reboot-pending")
            parts.append("reboot pending")
            evidence.append(v.ev(source, doc_id, "properties.rebootPending", "true"))
        state = State.ON if periodic and recent and succeeded and not a["critsec"] and not a["reboot"] else State.PARTIAL
    maintenance = v.docs("maintenance")
    if maintenance:
        names = [n for n in (_last_segment(_pf(m, "maintenanceConfigurationId")) for m in maintenance) if n]
        parts.append("scheduled patching" + (f" ({', '.join(names[:3])})" if names else ""))
        evidence.append(v.ev(Source.MAINTENANCE, maintenance[0].get("id"), "properties.maintenanceConfigurationId",
                             _pf(maintenance[0], "maintenanceConfigurationId")))
    return _result("updates", state, parts, evidence, flags)


def _changetracking(v: _View) -> CapabilityState:
    ct = v.ext(CHANGE_TRACKING)
    ama = v.ext(AMA)
    links = [lk for lk in v.dcr_links if any(s.startswith(CHANGE_STREAM_PREFIX) for s in lk.streams)]
    evidence: list[Evidence] = []
    parts: list[str] = []
    flags: list[str] = []
    ct_ok = ct is not None and _health(ct.provisioning_state) == _OK
    ama_ok = ama is not None and _health(ama.provisioning_state) == _OK
    if ct is not None:
        parts.append(_ext_text(ct))
        evidence.append(v.ext_ev(ct))
        if not ct_ok:
            flags.append("extension-failed" if _health(ct.provisioning_state) == _FAILED else "extension-transitioning")
    else:
        parts.append("no ChangeTracking-Windows extension")
    if links:
        parts.append(f"DCR {_last_segment(links[0].dcr_id)} (ConfigurationChange)")
        evidence.append(v.link_ev(links[0], "Microsoft-ConfigurationChange"))
    else:
        parts.append("no change-tracking DCR")
    if ct is None and not links:
        if not evidence:
            evidence.append(v.ev(Source.EXTENSIONS, v.raw_id, "extensions", "no Microsoft.Azure.ChangeTrackingAndInventory/ChangeTracking-Windows"))
        return _result("changetracking", State.OFF, parts[:1], evidence)
    if ama is None:
        parts.append("no AzureMonitorWindowsAgent")
    elif not ama_ok:
        parts.append(_ext_text(ama))
        evidence.append(v.ext_ev(ama))
    state = State.ON if ct_ok and ama_ok and links else State.PARTIAL
    return _result("changetracking", state, parts, evidence, flags)


_HOTPATCH_PENDING = ("actionrequired", "pendingevaluation", "enabling", "pending")


def _hotpatch(v: _View) -> tuple[str, str, Evidence | None]:
    """("on" | "pending" | "off", text, evidence)."""
    settings = _patch_settings(v.props)
    base = "properties.osProfile.windowsConfiguration.patchSettings"
    if v.kind is Kind.VM:
        enabled = _bool(settings.get("enableHotpatching"))
        mode = _s(settings.get("patchMode"))
        if not enabled:
            return "off", "", None
        ev = v.ev(Source.MACHINES, v.raw_id, f"{base}.enableHotpatching", f"true, patchMode {mode or 'unset'}")
        if mode.lower() == "automaticbyplatform":
            return "on", "hotpatch enabled", ev
        return "pending", f"hotpatch set but patchMode {mode or 'unset'}", ev
    for feature in _dicts(_path(v.props, "licenseProfile.productProfile.productFeatures")):
        if _low(feature.get("name")) == "hotpatch":
            status = _s(feature.get("subscriptionStatus")).strip()
            ev = v.ev(Source.MACHINES, v.raw_id, "properties.licenseProfile.productProfile.productFeatures[Hotpatch].subscriptionStatus", status)
            if status.lower() == "enabled":
                return "on", "hotpatch subscription Enabled", ev
            if status.lower() in _HOTPATCH_PENDING or status.lower() == "failed":
                return "pending", f"hotpatch subscription {status}", ev
    status = _s(_path(settings, "status.hotpatchEnablementStatus")).strip()
    if status:
        ev = v.ev(Source.MACHINES, v.raw_id, f"{base}.status.hotpatchEnablementStatus", status)
        if status.lower() == "enabled":
            return "on", "hotpatch Enabled", ev
        if status.lower() in _HOTPATCH_PENDING:
            return "pending", f"hotpatch {status}", ev
    return "off", "", None


def _automanage(v: _View) -> CapabilityState:
    assignments = v.docs("automanage")
    evidence: list[Evidence] = []
    parts: list[str] = []
    compliant = noncompliant = 0
    for a in assignments:
        status = _s(_pf(a, "status")).strip()
        profile = _last_segment(_pf(a, "configurationProfile")) or "custom profile"
        parts.append(f"Automanage {profile}: {status or 'status unknown'}")
        evidence.append(v.ev(Source.AUTOMANAGE, a.get("id"), "properties.status", status or "absent"))
        if status.lower() == "compliant":
            compliant += 1
        else:
            noncompliant += 1
    hot, hot_text, hot_ev = _hotpatch(v)
    if hot_text:
        parts.append(hot_text)
    if hot_ev is not None:
        evidence.append(hot_ev)
    probe = v.raw.in_guest if isinstance(v.raw.in_guest, dict) else None
    if probe is not None and isinstance(probe.get("smbOverQuic"), bool):
        when = _time(probe.get("fetchedAt"))
        parts.append(f"SMB over QUIC {'on' if probe['smbOverQuic'] else 'off'} (probe {_ago(v.now, when)})")
        evidence.append(v.ev(Source.IN_GUEST, v.raw_id, "inGuest.smbOverQuic", probe["smbOverQuic"], at=when))
    flags = ["non-compliant"] if noncompliant else []
    if compliant or hot == "on":
        state = State.ON
    elif noncompliant or hot == "pending":
        state = State.PARTIAL
        if hot == "pending":
            flags.append("hotpatch-pending")
    else:
        state = State.OFF
        parts.insert(0, "no Automanage assignment, hotpatch off")
        evidence.append(v.ev(Source.AUTOMANAGE, "", "configurationProfileAssignments", "none for this machine"))
    return _result("automanage", state, parts, evidence, flags)


def _extensions(v: _View) -> CapabilityState:
    exts = v.extensions
    if v.kind is Kind.ARC:
        enabled = _pf(v.m, "agentConfiguration.extensionsEnabled")
        if _low(enabled) == "false":
            return _result("extensions", State.OFF,
                           ["extensions disabled on the Arc agent", f"{_plural(len(exts), 'extension')} listed"],
                           [v.ev(Source.MACHINES, v.raw_id, "properties.agentConfiguration.extensionsEnabled", enabled)],
                           ["extensions-disabled"])
    if not exts:
        return _result("extensions", State.OFF, ["no extensions"], [v.ev(Source.EXTENSIONS, v.raw_id, "extensions", "none")])
    failed = [e for e in exts if _health(e.provisioning_state) == _FAILED]
    busy = [e for e in exts if _health(e.provisioning_state) in (_BUSY, _UNSET)]
    flags: list[str] = []
    parts = [_plural(len(exts), "extension")]
    if failed:
        flags.append("extension-failed")
        parts.append(f"{len(failed)} failed: {', '.join(e.type or e.name or 'unnamed' for e in failed[:4])}")
    if busy:
        flags.append("extension-transitioning")
        parts.append(f"{len(busy)} not settled: " + ", ".join(
            f"{e.type or e.name or 'unnamed'} {e.provisioning_state or 'state unknown'}" for e in busy[:4]))
    if not failed and not busy:
        parts[0] += ", all Succeeded"
    evidence = [v.ext_ev(e) for e in (failed + busy or exts)]
    return _result("extensions", State.PARTIAL if failed or busy else State.ON, parts, evidence, flags)


def _wac(v: _View) -> CapabilityState:
    return _ext_only(v, "wac", ADMIN_CENTER)


_ARC_ON, _ARC_PARTIAL = ("connected",), ("error",)


def _runcommand(v: _View) -> CapabilityState:
    if v.kind is Kind.ARC:
        status = _s(v.props.get("status")).strip()
        since = _s(v.props.get("lastStatusChange"))
        changed = _time(since)
        ev = [v.ev(Source.MACHINES, v.raw_id, "properties.status", f"{status or 'absent'} since {since or 'unknown'}")]
        text = f"Arc agent {status}" + (f" since {since[:10]} ({_ago(v.now, changed)})" if since else "")
        if not status:
            return _result("runcommand", State.UNKNOWN, ["no Arc agent status in the document"], ev,
                           unknown_reason="no Arc agent status in the document")
        if status.lower() in _ARC_ON:
            return _result("runcommand", State.ON, [text], ev)
        if status.lower() in _ARC_PARTIAL:
            reason = _s(v.props.get("statusReason"))
            return _result("runcommand", State.PARTIAL, [text, reason], ev, ["agent-error"])
        return _result("runcommand", State.OFF, [text], ev, ["agent-" + status.lower()])
    power = _power_state(v.props)
    ev = [v.ev(Source.MACHINES, v.raw_id, "powerState", power or "absent")]
    if not power:
        return _result("runcommand", State.UNKNOWN, ["no power state in the document"], ev,
                       unknown_reason="no power state in the document")
    if power == "unknown":
        return _result("runcommand", State.UNKNOWN, ["Azure reports the power state as unknown"], ev,
                       unknown_reason="power state unknown (PowerState/unknown)")
    if power in ("stopped", "deallocated", "stopping", "deallocating"):
        return _result("runcommand", State.OFF, [f"VM {power}"], ev)
    if power != "running":
        return _result("runcommand", State.PARTIAL, [f"VM {power}"], ev)
    if _path(v.props, "osProfile.allowExtensionOperations") is False:
        return _result("runcommand", State.OFF, ["VM running", "extension operations disallowed"], ev,
                       ["extensions-disallowed"])
    agent = _vm_agent(v.props)
    if agent is None:
        return _result("runcommand", State.ON, ["VM running", "agent status unverified (not in Resource Graph)"], ev,
                       ["agent-unverified"])
    status, version = agent
    ev.append(v.ev(Source.MACHINES, v.raw_id, "properties.instanceView.vmAgent.statuses[0].displayStatus", status or "absent"))
    text = f"VM agent {version} {status or 'status unknown'}".replace("  ", " ")
    if status.lower() == "ready":
        return _result("runcommand", State.ON, ["VM running", text], ev)
    if not status:
        return _result("runcommand", State.ON, ["VM running", text], ev, ["agent-unverified"])
    return _result("runcommand", State.PARTIAL, ["VM running", text], ev, ["agent-not-ready"])


# ---- detectors: Monitor -----------------------------------------------------------------------


def _monitor(v: _View) -> CapabilityState:
    ama = v.ext(AMA)
    mma = v.ext(MMA)
    dep = v.ext(DEPENDENCY_AGENT)
    links = v.dcr_links
    evidence: list[Evidence] = []
    parts: list[str] = []
    flags: list[str] = []
    ama_ok = ama is not None and _health(ama.provisioning_state) == _OK
    if ama is not None:
        parts.append(_ext_text(ama))
        evidence.append(v.ext_ev(ama))
        if not ama_ok:
            flags.append("agent-failed" if _health(ama.provisioning_state) == _FAILED else "agent-transitioning")
    if links:
        parts.append(f"{_plural(len(links), 'DCR')}: {', '.join(_last_segment(lk.dcr_id) for lk in links[:3])}")
        evidence.append(v.link_ev(links[0]))
    elif ama is not None:
        parts.append("no DCR association")
    insights = dep is not None or any(lk.streams & set(INSIGHTS_STREAMS) for lk in links)
    if dep is not None:
        parts.append(f"VM insights ({_ext_text(dep)})")
        evidence.append(v.ext_ev(dep))
    elif insights:
        parts.append("VM insights (performance)")
    if mma is not None:
        parts.append(f"legacy Log Analytics agent ({_ext_text(mma)})")
        evidence.append(v.ext_ev(mma))
        flags.append("legacy-mma")
    if ama_ok and links:
        state = State.ON
    elif ama is not None or mma is not None or links:
        state = State.PARTIAL
        if ama is None and links:
            parts.insert(0, "DCR associated but no AzureMonitorWindowsAgent")
    else:
        state = State.OFF
        parts.append("no monitoring agent")
        evidence.append(v.ev(Source.EXTENSIONS, v.raw_id, "extensions", "no AzureMonitorWindowsAgent or MicrosoftMonitoringAgent"))
    return _result("monitor", state, parts, evidence, flags)


# ---- detectors: Extend ------------------------------------------------------------------------


def _entra(v: _View) -> CapabilityState:
    ext = v.ext(AAD_LOGIN)
    if ext is None:
        return _result("entra", State.OFF, ["no AADLoginForWindows extension"],
                       [v.ev(Source.EXTENSIONS, v.raw_id, "extensions", "no Microsoft.Azure.ActiveDirectory/AADLoginForWindows")])
    health = _health(ext.provisioning_state)
    ident = v.system_identity()
    parts = [_ext_text(ext), "system-assigned identity" if ident else "no system-assigned identity"]
    evidence = [v.ext_ev(ext), v.ev(Source.MACHINES, v.raw_id, "identity.type", _s(_d(v.m.get("identity")).get("type")) or "none")]
    flags = []
    if health == _FAILED:
        flags.append("extension-failed")
    elif health != _OK:
        flags.append("extension-transitioning")
    if not ident:
        flags.append("no-identity")
    return _result("entra", State.ON if health == _OK and ident else State.PARTIAL, parts, evidence, flags)


def _identity(v: _View) -> CapabilityState:
    ident = _d(v.m.get("identity"))
    raw_type = _s(ident.get("type")).strip()
    kinds = {k.strip().lower() for k in raw_type.split(",") if k.strip()}
    ev = [v.ev(Source.MACHINES, v.raw_id, "identity.type", raw_type or "absent")]
    users = ident.get("userAssignedIdentities")
    n_users = len(users) if isinstance(users, dict) else 0
    if "systemassigned" in kinds:
        parts = ["system-assigned"]
        if "userassigned" in kinds:
            parts.append(f"+ {n_users} user-assigned")
        return _result("identity", State.ON, parts, ev)
    if "userassigned" in kinds:
        return _result("identity", State.ON,
                       [f"user-assigned only ({n_users} {'identity' if n_users == 1 else 'identities'})"], ev)
    return _result("identity", State.OFF, ["no managed identity"], ev)


def _filesync(v: _View) -> CapabilityState:
    servers = v.docs("file_sync")
    if not servers:
        return _result("filesync", State.OFF, ["no registered server"],
                       [v.ev(Source.FILE_SYNC, "", "registeredServers", "none matched this machine")])
    best = max(servers, key=lambda s: (_time(_pf(s, "lastHeartBeat")) or datetime.min.replace(tzinfo=UTC)))
    beat = _time(_pf(best, "lastHeartBeat"))
    service = _segment_after(best.get("id"), "storageSyncServices")
    agent = _s(_pf(best, "agentVersion"))
    parts = [f"registered with {service}" if service else "registered server",
             f"agent {agent}" if agent else "", f"heartbeat {_ago(v.now, beat)}"]
    ev = [v.ev(Source.FILE_SYNC, best.get("id"), "properties.lastHeartBeat", _s(_pf(best, "lastHeartBeat")) or "absent")]
    fresh = beat is not None and v.now - beat <= timedelta(days=v.ctx.stale_after_days)
    return _result("filesync", State.ON if fresh else State.PARTIAL, parts, ev, [] if fresh else ["stale-heartbeat"])


_IN_GUEST_FEATURES = (("azureNetworkAdapter", "Azure Network Adapter"), ("extendedNetwork", "Extended Network"),
                      ("storageReplica", "Storage Replica"))


def _inguest(v: _View) -> CapabilityState:
    probe = v.raw.in_guest if isinstance(v.raw.in_guest, dict) else None
    reason = "not probed (opt-in Run Command probe)"
    if probe is None:
        return _result("inguest", State.UNKNOWN, [reason], unknown_reason=reason)
    when = _time(probe.get("fetchedAt")) or v.fetched(Source.IN_GUEST)
    known = {key: probe[key] for key, _ in _IN_GUEST_FEATURES if isinstance(probe.get(key), bool)}
    if not known:
        error = _s(probe.get("error"))
        text = f"probe gave no answer{': ' + error if error else ''}"
        return _result("inguest", State.UNKNOWN, [text], unknown_reason=text)
    parts = [f"{label} {'yes' if known[key] else 'no'}" if key in known else f"{label} ?" for key, label in _IN_GUEST_FEATURES]
    parts.append(f"probed {_ago(v.now, when)}")
    ev = [v.ev(Source.IN_GUEST, v.raw_id, f"inGuest.{key}", value, at=when) for key, value in known.items()]
    return _result("inguest", State.ON if any(known.values()) else State.OFF, parts, ev)


# ---- the catalog ------------------------------------------------------------------------------


class _Detector:
    """A detector as the catalog exposes it, ``(RawServer, FleetContext) -> CapabilityState``; evaluate
    calls ``impl`` with one shared view instead, so a server's documents are parsed once."""

    __slots__ = ("cap_id", "impl")

    def __init__(self, cap_id: str, impl: Callable[[_View], CapabilityState]) -> None:
        self.cap_id = cap_id
        self.impl = impl

    def __call__(self, raw: RawServer, ctx: FleetContext) -> CapabilityState:
        return _safe(self.cap_id, self.impl, _View(raw, ctx))

    def __repr__(self) -> str:
        return f"<detector {self.cap_id}>"


def _safe(cap_id: str, impl: Callable[[_View], CapabilityState], view: _View) -> CapabilityState:
    try:
        return impl(view)
    except Exception as e:  # a document shape nobody foresaw must cost one cell, not the table
        reason = f"could not read the documents ({type(e).__name__})"
        return _result(cap_id, State.UNKNOWN, [reason], unknown_reason=reason)


@dataclass(frozen=True)
class Capability:
    id: str
    group: Group
    label: str
    short: str  # ≤ 4-character column header
    applies_to: frozenset[Kind]
    sources: tuple[Source, ...]
    description: str
    detect: Callable[[RawServer, FleetContext], CapabilityState]

    def applies(self, kind: Kind) -> bool:
        return kind in self.applies_to


def _cap(id: str, group: Group, label: str, short: str, applies_to: frozenset[Kind], sources: tuple[Source, ...],
         description: str, impl: Callable[[_View], CapabilityState]) -> Capability:
    assert len(short) <= 4, short
    return Capability(id, group, label, short, applies_to, sources, description, _Detector(id, impl))


S = Source
CATALOG: tuple[Capability, ...] = (
    _cap("policy", Group.GOVERN, "Policy guest configuration", "Pol", BOTH, (S.GUEST_CONFIGURATION, S.EXTENSIONS, S.POLICY),
         "Azure Policy guest configuration assignments audit settings inside the server, and their compliance.", _policy),
    _cap("tags", Group.GOVERN, "Tags", "Tag", BOTH, (S.MACHINES,),
         "The required tags are present with non-empty values.", _tags),
    _cap("defender", Group.PROTECT, "Defender for Cloud / Endpoint", "Def", BOTH, (S.EXTENSIONS, S.SECURITY),
         "Defender for Servers (Standard pricing) with the MDE.Windows extension, and no unhealthy assessments.", _defender),
    _cap("sentinel", Group.PROTECT, "Microsoft Sentinel", "Sent", BOTH, (S.EXTENSIONS, S.DCR_ASSOCIATIONS, S.DCRS),
         "Security events flow through the Azure Monitor agent and a DCR into a workspace with Sentinel.", _sentinel),
    _cap("backup", Group.PROTECT, "Azure Backup", "Bak", BOTH, (S.BACKUP,),
         "A Recovery Services protected item (Azure VM backup, or MARS on Arc) with a recent good backup.", _backup),
    _cap("siterecovery", Group.PROTECT, "Azure Site Recovery", "ASR", BOTH, (S.SITE_RECOVERY,),
         "The server is replicated by Site Recovery and its replication health is Normal.", _siterecovery),
    _cap("confidential", Group.PROTECT, "Confidential computing", "CVM", VM_ONLY, (S.MACHINES,),
         "The VM is a confidential VM (securityProfile.securityType ConfidentialVM).", _confidential),
    _cap("updates", Group.CONFIGURE, "Update management", "Upd", BOTH, (S.MACHINES, S.PATCH, S.MAINTENANCE),
         "Update Manager assesses the server periodically and it has no pending critical/security updates or reboot.", _updates),
    _cap("changetracking", Group.CONFIGURE, "Change tracking & inventory", "Chg", BOTH,
         (S.EXTENSIONS, S.DCR_ASSOCIATIONS, S.DCRS),
         "Change Tracking v2: the ChangeTracking-Windows extension, the Azure Monitor agent and a ConfigurationChange DCR.",
         _changetracking),
    _cap("automanage", Group.CONFIGURE, "Automanage / hotpatch", "Auto", BOTH, (S.AUTOMANAGE, S.MACHINES),
         "An Automanage configuration profile is assigned and compliant, or hotpatching is enabled.", _automanage),
    _cap("extensions", Group.CONFIGURE, "VM extensions", "Ext", BOTH, (S.EXTENSIONS,),
         "Extensions are installed and all of them provisioned successfully.", _extensions),
    _cap("wac", Group.CONFIGURE, "Windows Admin Center", "WAC", BOTH, (S.EXTENSIONS,),
         "The Windows Admin Center extension is installed, for management from the Azure portal.", _wac),
    _cap("runcommand", Group.CONFIGURE, "Run Command", "Run", BOTH, (S.MACHINES,),
         "Scripts can run now: the VM is running with a ready agent, or the Arc agent is connected.", _runcommand),
    _cap("monitor", Group.MONITOR, "Azure Monitor / VM insights", "Mon", BOTH, (S.EXTENSIONS, S.DCR_ASSOCIATIONS, S.DCRS),
         "The Azure Monitor agent collects data under a DCR; the legacy Log Analytics agent is flagged, not counted.", _monitor),
    _cap("entra", Group.EXTEND, "Entra ID login", "Entr", VM_ONLY, (S.EXTENSIONS,),
         "Sign-in with Entra ID accounts: the AADLoginForWindows extension and a system-assigned identity.", _entra),
    _cap("identity", Group.EXTEND, "Managed identity", "MI", BOTH, (S.MACHINES,),
         "The server has a managed identity to authenticate to Azure services without credentials.", _identity),
    _cap("filesync", Group.EXTEND, "Azure File Sync", "AFS", BOTH, (S.FILE_SYNC,),
         "The server is registered with a Storage Sync service and its heartbeat is recent.", _filesync),
    _cap("inguest", Group.EXTEND, "Extended Network / Network Adapter / Storage Replica", "InG", BOTH, (S.IN_GUEST,),
         "Azure Extended Network, Azure Network Adapter or Storage Replica, as reported by an opt-in in-guest probe.",
         _inguest),
)
del S

BY_ID: Mapping[str, Capability] = MappingProxyType({c.id: c for c in CATALOG})


# ---- evaluation -------------------------------------------------------------------------------

_KIND_NAMES = {Kind.VM: "Azure VMs", Kind.ARC: "Arc servers"}


def _missing_reason(view: _View, cap: Capability) -> str | None:
    reasons = []
    for source in cap.sources:
        status = view.status(source)
        if status.stale:
            continue  # its last rows decide, flagged (``_stale_reason``)
        if source in PER_SERVER_SOURCES:
            if status.error:
                reasons.append(f"{source.value}: {status.error}")
            continue
        if not status.ok:
            reasons.append(f"{source.value}: {status.error or 'not fetched'}")
    return "; ".join(reasons) if reasons else None


def _stale_reason(view: _View, cap: Capability) -> str | None:
    reasons = []
    for source in cap.sources:
        status = view.status(source)
        if status.stale:
            assert status.fetched_at is not None
            when = _utc(status.fetched_at).strftime("%Y-%m-%d %H:%M UTC")
            reasons.append(f"{source.value}: last fetched {when}, failed since: {status.error}")
    return "; ".join(reasons) if reasons else None


def _evaluate(view: _View) -> dict[str, CapabilityState]:
    out: dict[str, CapabilityState] = {}
    for cap in CATALOG:
        if view.kind not in cap.applies_to:
            out[cap.id] = _result(cap.id, State.NOT_APPLICABLE, [f"not available for {_KIND_NAMES[view.kind]}"])
            continue
        reason = _missing_reason(view, cap)
        if reason is not None:
            out[cap.id] = _result(cap.id, State.UNKNOWN, [f"unknown: {reason}"], unknown_reason=reason)
            continue
        detect = cap.detect
        if isinstance(detect, _Detector):
            out[cap.id] = _safe(cap.id, detect.impl, view)
        else:
            try:
                out[cap.id] = detect(view.raw, view.ctx)
            except Exception as e:
                reason = f"could not read the documents ({type(e).__name__})"
                out[cap.id] = _result(cap.id, State.UNKNOWN, [reason], unknown_reason=reason)
        stale = _stale_reason(view, cap)
        if stale is not None:  # never a silent change: the last known state, saying so
            cell = out[cap.id]
            out[cap.id] = replace(cell, flags=(*cell.flags, "stale"),
                                  stale_reason=clean_text(stale, limit=SUMMARY_LIMIT))
    return out


def evaluate(raw: RawServer, ctx: FleetContext) -> dict[str, CapabilityState]:
    """Every column for one server, in catalog order: N/A for the other kind, UNKNOWN when a source
    is missing for the server's subscription (with the reason), else the detector's answer."""
    return _evaluate(_View(raw, ctx))


def _compact(state: CapabilityState, shared: dict) -> CapabilityState:
    """The same cell without its evidence, shared between servers whose cells read alike."""
    key = (state.capability, state.state, state.summary, state.unknown_reason, state.flags, state.stale_reason)
    found = shared.get(key)
    if found is None:
        found = shared[key] = replace(state, evidence=())
    return found


def build_server(raw: RawServer, ctx: FleetContext, *, evidence: bool = True, shared: dict | None = None) -> Server:
    """The table row for one server. Never raises on a malformed document: fields degrade to "".

    ``evidence=False`` is the table's record: each cell keeps its state, summary and flags only, and each
    extension its name, handler, version, state and auto-upgrade (no status message, no id); cells,
    extensions and repeated strings (regions, OS names, tag keys …) are shared between servers through
    ``shared``. 50,000 such records fit in the console's memory budget; the details pane derives the
    full record again for the one server it shows."""
    v = _View(raw, ctx)
    m, props = v.m, v.props
    name = _s(m.get("name")) or _last_segment(m.get("id"))
    rg_match = _RG.match(v.raw_id)
    resource_group = rg_match.group(1) if rg_match else _s(m.get("resourceGroup"))
    tenant = _s(m.get("tenantId")) or _s(ctx.subscription_tenants.get(v.sub.lower(), ""))
    if v.kind is Kind.VM:
        iv = _vm_instance_view(props)
        os_name = _s(iv.get("osName")) or os_name_from_image(_path(props, "storageProfile.imageReference")) \
            or _s(_path(props, "storageProfile.osDisk.osType"))
        os_version = _s(iv.get("osVersion"))
        state = _power_state(props) or "unknown"
        agent = _vm_agent(props)
        agent_version = agent[1] if agent else ""
    else:
        os_name = _s(props.get("osSku")) or _s(props.get("osName"))
        os_version = _s(props.get("osVersion"))
        state = _s(props.get("status")) or "unknown"
        agent_version = _s(props.get("agentVersion"))
    raw_tags = m.get("tags")
    tags = clean_keys({k: clean_text(_s(val) if not isinstance(val, str) else val, limit=256)
                       for k, val in (raw_tags.items() if isinstance(raw_tags, dict) else ())}, limit=VALUE_LIMIT)
    identity_type = _s(_d(m.get("identity")).get("type")).strip() or "None"
    if not evidence:
        return _lite_server(v, name, resource_group, tenant, os_name, os_version, state, agent_version, tags,
                            identity_type, {} if shared is None else shared)
    return Server(
        id=v.id,
        name=clean_text(name, limit=VALUE_LIMIT),
        kind=v.kind,
        subscription_id=clean_text(v.sub),
        tenant_id=clean_text(tenant),
        resource_group=clean_text(resource_group),
        location=clean_text(_s(m.get("location")).lower().replace(" ", "")),
        os_name=clean_text(os_name, limit=VALUE_LIMIT),
        os_version=clean_text(os_version, limit=60),
        state=clean_text(state, limit=40),
        agent_version=clean_text(agent_version, limit=60),
        tags=tags,
        identity_type=clean_text(identity_type, limit=60),
        extensions=tuple(v.extensions),
        capabilities=_evaluate(v) if evidence else {k: _compact(c, shared if shared is not None else {})
                                                    for k, c in _evaluate(v).items()},
        fetched_at=v.fetched(Source.MACHINES),
    )


def _lite_server(v: _View, name: str, resource_group: str, tenant: str, os_name: str, os_version: str, state: str,
                 agent_version: str, tags: dict[str, str], identity_type: str, shared: dict) -> Server:
    strings: dict[str, str] = shared.setdefault("strings", {})
    extensions: dict[tuple, Extension] = shared.setdefault("extensions", {})

    def one(text: str) -> str:  # one object per distinct value across the snapshot
        return strings.setdefault(text, text)

    def lite(e: Extension) -> Extension:
        key = (e.name, e.publisher, e.type, e.version, e.provisioning_state, e.auto_upgrade)
        found = extensions.get(key)
        if found is None:
            found = extensions[key] = Extension(one(e.name), one(e.publisher), one(e.type), one(e.version),
                                                one(e.provisioning_state), auto_upgrade=e.auto_upgrade)
        return found

    return Server(
        id=v.id,
        name=clean_text(name, limit=VALUE_LIMIT),
        kind=v.kind,
        subscription_id=one(clean_text(v.sub)),
        tenant_id=one(clean_text(tenant)),
        resource_group=one(clean_text(resource_group)),
        location=one(clean_text(_s(v.m.get("location")).lower().replace(" ", ""))),
        os_name=one(clean_text(os_name, limit=VALUE_LIMIT)),
        os_version=one(clean_text(os_version, limit=60)),
        state=one(clean_text(state, limit=40)),
        agent_version=one(clean_text(agent_version, limit=60)),
        tags={one(k): one(val) for k, val in tags.items()},
        identity_type=one(clean_text(identity_type, limit=60)),
        extensions=tuple(lite(e) for e in v.extensions),
        capabilities=CapabilityCells(tuple(_compact(c, shared) for c in _evaluate(v).values())),
        fetched_at=v.fetched(Source.MACHINES),
    )


class CapabilityCells(Mapping[str, CapabilityState]):
    """A table record's cells: capability id -> state, in catalog order, as one tuple. A dict of 18 entries
    costs about 1 kB; 50,000 of them were the largest part of the console's memory."""

    __slots__ = ("_cells",)
    _INDEX: ClassVar[dict[str, int]] = {c.id: i for i, c in enumerate(CATALOG)}

    def __init__(self, cells: tuple[CapabilityState, ...]) -> None:
        if len(cells) != len(self._INDEX):
            raise ValueError("one cell per capability of the catalog, in its order")
        self._cells = cells

    def __getitem__(self, key: str) -> CapabilityState:
        try:
            return self._cells[self._INDEX[key]]
        except (KeyError, TypeError):
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._INDEX)

    def __len__(self) -> int:
        return len(self._cells)

    def values(self):  # the common case (coverage, the table's state bytes): no lookups
        return self._cells

    def __reduce__(self):
        return (CapabilityCells, (self._cells,))
