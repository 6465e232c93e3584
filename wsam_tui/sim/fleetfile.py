"""Reading, checking and writing fleet files (`wsam-fleet/1`, docs/fleet-format.md).

`load_fleet` is plain `json.load` plus one linear validation pass, so a 50,000-server file loads in
seconds. `dump_fleet` writes compact UTF-8 JSON that reads back byte-exact: every string, including
control characters, NULs, bidi marks and even lone surrogates (escaped as ``\\udXXX``, the only
form UTF-8 JSON allows), comes back equal.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

FORMAT = "wsam-fleet/1"
TOP_LEVEL_KEYS = ("format", "generator", "tenants", "subscriptions", "resources", "simulation")
SIMULATION_KEYS = ("defaults", "machines", "access")
SIMULATION_MACHINE_KEYS = ("runCommandOutput", "failExtensionTypes", "availablePatches", "guest", "publicIpAddress")
SUBSCRIPTION_LIST_ACCESS_KEYS = ("deniedSubscriptions", "graphDeniedSubscriptions")
# tokensPerTenant: a subscription's requests must carry a token of its tenant (server.TENANT_TOKEN_PREFIX)
SIMULATION_ACCESS_KEYS = (*SUBSCRIPTION_LIST_ACCESS_KEYS, "tokensPerTenant")
MACHINE_TYPES = ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")
_MACHINE_MARKERS = ("/providers/microsoft.compute/virtualmachines/", "/providers/microsoft.hybridcompute/machines/")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHUNK = 2000  # resources per json.dumps call when writing


class FleetFileError(ValueError):
    """A fleet file that cannot be served: says which file, which resource and what is wrong."""

    def __init__(self, message: str, *, source: str = "<fleet>", index: int | None = None,
                 resource_id: str | None = None) -> None:
        where = source
        if index is not None:
            where += f": resources[{index}]"
            if resource_id is not None:
                where += f" (id {resource_id!r})"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.index = index
        self.resource_id = resource_id
        self.problem = message


# ---- loading -------------------------------------------------------------------------------------


def load_fleet(path_or_file: str | os.PathLike[str] | IO[str] | IO[bytes]) -> dict:
    """Read and validate a fleet file (a path or an open file); raise FleetFileError if it is not one."""
    if isinstance(path_or_file, str | os.PathLike):
        source = os.fspath(path_or_file)
        try:
            with open(source, encoding="utf-8-sig") as f:
                doc = json.load(f)
        except json.JSONDecodeError as e:
            raise FleetFileError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", source=source) from e
        except UnicodeDecodeError as e:
            raise FleetFileError(f"not UTF-8 text: {e.reason} at byte {e.start}", source=source) from e
        except OSError as e:
            raise FleetFileError(f"cannot read: {e.strerror or e}", source=source) from e
    else:
        source = str(getattr(path_or_file, "name", "<stream>"))
        try:
            data = path_or_file.read()
            if isinstance(data, bytes):
                data = data.decode("utf-8-sig")
            elif data.startswith("\ufeff"):
                data = data[1:]
            doc = json.loads(data)
        except json.JSONDecodeError as e:
            raise FleetFileError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", source=source) from e
        except UnicodeDecodeError as e:
            raise FleetFileError(f"not UTF-8 text: {e.reason} at byte {e.start}", source=source) from e
    return validate_fleet(doc, source=source)


def _machine_parent(lid: str) -> str | None:
    """For a lower-case id below a VM or Arc machine, the machine's lower-case id; else None."""
    for marker in _MACHINE_MARKERS:
        i = lid.find(marker)
        if i >= 0:
            start = i + len(marker)
            end = lid.find("/", start)
            if end < 0 or end == len(lid) - 1:
                return None  # the machine itself
            return lid[:end]
    return None


def validate_fleet(doc: Any, *, source: str = "<fleet>") -> dict:
    """Check a fleet document against docs/fleet-format.md; return it unchanged or raise FleetFileError."""

    def fail(msg: str, index: int | None = None, rid: str | None = None) -> FleetFileError:
        return FleetFileError(msg, source=source, index=index, resource_id=rid)

    if not isinstance(doc, dict):
        raise fail(f"the top level must be a JSON object, not {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise fail(f"format must be {FORMAT!r}, got {fmt!r}" if "format" in doc else f"missing \"format\": {FORMAT!r}")
    unknown = [k for k in doc if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise fail(f"unknown top-level key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    gen = doc.get("generator")
    if gen is not None and not isinstance(gen, dict):
        raise fail("generator must be an object")

    tenants = doc.get("tenants", [])
    if not isinstance(tenants, list):
        raise fail("tenants must be a list")
    tenant_ids: set[str] = set()
    for i, t in enumerate(tenants):
        if not isinstance(t, dict) or not isinstance(t.get("tenantId"), str):
            raise fail(f"tenants[{i}] must be an object with a string tenantId")
        tenant_ids.add(t["tenantId"].lower())

    subs = doc.get("subscriptions")
    if not isinstance(subs, list):
        raise fail("subscriptions must be a list" if "subscriptions" in doc else "missing \"subscriptions\" (a list)")
    sub_ids: set[str] = set()
    for i, s in enumerate(subs):
        if not isinstance(s, dict) or not isinstance(s.get("subscriptionId"), str):
            raise fail(f"subscriptions[{i}] must be an object with a string subscriptionId")
        sid = s["subscriptionId"].lower()
        if sid in sub_ids:
            raise fail(f"subscriptions[{i}]: subscription {s['subscriptionId']} is listed twice")
        sub_ids.add(sid)
        tid = s.get("tenantId")
        if not isinstance(tid, str):
            raise fail(f"subscriptions[{i}] ({s['subscriptionId']}): missing string tenantId")
        if tenants and tid.lower() not in tenant_ids:
            raise fail(f"subscriptions[{i}] ({s['subscriptionId']}): tenant {tid} is not listed in tenants")

    resources = doc.get("resources")
    if not isinstance(resources, list):
        raise fail("resources must be a list" if "resources" in doc else "missing \"resources\" (a list)")
    seen: dict[str, int] = {}
    machines: set[str] = set()
    for i, r in enumerate(resources):
        if not isinstance(r, dict):
            raise fail(f"must be a JSON object, not {type(r).__name__}", i)
        rid = r.get("id")
        if not isinstance(rid, str) or not rid:
            raise fail("missing id (a non-empty string)" if rid is None else f"id must be a non-empty string, not {rid!r}", i)
        for key in ("name", "type"):
            if not isinstance(r.get(key), str):
                raise fail(f"missing {key} (a string)" if key not in r else f"{key} must be a string, not {r[key]!r}", i, rid)
        lid = rid.lower()
        if lid in seen:
            raise fail(f"duplicate id: same as resources[{seen[lid]}] (ids compare case-insensitively)", i, rid)
        seen[lid] = i
        if not lid.startswith("/subscriptions/"):
            raise fail("id must start with /subscriptions/{subscriptionId}/", i, rid)
        sub = lid[15:].split("/", 1)[0]
        if sub not in sub_ids:
            raise fail(f"subscription {rid[15:15 + len(sub)]} is not listed in subscriptions", i, rid)
        if r["type"].lower() in MACHINE_TYPES:
            machines.add(lid)
    for i, r in enumerate(resources):
        parent = _machine_parent(r["id"].lower())
        if parent is not None and parent not in machines:
            raise fail(f"its machine {r['id'][:len(parent)]} is not in the fleet (no VM or Arc machine with that id)",
                       i, r["id"])

    sim = doc.get("simulation")
    if sim is not None:
        _validate_simulation(sim, machines, fail)
    return doc


def _validate_simulation(sim: Any, machines: set[str], fail) -> None:
    if not isinstance(sim, dict):
        raise fail("simulation must be an object")
    unknown = [k for k in sim if k not in SIMULATION_KEYS]
    if unknown:
        raise fail(f"simulation: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(SIMULATION_KEYS)}")
    if "defaults" in sim and not isinstance(sim["defaults"], dict):
        raise fail("simulation.defaults must be an object")
    if "access" in sim:
        access = sim["access"]
        if not isinstance(access, dict):
            raise fail("simulation.access must be an object")
        bad = [k for k in access if k not in SIMULATION_ACCESS_KEYS]
        if bad:
            raise fail(f"simulation.access: unknown key(s) {', '.join(map(repr, bad))}; "
                       f"allowed: {', '.join(SIMULATION_ACCESS_KEYS)}")
        if not isinstance(access.get("tokensPerTenant", False), bool):
            raise fail("simulation.access.tokensPerTenant must be true or false")
        for key in SUBSCRIPTION_LIST_ACCESS_KEYS:
            value = access.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
                raise fail(f"simulation.access.{key} must be a list of subscription ids")
    entries = sim.get("machines", {})
    if not isinstance(entries, dict):
        raise fail("simulation.machines must be an object keyed by machine id")
    for mid, entry in entries.items():
        if mid.lower() not in machines:
            raise fail(f"simulation.machines[{mid!r}]: no VM or Arc machine with that id in resources")
        if not isinstance(entry, dict):
            raise fail(f"simulation.machines[{mid!r}] must be an object")
        bad = [k for k in entry if k not in SIMULATION_MACHINE_KEYS and not k.startswith("_")]
        if bad:
            raise fail(f"simulation.machines[{mid!r}]: unknown key(s) {', '.join(map(repr, bad))}; "
                       f"allowed: {', '.join(SIMULATION_MACHINE_KEYS)}")
        fe = entry.get("failExtensionTypes")
        if fe is not None and not (isinstance(fe, list) and all(isinstance(x, str) for x in fe)):
            raise fail(f"simulation.machines[{mid!r}].failExtensionTypes must be a list of strings")
        ap = entry.get("availablePatches")
        if ap is not None and not (isinstance(ap, list) and all(isinstance(x, dict) for x in ap)):
            raise fail(f"simulation.machines[{mid!r}].availablePatches must be a list of objects")
        pip = entry.get("publicIpAddress")
        if pip is not None and not (pip is False or (isinstance(pip, str) and pip)):
            raise fail(f"simulation.machines[{mid!r}].publicIpAddress must be an address or false")
        for key in ("guest", "runCommandOutput"):
            if key in entry and not isinstance(entry[key], dict):
                raise fail(f"simulation.machines[{mid!r}].{key} must be an object")


# ---- writing -------------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _utf8(text: str) -> bytes:
    """UTF-8 bytes of JSON text; a lone surrogate (only possible inside a string) becomes its \\u escape."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def iter_json_chunks(items: Iterable[tuple[str, Any]]) -> Iterator[bytes]:
    """The compact JSON of an object given as (key, value) pairs, in pieces.

    A value that is a list or an iterator (not a dict or str) is written element by element in
    chunks, so that a fleet of 100,000 servers is never one string in memory. The bytes are exactly
    those of ``json.dumps(dict(items), ensure_ascii=False, separators=(",", ":"))``, UTF-8 encoded.
    """
    first = True
    for key, value in items:
        yield _utf8(("{" if first else ",") + _dumps(key) + ":")
        first = False
        if isinstance(value, list) or (isinstance(value, Iterator) and not isinstance(value, Mapping)):
            yield b"["
            buf: list = []
            wrote = False
            for item in value:
                buf.append(item)
                if len(buf) >= _CHUNK:
                    yield _utf8(("," if wrote else "") + _dumps(buf)[1:-1])
                    wrote, buf = True, []
            if buf:
                yield _utf8(("," if wrote else "") + _dumps(buf)[1:-1])
            yield b"]"
        else:
            yield _utf8(_dumps(value))
    yield b"{}" if first else b"}"
    yield b"\n"


def write_chunks(chunks: Iterable[bytes], path_or_file: str | os.PathLike[str] | IO[bytes] | IO[str]) -> None:
    """Write to a path atomically (temp file + rename) or to an open file (binary or text)."""
    if isinstance(path_or_file, str | os.PathLike):
        path = Path(path_or_file)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return
    f = path_or_file
    text = isinstance(f, io.TextIOBase)
    for chunk in chunks:
        f.write(chunk.decode("utf-8") if text else chunk)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def dump_fleet(doc: dict, path: str | os.PathLike[str] | IO[bytes] | IO[str]) -> None:
    """Write a fleet as compact UTF-8 JSON (one line, then a newline); `load_fleet` reads it back equal."""
    write_chunks(iter_json_chunks(doc.items()), path)
