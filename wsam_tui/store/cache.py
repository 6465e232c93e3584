"""The local store: raw Resource Graph / ARM rows with their fetch time, per subscription and source.

Raw, not derived: server records and capability states are computed from these rows when loaded, so
a newer console re-reads an older cache correctly. diskcache (SQLite) with one entry per chunk of at
most ``CHUNK`` rows (one big pickle blocked the event loop 0.8 s; sdk-integration.md §8), files 0600
in a 0700 directory, safe for two consoles sharing it, and a damaged database is set aside and rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import diskcache

SCHEMA = 1  # bump when the row shapes of wsam_tui/arm/graph.py change; older entries are then ignored
CHUNK = 1000
HARD_EXPIRE_S = 30 * 24 * 3600  # the last known state stays browsable offline for a month

T = TypeVar("T")


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
        self._cache: diskcache.Cache | None = None
        self._open()

    # ---- opening, recovery ------------------------------------------------------------------------

    def _open(self) -> None:
        with private_umask():
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            try:
                self._cache = diskcache.Cache(str(self.directory), timeout=60, size_limit=8 * 1024**3)
                self._cache.get(("probe",))  # damage can surface only on use
            except sqlite3.DatabaseError as e:
                self._recover(e)

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
        with private_umask():
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            self._cache = diskcache.Cache(str(self.directory), timeout=60, size_limit=8 * 1024**3)

    def _safe(self, fn: Callable[[diskcache.Cache], T], default: T) -> T:
        assert self._cache is not None
        try:
            with private_umask():
                return fn(self._cache)
        except sqlite3.DatabaseError as e:
            self._recover(e)
            return default

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # ---- writing ----------------------------------------------------------------------------------

    def put_rows(self, subscription: str, source: str, rows: list[dict], *, tenant: str = "",
                 fetched_at: datetime | None = None) -> None:
        """Replace one (subscription, source) with fresh rows: chunks first, the manifest last."""
        sub = subscription.lower()
        fetched_at = fetched_at or datetime.now(UTC)
        chunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)] or [[]]

        def write(cache: diskcache.Cache) -> None:
            old = cache.get(("manifest", SCHEMA, sub, source))
            for i, chunk in enumerate(chunks):
                cache.set(("rows", SCHEMA, sub, source, i), chunk, expire=HARD_EXPIRE_S, tag=sub)
            cache.set(("manifest", SCHEMA, sub, source), {
                "tenant": tenant, "fetchedAt": _ts(fetched_at), "chunks": len(chunks), "count": len(rows),
                "error": None, "errorAt": None}, expire=HARD_EXPIRE_S, tag=sub)
            for i in range(len(chunks), int((old or {}).get("chunks") or 0)):
                cache.delete(("rows", SCHEMA, sub, source, i))

        self._safe(write, None)

    def put_error(self, subscription: str, source: str, error: str, *, tenant: str = "") -> None:
        """Record that a refresh failed; rows from an earlier success stay, so the last known state is kept."""
        sub = subscription.lower()

        def write(cache: diskcache.Cache) -> None:
            manifest = dict(cache.get(("manifest", SCHEMA, sub, source)) or {"tenant": tenant, "fetchedAt": None, "chunks": 0, "count": 0})
            manifest.update({"error": error, "errorAt": _ts(datetime.now(UTC))})
            cache.set(("manifest", SCHEMA, sub, source), manifest, expire=HARD_EXPIRE_S, tag=sub)

        self._safe(write, None)

    def put_meta(self, name: str, value: Any) -> None:
        self._safe(lambda c: c.set(("meta", SCHEMA, name), value, expire=HARD_EXPIRE_S), None)

    # ---- reading ----------------------------------------------------------------------------------

    def get_meta(self, name: str, default: Any = None) -> Any:
        return self._safe(lambda c: c.get(("meta", SCHEMA, name), default), default)

    def manifests(self, subscriptions: Iterable[str] | None = None) -> list[Manifest]:
        wanted = {s.lower() for s in subscriptions} if subscriptions is not None else None

        def read(cache: diskcache.Cache) -> list[Manifest]:
            out = []
            for key in cache.iterkeys():
                if not (isinstance(key, tuple) and len(key) == 4 and key[0] == "manifest" and key[1] == SCHEMA):
                    continue
                if wanted is not None and key[2] not in wanted:
                    continue
                m = cache.get(key)
                if not isinstance(m, dict):
                    continue
                out.append(Manifest(subscription=key[2], source=key[3], tenant=str(m.get("tenant") or ""),
                                    fetched_at=_dt(m.get("fetchedAt")), chunks=int(m.get("chunks") or 0),
                                    count=int(m.get("count") or 0), error=m.get("error"), error_at=_dt(m.get("errorAt"))))
            return out

        return self._safe(read, [])

    def rows(self, subscription: str, source: str, chunks: int) -> list[dict]:
        sub = subscription.lower()

        def read(cache: diskcache.Cache) -> list[dict]:
            out: list[dict] = []
            for i in range(chunks):
                chunk = cache.get(("rows", SCHEMA, sub, source, i))
                if isinstance(chunk, list):
                    out.extend(r for r in chunk if isinstance(r, dict))
            return out

        return self._safe(read, [])

    def files(self) -> list[Path]:
        return [p for p in self.directory.rglob("*") if p.is_file()]


def default_store_dir() -> Path:
    from ..config import cache_dir

    return cache_dir() / "store"
