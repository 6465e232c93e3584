"""Pictures of the console's main screens on the demo fleet (pytest-textual-snapshot): the table, the filter
with an error in its bar, the : command line, the help screen, a :kql answer and the details pane — in the dark theme and in the
16-colour one, at 200x50, and the table with details at 100x30 and 300x80.

What could change between runs is pinned: the demo simulator serves the fleet's own dates (no rebasing to
today), every fetch time in the store is rewritten to one instant, the snapshot is derived and the console's
clock reads five minutes after it, the session is offline (the details pane comes from the cache), and the
filter's cursor does not blink. Regenerate with ``pytest tests/test_app_snapshots.py --snapshot-update`` and
look at the pictures before committing them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import Input

from tests.app_support import (
    fill_store,
    fixed_clock,
    loaded,
    make_app,
    pin_fetch_times,
    pinned_session,
    wait_for,
)
from wsam_tui.sim.run import create_simulator, demo_fleet, start_in_thread
from wsam_tui.ui.app import WsamApp

FETCHED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)  # the demo fleet is dated 2026-11-01
CLOCK = fixed_clock(FETCHED)
THEMES = ["wsam-dark", "wsam-ansi"]
KQL = "resources | summarize count() by type"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    """The demo fleet refreshed once into a store, with its fetch times pinned."""
    root = tmp_path_factory.mktemp("demo")
    running = start_in_thread(create_simulator(demo_fleet(), rebase_time=False, throttle=False, graph_quota=False),
                              ca_dir=root / "ca")
    try:
        asyncio.run(fill_store(running, root / "store"))
    finally:
        running.stop()
    pin_fetch_times(root / "store", FETCHED)
    return root / "store"


def console(store_dir: Path, theme: str) -> WsamApp:
    return make_app(pinned_session(store_dir, CLOCK, offline=True, source="demo fleet (simulator)"), clock=CLOCK,
                    theme=theme)


async def settled(pilot) -> None:
    """The snapshot indexed and drawn, the filter's cursor still."""
    await loaded(pilot)
    for field in pilot.app.screen.query(Input):  # (WsamApp.query is the filter, shadowing DOMNode.query)
        field.cursor_blink = False
    await pilot.pause()


async def filter_error(pilot) -> None:
    await settled(pilot)
    await pilot.press("slash", *'kind:arc "web')  # the bar keeps the last good filter (kind:arc) and says why
    await wait_for(pilot, lambda: "unclosed quote" in str(pilot.app.query_one("#filter-error").render()), 5,
                   "the filter's error")


async def command_line(pilot) -> None:
    await settled(pilot)
    await pilot.press("colon", *"kql res")
    await wait_for(pilot, lambda: pilot.app.focused is not None and pilot.app.focused.id == "command-line", 5,
                   "the command line")


async def help_screen(pilot) -> None:
    await settled(pilot)
    await pilot.press("question_mark")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen", 5, "the help screen")


async def kql_answer(pilot) -> None:
    await settled(pilot)
    await pilot.press("colon", *f"kql {KQL}", "enter")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "KqlResultScreen", 15, "the :kql answer")
    await pilot.pause()


async def details(pilot) -> None:
    from wsam_tui.ui.details import DetailsPane

    await settled(pilot)
    await pilot.press("down", "down", "enter")
    pane = pilot.app.query_one(DetailsPane)
    body = pane.query_one("#details-body")
    # The cache is read in a thread: wait for its view, then for the pane to be laid out with it.
    await wait_for(pilot, lambda: pane.view is not None and not pane.loading_line and "from the cache" in pane.text,
                   15, "the details from the cache")
    await wait_for(pilot, lambda: body.size.height > 40, 5, "the details laid out")
    await pilot.pause()


SCREENS = {"table": settled, "filter_error": filter_error, "command_line": command_line, "help": help_screen, "kql": kql_answer,
           "details": details}


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare, demo_store, screen, theme):
    assert snap_compare(console(demo_store, theme), terminal_size=(200, 50), run_before=SCREENS[screen])


def test_table_and_details_at_100x30(snap_compare, demo_store):
    assert snap_compare(console(demo_store, "wsam-dark"), terminal_size=(100, 30), run_before=details)


def test_table_and_details_at_300x80(snap_compare, demo_store):
    """The widest terminal issue 4 names: every column on screen beside the details pane."""
    assert snap_compare(console(demo_store, "wsam-dark"), terminal_size=(300, 80), run_before=details)
