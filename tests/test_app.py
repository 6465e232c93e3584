"""The console through Pilot: every binding and every `:` command, against the scenario fleet served by the
simulator (tests/fleetbuilder.py: 17 servers the credential can see in two subscriptions, one subscription
that refuses access)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess

import pytest
from textual import events

from tests.app_support import (
    console_session,
    fill_store,
    fixed_clock,
    loaded,
    make_app,
    notices,
    refreshed,
    screen_text,
    wait_for,
)
from tests.fleetbuilder import SUB_A, SUB_B, scenario_fleet
from wsam_tui.cli import main
from wsam_tui.config import Settings
from wsam_tui.fleet.model import Kind, State
from wsam_tui.fleet.query import COLUMNS
from wsam_tui.inventory import Inventory
from wsam_tui.store.cache import Store
from wsam_tui.ui.app import ACTIONS, ConfirmScreen, FleetScreen, WsamApp
from wsam_tui.ui.command import CommandLine
from wsam_tui.ui.details import DetailsPane
from wsam_tui.ui.help import HelpScreen
from wsam_tui.ui.jobs import JobsScreen
from wsam_tui.ui.kql_view import KqlResultScreen
from wsam_tui.ui.pickers import ScopePicker

SIZE = (200, 50)


@pytest.fixture
async def world(tmp_path, make_sim):
    """A running simulator, a store filled from it, and the clock five minutes after the fetch."""
    running = make_sim(scenario_fleet(), throttle=False, graph_quota=False)
    newest = await fill_store(running, tmp_path / "store", allow_failures=True)
    store = Store(tmp_path / "store")
    expected = Inventory(store).load()
    store.close()
    return running, tmp_path / "store", fixed_clock(newest), expected.servers


def app_for(world, **kwargs) -> WsamApp:
    running, store_dir, clock, _ = world
    session = console_session(store_dir, running, readonly=kwargs.pop("readonly", False),
                              offline=kwargs.pop("offline", False))
    return make_app(session, clock=clock, **kwargs)


def header(app: WsamApp) -> str:
    return str(app.query_one("#header").render())


def status(app: WsamApp) -> str:
    return str(app.query_one("#status").render())


def shown_names(app: WsamApp) -> list[str]:
    return [app.servers[i].name for i in app.table.view]


async def type_command(pilot, text: str) -> None:
    await pilot.press("colon", *text, "enter")
    await pilot.pause()


# ---- start, header ------------------------------------------------------------------------------


async def test_start_paints_the_cache_with_counts_scope_and_age(world):
    _, _, _, servers = world
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert app.total == len(servers) == 17
        assert sorted(shown_names(app)) == sorted(s.name for s in servers)
        text = header(app)
        assert "17 shown · 0 marked · 17 total" in text
        assert "1 tenant · 3 subscriptions" in text and "online" in text and "data 5 min ago" in text
        assert app.table.has_focus


async def test_readonly_says_so_in_the_header(world):
    app = app_for(world, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert "READ-ONLY" in header(app)


async def test_a_second_start_paints_the_saved_rows_before_deriving(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
    seen: list[int] = []
    tables: list = []

    class Watching(WsamApp):
        def _apply_rows(self, data, meta) -> None:
            super()._apply_rows(data, meta)
            seen.append(self.table.row_count)
            tables.append(data)

        def _apply_snapshot(self, snapshot, names, index, data, then_refresh) -> None:
            super()._apply_snapshot(snapshot, names, index, data, then_refresh)
            tables.append(data)

    running, store_dir, clock, _ = world
    again = Watching(console_session(store_dir, running), Settings(), now=lambda: clock, refresh_on_start=False)
    async with again.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert seen == [17]  # the last session's rows were on screen before the index existed
        assert again.total == 17
        assert tables[0] is tables[1]  # the store had not changed: the saved rows are kept, not built twice
        await pilot.press("r")
        await refreshed(pilot)
        assert tables[-1] is not tables[0]  # new data: rebuilt


# ---- filter ---------------------------------------------------------------------------------------


async def test_slash_filters_as_you_type_and_errors_stay_in_the_bar(world):
    _, _, _, servers = world
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"kind:arc")
        await pilot.pause()
        arcs = sorted(s.name for s in servers if s.kind is Kind.ARC)
        assert sorted(shown_names(app)) == arcs and app.shown == len(arcs) == 7
        await pilot.press(*" (")  # unbalanced: an error, the last good filter stays
        await pilot.pause()
        error = str(app.query_one("#filter-error").render())
        assert "column" in error and sorted(shown_names(app)) == arcs
        for _ in range(2):
            await pilot.press("backspace")
        await pilot.press("enter")
        await pilot.pause()
        assert app.table.has_focus and "filter: kind:arc" in header(app)
        assert str(app.query_one("#filter-error").render()) == ""


async def test_keys_typed_fast_after_slash_or_colon_go_to_the_bar_not_the_table(world):
    """A burst (fast typing, a paste, a slow SSH link delivering keys together): `a` must not mark all,
    `r` must not refresh, `:` inside the filter text must not open command mode."""
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for ch in "/kind:arc":
            app.post_message(events.Key({"/": "slash", ":": "colon"}.get(ch, ch), ch))
        await wait_for(pilot, lambda: app.shown == 7, what="the burst to reach the filter")
        assert app.screen.query_one("#filter-input").value == "kind:arc"
        assert app.marked == 0 and not app.refreshing
        await pilot.press("enter")
        for ch in ":theme wsam-light":
            app.post_message(events.Key({":": "colon", " ": "space", "-": "minus"}.get(ch, ch), ch))
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme == "wsam-light", what="the burst to reach the command line")
        assert app.query_text == "kind:arc"


def post_keys(app: WsamApp, text: str) -> None:
    """Keys arriving together, as fast typing, a paste or a slow SSH link deliver them (⏎ enter, ⎋ escape)."""
    names = {"/": "slash", ":": "colon", " ": "space", "-": "minus", "?": "question_mark", "|": "vertical_line",
             "⏎": "enter", "⎋": "escape"}
    for ch in text:
        app.post_message(events.Key(names.get(ch, ch), None if ch in "⏎⎋" else ch))


async def test_a_key_typed_right_after_enter_on_theme_is_not_lost(world):
    """`:theme NAME` enter and `?` in one burst, again and again: every time the theme switches and the help
    opens (the `?` used to land in the command line being closed and vanish), and the line keeps no `?`."""
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for round_, theme in enumerate(["wsam-light", "wsam-dark"] * 3):
            post_keys(app, f":theme {theme}⏎?")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, f"help in round {round_}")
            assert app.theme == theme
            post_keys(app, "⎋")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen) and app.table.has_focus, 5, "the table")
            assert "?" not in app.query_one(CommandLine).value
            assert app.marked == 0 and not app.gap_view


async def test_keys_typed_right_after_enter_or_escape_in_the_bars_reach_the_table(world):
    """After enter in the filter bar `a` marks what the filter shows; after escape `x` turns the gap view on;
    a command that does not parse keeps the keys typed after its enter."""
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        post_keys(app, "/kind:arc⏎a")
        await wait_for(pilot, lambda: app.marked == 7, 5, "a to mark the 7 Arc servers")
        assert app.query_text == "kind:arc" and app.table.has_focus
        post_keys(app, "/⎋x")
        await wait_for(pilot, lambda: app.gap_view, 5, "x to reach the table")
        assert app.query_text == "kind:arc"
        post_keys(app, ":thme⏎e")  # unknown command: the line stays open, the e goes in at the error (the start)
        await wait_for(pilot, lambda: app.query_one(CommandLine).value == "ethme", 5, "the e in the line")
        line = app.query_one(CommandLine)
        assert line.has_focus and line.has_class("-open")
        post_keys(app, "⎋u")
        await wait_for(pilot, lambda: app.marked == 0, 5, "u to clear the marks")
        assert not line.has_class("-open")


async def test_held_keys_go_on_after_a_second_if_the_bar_never_says_it_closed(world):
    """The safety net of the hold: a bar that neither closes nor refuses must not swallow the keyboard."""
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        app._hold_keys()  # as after enter in a bar; nothing will release it
        post_keys(app, "x")
        await pilot.pause(0.3)
        assert not app.gap_view  # held
        await wait_for(pilot, lambda: app.gap_view, 3, "the held x to go on")


async def test_escape_leaves_the_filter_bar_keeping_the_filter(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"web-0", "escape")
        await pilot.pause()
        assert app.table.has_focus and app.shown == 6


# ---- marks, sort, gaps ------------------------------------------------------------------------------


async def test_space_a_and_u_mark_and_marks_survive_filter_and_refresh(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        first = app.table.highlighted_id
        await pilot.press("space")
        await pilot.pause()
        assert app.table.marks == {first} and app.marked == 1 and "1 marked" in header(app)
        await pilot.press("slash", *"kind:arc", "enter", "a")
        await pilot.pause()
        assert app.marked == 1 + 7 and len(app.table.marks) == 8
        await pilot.press("r")
        await refreshed(pilot)
        assert len(app.table.marks) == 8 and app.shown == 7  # refresh: same marks, same filter
        await pilot.press("u")
        await pilot.pause()
        assert app.marked == 0 and not app.table.marks


async def test_s_sorts_by_the_next_column_and_S_reverses(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        await pilot.pause()
        assert app.index.sort_key == "kind"
        kinds = [app.servers[i].kind for i in app.table.view]
        assert kinds == sorted(kinds, key=lambda k: k.value)
        await pilot.press("S")
        await pilot.pause()
        assert app.index.descending
        assert [app.servers[i].kind for i in app.table.view] == sorted(kinds, key=lambda k: k.value, reverse=True)


def sort_arrow(app: WsamApp) -> tuple[int, str] | None:
    """Where the table's header draws the sort arrow (its column on screen), and which arrow."""
    for line in screen_text(app).splitlines()[:6]:
        found = re.search(r"[▲▼]", line)
        if found and "Name" in line:
            return found.start(), found.group()
    return None


@pytest.mark.parametrize("size", [(400, 30), (100, 30)])
async def test_s_sorts_by_each_column_left_to_right_as_drawn_and_the_header_shows_it(world, size):
    """s moves the sort one column to the right, as the columns are drawn, and back to Name after the last;
    the sorted column's header carries the arrow, in view even at 100 columns (the table scrolls to it)."""
    app = app_for(world)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        seen = []
        for _ in COLUMNS:  # every column once, the last press back to Name
            await pilot.press("s")
            await pilot.pause()
            arrow = sort_arrow(app)
            assert arrow is not None and arrow[1] == "▲", f"no arrow on screen sorting by {app.index.sort_key}"
            seen.append((arrow[0], app.index.sort_key))
        assert seen[-1][1] == "name" and len({key for _, key in seen}) == len(COLUMNS)
        if size == (400, 30):  # every column on screen: the arrow walks left to right
            xs = [x for x, _ in seen]
            assert xs[:-1] == sorted(xs[:-1]) and len(set(xs)) == len(xs) and xs[-1] < xs[0], seen
        await pilot.press("S")
        await pilot.pause()
        assert sort_arrow(app)[1] == "▼" and app.index.descending


async def test_x_toggles_the_gap_view(world):
    _, _, _, servers = world
    app = app_for(world)
    gaps = {s.name for s in servers
            if any(c.state in (State.OFF, State.PARTIAL) for c in s.capabilities.values())}
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert set(shown_names(app)) == gaps and "(gaps)" in header(app)
        await pilot.press("x")
        await pilot.pause()
        assert app.shown == 17


# ---- details -------------------------------------------------------------------------------------


async def test_d_opens_details_that_follow_the_cursor_and_enter_reads_arm(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        pane = app.query_one(DetailsPane)
        await pilot.press("d")
        first = app.by_id[app.table.highlighted_id].name
        await wait_for(pilot, lambda: first in pane.text and "from the cache" in pane.text, what="cached details")
        await pilot.press("j")
        second = app.by_id[app.table.highlighted_id].name
        await wait_for(pilot, lambda: pane.text.startswith(second), what="details to follow the cursor")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "fresh from ARM" in pane.text, what="fresh details")
        assert pane.has_focus
        await pilot.press("tab")
        assert app.table.has_focus
        await pilot.press("tab")
        assert pane.has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert not pane.has_class("-open") and app.table.has_focus


async def test_details_offline_come_from_the_cache(world):
    app = app_for(world, offline=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        pane = app.query_one(DetailsPane)
        await wait_for(pilot, lambda: "from the cache" in pane.text, what="cached details")
        assert "fresh from ARM" not in pane.text


async def test_the_cache_fallback_of_the_details_leaves_the_console_responsive(world, monkeypatch):
    """Offline (or when ARM fails) enter reads the cache; the first read of a big subscription indexes it for
    seconds. Keys typed meanwhile are handled at once: the read runs in a thread, not on the UI loop."""
    import threading

    from wsam_tui import depth

    released = threading.Event()
    gap_view_when_read_ended: list[bool] = []
    real = depth.cached_view

    def slow_cached_view(*args, **kwargs):
        released.wait(5)  # a slow first index; the test lets it end
        gap_view_when_read_ended.append(app.gap_view)
        return real(*args, **kwargs)

    monkeypatch.setattr(depth, "cached_view", slow_cached_view)
    app = app_for(world, offline=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        await pilot.press("x")  # the gap view, while the cache is being read
        await wait_for(pilot, lambda: app.gap_view, 2, "x to be handled during the read")
        released.set()
        pane = app.query_one(DetailsPane)
        await wait_for(pilot, lambda: pane.view is not None and "from the cache" in pane.text, what="cached details")
        assert gap_view_when_read_ended == [True]


# ---- refresh, quit -------------------------------------------------------------------------------


async def test_r_refreshes_and_reports_the_refused_subscription(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await refreshed(pilot)
        assert "refreshed" in status(app)
        assert any("Part of the fleet is unknown" in n and "403" in n for n in notices(app))


async def test_q_quits_at_once_when_idle(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app._exit_renderables is not None or not app.is_running or app.return_code is not None


async def test_q_asks_first_while_a_refresh_runs(tmp_path, make_sim):
    running = make_sim(scenario_fleet(), throttle=False, graph_quota=False, latency_ms=400)
    app = make_app(console_session(tmp_path / "store", running))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await pilot.pause()
        assert app.refreshing
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and app.return_code is None
        await pilot.press("q", "y")
        await pilot.pause()
        assert app.return_code == 0


# ---- help, keymap, palette ---------------------------------------------------------------------------


async def test_question_mark_lists_every_binding_with_its_action_id(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        for action in ACTIONS:
            assert action.id in text
        for table_action in ("servertable.cursor_down", "servertable.toggle_mark", "command_palette"):
            assert table_action in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_console_keys_leave_the_table_alone_behind_another_screen(world):
    """In the jobs pane or a :kql answer the table's keys do nothing to the table behind: `a` does not mark
    every server, `u` does not clear the marks, `x`, `s`, `d`, `/`, `:` change nothing. `?`, `J`, `q` work
    from any screen."""
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("space")  # one mark, which `u` behind the other screen must not clear
        await pilot.pause()
        for open_other in ("J", "colon"):
            if open_other == "J":
                await pilot.press("J")
                await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), what="the jobs pane")
            else:
                await type_command(pilot, "kql resources | count")
                await wait_for(pilot, lambda: isinstance(app.screen, KqlResultScreen), what="the :kql answer")
            other = app.screen
            if open_other == "J":  # (the :kql answer has its own key line, no footer)
                footer = screen_text(app).splitlines()[-1]
                assert "Mark shown" not in footer and "Gaps" not in footer and "? Help" in footer
            titles = {c.title for c in app.get_system_commands(other)}
            assert "Help" in titles and "Mark shown" not in titles and ":kql" not in titles
            await pilot.press("a", "u", "x", "s", "S", "d", "slash", "colon", "o")
            await pilot.pause()
            assert app.screen is other
            assert app.marked == 1 and not app.gap_view and app.index.sort_key == "name"
            assert not app.index.descending and app.shown == 17
            for bar in ("#filter", "#command-line", "#details"):
                assert not app.query_one(bar).has_class("-open"), bar
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help over the other screen")
            await pilot.press("escape", "escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen), what="the table again")
        footer = screen_text(app).splitlines()[-1]
        assert "Mark shown" in footer
        await pilot.press("a")
        await pilot.pause()
        assert app.marked == 17


async def test_keys_from_the_config_file_rebind_actions(world):
    app = app_for(world, settings=Settings(keys={"mark_all": "A", "gaps": "f6"}))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("a")
        await pilot.pause()
        assert app.marked == 0  # a no longer marks all
        await pilot.press("A")
        await pilot.pause()
        assert app.marked == 17
        await pilot.press("f6")
        await pilot.pause()
        assert app.gap_view
        rows = {action: keys for keys, action, _ in app.binding_rows()}
        assert rows["mark_all"] == "A" and rows["gaps"] == "f6"


async def test_the_command_palette_runs_console_actions(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+p", *"Gaps")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.gap_view, what="the palette to run the action")


# ---- : commands -----------------------------------------------------------------------------------


async def test_theme_command_switches_live_and_refuses_unknown_names(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_command(pilot, "theme wsam-light")
        assert app.theme == "wsam-light"
        await type_command(pilot, "theme no-such-theme")
        assert app.theme == "wsam-light"
        assert any("No theme 'no-such-theme'" in n for n in notices(app))


async def test_sort_gaps_filter_and_marks_commands(world):
    _, _, _, servers = world
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_command(pilot, "sort coverage desc")
        assert app.index.sort_key == "coverage" and app.index.descending
        await type_command(pilot, "filter kind:vm")
        assert app.shown == 10 and app.query_text == "kind:vm"
        await type_command(pilot, "marks all")
        assert app.marked == 10
        await type_command(pilot, "marks none")
        assert app.marked == 0
        await type_command(pilot, "gaps monitor")
        missing = {s.name for s in servers if s.capabilities["monitor"].state in (State.OFF, State.PARTIAL)}
        assert app.query_text == "missing:monitor" and set(shown_names(app)) == missing
        await type_command(pilot, "filter")
        await type_command(pilot, "gaps")
        assert app.gap_view


async def test_export_command_writes_the_servers_shown(world, tmp_path):
    app = app_for(world)
    target = tmp_path / "out.csv"
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_command(pilot, "filter kind:arc")
        await type_command(pilot, f"export csv {target}")
        await wait_for(pilot, lambda: any("Wrote" in n for n in notices(app)), what="the export (a worker)")
        rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert sorted(r["name"] for r in rows) == sorted(shown_names(app)) and len(rows) == 7
        await type_command(pilot, f"export xml {target}")
        assert any("Usage: :export" in n for n in notices(app))


async def cli_export(store_dir, fmt: str, path) -> None:
    argv = ["export", "--offline", "--cache-dir", str(store_dir), "-o", fmt, "-f", str(path)]
    assert await asyncio.to_thread(main, argv) == 0  # its own event loop, as from a shell


async def test_console_export_and_cli_export_write_the_same_file(world, tmp_path, monkeypatch):
    _, store_dir, _, servers = world
    monkeypatch.setenv("WSAM_CONFIG_DIR", str(tmp_path / "config"))
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for fmt in ("json", "csv", "md"):
            await type_command(pilot, f"export {fmt} {tmp_path / ('console.' + fmt)}")
            await wait_for(pilot, lambda fmt=fmt: any(f"console.{fmt}" in n for n in notices(app)), what="the export")
    for fmt in ("json", "csv", "md"):
        await cli_export(store_dir, fmt, tmp_path / f"cli.{fmt}")
        assert (tmp_path / f"console.{fmt}").read_text(encoding="utf-8") == (tmp_path / f"cli.{fmt}").read_text(
            encoding="utf-8"), fmt
    doc = json.loads((tmp_path / "console.json").read_text(encoding="utf-8"))
    cells = [c for s in doc["servers"] for c in s["capabilities"].values()]
    assert len(doc["servers"]) == len(servers)
    assert sum(1 for c in cells if c["evidence"]) > len(cells) // 2, "the console's JSON carries the evidence"


async def test_kql_command_online_offline_and_errors(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_command(pilot, "kql resources | where type =~ 'microsoft.hybridcompute/machines' | count")
        await wait_for(pilot, lambda: isinstance(app.screen, KqlResultScreen), what="the result screen")
        screen = app.screen
        assert screen.answer is not None and screen.answer.source == "Resource Graph"
        assert screen.answer.rows[0]["Count"] == 7
        await pilot.press("escape")
        await type_command(pilot, "kql resources | where")
        await wait_for(pilot, lambda: isinstance(app.screen, KqlResultScreen), what="the error screen")
        assert app.screen.error is not None
    offline = app_for(world, offline=True)
    async with offline.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_command(pilot, "kql resources | where type =~ 'microsoft.hybridcompute/machines' | count")
        await wait_for(pilot, lambda: isinstance(offline.screen, KqlResultScreen), what="the offline result")
        assert offline.screen.answer.source == "cache" and offline.screen.answer.rows[0]["Count"] == 7


async def test_subs_and_tenant_commands_change_the_scope(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_command(pilot, "subs")
        assert isinstance(app.screen, ScopePicker)
        app.screen.chosen = {r.key for r in app.screen.rows if r.key.lower() == SUB_B}
        await pilot.press("enter")
        await refreshed(pilot)
        assert app.session.info.subscriptions == (SUB_B,)
        assert app.total == 3 and {s.subscription_id for s in app.servers} == {SUB_B}
        await type_command(pilot, "tenant")
        assert isinstance(app.screen, ScopePicker) and app.screen.tenants
        await pilot.press("escape")
        await pilot.pause()
        assert app.session.info.subscriptions == (SUB_B,)
    assert SUB_A  # the scenario's other subscription stayed out of scope


def picker_rows(picker: ScopePicker) -> dict[str, bool]:
    """Each row's key, and whether it is ticked."""
    return {r.key: r.key in picker.chosen for r in picker.rows}


@pytest.mark.parametrize("offline", [False, True])
async def test_subs_brings_back_a_subscription_taken_out_of_scope(world, offline):
    """:subs lists every subscription known, the ones out of scope unticked: ticking one again brings its
    servers back (refreshed online, from the cache offline), without a restart."""
    app = app_for(world, offline=offline)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        everyone = {s.subscription_id for s in app.servers}
        assert everyone == {SUB_A, SUB_B}
        await type_command(pilot, "subs")
        app.screen.chosen = {SUB_B}
        await pilot.press("enter")
        await (loaded(pilot) if offline else refreshed(pilot))
        await wait_for(pilot, lambda: not app.busy and {s.subscription_id for s in app.servers} == {SUB_B},
                       what="the scope narrowed")
        await type_command(pilot, "subs")
        assert isinstance(app.screen, ScopePicker)
        rows = picker_rows(app.screen)
        assert rows[SUB_A] is False and rows[SUB_B] is True, rows
        await pilot.press("a")  # every row
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy and {s.subscription_id for s in app.servers} == everyone,
                       what="the servers of the subscription brought back")
        await type_command(pilot, "tenant")
        assert isinstance(app.screen, ScopePicker) and app.screen.tenants
        assert all(picker_rows(app.screen).values())
        await pilot.press("escape")
        await pilot.pause()
        await type_command(pilot, "subs")
        assert {k for k, ticked in picker_rows(app.screen).items() if ticked} >= {SUB_A, SUB_B}


async def test_refresh_help_and_quit_commands(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_command(pilot, "refresh")
        await refreshed(pilot)
        await type_command(pilot, "help")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await type_command(pilot, "q")  # a unique prefix, as in k9s
        assert app.return_code == 0


async def test_unknown_command_stays_in_the_line_with_a_suggestion(world):
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("colon", *"thme wsam-light", "enter")
        await pilot.pause()
        line = app.query_one(CommandLine)
        assert line.has_focus and line.error is not None and "theme" in str(line.error)
        await pilot.press("escape")
        await pilot.pause()
        assert app.table.has_focus


# ---- the derivation child -------------------------------------------------------------------------------


def test_the_snapshot_derived_in_a_child_equals_the_one_derived_here(world):
    running, store_dir, _, servers = world
    session = console_session(store_dir, running)
    child = session.load()
    session.derive_in_child = False
    here = session.load()
    session.close()
    assert [s.id for s in child.servers] == [s.id for s in here.servers] == [s.id for s in servers]
    assert [{k: c.state for k, c in s.capabilities.items()} for s in child.servers] == \
           [{k: c.state for k, c in s.capabilities.items()} for s in here.servers]


def test_a_failing_child_falls_back_with_a_notice(world, monkeypatch):
    running, store_dir, _, servers = world
    session = console_session(store_dir, running)

    def broken(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, b"", b"Traceback ...\nMemoryError\n")

    monkeypatch.setattr("wsam_tui.session.subprocess.run", broken)
    snapshot = session.load()
    session.close()
    assert len(snapshot.servers) == len(servers)
    assert any("helper process failed (MemoryError)" in n for n in snapshot.notices)
