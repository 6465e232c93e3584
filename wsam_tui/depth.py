"""The details pane's service: one server with every capability's evidence, from the cache or fresh from ARM.

    view = cached_view(inventory, server_id)                    # a keypress: the store only, no network
    view = await fresh_view(inventory, transport, server_id)    # enter: ARM's depth reads over the cache

Both derive the server exactly as the inventory does (``build_server(..., evidence=True)``), from the
raw documents, so the pane and the table never disagree about what the same documents say.

The cached view reads only the server's own subscription and the fleet-wide rows (data collection
rules, workspaces, File Sync servers), never the whole fleet, and assembles only the rows that name
the server. Those rows, indexed by machine, are kept for the subscription last viewed and reused while
the store's manifests for them are unchanged: a refresh rewrites the manifests, and the next view reads
the store again (``SubscriptionCache``).

The fresh view is ``fetch_detail`` through ARM merged over the cached documents. A depth source that
fails keeps the cached documents, their evidence and their age, and ``ServerView.errors`` says why.
When the machine itself cannot be read (401/403, 404 deleted, ARM unreachable), ``fresh_view`` raises
the ``ArmHttpError`` that ``fetch_detail`` raised (``ArmConnectionError`` when unreachable): there is
no fresh view of a machine ARM refuses, and the caller shows the cached view with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import threading
import weakref
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from .arm.resources import ServerDetail, detail_to_raw, fetch_detail
from .arm.transport import ArmTransport
from .fleet.assemble import assemble
from .fleet.capabilities import build_server, kind_of
from .fleet.model import FleetContext, Kind, RawServer, Server, Source, SourceStatus, clean_text
from .inventory import Inventory, source_status, subscription_of
from .store.cache import CHUNK

__all__ = ["ActionEffect", "ServerView", "SubscriptionCache", "action_effect", "cached_view", "fresh_view",
           "record_effects", "store_effects", "subscription_cache"]

# Rows that serve machines of any subscription (inventory.load reads them the same way).
FLEET_WIDE = frozenset({Source.DCRS, Source.FILE_SYNC})


@dataclass(frozen=True)
class ServerView:
    """One server as the details pane shows it: the record with evidence, where it came from, and when."""

    server: Server  # built with evidence
    source: Literal["arm", "cache"]
    as_of: datetime | None  # when ARM answered, or the oldest fetch time of the cached documents
    errors: Mapping[Source, str]  # sources that could not be read, and why
    detail: ServerDetail | None = None  # ARM's documents (fresh views only)
    # Cached views: rows an action wrote over the cache since, by which job and when (the rest is ``as_of``).
    updated: tuple[datetime, str] | None = None


# Where a row names its machine: the machine rows by ``id``, Defender rows by ``resourceId`` or the id they
# hang under, every other per-machine source by ``machineId`` (fleet/assemble.py matches them the same way).
_SECURITY_SPLIT = "/providers/microsoft.security/"


def _machine_keys(source: Source, row: dict) -> tuple[str, ...]:
    if source is Source.MACHINES:
        return (_lower(row.get("id")),)
    if source is Source.SECURITY:
        return (_lower(row.get("resourceId")), _lower(row.get("id")).split(_SECURITY_SPLIT)[0])
    return (_lower(row.get("machineId")),)


def _lower(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


@dataclass(frozen=True)
class _Indexed:
    """One subscription's cached rows, indexed by the machine they name, and what they say of age and failure."""

    signature: tuple
    by_machine: Mapping[str, bytes]  # lower-case machine id -> its rows per source, packed (``_unpack``)
    common: Mapping[Source, list[dict]]  # rows naming no machine (subscription pricings) and the fleet-wide rows
    statuses: Mapping[tuple[str, Source], SourceStatus]
    tenants: Mapping[str, str]  # lower-case subscription id -> tenant id
    oldest: datetime | None  # the oldest fetch time of this subscription's sources
    errors: Mapping[Source, str]  # sources whose last refresh failed (their rows, if any, are older)

    def rows_for(self, machine_id: str) -> dict[Source, list[dict]]:
        """The rows that name this machine and the common ones (those alone when the machine is not cached:
        a server created since the refresh still gets its subscription's rules and Sentinel workspaces)."""
        rows = {source: list(rows) for source, rows in self.common.items()}
        packed = self.by_machine.get(machine_id)
        for source, found in (_unpack(packed) if packed is not None else {}).items():
            rows.setdefault(source, []).extend(found)
        return rows


# A subscription's rows as Python objects take ~16 kB per server (164 MB at 10,000). Each source's rows
# of one machine are pickled as the source is read (so that memory peaks at one source's rows), and
# once all are read, each machine's are compressed together: ~2.5 kB per server, and unpacking one
# machine's takes about a millisecond.
def _pickled(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _compressed(by_source: dict[Source, bytes]) -> bytes:
    return zlib.compress(_pickled(by_source), 1)


def _unpack(packed: bytes) -> dict[Source, list[dict]]:
    # only ever bytes that this module made in this process
    return {source: pickle.loads(rows) for source, rows in pickle.loads(zlib.decompress(packed)).items()}


class SubscriptionCache:
    """The store's rows of recently viewed subscriptions, indexed by machine, reused while the store's
    manifests for them are unchanged (a refresh rewrites them); one per inventory.

    Indexing a subscription of 10,000 servers takes 1.5–3 s (reading its rows from the store, then packing
    them per machine), peaks at ~100 MB and holds ~24 MB; a view from the index then takes 1–2 ms
    (benchmarks/bench_depth.py). Only the ``keep`` most recently viewed subscriptions are kept. A console
    may index a subscription ahead of the first view (``get`` in a worker thread after a refresh)."""

    def __init__(self, inventory: Inventory, keep: int = 1) -> None:
        self.inventory = inventory
        self.keep = keep
        self._entries: dict[str, _Indexed] = {}
        self._lock = threading.Lock()
        # Rows an action changed since the store was last written (``record_effects``): lower-case machine
        # id -> source -> the machine's rows of that source. Views read them over the store's.
        self.changed: dict[str, dict[Source, list[dict]]] = {}
        # Lower-case machine id -> (when, which job) an action last wrote its rows: kept after the store is
        # written (its fetch times stay the refresh's), dropped for a machine once a refresh is newer.
        self.updated: dict[str, tuple[datetime, str]] = {}

    def get(self, subscription: str) -> _Indexed | None:
        """The subscription's index, read again from the store when its manifests changed; None when the
        store does not list the subscription."""
        store = self.inventory.store
        meta = [s for s in store.get_meta("subscriptions", []) or [] if isinstance(s, dict)]
        subs = [str(s.get("subscriptionId", "")).lower() for s in meta]
        if subscription not in subs:
            return None
        manifests = []
        for m in store.manifests(subs):
            try:
                source = Source(m.source)
            except ValueError:
                continue
            if m.subscription == subscription or (source in FLEET_WIDE and m.fetched_at is not None):
                manifests.append((source, m))
        signature = tuple(sorted((m.subscription, m.source, m.fetched_at, m.chunks, m.error,
                                  str(getattr(m, "generation", ""))) for _, m in manifests))
        # One lock around the check and the indexing: the console's cursor worker and a fresh read may ask
        # for the same subscription at once, and one of them then waits for the other's index.
        with self._lock:
            entry = self._entries.pop(subscription, None)
            if entry is None or entry.signature != signature:
                tenants = {sid: clean_text(s.get("tenantId") or "") for sid, s in zip(subs, meta, strict=True)}
                entry = self._index(subscription, manifests, signature, tenants)
            self._entries[subscription] = entry  # most recently used last
            while len(self._entries) > self.keep:
                self._entries.pop(next(iter(self._entries)))
        return entry

    def _index(self, subscription: str, manifests: list, signature: tuple, tenants: dict[str, str]) -> _Indexed:
        """Read source by source, the machines first (every other row is filed under the machine it names),
        each source's rows packed per machine before the next is read: memory peaks at one source's rows."""
        store = self.inventory.store
        statuses: dict[tuple[str, Source], SourceStatus] = {}
        errors: dict[Source, str] = {}
        fetched: list[datetime] = []
        by_machine: dict[str, dict[Source, bytes]] = {}  # machine -> source -> pickled rows
        common: dict[Source, list[dict]] = {}
        for source, m in sorted(manifests, key=lambda sm: sm[0] is not Source.MACHINES):
            if m.subscription == subscription:
                status = source_status(m)
                if status is not None:
                    statuses[(subscription, source)] = status
                if m.fetched_at is not None:
                    fetched.append(m.fetched_at)
                if m.error:
                    errors[source] = clean_text(m.error, limit=300)
            if m.fetched_at is None:
                continue
            rows = store.rows(m.subscription, m.source, m.chunks)
            if source in FLEET_WIDE:
                common.setdefault(source, []).extend(rows)
                continue
            groups: dict[str, list[dict]] = {}
            for row in rows:
                if source is Source.MACHINES:
                    owners = {_lower(row.get("id"))} - {""}
                else:
                    owners = {k for k in _machine_keys(source, row) if k in by_machine}
                for owner in owners:
                    groups.setdefault(owner, []).append(row)
                if not owners:
                    common.setdefault(source, []).append(row)
            del rows
            for owner, found in groups.items():
                by_machine.setdefault(owner, {})[source] = _pickled(found)
        packed = {owner: _compressed(by_source) for owner, by_source in by_machine.items()}
        return _Indexed(signature, packed, common, statuses, tenants, min(fetched, default=None), errors)


_caches: weakref.WeakKeyDictionary[Inventory, SubscriptionCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def subscription_cache(inventory: Inventory) -> SubscriptionCache:
    """The inventory's cache of indexed subscriptions (created on first use)."""
    with _caches_lock:
        cache = _caches.get(inventory)
        if cache is None:
            cache = _caches[inventory] = SubscriptionCache(inventory)
        return cache


def _cached(inventory: Inventory, server_id: str, now: datetime) -> tuple[_Indexed | None, RawServer | None, FleetContext]:
    """The index of the server's subscription, the server's cached documents (None when not cached),
    and the context to derive them, as ``Inventory.load`` builds it."""
    subscription = subscription_of({"id": server_id})
    entry = subscription_cache(inventory).get(subscription) if subscription else None
    rows = entry.rows_for(server_id.rstrip("/").lower()) if entry is not None else {}
    rows.update(subscription_cache(inventory).changed.get(server_id.rstrip("/").lower(), {}))
    raws, context = assemble(rows, sources=entry.statuses if entry is not None else {}, now=now,
                             required_tags=inventory.required_tags, stale_after_days=inventory.stale_after_days)
    tenants = entry.tenants if entry is not None else _tenants(inventory.store)
    return entry, (raws[0] if raws else None), dataclasses.replace(context, subscription_tenants=tenants)


def _tenants(store) -> dict[str, str]:
    return {str(s.get("subscriptionId", "")).lower(): clean_text(s.get("tenantId") or "")
            for s in store.get_meta("subscriptions", []) or [] if isinstance(s, dict)}


def cached_view(inventory: Inventory, server_id: str, *, now: datetime | None = None) -> ServerView | None:
    """The server as the store knows it, with evidence; None when the store does not hold it."""
    entry, raw, context = _cached(inventory, server_id, now or datetime.now(UTC))
    if entry is None or raw is None:
        return None
    updated = subscription_cache(inventory).updated.get(server_id.rstrip("/").lower())
    if updated is not None and entry.oldest is not None and entry.oldest > updated[0]:
        updated = None  # a refresh since read everything again
    return ServerView(server=build_server(raw, context, evidence=True), source="cache", as_of=entry.oldest,
                      errors=dict(entry.errors), updated=updated)


async def fresh_view(inventory: Inventory, transport: ArmTransport, server_id: str, *,
                     now: datetime | None = None) -> ServerView:
    """The server fresh from ARM over the cached documents. Raises ``ArmHttpError`` when the machine itself
    cannot be read; a source that fails keeps the cached documents and is named in ``errors``."""
    when = now or datetime.now(UTC)
    # The store is read in a thread while ARM answers: neither waits for the other.
    cached = asyncio.create_task(asyncio.to_thread(_cached, inventory, server_id, when))
    try:
        detail = await fetch_detail(transport, server_id)
    except BaseException:
        await asyncio.gather(cached, return_exceptions=True)
        raise
    _, base, cached_context = await cached
    # Without cached documents (a new server, an empty store) depth stands alone: the sources it does not
    # read have no status, and their cells say "not fetched".
    raw, statuses, dcrs = detail_to_raw(detail, base)
    context = dataclasses.replace(cached_context, dcrs={**cached_context.dcrs, **dcrs},
                                  sources={**cached_context.sources, **statuses})
    server = build_server(raw, context, evidence=True)
    errors = {source: clean_text(text, limit=500) for source, text in detail.errors.items()}
    return ServerView(server=server, source="arm", as_of=detail.fetched_at, errors=errors, detail=detail)


# ---- a server after an action ---------------------------------------------------------------------
#
# When an action succeeds, the engine has already read back what it changed (the extension, the machine
# with its instance view, the tags). ``action_effect`` turns that into the server's new rows, in the
# store's shapes (one extra read only where the action's cells need one: the extension list after an
# Arc upgradeExtensions); ``record_effects`` derives the new table records from the cached rows with
# those over them, exactly as a load would; ``store_effects`` writes them into the store, so a restart
# or --offline shows them until the next refresh replaces them. Instead of the ≈10 reads of a fresh
# view per server.

_TAGS_TYPE = "microsoft.resources/tags"
_DCRA_TYPE = "microsoft.insights/datacollectionruleassociations"


@dataclass(frozen=True)
class ActionEffect:
    """What ARM said of one server right after an action changed it."""

    server_id: str
    machine: dict | None = None  # the machine re-read (with its instance view)
    extension: dict | None = None  # one extension as ARM now has it (replaces the one of its name)
    removed_extension: str = ""  # the name of an extension that is gone
    extensions: list[dict] | None = None  # the whole extension list, re-read
    tags: dict | None = None  # the machine's tags now (``None``: unchanged)
    dcr_associations: list[dict] | None = None  # the machine's data collection rule associations, re-read
    by: str = ""  # which job wrote it ("job 1a2b: Add tags"), for the details' source line


def _last_segment(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


async def action_effect(transport: ArmTransport, action_id: str, server_id: str, resource: dict | None,
                        resource_path: str = "") -> ActionEffect | None:
    """The effect of a succeeded action on ``server_id`` from the resource the engine re-read (``JobEvent.resource``)
    and, for a removal, the path it removed. None when the action changes no cell (a Run Command)."""
    from .arm.resources import API_VERSIONS

    if action_id == "run-command":
        return None
    mid = server_id.rstrip("/")
    rtype = _lower((resource or {}).get("type"))
    if action_id.startswith("monitor.") and (resource is None or rtype == _DCRA_TYPE):
        # one read of the machine's list: the cell weighs every association, not only the one just written
        found = []
        async for page in transport.paged(f"{mid}/providers/Microsoft.Insights/dataCollectionRuleAssociations",
                                          {"api-version": API_VERSIONS["insights"]}):
            found += [a for a in page if isinstance(a, dict)]
        return ActionEffect(mid, dcr_associations=found)
    if resource is None:
        if "/extensions/" in resource_path.lower():  # removed: ARM answers 404 for it now
            return ActionEffect(mid, removed_extension=_last_segment(resource_path))
        return None
    if rtype.endswith("/extensions"):
        return ActionEffect(mid, extension=resource)
    if rtype == _TAGS_TYPE:
        tags = (resource.get("properties") or {}).get("tags")
        return ActionEffect(mid, tags=tags if isinstance(tags, dict) else {})
    if _lower(resource.get("id")).rstrip("/") != mid.lower():
        return None
    if action_id == "extension.upgrade":  # Arc upgradeExtensions: the versions live on the extensions
        found: list[dict] = []
        async for page in transport.paged(f"{mid}/extensions", {"api-version": API_VERSIONS["arc"]}):
            found += [e for e in page if isinstance(e, dict)]
        return ActionEffect(mid, machine=resource, extensions=found)
    return ActionEffect(mid, machine=resource)


def _effect_rows(effect: ActionEffect, base: Mapping[Source, list[dict]]) -> dict[Source, list[dict]]:
    """The machine's new rows of the sources the effect touches, over its ``base`` rows."""
    from .arm.armlist import extension_pack, machine_row, vm_patch_row
    from .arm.graph import unflatten_machine

    mid = effect.server_id.lower()
    old_machine = next((r for r in base.get(Source.MACHINES, []) if _lower(r.get("id")) == mid), None)
    out: dict[Source, list[dict]] = {}
    if effect.machine is not None:
        tenant = clean_text((old_machine or {}).get("tenantId") or "")
        machine = unflatten_machine(machine_row(effect.machine, tenant=tenant))
        out[Source.MACHINES] = [machine]
        if kind_of(machine) is Kind.VM:
            patch = vm_patch_row(effect.machine)
            if patch is not None:
                out[Source.PATCH] = [patch]
    elif effect.tags is not None and old_machine is not None:
        out[Source.MACHINES] = [{**old_machine, "tags": dict(effect.tags)}]
    if effect.extension is not None or effect.removed_extension or effect.extensions is not None:
        if effect.extensions is not None:
            packs = [extension_pack(e) for e in effect.extensions]
        else:
            packs = [dict(e) for row in base.get(Source.EXTENSIONS, []) if _lower(row.get("machineId")) == mid
                     for e in row.get("extensions") or [] if isinstance(e, dict)]
            gone = _lower(effect.removed_extension or (effect.extension or {}).get("name"))
            packs = [e for e in packs if _lower(e.get("name")) != gone]
            if effect.extension is not None:
                packs.append(extension_pack(effect.extension))
        out[Source.EXTENSIONS] = [{"machineId": mid, "extensions": packs}] if packs else []
    if effect.dcr_associations is not None:  # the store's shape: the Resource Graph fold of (id, rule id)
        links = [{"id": clean_text(a.get("id")), "dataCollectionRuleId": clean_text((a.get("properties") or {})
                  .get("dataCollectionRuleId"))} for a in effect.dcr_associations]
        out[Source.DCR_ASSOCIATIONS] = [{"machineId": mid, "associations": links}] if links else []
    return out


def record_effects(inventory: Inventory, effects: Sequence[ActionEffect], *, now: datetime | None = None
                   ) -> list[Server]:
    """The table records of the servers these effects changed (blocking: the store may be read; call it in a
    thread). The changed rows are kept, so that later views and ``store_effects`` read them. Servers the
    store does not hold are left out (the next refresh brings them)."""
    when = now or datetime.now(UTC)
    cache = subscription_cache(inventory)
    servers: list[Server] = []
    for effect in effects:
        mid = effect.server_id.rstrip("/").lower()
        entry = cache.get(subscription_of({"id": mid}))
        if entry is None:
            continue
        rows = entry.rows_for(mid)
        with cache._lock:
            rows.update(cache.changed.get(mid, {}))
            new = _effect_rows(effect, rows)
            cache.changed.setdefault(mid, {}).update(new)
            cache.updated[mid] = (when, effect.by)
        rows.update(new)
        raws, context = assemble(rows, sources=entry.statuses, now=when, required_tags=inventory.required_tags,
                                 stale_after_days=inventory.stale_after_days)
        if raws:
            context = dataclasses.replace(context, subscription_tenants=entry.tenants)
            servers.append(build_server(raws[0], context, evidence=False))
    return servers


@dataclass(frozen=True)
class RuleChoice:
    """A data collection rule the store knows, as an operator picks it."""

    id: str
    name: str
    resource_group: str
    subscription_id: str


def data_collection_rules(store) -> list[RuleChoice]:
    """The data collection rules in the store's DCRS rows (blocking; a few rows per subscription), by name."""
    found: dict[str, RuleChoice] = {}
    for manifest in store.manifests():
        if manifest.source != Source.DCRS.value:
            continue
        for row in store.rows_of(manifest):
            if not isinstance(row, dict):
                continue
            rid = clean_text(row.get("id"))
            parts = rid.split("/")
            if _lower(row.get("type")) != "microsoft.insights/datacollectionrules" or len(parts) != 9:
                continue
            found[rid.lower()] = RuleChoice(rid, parts[8], parts[4], parts[2])
    return sorted(found.values(), key=lambda r: (r.name.lower(), r.subscription_id, r.resource_group.lower()))


def store_effects(inventory: Inventory) -> int:
    """Write the rows ``record_effects`` kept into the store (blocking), each changed (subscription, source)
    rewritten with its fetch time kept: the other servers' rows are as old as they were. Returns how many
    servers had rows written; the kept rows are dropped (a source the store never read is left to a refresh)."""
    cache = subscription_cache(inventory)
    with cache._lock:
        changed, cache.changed = cache.changed, {}
    if not changed:
        return 0
    store = inventory.store
    by_target: dict[tuple[str, Source], dict[str, list[dict]]] = {}
    for mid, sources in changed.items():
        sub = subscription_of({"id": mid}).lower()
        for source, rows in sources.items():
            by_target.setdefault((sub, source), {})[mid] = rows
    written: set[str] = set()
    for (sub, source), replaced in by_target.items():
        for _ in range(3):  # a refresh that replaced these rows meanwhile: start again from its rows
            manifest = _manifest(store, sub, source)
            if manifest is None or manifest.fetched_at is None:
                break  # never read: a refresh fills it
            rows = [r for r in store.rows_of(manifest) if not any(k in replaced for k in _machine_keys(source, r))]
            rows += [r for found in replaced.values() for r in found]
            writer = store.begin_rows(sub, source.value, tenant=manifest.tenant)
            for position, start in enumerate(range(0, len(rows), CHUNK)):
                writer.add(position, rows[start: start + CHUNK])
            now = _manifest(store, sub, source)
            if now is not None and now.generation == manifest.generation:
                writer.commit(fetched_at=manifest.fetched_at)
                written.update(replaced)
                break
            writer.discard()
    return len(written)


def _manifest(store, subscription: str, source: Source):
    return next((m for m in store.manifests([subscription]) if m.source == source.value), None)
