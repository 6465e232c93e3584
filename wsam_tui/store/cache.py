"""The local store: raw Resource Graph / ARM rows with their fetch time, per subscription and source.

Raw, not derived: server records and capability states are computed from these rows when loaded, so
a newer console re-reads an older cache correctly. diskcache (SQLite) with one entry per chunk of at
most ``CHUNK`` rows (one big pickle blocked the event loop 0.8 s; sdk-integration.md §8), files 0600
in a 0700 directory, safe for two consoles sharing it, and a damaged database is set aside and rebuilt.

A source's rows are written chunk by chunk as they arrive (``SourceWriter``: a Resource Graph page at a
time, so a refresh never holds a whole source in memory), under a fresh generation; its manifest,
written last, switches readers to the new generation at once, and only then are the old chunks
deleted. A refresh that fails or stops midway leaves the previous rows readable.

A value that cannot be read (a damaged or missing value file: unpickling fails, the file is truncated)
costs only its own (subscription, source): it reads as failed, with the reason in ``damaged`` and a
notice, and the next refresh of that source replaces it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import diskcache

# Bump when the row shapes of wsam_tui/arm/graph.py or the keys below change: a cache of an older
# format is cleared on open, with a notice (2: chunks under a generation named by the manifest).
SCHEMA = 2
FORMAT_KEY = ("format",)
CHUNK = 1000
HARD_EXPIRE_S = 30 * 24 * 3600  # the last known state stays browsable offline for a month

T = TypeVar("T")
_UNREADABLE = object()  # what ``Store._get`` returns for a value that cannot be read


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@dataclass(frozen=True)
class Manifest:
    subscription: str
    source: str
    tenant: str
    fetched_at: datetime | None
    chunks: int
    count: int
    error: str | None = None
    error_at: datetime | None = None
    generation: str = ""
    positions: tuple[int, ...] = ()  # the chunks of ``generation``, in row order


def _ts(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat() if dt else None


def _dt(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class Store:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.notices: list[str] = []  # what happened to the store that the user must be told
        self.damaged: dict[tuple[str, str], str] = {}  # (subscription, source) -> why its rows cannot be read
        self._cache: diskcache.Cache | None = None
        self.epoch = 0  # counts rebuilds: a writer that began before one has lost its chunks
        self._open()

    # ---- opening, recovery ------------------------------------------------------------------------

    def _open(self) -> None:
        with private_umask():
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            try:
                self._cache = diskcache.Cache(str(self.directory), timeout=60, size_limit=8 * 1024**3)
                self._check_format(self._cache)  # damage can surface only on use
            except sqlite3.DatabaseError as e:
                self._recover(e)

    def _check_format(self, cache: diskcache.Cache) -> None:
        found = cache.get(FORMAT_KEY)
        if found == SCHEMA:
            return
        if isinstance(found, int) and found > SCHEMA:
            self.notices.append(f"The local cache was written by a newer wsam-tui (format {found}); "
                                "this version keeps its own entries beside it.")
            return
        if len(cache):
            cache.clear()
            self.notices.append(f"The local cache was written by an older wsam-tui (format {found or 1}); "
                                "it was cleared and will fill again on the next refresh.")
        cache.set(FORMAT_KEY, SCHEMA)

    def _recover(self, error: Exception) -> None:
        if self._cache is not None:
            with contextlib.suppress(Exception):
                self._cache.close()
        aside = self.directory.with_name(f"{self.directory.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            self.directory.rename(aside)
            where = f"set aside at {aside}"
        except OSError:
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)
            where = "removed"
        self.notices.append(f"The local cache was damaged ({error}); it was {where} and rebuilt. "
                            "It will fill again on the next refresh.")
        self.epoch += 1
        with private_umask():
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            self._cache = diskcache.Cache(str(self.directory), timeout=60, size_limit=8 * 1024**3)
            self._cache.set(FORMAT_KEY, SCHEMA)

    def _safe(self, fn: Callable[[diskcache.Cache], T], default: T) -> T:
        assert self._cache is not None
        try:
            with private_umask():
                return fn(self._cache)
        except sqlite3.DatabaseError as e:
            self._recover(e)
            return default

    def _get(self, cache: diskcache.Cache, key: tuple, default: Any = None) -> Any:
        """The value of ``key``, or ``_UNREADABLE`` (noted) when its bytes cannot be read back."""
        try:
            return cache.get(key, default)
        except sqlite3.DatabaseError:
            raise  # the database itself: ``_safe`` sets it aside whole
        except Exception as e:  # unpickling damaged bytes can raise nearly anything (EOFError, ValueError, …)
            self._note_damage(key, f"{type(e).__name__}: {e}")
            return _UNREADABLE

    def _note_damage(self, key: tuple, why: str) -> None:
        if key[0] in ("manifest", "rows"):
            sub, source = key[2], key[3]
            if (sub, source) in self.damaged:
                return
            self.damaged[(sub, source)] = f"the local cache's copy cannot be read ({why}); the next refresh replaces it"
            self.notices.append(f"The local cache's {source} rows of subscription {sub} cannot be read ({why}); "
                                "they are shown as unknown until the next refresh replaces them.")
        else:
            self.notices.append(f"The local cache's {key[-1]} entry cannot be read ({why}); "
                                "it is left out until the next refresh replaces it.")

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # ---- writing ----------------------------------------------------------------------------------

    def begin_rows(self, subscription: str, source: str, *, tenant: str = "") -> SourceWriter:
        """Start replacing one (subscription, source); see ``SourceWriter``."""
        return SourceWriter(self, subscription.lower(), source, tenant)

    def put_rows(self, subscription: str, source: str, rows: list[dict], *, tenant: str = "",
                 fetched_at: datetime | None = None) -> None:
        """Replace one (subscription, source) with fresh rows: chunks first, the manifest last."""
        writer = self.begin_rows(subscription, source, tenant=tenant)
        for position, start in enumerate(range(0, len(rows), CHUNK)):
            writer.add(position, rows[start : start + CHUNK])
        writer.commit(fetched_at=fetched_at)

    def put_error(self, subscription: str, source: str, error: str, *, tenant: str = "") -> None:
        """Record that a refresh failed; rows from an earlier success stay, so the last known state is kept."""
        sub = subscription.lower()

        def write(cache: diskcache.Cache) -> None:
            with cache.transact():
                key = _manifest_key(sub, source)
                found = self._get(cache, key)
                manifest = dict(found if isinstance(found, dict) else
                                {"tenant": tenant, "fetchedAt": None, "positions": [], "count": 0})
                manifest.update({"error": error, "errorAt": _ts(datetime.now(UTC))})
                cache.set(key, manifest, expire=HARD_EXPIRE_S, tag=sub)

        self._safe(write, None)

    def put_meta(self, name: str, value: Any) -> None:
        self._safe(lambda c: c.set(("meta", SCHEMA, name), value, expire=HARD_EXPIRE_S), None)

    # ---- reading ----------------------------------------------------------------------------------

    def get_meta(self, name: str, default: Any = None) -> Any:
        found = self._safe(lambda c: self._get(c, ("meta", SCHEMA, name), default), default)
        return default if found is _UNREADABLE else found

    def manifests(self, subscriptions: Iterable[str] | None = None) -> list[Manifest]:
        wanted = {s.lower() for s in subscriptions} if subscriptions is not None else None

        def read(cache: diskcache.Cache) -> list[Manifest]:
            out = []
            for key in cache.iterkeys():
                if not (isinstance(key, tuple) and len(key) == 4 and key[0] == "manifest" and key[1] == SCHEMA):
                    continue
                if wanted is not None and key[2] not in wanted:
                    continue
                m = self._get(cache, key)
                if m is _UNREADABLE:
                    m = {"error": self.damaged[(key[2], key[3])]}
                if not isinstance(m, dict):
                    continue
                positions = _positions(m)
                out.append(Manifest(subscription=key[2], source=key[3], tenant=str(m.get("tenant") or ""),
                                    fetched_at=_dt(m.get("fetchedAt")), chunks=len(positions),
                                    count=int(m.get("count") or 0), error=m.get("error"), error_at=_dt(m.get("errorAt")),
                                    generation=str(m.get("generation") or ""), positions=positions))
            return out

        return self._safe(read, [])

    def rows(self, subscription: str, source: str, chunks: int | None = None) -> list[dict]:
        """The current rows of one (subscription, source). ``chunks``, a count read from a ``Manifest``,
        is accepted for callers written before generations and not needed: the manifest names its chunks."""
        sub = subscription.lower()
        manifest = self._safe(lambda c: self._get(c, _manifest_key(sub, source)), None)
        if not isinstance(manifest, dict):
            return []
        generation = str(manifest.get("generation") or "")
        found = self._read_chunks(sub, source, generation, _positions(manifest))
        if found is None:  # a chunk of the current generation is gone: damaged, not replaced
            self._note_damage(_manifest_key(sub, source), f"chunks of generation {generation} are missing")
        return found or []

    def rows_of(self, manifest: Manifest) -> list[dict]:
        """The rows a manifest names; if another console replaced them since it was read, the current rows.
        No rows when they cannot be read, with the reason in ``damaged``."""
        found = self._read_chunks(manifest.subscription, manifest.source, manifest.generation, manifest.positions)
        return self.rows(manifest.subscription, manifest.source) if found is None else found

    def _read_chunks(self, sub: str, source: str, generation: str, positions: Iterable[int]) -> list[dict] | None:
        """None when a chunk is missing (its generation was replaced meanwhile); [] when one is unreadable
        (noted in ``damaged``: a part of a source's rows would change its cells without a word)."""

        def read(cache: diskcache.Cache) -> Any:
            out: list[dict] = []
            for position in positions:
                chunk = self._get(cache, _chunk_key(sub, source, generation, position))
                if chunk is _UNREADABLE or chunk is None:
                    return chunk
                if isinstance(chunk, list):
                    out.extend(r for r in chunk if isinstance(r, dict))
            return out

        found = self._safe(read, [])
        if found is _UNREADABLE:
            return []
        if found is not None:
            self.damaged.pop((sub, source), None)  # read whole (replaced since it was found damaged)
        return found

    def files(self) -> list[Path]:
        return [p for p in self.directory.rglob("*") if p.is_file()]


def _manifest_key(sub: str, source: str) -> tuple:
    return ("manifest", SCHEMA, sub, source)


def _chunk_key(sub: str, source: str, generation: str, position: int) -> tuple:
    return ("rows", SCHEMA, sub, source, generation, position)


def _positions(manifest: dict) -> tuple[int, ...]:
    positions = manifest.get("positions")
    if not isinstance(positions, list):
        return ()
    return tuple(p for p in positions if isinstance(p, int))


class SourceWriter:
    """Fresh rows of one (subscription, source), written chunk by chunk as they arrive, under a new
    generation that readers do not see until ``commit()`` writes the manifest naming it. ``discard()``
    (a failed or cancelled refresh) deletes what was written; the previous rows were never touched."""

    def __init__(self, store: Store, subscription: str, source: str, tenant: str) -> None:
        self.store, self.subscription, self.source, self.tenant = store, subscription, source, tenant
        self.generation = uuid.uuid4().hex
        self.count = 0
        self._positions: list[int] = []
        self._epoch = store.epoch
        self._done = False

    def add(self, position: int, rows: list[dict]) -> None:
        """One chunk (at most ``CHUNK`` rows); ``position`` orders chunks, which may arrive in any order."""
        if self._done:
            raise RuntimeError("this writer has already committed or discarded its rows")
        if not rows:
            return
        key = _chunk_key(self.subscription, self.source, self.generation, position)
        self.store._safe(lambda c: c.set(key, rows, expire=HARD_EXPIRE_S, tag=self.subscription), None)
        self._positions.append(position)
        self.count += len(rows)

    def commit(self, *, fetched_at: datetime | None = None) -> None:
        """Switch readers to the rows written, then delete the generation they replace."""
        self._done = True
        if self.store.epoch != self._epoch:
            return  # the store was rebuilt meanwhile and the chunks went with it: keep the source unknown
        key = _manifest_key(self.subscription, self.source)
        manifest = {"tenant": self.tenant, "fetchedAt": _ts(fetched_at or datetime.now(UTC)), "generation": self.generation,
                    "positions": sorted(self._positions), "count": self.count, "error": None, "errorAt": None}

        def write(cache: diskcache.Cache) -> None:
            with cache.transact():
                old = self.store._get(cache, key)
                cache.set(key, manifest, expire=HARD_EXPIRE_S, tag=self.subscription)
            self.store.damaged.pop((self.subscription, self.source), None)
            if isinstance(old, dict):
                for position in _positions(old):
                    cache.delete(_chunk_key(self.subscription, self.source, str(old.get("generation") or ""), position))

        self.store._safe(write, None)

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        keys = [_chunk_key(self.subscription, self.source, self.generation, p) for p in self._positions]

        def delete(cache: diskcache.Cache) -> None:
            for key in keys:
                cache.delete(key)

        self.store._safe(delete, None)


def default_store_dir() -> Path:
    from ..config import cache_dir

    return cache_dir() / "store"
