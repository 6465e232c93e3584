"""A plan: what an action will send to each server, which servers it skips and why, and the az equivalent.

Nothing is sent while planning. The plan's bodies carry ``<hidden>`` where secrets go, so a plan can be
shown, printed, journaled and audited as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..fleet.model import Server
from .catalog import Action, ActionError, Call, Target, action, pairs, split_secrets

CONFIRM_THRESHOLD = 10  # more targets than this: the operator types the count


@dataclass(frozen=True)
class PlannedTarget:
    target: Target
    params: dict[str, Any]  # the job's parameters with this server's additions; secrets as names only
    call: Call  # secrets shown as <hidden>
    az: str
    protected: bool = False  # in a protected subscription


@dataclass(frozen=True)
class SkippedTarget:
    target: Target
    reason: str


@dataclass(frozen=True)
class Plan:
    id: str  # also the job id, and part of deterministic resource names (Run Command)
    action: str
    title: str
    params: dict[str, Any]  # secrets as names only
    targets: tuple[PlannedTarget, ...]
    skipped: tuple[SkippedTarget, ...]
    confirm_required: bool  # typed confirmation: above the threshold or in a protected subscription
    confirm_text: str  # what to type
    readonly: bool
    secret_names: tuple[str, ...] = ()  # which secret parameters the job needs at dispatch (values never kept)
    notes: tuple[str, ...] = field(default_factory=tuple)
    blocks: tuple[tuple[str, str], ...] = ()  # multi-line parameters shown line for line: (title, text)

    @property
    def az_commands(self) -> list[str]:
        return [t.az for t in self.targets]

    def skipped_by_reason(self) -> dict[str, list[SkippedTarget]]:
        groups: dict[str, list[SkippedTarget]] = {}
        for s in self.skipped:
            groups.setdefault(s.reason, []).append(s)
        return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))

    def confirmed_by(self, typed: str) -> bool:
        return not self.confirm_required or typed.strip() == self.confirm_text


def new_plan_id() -> str:
    return uuid.uuid4().hex[:12]


def plan(action_id: str, params: Mapping[str, Any], servers: Sequence[Server], *, readonly: bool = False,
         protected_subscriptions: Collection[str] = (), readonly_subscriptions: Collection[str] = (),
         subscription_names: Mapping[str, str] | None = None, threshold: int = CONFIRM_THRESHOLD,
         plan_id: str | None = None) -> Plan:
    """Plan ``action_id`` with ``params`` on ``servers``. Raises ActionError for bad parameters.

    ``protected_subscriptions`` and ``readonly_subscriptions`` hold ids or display names (``subscription_names``
    maps id -> name). Read-only mode skips every target; a read-only subscription skips its targets; a
    protected one requires the typed confirmation."""
    act: Action = action(action_id)
    pid = plan_id or new_plan_id()
    raw = dict(params)
    if act.id == "run-command":
        raw.setdefault("run_name", f"wsam-{pid}")
    full = act.validate(raw)
    public, _secrets = split_secrets(act, full)
    names = {k.lower(): v.lower() for k, v in (subscription_names or {}).items()}

    def in_set(sub: str, chosen: Collection[str]) -> bool:
        keys = {c.lower() for c in chosen}
        return sub.lower() in keys or names.get(sub.lower(), "\0") in keys

    targets: list[PlannedTarget] = []
    skipped: list[SkippedTarget] = []
    seen: set[str] = set()
    planned_servers: list[Server] = []
    for server in servers:
        if server.id.lower() in seen:
            continue
        seen.add(server.id.lower())
        target = Target.of(server)
        if readonly:
            skipped.append(SkippedTarget(target, "read-only mode"))
            continue
        if in_set(server.subscription_id, readonly_subscriptions):
            skipped.append(SkippedTarget(target, "read-only scope (subscription is read-only)"))
            continue
        reason = act.skip_reason(server, full)
        if reason:
            skipped.append(SkippedTarget(target, reason))
            continue
        planned_servers.append(server)
        per_target = act.target_params(server, public)
        targets.append(PlannedTarget(target, per_target, act.request(target, per_target), act.az(target, per_target),
                                     protected=in_set(server.subscription_id, protected_subscriptions)))
    protected = any(t.protected for t in targets)
    notes = []
    if protected:
        notes.append("some targets are in a protected subscription")
    notes += act.notes(planned_servers, full)
    return Plan(
        id=pid, action=act.id, title=act.describe(full), params=public, targets=tuple(targets), skipped=tuple(skipped),
        confirm_required=bool(targets) and (len(targets) > threshold or protected), confirm_text=str(len(targets)),
        readonly=readonly, secret_names=tuple(k for k in act.secret_params if full.get(k)), notes=tuple(notes),
        blocks=act.blocks(public),
    )


def secrets_for(action_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The secret parameters out of what the user gave (for the engine; never journaled)."""
    act = action(action_id)
    out: dict[str, Any] = {}
    for k in act.secret_params:
        value = params.get(k)
        if value:
            out[k] = dict(value) if isinstance(value, Mapping) else pairs(value, k.replace("_", " "))
    return out


__all__ = ["CONFIRM_THRESHOLD", "ActionError", "Plan", "PlannedTarget", "SkippedTarget", "plan", "secrets_for"]
