"""The simulator's live state: the fleet's ARM documents, their indexes and Resource Graph rows.

Everything the HTTP layer serves is read from here, and every action changes it here, so that an
installed extension shows up in GET, list and Resource Graph alike. No I/O and no HTTP in this module.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MACHINE_TYPES = ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")
VM_TYPE, ARC_TYPE = MACHINE_TYPES

_MACHINE_PREFIX = re.compile(
    r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
    r"(?:Microsoft\.Compute/virtualMachines|Microsoft\.HybridCompute/machines)/[^/]+)(?:/|$)",
    re.IGNORECASE,
)
_SUB_RG = re.compile(r"^/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?", re.IGNORECASE)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")

# Resource Graph table for a (lower-case) resource type; types not listed are not in ARG.
_ARG_TABLES: list[tuple[str, str]] = [
    ("/patchassessmentresults", "patchassessmentresources"),
    ("/patchassessmentresults/softwarepatches", "patchassessmentresources"),
    ("/patchinstallationresults", "patchinstallationresources"),
    ("/patchinstallationresults/softwarepatches", "patchinstallationresources"),
    ("microsoft.guestconfiguration/guestconfigurationassignments", "guestconfigurationresources"),
    ("microsoft.policyinsights/policystates", "policyresources"),
    ("microsoft.security/assessments", "securityresources"),
    ("microsoft.security/pricings", "securityresources"),
    ("microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems", "recoveryservicesresources"),
    (
        "microsoft.recoveryservices/vaults/replicationfabrics/replicationprotectioncontainers/replicationprotecteditems",
        "recoveryservicesresources",
    ),
    ("microsoft.insights/datacollectionruleassociations", "insightsresources"),
    ("microsoft.maintenance/configurationassignments", "maintenanceresources"),
]
_NOT_IN_ARG = ("/runcommands",)
ARG_TABLE_NAMES = (
    "resources",
    "patchassessmentresources",
    "patchinstallationresources",
    "guestconfigurationresources",
    "policyresources",
    "securityresources",
    "recoveryservicesresources",
    "insightsresources",
    "maintenanceresources",
)


def arg_table_for(type_lower: str) -> str | None:
    for suffix in _NOT_IN_ARG:
        if type_lower.endswith(suffix):
            return None
    for key, table in _ARG_TABLES:
        if type_lower == key or (key.startswith("/") and type_lower.endswith(key)):
            return table
    return "resources"


def machine_id_of(resource_id: str) -> str | None:
    """The VM or Arc machine a resource belongs to (itself included), or None."""
    m = _MACHINE_PREFIX.match(resource_id)
    return m.group(1) if m else None


def parent_id_of(resource_id: str) -> str | None:
    """ARM parent: drop 'type/name'; an extension resource ('…/providers/NS/type/name') hangs off its scope."""
    parts = resource_id.rstrip("/").split("/")
    if len(parts) <= 3:
        return None
    parent = parts[:-2]
    if len(parent) >= 2 and parent[-2].lower() == "providers":
        parent = parent[:-2]
    pid = "/".join(parent)
    return pid if pid.count("/") >= 2 else None


def sub_rg_of(resource_id: str) -> tuple[str, str]:
    m = _SUB_RG.match(resource_id)
    if not m:
        return "", ""
    return m.group(1), m.group(2) or ""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """ARM's timestamp form, 7 fractional digits and Z."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def parse_iso(text: str) -> datetime | None:
    m = _ISO.match(text)
    if not m:
        return None
    frac = m.group(1) or ""
    base = text[:19]
    tz = m.group(2)
    try:
        dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    micro = int((frac + "000000")[:6]) if frac else 0
    offset = timedelta(0) if tz == "Z" else timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])) * (1 if tz[0] == "+" else -1)
    return (dt.replace(microsecond=micro) - offset).replace(tzinfo=UTC)


def _shift_times(node: Any, delta: timedelta) -> Any:
    """Shift every ISO-8601 timestamp string in a document tree by delta (in place)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(value, str):
            if len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
                dt = parse_iso(value)
                if dt is not None:
                    node[key] = iso(dt + delta)
        elif isinstance(value, dict | list):
            _shift_times(value, delta)
    return node


# What an operation does when its time comes, by name: ``fn(state, op, **args)``. A name and JSON args
# (documents re-fetched by id) instead of a closure, so that an operation outlives the process that
# accepted it (sim/durable.py writes operations to disk). sim/actions.py registers them.
Completion = Callable[..., None]
COMPLETIONS: dict[str, Completion] = {}


def completion(name: str) -> Callable[[Completion], Completion]:
    def register(fn: Completion) -> Completion:
        COMPLETIONS[name] = fn
        return fn

    return register


@dataclass
class Operation:
    """One long-running operation, completed by time (``finish_at``), not by being polled."""

    id: str
    subscription: str
    location: str
    provider: str  # "Microsoft.Compute" | "Microsoft.HybridCompute"
    kind: str
    target: str
    started: float
    finish_at: float
    status: str = "InProgress"
    result: Any = None
    error: dict | None = None
    ended: float | None = None
    complete: str | None = None  # a name in COMPLETIONS, run once at finish_at; sets status/result/error
    complete_args: dict = field(default_factory=dict)  # JSON only

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Operation:
        return cls(**data)


# How long an operation runs by default; at this setting a script's own seconds are real seconds.
DEFAULT_LRO_SECONDS = 3.0


@dataclass
class SimConfig:
    lro_seconds: float = DEFAULT_LRO_SECONDS
    page_size: int = 1000
    denied_subscriptions: set[str] = field(default_factory=set)  # ARM and Resource Graph answer 403
    graph_denied_subscriptions: set[str] = field(default_factory=set)  # Resource Graph answers 403; ARM serves them
    tokens_per_tenant: bool = False  # a subscription's requests need a token of its tenant (as in Azure)

    def run_seconds(self, script_seconds: float) -> float:
        """How long a run takes on this clock: one operation's time, longer for a script that runs longer
        (its commands and every Start-Sleep), scaled as operations are: a test's lro_seconds 0.3 passes
        a 25 s sleep in 2.5 s, the default passes it in 25 s."""
        return max(self.lro_seconds, script_seconds * self.lro_seconds / DEFAULT_LRO_SECONDS)


class SimState:
    """All documents, keyed by lower-case id; ARM casing is kept inside each document."""

    def __init__(
        self,
        fleet: dict,
        *,
        config: SimConfig | None = None,
        rebase_time: bool = True,
        clock=time.time,
        now: datetime | None = None,
        take_ownership: bool = False,
    ) -> None:
        """``take_ownership``: the caller hands the fleet over and will not use it again, so it is not copied
        (a 50k-server fleet is gigabytes of dicts; a copy doubles that)."""
        self.config = config or SimConfig()
        self.clock = clock
        if not take_ownership:
            fleet = copy.deepcopy(fleet)
        gen_at = (fleet.get("generator") or {}).get("generatedAt")
        if rebase_time and isinstance(gen_at, str) and (base := parse_iso(gen_at)) is not None:
            delta = (now or utcnow()) - base
            if abs(delta) > timedelta(minutes=1):
                _shift_times(fleet.get("resources", []), delta)
                _shift_times(fleet.get("simulation", {}), delta)
        self.tenants: list[dict] = list(fleet.get("tenants", []))
        self.subscriptions: dict[str, dict] = {s["subscriptionId"].lower(): s for s in fleet.get("subscriptions", [])}
        sim = fleet.get("simulation") or {}
        self.sim_defaults: dict = dict(sim.get("defaults") or {})
        self.sim_machines: dict[str, dict] = {k.lower(): v for k, v in (sim.get("machines") or {}).items()}
        access = sim.get("access") or {}
        self.config.denied_subscriptions |= {s.lower() for s in access.get("deniedSubscriptions", [])}
        self.config.graph_denied_subscriptions |= {s.lower() for s in access.get("graphDeniedSubscriptions", [])}
        self.config.tokens_per_tenant = self.config.tokens_per_tenant or bool(access.get("tokensPerTenant"))
        self.docs: dict[str, dict] = {}
        self.children: dict[str, dict[str, None]] = {}
        self.attached: dict[str, dict[str, None]] = {}  # machine -> every doc under it
        self.machines_by_sub: dict[tuple[str, str], dict[str, None]] = {}  # (type, sub) -> machine ids
        self.by_type: dict[tuple[str, str], dict[str, None]] = {}  # (lower type, lower sub) -> ids, for subscription-wide lists
        self.resource_groups: dict[str, dict[str, str]] = {}  # sub -> lower rg -> rg
        # lower network interface / public IP id -> the VM that references it (sim/network.py builds it on
        # first use; a new VM resets it)
        self.network_index: dict[str, str] | None = None
        self.arg: dict[str, dict[str, dict[str, dict]]] = {t: {} for t in ARG_TABLE_NAMES}  # table -> sub -> id -> row
        self.operations: dict[str, Operation] = {}
        self.version = 0
        self.busy_until: dict[str, float] = {}  # machine -> when its current run command ends
        self.legacy_run: dict[str, str] = {}  # machine -> op id of the legacy runCommand in flight
        # What changed since the last take_changes(): lower-case document ids and operation ids. None: not
        # tracked (no durable store; a 50k-server test fleet should not grow a set it never reads).
        self.changed_docs: set[str] | None = None
        self.changed_ops: set[str] | None = None
        for doc in fleet.get("resources", []):
            self.put(doc, _initial=True)

    # ---- tenants ---------------------------------------------------------------------------

    def tenant_reaches(self, subscription: str, tenant: str | None) -> bool:
        """Whether a token of ``tenant`` reads ``subscription``: its own tenant's, or one it is delegated to
        through Lighthouse (``managedByTenants``). ``tenant`` None: tokens are not per tenant."""
        doc = self.subscriptions.get(subscription.lower())
        if tenant is None or doc is None:
            return True
        return tenant.lower() in self.tenants_of(doc)

    @staticmethod
    def tenants_of(subscription: dict) -> set[str]:
        managers = subscription.get("managedByTenants")
        managed = {str(m.get("tenantId", "")).lower() for m in managers if isinstance(m, dict)} if isinstance(managers, list) else set()
        return {str(subscription.get("tenantId", "")).lower()} | managed

    # ---- documents -------------------------------------------------------------------------

    def get(self, resource_id: str) -> dict | None:
        return self.docs.get(resource_id.lower())

    def put(self, doc: dict, *, _initial: bool = False) -> dict:
        rid = doc["id"]
        key = rid.lower()
        existed = key in self.docs
        self.docs[key] = doc
        if not existed:
            parent = parent_id_of(rid)
            if parent:
                self.children.setdefault(parent.lower(), {})[key] = None
            mid = machine_id_of(rid)
            if mid and mid.lower() != key:
                self.attached.setdefault(mid.lower(), {})[key] = None
            sub, rg = sub_rg_of(rid)
            if rg:
                self.resource_groups.setdefault(sub.lower(), {}).setdefault(rg.lower(), rg)
            tl = doc["type"].lower()
            if tl in MACHINE_TYPES:
                self.machines_by_sub.setdefault((tl, sub.lower()), {})[key] = None
                if tl == VM_TYPE:
                    self.network_index = None
            self.by_type.setdefault((tl, sub.lower()), {})[key] = None
        self._index_arg(doc)
        if not _initial:
            self.version += 1
            self._changed(key)
        return doc

    def _changed(self, key: str) -> None:
        if self.changed_docs is not None:
            self.changed_docs.add(key)

    def track_changes(self) -> None:
        self.changed_docs, self.changed_ops = set(), set()

    def take_changes(self) -> tuple[set[str], set[str]]:
        """The document and operation ids changed since the last call (and forget them)."""
        docs, ops = self.changed_docs or set(), self.changed_ops or set()
        if self.changed_docs is not None:
            self.track_changes()
        return docs, ops

    def delete(self, resource_id: str) -> dict | None:
        key = resource_id.lower()
        doc = self.docs.pop(key, None)
        if doc is None:
            return None
        for child in list(self.children.get(key, {})):
            self.delete(self.docs[child]["id"] if child in self.docs else child)
        self.children.pop(key, None)
        parent = parent_id_of(doc["id"])
        if parent:
            self.children.get(parent.lower(), {}).pop(key, None)
        mid = machine_id_of(doc["id"])
        if mid:
            self.attached.get(mid.lower(), {}).pop(key, None)
        sub, _ = sub_rg_of(doc["id"])
        self.by_type.get((doc["type"].lower(), sub.lower()), {}).pop(key, None)
        table = arg_table_for(doc["type"].lower())
        if table:
            self.arg[table].get(sub.lower(), {}).pop(key, None)
        self.version += 1
        self._changed(key)
        return doc

    def children_of(self, parent_id: str, type_suffix: str | None = None) -> list[dict]:
        out = []
        for key in self.children.get(parent_id.lower(), {}):
            doc = self.docs.get(key)
            if doc is not None and (type_suffix is None or doc["type"].lower().endswith(type_suffix.lower())):
                out.append(doc)
        return out

    def attached_to(self, machine_id: str, type_lower: str | None = None) -> list[dict]:
        out = []
        for key in self.attached.get(machine_id.lower(), {}):
            doc = self.docs.get(key)
            if doc is not None and (type_lower is None or doc["type"].lower() == type_lower):
                out.append(doc)
        return out

    def machines(self, type_lower: str, subscription: str, resource_group: str | None = None) -> list[dict]:
        keys = self.machines_by_sub.get((type_lower, subscription.lower()), {})
        docs = [self.docs[k] for k in keys if k in self.docs]
        if resource_group is not None:
            rg = resource_group.lower()
            docs = [d for d in docs if sub_rg_of(d["id"])[1].lower() == rg]
        return docs

    def of_type(self, type_lower: str, subscription: str, under: str | None = None) -> list[dict]:
        """Every document of one type in a subscription (optionally below one parent id), in fleet order."""
        keys = self.by_type.get((type_lower, subscription.lower()), {})
        prefix = under.lower().rstrip("/") + "/" if under else ""
        return [self.docs[k] for k in keys if k in self.docs and k.startswith(prefix)]

    def all_machines(self) -> Iterator[dict]:
        for (_, _), keys in self.machines_by_sub.items():
            for k in keys:
                doc = self.docs.get(k)
                if doc is not None:
                    yield doc

    def extensions_of(self, machine_id: str) -> list[dict]:
        return self.children_of(machine_id, "/extensions")

    def sim_for(self, machine_id: str) -> dict:
        return self.sim_machines.get(machine_id.lower(), {})

    def tenant_of(self, subscription: str) -> str:
        sub = self.subscriptions.get(subscription.lower())
        return sub.get("tenantId", "") if sub else ""

    # ---- Resource Graph rows -----------------------------------------------------------------

    def _index_arg(self, doc: dict) -> None:
        tl = doc["type"].lower()
        table = arg_table_for(tl)
        if table is None:
            return
        sub, _ = sub_rg_of(doc["id"])
        self.arg[table].setdefault(sub.lower(), {})[doc["id"].lower()] = self.arg_row(doc)

    def arg_row(self, doc: dict) -> dict:
        sub, rg = sub_rg_of(doc["id"])
        tl = doc["type"].lower()
        props = doc.get("properties")
        if tl == VM_TYPE and isinstance(props, dict):
            # ARG drops instanceView and adds properties.extended.instanceView (power state, OS, computer name).
            iv = props.get("instanceView") or {}
            props = {k: v for k, v in props.items() if k != "instanceView"}
            extended: dict[str, Any] = {k: iv[k] for k in ("computerName", "osName", "osVersion", "hyperVGeneration") if k in iv}
            power = power_status(doc)
            if power is not None:
                extended["powerState"] = {"code": power["code"], "displayStatus": power.get("displayStatus", "")}
            props["extended"] = {"instanceView": extended}
        row = {
            "id": doc["id"],
            "name": doc.get("name", ""),
            "type": tl,
            "tenantId": self.tenant_of(sub),
            "kind": doc.get("kind") or "",
            "location": (doc.get("location") or "").lower().replace(" ", ""),
            "resourceGroup": rg.lower(),
            "subscriptionId": sub,
            "managedBy": doc.get("managedBy") or "",
            "properties": props,
            "tags": doc.get("tags"),
        }
        # Optional columns are stored only when set (memory at 50k servers); a missing column reads as null.
        for key in ("sku", "plan", "identity", "zones", "extendedLocation"):
            value = doc.get(key)
            if value is not None:
                row[key] = value
        return row

    def arg_rows(self, table: str, subscriptions: Iterable[str] | None) -> Iterator[dict]:
        by_sub = self.arg.get(table, {})
        subs = [s.lower() for s in subscriptions] if subscriptions is not None else list(by_sub)
        for s in subs:
            yield from by_sub.get(s, {}).values()

    def reindex(self, doc: dict) -> None:
        """Call after changing a document in place."""
        self._index_arg(doc)
        self.version += 1
        self._changed(doc["id"].lower())

    # ---- long-running operations -------------------------------------------------------------

    def new_operation(self, *, subscription: str, location: str, provider: str, kind: str, target: str,
                      duration: float | None = None, complete: str | None = None, complete_args: dict | None = None,
                      start_at: float | None = None) -> Operation:
        now = self.clock()
        start = now if start_at is None else max(now, start_at)
        op = Operation(
            id=str(uuid.uuid4()),
            subscription=subscription,
            location=(location or "westus").lower().replace(" ", ""),
            provider=provider,
            kind=kind,
            target=target,
            started=now,
            finish_at=start + (self.config.lro_seconds if duration is None else duration),
            complete=complete,
            complete_args=complete_args or {},
        )
        if complete is not None and complete not in COMPLETIONS:
            raise ValueError(f"no completion named {complete!r}")
        self.operations[op.id] = op
        self._op_changed(op)
        return op

    def _op_changed(self, op: Operation) -> None:
        if self.changed_ops is not None:
            self.changed_ops.add(op.id)

    def advance(self) -> None:
        """Complete every operation whose time has come (in finishing order)."""
        now = self.clock()
        due = [op for op in self.operations.values() if not op.done and op.finish_at <= now]
        for op in sorted(due, key=lambda o: o.finish_at):
            op.status = "Succeeded"
            self._op_changed(op)
            if op.complete is not None:
                try:
                    COMPLETIONS[op.complete](self, op, **op.complete_args)
                except Exception as e:  # a simulator bug must surface as a failed operation, not a hang
                    op.status = "Failed"
                    op.error = {"code": "InternalServerError", "message": f"simulator error: {e!r}"}
            op.ended = op.finish_at
        if len(self.operations) > 50_000:  # keep memory bounded on long runs
            for oid in [o.id for o in self.operations.values() if o.done and o.ended and now - o.ended > 3600]:
                del self.operations[oid]


def power_status(vm_doc: dict) -> dict | None:
    iv = (vm_doc.get("properties") or {}).get("instanceView") or {}
    for st in iv.get("statuses") or []:
        if isinstance(st, dict) and str(st.get("code", "")).startswith("PowerState/"):
            return st
    return None


def set_power_state(vm_doc: dict, state: str) -> None:
    props = vm_doc.setdefault("properties", {})
    iv = props.setdefault("instanceView", {})
    statuses = [s for s in iv.get("statuses") or [] if not str(s.get("code", "")).startswith("PowerState/")]
    display = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated",
               "starting": "VM starting", "stopping": "VM stopping", "deallocating": "VM deallocating"}
    statuses.append({"code": f"PowerState/{state}", "level": "Info", "displayStatus": display.get(state, f"VM {state}")})
    iv["statuses"] = statuses
