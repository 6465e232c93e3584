"""`wsam-tui export`: the inventory and the capability matrix, non-interactive, as JSON, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .fleet.capabilities import CATALOG
from .fleet.model import Server, State, clean_text

if TYPE_CHECKING:
    from .inventory import Inventory, Snapshot

GLYPH = {State.ON: "●", State.PARTIAL: "◐", State.OFF: "○", State.NOT_APPLICABLE: "·", State.UNKNOWN: "?"}
BASE_COLUMNS = ("id", "name", "kind", "subscriptionId", "tenantId", "resourceGroup", "location", "osName", "osVersion",
                "state", "agentVersion", "coverage")


def from_store(inventory: Inventory, fmt: str, subscriptions: Sequence[str] = (), *,
               ids: Sequence[str] | None = None) -> tuple[str, Snapshot]:
    """The export of the store's servers (of ``ids`` only, in that order, when given) and the snapshot it was
    made from: the one path of `wsam-tui export` and the console's :export. Read from the store, not from
    the table's rows: JSON carries each cell's evidence, which the table does not keep."""
    snapshot = inventory.load(subscriptions, evidence=fmt == "json")
    if ids is not None:
        order = {i.lower(): n for n, i in enumerate(ids)}
        snapshot.servers = sorted((s for s in snapshot.servers if s.id.lower() in order), key=lambda s: order[s.id.lower()])
    if fmt == "json":
        text = to_json(snapshot.servers, oldest=snapshot.oldest, newest=snapshot.newest)
    elif fmt == "md":
        text = to_markdown(snapshot.servers, oldest=snapshot.oldest)
    else:
        text = to_csv(snapshot.servers)
    return text, snapshot


def _base(s: Server) -> dict:
    return {"id": s.id, "name": s.name, "kind": s.kind.value, "subscriptionId": s.subscription_id, "tenantId": s.tenant_id,
            "resourceGroup": s.resource_group, "location": s.location, "osName": s.os_name, "osVersion": s.os_version,
            "state": s.state, "agentVersion": s.agent_version, "coverage": round(s.coverage, 3)}


def to_json(servers: Sequence[Server], *, oldest: datetime | None, newest: datetime | None) -> str:
    out = []
    for s in servers:
        row = _base(s)
        row["tags"] = dict(s.tags)
        row["capabilities"] = {
            c.id: {
                "state": s.capabilities[c.id].state.value,
                "summary": s.capabilities[c.id].summary,
                "flags": list(s.capabilities[c.id].flags),
                "unknownReason": s.capabilities[c.id].unknown_reason,
                "staleReason": s.capabilities[c.id].stale_reason,
                "evidence": [
                    {"source": e.source.value, "documentId": e.document_id, "field": e.field, "value": e.value,
                     "fetchedAt": e.fetched_at.isoformat() if e.fetched_at else None}
                    for e in s.capabilities[c.id].evidence
                ],
            }
            for c in CATALOG if c.id in s.capabilities
        }
        out.append(row)
    doc = {"dataAsOf": {"oldest": oldest.isoformat() if oldest else None, "newest": newest.isoformat() if newest else None},
           "capabilities": [{"id": c.id, "group": c.group.value, "label": c.label} for c in CATALOG],
           "servers": out}
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def to_csv(servers: Sequence[Server]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*BASE_COLUMNS, *(c.id for c in CATALOG)])
    for s in servers:
        base = _base(s)
        # Untrusted text is already free of control characters; a leading = + - @ would be a formula
        # in a spreadsheet, so such cells are prefixed with a quote (OWASP CSV injection advice).
        writer.writerow([_cell(base[k]) for k in BASE_COLUMNS] +
                        [s.capabilities[c.id].state.value if c.id in s.capabilities else "" for c in CATALOG])
    return buf.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _md(value: object) -> str:
    return clean_text(value).replace("|", "\\|")


def to_markdown(servers: Sequence[Server], *, oldest: datetime | None) -> str:
    lines = []
    if oldest:
        lines.append(f"Data as of {oldest.isoformat(timespec='seconds')} (oldest source).\n")
    lines.append("Legend: ● on · ◐ partial/unhealthy · ○ off · `·` not applicable · ? unknown\n")
    head = ["Server", "Kind", "Subscription", "OS", "State", *(c.short for c in CATALOG)]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for s in servers:
        cells = [_md(s.name), s.kind.value, _md(s.subscription_id), _md(s.os_name), _md(s.state),
                 *(GLYPH[s.capabilities[c.id].state] if c.id in s.capabilities else "" for c in CATALOG)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
