"""The console without Azure: an offline start shows the cache and its age; an unreachable endpoint keeps the
cached view, says so and retries on `r`; a damaged cache or an empty one starts with a clear word, not a crash."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.app_support import (
    console_session,
    fill_store,
    fixed_clock,
    loaded,
    make_app,
    refreshed,
    screen_text,
    wait_for,
)
from tests.fleetbuilder import scenario_fleet
from tests.test_inventory import SERVER_TYPES
from wsam_tui.inventory import ConnectOptions, Inventory
from wsam_tui.store.cache import Store
from wsam_tui.ui.app import HeaderBar, StatusLine

pytestmark = pytest.mark.asyncio

UNREACHABLE = "https://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once


def plain(widget) -> str:
    return str(widget.render())


def header(app) -> str:
    return plain(app.query_one(HeaderBar))


def status(app) -> str:
    return plain(app.query_one(StatusLine))


def small_fleet() -> dict:
    """The scenario fleet without its denied subscription: every source refreshes."""
    fleet = scenario_fleet()
    fleet["simulation"]["access"]["deniedSubscriptions"] = []
    return fleet


@pytest.fixture
async def filled(make_sim, tmp_path):
    """A store filled from a small fleet by a real refresh: (store dir, newest fetch time, the stopped simulator)."""
    running = make_sim(small_fleet(), throttle=False, graph_quota=False)
    store_dir = tmp_path / "store"
    newest = await fill_store(running, store_dir)
    running.stop()  # from here on nothing answers on its port
    return store_dir, newest, running


async def test_offline_start_shows_the_cache_and_its_age(filled):
    store_dir, newest, _ = filled
    app = make_app(console_session(store_dir, offline=True), clock=fixed_clock(newest))
    async with app.run_test(size=(200, 50)) as pilot:
        await loaded(pilot)
        assert app.total > 0 and app.table.row_count == app.total
        assert "OFFLINE (cache only)" in header(app)
        assert "data 5 min ago" in header(app)
        stamp = newest.strftime("%Y-%m-%d %H:%M UTC")
        assert f"as of {stamp} (5 min ago)" in status(app)
        text = screen_text(app)
        assert "web-00" in text and "fs-disconnected" in text
        # r offline: no refresh starts and nothing connects
        await pilot.press("r")
        await pilot.pause()
        assert not app.refreshing and not app.session.connected
        assert "OFFLINE (cache only)" in header(app)


async def test_unreachable_endpoint_keeps_the_cache_says_so_and_r_retries(filled, make_sim):
    store_dir, newest, _ = filled
    session = console_session(store_dir, endpoint=UNREACHABLE)
    app = make_app(session, clock=fixed_clock(newest), refresh_on_start=True)
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await loaded(pilot)
        cached = app.total
        await wait_for(pilot, lambda: app.connection_problem is not None and not app.busy, 30, "the failed refresh")
        assert "ARM unreachable" in header(app)
        assert "showing the cache; r retries" in status(app)
        assert app.table.row_count == cached > 0  # the cached view stays
        assert "Cannot reach Azure" in screen_text(app)  # the notification's title

        # ARM is back (a new simulator on the same fleet, one server more): r refreshes from it
        fleet = small_fleet()
        extra = next(r for r in fleet["resources"] if r["name"] == "web-00")
        fleet["resources"].append({**extra, "id": extra["id"].replace("web-00", "web-new"), "name": "web-new"})
        running = make_sim(fleet, throttle=False, graph_quota=False)
        session.options = ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path))
        await pilot.press("r")
        await refreshed(pilot)
        assert app.connection_problem is None
        assert "ARM unreachable" not in header(app) and "online" in header(app)
        assert app.total == cached + 1 and any(s.name == "web-new" for s in app.servers)


async def test_stopped_simulator_is_unreachable_not_a_crash(filled):
    store_dir, newest, stopped = filled
    app = make_app(console_session(store_dir, stopped), clock=fixed_clock(newest), refresh_on_start=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: app.connection_problem is not None and not app.busy, 30, "the failed refresh")
        assert "ARM unreachable" in header(app)
        assert app.table.row_count == app.total > 0


async def test_corrupt_cache_starts_with_a_notice_and_an_empty_table(filled):
    store_dir, newest, _ = filled
    (store_dir / "cache.db").write_bytes(b"this is not an SQLite database \x00\xff" * 512)
    app = make_app(console_session(store_dir, offline=True), clock=fixed_clock(newest))
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await loaded(pilot)
        assert app.total == 0 and app.table.row_count == 0
        text = screen_text(app)
        assert "The local cache was damaged" in text
        assert "The cache is empty" in text
        assert "OFFLINE" in header(app)
    # nothing is lost: the damaged files were set aside beside the new cache
    aside = [p for p in Path(store_dir).parent.iterdir() if p.name.startswith("store.corrupt-")]
    assert aside and (aside[0] / "cache.db").read_bytes().startswith(b"this is not an SQLite database")


async def test_empty_cache_offline_says_so(tmp_path):
    app = make_app(console_session(tmp_path / "empty", offline=True))
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot)
        text = screen_text(app)
        assert "The cache is empty. Run once online" in text
        assert "no data yet" in header(app)
        assert "0 shown · 0 marked · 0 total" in header(app)
        assert "as of never" in status(app)



async def test_damaged_value_files_show_what_could_be_read_and_say_what_could_not(make_sim, tmp_path):
    from wsam_tui.sim.fleetgen import generate_fleet

    running = make_sim(generate_fleet(size=150, seed=5), throttle=False, graph_quota=False)
    store_dir = tmp_path / "store"
    newest = await fill_store(running, store_dir)  # big enough that chunks live in value files
    running.stop()
    before = Inventory(Store(store_dir)).load()
    damaged = [p for p in store_dir.rglob("*.val")
               if str(pickle.loads(p.read_bytes())[0].get("type")).lower() not in SERVER_TYPES]
    assert damaged
    for path in damaged:
        path.write_bytes(b"not a pickle \x00\xff" * 10)
    app = make_app(console_session(store_dir, offline=True), clock=fixed_clock(newest))
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await loaded(pilot)
        assert app.total == len(before.servers) > 0, "the servers' own rows were readable"
        text = screen_text(app)
        assert "cannot be read" in text and "Loading the fleet" not in text
        assert any("cannot be read" in (cell.unknown_reason or "") for s in app.servers
                   for cell in s.capabilities.values())


async def test_a_load_that_fails_says_so_in_the_table_instead_of_loading_forever(filled, monkeypatch):
    store_dir, newest, _ = filled
    session = console_session(store_dir, offline=True)

    def unreadable():
        raise EOFError("Ran out of input")

    monkeypatch.setattr(session, "load", unreadable)
    app = make_app(session, clock=fixed_clock(newest))
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await wait_for(pilot, lambda: not app.busy, 30, "the load to end")
        await pilot.pause()
        text = screen_text(app)
        assert "Cannot read the local cache" in text and "Ran out of input" in text
        assert "Loading the fleet" not in text
