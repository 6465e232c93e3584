"""Building the console against a simulator in tests: a store filled by a real refresh, a session on the
same code path as `wsam-tui --endpoint URL --ca-bundle PEM`, and a clock fixed relative to the data
(so that ages read the same in every run and snapshots are stable)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.segment import Segment

from wsam_tui.config import Settings
from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.session import FleetSession, SessionInfo
from wsam_tui.store.cache import Store
from wsam_tui.ui.app import WsamApp


async def fill_store(running, store_dir: Path, *, allow_failures: bool = False) -> datetime:
    """Refresh the simulator's fleet into a store; returns the fetch time of the newest source."""
    conn = await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))
    store = Store(store_dir)
    try:
        report = await Inventory(store).refresh(conn)
        assert allow_failures or not report.failures, report.failures[:3]
        snapshot = Inventory(store).load()
    finally:
        await conn.close()
        store.close()
    assert snapshot.newest is not None
    return snapshot.newest


def console_session(store_dir: Path, running=None, *, offline: bool = False, readonly: bool = False,
                    subscriptions: Sequence[str] = (), source: str = "simulator",
                    endpoint: str | None = None) -> FleetSession:
    """A session as `wsam-tui --endpoint … --ca-bundle …` (or --offline) builds it."""
    options = None
    if not offline:
        if endpoint is not None:
            options = ConnectOptions(endpoint=endpoint)
        else:
            options = ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path))
    store = Store(store_dir)
    # as console.py does: what happened to the store on opening (a damaged cache set aside) is told at start
    info = SessionInfo(source=source, offline=offline, readonly=readonly, subscriptions=tuple(subscriptions),
                       notices=list(store.notices))
    return FleetSession(Inventory(store), options, info)


class PinnedSession(FleetSession):
    """A session that derives the snapshot at a fixed time: detectors compare dates with now (stale patch
    assessments, agent heartbeats), so pictures of the console would otherwise drift from day to day."""

    def __init__(self, inventory: Inventory, options: ConnectOptions | None, info: SessionInfo,
                 derive_at: datetime) -> None:
        super().__init__(inventory, options, info)
        self.derive_at = derive_at

    def load(self):
        return self.inventory.load(self.info.subscriptions, now=self.derive_at)


def pinned_session(store_dir: Path, derive_at: datetime, **kwargs) -> FleetSession:
    """``console_session(store_dir, **kwargs)`` whose snapshot is derived at ``derive_at``."""
    plain = console_session(store_dir, **kwargs)
    return PinnedSession(plain.inventory, plain.options, plain.info, derive_at)


def pin_fetch_times(store_dir: Path, when: datetime) -> None:
    """Rewrite every source's fetch time to ``when`` (the rows stay), so that "as of" stamps read the same
    in every run."""
    store = Store(store_dir)
    try:
        for m in store.manifests():
            if m.fetched_at is not None:
                store.put_rows(m.subscription, m.source, store.rows_of(m), tenant=m.tenant, fetched_at=when)
    finally:
        store.close()


def make_app(session: FleetSession, *, clock: datetime | None = None, theme: str | None = None,
             refresh_on_start: bool = False, settings: Settings | None = None, user_themes: Path | None = None
             ) -> WsamApp:
    now: Callable[[], datetime] | None = (lambda: clock) if clock is not None else None
    return WsamApp(session, settings or Settings(), theme=theme, now=now, refresh_on_start=refresh_on_start,
                   user_themes=user_themes or Path("/nonexistent-wsam-test-themes"))


def fixed_clock(newest: datetime) -> datetime:
    """Five minutes after the data was fetched: ages read "5m" / "5 min ago" in every run."""
    return newest + timedelta(minutes=5)


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
    await pilot.pause()


async def loaded(pilot, timeout: float = 30.0) -> None:
    """Until the snapshot is derived and indexed (the filter works)."""
    await wait_for(pilot, lambda: pilot.app.index is not None, timeout, "the snapshot to load")


async def refreshed(pilot, timeout: float = 60.0) -> None:
    """Until a refresh has finished and its snapshot is shown."""
    app = pilot.app
    await wait_for(pilot, lambda: app.last_refresh is not None and not app.busy, timeout, "the refresh")


def _screen_render(app):
    return app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)


def screen_text(app) -> str:
    """The whole screen as plain text, as the user reads it (toasts and modal screens included)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      record=True, legacy_windows=False, safe_box=False)
    console.print(_screen_render(app))
    return console.export_text()


def screen_segments(app) -> list[Segment]:
    """The text segments of the whole screen (cursor moves left out): what the driver writes verbatim."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, legacy_windows=False)
    return [seg for seg in console.render(_screen_render(app)) if not seg.control]


def notices(app) -> list[str]:
    """The text of every notification the app raised (shown or not)."""
    return [f"{n.title} {n.message}" for n in app._notifications]
