"""The console's service: one fleet session (where the data comes from, and the calls the UI may ask for).

The UI never talks to ARM or the store itself; it asks this object. ARM I/O runs on a private asyncio
loop in its own thread, so that parsing a Resource Graph page or writing the store never holds up the
UI's event loop; the UI awaits the results through ``asyncio.wrap_future``. Callbacks (progress,
throttling events) are called on that thread: the UI hands in thread-safe ones (``App.call_from_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .arm.common import ArmConnectionError, ArmHttpError, CredentialError, EndpointError, TransportEvent
from .fleet.model import clean_text
from .inventory import Connection, ConnectOptions, Inventory, RefreshReport, Snapshot, connect
from .ops.journal import JobRecord, Journal

if TYPE_CHECKING:
    from .arm.graph import Progress
    from .ops.engine import Engine, JobEvent

T = TypeVar("T")


class ConnectFailed(Exception):
    """ARM could not be reached or no credential worked: the console stays on the cache and says why."""


class _ServiceLoop:
    """An asyncio loop in a daemon thread, for every ARM call of the session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wsam-arm", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


@dataclass
class SessionInfo:
    """What the header says about where the data comes from."""

    source: str  # "Azure (AzureCloud)", "demo fleet (simulator)", "https://host:port", "cache only"
    offline: bool  # started with --offline: never connects
    readonly: bool
    subscriptions: Sequence[str] = ()
    notices: list[str] = field(default_factory=list)


class FleetSession:
    def __init__(self, inventory: Inventory, options: ConnectOptions | None, info: SessionInfo) -> None:
        self.inventory = inventory
        self.options = options
        self.info = info
        self.on_event: Callable[[TransportEvent], None] | None = None
        self._conn: Connection | None = None
        self._loop: _ServiceLoop | None = None
        self.closers: list[Callable[[], None]] = []  # e.g. stopping an embedded simulator
        self.derive_in_child = True
        self.on_job_event: Callable[[JobEvent], None] | None = None  # called on the ARM loop's thread
        self.journal = Journal()  # the jobs of this user (the headless commands read the same files)
        self._engine: Engine | None = None

    @property
    def offline(self) -> bool:
        return self.info.offline or self.options is None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    # ---- the store ----------------------------------------------------------------------------

    def load(self) -> Snapshot:
        """The last known state from the store (blocking: call it from a thread worker).

        Derived in a short-lived child process: deriving reads every raw document of the store (at 50,000
        servers, gigabytes of small objects passing through), and in this process that would leave the
        heap fragmented at several times the size of what is kept; the child hands back only the compact
        table records (a pickle), and its memory goes when it exits. It also keeps the CPU-bound
        derivation off the interpreter that draws the UI. If the child cannot run, the load happens here."""
        inv = self.inventory
        if not self.derive_in_child:
            return inv.load(self.info.subscriptions)
        request = json.dumps({"store": str(inv.store.directory), "subscriptions": list(self.info.subscriptions),
                              "required_tags": list(inv.required_tags), "stale_after_days": inv.stale_after_days})
        try:
            child = subprocess.run([sys.executable, "-m", "wsam_tui.derive", request], capture_output=True,
                                   check=False, timeout=1800)
            if child.returncode != 0:
                last = child.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
                raise OSError(clean_text(last[0] if last else f"exit code {child.returncode}", limit=200))
            snapshot = pickle.loads(child.stdout)
            if not isinstance(snapshot, Snapshot):
                raise OSError("unexpected answer")
            return snapshot
        except (OSError, subprocess.SubprocessError, pickle.UnpicklingError, EOFError) as e:
            self.derive_in_child = False
            snapshot = inv.load(self.info.subscriptions)
            snapshot.notices.append(f"Deriving the fleet in a helper process failed ({e}); derived in the "
                                    "console's process instead (uses more memory)")
            return snapshot

    # ---- ARM ----------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        if self._loop is None:
            self._loop = _ServiceLoop()
        return asyncio.wrap_future(self._loop.submit(coro))

    async def _connection(self) -> Connection:
        if self.offline:
            raise ConnectFailed("offline: started with --offline")
        if self._conn is None:
            assert self.options is not None
            self.options.on_event = self._event
            try:
                self._conn = await connect(self.options)
            except (EndpointError, CredentialError, ValueError, OSError) as e:
                raise ConnectFailed(str(e)) from e
        return self._conn

    def _event(self, event: TransportEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def refresh(self, progress: Progress | None = None) -> RefreshReport:
        """Every source of every subscription in scope into the store (raises ConnectFailed)."""

        async def go() -> RefreshReport:
            conn = await self._connection()
            try:
                return await self.inventory.refresh(conn, self.info.subscriptions, progress=progress)
            except CredentialError as e:
                raise ConnectFailed(str(e)) from e
            except ArmConnectionError as e:
                raise ConnectFailed(f"ARM unreachable: {e.describe()}") from e
            except ArmHttpError as e:
                raise ConnectFailed(f"cannot list subscriptions: {e.describe()}") from e

        return await self._run(go())

    async def call(self, work: Callable[[Connection], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(connection)`` on the ARM loop (details, :kql, actions)."""

        async def go() -> T:
            return await work(await self._connection())

        return await self._run(go())

    async def engine(self) -> Engine:
        """The action engine of this session: one, created on the ARM loop with the connection's transport,
        so its buckets and semaphores live where its requests run. Its events go to ``on_job_event``.
        Raises ConnectFailed (offline, or ARM unreachable)."""

        async def go() -> Engine:
            from .ops.engine import Engine  # httpx: loaded when the first action runs, not at start

            conn = await self._connection()
            if self._engine is None:
                self._engine = Engine(conn.transport, journal=self.journal, readonly=self.info.readonly,
                                      on_event=self._job_event)
            return self._engine

        return await self._run(go())

    async def with_engine(self, work: Callable[[Engine], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(engine)`` on the ARM loop (run, resume, retry a job; the engine is not thread-safe)."""
        engine = await self.engine()
        return await self._run(work(engine))

    def live_job(self, job_id: str) -> JobRecord | None:
        """A job this session's engine drives or drove (its record as the engine updates it), else None."""
        return self._engine.live(job_id) if self._engine is not None else None

    def _job_event(self, event: JobEvent) -> None:
        if self.on_job_event is not None:
            self.on_job_event(event)

    def close(self) -> None:
        if self._loop is not None:
            if self._conn is not None:
                with contextlib.suppress(Exception):  # closing on the way out: nothing left to tell anyone
                    self._loop.submit(self._conn.close()).result(timeout=5)
            self._loop.stop()
            self._loop = None
        self._conn = None
        self._engine = None
        for close in self.closers:
            close()
        self.closers.clear()
        self.inventory.store.close()
