"""Helpers for the action engine's tests: a connection, the inventory's servers, an engine with private files."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.ops.audit import AuditLog
from wsam_tui.ops.engine import Engine
from wsam_tui.ops.journal import Journal
from wsam_tui.store.cache import Store

SECRET = "s3cr3t-Pa55w0rd-do-not-keep"


async def connection(running):
    return await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))


async def servers_of(conn, tmp_path: Path, name: str = "cache"):
    """The inventory's servers, refreshed from the simulator (as the console and the headless commands see them)."""
    store = Store(tmp_path / name)
    inventory = Inventory(store)
    await inventory.refresh(conn)
    servers = inventory.load().servers
    store.close()
    return {s.name: s for s in servers}


@contextlib.asynccontextmanager
async def filled_inventory(running, tmp_path: Path):
    """(connection, inventory on a store filled from the simulator, servers by name); closed on exit."""
    conn = await connection(running)
    store = Store(tmp_path / "cache")
    inventory = Inventory(store)
    await inventory.refresh(conn)
    try:
        yield conn, inventory, {s.name: s for s in inventory.load().servers}
    finally:
        store.close()
        await conn.close()


def make_engine(conn, tmp_path: Path, **kwargs) -> Engine:
    return Engine(conn.transport, journal=Journal(tmp_path / "state" / "jobs"),
                  audit=AuditLog(tmp_path / "state" / "audit.jsonl"), **kwargs)


def writes(running, since: int = 0) -> list[dict]:
    """The simulator's request log: every write (not a poll, a read or a query), in order."""
    reads = ("/providers/microsoft.resourcegraph/", "/providers/microsoft.policyinsights/", "/backupstatus")
    return [e for e in running.sim.log.entries[since:] if e["method"] in ("PUT", "PATCH", "POST", "DELETE")
            and not any(r in e["path"].lower() for r in reads)]


def files_under(path: Path):
    for root, dirs, files in os.walk(path):
        for d in dirs:
            yield Path(root, d)
        for f in files:
            yield Path(root, f)


def scan_for(path: Path, *needles: str) -> list[str]:
    """Every file under ``path`` that contains one of ``needles``."""
    hits = []
    for p in files_under(path):
        if p.is_file():
            text = p.read_bytes().decode("utf-8", "replace")
            hits += [f"{p}: {n}" for n in needles if n in text]
    return hits


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def bulk_fleet(n: int, *, arc_share: float = 0.5, disconnected: int = 0) -> dict:
    """The scenario fleet's tenant and subscriptions with ``n`` plain servers in subscription A (VMs and Arc)."""
    from tests.fleetbuilder import arc, scenario_fleet, vm

    fleet = scenario_fleet()
    n_arc = int(n * arc_share)
    resources = [vm(f"bulk-vm-{i:04d}") for i in range(n - n_arc)]
    resources += [arc(f"bulk-arc-{i:04d}", status="Disconnected" if i < disconnected else "Connected")
                  for i in range(n_arc)]
    fleet["resources"] = resources
    fleet["simulation"] = {}
    return fleet


def accepted_writes_by_path(running) -> dict[str, int]:
    """Writes the simulator accepted (2xx), counted per path: a count above 1 is a duplicate submission."""
    counts: dict[str, int] = {}
    for e in writes(running):
        if 200 <= e["status"] < 300:
            counts[e["path"].lower()] = counts.get(e["path"].lower(), 0) + 1
    return counts


def cli_env(tmp_path: Path) -> dict[str, str]:
    """Private state, config and cache dirs for a `wsam-tui` run."""
    return {"WSAM_STATE_DIR": str(tmp_path / "state"), "WSAM_CONFIG_DIR": str(tmp_path / "config"),
            "WSAM_CACHE_DIR": str(tmp_path / "cache")}
