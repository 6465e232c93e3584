"""Azure Resource Graph over the simulator's live state (``POST /providers/Microsoft.ResourceGraph/resources``).

Queries are evaluated for real by the project's KQL subset (wsam_tui.kql). A query outside the subset
gets ARG's error shape naming what is unsupported — never a silently wrong answer. Results are
snapshotted per query so that ``$skipToken`` pages are consistent, as ARG's are.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from .. import kql
from .server import ArmError, Ctx, Reply, Simulator, graph_quota_headers
from .state import ARG_TABLE_NAMES

SNAPSHOT_TTL_S = 600
MAX_SNAPSHOTS = 32


def _bad_request(sim: Simulator, ctx: Ctx, code: str, message: str) -> ArmError:
    ts = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return ArmError(
        400, "BadRequest",
        f"Please provide below info when asking for support: timestamp = {ts}, correlationId = {uuid.uuid4()}.",
        details=[
            {"code": "InvalidQuery", "message": "Query is invalid. Please refer to the documentation for the Azure Resource "
                                                "Graph service and fix the error before retrying."},
            {"code": code, "message": message},
        ],
    )


def _encode_token(snapshot_id: str, offset: int, top: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": snapshot_id, "o": offset, "t": top}).encode()).decode()


def _decode_token(token: str) -> tuple[str, int, int | None]:
    """(snapshot, offset, the page size of the request that issued it: a next page without $top keeps it)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data["s"]), int(data["o"]), (int(data["t"]) if data.get("t") is not None else None)
    except Exception:
        raise ArmError(400, "BadRequest", "The skip token is invalid or has expired.",
                       details=[{"code": "InvalidSkipToken", "message": "The $skipToken could not be decoded."}]) from None


def resources(sim: Simulator, ctx: Ctx) -> Reply:
    allowed, remaining, resets = sim.graph_quota.take(ctx.caller)
    quota = graph_quota_headers(remaining, resets)
    if not allowed:
        raise ArmError(429, "RateLimiting",
                       "Please provide below info when asking for support: the client has been throttled. "
                       f"Retry after {max(1, round(resets))} seconds.",
                       headers={**quota, "Retry-After": str(max(1, round(resets + 0.49)))})
    try:
        reply = _resources(sim, ctx)
    except ArmError as e:
        e.headers.update(quota)
        raise
    reply.headers.update(quota)
    return reply


def _resources(sim: Simulator, ctx: Ctx) -> Reply:
    body = ctx.body
    if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
        raise _bad_request(sim, ctx, "MissingQuery", "The request must contain a non-empty 'query'.")
    if body.get("facets"):
        raise _bad_request(sim, ctx, "FacetsNotSupported",
                           f"The simulator's Resource Graph does not compute facets ({len(body['facets'])} requested); "
                           "send the request without 'facets' and run each facet as a summarize query.")
    options = body.get("options") or {}
    top = options.get("$top", 100)
    skip = options.get("$skip", 0) or 0
    fmt = str(options.get("resultFormat") or "objectArray")
    if not isinstance(top, int) or not 1 <= top <= 1000:
        raise _bad_request(sim, ctx, "InvalidTop", "$top must be an integer between 1 and 1000.")
    if not isinstance(skip, int) or skip < 0:
        raise _bad_request(sim, ctx, "InvalidSkip", "$skip must be a non-negative integer.")
    if fmt not in ("objectArray", "table"):
        raise _bad_request(sim, ctx, "InvalidResultFormat", "resultFormat must be 'objectArray' or 'table'.")
    subs = body.get("subscriptions")
    if subs is not None:
        if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
            raise _bad_request(sim, ctx, "InvalidSubscriptions", "'subscriptions' must be a list of subscription ids.")
        denied = [s for s in subs if s.lower() in _graph_denied(sim) or s.lower() not in sim.state.subscriptions]
        if denied:
            raise ArmError(403, "AuthorizationFailed",
                           "The client does not have authorization to query the subscription(s) "
                           f"{', '.join(denied)} or they do not exist.",
                           details=[{"code": "NoAccessToSubscription", "message": s} for s in denied])
    else:
        subs = [s for s in sim.state.subscriptions if s not in _graph_denied(sim) and sim.state.tenant_reaches(s, ctx.tenant)]

    token = options.get("$skipToken")
    _expire_snapshots(sim)
    if token:
        snap_id, offset, token_top = _decode_token(str(token))
        if "$top" not in options and token_top is not None:
            top = token_top
        snap = sim.graph_snapshots.get(snap_id)
        if snap is None:
            raise ArmError(400, "BadRequest", "The skip token is invalid or has expired.",
                           details=[{"code": "InvalidSkipToken", "message": "The query snapshot has expired; run the query again."}])
        _, columns, rows = snap
    else:
        # Clients page in parallel with $skip: the same query over the same state is evaluated once.
        key = (body["query"], tuple(sorted(s.lower() for s in subs)), sim.state.version)
        cached = sim.graph_results.get(key)
        if cached is None:
            tables = {name: (lambda n=name: sim.state.arg_rows(n, subs)) for name in ARG_TABLE_NAMES}
            try:
                result = kql.run(body["query"], tables)
            except kql.KqlError as e:
                raise _bad_request(sim, ctx, e.code, str(e)) from None
            cached = (result.columns, result.rows)
            sim.graph_results[key] = cached
            while len(sim.graph_results) > MAX_SNAPSHOTS:
                del sim.graph_results[next(iter(sim.graph_results))]
        columns, rows = cached
        snap_id = str(uuid.uuid4())
        offset = skip
        if len(rows) > offset + top:
            sim.graph_snapshots[snap_id] = (time.monotonic(), columns, rows)
    page = rows[offset : offset + top]
    out: dict[str, Any] = {"totalRecords": len(rows), "count": len(page), "resultTruncated": "false"}
    if offset + top < len(rows):
        out["$skipToken"] = _encode_token(snap_id, offset + top, top)
    if fmt == "table":
        out["data"] = {"columns": [{"name": n, "type": t} for n, t in columns],
                       "rows": [[r.get(n) for n, _ in columns] for r in page]}
    else:
        out["data"] = page
    out["facets"] = []
    return Reply(200, out)


def _graph_denied(sim: Simulator) -> set[str]:
    """Subscriptions Resource Graph refuses: those ARM refuses too, and those only Resource Graph refuses
    (``simulation.access.graphDeniedSubscriptions``: ARM serves them; the case the console's ARM
    fallback is for)."""
    config = sim.state.config
    return config.denied_subscriptions | config.graph_denied_subscriptions


def _expire_snapshots(sim: Simulator) -> None:
    now = time.monotonic()
    for key, (t, _, _) in list(sim.graph_snapshots.items()):
        if now - t > SNAPSHOT_TTL_S:
            del sim.graph_snapshots[key]
    while len(sim.graph_snapshots) > MAX_SNAPSHOTS:
        del sim.graph_snapshots[next(iter(sim.graph_snapshots))]
