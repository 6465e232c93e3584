"""What every route handler needs: the subscription and group checks, ARM's NotFound, list paging."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from .server import ArmError, Ctx, Reply, Simulator


def check_subscription(sim: Simulator, sub: str, action: str = "read") -> dict:
    state = sim.state
    if sub.lower() in state.config.denied_subscriptions:
        raise ArmError(
            403, "AuthorizationFailed",
            f"The client does not have authorization to perform action '{action}' over scope '/subscriptions/{sub}' "
            "or the scope is invalid. If access was recently granted, please refresh your credentials.",
        )
    doc = state.subscriptions.get(sub.lower())
    if doc is None:
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
    return doc


def check_resource_group(sim: Simulator, sub: str, rg: str) -> None:
    check_subscription(sim, sub)
    if rg.lower() not in sim.state.resource_groups.get(sub.lower(), {}):
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def not_found(rtype: str, name: str, rg: str) -> ArmError:
    return ArmError(
        404, "ResourceNotFound",
        f"The Resource '{rtype}/{name}' under resource group '{rg}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def page(sim: Simulator, ctx: Ctx, items: list, render=lambda d: d, size: int | None = None) -> Reply:
    """ARM list paging with an absolute nextLink on our own origin that carries api-version."""
    size = size or sim.state.config.page_size
    try:
        offset = int(ctx.q("$skiptoken", "0") or 0)
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", "The skip token is not valid.") from None
    chunk = items[offset : offset + size]
    body: dict[str, Any] = {"value": [render(d) for d in chunk]}
    if offset + size < len(items):
        params = {k: v for k, v in ctx.query.items() if k not in ("api-version", "$skiptoken")}
        params["$skiptoken"] = str(offset + size)
        body["nextLink"] = ctx.url(ctx.path, **params)
    return Reply(200, body)


def stable_guid(*parts: str) -> str:
    """A GUID that is the same for the same parts, run after run (ids the simulator mints)."""
    return str(uuid.UUID(bytes=hashlib.sha256("|".join(parts).encode()).digest()[:16], version=4))
