"""The `:kql` answer screen (wsam_tui/ui/kql_view.py): title, source and age, rows as literal text, copy,
whole values, errors with a caret, closing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.text import Text
from textual.app import App
from textual.widgets import DataTable, Static

from wsam_tui.kql import KqlError
from wsam_tui.kqlquery import SOURCE_CACHE, SOURCE_GRAPH, KqlAnswer, run_offline
from wsam_tui.store.cache import Store
from wsam_tui.ui.kql_view import KqlErrorMessage, KqlResultScreen, cell_text

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOSTILE = "[@click=app.quit]srv[/]"
SUB = "00000000-0000-4000-8000-00000000000a"


def answer(**changes) -> KqlAnswer:
    fields = dict(
        columns=[("name", "string"), ("count_", "integer"), ("tags", "object"), ("ok", "boolean")],
        rows=[{"name": HOSTILE, "count_": 3, "tags": {"env": "prod", "k": [1, 2]}, "ok": True},
              {"name": "srv[/foo]", "count_": None, "tags": None, "ok": False}],
        source=SOURCE_CACHE, as_of=NOW - timedelta(minutes=14), truncated=False, total=2)
    fields.update(changes)
    return KqlAnswer(**fields)


class Host(App):
    def __init__(self, screen: KqlResultScreen) -> None:
        super().__init__()
        self.result_screen = screen
        self.quit_ran = False

    def on_mount(self) -> None:
        self.push_screen(self.result_screen)

    def action_quit(self) -> None:  # a name that ran markup would land here
        self.quit_ran = True


def plain(widget: Static) -> str:
    return str(widget.visual)


def cells(table: DataTable) -> list[list]:
    return [table.get_row_at(i) for i in range(table.row_count)]


async def test_title_source_count_and_literal_cells():
    query = "resources | where name == '[@click=app.quit]srv[/]'\x1b]0;PWNED\x07"
    screen = KqlResultScreen(query, answer(), now=NOW)
    app = Host(screen)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        title = plain(screen.query_one("#kql-query", Static))
        assert title == "resources | where name == '[@click=app.quit]srv[/]'␛]0;PWNED␇", "shown literally, controls as markers"
        meta = plain(screen.query_one("#kql-meta", Static))
        assert meta == "cache, as of 2026-11-28 11:46 UTC (14 min old) · 2 rows"
        table = screen.query_one(DataTable)
        rows = cells(table)
        assert all(isinstance(c, Text) for row in rows for c in row), "cells are Text, never markup strings"
        assert [c.plain for c in rows[0]] == [HOSTILE, "3", '{"env":"prod","k":[1,2]}', "true"]
        assert [c.plain for c in rows[1]] == ["srv[/foo]", "", "", "false"]
        assert [str(c.label) for c in table.columns.values()] == ["name", "count_", "tags", "ok"]
        await pilot.click(DataTable, offset=(3, 1))
        assert not app.quit_ran and app.is_running


async def test_truncated_resource_graph_answer_says_so():
    rows = [{"id": f"/subscriptions/x/r{i}"} for i in range(1000)]
    screen = KqlResultScreen("resources | project id", KqlAnswer([("id", "string")], rows, SOURCE_GRAPH, NOW, True, 5321))
    app = Host(screen)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        assert plain(screen.query_one("#kql-meta", Static)) == "Resource Graph · 1,000 rows of 5,321, truncated at 1,000"
        table = screen.query_one(DataTable)
        assert table.row_count == 1000
        await pilot.press("pagedown", "pagedown")
        assert table.cursor_row > 10, "the rows scroll"


async def test_copy_and_whole_value_of_the_cell_under_the_cursor():
    screen = KqlResultScreen("q", answer(), now=NOW)
    app = Host(screen)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("right", "right", "c")
        assert app.clipboard == '{"env":"prod","k":[1,2]}'
        await pilot.press("enter")
        cell = screen.query_one("#kql-cell", Static)
        assert cell.has_class("-open")
        assert '"env": "prod"' in plain(cell), "objects are pretty-printed in full"
        await pilot.press("down")
        assert not cell.has_class("-open"), "moving on hides the old value"
        await pilot.press("left", "left", "up", "c")
        assert app.clipboard == HOSTILE


async def test_escape_and_q_close():
    for key in ("escape", "q"):
        screen = KqlResultScreen("q", answer(), now=NOW)
        app = Host(screen)
        async with app.run_test() as pilot:
            await pilot.pause()
            assert app.screen is screen
            await pilot.press(key)
            assert app.screen is not screen


async def test_error_shows_a_caret_under_the_position(tmp_path):
    query = "resources\n| where name == "
    with pytest.raises(KqlError) as info:
        run_offline(Store(tmp_path / "cache"), query)
    screen = KqlResultScreen(query, error=info.value)
    app = Host(screen)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        text = plain(screen.query_one(KqlErrorMessage))
        lines = text.split("\n")
        assert lines[0] == "| where name == "
        assert lines[1] == " " * 16 + "^"
        assert lines[2].startswith("ParserFailure: expected an expression")
        assert not screen.query(DataTable)
        await pilot.press("escape")
        assert app.screen is not screen


async def test_an_offline_answer_from_a_cache_with_hostile_names(tmp_path):
    store = Store(tmp_path / "cache")
    machine = {"id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m1",
               "name": HOSTILE + "\x1b[2J", "type": "microsoft.hybridcompute/machines", "location": "westeurope",
               "subscriptionId": SUB, "resourceGroup": "rg", "properties": {"status": "Connected"}, "tags": {HOSTILE: "x"}}
    store.put_rows(SUB, "machines", [machine], tenant="t", fetched_at=NOW - timedelta(hours=3))
    result = run_offline(store, "resources | project name, tags")
    screen = KqlResultScreen("resources | project name, tags", result, now=NOW)
    app = Host(screen)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        assert [c.plain for c in cells(screen.query_one(DataTable))[0]] == [HOSTILE + "␛[2J", '{"[@click=app.quit]srv[/]":"x"}']
        assert plain(screen.query_one("#kql-meta", Static)).startswith("cache, as of 2026-11-28 09:00 UTC (3 h old)")


def test_cell_text_shapes():
    assert cell_text(None) == "" and cell_text(False) == "false" and cell_text(1.5) == "1.5"
    assert cell_text(["a", {"b": None}]) == '["a",{"b":null}]'
    assert cell_text("x" * 500).endswith("…") and len(cell_text("x" * 500)) == 200
    assert cell_text("tab\there\x1b[31m") == "tab here␛[31m"
