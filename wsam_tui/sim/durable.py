"""A simulator whose state outlives its process, as ARM outlives the console that talks to it.

The directory holds two files (0600, in a 0700 directory):

* ``state.json`` — what the state was built from: the fleet's identity and the time the fleet was rebased
  to. Every restart rebases the fleet to that same time, so the servers' ages do not jump.
* ``changes.jsonl`` — every change since, one line per request that changed something: the documents it
  wrote or deleted, the operations it started or ended, the simulation entries of the machines involved.
  The line is appended and fsynced *before* the response leaves (``flush``), so a write that was answered
  survives SIGKILL. Replaying the lines in order over the rebased fleet gives the state back; operations
  in flight complete at their due time, since they are completed by time, not by a thread.

Only what changed is written (a 320-server fleet is 4 MB; one extension PUT is a few KB). The file is
compacted on open. Secrets are not in it: the simulator never stores protected settings or parameters.
A damaged directory is set aside (renamed, nothing deleted) with a notice, and the fleet starts afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from . import actions  # noqa: F401  (registers the operations' completions that replayed operations name)
from .state import Operation, SimConfig, SimState, iso, machine_id_of, parse_iso, utcnow

FORMAT = 1
STATE_FILE, CHANGES_FILE, LOCK_FILE, ENDPOINT_FILE = "state.json", "changes.jsonl", "lock", "endpoint.json"
COMPACT_AFTER = 200  # lines; compaction merges them into one on open
FORGET_DONE_AFTER = 3600.0  # seconds: ended operations older than this are dropped when compacting


class DamagedState(ValueError):
    """The directory's files cannot be read back as a state."""


class DurableState:
    """Opens (or creates) the state in ``directory``; ``flush()`` after every request writes what changed."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.notices: list[str] = []
        self.state: SimState | None = None
        self.writable = False
        self._changes: IO[str] | None = None
        self._lock: IO[bytes] | None = None

    # ---- opening ----------------------------------------------------------------------------------

    def open(self, load_fleet: Callable[[], dict], *, fleet_id: str, config: SimConfig | None = None,
             reset: bool = False, clock: Callable[[], float] = time.time) -> SimState:
        """The state as last saved (or a fresh one from ``load_fleet()`` rebased to now). ``reset``: forget
        the saved state first. When another process holds the directory, the saved state is served but
        nothing is written (a notice says so)."""
        _private_dir(self.directory)
        self.writable = self._take_lock()
        if not self.writable:
            self.notices.append(f"Another process is serving the simulator state in {self.directory}; this one "
                                "serves a copy and keeps none of its changes.")
        elif reset:
            for name in (STATE_FILE, CHANGES_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / name).unlink()
        try:
            state = self._load(load_fleet, fleet_id, config, clock)
        except DamagedState as e:
            aside = self._set_aside() if self.writable else None
            where = f" (set aside as {aside})" if aside else ""
            self.notices.append(f"The simulator's saved state could not be read: {e}{where}. Starting afresh.")
            state = self._fresh(load_fleet, fleet_id, config, clock)
        state.track_changes()
        self.state = state
        if self.writable:
            self._changes = _open_private(self.directory / CHANGES_FILE, "a")
        return state

    def _load(self, load_fleet, fleet_id: str, config: SimConfig | None, clock) -> SimState:
        header_path = self.directory / STATE_FILE
        if not header_path.exists():
            return self._fresh(load_fleet, fleet_id, config, clock)
        try:
            header = json.loads(header_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DamagedState(f"{STATE_FILE}: {e}") from None
        rebased = parse_iso(header.get("rebasedTo", "")) if isinstance(header, dict) else None
        if not isinstance(header, dict) or header.get("format") != FORMAT or rebased is None:
            raise DamagedState(f"{STATE_FILE} is not a state of this version")
        if header.get("fleet") != fleet_id:
            raise DamagedState(f"it was made from another fleet ({str(header.get('fleet'))[:80]!r})")
        records = self._read_changes()
        state = SimState(load_fleet(), config=config, now=rebased, clock=clock, take_ownership=True)
        try:
            for record in records:
                apply_record(state, record)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DamagedState(f"{CHANGES_FILE}: {type(e).__name__}: {e}") from None
        if self.writable and len(records) > COMPACT_AFTER:
            self._compact(state, records)
        return state

    def _fresh(self, load_fleet, fleet_id: str, config: SimConfig | None, clock) -> SimState:
        now = utcnow()
        state = SimState(load_fleet(), config=config, now=now, clock=clock, take_ownership=True)
        if self.writable:
            _write_atomic(self.directory / CHANGES_FILE, "")
            _write_atomic(self.directory / STATE_FILE,
                          json.dumps({"format": FORMAT, "fleet": fleet_id, "rebasedTo": iso(now)}) + "\n")
        return state

    def _read_changes(self) -> list[dict]:
        path = self.directory / CHANGES_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as e:
            raise DamagedState(f"{CHANGES_FILE}: {e}") from None
        lines = text.split("\n")
        records = []
        for n, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                if n == len(lines) and self.writable:
                    # the last line without its newline: a write cut by a kill, never answered — drop it
                    _write_atomic(path, "".join(line + "\n" for line in lines[:-1] if line))
                    break
                raise DamagedState(f"{CHANGES_FILE} line {n}: {e}") from None
            records.append(record)
        return records

    def _compact(self, state: SimState, records: list[dict]) -> None:
        """Rewrite the changes as one line: every document the lines touched, as it is now."""
        touched: set[str] = set()
        for record in records:
            touched.update(d["id"].lower() for d in record.get("docs", []))
            touched.update(record.get("deleted", []))
        now = state.clock()
        ops = {oid for oid, op in state.operations.items() if not (op.done and op.ended and now - op.ended > FORGET_DONE_AFTER)}
        merged = change_record(state, touched, ops)
        _write_atomic(self.directory / CHANGES_FILE, json.dumps(merged, ensure_ascii=False) + "\n")

    def _set_aside(self) -> str | None:
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        moved = []
        for name in (STATE_FILE, CHANGES_FILE):
            path = self.directory / name
            if path.exists():
                path.rename(path.with_name(f"{name}.damaged-{stamp}"))
                moved.append(name)
        return f"*.damaged-{stamp} in {self.directory}" if moved else None

    def _take_lock(self) -> bool:
        fh = _open_private(self.directory / LOCK_FILE, "ab")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._lock = fh
        return True

    # ---- the port ---------------------------------------------------------------------------------

    def saved_port(self) -> int:
        """The port the last process served on (0: none). Operation URLs that a client keeps (the job
        journal's poll URLs) name it, and real ARM does not move: serve there again when it is free."""
        try:
            port = json.loads((self.directory / ENDPOINT_FILE).read_text(encoding="utf-8")).get("port")
        except (OSError, ValueError, AttributeError):
            return 0
        return port if isinstance(port, int) and 1024 <= port <= 65535 else 0

    def save_port(self, port: int) -> None:
        if self.writable:
            _write_atomic(self.directory / ENDPOINT_FILE, json.dumps({"port": port}) + "\n")

    # ---- writing ----------------------------------------------------------------------------------

    def flush(self, after_write: Callable[[], None] | None = None) -> int:
        """Append what changed since the last flush and fsync it; returns the bytes written (0: nothing, and
        ``after_write`` is not called). ``after_write`` runs once the line is in the OS's hands (it survives
        the process being killed from then on), before the fsync."""
        if self.state is None:
            return 0
        docs, ops = self.state.take_changes()
        if self._changes is None or not (docs or ops):
            return 0
        line = json.dumps(change_record(self.state, docs, ops), ensure_ascii=False) + "\n"
        try:
            self._changes.write(line)
            self._changes.flush()
            if after_write is not None:
                after_write()
            os.fsync(self._changes.fileno())
        except OSError:  # kept for the next flush; the request that changed them answers 500
            self.state.changed_docs = (self.state.changed_docs or set()) | docs
            self.state.changed_ops = (self.state.changed_ops or set()) | ops
            raise
        return len(line)

    def close(self) -> None:
        for fh in (self._changes, self._lock):
            if fh is not None:
                with contextlib.suppress(OSError):
                    fh.close()
        self._changes = self._lock = None


def change_record(state: SimState, doc_keys: set[str], op_ids: set[str]) -> dict[str, Any]:
    """One line of the changes file: the documents (or their deletion), the operations, and the simulation
    entries of every machine involved (patch lists, run command schedules, stashed agents)."""
    docs, deleted = [], []
    machines: set[str] = set()
    for key in sorted(doc_keys):
        doc = state.docs.get(key)
        if doc is None:
            deleted.append(key)
        else:
            docs.append(doc)
        if (machine := machine_id_of(key)) is not None:
            machines.add(machine.lower())
    ops = []
    for oid in sorted(op_ids):
        op = state.operations.get(oid)
        if op is not None:
            ops.append(op.to_json())
            if (machine := machine_id_of(op.target)) is not None:
                machines.add(machine.lower())
    sim_keys = (doc_keys | machines) & state.sim_machines.keys()
    return {
        "docs": docs, "deleted": deleted, "ops": ops,
        "sim": {k: state.sim_machines[k] for k in sorted(sim_keys)},
        "busy": {m: state.busy_until[m] for m in sorted(machines) if m in state.busy_until},
        "legacy": {m: state.legacy_run[m] for m in sorted(machines) if m in state.legacy_run},
    }


def apply_record(state: SimState, record: dict) -> None:
    for key in record.get("deleted", []):
        state.delete(key)
    for doc in record.get("docs", []):
        state.put(doc, _initial=True)
    state.sim_machines.update(record.get("sim", {}))
    state.busy_until.update(record.get("busy", {}))
    state.legacy_run.update(record.get("legacy", {}))
    for data in record.get("ops", []):
        op = Operation.from_json(data)
        state.operations[op.id] = op


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)


def _open_private(path: Path, mode: str) -> IO[Any]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
