"""The `:kql` service: a KQL query against Azure Resource Graph when online, against the cache when not.

Online, the query goes to Resource Graph through the shared transport, once per tenant (each with its
own token, as the inventory's queries), paged with ``$skipToken`` up to ``limit`` rows, the answers put
together; a tenant that refuses is named in the answer. Offline, the cached rows (raw Resource Graph rows per subscription and source, in the
shapes of ``arm/graph.py``'s queries) are turned back into ARG-like tables — ``resources`` with the
machines *and* their extensions as resources, ``patchassessmentresources``, … — and the project's KQL
engine answers. The cache holds what the inventory needs, not everything ARG has: docs/kql.md lists
which tables and columns the offline tables have and how they differ from ARG.

Both return a ``KqlAnswer`` whose strings (values and column names) have passed ``clean_text``. A query
the engine or Resource Graph refuses raises ``KqlError`` (code, message, position); Resource Graph's
refusals are ``GraphQueryError``, which also carries the request id. Other ARM failures (no access,
throttling past the retries, no network) raise ``ArmHttpError``. No Textual here.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import kql
from .arm.graph import BATCH, GRAPH_API, GRAPH_PATH, PAGE, tenant_batches
from .arm.transport import ArmConnectionError, ArmHttpError, ArmTransport
from .fleet.model import Source, clean_keys, clean_text
from .kql import KqlError
from .store.cache import Store

DEFAULT_LIMIT = 1000
SOURCE_GRAPH = "Resource Graph"
SOURCE_CACHE = "cache"

_SUB_RG = re.compile(r"^/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?", re.IGNORECASE)
_LINE_COLUMN = re.compile(r"\s*\(line (\d+), column (\d+)\)\s*$")


@dataclass
class KqlAnswer:
    """What a `:kql` query gave: typed columns, rows (dicts keyed by column), where from and how old."""

    columns: list[tuple[str, str]]
    rows: list[dict]
    source: str  # SOURCE_GRAPH or SOURCE_CACHE
    as_of: datetime | None  # when the data was read (offline: the oldest cached source the tables used)
    truncated: bool  # more rows matched than ``limit``
    total: int | None = None  # rows that matched, when known (Resource Graph's totalRecords; offline: always)
    notes: list[str] = field(default_factory=list)  # e.g. cached sources that are missing for a subscription


class GraphQueryError(KqlError):
    """Resource Graph refused the query (HTTP 400): its code and message, the position it named, the request id."""

    def __init__(self, code: str, message: str, position: int | None, *, text: str, request_id: str = "") -> None:
        super().__init__(code, message, position, text=text)
        self.request_id = request_id

    def __str__(self) -> str:
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return super().__str__() + rid


# ---- offline: ARG-like tables from the cache ------------------------------------------------------


def _type_from_id(resource_id: str) -> str:
    """ARM's resource type, lower-case, from an id: the namespace after the last ``providers`` and every
    other segment after it (``…/virtualMachines/vm1/extensions/x`` → ``microsoft.compute/virtualmachines/extensions``)."""
    low = resource_id.lower()
    at = low.rfind("/providers/")
    if at < 0:
        return ""
    parts = low[at + len("/providers/") :].strip("/").split("/")
    return "/".join([parts[0], *parts[1::2]])


def _resource(resource_id: Any, tenant: str, properties: dict, **columns: Any) -> dict:
    """An ARG row for a resource the cache knows only by id and a few properties: the standard columns
    that follow from the id; those it cannot know stay absent (null in a query)."""
    rid = str(resource_id or "")
    m = _SUB_RG.match(rid)
    row: dict[str, Any] = {
        "id": rid,
        "name": rid.rstrip("/").rsplit("/", 1)[-1],
        "type": _type_from_id(rid),
        "tenantId": tenant or None,
        "resourceGroup": (m.group(2) or "").lower() if m else None,
        "subscriptionId": m.group(1).lower() if m else None,
        "properties": properties,
    }
    row.update({k: v for k, v in columns.items() if v is not None})
    return row


def _items(row: dict, key: str) -> Iterable[dict]:
    """The items of a folded per-machine row (extensions, assignments, states, associations)."""
    for item in row.get(key) or ():
        if isinstance(item, dict) and item.get("id"):
            yield item


def _picked(row: dict, *names: str) -> dict:
    """The properties a cached row projected; a null one is left out (the projection cannot tell a
    property that was null from one that was absent, and absent reads the same in a query)."""
    return {n: row[n] for n in names if row.get(n) is not None}


class _CachedFleet:
    """The cached rows of the chosen subscriptions, read from the store once per source, on first use."""

    def __init__(self, store: Store, subscriptions: Sequence[str]) -> None:
        self.store = store
        self.manifests = [m for m in store.manifests(subscriptions or None) if m.fetched_at is not None]
        self.used: list[datetime] = []  # fetch times of the sources the query read
        self._rows: dict[Source, list[tuple[str, dict]]] = {}
        self._machines: dict[str, dict] | None = None

    def rows(self, source: Source) -> list[tuple[str, dict]]:
        """(tenant id, row) of one source across the subscriptions."""
        if source not in self._rows:
            out: list[tuple[str, dict]] = []
            for m in self.manifests:
                if m.source == source.value:
                    out.extend((m.tenant, r) for r in self.store.rows(m.subscription, m.source, m.chunks))
                    self.used.append(m.fetched_at)  # type: ignore[arg-type]  (filtered above)
            self._rows[source] = out
        return self._rows[source]

    def machine(self, machine_id: str) -> dict:
        if self._machines is None:
            self._machines = {str(r.get("id", "")).lower(): r for _, r in self.rows(Source.MACHINES)}
        return self._machines.get(machine_id.lower(), {})

    # One builder per table; each returns new dicts (the engine never mutates its input, neither do we).

    def resources(self) -> list[dict]:
        out = [dict(r, tenantId=r.get("tenantId") or t or None) for t, r in self.rows(Source.MACHINES)]
        for tenant, folded in self.rows(Source.EXTENSIONS):
            # ARG gives an extension its machine's location; the cache keeps it on the machine only.
            location = self.machine(str(folded.get("machineId", ""))).get("location")
            out.extend(_resource(ext["id"], tenant, _picked(
                ext, "publisher", "type", "typeHandlerVersion", "provisioningState", "enableAutomaticUpgrade"),
                location=location) for ext in _items(folded, "extensions"))
        for tenant, r in self.rows(Source.DCRS):
            out.append(_resource(r.get("id"), tenant, _picked(r, "dataFlows", "destinations", "workspaceResourceId"),
                                 name=r.get("name"), type=r.get("type")))
        for tenant, r in self.rows(Source.AUTOMANAGE):
            out.append(_resource(r.get("id"), tenant, _picked(r, "configurationProfile", "status")))
        for tenant, r in self.rows(Source.FILE_SYNC):
            out.append(_resource(r.get("id"), tenant, _picked(
                r, "serverName", "lastHeartBeat", "agentVersion", "serverOSVersion")))
        return out

    def patchassessmentresources(self) -> list[dict]:
        return [_resource(r.get("id"), t, dict(r.get("properties") or {})) for t, r in self.rows(Source.PATCH)]

    def guestconfigurationresources(self) -> list[dict]:
        return [_resource(a["id"], t, _picked(a, "complianceStatus", "lastComplianceStatusChecked", "assignmentType"),
                          name=a.get("name"))
                for t, r in self.rows(Source.GUEST_CONFIGURATION) for a in _items(r, "assignments")]

    def policyresources(self) -> list[dict]:
        return [_resource(s["id"], t, _picked(s, "complianceState", "policyDefinitionName", "policyAssignmentName",
                                              "timestamp") | {"resourceId": r.get("machineId")})
                for t, r in self.rows(Source.POLICY) for s in _items(r, "states")]

    def securityresources(self) -> list[dict]:
        out = []
        for t, r in self.rows(Source.SECURITY):
            if str(r.get("type", "")).lower() == "microsoft.security/pricings":
                props = _picked(r, "pricingTier", "subPlan")
            else:
                props = {"displayName": r.get("displayName"), "status": {"code": r.get("statusCode")},
                         "resourceDetails": {"Id": r.get("resourceId")}}
            out.append(_resource(r.get("id"), t, props, name=r.get("name"), type=r.get("type")))
        return out

    def recoveryservicesresources(self) -> list[dict]:
        out = []
        for t, r in self.rows(Source.BACKUP):
            props = _picked(r, "protectionState", "protectionStatus", "healthStatus", "lastBackupStatus",
                            "lastBackupTime", "backupManagementType", "friendlyName") | {"sourceResourceId": r.get("machineId")}
            out.append(_resource(r.get("id"), t, props, type=r.get("type")))
        for t, r in self.rows(Source.SITE_RECOVERY):
            props = _picked(r, "protectionState", "replicationHealth", "friendlyName") | {
                "providerSpecificDetails": {"instanceType": r.get("instanceType"), "fabricObjectId": r.get("machineId")}}
            out.append(_resource(r.get("id"), t, props, type=r.get("type")))
        return out

    def insightsresources(self) -> list[dict]:
        return [_resource(a["id"], t, _picked(a, "dataCollectionRuleId"))
                for t, r in self.rows(Source.DCR_ASSOCIATIONS) for a in _items(r, "associations")]

    def maintenanceresources(self) -> list[dict]:
        return [_resource(r.get("id"), t, _picked(r, "maintenanceConfigurationId")) for t, r in self.rows(Source.MAINTENANCE)]

    def builders(self) -> dict[str, Callable[[], list[dict]]]:
        return {name: getattr(self, name) for name in OFFLINE_TABLES}


OFFLINE_TABLES = (
    "resources",
    "patchassessmentresources",
    "guestconfigurationresources",
    "policyresources",
    "securityresources",
    "recoveryservicesresources",
    "insightsresources",
    "maintenanceresources",
)


@contextlib.contextmanager
def _collector_paused():
    """Building a table allocates a dict per cached resource and none of them is garbage: at 50,000 servers
    the cyclic collector's passes over them took two thirds of an offline query (5 s of 7)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def offline_tables(store: Store, subscriptions: Sequence[str] = ()) -> dict[str, list[dict]]:
    """ARG-like tables built from the cached rows of ``subscriptions`` (all cached ones when empty)."""
    fleet = _CachedFleet(store, subscriptions)
    with _collector_paused():
        return {name: build() for name, build in fleet.builders().items()}


def run_offline(store: Store, query: str, *, subscriptions: Sequence[str] = (), limit: int = DEFAULT_LIMIT,
                now: datetime | None = None) -> KqlAnswer:
    """Answer ``query`` from the cache. Raises KqlError for a query the engine refuses (with its position);
    a table the cache does not hold is named in the error with the tables it does hold."""
    _check_limit(limit)
    fleet = _CachedFleet(store, subscriptions)
    try:
        with _collector_paused():
            result = kql.run(query, fleet.builders(), now=now)
            as_of = min(fleet.used, default=None)
            del fleet  # the cached rows go while the collector is off: none of them is left for it to scan
    except KqlError as e:
        if e.code == "UnknownTable":
            e.message += f" (the offline cache has: {', '.join(OFFLINE_TABLES)})"
        raise
    notes = [clean_text(f"{m.source} of subscription {m.subscription}: not in the cache ({m.error})", limit=300)
             for m in store.manifests(subscriptions or None) if m.fetched_at is None and m.error]
    return _answer(result.columns, result.rows, SOURCE_CACHE, as_of, limit, total=len(result.rows), notes=notes)


# ---- online: Resource Graph ----------------------------------------------------------------------


async def run_online(transport: ArmTransport, query: str, subscriptions: Sequence[str], *,
                     limit: int = DEFAULT_LIMIT, tenants: Mapping[str, str] | None = None) -> KqlAnswer:
    """Run ``query`` in Resource Graph over ``subscriptions``, reading pages until ``limit`` rows.

    A token reads one tenant, so the subscriptions go in the inventory's batches (``graph.tenant_batches``:
    one tenant each, at most BATCH subscriptions), each with its tenant's token, and the answers are put
    together. ``tenants`` (subscription -> tenant, e.g. from the cache) completes the transport's map for
    subscriptions not seen by a refresh yet. A batch that is refused (no token for its tenant, no access)
    is named in the answer's notes and the others answer; a subscription Resource Graph names as refused
    leaves its batch and the rest is asked again. Only when every batch is refused is the first refusal
    raised. With no subscriptions: one query in the home tenant over what it can read.
    A refused query raises GraphQueryError (at once: it would be refused everywhere); no network
    ArmConnectionError; other failures of the only batch ArmHttpError."""
    _check_limit(limit)
    if tenants:
        transport.set_tenants({s: t for s, t in tenants.items() if s.lower() not in transport.tenant_of})
    as_of = datetime.now(UTC)
    pending = tenant_batches(subscriptions, {} if transport.one_token_for_all_tenants else transport.tenant_of) \
        if subscriptions else [(None, ())]
    merged = _Merged()
    refusals: list[ArmHttpError] = []
    asked = 0
    while pending:
        if len(merged.rows) >= limit:
            merged.notes.append(f"{sum(len(b) for _, b in pending):,} subscriptions not asked: the first "
                                f"{limit:,} rows came from the others")
            merged.more = True
            break
        tenant, batch = pending.pop(0)
        asked += 1
        try:
            merged.add(*await _query_batch(transport, query, batch, tenant, limit - len(merged.rows)))
        except ArmConnectionError:
            raise
        except ArmHttpError as e:
            if e.status == 400:
                raise _query_error(e, query) from None
            named = [s for s in batch if s.lower() in f"{e.body} {e.message}".lower()] if e.status == 403 else []
            if named and len(named) < len(batch):  # only these are refused: ask again without them
                pending.insert(0, (tenant, tuple(s for s in batch if s not in named)))
            refusals.append(e)
            who = f"tenant {tenant}" if tenant else "the home tenant"
            lost = ", ".join(named) if named else f"{len(batch):,} subscription{'s' * (len(batch) != 1)} of {who}"
            merged.notes.append(clean_text(f"not in this answer: {lost} — {e.describe()}", limit=400))
    if merged.columns is None:
        if refusals:
            raise refusals[0]
        merged.columns = []
    if asked - len(refusals) > 1:
        merged.notes.insert(0, f"asked in {asked - len(refusals)} parts (one tenant, at most {BATCH} subscriptions "
                               "each): summarize, count, top and take apply within each part, whose rows are put together")
    total = None if merged.unknown_total else merged.total
    answer = _answer(merged.columns, merged.rows, SOURCE_GRAPH, as_of, limit, total=total, notes=merged.notes)
    answer.truncated = answer.truncated or merged.more
    return answer


@dataclass
class _Merged:
    """The answers of several batches, one after the other: columns in the order first seen."""

    columns: list[tuple[str, str]] | None = None
    rows: list[dict] = field(default_factory=list)
    total: int = 0
    unknown_total: bool = False
    more: bool = False
    notes: list[str] = field(default_factory=list)

    def add(self, columns: list[tuple[str, str]], rows: list[dict], total: int | None, more: bool) -> None:
        if self.columns is None:
            self.columns = list(columns)
        else:
            seen = {n for n, _ in self.columns}
            self.columns += [c for c in columns if c[0] not in seen]
        self.rows.extend(rows)
        self.total += total or 0
        self.unknown_total = self.unknown_total or total is None
        self.more = self.more or more


async def _query_batch(transport: ArmTransport, query: str, subscriptions: Sequence[str], tenant: str | None,
                       limit: int) -> tuple[list[tuple[str, str]], list[dict], int | None, bool]:
    """One batch's pages with its tenant's token: (columns, rows, total, more rows than read)."""
    columns: list[tuple[str, str]] | None = None
    rows: list[dict] = []
    token: str | None = None
    total: int | None = None
    while True:
        options: dict[str, Any] = {"$top": min(PAGE, limit - len(rows)), "resultFormat": "table"}
        if token:
            options["$skipToken"] = token
        body: dict[str, Any] = {"query": query, "options": options}
        if subscriptions:
            body["subscriptions"] = list(subscriptions)
        data = await transport.post_json(GRAPH_PATH, body, params={"api-version": GRAPH_API}, tenant=tenant)
        page_columns, page_rows = _table_page(data)
        columns = columns or page_columns
        names = [n for n, _ in page_columns]
        rows.extend(dict(zip(names, r, strict=False)) for r in page_rows)
        if isinstance(data.get("totalRecords"), int):
            total = data["totalRecords"]
        token = data.get("$skipToken") or None
        more = bool(token) or str(data.get("resultTruncated", "false")).lower() == "true"
        if not token or len(rows) >= limit or not page_rows:
            return columns or [], rows, total, more


def _table_page(data: Any) -> tuple[list[tuple[str, str]], list[list]]:
    table = data.get("data") if isinstance(data, dict) else None
    cols = table.get("columns") if isinstance(table, dict) else None
    rows = table.get("rows") if isinstance(table, dict) else None
    if not isinstance(cols, list) or not isinstance(rows, list):
        raise ArmHttpError(200, "MalformedResponse", "Resource Graph answered without a table of columns and rows",
                           method="POST", url=GRAPH_PATH)
    columns = [(str(c.get("name", "")), str(c.get("type", "string"))) for c in cols if isinstance(c, dict)]
    return columns, [r for r in rows if isinstance(r, list)]


def _query_error(error: ArmHttpError, query: str) -> GraphQueryError:
    """ARG's 400 as a KqlError: the most specific detail (the last one; the first is a generic 'Query is
    invalid'), and its position from ``line``/``characterPositionInLine`` or a trailing '(line L, column C)'."""
    code, message, line, column = error.code, error.message, None, None
    body = error.body if isinstance(error.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    details = [d for d in err.get("details") or () if isinstance(d, dict) and d.get("message")]
    if details:
        detail = details[-1]
        code, message = str(detail.get("code") or code), str(detail["message"])
        if isinstance(detail.get("line"), int) and isinstance(detail.get("characterPositionInLine"), int):
            line, column = detail["line"], detail["characterPositionInLine"]
    if message.startswith(code + ": "):
        message = message[len(code) + 2 :]
    m = _LINE_COLUMN.search(message)
    if m:
        line, column = line or int(m.group(1)), column or int(m.group(2))
        message = message[: m.start()]
    position = _offset(query, line, column) if line is not None else None
    return GraphQueryError(clean_text(code, limit=80), clean_text(message, limit=2000), position, text=query,
                           request_id=clean_text(error.request_id, limit=80))


def _offset(text: str, line: int, column: int) -> int:
    """0-based offset of a 1-based (line, column)."""
    lines = text.split("\n")
    line = max(1, min(line, len(lines)))
    return sum(len(x) + 1 for x in lines[: line - 1]) + max(0, min(column - 1, len(lines[line - 1])))


# ---- shared --------------------------------------------------------------------------------------


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, not {limit!r}")


def _clean(value: Any) -> Any:
    """Every string in a value (dict keys too) through clean_text: rows are about to be shown."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return clean_keys({k: _clean(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _answer(columns: list[tuple[str, str]], rows: list[dict], source: str, as_of: datetime | None, limit: int,
            *, total: int | None, notes: list[str] | None = None) -> KqlAnswer:
    kept = rows[:limit]
    names = dict.fromkeys(n for n, _ in columns)
    shown = dict(zip(names, clean_keys(names), strict=True))
    # Each row's keys are cleaned in column order (missing columns as None), so that two column names
    # cleaning alike get the same " (2)" in the rows as in the header.
    return KqlAnswer(columns=[(shown[n], clean_text(t)) for n, t in columns],
                     rows=[_clean({**dict.fromkeys(names), **r}) for r in kept], source=source, as_of=as_of,
                     truncated=len(rows) > limit or (total is not None and total > len(kept)),
                     total=total, notes=notes or [])
